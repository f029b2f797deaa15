package server

import "testing"

func TestLocalLimiter(t *testing.T) {
	l := NewLocalLimiter(2).(*localLimiter)
	r1, ok1 := l.Acquire(t.Context(), "a")
	_, ok2 := l.Acquire(t.Context(), "a")
	_, ok3 := l.Acquire(t.Context(), "a")
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("acquire: %v %v %v, want true true false", ok1, ok2, ok3)
	}
	if _, ok := l.Acquire(t.Context(), "b"); !ok {
		t.Fatal("another key shares a's count")
	}
	r1()
	r1() // a second release gives nothing back twice
	if _, ok := l.Acquire(t.Context(), "a"); !ok {
		t.Fatal("a released unit is not free")
	}
	if _, ok := l.Acquire(t.Context(), "a"); ok {
		t.Fatal("a double release freed two units")
	}
}

func TestLocalLimiterForgetsIdleKeys(t *testing.T) {
	l := NewLocalLimiter(1).(*localLimiter)
	for _, k := range []string{"a", "b", "c"} {
		r, _ := l.Acquire(t.Context(), k)
		r()
	}
	if len(l.held) != 0 {
		t.Fatalf("keys kept after release: %v", l.held)
	}
}
