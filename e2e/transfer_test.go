package e2e

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// registryUnderTest is a registry the client verbs run against.
type registryUnderTest struct {
	name string
	addr string
}

// clientRegistries starts hubctl serve and the distribution registry: every client
// verb must work against both.
func clientRegistries(t *testing.T) []registryUnderTest {
	return []registryUnderTest{
		{"hubctl", startServer(t).Addr},
		{"distribution", startDistribution(t).Addr},
	}
}

// TestClientVerbs runs every verb and every location form against hubctl serve and the
// distribution registry.
func TestClientVerbs(t *testing.T) {
	for _, reg := range clientRegistries(t) {
		t.Run(reg.name, func(t *testing.T) {
			img := buildImage(t, "amd64", randomLayer(t, 300<<10), randomLayer(t, 64<<10))
			src := newLayout(t)
			src.addImage(img, "1")
			r := reg.addr + "/team/app"

			// push from an OCI layout; stdout is the reference with the digest.
			out := strings.TrimSpace(hubctl(t, "push", "oci:"+src.Dir+":1", r+":1"))
			if want := r + ":1@" + img.Manifest.Digest; out != want {
				t.Fatalf("push printed %q, want %q", out, want)
			}
			if d := strings.TrimSpace(hubctl(t, "digest", r+":1")); d != img.Manifest.Digest {
				t.Fatalf("digest = %q, want %q", d, img.Manifest.Digest)
			}
			if d := strings.TrimSpace(hubctl(t, "digest", "oci:"+src.Dir+":1")); d != img.Manifest.Digest {
				t.Fatalf("digest of the layout = %q, want %q", d, img.Manifest.Digest)
			}

			// tag moves no blob; tags and ls list.
			hubctl(t, "tag", r+":1", "2")
			var tags []string
			if err := json.Unmarshal([]byte(hubctl(t, "tags", "-o", "json", r)), &tags); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(tags, []string{"1", "2"}) {
				t.Fatalf("tags = %v, want [1 2]", tags)
			}
			if ls := hubctl(t, "ls", reg.addr); !strings.Contains(ls, reg.addr+"/team/app\n") {
				t.Fatalf("ls %s = %q, want team/app", reg.addr, ls)
			}
			if ls := hubctl(t, "ls", reg.addr+"/other"); strings.Contains(ls, "team/app") {
				t.Fatalf("ls with prefix other listed %q", ls)
			}

			// inspect: human and raw documents.
			human := hubctl(t, "inspect", r+":2")
			for _, want := range []string{img.Manifest.Digest, "linux/amd64", "Layers:", img.Layers[0].Digest, img.Layers[1].Digest} {
				if !strings.Contains(human, want) {
					t.Fatalf("inspect output lacks %q:\n%s", want, human)
				}
			}
			var raw struct {
				Digest   string          `json:"digest"`
				Manifest json.RawMessage `json:"manifest"`
				Config   json.RawMessage `json:"config"`
			}
			if err := json.Unmarshal([]byte(hubctl(t, "inspect", "-o", "json", r+":2")), &raw); err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, raw.Manifest, img.Manifest.Data) || !jsonEqual(t, raw.Config, img.Config.Data) {
				t.Fatalf("inspect -o json: documents differ from what was pushed")
			}
			if got := hubctl(t, "inspect", "--raw", r+":2"); got != string(img.Manifest.Data) {
				t.Fatalf("inspect --raw = %q, want the pushed bytes", got)
			}

			// pull into every local form, and read each back.
			dir := t.TempDir()
			for _, dst := range []string{
				"oci:" + filepath.Join(dir, "layout") + ":1",
				"oci-archive:" + filepath.Join(dir, "image.oci.tar") + ":1",
			} {
				out := strings.TrimSpace(hubctl(t, "pull", r+":1", dst))
				if !strings.HasSuffix(out, "@"+img.Manifest.Digest) {
					t.Fatalf("pull to %s printed %q", dst, out)
				}
				if d := strings.TrimSpace(hubctl(t, "digest", dst)); d != img.Manifest.Digest {
					t.Fatalf("digest of %s = %q, want %q", dst, d, img.Manifest.Digest)
				}
			}
			// docker-archive keeps the image's content; its manifest is docker's own form.
			archive := "docker-archive:" + filepath.Join(dir, "image.docker.tar") + ":team/app:1"
			hubctl(t, "pull", r+":1", archive)
			hubctl(t, "push", archive, r+":from-docker-archive")
			if got := hubctl(t, "inspect", r+":from-docker-archive"); !strings.Contains(got, img.Layers[0].Digest) {
				t.Fatalf("image pushed back from a docker archive lost its first layer:\n%s", got)
			}

			// copy within the registry and from the archive to a new repository.
			hubctl(t, "copy", "oci-archive:"+filepath.Join(dir, "image.oci.tar")+":1", reg.addr+"/team/from-archive:1")
			if d := strings.TrimSpace(hubctl(t, "digest", reg.addr+"/team/from-archive:1")); d != img.Manifest.Digest {
				t.Fatalf("copy from oci-archive: digest %q, want %q", d, img.Manifest.Digest)
			}

			// rm --manifest deletes the manifest a tag names, and so its other tags.
			hubctl(t, "rm", "--manifest", r+":2")
			if _, errOut, err := hubctlErr(t, "digest", r+":1"); err == nil {
				t.Fatalf("digest of %s:1 after rm of the manifest it shared with :2 succeeded", r)
			} else if !strings.Contains(errOut, "hubctl: ") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
				t.Fatalf("error output is not one line: %q", errOut)
			}
		})
	}
}

