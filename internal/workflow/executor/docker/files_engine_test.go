package docker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/workflow/engine"
)

// TestEngineArtifactsOnDocker: the engine with this executor passes job a's artifact
// to job b through the hub's blob store and saves a's cache under its key, on the
// real engine.
func TestEngineArtifactsOnDocker(t *testing.T) {
	x, img := newEngine(t)
	s, err := sqlstore.OpenSQLite(t.Context(), t.TempDir()+"/meta.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	blobs, err := blobstore.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key := "docker-" + randomID(t)
	// The engine keys the volume by namespace, workflow and key (JobIDPrefix is "").
	volume := cacheName("team/files\n" + key)
	removeCacheAtEnd(t, x, "team/files\n"+key)
	src := `name: files
on:
  push:
    repositories: [team/app]
jobs:
  a:
    image: ` + img + `
    artifacts:
      - {name: dist, path: out/dist}
    cache:
      key: ` + key + `
    steps:
      - run: mkdir -p out/dist && echo alpha > out/dist/a.txt && echo kept > "$HUBCTL_CACHE/c"
  b:
    needs: [a]
    image: ` + img + `
    outputs: [got]
    steps:
      - run: echo "[JOB_OUT] got = $(cat out/dist/a.txt)"
`
	w, err := s.ApplyWorkflow(t.Context(), "team", "files", []byte(src), 1, "admin")
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(engine.Options{Store: s, Executor: x, Interval: 100 * time.Millisecond,
		MayPull:   func(context.Context, int64, string) (bool, error) { return true, nil },
		Artifacts: engine.ArtifactOptions{Store: s, Blobs: blobs, TempDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if _, err := s.AppendEvent(t.Context(), events.Event{Type: events.ManifestPushed, Repository: "team/app", Tag: "v1",
		Digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	var run engine.Run
	for {
		runs, err := s.ListWorkflowRuns(t.Context(), w.ID, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) == 1 && runs[0].FinishedAt != (time.Time{}) {
			if run, err = s.GetWorkflowRun(t.Context(), runs[0].ID); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the run did not finish")
		}
		time.Sleep(200 * time.Millisecond)
	}
	var msgs []string
	for _, j := range run.Jobs {
		msgs = append(msgs, j.Display+": "+j.State+" "+j.Error)
		if j.Display == "b" && j.Outputs["got"] != "alpha" {
			t.Errorf("b read %q from a's artifact", j.Outputs["got"])
		}
	}
	if run.State != engine.StateSucceeded {
		t.Fatalf("run %s: %s", run.State, strings.Join(msgs, "; "))
	}
	if caches, err := s.ListWorkflowCaches(t.Context(), w.ID); err != nil || len(caches) != 1 || caches[0].Key != key {
		t.Fatalf("caches %+v, %v", caches, err)
	}
	// The volume the cleanup removes is the one the run made (else the test leaks it).
	v, err := x.api.VolumeInspect(t.Context(), volume, client.VolumeInspectOptions{})
	if err != nil {
		t.Fatalf("the cache volume %s: %v", volume, err)
	}
	if l := v.Volume.Labels; l[LabelWorkflow] != "files" || l[LabelNamespace] != "team" || l[LabelRole] != "cache" {
		t.Fatalf("cache volume labels %v", l)
	}
}
