package server

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/config"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/metadata/sqlite"
)

// TestRunGC: the schedule of serve collects an unreferenced blob within a few intervals.
func TestRunGC(t *testing.T) {
	dir := t.TempDir()
	fs, err := blobstore.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := sqlite.Open(t.Context(), filepath.Join(dir, "hubctl.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	body := "garbage"
	d := digest.FromString(body)
	if _, err := fs.Put(t.Context(), d, strings.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}
	if err := meta.PutBlob(t.Context(), metadata.Blob{Digest: d, Size: int64(len(body))}); err != nil {
		t.Fatal(err)
	}
	if err := meta.LinkBlob(t.Context(), "app", d); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		runGC(ctx, slog.New(slog.DiscardHandler), config.GC{Interval: 10 * time.Millisecond}, meta, fs)
	}()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := fs.Stat(t.Context(), d); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the scheduled gc did not collect the blob")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