// TestCopyBetweenRegistries copies hubctl serve → distribution → hubctl serve with an
// index of two platforms, children first, and checks the digests survive.
func TestCopyBetweenRegistries(t *testing.T) {
	regs := clientRegistries(t)
	h, d := regs[0].addr, regs[1].addr
	amd := buildImage(t, "amd64", randomLayer(t, 128<<10))
	arm := buildImage(t, "arm64", randomLayer(t, 128<<10))
	src := newLayout(t)
	idx := src.addIndex("multi", amd, arm)
	hubctl(t, "push", "oci:"+src.Dir+":multi", h+"/multi/app:1")
	hubctl(t, "copy", h+"/multi/app:1", d+"/multi/app:1")
	hubctl(t, "copy", d+"/multi/app:1", h+"/multi/back:1")
	for _, ref := range []string{d + "/multi/app:1", h + "/multi/back:1"} {
		if got := strings.TrimSpace(hubctl(t, "digest", ref)); got != idx.Digest {
			t.Fatalf("digest of %s = %s, want the index %s", ref, got, idx.Digest)
		}
		if got := strings.TrimSpace(hubctl(t, "digest", strings.TrimSuffix(ref, ":1")+"@"+arm.Manifest.Digest)); got != arm.Manifest.Digest {
			t.Fatalf("child %s missing at %s", arm.Manifest.Digest, ref)
		}
	}
}

// TestOnlyMissingBlobs proves by counting at a proxy that only what the destination
// lacks is sent: a second push sends nothing, a copy to another repository of the same
// registry mounts, and an image with one new layer sends that layer and its config.
func TestOnlyMissingBlobs(t *testing.T) {
	s := startServer(t)
	p := startCountingProxy(t, s.Addr)
	base := []blob{randomLayer(t, 256<<10), randomLayer(t, 256<<10), randomLayer(t, 256<<10)}
	img := buildImage(t, "amd64", base...)
	src := newLayout(t)
	src.addImage(img, "1")
	repo := p.Addr + "/count/app"

	hubctl(t, "push", "oci:"+src.Dir+":1", repo+":1")
	var all int64
	for _, b := range append([]blob{img.Config}, img.Layers...) {
		all += int64(len(b.Data))
	}
	if got := p.uploaded.Load(); got != all {
		t.Fatalf("first push uploaded %d bytes, want %d (every blob once)", got, all)
	}

	p.reset()
	out := hubctl(t, "push", "-o", "json", "oci:"+src.Dir+":1", repo+":1")
	if got := p.uploaded.Load(); got != 0 || p.blobPuts.Load() != 0 {
		t.Fatalf("second push uploaded %d bytes in %d blobs, want 0", got, p.blobPuts.Load())
	}
	last := jsonLines(t, out)
	if res := last[len(last)-1]; res["event"] != "result" || res["upToDate"] != true {
		t.Fatalf("second push result = %v, want upToDate", res)
	}

	p.reset()
	hubctl(t, "copy", repo+":1", p.Addr+"/count/other:1")
	if got := p.uploaded.Load(); got != 0 {
		t.Fatalf("copy to another repository of the same registry uploaded %d bytes, want 0", got)
	}
	if got := p.mounts.Load(); got != int64(len(img.Layers)+1) {
		t.Fatalf("copy mounted %d blobs, want %d", got, len(img.Layers)+1)
	}

	p.reset()
	changed := buildImage(t, "amd64", base[0], base[1], randomLayer(t, 200<<10))
	src.addImage(changed, "2")
	hubctl(t, "push", "oci:"+src.Dir+":2", repo+":2")
	want := []string{changed.Config.Digest, changed.Layers[2].Digest}
	got := p.uploadedDigests()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("changing one layer uploaded %v, want exactly the new layer and config %v", got, want)
	}
	if n := p.uploaded.Load(); n != int64(len(changed.Config.Data)+len(changed.Layers[2].Data)) {
		t.Fatalf("changing one layer uploaded %d bytes, want %d", n, len(changed.Config.Data)+len(changed.Layers[2].Data))
	}
}

