// Command tuidemo feeds a synthetic, slow push into tui.Render, to try the views by
// hand (go run ./tui/internal/tuidemo -mode tty) and for the real-terminal test in
// tui/tmux_test.go. It prints "cancelled" and exits 130 when cancelled.
package main

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/hubctl/hubctl/internal/progress"
	"github.com/hubctl/hubctl/tui"
)

func main() {
	mode := flag.String("mode", "auto", "progress mode: auto, tty, plain, quiet, json")
	dur := flag.Duration("duration", 2500*time.Millisecond, "how long the transfer takes")
	flag.Parse()
	m, err := tui.ParseMode(*mode)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan progress.Event, 64)
	go produce(ctx, events, *dur)
	fd := os.Stderr.Fd()
	s := tui.Render(ctx, tui.Options{
		Mode:    m,
		Out:     os.Stdout,
		Err:     os.Stderr,
		IsTTY:   isatty.IsTerminal(fd) || isatty.IsCygwinTerminal(fd),
		NoColor: os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb",
		Verb:    "push",
		// As the commands do: stdin is handed over whatever it is (a terminal, a
		// pipe, /dev/null), and the view decides whether it can read keys from it.
		Input: os.Stdin,
	}, events, cancel)
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "cancelled")
		os.Exit(130)
	}
	if s.Failed > 0 || s.ImagesFailed > 0 {
		os.Exit(1)
	}
}

const image = "127.0.0.1:5000/demo:1"

func digest(s string) string { return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(s))) }

// produce emits one image whose blobs progress at different speeds, finishing one
// after the other over d, as the transfer engine would report them.
func produce(ctx context.Context, ch chan<- progress.Event, d time.Duration) {
	defer close(ch)
	emit := func(e progress.Event) {
		e.Time, e.Image = time.Now(), image
		ch <- e
	}
	emit(progress.Event{Kind: progress.ImageStarted, Source: "oci-layout:./demo"})
	emit(progress.Event{Kind: progress.BlobExists, Digest: digest("base"), Size: 3 << 20})
	emit(progress.Event{Kind: progress.BlobMounted, Digest: digest("shared"), Size: 5 << 20, From: "library/base"})

	type blob struct {
		digest string
		size   int64
		finish time.Duration // when it completes, from the start
		done   bool
	}
	sizes := []int64{48 << 20, 7 << 20, 96 << 20, 2 << 10}
	blobs := make([]*blob, len(sizes))
	for i, size := range sizes {
		blobs[i] = &blob{digest: digest(fmt.Sprint("layer", i)), size: size, finish: d * time.Duration(i+2) / time.Duration(len(sizes)+1)}
		emit(progress.Event{Kind: progress.BlobStarted, Digest: blobs[i].digest, Size: size})
	}

	start := time.Now()
	retried := false
	for left := len(blobs); left > 0; {
		select {
		case <-ctx.Done():
			for _, b := range blobs {
				if !b.done {
					emit(progress.Event{Kind: progress.BlobFailed, Digest: b.digest, Size: b.size, Error: ctx.Err().Error()})
				}
			}
			emit(progress.Event{Kind: progress.ImageFailed, Error: ctx.Err().Error()})
			return
		case <-time.After(50 * time.Millisecond):
		}
		el := time.Since(start)
		if !retried && el > d/3 {
			retried = true
			emit(progress.Event{Kind: progress.Retry, Digest: blobs[2].digest, Attempt: 1, Wait: 200 * time.Millisecond, Error: "503 Service Unavailable"})
		}
		for _, b := range blobs {
			if b.done {
				continue
			}
			if el >= b.finish {
				b.done = true
				left--
				emit(progress.Event{Kind: progress.BlobDone, Digest: b.digest, Size: b.size, Bytes: b.size})
				continue
			}
			n := int64(float64(b.size) * float64(el) / float64(b.finish))
			emit(progress.Event{Kind: progress.BlobProgress, Digest: b.digest, Size: b.size, Bytes: n})
		}
	}
	manifest := digest("manifest")
	emit(progress.Event{Kind: progress.ManifestPushed, Digest: manifest, Size: 1234, Tag: "1"})
	emit(progress.Event{Kind: progress.ImageDone, Digest: manifest})
}
