package engine_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/workflow/engine"
	"github.com/hubctl/hubctl/internal/workflow/executor/local"
)

const filesWorkflow = `name: files
on:
  push:
    repositories: [team/app]
jobs:
  a:
    image: alpine
    outputs: [cached]
    artifacts:
      - {name: dist, path: out/dist}
    cache:
      key: deps-${{ event.repository }}
    steps:
      - run: |
          mkdir -p out/dist/sub
          echo alpha > out/dist/a.txt
          echo beta > out/dist/sub/b.txt
          ln -s a.txt out/dist/link
          if [ -f "$HUBCTL_CACHE/seen" ]; then
            echo "[JOB_OUT] cached = $(cat "$HUBCTL_CACHE/seen")"
          else
            echo "run $HUBCTL_RUN_ID" > "$HUBCTL_CACHE/seen"
            echo "[JOB_OUT] cached = no"
          fi
  b:
    needs: [a]
    image: alpine
    outputs: [got]
    steps:
      - run: echo "[JOB_OUT] got = $(cat out/dist/a.txt)+$(cat out/dist/sub/b.txt)+$(cat out/dist/link)"
`

// startFilesEngine runs an engine on s with the local executor, o.Store (s when nil)
// and o.Blobs (a filesystem blob store when nil), which it returns.
func startFilesEngine(t *testing.T, s *sqlstore.Store, o engine.ArtifactOptions, now ...func() time.Time) blobstore.Store {
	t.Helper()
	x, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	blobs := o.Blobs
	if blobs == nil {
		if blobs, err = blobstore.NewFS(t.TempDir()); err != nil {
			t.Fatal(err)
		}
	}
	if o.Store == nil {
		o.Store = s
	}
	o.Blobs, o.TempDir = blobs, t.TempDir()
	e, err := engine.New(engine.Options{Store: s, Executor: x, MayPull: mayPull, ID: "e1", Interval: 50 * time.Millisecond,
		Lease: 3 * time.Second, Renew: 200 * time.Millisecond, StopGrace: time.Second, Artifacts: o})
	if len(now) > 0 {
		e, err = engine.New(engine.Options{Store: s, Executor: x, MayPull: mayPull, ID: "e1", Interval: 50 * time.Millisecond,
			Lease: 3 * time.Second, Renew: 200 * time.Millisecond, StopGrace: time.Second, Artifacts: o, Now: now[0]})
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return blobs
}

// waitRuns waits until w has n runs, all finished, and returns them newest first.
func waitRuns(t *testing.T, s *sqlstore.Store, w engine.Workflow, n int) []engine.Run {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		runs, err := s.ListWorkflowRuns(t.Context(), w.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		done := 0
		var full []engine.Run
		for _, r := range runs {
			if r.FinishedAt != (time.Time{}) {
				done++
				fr, err := s.GetWorkflowRun(t.Context(), r.ID)
				if err != nil {
					t.Fatal(err)
				}
				full = append(full, fr)
			}
		}
		if len(runs) == n && done == n {
			return full
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%d runs never finished", n)
	return nil
}

func push(t *testing.T, s *sqlstore.Store) {
	t.Helper()
	if _, err := s.AppendEvent(t.Context(), events.Event{Type: events.ManifestPushed, Repository: "team/app", Tag: "v1",
		Digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}); err != nil {
		t.Fatal(err)
	}
}

// TestWorkflowArtifactsAndCache: job a's artifact (a directory with a link in it)
// reaches job b, which needs a, at the same path; the cache a saves under its key in
// the first run is restored in the second (and not saved again: a key is immutable).
func TestWorkflowArtifactsAndCache(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *sqlstore.Store) {
		s := open()
		blobs := startFilesEngine(t, s, engine.ArtifactOptions{})
		w := trigger(t, s, "files", filesWorkflow)
		first := waitRuns(t, s, w, 1)[0]
		if first.State != engine.StateSucceeded {
			t.Fatalf("first run %s: %+v", first.State, first.Jobs)
		}
		j := jobsByName(first)
		if got := j["b"].Outputs["got"]; got != "alpha+beta+alpha" {
			t.Fatalf("b read %q from a's artifact", got)
		}
		if got := j["a"].Outputs["cached"]; got != "no" {
			t.Fatalf("first run found a cache: %q", got)
		}
		arts, err := s.ListWorkflowArtifacts(t.Context(), first.ID)
		if err != nil || len(arts) != 1 || arts[0].Name != "dist" || arts[0].Path != "out/dist" || arts[0].Job != "a" {
			t.Fatalf("artifacts %+v, %v", arts, err)
		}
		if size, err := blobs.Stat(t.Context(), arts[0].Digest, arts[0].Location); err != nil || size != arts[0].Size {
			t.Fatalf("artifact blob: size %d (row %d), %v", size, arts[0].Size, err)
		}
		caches, err := s.ListWorkflowCaches(t.Context(), w.ID)
		if err != nil || len(caches) != 1 || caches[0].Key != "deps-team/app" {
			t.Fatalf("caches %+v, %v", caches, err)
		}

		push(t, s)
		runs := waitRuns(t, s, w, 2)
		second := runs[0]
		if second.ID == first.ID {
			second = runs[1]
		}
		if second.State != engine.StateSucceeded {
			t.Fatalf("second run %s: %+v", second.State, second.Jobs)
		}
		if got, want := jobsByName(second)["a"].Outputs["cached"], "run "+strconv.FormatInt(first.ID, 10); got != want {
			t.Fatalf("second run's cache held %q, want %q", got, want)
		}
		after, err := s.ListWorkflowCaches(t.Context(), w.ID)
		if err != nil || len(after) != 1 || after[0].Digest != caches[0].Digest {
			t.Fatalf("caches after the second run %+v (before %+v), %v", after, caches, err)
		}
	})
}

const bigArtifact = `name: big
on:
  push:
    repositories: [team/app]
jobs:
  a:
    image: alpine
    artifacts:
      - {name: big, path: big.bin}
    steps:
      - run: head -c 5000 /dev/zero > big.bin
`

// TestWorkflowArtifactTooLarge: an artifact past workflows.artifacts.max_size fails
// its job with a message naming the limit, and no row is left.
func TestWorkflowArtifactTooLarge(t *testing.T) {
	s := backends[0].open(t)()
	startFilesEngine(t, s, engine.ArtifactOptions{MaxSize: 4096})
	w := trigger(t, s, "big", bigArtifact)
	r := waitRuns(t, s, w, 1)[0]
	j := jobsByName(r)["a"]
	if r.State != engine.StateFailed || !strings.Contains(j.Error, "artifact big (big.bin): larger than the limit of 4096 bytes") {
		t.Fatalf("run %s, job a: %s", r.State, j.Error)
	}
	if arts, err := s.ListWorkflowArtifacts(t.Context(), r.ID); err != nil || len(arts) != 0 {
		t.Fatalf("artifacts of a failed save %+v, %v", arts, err)
	}
}

// TestWorkflowRetention: the engine's loop purges, by its injected clock, the runs
// finished longer than workflows.retention ago with their artifacts; GC may then take
// the artifacts' blobs.
func TestWorkflowRetention(t *testing.T) {
	s := backends[0].open(t)()
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	startFilesEngine(t, s, engine.ArtifactOptions{Retention: 48 * time.Hour}, now)
	w := trigger(t, s, "files", filesWorkflow)
	r := waitRuns(t, s, w, 1)[0]
	arts, err := s.ListWorkflowArtifacts(t.Context(), r.ID)
	if err != nil || len(arts) != 1 {
		t.Fatalf("artifacts %+v, %v", arts, err)
	}
	kept := arts[0].Digest
	offset.Store(int64(24 * time.Hour)) // within the retention, and within PurgeEvery of the last purge
	time.Sleep(300 * time.Millisecond)
	if _, err := s.GetWorkflowRun(t.Context(), r.ID); err != nil {
		t.Fatalf("a run inside the retention was purged: %v", err)
	}
	offset.Store(int64(49 * time.Hour))
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := s.GetWorkflowRun(t.Context(), r.ID)
		if errors.Is(err, engine.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the run was not purged after the retention: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if arts, err := s.ListWorkflowArtifacts(t.Context(), r.ID); err != nil || len(arts) != 0 {
		t.Fatalf("artifacts of a purged run %+v, %v", arts, err)
	}
	marked, err := s.GCMarkBlobs(t.Context(), time.Now().Add(time.Minute), true)
	if err != nil || !slices.ContainsFunc(marked, func(b metadata.Blob) bool { return b.Digest == kept }) {
		t.Fatalf("GC would not collect the purged artifact's blob: %+v, %v", marked, err)
	}
}

const escapingArtifact = `name: escape
on:
  push:
    repositories: [team/app]
jobs:
  a:
    image: alpine
    artifacts:
      - {name: evil, path: out}
    steps:
      - run: mkdir out && ln -s /etc out/etc
  b:
    needs: [a]
    image: alpine
    steps:
      - run: "true"
`

// TestWorkflowArtifactLinkOut: a job that makes its artifact a way out of the
// workspace (a link to /etc, to be written through by the job that needs it) fails
// when it is saved, naming the link; nothing is stored and the needing job does not
// run.
func TestWorkflowArtifactLinkOut(t *testing.T) {
	s := backends[0].open(t)()
	startFilesEngine(t, s, engine.ArtifactOptions{})
	w := trigger(t, s, "escape", escapingArtifact)
	r := waitRuns(t, s, w, 1)[0]
	j := jobsByName(r)
	if a := j["a"]; a.State != engine.StateFailed || !strings.Contains(a.Error, `symbolic link "out/etc" -> "/etc" points outside the archive`) {
		t.Fatalf("job a %s: %s", a.State, a.Error)
	}
	if b := j["b"]; b.State != engine.StateSkipped {
		t.Fatalf("job b %s", b.State)
	}
	if arts, err := s.ListWorkflowArtifacts(t.Context(), r.ID); err != nil || len(arts) != 0 {
		t.Fatalf("artifacts %+v, %v", arts, err)
	}
}

// TestWorkflowRunArtifactsCap: an artifact that would take the run past
// workflows.artifacts.max_run_size fails its job, and its stored blob is discarded
// (no row of it is left for GC to find, and the bytes are gone).
func TestWorkflowRunArtifactsCap(t *testing.T) {
	s := backends[0].open(t)()
	blobs := startFilesEngine(t, s, engine.ArtifactOptions{MaxRunSize: 10})
	w := trigger(t, s, "files", filesWorkflow)
	r := waitRuns(t, s, w, 1)[0]
	a := jobsByName(r)["a"]
	if a.State != engine.StateFailed || !strings.Contains(a.Error, "artifact dist: the run's artifacts would exceed 10 bytes (workflows.artifacts.max_run_size)") {
		t.Fatalf("job a %s: %s", a.State, a.Error)
	}
	left, err := s.GCMarkBlobs(t.Context(), time.Now().Add(time.Minute), true)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range left {
		if _, err := blobs.Stat(t.Context(), b.Digest, b.Location); err == nil {
			t.Errorf("blob %s (%d bytes) left behind", b.Digest, b.Size)
		}
	}
	if len(left) != 0 {
		t.Fatalf("blob rows left behind: %+v", left)
	}
}

// TestRunRetentionWithoutEngine: RunRetention, what a replica without an engine runs,
// purges the runs finished longer than the retention ago (and keeps the others)
// without any engine purging.
func TestRunRetentionWithoutEngine(t *testing.T) {
	s := backends[0].open(t)()
	w := trigger(t, s, "retained", `name: retained
on:
  push:
    repositories: [team/app]
jobs:
  a:
    image: alpine
    steps:
      - run: echo hi
`)
	startEngine(t, s, "e1", 4) // its own purge keeps runs for the default 30 days
	r := waitRun(t, s, w, "finished", finished)
	// purge runs RunRetention with the clock offset by offset until until holds (or
	// for a second, many rounds, without until).
	purge := func(offset time.Duration, until func() bool) {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			engine.RunRetention(ctx, engine.ArtifactOptions{Store: s, Retention: 48 * time.Hour, PurgeEvery: 20 * time.Millisecond},
				func() time.Time { return time.Now().Add(offset) }, nil)
		}()
		defer func() { cancel(); <-done }()
		if until == nil {
			time.Sleep(time.Second)
			return
		}
		for deadline := time.Now().Add(30 * time.Second); !until(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the run was not purged after the retention")
			}
		}
	}
	purge(24*time.Hour, nil)
	if _, err := s.GetWorkflowRun(t.Context(), r.ID); err != nil {
		t.Fatalf("a run inside the retention was purged: %v", err)
	}
	purge(49*time.Hour, func() bool {
		_, err := s.GetWorkflowRun(t.Context(), r.ID)
		return errors.Is(err, engine.ErrNotFound)
	})
}