// TestPlatformFilter keeps two of three platforms (a new index, digest changed, said on
// stderr) and then one (a single manifest, the child's digest).
func TestPlatformFilter(t *testing.T) {
	s := startServer(t)
	imgs := []layeredImage{
		buildImage(t, "amd64", randomLayer(t, 32<<10)),
		buildImage(t, "arm64", randomLayer(t, 32<<10)),
		buildImage(t, "s390x", randomLayer(t, 32<<10)),
	}
	src := newLayout(t)
	idx := src.addIndex("all", imgs...)
	hubctl(t, "push", "oci:"+src.Dir+":all", s.Addr+"/plat/app:all")

	out, errOut, err := hubctlErr(t, "copy", "--progress", "plain", "--platform", "linux/amd64,linux/arm64", s.Addr+"/plat/app:all", s.Addr+"/plat/two:1")
	if err != nil {
		t.Fatalf("copy --platform: %v\n%s", err, errOut)
	}
	if strings.Contains(out, idx.Digest) || !strings.Contains(errOut, "changed the digest") {
		t.Fatalf("filtered copy should say the digest changed; stdout %q stderr %q", out, errOut)
	}
	var doc struct {
		Manifest manifest `json:"manifest"`
	}
	if err := json.Unmarshal([]byte(hubctl(t, "inspect", "-o", "json", s.Addr+"/plat/two:1")), &doc); err != nil {
		t.Fatal(err)
	}
	var archs []string
	for _, m := range doc.Manifest.Manifests {
		archs = append(archs, m.Platform.Architecture)
	}
	if !slices.Equal(archs, []string{"amd64", "arm64"}) {
		t.Fatalf("filtered index has %v, want [amd64 arm64]", archs)
	}

	out = strings.TrimSpace(hubctl(t, "copy", "--platform", "linux/arm64", s.Addr+"/plat/app:all", s.Addr+"/plat/one:1"))
	if !strings.HasSuffix(out, "@"+imgs[1].Manifest.Digest) {
		t.Fatalf("single-platform copy printed %q, want the arm64 manifest %s", out, imgs[1].Manifest.Digest)
	}
	if _, errOut, err := hubctlErr(t, "copy", "--platform", "windows/amd64", s.Addr+"/plat/app:all", s.Addr+"/plat/none:1"); err == nil ||
		!strings.Contains(errOut, "no manifest for platform windows/amd64") {
		t.Fatalf("copy of a missing platform: err %v, stderr %q", err, errOut)
	}
}

