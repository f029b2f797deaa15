package sqlstore

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/deploy"
	"github.com/hubctl/hubctl/internal/metadata"
)

// begin is one Begin's arguments.
type begin struct {
	rec    deploy.Record
	holder deploy.LockHolder
}

func beginOf(ns, service, by, host string, pid int) begin {
	return begin{
		rec: deploy.Record{Namespace: ns, Service: service, SpecYAML: "service:\n  name: " + service + "\n",
			Digests: map[string]string{"service": "hub.test/" + ns + "/app@sha256:" + strings.Repeat("a", 64)},
			Target:  "docker", Hosts: []string{"local"}, By: by},
		holder: deploy.LockHolder{Host: host, PID: pid},
	}
}

func (s *Store) beginTest(ctx context.Context, b begin) (deploy.Record, error) {
	return s.BeginDeploy(ctx, b.rec, 1, b.holder, deploy.LockTTL)
}

// TestDeployHistory: numbers count per service from 1; a second Begin while the lock
// is held is refused with its holder; renew, finish (once), release; history newest
// first in pages without specs, Get with it; a missing deploy is ErrNoRecord; the
// audit entry the context carries is written with the change; a deleted namespace's
// history goes with it.
func TestDeployHistory(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		s, _ := openFresh(t, b)
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		_, err := s.CreateUser(ctx, accounts.User{Name: "alice", PasswordHash: "x"})
		must(err)
		_, err = s.CreateOrg(ctx, "acme", "alice")
		must(err)

		actx := accounts.WithAudit(ctx, accounts.AuditEntry{Actor: "alice", Action: "deploy.begin", Target: "acme/web"})
		r1, err := s.beginTest(actx, beginOf("acme", "web", "alice", "laptop", 42))
		must(err)
		if r1.Number != 1 || r1.Outcome != deploy.OutcomeRunning || r1.By != "alice" || r1.Started.IsZero() || !r1.Finished.IsZero() {
			t.Fatalf("begin: %+v", r1)
		}
		if es, _ := s.ListAudit(ctx, accounts.AuditFilter{Action: "deploy.begin"}); len(es) != 1 {
			t.Fatalf("audit %+v", es)
		}
		// Another service of the namespace has its own lock and numbers.
		o1, err := s.beginTest(ctx, beginOf("acme", "api", "alice", "laptop", 43))
		must(err)
		if o1.Number != 1 {
			t.Fatalf("other service: %+v", o1)
		}

		_, err = s.beginTest(ctx, beginOf("acme", "web", "bob", "ci", 7))
		var le *deploy.LockedError
		if !errors.As(err, &le) || le.Holder.By != "alice" || le.Holder.Host != "laptop" || le.Holder.PID != 42 || le.Holder.Number != 1 ||
			!le.Holder.Expires.After(le.Holder.Acquired) {
			t.Fatalf("second begin: %v", err)
		}
		h, ok, err := s.DeployLock(ctx, "acme", "web")
		must(err)
		if !ok || h.Number != 1 {
			t.Fatalf("lock %+v %v", h, ok)
		}
		h2, err := s.RenewDeployLock(ctx, "acme", "web", 1, deploy.LockTTL)
		must(err)
		if h2.Expires.Before(h.Expires) {
			t.Fatalf("renew moved expiry back: %v -> %v", h.Expires, h2.Expires)
		}
		if _, err := s.RenewDeployLock(ctx, "acme", "web", 2, deploy.LockTTL); !errors.Is(err, metadata.ErrDeployLockLost) {
			t.Fatalf("renew by a deploy not holding it: %v", err)
		}
		if _, err := s.FinishDeploy(ctx, "acme", "web", 1, deploy.OutcomeRunning, ""); err == nil {
			t.Fatal("finish as running")
		}
		f1, err := s.FinishDeploy(ctx, "acme", "web", 1, deploy.OutcomeSucceeded, "")
		must(err)
		if f1.Outcome != deploy.OutcomeSucceeded || f1.Finished.Before(f1.Started) || f1.SpecYAML == "" || f1.Digests["service"] == "" {
			t.Fatalf("finish: %+v", f1)
		}
		if _, err := s.FinishDeploy(ctx, "acme", "web", 1, deploy.OutcomeFailed, "again"); !errors.Is(err, metadata.ErrDeployFinished) {
			t.Fatalf("second finish: %v", err)
		}
		if _, err := s.FinishDeploy(ctx, "acme", "web", 9, deploy.OutcomeFailed, ""); !errors.Is(err, deploy.ErrNoRecord) {
			t.Fatalf("finish of a missing deploy: %v", err)
		}
		if _, err := s.RenewDeployLock(ctx, "acme", "web", 1, deploy.LockTTL); !errors.Is(err, metadata.ErrDeployLockLost) {
			t.Fatalf("renew after finish: %v", err)
		}
		if _, ok, _ := s.DeployLock(ctx, "acme", "web"); ok {
			t.Fatal("lock kept after finish")
		}

		for i := 2; i <= 5; i++ {
			bg := beginOf("acme", "web", "alice", "laptop", 42)
			if i == 5 {
				bg.rec.RollbackOf = 1
			}
			r, err := s.beginTest(ctx, bg)
			must(err)
			if r.Number != i {
				t.Fatalf("deploy %d numbered %d", i, r.Number)
			}
			out := deploy.OutcomeSucceeded
			if i == 3 {
				out = deploy.OutcomeFailed
			}
			_, err = s.FinishDeploy(ctx, "acme", "web", i, out, map[bool]string{true: "health check failed"}[i == 3])
			must(err)
		}
		list, err := s.ListDeploys(ctx, "acme", "web", 0, 3)
		must(err)
		if len(list) != 3 || list[0].Number != 5 || list[2].Number != 3 || list[0].RollbackOf != 1 || list[2].Error != "health check failed" ||
			list[0].SpecYAML != "" || list[0].Digests["service"] == "" || list[0].Hosts[0] != "local" {
			t.Fatalf("page 1: %+v", list)
		}
		list, err = s.ListDeploys(ctx, "acme", "web", 3, 3)
		must(err)
		if len(list) != 2 || list[0].Number != 2 || list[1].Number != 1 {
			t.Fatalf("page 2: %+v", list)
		}
		g, err := s.GetDeploy(ctx, "acme", "web", 3)
		must(err)
		if g.Outcome != deploy.OutcomeFailed || !strings.Contains(g.SpecYAML, "name: web") {
			t.Fatalf("get: %+v", g)
		}
		if _, err := s.GetDeploy(ctx, "acme", "web", 99); !errors.Is(err, deploy.ErrNoRecord) {
			t.Fatalf("get missing: %v", err)
		}
		if _, err := s.GetDeploy(ctx, "other", "web", 1); !errors.Is(err, deploy.ErrNoRecord) {
			t.Fatalf("get in another namespace: %v", err)
		}

		// A deleted organisation's history and locks go with it.
		_, err = s.DeleteOrg(ctx, "acme", false)
		must(err)
		if n := count(t, s, "deploys") + count(t, s, "deploy_locks"); n != 0 {
			t.Fatalf("%d deploy rows left after deleting the namespace", n)
		}
	})
}

