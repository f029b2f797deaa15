package mirror

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/progress"
)

// recorder is a progress.Sink that keeps the events.
type recorder struct {
	mu     sync.Mutex
	events []progress.Event
}

func (r *recorder) sink(e progress.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// byImage returns "kind source digest error" lines per image, in the order they came.
func (r *recorder) byImage() map[string][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]string{}
	for _, e := range r.events {
		out[e.Image] = append(out[e.Image], strings.TrimSpace(fmt.Sprintf("%s %s %s %s", e.Kind, e.Source, e.Digest, e.Error)))
	}
	return out
}

// statuses returns "target status" for each result.
func statuses(rep *Report) []string {
	var out []string
	for _, r := range rep.Results {
		out = append(out, r.Target+" "+string(r.Status))
	}
	return out
}

func TestRunContinuesPastFailures(t *testing.T) {
	eng := newFakeEngine(registries())
	eng.copyErr["docker.io/library/alpine:3.19"] = errors.New("blob upload: 500")
	eng.listErr["docker.io/library/nginx"] = errors.New("429 too many requests")
	spec := &Spec{Mirrors: []Mirror{
		{Source: "docker.io/library/alpine", Target: "localhost/alpine", Tags: TagFilter{Include: []string{`^3\.`}}},
		{Source: "docker.io/library/nginx", Target: "localhost/nginx"},
		{Source: "ghcr.io/org/app:1.2.3", Target: "localhost/app"},
		{Source: "docker.io/library/alpine:latest", Target: "localhost/alpine:3.9"}, // conflicts with mirrors[0]
	}}
	var rec recorder
	rep, err := Run(context.Background(), spec, eng, RunOptions{Jobs: 2, Sink: rec.sink})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"localhost/alpine:3.9 copied",
		"localhost/alpine:3.19 failed",
		"localhost/alpine:3.20 copied",
		"localhost/app:1.2.3 copied",
		"localhost/alpine:3.9 failed",
	}
	if got := statuses(rep); !slices.Equal(got, want) {
		t.Errorf("results:\n got %q\nwant %q", got, want)
	}
	if got := rep.Results[1]; got.Source != "docker.io/library/alpine:3.19" || got.Err == nil || got.Err.Error() != "blob upload: 500" {
		t.Errorf("failed result: %+v", got)
	}
	if got := rep.Results[2]; got.Digest != digestOf('2') || got.Bytes != 100 || got.UpToDate || got.Entry != 0 {
		t.Errorf("copied result: %+v", got)
	}
	wantTotals := Totals{Copied: 3, Failed: 2, ListFailed: 1, Bytes: 300}
	if rep.Totals != wantTotals {
		t.Errorf("totals = %+v, want %+v", rep.Totals, wantTotals)
	}
	if !rep.Failed() {
		t.Error("Report.Failed() = false")
	}
	if e := rep.Entries[1]; e.Err == nil || !strings.Contains(e.Err.Error(), "429") {
		t.Errorf("listing failure not reported: %+v", e)
	}
	if got := len(eng.copyCalls()); got != 4 {
		t.Errorf("%d copies, want 4 (the conflicting pair is not copied)", got)
	}

	events := rec.byImage()
	wantEvents := map[string][]string{
		"localhost/alpine:3.19": {"image-started docker.io/library/alpine:3.19", "image-failed docker.io/library/alpine:3.19  blob upload: 500"},
		"localhost/app:1.2.3":   {"image-started ghcr.io/org/app:1.2.3", "image-done ghcr.io/org/app:1.2.3 " + digestOf('7')},
	}
	for image, want := range wantEvents {
		if got := events[image]; !slices.Equal(got, want) {
			t.Errorf("events of %s:\n got %q\nwant %q", image, got, want)
		}
	}
	// Two pairs share this target, so their events may interleave.
	conflict := "image-failed docker.io/library/alpine:latest  target localhost/alpine:3.9 is also written from docker.io/library/alpine:3.9 (mirrors[0])"
	if got := events["localhost/alpine:3.9"]; len(got) != 3 || !slices.Contains(got, conflict) {
		t.Errorf("events of the conflicting target: %q", got)
	}
}

