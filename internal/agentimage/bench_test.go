package agentimage

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/agentimage/agentimagetest"
	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/selfimage"
	"github.com/hubctl/hubctl/layering"
)

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkStart is what `hubctl serve` adds to its start: the first start (a cold
// build of the layer, then a publish into empty SQLite + filesystem stores), and a
// restart (the cached layer, a publish that writes nothing), with the CPU time of
// each beside its wall time and the restart's share of the first start.
// AGENT_IMAGE_BINARY names the binary (a real static hubctl); by default a small one.
//
//	CGO_ENABLED=0 go build -o /tmp/hubctl ./cmd/hubctl
//	AGENT_IMAGE_BINARY=/tmp/hubctl go test -run '^$' -bench Start -benchtime 3x ./internal/agentimage/
func BenchmarkStart(b *testing.B) {
	bin := os.Getenv("AGENT_IMAGE_BINARY")
	if bin == "" {
		bin = agentimagetestBinary(b)
	}
	fi, err := os.Stat(bin)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var firstWall, firstCPU, againWall, againCPU time.Duration
	for range b.N {
		dir := b.TempDir()
		st, err := sqlstore.OpenSQLite(ctx, filepath.Join(dir, "hub.db"))
		if err != nil {
			b.Fatal(err)
		}
		blobs, err := blobstore.NewFS(filepath.Join(dir, "blobs"))
		if err != nil {
			b.Fatal(err)
		}
		for i := range 2 {
			w, c := time.Now(), cpuTime()
			cache, err := layering.OpenCache(filepath.Join(dir, "cache"))
			if err != nil {
				b.Fatal(err)
			}
			img, err := Build(ctx, selfimage.WithBinary(bin), selfimage.WithCache(cache))
			if err != nil {
				b.Fatal(err)
			}
			pub, err := Publish(ctx, st, blobs, img, Tag("bench", img.Desc.Digest), nil)
			if err != nil {
				b.Fatal(err)
			}
			dw, dc := time.Since(w), cpuTime()-c
			if i == 0 {
				firstWall, firstCPU = firstWall+dw, firstCPU+dc
			} else {
				againWall, againCPU = againWall+dw, againCPU+dc
				if pub.Blobs != 0 || pub.Manifest {
					b.Fatalf("the restart wrote %+v", pub)
				}
			}
		}
		st.Close()
	}
	n := time.Duration(b.N)
	b.ReportMetric(float64(fi.Size())/(1<<20), "binary-MiB")
	b.ReportMetric(float64((firstWall / n).Milliseconds()), "first-wall-ms")
	b.ReportMetric(float64((firstCPU / n).Milliseconds()), "first-cpu-ms")
	b.ReportMetric(float64((againWall / n).Milliseconds()), "restart-wall-ms")
	b.ReportMetric(float64((againCPU / n).Milliseconds()), "restart-cpu-ms")
	b.ReportMetric(float64(againWall)/float64(firstWall), "restart/first")
}

func agentimagetestBinary(b *testing.B) string { return agentimagetest.StaticBinary(b) }
