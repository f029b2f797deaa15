package sqlstore

import (
	"context"
	"testing"
)

// TestACMECache: put, get, replace and delete on both databases, and a second Store on
// the same database (another replica) reads what the first wrote.
func TestACMECache(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s, reopen := openFresh(t, b)
		if _, ok, err := s.ACMEGet(ctx, "hub.example.test"); err != nil || ok {
			t.Fatalf("get of a missing key = %v, %v; want a miss", ok, err)
		}
		if err := s.ACMEPut(ctx, "hub.example.test", []byte("one\x00")); err != nil {
			t.Fatal(err)
		}
		if err := s.ACMEPut(ctx, "hub.example.test", []byte("two\x00")); err != nil {
			t.Fatal(err)
		}
		other := reopen(t)
		defer other.Close()
		got, ok, err := other.ACMEGet(ctx, "hub.example.test")
		if err != nil || !ok || string(got) != "two\x00" {
			t.Fatalf("get from another store = %q, %v, %v; want two", got, ok, err)
		}
		if err := s.ACMEDelete(ctx, "hub.example.test"); err != nil {
			t.Fatal(err)
		}
		if err := s.ACMEDelete(ctx, "hub.example.test"); err != nil {
			t.Fatalf("deleting a missing key: %v", err)
		}
		if _, ok, _ := other.ACMEGet(ctx, "hub.example.test"); ok {
			t.Fatal("the key is still there after delete")
		}
	})
}