func TestRunIdempotent(t *testing.T) {
	eng := newFakeEngine(registries())
	spec := &Spec{Mirrors: []Mirror{{Source: "docker.io/library/nginx", Target: "localhost/nginx"}}}
	first, err := Run(context.Background(), spec, eng, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Totals{Copied: 2, Bytes: 200}); first.Totals != want {
		t.Errorf("first run totals = %+v, want %+v", first.Totals, want)
	}
	var rec recorder
	second, err := Run(context.Background(), spec, eng, RunOptions{Sink: rec.sink})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Totals{UpToDate: 2}); second.Totals != want {
		t.Errorf("second run totals = %+v, want %+v", second.Totals, want)
	}
	for _, r := range second.Results {
		if !r.UpToDate || r.Status != StatusUpToDate || r.Bytes != 0 || r.Digest == "" {
			t.Errorf("second run result: %+v", r)
		}
	}
	if second.Failed() {
		t.Error("Report.Failed() = true")
	}
	if got := rec.byImage()["localhost/nginx:1.27"]; len(got) != 2 || !strings.HasPrefix(got[1], "image-done") {
		t.Errorf("an up-to-date image still ends with image-done: %q", got)
	}
}

func TestRunDryRun(t *testing.T) {
	repos := registries()
	repos["localhost/alpine"] = map[string]string{"3.19": digestOf('1'), "3.20": digestOf('9')}
	eng := newFakeEngine(repos)
	spec := &Spec{Mirrors: []Mirror{
		{Source: "docker.io/library/alpine", Target: "localhost/alpine", Tags: TagFilter{Include: []string{`^3\.`}}},
		{Source: "ghcr.io/org/app:9.9.9", Target: "localhost/app"},
	}}
	var rec recorder
	rep, err := Run(context.Background(), spec, eng, RunOptions{DryRun: true, Sink: rec.sink})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"localhost/alpine:3.9 would copy",
		"localhost/alpine:3.19 up to date",
		"localhost/alpine:3.20 would copy",
		"localhost/app:9.9.9 failed",
	}
	if got := statuses(rep); !slices.Equal(got, want) {
		t.Errorf("results:\n got %q\nwant %q", got, want)
	}
	if calls := eng.copyCalls(); len(calls) != 0 {
		t.Errorf("dry run copied: %q", calls)
	}
	if len(rec.events) != 0 {
		t.Errorf("dry run sent events: %+v", rec.events)
	}
	if r := rep.Results[1]; !r.UpToDate || r.Digest != digestOf('1') {
		t.Errorf("up-to-date result: %+v", r)
	}
	if r := rep.Results[2]; r.UpToDate || r.Digest != digestOf('2') {
		t.Errorf("would-copy result carries the source digest: %+v", r)
	}
	if r := rep.Results[3]; !errors.Is(r.Err, ErrNotFound) || !strings.HasPrefix(r.Err.Error(), "resolve source: ") {
		t.Errorf("missing source: %v", r.Err)
	}
	if want := (Totals{UpToDate: 1, WouldCopy: 2, Failed: 1}); rep.Totals != want || !rep.DryRun {
		t.Errorf("totals = %+v (dry run %v), want %+v", rep.Totals, rep.DryRun, want)
	}
}

// digestErrEngine fails Digest for targets with an error other than ErrNotFound.
type digestErrEngine struct{ *fakeEngine }

func (e digestErrEngine) Digest(ctx context.Context, ref string) (string, error) {
	if strings.HasPrefix(ref, "localhost/") {
		return "", errors.New("403 denied")
	}
	return e.fakeEngine.Digest(ctx, ref)
}

