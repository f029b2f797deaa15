package sqlstore

import (
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/metadata"
	wfengine "github.com/hubctl/hubctl/internal/workflow/engine"
)

const oneJobWorkflow = `name: one
on:
  push:
    repositories: [team/app]
jobs:
  build:
    image: alpine
    artifacts:
      - {name: dist, path: dist}
    steps:
      - run: echo build
`

// storedBlob pins a blob of content as the engine does before storing its bytes.
func storedBlob(t *testing.T, s *Store, content string) (digest.Digest, time.Time) {
	t.Helper()
	d := digest.FromString(content)
	pinned, err := s.PinBlob(t.Context(), d, int64(len(content)))
	if err != nil {
		t.Fatal(err)
	}
	return d, pinned
}

func markedDigests(t *testing.T, s *Store) []digest.Digest {
	t.Helper()
	bs, err := s.GCMarkBlobs(t.Context(), time.Now().Add(time.Minute), true)
	if err != nil {
		t.Fatal(err)
	}
	var out []digest.Digest
	for _, b := range bs {
		out = append(out, b.Digest)
	}
	return out
}

// TestWorkflowArtifacts: an artifact is recorded only for the job run's owner while it
// runs, within the run's cap, replaced by the same name; its blob is a GC root while
// the row exists and collectable once the run is purged.
func TestWorkflowArtifacts(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s, _ := openFresh(t, b)
		ctx := t.Context()
		w, err := s.ApplyWorkflow(ctx, "team", "one", []byte(oneJobWorkflow), 7, "alice")
		if err != nil {
			t.Fatal(err)
		}
		pushEvent(t, s, "team/app", "v1")
		if _, err := s.DispatchWorkflows(ctx, 0, plan(t)); err != nil {
			t.Fatal(err)
		}
		claims, err := s.ClaimWorkflowJobs(ctx, "e1", 4, 30*time.Second)
		if err != nil || len(claims) != 1 {
			t.Fatalf("claim %+v, %v", claims, err)
		}
		c := claims[0]
		d1, pin1 := storedBlob(t, s, "first artifact")
		a := wfengine.Artifact{RunID: c.Run.ID, JobID: c.Job.ID, Name: "dist", Path: "dist", Digest: d1, Size: 100}
		if err := s.AddWorkflowArtifact(ctx, a, "e2", pin1, 1000); !errors.Is(err, wfengine.ErrLost) {
			t.Fatalf("an artifact of another engine's job: %v", err)
		}
		other := a
		other.JobID = 999999
		if err := s.AddWorkflowArtifact(ctx, other, "e1", pin1, 1000); !errors.Is(err, wfengine.ErrLost) {
			t.Fatalf("an artifact of a job run not in the run: %v", err)
		}
		if err := s.AddWorkflowArtifact(ctx, a, "e1", pin1, 1000); err != nil {
			t.Fatal(err)
		}
		big := a
		big.Name, big.Size = "big", 901
		if err := s.AddWorkflowArtifact(ctx, big, "e1", pin1, 1000); !errors.Is(err, wfengine.ErrTooLarge) {
			t.Fatalf("past the run's cap: %v", err)
		}
		// Replacing dist does not count its old size against the cap.
		d2, pin2 := storedBlob(t, s, "second artifact")
		a.Digest, a.Size = d2, 900
		if err := s.AddWorkflowArtifact(ctx, a, "e1", pin2, 1000); err != nil {
			t.Fatal(err)
		}
		list, err := s.ListWorkflowArtifacts(ctx, c.Run.ID)
		if err != nil || len(list) != 1 {
			t.Fatalf("list %+v, %v", list, err)
		}
		if got := list[0]; got.Name != "dist" || got.Digest != d2 || got.Size != 900 || got.Job != "build" || got.Path != "dist" {
			t.Fatalf("artifact %+v", got)
		}
		// d2 is named by the row: GC would not mark it; d1 is named by nothing.
		marked := markedDigests(t, s)
		if slices.Contains(marked, d2) || !slices.Contains(marked, d1) {
			t.Fatalf("GC would mark %v (artifact %s, replaced %s)", marked, d2, d1)
		}
		if n, err := s.GCMarkBlobs(ctx, time.Now().Add(time.Minute), false); err != nil || slices.ContainsFunc(n, func(b metadata.Blob) bool { return b.Digest == d2 }) {
			t.Fatalf("marked %+v, %v", n, err)
		}
		// A blob GC marked since the pin is not recorded.
		if err := s.AddWorkflowArtifact(ctx, wfengine.Artifact{RunID: c.Run.ID, JobID: c.Job.ID, Name: "late", Path: "x", Digest: d1, Size: 1},
			"e1", pin1, 1000); !errors.Is(err, metadata.ErrBlobReclaimed) {
			t.Fatalf("an artifact of a reclaimed blob: %v", err)
		}

		if err := s.FinishWorkflowJob(ctx, c.Job.ID, "e1", wfengine.Finish{State: wfengine.StateSucceeded}); err != nil {
			t.Fatal(err)
		}
		if n, err := s.PurgeWorkflowRuns(ctx, time.Now().Add(time.Minute), 0); err != nil || n != 1 {
			t.Fatalf("purged %d, %v", n, err)
		}
		if list, err := s.ListWorkflowArtifacts(ctx, c.Run.ID); err != nil || len(list) != 0 {
			t.Fatalf("artifacts of a purged run %+v, %v", list, err)
		}
		if marked := markedDigests(t, s); !slices.Contains(marked, d2) {
			t.Fatalf("the purged run's artifact blob is not collectable: %v", marked)
		}
		_ = w
	})
}

