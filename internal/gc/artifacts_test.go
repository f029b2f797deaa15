package gc_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/gc"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/workflow/engine"
)

// TestRunKeepsWorkflowFiles: the blobs of workflow artifacts and caches are roots of
// the collection while their rows exist; once the run is purged (and the cache
// evicted by a larger one), a collection reclaims them.
func TestRunKeepsWorkflowFiles(t *testing.T) {
	e := newEnv(t, false)
	ctx := t.Context()
	s := e.meta.(*sqlstore.Store)
	w, err := s.ApplyWorkflow(ctx, "team", "files", []byte(`name: files
on:
  push:
    repositories: [team/app]
jobs:
  a:
    image: alpine
    steps:
      - run: "true"
`), 1, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendEvent(ctx, events.Event{Type: events.ManifestPushed, Repository: "team/app", Tag: "v1",
		Digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DispatchWorkflows(ctx, 0, func(w engine.Workflow, ev events.Event) (*engine.PlannedRun, error) {
		return engine.Plan(w, ev)
	}); err != nil {
		t.Fatal(err)
	}
	claims, err := s.ClaimWorkflowJobs(ctx, "e1", 1, time.Minute)
	if err != nil || len(claims) != 1 {
		t.Fatalf("claim %+v, %v", claims, err)
	}
	c := claims[0]
	store := func(content []byte) (digest.Digest, time.Time) {
		t.Helper()
		d := digest.FromBytes(content)
		pinned, err := s.PinBlob(ctx, d, int64(len(content)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.blobs.Put(ctx, d, bytes.NewReader(content), int64(len(content))); err != nil {
			t.Fatal(err)
		}
		return d, pinned
	}
	art, pinned := store(content("artifact", 3000))
	if err := s.AddWorkflowArtifact(ctx, engine.Artifact{RunID: c.Run.ID, JobID: c.Job.ID, Name: "dist", Path: "dist",
		Digest: art, Size: 3000}, "e1", pinned, 1<<20); err != nil {
		t.Fatal(err)
	}
	cache, pinned := store(content("cache", 2000))
	if _, err := s.AddWorkflowCache(ctx, engine.Cache{WorkflowID: w.ID, Key: "k1", Digest: cache, Size: 2000}, pinned, 4000); err != nil {
		t.Fatal(err)
	}
	rep, err := gc.Run(ctx, gc.Options{Meta: e.meta, Blobs: e.blobs})
	if err != nil {
		t.Fatal(err)
	}
	if !e.stored(art) || !e.stored(cache) || rep.Swept != 0 {
		t.Fatalf("GC took workflow files: %+v", rep)
	}

	if err := s.FinishWorkflowJob(ctx, c.Job.ID, "e1", engine.Finish{State: engine.StateSucceeded}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PurgeWorkflowRuns(ctx, time.Now().Add(time.Minute), 0); err != nil || n != 1 {
		t.Fatalf("purged %d, %v", n, err)
	}
	bigger, pinned := store(content("bigger cache", 3500)) // 2000 + 3500 > 4000: k1 is evicted
	if _, err := s.AddWorkflowCache(ctx, engine.Cache{WorkflowID: w.ID, Key: "k2", Digest: bigger, Size: 3500}, pinned, 4000); err != nil {
		t.Fatal(err)
	}
	rep, err = gc.Run(ctx, gc.Options{Meta: e.meta, Blobs: e.blobs})
	if err != nil {
		t.Fatal(err)
	}
	if e.stored(art) || e.stored(cache) || !e.stored(bigger) || rep.Swept != 2 {
		t.Fatalf("after the purge and the eviction: %+v (artifact kept %v, old cache kept %v, new cache kept %v)",
			rep, e.stored(art), e.stored(cache), e.stored(bigger))
	}
}
