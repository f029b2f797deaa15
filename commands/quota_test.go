package commands

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/tui"
)

func TestQuotaSetArgs(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	f := NewFactory(ios, BuildInfo{})
	f.LookupEnv = func(k string) (string, bool) {
		return map[string]string{"HUBCTL_REGISTRY": "env-host"}[k], k == "HUBCTL_REGISTRY"
	}
	for _, tt := range []struct {
		args     []string
		bytes    int64
		wantFail bool
	}{
		{[]string{"acme", "10GiB"}, 10 << 30, false},
		{[]string{"acme", "1.5GB"}, 0, true},
		{[]string{"acme", "500 MB"}, 500e6, false},
		{[]string{"acme", "1234"}, 1234, false},
		{[]string{"acme", "0"}, 0, false},
		{[]string{"acme", "unlimited"}, 0, false},
		{[]string{"acme", "-1"}, 0, true},
		{[]string{"acme", "10 parsecs"}, 0, true},
		{[]string{"acme"}, 0, true},
	} {
		var got *QuotaSetOptions
		cmd := NewCmdQuotaSet(f, func(o *QuotaSetOptions) error { got = o; return nil })
		cmd.SetArgs(tt.args)
		cmd.SetOut(ios.Out)
		cmd.SetErr(ios.ErrOut)
		err := cmd.Execute()
		if tt.wantFail {
			if err == nil {
				t.Errorf("%v: no error", tt.args)
			}
			continue
		}
		if err != nil || got.Namespace != "acme" || got.Bytes != tt.bytes || got.Hub.Registry != "env-host" {
			t.Errorf("%v: err %v, options %+v", tt.args, err, got)
		}
	}
}

func TestQuotaCommands(t *testing.T) {
	h := newHub(t)
	admin, bob := h.login("admin", "admin-password"), h.login("bob", "bob-password")
	ctx := context.Background()
	d := digest.FromString("layer")
	if err := h.store.PutBlob(ctx, metadata.Blob{Digest: d, Size: 3 << 20}); err != nil {
		t.Fatal(err)
	}
	if err := h.store.LinkBlob(ctx, "bob/app", d); err != nil {
		t.Fatal(err)
	}

	out := h.ok(bob, "quota", "show", "bob")
	if !strings.Contains(out, "bob") || !strings.Contains(out, "3.0 MiB") || !strings.Contains(out, "unlimited") {
		t.Errorf("quota show:\n%s", out)
	}
	h.fails(bob, "site administrators only", "quota", "set", "bob", "10GiB")
	if code, out, errOut := h.run(admin, "", false, "quota", "set", "bob", "10GiB"); code != 0 || out != "" || !strings.Contains(errOut, "Quota of bob set to 10.0 GiB (3.0 MiB used)") {
		t.Errorf("quota set: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	var u hubtypes.Usage
	if err := json.Unmarshal([]byte(h.ok(bob, "quota", "show", "bob", "-o", "json")), &u); err != nil {
		t.Fatal(err)
	}
	if u != (hubtypes.Usage{Namespace: "bob", UsedBytes: 3 << 20, QuotaBytes: 10 << 30}) {
		t.Errorf("quota show -o json = %+v", u)
	}
	if out := h.ok(bob, "quota", "show", "bob"); !strings.Contains(out, "10.0 GiB") || !strings.Contains(out, "0.0%") {
		t.Errorf("quota show with a quota:\n%s", out)
	}
	h.fails(bob, "admin", "quota", "show", "admin")
	h.fails(admin, "ghost", "quota", "show", "ghost")
	h.ok(admin, "quota", "set", "bob", "unlimited")
	if _, quota, err := h.store.Usage(ctx, "bob"); err != nil || quota != 0 {
		t.Errorf("quota after unlimited = %d, %v", quota, err)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 10 << 30: "10.0 GiB", 3 << 40: "3.0 TiB"} {
		if got := tui.FormatBytes(n); got != want {
			t.Errorf("tui.FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
