package gc_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/gc"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
)

// BenchmarkCollect10000 measures one collection over 10,000 blobs on the filesystem and
// SQLite: half unlinked, half linked but referenced by no manifest, so phase 2 unlinks
// those too and all 10,000 are swept — more work than the case (half garbage,
// asked to finish under 30 s).
//
//	go test -run XXX -bench Collect10000 -benchtime 1x ./internal/gc
func BenchmarkCollect10000(b *testing.B) {
	ctx := context.Background()
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		blobs, err := blobstore.NewFS(dir + "/data")
		if err != nil {
			b.Fatal(err)
		}
		meta, err := sqlstore.OpenSQLite(ctx, dir+"/db")
		if err != nil {
			b.Fatal(err)
		}
		const n = 10000
		for i := range n {
			content := []byte(fmt.Sprintf("blob %d", i))
			d := digest.FromBytes(content)
			pinned, err := meta.PinBlob(ctx, d, int64(len(content)))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := blobs.Put(ctx, d, bytes.NewReader(content), int64(len(content))); err != nil {
				b.Fatal(err)
			}
			if _, err := meta.CommitBlob(ctx, "bench/app", metadata.Blob{Digest: d, Size: int64(len(content))}, pinned); err != nil {
				b.Fatal(err)
			}
			if i%2 == 0 {
				if err := meta.UnlinkBlob(ctx, "bench/app", d); err != nil {
					b.Fatal(err)
				}
			}
		}
		rep := timedCollection(b, gc.Options{Meta: meta, Blobs: blobs})
		// The other half is linked but referenced by no manifest: phase 2 unlinks it
		// too, so every blob goes with grace 0.
		if rep.Swept != n {
			b.Fatalf("swept %d of %d: %+v", rep.Swept, n, rep)
		}
		meta.Close()
	}
}

// timedCollection runs one collection with o as the timed part of a benchmark iteration
// (the timer is stopped before and after) and reports its seconds as s/collection.
func timedCollection(b *testing.B, o gc.Options) gc.Report {
	b.Helper()
	b.StartTimer()
	start := time.Now()
	rep, err := gc.Run(context.Background(), o)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(time.Since(start).Seconds(), "s/collection")
	b.StopTimer()
	return rep
}