// TestReferrersCopy copies an image with a signature-like referrer to hubctl serve
// (referrers API) and to distribution (tag schema fallback).
func TestReferrersCopy(t *testing.T) {
	regs := clientRegistries(t)
	h, d := regs[0].addr, regs[1].addr
	img := buildImage(t, "amd64", randomLayer(t, 16<<10))
	src := newLayout(t)
	src.addImage(img, "1")
	hubctl(t, "push", "oci:"+src.Dir+":1", h+"/ref/app:1")

	// An artifact whose subject is the image, as cosign or oras would push it.
	sig := newBlob([]byte("signature payload"))
	empty := newBlob([]byte("{}"))
	art := newBlob(mustJSON(t, manifest{
		SchemaVersion: 2, MediaType: mtOCIManifest, ArtifactType: "application/vnd.example.sig",
		Config:  &descriptor{MediaType: "application/vnd.oci.empty.v1+json", Digest: empty.Digest, Size: 2},
		Layers:  []descriptor{{MediaType: "application/vnd.example.sig.v1", Digest: sig.Digest, Size: int64(len(sig.Data))}},
		Subject: &descriptor{MediaType: mtOCIManifest, Digest: img.Manifest.Digest, Size: int64(len(img.Manifest.Data))},
	}))
	hs := &server{t: t, Addr: h}
	pushBlob(t, hs, "ref/app", sig.Data)
	pushBlob(t, hs, "ref/app", empty.Data)
	if resp, body := pushManifest(t, hs, "ref/app", art.Digest, mtOCIManifest, art.Data); resp.StatusCode != 201 {
		t.Fatalf("push referrer: %s %s", resp.Status, body)
	}

	for _, dst := range []string{d + "/ref/app:1", h + "/ref/copy:1"} {
		hubctl(t, "copy", "--referrers", h+"/ref/app:1", dst)
		repo := strings.TrimSuffix(dst, ":1")
		if got := strings.TrimSpace(hubctl(t, "digest", repo+"@"+art.Digest)); got != art.Digest {
			t.Fatalf("referrer missing at %s", dst)
		}
	}
	// distribution has no referrers API: the tag schema's index must name the referrer.
	fallback := strings.Replace(img.Manifest.Digest, ":", "-", 1)
	var doc struct {
		Manifest manifest `json:"manifest"`
	}
	if err := json.Unmarshal([]byte(hubctl(t, "inspect", "-o", "json", d+"/ref/app:"+fallback)), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Manifest.Manifests) != 1 || doc.Manifest.Manifests[0].Digest != art.Digest {
		t.Fatalf("fallback index at distribution = %+v, want the referrer %s", doc.Manifest.Manifests, art.Digest)
	}
	// hubctl serve has the API: the copy is listed there.
	resp, body := do(t, "GET", "http://"+h+"/v2/ref/copy/referrers/"+img.Manifest.Digest, nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), art.Digest) {
		t.Fatalf("referrers of the copy: %s %s", resp.Status, body)
	}
}

// TestResumeAfterDestinationKilled kills the destination registry in the middle of a
// copy, restarts it on the same data, and copies again: the image completes, and the
// blobs that had landed are not sent again.
func TestResumeAfterDestinationKilled(t *testing.T) {
	src := startServer(t)
	dst := startServer(t)
	var layers []blob
	for range 6 {
		layers = append(layers, randomLayer(t, 4<<20))
	}
	img := buildImage(t, "amd64", layers...)
	lay := newLayout(t)
	lay.addImage(img, "1")
	hubctl(t, "push", "oci:"+lay.Dir+":1", src.Addr+"/big/app:1")

	p := startCountingProxy(t, dst.Addr)
	// A rate cap keeps the copy running long enough to kill the destination mid-way.
	cmdOut := make(chan error, 1)
	go func() {
		_, _, err := hubctlErr(t, "copy", "--jobs", "1", "--rate", "4MiB", "--progress", "plain", src.Addr+"/big/app:1", p.Addr+"/big/app:1")
		cmdOut <- err
	}()
	waitFor(t, func() bool { return p.blobPuts.Load() >= 2 }, "two blobs to land before the kill")
	dst.Kill()
	if err := <-cmdOut; err == nil {
		t.Fatal("copy succeeded although the destination was killed")
	}
	landed := p.uploadedDigests()
	dst2 := dst.Restart()
	p2 := startCountingProxy(t, dst2.Addr)
	hubctl(t, "copy", src.Addr+"/big/app:1", p2.Addr+"/big/app:1")
	if got := strings.TrimSpace(hubctl(t, "digest", dst2.Addr+"/big/app:1")); got != img.Manifest.Digest {
		t.Fatalf("after resume the destination has %q, want %s", got, img.Manifest.Digest)
	}
	for _, d := range p2.uploadedDigests() {
		if slices.Contains(landed, d) {
			t.Fatalf("blob %s was sent again although it landed before the kill", d)
		}
	}
	if len(p2.uploadedDigests())+len(landed) > len(layers)+1 {
		t.Fatalf("sent %d + %d blobs for an image of %d", len(landed), len(p2.uploadedDigests()), len(layers)+1)
	}
}

func jsonEqual(t testing.TB, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("not JSON: %s", a)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("not JSON: %s", b)
	}
	return reflect.DeepEqual(x, y)
}

func waitFor(t testing.TB, cond func() bool, what string) {
	t.Helper()
	for range 600 {
		if cond() {
			return
		}
		sleepBrief()
	}
	t.Fatalf("timed out waiting for %s", what)
}

func sleepBrief() { time.Sleep(100 * time.Millisecond) }
