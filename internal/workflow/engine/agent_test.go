package engine_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/workflow/engine"
	"github.com/hubctl/hubctl/internal/workflow/executor"
	"github.com/hubctl/hubctl/internal/workflow/executor/local"
)

// agentExec is the local executor made a FileAgent, as the Kubernetes executor is:
// it records the AgentFiles of each job it sets up, and its WaitSaved stores what
// the pod's agent would upload (engine.StoreArtifact, as the upload endpoint does).
type agentExec struct {
	*local.Executor
	o     engine.ArtifactOptions
	mu    sync.Mutex
	specs map[string]executor.AgentFiles
	keys  map[string]string // JobSpec.CacheKey by job name
	saved int
}

func (x *agentExec) SetupWorkflow(ctx context.Context, job *executor.JobSpec) error {
	x.mu.Lock()
	if job.Agent != nil {
		x.specs[job.Name] = *job.Agent
		if x.keys != nil {
			x.keys[job.Name] = job.CacheKey
		}
	}
	x.mu.Unlock()
	return x.Executor.SetupWorkflow(ctx, job)
}

func (x *agentExec) WaitSaved(ctx context.Context, job *executor.JobSpec) error {
	x.mu.Lock()
	x.saved++
	x.mu.Unlock()
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	_ = tw.WriteHeader(&tar.Header{Name: "dist/a.txt", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg})
	_, _ = tw.Write([]byte("hi"))
	_ = tw.Close()
	_ = gz.Close()
	for _, a := range job.Agent.Save {
		if _, err := engine.StoreArtifact(ctx, x.o, engine.Artifact{RunID: job.Agent.RunID, JobID: job.Agent.JobID, Name: a.Name, Path: a.Path},
			"e1", bytes.NewReader(b.Bytes()), nil); err != nil {
			return err
		}
	}
	return nil
}

const agentWorkflow = `name: agent
on:
  push:
    repositories: [team/app]
jobs:
  a:
    image: alpine
    artifacts:
      - {name: dist, path: out/dist}
    steps:
      - run: "true"
  b:
    needs: [a]
    image: alpine
    steps:
      - run: "true"
`

// TestEngineFileAgent: on an executor whose jobs move their own artifacts, the engine
// tells each job what to restore and save (the hub's run and job run ids), waits
// for the save after the last step instead of exporting, and a job that needs one
// with artifacts restores; without the hub's URL such a job fails with that reason.
func TestEngineFileAgent(t *testing.T) {
	for _, hub := range []string{"http://hub.example:5000", ""} {
		t.Run("hub="+hub, func(t *testing.T) {
			s, x := startAgentEngine(t, hub, nil)
			w := trigger(t, s, "agent", agentWorkflow)
			run := waitRuns(t, s, w, 1)[0]
			j := jobsByName(run)
			if hub == "" {
				if run.State != engine.StateFailed || !strings.Contains(j["a"].Error, "HUBCTL_HUB") {
					t.Fatalf("without the hub's URL: %s %+v", run.State, j["a"])
				}
				return
			}
			if run.State != engine.StateSucceeded {
				t.Fatalf("run %s: %+v", run.State, run.Jobs)
			}
			x.mu.Lock()
			defer x.mu.Unlock()
			a, b := x.specs[j["a"].Display], x.specs[j["b"].Display]
			if a.RunID != run.ID || a.JobID != j["a"].ID || a.Restore || len(a.Save) != 1 || a.Save[0] != (executor.NamedPath{Name: "dist", Path: "out/dist"}) {
				t.Fatalf("a's agent files %+v", a)
			}
			if b.JobID != j["b"].ID || !b.Restore || len(b.Save) != 0 || x.saved != 1 {
				t.Fatalf("b's agent files %+v, saves %d", b, x.saved)
			}
			arts, err := s.ListWorkflowArtifacts(t.Context(), run.ID)
			if err != nil || len(arts) != 1 || arts[0].Job != "a" {
				t.Fatalf("artifacts %+v %v", arts, err)
			}
		})
	}
}

const agentCacheWorkflow = `name: agentcache
on:
  push:
    repositories: [team/app]
jobs:
  a:
    image: alpine
    outputs: [lock]
    steps:
      - run: echo "lock=L1" >> "$HUBCTL_OUTPUT"
  b:
    needs: [a]
    image: alpine
    cache:
      key: deps-${{ needs.a.outputs.lock }}-${{ run.workflow }}
      path: /root/.cache/deps
    steps:
      - run: "true"
`

// TestEngineFileAgentCache: on an executor whose jobs move their own files, a job
// with a cache gets it as AgentFiles.Cache (its path, a restore before the first
// step, WaitSaved after the last), and engine.CacheKey — what the hub's cache
// endpoints evaluate from the stored run — gives the key the engine evaluated when
// the job started, a needed job's output in it.
func TestEngineFileAgentCache(t *testing.T) {
	s, x := startAgentEngine(t, "http://hub.example:5000", map[string]string{})
	w := trigger(t, s, "agentcache", agentCacheWorkflow)
	run := waitRuns(t, s, w, 1)[0]
	if run.State != engine.StateSucceeded {
		t.Fatalf("run %s: %+v", run.State, run.Jobs)
	}
	j := jobsByName(run)
	x.mu.Lock()
	defer x.mu.Unlock()
	b := x.specs[j["b"].Display]
	if b.JobID != j["b"].ID || !b.Restore || b.Cache != "/root/.cache/deps" || len(b.Save) != 0 || x.saved != 1 {
		t.Fatalf("b's agent files %+v, saves %d", b, x.saved)
	}
	if _, ok := x.specs[j["a"].Display]; ok {
		t.Fatalf("a, with no cache nor artifacts, got agent files %+v", x.specs[j["a"].Display])
	}
	jb := j["b"]
	key, err := engine.CacheKey(&run, &jb)
	if err != nil || key != "deps-L1-agentcache" {
		t.Fatalf("CacheKey = %q, %v", key, err)
	}
	if spec := x.keys[j["b"].Display]; !strings.HasSuffix(spec, "\n"+key) {
		t.Fatalf("the engine's key %q is not the hub's %q", spec, key)
	}
	ja := j["a"]
	if key, err := engine.CacheKey(&run, &ja); err != nil || key != "" {
		t.Fatalf("CacheKey of a job without a cache = %q, %v", key, err)
	}
}

// startAgentEngine runs an engine with hub as its URL on a fresh SQLite store and the
// local executor made a FileAgent (agentExec, recording cache keys into keys when
// not nil); it stops with the test.
func startAgentEngine(t *testing.T, hub string, keys map[string]string) (*sqlstore.Store, *agentExec) {
	t.Helper()
	s, err := sqlstore.OpenSQLite(context.Background(), t.TempDir()+"/db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	l, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := blobstore.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	o := engine.ArtifactOptions{Store: s, Blobs: blobs, TempDir: t.TempDir()}
	x := &agentExec{Executor: l, o: o, specs: map[string]executor.AgentFiles{}, keys: keys}
	e, err := engine.New(engine.Options{Store: s, Executor: x, MayPull: mayPull, ID: "e1", Interval: 50 * time.Millisecond,
		Lease: 3 * time.Second, Renew: 200 * time.Millisecond, StopGrace: time.Second, Artifacts: o, Hub: hub})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return s, x
}
