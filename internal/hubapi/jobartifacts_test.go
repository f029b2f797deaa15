package hubapi_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/machinetoken"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/auth/token"
	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/hubapi"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	wfengine "github.com/hubctl/hubctl/internal/workflow/engine"
)

const artifactWorkflow = `name: pipe
on: manual
jobs:
  build:
    image: alpine
    artifacts:
      - {name: dist, path: out/dist}
    steps:
      - run: make
  test:
    image: alpine
    needs: [build]
    artifacts:
      - {name: report, path: report.txt}
    steps:
      - run: make test
`

// artifactFixture is the API with job tokens and the job artifact endpoints, over a
// real SQLite store and a real blob store on disk; maxSize caps one artifact.
type artifactFixture struct {
	*fixture
	minter   *machinetoken.Minter
	blobRoot string
}

func newArtifactFixture(t *testing.T, maxSize int64) *artifactFixture {
	t.Helper()
	return newFilesFixture(t, func(o *wfengine.ArtifactOptions) { o.MaxSize = maxSize })
}

// newFilesFixture is newArtifactFixture with the artifact and cache options as edit
// makes them.
func newFilesFixture(t *testing.T, edit func(*wfengine.ArtifactOptions)) *artifactFixture {
	t.Helper()
	keys, err := token.LoadOrCreateKeySet(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	af := &artifactFixture{blobRoot: t.TempDir()}
	blobs, err := blobstore.NewFS(af.blobRoot)
	if err != nil {
		t.Fatal(err)
	}
	ver := &token.Verifier{Keys: keys, Issuer: "hubctl-test", Audience: "registry.test"}
	af.fixture = newFixture(t, func(o *hubapi.Options) {
		store := o.Accounts.(*sqlstore.Store)
		af.minter = &machinetoken.Minter{Keys: keys, Issuer: "hubctl-test", Service: "registry.test", Store: store, Policy: &authz.Policy{Store: store}}
		o.Minter = af.minter
		o.Blobs = blobs
		o.JobArtifacts = wfengine.ArtifactOptions{Store: store, Blobs: blobs, TempDir: t.TempDir()}
		edit(&o.JobArtifacts)
		o.VerifyJWT = func(raw string) (string, token.Hub, error) {
			c, err := ver.Verify(raw)
			if err != nil {
				return "", token.Hub{}, err
			}
			return c.Subject, c.Hub, nil
		}
		o.JobActive = func(context.Context, string) error { return nil }
	})
	return af
}

// startRun starts a manual run of alice's pipe workflow and claims its first job
// (build) as engine e1: the run and build's job run ids, and the run's job token.
func (af *artifactFixture) startRun() (run, build int64, tok string) { return af.startRunOf("pipe") }

// startRunOf is startRun of alice's workflow name.
func (af *artifactFixture) startRunOf(name string) (run, build int64, tok string) {
	t := af.t
	run = decodeAs[hubtypes.WorkflowRun](t, af.want(af.do(asAlice, "POST", "/api/v1/workflows/alice/"+name+"/runs", nil), 201, "")).ID
	claims, err := af.store.ClaimWorkflowJobs(t.Context(), "e1", 1, time.Minute)
	if err != nil || len(claims) != 1 || claims[0].Run.ID != run {
		t.Fatalf("claim %+v, %v", claims, err)
	}
	u, err := af.store.GetUser(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	mt, err := af.minter.Mint(t.Context(), machinetoken.Request{Creator: u.ID, Subject: "workflow-run:" + strconv.FormatInt(run, 10),
		Access: []scope.Access{{Type: scope.TypeRepository, Name: "alice/app", Actions: []string{scope.Pull}}}})
	if err != nil {
		t.Fatal(err)
	}
	return run, claims[0].Job.ID, mt.Raw
}

// tgz is a gzipped tar of files (name → content); a name ending in / is a directory.
func tgz(t *testing.T, files ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	for i := 0; i < len(files); i += 2 {
		h := &tar.Header{Name: files[i], Mode: 0o644, Size: int64(len(files[i+1])), Typeflag: tar.TypeReg}
		if files[i][len(files[i])-1] == '/' {
			h = &tar.Header{Name: files[i], Mode: 0o755, Typeflag: tar.TypeDir}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, files[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func (af *artifactFixture) storedBlobs() int {
	n := 0
	_ = filepath.WalkDir(af.blobRoot, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// TestJobArtifactEndpoints: a job's token uploads the artifacts its job declares and
// the job that needs it lists and downloads them, byte for byte.
func TestJobArtifactEndpoints(t *testing.T) {
	af := newArtifactFixture(t, 1<<20)
	af.want(af.do(asAlice, "PUT", "/api/v1/workflows/alice/pipe", artifactWorkflow), 200, "")
	run, build, tok := af.startRun()
	job := bearer(tok)
	base := fmt.Sprintf("/api/v1/runs/%d/jobs/%d/", run, build)
	body := tgz(t, "dist/", "", "dist/app", "binary")
	got := decodeAs[hubtypes.WorkflowArtifact](t, af.want(af.do(job, "PUT", base+"artifacts/dist", string(body)), 201, ""))
	if got.Name != "dist" || got.Path != "out/dist" || got.JobID != build || got.Size == 0 {
		t.Fatalf("uploaded %+v", got)
	}
	// The user's own listing sees it.
	list := decodeAs[[]hubtypes.WorkflowArtifact](t, af.want(af.do(asAlice, "GET", fmt.Sprintf("/api/v1/runs/%d/artifacts", run), nil), 200, ""))
	if len(list) != 1 || list[0].Digest != got.Digest {
		t.Fatalf("listed %+v", list)
	}
	// Build needs nothing.
	if l := decodeAs[[]hubtypes.WorkflowArtifact](t, af.want(af.do(job, "GET", base+"needed-artifacts", nil), 200, "")); len(l) != 0 {
		t.Fatalf("build's needed artifacts: %+v", l)
	}
	// Finish build; test is claimed and needs it.
	if err := af.store.FinishWorkflowJob(t.Context(), build, "e1", wfengine.Finish{State: wfengine.StateSucceeded}); err != nil {
		t.Fatal(err)
	}
	af.want(af.do(job, "PUT", base+"artifacts/dist", string(body)), 403, "DENIED")
	claims, err := af.store.ClaimWorkflowJobs(t.Context(), "e1", 1, time.Minute)
	if err != nil || len(claims) != 1 || claims[0].Job.Job != "test" {
		t.Fatalf("claim test: %+v, %v", claims, err)
	}
	tbase := fmt.Sprintf("/api/v1/runs/%d/jobs/%d/", run, claims[0].Job.ID)
	need := decodeAs[[]hubtypes.WorkflowArtifact](t, af.want(af.do(job, "GET", tbase+"needed-artifacts", nil), 200, ""))
	if len(need) != 1 || need[0].Name != "dist" || need[0].JobID != build || need[0].Path != "out/dist" {
		t.Fatalf("test's needed artifacts: %+v", need)
	}
	r := af.want(af.do(job, "GET", fmt.Sprintf("%sneeded-artifacts/%d/dist", tbase, build), nil), 200, "")
	zr, err := gzip.NewReader(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		names = append(names, h.Name+"="+string(b))
	}
	if fmt.Sprint(names) != "[dist/= dist/app=binary]" {
		t.Fatalf("downloaded entries %v", names)
	}
	// test may not upload build's artifact, nor download one it does not need.
	af.want(af.do(job, "PUT", tbase+"artifacts/dist", string(body)), 404, "NAME_UNKNOWN")
	af.want(af.do(job, "GET", fmt.Sprintf("%sneeded-artifacts/%d/nosuch", tbase, build), nil), 404, "NAME_UNKNOWN")
	af.want(af.do(job, "GET", fmt.Sprintf("%sneeded-artifacts/%d/dist", tbase, claims[0].Job.ID), nil), 404, "NAME_UNKNOWN")
}

// TestJobArtifactAttacks: a token of run A cannot read or write run B's artifacts;
// users cannot call the job endpoints; an upload past the cap, cut short, of entries
// outside the artifact's path or not a tar keeps nothing.
func TestJobArtifactAttacks(t *testing.T) {
	af := newArtifactFixture(t, 1<<10)
	af.want(af.do(asAlice, "PUT", "/api/v1/workflows/alice/pipe", artifactWorkflow), 200, "")
	runA, buildA, tokA := af.startRun()
	runB, buildB, tokB := af.startRun()
	a, b := bearer(tokA), bearer(tokB)
	good := string(tgz(t, "dist/app", "ok"))
	baseB := fmt.Sprintf("/api/v1/runs/%d/jobs/%d/", runB, buildB)
	// Run A's token on run B's paths, and on run A's path naming B's job.
	af.want(af.do(a, "PUT", baseB+"artifacts/dist", good), 404, "NAME_UNKNOWN")
	af.want(af.do(a, "GET", baseB+"needed-artifacts", nil), 404, "NAME_UNKNOWN")
	af.want(af.do(a, "GET", fmt.Sprintf("%sneeded-artifacts/%d/dist", baseB, buildB), nil), 404, "NAME_UNKNOWN")
	af.want(af.do(a, "PUT", fmt.Sprintf("/api/v1/runs/%d/jobs/%d/artifacts/dist", runA, buildB), good), 404, "NAME_UNKNOWN")
	// A user, even the run's owner, does not use these endpoints.
	af.want(af.do(asAlice, "PUT", baseB+"artifacts/dist", good), 403, "DENIED")
	// Nor does a job token reach anything else.
	if r := af.do(a, "GET", fmt.Sprintf("/api/v1/runs/%d/artifacts", runA), nil); r.status != 401 {
		t.Fatalf("job token on the user's artifact list: %d %s", r.status, r.body)
	}
	af.want(af.do(a, "POST", "/api/v1/deploys/alice/web", nil), 401, "UNAUTHORIZED")

	baseA := fmt.Sprintf("/api/v1/runs/%d/jobs/%d/", runA, buildA)
	big := make([]byte, 2<<10)
	for _, c := range []struct{ what, body, code string }{
		{"past the cap", string(tgz(t, "dist/big", string(big))), "BLOB_UPLOAD_INVALID"},
		{"outside the path", string(tgz(t, "dist/app", "ok", "src/main.go", "evil")), "BLOB_UPLOAD_INVALID"},
		{"climbing out", string(tgz(t, "dist/../../etc/passwd", "evil")), "BLOB_UPLOAD_INVALID"},
		{"cut short", good[:len(good)/2], "BLOB_UPLOAD_INVALID"},
		{"not gzip", "hello", "BLOB_UPLOAD_INVALID"},
	} {
		r := af.do(a, "PUT", baseA+"artifacts/dist", c.body)
		if r.status != 400 || r.code() != c.code {
			t.Errorf("%s: %d %s", c.what, r.status, r.body)
		}
	}
	af.want(af.do(a, "PUT", baseA+"artifacts/undeclared", good), 404, "NAME_UNKNOWN")
	if l := decodeAs[[]hubtypes.WorkflowArtifact](t, af.want(af.do(asAlice, "GET", fmt.Sprintf("/api/v1/runs/%d/artifacts", runA), nil), 200, "")); len(l) != 0 {
		t.Fatalf("refused uploads kept %+v", l)
	}
	if n := af.storedBlobs(); n != 0 {
		t.Fatalf("refused uploads left %d blobs", n)
	}
	// B's own token still works on B.
	af.want(af.do(b, "PUT", baseB+"artifacts/dist", good), 201, "")
}
