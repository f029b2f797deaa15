package gc_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/gc"
	"github.com/hubctl/hubctl/internal/metadata"
)

// gatedMeta holds a run inside its collection: GCMarkBlobs (a committed transaction,
// so no lock is held meanwhile) waits until gate closes. Only a run holding the lease
// gets that far.
type gatedMeta struct {
	metadata.Store
	gate    chan struct{}
	reached chan struct{} // closed when a run first reaches the gate
	once    sync.Once
}

func newGatedMeta(s metadata.Store) *gatedMeta {
	return &gatedMeta{Store: s, gate: make(chan struct{}), reached: make(chan struct{})}
}

func (g *gatedMeta) GCMarkBlobs(ctx context.Context, before time.Time, dryRun bool) ([]metadata.Blob, error) {
	out, err := g.Store.GCMarkBlobs(ctx, before, dryRun)
	g.once.Do(func() { close(g.reached) })
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return out, err
}

func TestConcurrentRuns(t *testing.T)         { testConcurrentRuns(t, false) }
func TestConcurrentRunsPostgres(t *testing.T) { testConcurrentRuns(t, true) }

// testConcurrentRuns starts three collections at once, as three replicas' schedules
// (or a schedule and a hubctl gc) would, in rounds, while images are pushed and
// deleted: in each round exactly one collects and the others are told who does, and at
// the end every kept image is intact.
func testConcurrentRuns(t *testing.T, pg bool) {
	e := newEnv(t, pg)
	ctx := t.Context()
	layers := [][]byte{content("shared a", 8192), content("shared b", 8193), content("shared c", 8194)}

	stop := make(chan struct{})
	var (
		mu     sync.Mutex
		kept   []image
		pushed atomic.Int64
		errs   = make(chan error, 4)
		wg     sync.WaitGroup
	)
	for g := range 2 {
		wg.Go(func() {
			repo := fmt.Sprintf("conc/p%d", g)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				tag := fmt.Sprintf("t%d", i)
				cfg := content(fmt.Sprintf("config %d/%d", g, i%4), 200)
				var img image
				var err error
				// A push may fail when a collection unlinks a blob between its upload and
				// the manifest (grace 0): the client is told and pushes again.
				for try := 0; ; try++ {
					if img, err = e.pushImage(repo, tag, cfg, [][]byte{layers[(g+i)%3]}, i%2 == 0); err == nil {
						break
					}
					if try == 1000 {
						errs <- fmt.Errorf("push %s:%s: %v", repo, tag, err)
						return
					}
				}
				pushed.Add(1)
				if i%2 == 0 {
					mu.Lock()
					kept = append(kept, img)
					mu.Unlock()
					continue
				}
				if _, err := e.want(http.StatusAccepted, http.MethodDelete, "/v2/"+repo+"/manifests/"+tag, nil); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	stopPushers := sync.OnceFunc(func() {
		close(stop)
		wg.Wait()
	})
	defer stopPushers()

	const rounds, runs = 3, 3
	for round := range rounds {
		// Garbage no pusher touches, so the winner has something to sweep.
		garbage := content(fmt.Sprintf("garbage of round %d", round), 1000)
		if err := e.pushBlob("conc/garbage", garbage, false); err != nil {
			t.Fatal(err)
		}
		gm := newGatedMeta(e.meta)
		type result struct {
			holder string
			rep    gc.Report
			err    error
		}
		results := make(chan result, runs)
		start := make(chan struct{})
		var runners sync.WaitGroup
		for i := range runs {
			runners.Go(func() {
				<-start
				h := fmt.Sprintf("replica %d", i)
				rep, err := gc.Run(ctx, gc.Options{Meta: gm, Blobs: e.blobs, Grace: 0, Untagged: true, Holder: h})
				results <- result{h, rep, err}
			})
		}
		close(start)
		// The losers return while the winner is held inside its collection: they did
		// not wait for it, and it did not finish before they tried.
		var skipped []result
		for range runs - 1 {
			r := <-results
			var busy *gc.BusyError
			if !errors.As(r.err, &busy) || !errors.Is(r.err, gc.ErrBusy) {
				t.Fatalf("round %d: %s returned %+v, %v; want a *BusyError while another run collects", round, r.holder, r.rep, r.err)
			}
			if !empty(r.rep) {
				t.Fatalf("round %d: skipped run %s reports work %+v", round, r.holder, r.rep)
			}
			skipped = append(skipped, r)
		}
		<-gm.reached
		// Let pushes (and deletes) go on while the winner is inside its collection.
		for before, deadline := pushed.Load(), time.Now().Add(time.Minute); pushed.Load() < before+3; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: no pushes went through while a collection held the lease", round)
			}
		}
		close(gm.gate)
		runners.Wait()
		close(results)
		win := <-results
		if win.err != nil {
			t.Fatalf("round %d: the collecting run %s: %v", round, win.holder, win.err)
		}
		for _, r := range skipped {
			var busy *gc.BusyError
			errors.As(r.err, &busy)
			if !strings.HasPrefix(busy.Lease.Holder, win.holder+" on ") {
				t.Errorf("round %d: %s was told the holder is %q, want the winner %s", round, r.holder, busy.Lease.Holder, win.holder)
			}
		}
		if win.rep.Swept == 0 {
			t.Errorf("round %d: the collecting run swept nothing: %+v", round, win.rep)
		}
		if e.stored(digest.FromBytes(garbage)) {
			t.Errorf("round %d: garbage survived", round)
		}
		// The winner released the lease: a run now gets it.
		if _, err := gc.Run(ctx, gc.Options{Meta: e.meta, Blobs: e.blobs, Grace: 0, Holder: "after round"}); err != nil {
			t.Fatalf("round %d: run after the round: %v", round, err)
		}
	}
	stopPushers()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if _, err := gc.Run(ctx, gc.Options{Meta: e.meta, Blobs: e.blobs, Grace: 0}); err != nil {
		t.Fatal(err)
	}
	for _, img := range kept {
		if err := e.verify(img); err != nil {
			t.Errorf("kept image lost data: %v", err)
		}
	}
	t.Logf("%d images pushed, %d kept and verified", pushed.Load(), len(kept))
}

// TestRunWait: with Wait, a run that finds the lease held waits for the holder to
// finish, then collects.
func TestRunWait(t *testing.T) {
	e := newEnv(t, false)
	ctx := t.Context()
	if _, ok, err := e.meta.AcquireGCLease(ctx, "someone else", time.Hour); err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	loose := content("loose", 1000)
	if err := e.pushBlob("app", loose, false); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := gc.Run(ctx, gc.Options{Meta: e.meta, Blobs: e.blobs, Grace: 0, Wait: true})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a waiting run returned while the lease was held: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if !e.stored(digest.FromBytes(loose)) {
		t.Fatal("collected while another collector held the lease")
	}
	if err := e.meta.ReleaseGCLease(ctx, "someone else"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if e.stored(digest.FromBytes(loose)) {
		t.Fatal("the waiting run did not collect")
	}

	// A waiting run gives up when its context ends, saying what it waited for.
	if _, ok, err := e.meta.AcquireGCLease(ctx, "someone else", time.Hour); err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err := gc.Run(wctx, gc.Options{Meta: e.meta, Blobs: e.blobs, Grace: 0, Wait: true})
	if !errors.Is(err, gc.ErrBusy) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting run with an ended context = %v, want busy and deadline exceeded", err)
	}
}

// TestRunRenewsLease: a run longer than the lease's TTL keeps the lease by renewing
// it, so nobody takes it over meanwhile; a run that loses the lease stops.
func TestRunRenewsLease(t *testing.T) {
	e := newEnv(t, false)
	ctx := t.Context()
	gm := newGatedMeta(e.meta)
	const ttl = 500 * time.Millisecond
	done := make(chan error, 1)
	go func() {
		_, err := gc.Run(ctx, gc.Options{Meta: gm, Blobs: e.blobs, Grace: 0, LeaseTTL: ttl, Holder: "long"})
		done <- err
	}()
	<-gm.reached
	time.Sleep(3 * ttl)
	_, err := gc.Run(ctx, gc.Options{Meta: e.meta, Blobs: e.blobs, Grace: 0, Holder: "other"})
	if !errors.Is(err, gc.ErrBusy) {
		t.Fatalf("run while a long run holds the lease = %v, want busy: the lease was not renewed", err)
	}
	close(gm.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Take the lease from under a run (as a collector would after it expired unrenewed):
	// the run stops with ErrLeaseLost at its next renewal.
	gm = newGatedMeta(e.meta)
	go func() {
		_, err := gc.Run(ctx, gc.Options{Meta: gm, Blobs: e.blobs, Grace: 0, LeaseTTL: ttl, Holder: "robbed"})
		done <- err
	}()
	<-gm.reached
	l, _, err := e.meta.AcquireGCLease(ctx, "probe", ttl)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.meta.ReleaseGCLease(ctx, l.Holder); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := e.meta.AcquireGCLease(ctx, "thief", time.Hour); err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	if err := <-done; !errors.Is(err, gc.ErrLeaseLost) {
		t.Fatalf("run whose lease was taken = %v, want ErrLeaseLost", err)
	}
}

// TestRunPublishesDeletes: manifests phase 1 deletes are published as API deletes
// are, so a server's subscribers (audit log, webhooks) see them; a dry run publishes
// nothing.
func TestRunPublishesDeletes(t *testing.T) {
	e := newEnv(t, false)
	ctx := t.Context()
	img, err := e.pushImage("app", "v1", content("config", 100), [][]byte{content("layer", 1000)}, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.want(http.StatusAccepted, http.MethodDelete, "/v2/app/manifests/v1", nil); err != nil {
		t.Fatal(err)
	}
	bus := events.NewBus(nil)
	ch, unsubscribe := bus.Subscribe(16)
	if _, err := gc.Run(ctx, gc.Options{Meta: e.meta, Blobs: e.blobs, Grace: 0, Untagged: true, DryRun: true, Events: bus}); err != nil {
		t.Fatal(err)
	}
	rep, err := gc.Run(ctx, gc.Options{Meta: e.meta, Blobs: e.blobs, Grace: 0, Untagged: true, Events: bus})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Manifests != 1 {
		t.Fatalf("report %+v, want 1 manifest", rep)
	}
	unsubscribe()
	var got []events.Event
	for ev := range ch {
		got = append(got, ev)
	}
	if len(got) != 1 {
		t.Fatalf("events = %+v, want one manifest.deleted", got)
	}
	ev := got[0]
	if ev.Type != events.ManifestDeleted || ev.Repository != "app" || ev.Digest != img.manifest.String() ||
		ev.MediaType != "application/vnd.oci.image.manifest.v1+json" || ev.Actor != gc.Actor || ev.Time.IsZero() {
		t.Fatalf("event = %+v, want manifest.deleted of app@%s by %s", ev, img.manifest, gc.Actor)
	}
}
