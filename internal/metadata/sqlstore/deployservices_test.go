package sqlstore

import (
	"testing"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/deploy"
)

// TestDeployServices: a namespace's services are listed by name, each with its newest
// deploy (running or finished), paged by name, and never another namespace's.
func TestDeployServices(t *testing.T) {
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
		for _, org := range []string{"acme", "acmex", "beta"} {
			_, err = s.CreateOrg(ctx, org, "alice")
			must(err)
		}
		run := func(ns, svc string, finish bool) {
			t.Helper()
			r, err := s.beginTest(ctx, beginOf(ns, svc, "alice", "laptop", 42))
			must(err)
			if finish {
				_, err = s.FinishDeploy(ctx, ns, svc, r.Number, deploy.OutcomeSucceeded, "")
				must(err)
			}
		}
		if list, err := s.ListDeployServices(ctx, "acme", "", 0); err != nil || len(list) != 0 {
			t.Fatalf("no deploys: %v %v", list, err)
		}
		for range 3 {
			run("acme", "web", true)
		}
		run("acme", "api", true)
		run("acme", "api", false) // running: it is the newest
		run("acme", "worker", true)
		run("acmex", "aaa", true) // a namespace sharing acme's prefix
		run("beta", "web", true)

		type row struct {
			svc string
			n   int
			out deploy.Outcome
		}
		rows := func(list []deploy.Record) []row {
			var out []row
			for _, r := range list {
				if r.Namespace != "acme" || r.SpecYAML != "" {
					t.Errorf("service row %+v", r)
				}
				out = append(out, row{r.Service, r.Number, r.Outcome})
			}
			return out
		}
		list, err := s.ListDeployServices(ctx, "acme", "", 0)
		must(err)
		want := []row{{"api", 2, deploy.OutcomeRunning}, {"web", 3, deploy.OutcomeSucceeded}, {"worker", 1, deploy.OutcomeSucceeded}}
		if got := rows(list); len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
			t.Fatalf("services of acme: %+v, want %+v", got, want)
		}
		page, err := s.ListDeployServices(ctx, "acme", "", 2)
		must(err)
		next, err := s.ListDeployServices(ctx, "acme", page[len(page)-1].Service, 2)
		must(err)
		if got := rows(append(page, next...)); len(page) != 2 || len(got) != 3 || got[2] != want[2] {
			t.Fatalf("paged services: %+v", got)
		}
	})
}
