package web_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/deploy"
)

// TestDeployServicesPage: the deploy history page without a service lists the
// namespace's services with their newest deploy, each linked to its history, for
// the namespace's readers only.
func TestDeployServicesPage(t *testing.T) {
	h := startAdminHub(t)
	bs := h.acme()
	ctx := context.Background()
	alice, err := h.store.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range []string{"web", "web", "api"} {
		rec := deploy.Record{Namespace: "acme", Service: svc, SpecYAML: "service:\n  name: " + svc + "\n", Target: "docker",
			Hosts: []string{"local"}, By: "alice", Digests: map[string]string{}}
		r, err := h.store.BeginDeploy(ctx, rec, alice.ID, deploy.LockHolder{Host: "laptop", PID: 1}, deploy.LockTTL)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.store.FinishDeploy(ctx, "acme", svc, r.Number, deploy.OutcomeSucceeded, ""); err != nil {
			t.Fatal(err)
		}
	}
	path := "/settings/admin/deploys?namespace=acme"
	matrix(t, bs, path, map[string]int{"anonymous": toLogin, "dave": hidden, "carol": ok, "bob": ok, "alice": ok, "admin": ok})
	p := bs["carol"].get(path)
	for _, want := range []string{`href="/settings/admin/deploys?namespace=acme&amp;service=web">web</a></td><td>2</td>`,
		`href="/settings/admin/deploys?namespace=acme&amp;service=api">api</a></td><td>1</td>`} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("services page lacks %s:\n%s", want, p.Body)
		}
	}
	if strings.Index(p.Body, ">api</a>") > strings.Index(p.Body, ">web</a>") {
		t.Error("services are not in name order")
	}
	if p := bs["dave"].get("/settings/admin/deploys"); p.Status != http.StatusOK || !strings.Contains(p.Body, "No deploys in dave") {
		t.Errorf("one's own namespace without deploys: %d\n%s", p.Status, p.Body)
	}
	if a, b := bs["dave"].get(path), bs["dave"].get("/settings/admin/deploys?namespace=nosuch"); a.Status != hidden || a.Body != b.Body {
		t.Error("a hidden namespace's services and a missing namespace's differ")
	}
}
