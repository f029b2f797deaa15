package deploy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hubctl/hubctl/internal/safetext"
)

// LogSource is a host whose containers' logs can be read (dockerhost.Host).
type LogSource interface {
	Name() string
	// RunningTasks lists the service's running tasks on the host.
	RunningTasks(ctx context.Context, service string) ([]Container, error)
	// Logs copies a container's logs (the last tail lines, "all" for every one) to
	// stdout and stderr, following them until the container ends or ctx does.
	Logs(ctx context.Context, container, tail string, follow bool, stdout, stderr io.Writer) error
}

// FollowPoll is how often FollowLogs looks for tasks started since it began.
const FollowPoll = time.Second

// maxLogLine bounds one line FollowLogs holds before it writes it out anyway.
const maxLogLine = 64 << 10

// FollowLogs streams the logs of every task of service on every host to out, each
// line prefixed with HOST/TASK, until ctx ends. Tasks found at the start show
// their last tail lines first; a task that starts later (a deploy replacing one
// mid-follow) is picked up within poll and shown from its first line. A host that
// cannot be listed is reported on out and tried again.
func FollowLogs(ctx context.Context, hosts []LogSource, service, tail string, out io.Writer, poll time.Duration) error {
	if poll <= 0 {
		poll = FollowPoll
	}
	var (
		mu       sync.Mutex // out, and following
		wg       sync.WaitGroup
		first    = true
		reported = map[string]string{}
	)
	following := map[string]bool{} // container IDs being followed
	defer wg.Wait()
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		for _, h := range hosts {
			tasks, err := h.RunningTasks(ctx, service)
			if ctx.Err() != nil {
				return nil
			}
			mu.Lock()
			if err != nil {
				if msg := err.Error(); reported[h.Name()] != msg {
					reported[h.Name()] = msg
					fmt.Fprintf(out, "%s: %s\n", safetext.Escape(h.Name()), safetext.Escape(msg))
				}
				mu.Unlock()
				continue
			}
			delete(reported, h.Name())
			for _, c := range tasks {
				if following[c.ID] {
					continue
				}
				following[c.ID] = true
				from := "all"
				if first {
					from = tail
				}
				w := &prefixWriter{mu: &mu, out: out, prefix: safetext.Escape(h.Name()+"/"+c.Name) + " | "}
				wg.Add(1)
				go func() {
					defer wg.Done()
					err := h.Logs(ctx, c.ID, from, true, w, w)
					mu.Lock()
					w.flushLocked()
					if err != nil && ctx.Err() == nil {
						fmt.Fprintf(out, "%s: %s\n", w.prefix[:len(w.prefix)-3], safetext.Escape(err.Error()))
					}
					// Not forgotten: a container that ended is not followed again (its
					// ID is never reused), and one that runs again is a new task.
					mu.Unlock()
				}()
			}
			mu.Unlock()
		}
		first = false
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// prefixWriter writes whole lines to out, each after prefix; lines of several
// writers sharing mu never interleave.
type prefixWriter struct {
	mu     *sync.Mutex
	out    io.Writer
	prefix string
	buf    []byte
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			if len(w.buf) > maxLogLine {
				w.writeLocked(w.buf)
				w.buf = w.buf[:0]
			}
			return len(p), nil
		}
		w.writeLocked(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
}

func (w *prefixWriter) flushLocked() {
	if len(w.buf) > 0 {
		w.writeLocked(w.buf)
		w.buf = nil
	}
}

func (w *prefixWriter) writeLocked(line []byte) {
	_, _ = io.WriteString(w.out, w.prefix)
	_, _ = w.out.Write(line)
	_, _ = io.WriteString(w.out, "\n")
}