func TestRunDryRunTargetError(t *testing.T) {
	eng := digestErrEngine{newFakeEngine(registries())}
	spec := &Spec{Mirrors: []Mirror{{Source: "ghcr.io/org/app:1.2.3", Target: "localhost/app"}}}
	rep, err := Run(context.Background(), spec, eng, RunOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if r := rep.Results[0]; r.Status != StatusFailed || r.Err.Error() != "resolve target: 403 denied" {
		t.Errorf("result: %+v", r)
	}
}

// manyTags is a registry with one repository of n tags.
func manyTags(n int) map[string]map[string]string {
	tags := map[string]string{}
	for i := range n {
		tags[fmt.Sprintf("1.0.%d", i)] = digestOf(byte('a' + i%6))
	}
	return map[string]map[string]string{"docker.io/org/many": tags}
}

func TestRunConcurrencyBound(t *testing.T) {
	for _, tc := range []struct{ jobs, want int }{{0, DefaultJobs}, {3, 3}, {MaxJobs + 10, MaxJobs}} {
		t.Run(fmt.Sprint(tc.jobs), func(t *testing.T) {
			n := MaxJobs + 8
			eng := newFakeEngine(manyTags(n))
			eng.gate = make(chan struct{})
			eng.started = make(chan string, n)
			spec := &Spec{Mirrors: []Mirror{{Source: "docker.io/org/many", Target: "localhost/many"}}}
			done := make(chan *Report)
			go func() {
				rep, err := Run(context.Background(), spec, eng, RunOptions{Jobs: tc.jobs})
				if err != nil {
					t.Error(err)
				}
				done <- rep
			}()
			for range tc.want {
				<-eng.started
			}
			// A correct bound never lets another copy start while all are held.
			select {
			case src := <-eng.started:
				t.Fatalf("copy of %s started beyond the bound of %d", src, tc.want)
			case <-time.After(50 * time.Millisecond):
			}
			close(eng.gate)
			rep := <-done
			if rep.Totals.Copied != n {
				t.Errorf("copied %d of %d", rep.Totals.Copied, n)
			}
			if eng.maxSeen != tc.want {
				t.Errorf("at most %d copies in flight, want %d", eng.maxSeen, tc.want)
			}
		})
	}
}

func TestRunCanceled(t *testing.T) {
	const n = 6
	eng := newFakeEngine(manyTags(n))
	eng.gate = make(chan struct{})
	eng.started = make(chan string, n)
	spec := &Spec{Mirrors: []Mirror{{Source: "docker.io/org/many", Target: "localhost/many"}}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var rec recorder
	type result struct {
		rep *Report
		err error
	}
	done := make(chan result)
	go func() {
		rep, err := Run(ctx, spec, eng, RunOptions{Jobs: 2, Sink: rec.sink})
		done <- result{rep, err}
	}()
	<-eng.started
	<-eng.started
	cancel()
	var res result
	select {
	case res = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancellation")
	}
	if !errors.Is(res.err, context.Canceled) {
		t.Fatalf("Run error = %v, want context.Canceled", res.err)
	}
	if got := len(eng.copyCalls()); got != 2 {
		t.Errorf("%d copies started, want only the 2 in flight", got)
	}
	rep := res.rep
	if rep == nil || len(rep.Results) != n {
		t.Fatalf("report: %+v", rep)
	}
	for _, r := range rep.Results {
		if r.Status != StatusCanceled || !errors.Is(r.Err, context.Canceled) || r.Target == "" {
			t.Errorf("result after cancel: %+v", r)
		}
	}
	if rep.Totals.Canceled != n || !rep.Failed() {
		t.Errorf("totals = %+v, Failed() = %v", rep.Totals, rep.Failed())
	}
	var started, failed int
	for _, e := range rec.events {
		switch e.Kind {
		case progress.ImageStarted:
			started++
		case progress.ImageFailed:
			failed++
		}
	}
	if started != 2 || failed != 2 {
		t.Errorf("%d image-started and %d image-failed events, want 2 and 2", started, failed)
	}
}

func TestRunInvalidSpec(t *testing.T) {
	rep, err := Run(context.Background(), &Spec{}, newFakeEngine(nil), RunOptions{})
	if rep != nil || err == nil || !strings.Contains(err.Error(), "at least one entry") {
		t.Errorf("Run(empty spec) = %v, %v", rep, err)
	}
}

// The Tally of the progress package, fed the mirror's events, agrees with the Report.
func TestRunEventsTally(t *testing.T) {
	eng := newFakeEngine(registries())
	eng.copyErr["docker.io/library/nginx:1.26"] = errors.New("boom")
	spec := &Spec{Mirrors: []Mirror{{Source: "docker.io/library/nginx", Target: "localhost/nginx"}}}
	tally := progress.NewTally()
	rep, err := Run(context.Background(), spec, eng, RunOptions{Sink: tally.Add})
	if err != nil {
		t.Fatal(err)
	}
	s := tally.Summary()
	if s.Images != rep.Totals.Copied+rep.Totals.UpToDate || s.ImagesFailed != rep.Totals.Failed {
		t.Errorf("tally %+v disagrees with totals %+v", s, rep.Totals)
	}
	if len(s.FailedImages) != 1 || s.FailedImages[0].Image != "localhost/nginx:1.26" {
		t.Errorf("failed images: %+v", s.FailedImages)
	}
}
