package commands

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/hubctl/hubctl/internal/iostreams"
)

func runCapture(t *testing.T, cmd *cobra.Command, args ...string) error {
	t.Helper()
	cmd.SetArgs(args)
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	return cmd.Execute()
}

// TestChartSignFlags: --sign needs --key; the key flags need --sign; --keyring on pull
// needs --verify; the default keyrings are helm's.
func TestChartSignFlags(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	f := NewFactory(ios, BuildInfo{})
	f.LookupEnv = func(k string) (string, bool) {
		if k == "HOME" {
			return "/home/ci", true
		}
		return "", false
	}
	var pkg *ChartPackageOptions
	newPkg := func() *cobra.Command {
		return NewCmdChartPackage(f, func(o *ChartPackageOptions) error { pkg = o; return nil })
	}
	if err := runCapture(t, newPkg(), "./app", "--sign"); err == nil || !strings.Contains(err.Error(), "--key") {
		t.Errorf("--sign without --key: %v", err)
	}
	if err := runCapture(t, newPkg(), "./app", "--key", "ci"); err == nil || !strings.Contains(err.Error(), "--sign") {
		t.Errorf("--key without --sign: %v", err)
	}
	if err := runCapture(t, newPkg(), "./app", "--sign", "--key", "ci", "--passphrase-file", "-"); err != nil ||
		pkg.Keyring != "/home/ci/.gnupg/secring.gpg" || pkg.PassphraseFile != "-" {
		t.Errorf("--sign --key ci: %+v %v", pkg, err)
	}

	var pull *ChartTransferOptions
	newPull := func() *cobra.Command {
		return NewCmdChartPull(f, func(o *ChartTransferOptions) error { pull = o; return nil })
	}
	if err := runCapture(t, newPull(), "oci://r.example/team/app", "--keyring", "k.pub"); err == nil || !strings.Contains(err.Error(), "--verify") {
		t.Errorf("--keyring without --verify: %v", err)
	}
	if err := runCapture(t, newPull(), "oci://r.example/team/app", "--verify"); err != nil || !pull.Verify || pull.Keyring != "/home/ci/.gnupg/pubring.gpg" {
		t.Errorf("--verify: %+v %v", pull, err)
	}
}
