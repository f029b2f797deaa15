package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDeleteIndexChildRefused (issue 13 item 2): crane and regctl deleting, by digest,
// a manifest that an index of the repository lists are refused with a message naming
// the index, and the index keeps working; once the index is gone the child may go.
func TestDeleteIndexChildRefused(t *testing.T) {
	crane := tool(t, "crane")
	regctl := tool(t, "regctl")
	s := startServer(t)
	dir := t.TempDir()
	env := clientEnv(t, t.TempDir())
	c := func(args ...string) string {
		t.Helper()
		return strings.TrimSpace(run(t, dir, env, crane, append([]string{"--insecure"}, args...)...))
	}
	if err := os.WriteFile(filepath.Join(dir, "layer.tar"), layerTar(t, "payload.bin", 16<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	repo := s.Addr + "/multi/app"
	c("append", "--oci-empty-base", "-f", filepath.Join(dir, "layer.tar"), "-t", repo+":base")
	c("mutate", "--set-platform", "linux/amd64", repo+":base", "-t", repo+":amd64")
	c("mutate", "--set-platform", "linux/arm64", repo+":base", "-t", repo+":arm64")
	amd := c("digest", repo+":amd64")
	c("index", "append", "-m", repo+":amd64", "-m", repo+":arm64", "-t", repo+":multi")
	index := c("digest", repo+":multi")

	refused := func(client string, args ...string) {
		t.Helper()
		out, errOut, err := runErr(t, dir, env, args[0], args[1:]...)
		if err == nil {
			t.Fatalf("%s deleting the child %s succeeded, want it refused\n%s%s", client, amd, out, errOut)
		}
		msg := out + errOut
		if !strings.Contains(msg, index) {
			t.Errorf("%s's refusal does not name the index %s:\n%s", client, index, msg)
		}
		t.Logf("%s refused: %s", client, strings.TrimSpace(msg))
	}
	refused("crane", crane, "--insecure", "delete", repo+"@"+amd)
	refused("regctl", regctl, "--host", "reg="+s.Addr+",tls=disabled", "manifest", "delete", repo+"@"+amd)

	// The registry said so on the wire too: 409 DENIED.
	resp, body := do(t, http.MethodDelete, s.URL("/v2/multi/app/manifests/"+amd), nil, nil)
	wantError(t, resp, body, []int{http.StatusConflict}, "DENIED")

	// The index and its child are intact: pulling the platform through the index works.
	if got := c("digest", "--platform", "linux/amd64", repo+":multi"); got != amd {
		t.Fatalf("crane digest --platform linux/amd64 of the index = %s, want %s", got, amd)
	}
	c("manifest", repo+"@"+amd)

	// Index first, then the child: both clients may delete.
	run(t, dir, env, regctl, "--host", "reg="+s.Addr+",tls=disabled", "manifest", "delete", repo+"@"+index)
	c("delete", repo+"@"+amd)
	resp, body = do(t, http.MethodGet, s.URL("/v2/multi/app/manifests/"+amd), nil, map[string]string{"Accept": mtOCIManifest})
	wantError(t, resp, body, []int{http.StatusNotFound}, "MANIFEST_UNKNOWN")
}
