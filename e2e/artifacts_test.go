package e2e

// Generic OCI artifacts end to end (issue 15): hubctl artifact against the real oras
// CLI, both ways, on hubctl serve, and the referrers tag schema on the CNCF
// distribution registry, which has no referrers API.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// artifactTree writes a file and a directory with a nested file under dir.
func artifactTree(t *testing.T, dir string) {
	t.Helper()
	for p, c := range map[string]string{
		"tool":               "#!/bin/sh\necho tool\n",
		"site/index.html":    "<h1>site</h1>\n",
		"site/assets/app.js": "console.log(1)\n",
	} {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// treeFiles lists the regular files under dir with their contents.
func treeFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		out[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	var g, w []string
	for k, v := range got {
		g = append(g, k+"="+v)
	}
	for k, v := range want {
		w = append(w, k+"="+v)
	}
	sort.Strings(g)
	sort.Strings(w)
	if strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Errorf("%s:\n got %q\nwant %q", what, g, w)
	}
}

// TestArtifactsOras: hubctl artifact push → oras pull, oras push → hubctl artifact
// pull (files and directories), and oras discover sees what hubctl artifact attach
// attached, and hubctl artifact discover what oras attach attached.
func TestArtifactsOras(t *testing.T) {
	oras := tool(t, "oras")
	s := startServer(t)
	work := t.TempDir()
	src := filepath.Join(work, "src")
	artifactTree(t, src)
	want := treeFiles(t, src)
	env := append(cleanEnv("HUBCTL_", "DOCKER_CONFIG", "HOME"), "HOME="+t.TempDir(), "DOCKER_CONFIG="+dockerConfigFor(t))

	ref := s.Addr + "/team/tool:1.0"
	out := run(t, src, env, hubctlBin, "artifact", "push", ref, "tool", "site", "--artifact-type", "application/vnd.example.tool", "-a", "team=e2e", "--progress", "quiet")
	if !strings.Contains(out, "/team/tool:1.0@sha256:") {
		t.Fatalf("artifact push printed %q", out)
	}
	o1 := filepath.Join(work, "oras-pulled")
	run(t, work, env, oras, "pull", ref, "-o", o1, "--plain-http")
	sameTree(t, "oras pull of hubctl's artifact", treeFiles(t, o1), want)
	mf := run(t, work, env, oras, "manifest", "fetch", ref, "--plain-http")
	if !strings.Contains(mf, `"artifactType":"application/vnd.example.tool"`) || !strings.Contains(mf, `"team":"e2e"`) {
		t.Errorf("manifest: %s", mf)
	}

	ref2 := s.Addr + "/team/orasart:1"
	run(t, src, env, oras, "push", ref2, "tool:text/plain", "site", "--artifact-type", "application/vnd.example.x", "--plain-http")
	o2 := filepath.Join(work, "hubctl-pulled")
	run(t, work, env, hubctlBin, "artifact", "pull", ref2, "-d", o2, "--progress", "quiet")
	sameTree(t, "hubctl artifact pull of oras's artifact", treeFiles(t, o2), want)

	// Referrers both ways.
	sbom := filepath.Join(work, "sbom.json")
	if err := os.WriteFile(sbom, []byte(`{"spdxVersion":"SPDX-2.3"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	attached := strings.TrimSpace(run(t, work, env, hubctlBin, "artifact", "attach", "--subject", ref, sbom, "--artifact-type", "application/spdx+json", "--progress", "quiet"))
	run(t, src, env, oras, "attach", ref, "--artifact-type", "application/vnd.example.sig", "tool", "--plain-http")
	disc := run(t, work, env, oras, "discover", ref, "--plain-http", "--format", "json")
	if !strings.Contains(disc, "application/spdx+json") || !strings.Contains(disc, strings.SplitN(attached, "@", 2)[1]) {
		t.Errorf("oras discover does not list hubctl's attachment %s:\n%s", attached, disc)
	}
	var tree struct {
		Referrers []struct {
			ArtifactType string `json:"artifactType"`
		} `json:"referrers"`
	}
	if err := json.Unmarshal([]byte(run(t, work, env, hubctlBin, "artifact", "discover", ref, "-o", "json")), &tree); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, r := range tree.Referrers {
		types = append(types, r.ArtifactType)
	}
	sort.Strings(types)
	if strings.Join(types, ",") != "application/spdx+json,application/vnd.example.sig" {
		t.Errorf("hubctl artifact discover: %v", types)
	}
}

// TestArtifactsReferrersFallback: on a registry without the referrers API (the CNCF
// distribution registry), attach keeps the tag schema's index and discover reads it.
func TestArtifactsReferrersFallback(t *testing.T) {
	d := startDistribution(t)
	work := t.TempDir()
	artifactTree(t, work)
	env := append(cleanEnv("HUBCTL_", "DOCKER_CONFIG"), "DOCKER_CONFIG="+dockerConfigFor(t))
	ref := d.Addr + "/team/tool:1.0"
	run(t, work, env, hubctlBin, "artifact", "push", ref, "tool", "--progress", "quiet")
	run(t, work, env, hubctlBin, "artifact", "attach", "--subject", ref, "site", "--artifact-type", "application/vnd.example.docs", "--progress", "quiet")
	out := run(t, work, env, hubctlBin, "artifact", "discover", ref)
	if !strings.Contains(out, "application/vnd.example.docs") {
		t.Errorf("discover through the tag schema:\n%s", out)
	}
}
