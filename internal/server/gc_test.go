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
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
)

// TestRunGC: the schedule of serve collects an unreferenced blob within a few intervals.
func TestRunGC(t *testing.T) {
	dir := t.TempDir()
	fs, err := blobstore.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := sqlstore.OpenSQLite(t.Context(), filepath.Join(dir, "hubctl.db"))
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
		runGC(ctx, slog.New(slog.DiscardHandler), config.GC{Interval: 10 * time.Millisecond}, meta, fs, events.NewBus(nil), meta, nil)
	}()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := fs.Stat(t.Context(), d, ""); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the scheduled gc did not collect the blob")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRunGCSkipsWhileLeaseHeld: while another collector (another replica, a hubctl gc)
// holds the GC lease, the schedule logs that it skipped and collects nothing; once the
// lease is released it collects.
func TestRunGCSkipsWhileLeaseHeld(t *testing.T) {
	dir := t.TempDir()
	fs, err := blobstore.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := sqlstore.OpenSQLite(t.Context(), filepath.Join(dir, "hubctl.db"))
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
	if _, ok, err := meta.AcquireGCLease(t.Context(), "other replica", time.Hour); err != nil || !ok {
		t.Fatalf("acquire: %v, %v", ok, err)
	}

	var logs syncBuffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		runGC(ctx, slog.New(slog.NewTextHandler(&logs, nil)), config.GC{Interval: 10 * time.Millisecond}, meta, fs, events.NewBus(nil), meta, nil)
	}()
	defer func() { cancel(); <-done }()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s; logs:\n%s", what, logs.String())
			}
		}
	}
	waitFor("the schedule never logged a skip", func() bool {
		return strings.Contains(logs.String(), `msg="garbage collection skipped: another collection is running" holder="other replica"`)
	})
	if _, err := fs.Stat(t.Context(), d, ""); err != nil {
		t.Fatalf("collected while another collector held the lease: %v", err)
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Fatalf("a skip is not a warning:\n%s", logs.String())
	}
	if err := meta.ReleaseGCLease(t.Context(), "other replica"); err != nil {
		t.Fatal(err)
	}
	waitFor("the schedule did not collect once the lease was released", func() bool {
		_, err := fs.Stat(t.Context(), d, "")
		return err != nil
	})
}
