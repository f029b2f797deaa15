package commands

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/hubctl/hubctl/internal/tlsconf"
)

// runHubctl runs args in-process with an empty environment and returns the exit code,
// stdout and stderr.
func runHubctl(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ios, _, out, errOut := iostreams.Test()
	f := NewFactory(ios, BuildInfo{})
	f.LookupEnv = func(string) (string, bool) { return "", false }
	code := Execute(context.Background(), f, args)
	return code, out.String(), errOut.String()
}

func TestServeCheckConfig(t *testing.T) {
	data := t.TempDir()
	code, out, errOut := runHubctl(t, "serve", "--check-config", "--data", data, "--addr", "127.0.0.1:5000")
	if code != 0 || !strings.Contains(out, "configuration OK") || !strings.Contains(out, "TLS: off") {
		t.Fatalf("a default configuration: %d\n%s\n%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(data, "hubctl.db")); err == nil {
		t.Fatal("--check-config created the database")
	}
	// Beyond loopback without TLS or external URL: OK, with warnings.
	if _, out, _ := runHubctl(t, "serve", "--check-config", "--data", data, "--addr", ":5000"); !strings.Contains(out, "warning: plain HTTP beyond loopback") || !strings.Contains(out, "without external_url") {
		t.Errorf("warnings missing:\n%s", out)
	}
	ss := tlsconf.SelfSigned{Dir: t.TempDir()}
	if _, err := ss.Ensure([]string{"hub.example.com"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runHubctl(t, "serve", "--check-config", "--data", data, "--tls-cert", ss.CertFile(), "--tls-key", ss.KeyFile(), "--external-url", "https://hub.example.com")
	if code != 0 || !strings.Contains(out, "certificate for hub.example.com") {
		t.Fatalf("a good pair: %d\n%s", code, out)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-cert", ss.CertFile(), "--tls-key", ss.CACert()}, "tls.cert and tls.key"},
		{[]string{"--tls-cert", ss.CertFile(), "--tls-key", ss.KeyFile(), "--external-url", "https://other.example.com"}, "not valid for other.example.com"},
		{[]string{"--tls-cert", ss.CertFile()}, "needs both tls.cert and tls.key"},
		{[]string{"--data", "/proc/hubctl-nowhere"}, "data /proc/hubctl-nowhere"},
	} {
		args := append([]string{"serve", "--check-config", "--data", data}, tt.args...)
		code, out, errOut := runHubctl(t, args...)
		if code == 0 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, stderr %q (stdout %q), want %q", tt.args, code, errOut, out, tt.want)
		}
	}
}

func TestDoctorFlags(t *testing.T) {
	var got *DoctorOptions
	ios, _, _, _ := iostreams.Test()
	f := NewFactory(ios, BuildInfo{})
	f.LookupEnv = func(string) (string, bool) { return "", false }
	cmd := NewCmdDoctor(f, func(o *DoctorOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"hub.example.com", "--repo", "team/scratch", "-o", "json"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.Host != "hub.example.com" || got.Repo != "team/scratch" || got.Output != "json" || got.Trust == nil {
		t.Fatalf("options %+v", got)
	}
	if code, _, errOut := runHubctl(t, "doctor", "a", "b"); code == 0 || !strings.Contains(errOut, "see 'hubctl doctor --help'") {
		t.Fatalf("two hosts: %d %q", code, errOut)
	}
}
