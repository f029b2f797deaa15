package ratelimit

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLockoutAndWindow(t *testing.T) {
	l := New(3, time.Minute)
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		if b, _ := l.Blocked("k", t0); b {
			t.Fatalf("blocked after %d failures", i)
		}
		l.Fail("k", t0)
	}
	b, wait := l.Blocked("k", t0.Add(10*time.Second))
	if !b || wait != 50*time.Second {
		t.Fatalf("after 3 failures: %v %v", b, wait)
	}
	if b, _ := l.Blocked("other", t0); b {
		t.Fatal("another key is blocked")
	}
	if b, _ := l.Blocked("k", t0.Add(time.Minute)); b {
		t.Fatal("still blocked after the window")
	}
	l.Fail("j", t0)
	l.Succeed("j")
	l.Fail("j", t0)
	l.Fail("j", t0)
	if b, _ := l.Blocked("j", t0); b {
		t.Fatal("a success did not reset the count")
	}
}

func TestBoundedKeys(t *testing.T) {
	l := New(1, time.Minute)
	l.maxKeys = 10
	t0 := time.Unix(1000, 0)
	for i := range 100 {
		l.Fail(fmt.Sprint("key", i), t0.Add(time.Duration(i)*time.Millisecond))
	}
	if n := len(l.entries); n > 10 {
		t.Fatalf("%d entries, bound 10", n)
	}
	// The newest keys are the ones kept.
	if b, _ := l.Blocked("key99", t0.Add(time.Second)); !b {
		t.Fatal("the newest key was evicted")
	}
}

// TestTake: a rate limit of one action a second per key, whose check and count are one
// step, so concurrent callers cannot both pass.
func TestTake(t *testing.T) {
	l := New(1, time.Second)
	now := time.Now()
	if ok, _ := l.Take("hook", now); !ok {
		t.Fatal("the first action refused")
	}
	if ok, wait := l.Take("hook", now.Add(300*time.Millisecond)); ok || wait != 700*time.Millisecond {
		t.Fatalf("a second action within the window: %v, wait %v", ok, wait)
	}
	if ok, _ := l.Take("other", now); !ok {
		t.Fatal("another key refused")
	}
	if ok, _ := l.Take("hook", now.Add(time.Second)); !ok {
		t.Fatal("refused after the window")
	}
	var allowed atomic.Int32
	var wg sync.WaitGroup
	later := now.Add(time.Hour)
	for range 50 {
		wg.Go(func() {
			if ok, _ := l.Take("race", later); ok {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != 1 {
		t.Fatalf("%d concurrent actions allowed, want 1", n)
	}
}