// TestDeployStaleLockAndBreak: a lock not renewed past its expiry is taken over by the
// next Begin, and the deploy that held it is marked failed (it can neither renew nor
// finish); a broken lock marks its deploy failed too, and is audited.
func TestDeployStaleLockAndBreak(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		s, _ := openFresh(t, b)
		r1, err := s.beginTest(ctx, beginOf("acme", "web", "alice", "laptop", 42))
		if err != nil {
			t.Fatal(err)
		}
		// The holder was killed: its lock is not renewed and expires.
		execSQL(t, s, `UPDATE deploy_locks SET expires = acquired - 1`)
		r2, err := s.beginTest(ctx, beginOf("acme", "web", "bob", "ci", 7))
		if err != nil {
			t.Fatalf("taking over a stale lock: %v", err)
		}
		if r2.Number != r1.Number+1 {
			t.Fatalf("numbers %d then %d", r1.Number, r2.Number)
		}
		old, err := s.GetDeploy(ctx, "acme", "web", r1.Number)
		if err != nil || old.Outcome != deploy.OutcomeFailed || !strings.Contains(old.Error, "went stale") || old.Finished.IsZero() {
			t.Fatalf("abandoned deploy: %+v %v", old, err)
		}
		if _, err := s.RenewDeployLock(ctx, "acme", "web", r1.Number, deploy.LockTTL); !errors.Is(err, metadata.ErrDeployLockLost) {
			t.Fatalf("the old holder renews: %v", err)
		}
		if _, err := s.FinishDeploy(ctx, "acme", "web", r1.Number, deploy.OutcomeSucceeded, ""); !errors.Is(err, metadata.ErrDeployFinished) {
			t.Fatalf("the old holder finishes: %v", err)
		}
		if h, ok, _ := s.DeployLock(ctx, "acme", "web"); !ok || h.By != "bob" || h.Number != r2.Number {
			t.Fatalf("lock after takeover: %+v", h)
		}

		actx := accounts.WithAudit(ctx, accounts.AuditEntry{Actor: "admin", Action: "deploy.lock.break", Target: "acme/web"})
		h, err := s.BreakDeployLock(actx, "acme", "web", "admin")
		if err != nil || h.By != "bob" || h.Number != r2.Number {
			t.Fatalf("break: %+v %v", h, err)
		}
		if es, _ := s.ListAudit(ctx, accounts.AuditFilter{Action: "deploy.lock.break"}); len(es) != 1 {
			t.Fatalf("audit %+v", es)
		}
		if g, _ := s.GetDeploy(ctx, "acme", "web", r2.Number); g.Outcome != deploy.OutcomeFailed || !strings.Contains(g.Error, "broken by admin") {
			t.Fatalf("deploy of a broken lock: %+v", g)
		}
		if _, err := s.BreakDeployLock(ctx, "acme", "web", "admin"); !errors.Is(err, metadata.ErrNoDeployLock) {
			t.Fatalf("break with no lock: %v", err)
		}
		if _, err := s.RunningDeployID(ctx, "acme", "web", r2.Number); !errors.Is(err, metadata.ErrDeployNotRunning) {
			t.Fatalf("running id of a failed deploy: %v", err)
		}
		r3, err := s.beginTest(ctx, beginOf("acme", "web", "alice", "laptop", 42))
		if err != nil {
			t.Fatal(err)
		}
		if id, err := s.RunningDeployID(ctx, "acme", "web", r3.Number); err != nil || id <= 0 {
			t.Fatalf("running id: %d %v", id, err)
		}
		if _, err := s.RunningDeployID(ctx, "acme", "web", 99); !errors.Is(err, deploy.ErrNoRecord) {
			t.Fatalf("running id of a missing deploy: %v", err)
		}
	})
}

