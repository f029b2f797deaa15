package events

import (
	"testing"
)

func TestBusFansOutAndStamps(t *testing.T) {
	b := NewBus(nil)
	c1, stop1 := b.Subscribe(4)
	c2, stop2 := b.Subscribe(4)
	defer stop2()
	b.Publish(Event{Type: ManifestPushed, Repository: "app"})
	for _, c := range []<-chan Event{c1, c2} {
		e := <-c
		if e.Type != ManifestPushed || e.Repository != "app" || e.Time.IsZero() {
			t.Fatalf("got %+v", e)
		}
	}
	stop1()
	stop1() // idempotent
	if _, ok := <-c1; ok {
		t.Fatal("channel still open after unsubscribe")
	}
	b.Publish(Event{Type: TagMoved})
	if e := <-c2; e.Type != TagMoved {
		t.Fatalf("got %+v", e)
	}
}

func TestBusDropsForFullSubscriber(t *testing.T) {
	b := NewBus(nil)
	c, stop := b.Subscribe(1)
	defer stop()
	for range 3 {
		b.Publish(Event{Type: BlobDeleted})
	}
	if got := b.Dropped(); got != 2 {
		t.Fatalf("dropped %d, want 2", got)
	}
	if e := <-c; e.Type != BlobDeleted {
		t.Fatalf("got %+v", e)
	}
}