// TestWorkflowCaches: a key keeps its first cache (immutable), use moves it to the
// front, and caches beyond the workflow's total are evicted least recently used
// first; a cache's blob is a GC root while its row exists.
func TestWorkflowCaches(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s, _ := openFresh(t, b)
		ctx := t.Context()
		w, err := s.ApplyWorkflow(ctx, "team", "one", []byte(oneJobWorkflow), 7, "alice")
		if err != nil {
			t.Fatal(err)
		}
		add := func(key, content string, size int64) (bool, digest.Digest) {
			t.Helper()
			d, pinned := storedBlob(t, s, content)
			ok, err := s.AddWorkflowCache(ctx, wfengine.Cache{WorkflowID: w.ID, Key: key, Digest: d, Size: size}, pinned, 100)
			if err != nil {
				t.Fatal(err)
			}
			return ok, d
		}
		keys := func() []string {
			t.Helper()
			cs, err := s.ListWorkflowCaches(ctx, w.ID)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, c := range cs {
				out = append(out, c.Key+":"+strconv.FormatInt(c.Size, 10))
			}
			return out
		}
		if _, err := s.UseWorkflowCache(ctx, w.ID, "k1"); !errors.Is(err, wfengine.ErrNotFound) {
			t.Fatalf("no cache yet: %v", err)
		}
		ok, d1 := add("k1", "one", 40)
		if !ok {
			t.Fatal("first cache of k1 not added")
		}
		if ok, _ := add("k1", "one again", 10); ok {
			t.Fatal("a second cache of k1 replaced the first")
		}
		c, err := s.UseWorkflowCache(ctx, w.ID, "k1")
		if err != nil || c.Digest != d1 || c.Size != 40 {
			t.Fatalf("use k1: %+v, %v", c, err)
		}
		time.Sleep(2 * time.Millisecond)
		add("k2", "two", 40)
		time.Sleep(2 * time.Millisecond)
		if _, err := s.UseWorkflowCache(ctx, w.ID, "k1"); err != nil { // k1 is now the most recent
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
		add("k3", "three", 40) // 120 > 100: k2, the least recently used, goes
		if got := keys(); !slices.Equal(got, []string{"k3:40", "k1:40"}) {
			t.Fatalf("caches after eviction %v", got)
		}
		if marked := markedDigests(t, s); slices.Contains(marked, d1) {
			t.Fatalf("GC would take the blob of a kept cache: %v", marked)
		}
		if marked := markedDigests(t, s); !slices.Contains(marked, digest.FromString("two")) {
			t.Fatalf("the evicted cache's blob is not collectable: %v", marked)
		}
	})
}