// TestDeployConcurrentBegins: Begins racing for one service from several stores on
// one database (replicas), on a free lock and on a stale one: exactly one wins, the
// others are refused with the winner as holder, and one deploy is recorded per round.
func TestDeployConcurrentBegins(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		s, reopen := openFresh(t, b)
		const racers = 6
		stores := []*Store{s}
		for range racers - 1 {
			r := reopen(t)
			t.Cleanup(func() { r.Close() })
			stores = append(stores, r)
		}
		race := func(round int) {
			t.Helper()
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				won     []deploy.Record
				wonPID  int
				refused []*deploy.LockedError
				other   []error
			)
			start := make(chan struct{})
			for i, st := range stores {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					r, err := st.beginTest(ctx, beginOf("acme", "web", "racer", "host", i))
					mu.Lock()
					defer mu.Unlock()
					var le *deploy.LockedError
					switch {
					case err == nil:
						won, wonPID = append(won, r), i
					case errors.As(err, &le):
						refused = append(refused, le)
					default:
						other = append(other, err)
					}
				}()
			}
			close(start)
			wg.Wait()
			if len(won) != 1 || len(refused) != racers-1 || len(other) != 0 {
				t.Fatalf("round %d: %d won, %d refused, errors %v", round, len(won), len(refused), other)
			}
			for _, le := range refused {
				if le.Holder.PID != wonPID || le.Holder.Number != won[0].Number {
					t.Fatalf("round %d: refused with holder %+v, winner %+v", round, le.Holder, won[0])
				}
			}
			if won[0].Number != round {
				t.Fatalf("round %d: the winner is numbered %d", round, won[0].Number)
			}
		}
		race(1)
		// The winner dies: its lock goes stale, and the next race takes it over once.
		execSQL(t, s, `UPDATE deploy_locks SET expires = acquired - 1`)
		race(2)
		if n := count(t, s, "deploys"); n != 2 {
			t.Fatalf("%d deploys recorded, want 2", n)
		}
		list, err := s.ListDeploys(ctx, "acme", "web", 0, 0)
		if err != nil || len(list) != 2 || list[1].Outcome != deploy.OutcomeFailed || list[0].Outcome != deploy.OutcomeRunning {
			t.Fatalf("history %+v %v", list, err)
		}
	})
}

