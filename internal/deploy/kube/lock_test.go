package kube

import (
	"context"
	"errors"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/hubctl/hubctl/internal/deploy"
	"github.com/hubctl/hubctl/internal/kubetest"
)

func holderAt(host string, pid int, at time.Time) deploy.LockHolder {
	return deploy.LockHolder{By: "alice", Host: host, PID: pid, Number: 3, Acquired: at, Expires: at.Add(deploy.LockTTL)}
}

// testLease runs the lock's story against client: taken, refused to another with
// who holds it, taken again by its holder, renewed, left alone by another's
// unlock, stale and taken over, broken.
func testLease(t *testing.T, client kubernetes.Interface) {
	ctx := context.Background()
	now := time.Now()
	l := NewLeaseWith(client, "shop")
	l.now = func() time.Time { return now }
	a := holderAt("laptop-a.example", 4242, now)
	b := holderAt("laptop-b.example", 4343, now)

	if err := l.Lock(ctx, "web", a); err != nil {
		t.Fatalf("lock: %v", err)
	}
	var le *deploy.LockedError
	if err := l.Lock(ctx, "web", b); !errors.As(err, &le) || le.Holder.Host != "laptop-a.example" || le.Holder.PID != 4242 || le.Holder.By != "alice" {
		t.Fatalf("a second holder: %v; want LockedError naming laptop-a", err)
	}
	if err := l.Lock(ctx, "web", a); err != nil {
		t.Fatalf("its holder again: %v", err)
	}
	if err := l.Lock(ctx, "other", b); err != nil {
		t.Fatalf("another service: %v", err)
	}
	now = now.Add(deploy.LockTTL / 2)
	if err := l.Renew(ctx, "web", a); err != nil {
		t.Fatalf("renew: %v", err)
	}
	if err := l.Renew(ctx, "web", b); !errors.As(err, &le) {
		t.Fatalf("renew by another: %v", err)
	}
	if err := l.Unlock(ctx, "web", b); err != nil {
		t.Fatalf("unlock by another: %v", err)
	}
	// Renewed at TTL/2: still held just before TTL/2 + TTL.
	now = now.Add(deploy.LockTTL - time.Second)
	if err := l.Lock(ctx, "web", b); !errors.As(err, &le) {
		t.Fatalf("a renewed lock taken: %v", err)
	}
	now = now.Add(2 * time.Second)
	if err := l.Lock(ctx, "web", b); err != nil {
		t.Fatalf("a stale lock not taken over: %v", err)
	}
	if err := l.Renew(ctx, "web", a); !errors.As(err, &le) || le.Holder.Host != "laptop-b.example" {
		t.Fatalf("the old holder's renewal: %v; want LockedError naming laptop-b", err)
	}
	if err := l.Unlock(ctx, "web", a); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoordinationV1().Leases("shop").Get(ctx, LeaseName("web"), metav1.GetOptions{}); err != nil {
		t.Fatalf("the old holder's unlock removed the new holder's lease: %v", err)
	}
	if err := l.Unlock(ctx, "web", b); err != nil {
		t.Fatal(err)
	}
	if err := l.Lock(ctx, "web", a); err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	if err := l.Break(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if err := l.Break(ctx, "web"); err != nil {
		t.Fatalf("break of no lock: %v", err)
	}
	if err := l.Lock(ctx, "web", b); err != nil {
		t.Fatalf("lock after break: %v", err)
	}
}

func TestLeaseFake(t *testing.T) { testLease(t, fake.NewClientset()) }

// TestLeaseCluster is the same story on a real API server (its optimistic
// concurrency on the take-over, its name uniqueness on the create).
func TestLeaseCluster(t *testing.T) {
	c := kubetest.Start(t)
	if c == nil {
		return
	}
	c.Namespace(t, "shop")
	testLease(t, c.Client)
}
