package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestChartsProvenance: signatures travel both ways between hubctl and the real helm
// CLIs: hubctl chart package --sign → helm verify; helm package --sign → hubctl chart
// push → hubctl chart pull --verify (the .prov byte for byte); a keyring without the
// signer's key is refused and leaves nothing; an encrypted key's passphrase on stdin.
func TestChartsProvenance(t *testing.T) {
	keys, err := filepath.Abs(filepath.Join("..", "internal", "charts", "chartclient", "testdata"))
	if err != nil {
		t.Fatal(err)
	}
	secret, pub, passwordKey := filepath.Join(keys, "helm-test-key.secret"), filepath.Join(keys, "helm-test-key.pub"),
		filepath.Join(keys, "helm-password-key.secret")
	const key = "helm-testing@helm.sh"
	for _, h := range helmCLIs {
		t.Run(h.name, func(t *testing.T) {
			helm := tool(t, h.bin)
			f := newAuthFixture(t)
			e := newChartEnv(t, f, helm)

			src := writeChart(t, t.TempDir(), "signed", "1.0.0", "signed by hubctl")
			p := strings.TrimSpace(e.hubctl(t, "chart", "package", src, "-d", t.TempDir(), "--sign", "--key", key, "--keyring", secret))
			if out := e.helmRun(t, "verify", p, "--keyring", pub); !strings.Contains(out, key) {
				t.Errorf("helm verify of hubctl's signature:\n%s", out)
			}

			src2 := writeChart(t, t.TempDir(), "helmsigned", "2.0.0", "signed by helm")
			out2 := t.TempDir()
			e.helmRun(t, "package", src2, "-d", out2, "--sign", "--key", key, "--keyring", secret)
			p2 := filepath.Join(out2, "helmsigned-2.0.0.tgz")
			e.hubctl(t, "chart", "push", p2, "oci://"+f.s.Addr+"/alice", "--progress", "quiet")
			pd := t.TempDir()
			e.hubctl(t, "chart", "pull", "oci://"+f.s.Addr+"/alice/helmsigned", "--verify", "--keyring", pub, "-d", pd, "--progress", "quiet")
			sameFile(t, p2, filepath.Join(pd, "helmsigned-2.0.0.tgz"))
			sameFile(t, p2+".prov", filepath.Join(pd, "helmsigned-2.0.0.tgz.prov"))

			bad := t.TempDir()
			_, se, err := runErr(t, e.dir, e.env, hubctlBin, "chart", "pull", "oci://"+f.s.Addr+"/alice/helmsigned",
				"--verify", "--keyring", passwordKey, "-d", bad, "--progress", "quiet")
			if err == nil || !strings.Contains(se, "verify") {
				t.Errorf("pull --verify with another key: %v\n%s", err, se)
			}
			if entries, _ := os.ReadDir(bad); len(entries) != 0 {
				t.Errorf("a refused pull left %v", entries)
			}

			out3 := t.TempDir()
			runStdin(t, e.dir, e.env, "secret\n", hubctlBin, "chart", "package", src, "-d", out3,
				"--sign", "--key", "fake@helm.sh", "--keyring", passwordKey, "--passphrase-file", "-")
			e.helmRun(t, "verify", filepath.Join(out3, "signed-1.0.0.tgz"), "--keyring", passwordKey)
		})
	}
}