// TestDeployLockWithoutDeploy: the lock `deploy down` takes holds no deploy: a
// Begin is refused while it is held, its holder takes it again (a renewal), another
// is refused, only its holder releases it; a stale one is taken over by a Begin, and
// a down takes over a deploy's stale lock, marking that deploy abandoned.
func TestDeployLockWithoutDeploy(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		s, _ := openFresh(t, b)
		me := deploy.LockHolder{Host: "laptop", PID: 42}
		h, err := s.TakeDeployLock(ctx, "acme", "web", 1, "alice", me, deploy.LockTTL)
		if err != nil || h.Number != 0 || h.By != "alice" || !h.Expires.After(h.Acquired) {
			t.Fatalf("take: %+v %v", h, err)
		}
		var le *deploy.LockedError
		if _, err := s.beginTest(ctx, beginOf("acme", "web", "bob", "ci", 7)); !errors.As(err, &le) || le.Holder.By != "alice" || le.Holder.Number != 0 {
			t.Fatalf("a deploy while down holds the lock: %v", err)
		}
		h2, err := s.TakeDeployLock(ctx, "acme", "web", 1, "alice", me, deploy.LockTTL)
		if err != nil || !h2.Acquired.Equal(h.Acquired) || h2.Expires.Before(h.Expires) {
			t.Fatalf("renewal by its holder: %+v %v", h2, err)
		}
		if _, err := s.TakeDeployLock(ctx, "acme", "web", 1, "alice", deploy.LockHolder{Host: "laptop", PID: 43}, deploy.LockTTL); !errors.As(err, &le) {
			t.Fatalf("another process of the same account: %v", err)
		}
		if _, err := s.TakeDeployLock(ctx, "acme", "web", 2, "bob", me, deploy.LockTTL); !errors.As(err, &le) {
			t.Fatalf("another account: %v", err)
		}
		if err := s.ReleaseDeployLock(ctx, "acme", "web", 2, me); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := s.DeployLock(ctx, "acme", "web"); !ok {
			t.Fatal("another's release removed the lock")
		}
		if err := s.ReleaseDeployLock(ctx, "acme", "web", 1, me); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := s.DeployLock(ctx, "acme", "web"); ok {
			t.Fatal("the holder's release left the lock")
		}

		// A stale down lock is taken over by a deploy; that deploy's stale lock by a down.
		if _, err := s.TakeDeployLock(ctx, "acme", "web", 1, "alice", me, deploy.LockTTL); err != nil {
			t.Fatal(err)
		}
		execSQL(t, s, `UPDATE deploy_locks SET expires = acquired - 1`)
		r, err := s.beginTest(ctx, beginOf("acme", "web", "bob", "ci", 7))
		if err != nil {
			t.Fatalf("a deploy over a stale down lock: %v", err)
		}
		execSQL(t, s, `UPDATE deploy_locks SET expires = acquired - 1`)
		if _, err := s.TakeDeployLock(ctx, "acme", "web", 1, "alice", me, deploy.LockTTL); err != nil {
			t.Fatalf("a down over a stale deploy lock: %v", err)
		}
		if g, _ := s.GetDeploy(ctx, "acme", "web", r.Number); g.Outcome != deploy.OutcomeFailed || !strings.Contains(g.Error, "went stale") {
			t.Fatalf("the deploy whose lock a down took over: %+v", g)
		}
	})
}
