package web_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/accounts"
)

// csrfOf is a token the browser of who may send: the sign-in form's for an anonymous
// one (it has no session, so every form of the admin pages must refuse it anyway).
func csrfOf(t *testing.T, bs map[string]*browser, who string) string {
	t.Helper()
	if who == "anonymous" {
		return bs[who].get("/login").loginCSRF(t)
	}
	return bs[who].get("/settings/admin").csrf(t)
}

// postMatrix posts form (with each browser's own CSRF token) to path as every viewer
// in want and checks the status; after each refusal, unchanged must still hold.
func postMatrix(t *testing.T, bs map[string]*browser, path string, form func(who string) url.Values, want map[string]int, unchanged func() error) {
	t.Helper()
	for _, who := range []string{"anonymous", "dave", "carol", "bob", "alice", "admin"} {
		status, ok := want[who]
		if !ok {
			continue
		}
		f := form(who)
		f.Set("csrf", csrfOf(t, bs, who))
		p := bs[who].post(path, f)
		if p.Status != status {
			t.Errorf("%s POST %s: %d, want %d\n%.600s", who, path, p.Status, status, p.Body)
		}
		if status != http.StatusSeeOther && unchanged != nil {
			if err := unchanged(); err != nil {
				t.Errorf("%s's refused POST %s changed something: %v", who, path, err)
			}
		}
	}
}

// TestAdminCreateDeleteForms: users (site administrators), organisations (any user)
// and teams (an organisation's admins) are created and deleted with the admin pages'
// forms, through the API's own checks and audited as it audits them; every refused
// post, a forged one and one from another site change nothing; a delete needs the
// name typed; a name with markup is shown inert beside the refusal.
func TestAdminCreateDeleteForms(t *testing.T) {
	h := startAdminHub(t)
	bs := h.acme()
	ctx := context.Background()
	admin := bs["admin"]
	userMissing := func(name string) func() error {
		return func() error {
			if _, err := h.store.GetUser(ctx, name); !errors.Is(err, accounts.ErrNotFound) {
				return errors.New("user " + name + " exists")
			}
			return nil
		}
	}
	audited := func(action, target string) {
		t.Helper()
		if p := admin.get("/settings/admin/audit?action=" + action); !strings.Contains(p.Body, "<td>"+target+"</td>") {
			t.Errorf("%s of %s not audited", action, target)
		}
	}

	// Users.
	newUser := func(string) url.Values {
		return url.Values{"name": {"erin"}, "email": {"erin@example.com"}, "password": {"erin-password"}}
	}
	if p := admin.postWith("/settings/admin/users", url.Values{"csrf": {csrfOf(t, bs, "admin")}, "name": {"erin"}, "password": {"erin-password"}},
		map[string]string{"Origin": "http://evil.example"}); p.Status != refused {
		t.Errorf("create user from another origin: %d", p.Status)
	}
	if p := admin.post("/settings/admin/users", url.Values{"name": {"erin"}, "password": {"erin-password"}}); p.Status != refused {
		t.Errorf("create user without a CSRF token: %d", p.Status)
	}
	postMatrix(t, bs, "/settings/admin/users", newUser,
		map[string]int{"anonymous": refused, "dave": refused, "carol": refused, "bob": refused, "alice": refused}, userMissing("erin"))
	postMatrix(t, bs, "/settings/admin/users", newUser, map[string]int{"admin": http.StatusSeeOther}, nil)
	if u, err := h.store.GetUser(ctx, "erin"); err != nil || u.Email != "erin@example.com" || u.Admin {
		t.Fatalf("erin after the form: %+v %v", u, err)
	}
	audited("user.create", "erin")
	// A refusal keeps the input (never the password) and shows a hostile name inert.
	p := admin.post("/settings/admin/users", url.Values{"csrf": {csrfOf(t, bs, "admin")}, "name": {"<script>alert(1)</script>"},
		"email": {"x@example.com"}, "password": {"secret-password-1"}})
	if p.Status != http.StatusBadRequest || strings.Contains(p.Body, "<script>alert") || !strings.Contains(p.Body, `value="&lt;script&gt;alert(1)&lt;/script&gt;"`) ||
		!strings.Contains(p.Body, `value="x@example.com"`) || strings.Contains(p.Body, "secret-password-1") || !strings.Contains(p.Body, `class="error"`) {
		t.Errorf("bad user name: %d\n%s", p.Status, p.Body)
	}
	if p := admin.post("/settings/admin/users", url.Values{"csrf": {csrfOf(t, bs, "admin")}, "name": {"erin"}, "password": {"erin-password"}}); p.Status != http.StatusConflict {
		t.Errorf("create a taken name: %d", p.Status)
	}
	if p := admin.post("/settings/admin/users", url.Values{"csrf": {csrfOf(t, bs, "admin")}, "name": {"frank"}, "password": {"short"}}); p.Status != http.StatusBadRequest {
		t.Errorf("create with a short password: %d", p.Status)
	}

	// Organisations: any signed-in user creates one and administers it.
	newOrg := func(who string) url.Values { return url.Values{"name": {"org-" + who}, "visibility": {"public"}} }
	if p := bs["dave"].postWith("/settings/admin/orgs", url.Values{"csrf": {csrfOf(t, bs, "dave")}, "name": {"org-dave"}},
		map[string]string{"Origin": "http://evil.example"}); p.Status != refused {
		t.Errorf("create org from another origin: %d", p.Status)
	}
	postMatrix(t, bs, "/settings/admin/orgs", newOrg, map[string]int{"anonymous": refused}, func() error {
		if _, err := h.store.GetNamespace(ctx, "org-anonymous"); err == nil {
			return errors.New("org-anonymous exists")
		}
		return nil
	})
	if _, err := h.store.GetNamespace(ctx, "org-dave"); err == nil {
		t.Fatal("a refused post made org-dave")
	}
	postMatrix(t, bs, "/settings/admin/orgs", newOrg, map[string]int{"dave": http.StatusSeeOther, "carol": http.StatusSeeOther}, nil)
	if ns, err := h.store.GetNamespace(ctx, "org-dave"); err != nil || !ns.Org || ns.DefaultVisibility != accounts.Public {
		t.Fatalf("org-dave: %+v %v", ns, err)
	}
	audited("org.create", "org-dave")
	if p := bs["dave"].get("/settings/admin/orgs/org-dave"); p.Status != ok {
		t.Errorf("dave on his organisation's page: %d", p.Status)
	}
	p = bs["dave"].post("/settings/admin/orgs", url.Values{"csrf": {csrfOf(t, bs, "dave")}, "name": {"acme"}})
	if p.Status != http.StatusConflict || !strings.Contains(p.Body, `value="acme"`) {
		t.Errorf("create a taken organisation: %d\n%s", p.Status, p.Body)
	}

	// Teams of acme: its admins only; a refused post is the page of a missing one.
	teamMissing := func() error {
		ts, err := h.store.ListTeams(ctx, "acme")
		for _, tm := range ts {
			if tm.Name == "ops" {
				return errors.New("team ops exists")
			}
		}
		return err
	}
	newTeam := func(string) url.Values {
		return url.Values{"name": {"ops"}, "description": {`<script>alert("t")</script>`}}
	}
	postMatrix(t, bs, "/settings/admin/orgs/acme/teams", newTeam,
		map[string]int{"anonymous": refused, "dave": hidden, "carol": hidden, "bob": hidden}, teamMissing)
	if p := bs["alice"].postWith("/settings/admin/orgs/acme/teams", url.Values{"csrf": {csrfOf(t, bs, "alice")}, "name": {"ops"}},
		map[string]string{"Origin": "http://evil.example"}); p.Status != refused || teamMissing() != nil {
		t.Errorf("create team from another origin: %d", p.Status)
	}
	postMatrix(t, bs, "/settings/admin/orgs/acme/teams", newTeam, map[string]int{"alice": http.StatusSeeOther}, nil)
	if teamMissing() == nil {
		t.Fatal("alice's form made no team")
	}
	audited("team.create", "acme/ops")
	if p := bs["alice"].get("/settings/admin/orgs/acme"); strings.Contains(p.Body, `<script>alert("t")`) || !strings.Contains(p.Body, "&lt;script&gt;") {
		t.Errorf("team description not inert:\n%s", p.Body)
	}
	p = bs["alice"].post("/settings/admin/orgs/acme/teams", url.Values{"csrf": {csrfOf(t, bs, "alice")}, "name": {"Bad Name"}, "description": {"kept"}})
	if p.Status != http.StatusBadRequest || !strings.Contains(p.Body, `value="Bad Name"`) || !strings.Contains(p.Body, `value="kept"`) {
		t.Errorf("bad team name: %d\n%s", p.Status, p.Body)
	}

	// Deleting a team: the name must be typed.
	delTeam := "/settings/admin/orgs/acme/teams/ops/delete"
	postMatrix(t, bs, delTeam, func(string) url.Values { return url.Values{"confirm": {"ops"}} },
		map[string]int{"anonymous": refused, "dave": hidden, "carol": hidden, "bob": hidden}, func() error {
			if teamMissing() == nil {
				return errors.New("team ops is gone")
			}
			return nil
		})
	if p := bs["alice"].post(delTeam, url.Values{"csrf": {csrfOf(t, bs, "alice")}, "confirm": {"op"}}); p.Status != http.StatusBadRequest || teamMissing() == nil {
		t.Errorf("delete team with a mistyped name: %d", p.Status)
	}
	if p := bs["alice"].postWith(delTeam, url.Values{"csrf": {csrfOf(t, bs, "alice")}, "confirm": {"ops"}},
		map[string]string{"Origin": "http://evil.example"}); p.Status != refused || teamMissing() == nil {
		t.Errorf("delete team from another origin: %d", p.Status)
	}
	postMatrix(t, bs, delTeam, func(string) url.Values { return url.Values{"confirm": {"ops"}} }, map[string]int{"alice": http.StatusSeeOther}, nil)
	if err := teamMissing(); err != nil {
		t.Errorf("after deleting: %v", err)
	}
	audited("team.delete", "acme/ops")

	// Deleting an organisation: only its admins (and site admins).
	orgExists := func() error {
		_, err := h.store.GetNamespace(ctx, "org-dave")
		return err
	}
	delOrg := "/settings/admin/orgs/org-dave/delete"
	postMatrix(t, bs, delOrg, func(string) url.Values { return url.Values{"confirm": {"org-dave"}} },
		map[string]int{"anonymous": refused, "carol": hidden, "bob": hidden, "alice": hidden}, orgExists)
	if p := bs["dave"].post(delOrg, url.Values{"csrf": {csrfOf(t, bs, "dave")}, "confirm": {"org-carol"}}); p.Status != http.StatusBadRequest || orgExists() != nil {
		t.Errorf("delete org with another name typed: %d", p.Status)
	}
	postMatrix(t, bs, delOrg, func(string) url.Values { return url.Values{"confirm": {"org-dave"}, "purge": {"on"}} },
		map[string]int{"dave": http.StatusSeeOther}, nil)
	if orgExists() == nil {
		t.Error("org-dave survived its deletion")
	}
	audited("org.delete", "org-dave")

	// Deleting a user: site administrators, never themselves.
	delUser := "/settings/admin/users/erin/delete"
	userExists := func() error {
		_, err := h.store.GetUser(ctx, "erin")
		return err
	}
	postMatrix(t, bs, delUser, func(string) url.Values { return url.Values{"confirm": {"erin"}} },
		map[string]int{"anonymous": refused, "dave": refused, "carol": refused, "bob": refused, "alice": refused}, userExists)
	if p := admin.post("/settings/admin/users/admin/delete", url.Values{"csrf": {csrfOf(t, bs, "admin")}, "confirm": {"admin"}}); p.Status != http.StatusBadRequest {
		t.Errorf("delete oneself: %d", p.Status)
	}
	if p := admin.post(delUser, url.Values{"csrf": {csrfOf(t, bs, "admin")}}); p.Status != http.StatusBadRequest || userExists() != nil {
		t.Errorf("delete user without confirming: %d", p.Status)
	}
	if p := admin.get(delUser); p.Status != ok || !strings.Contains(p.Body, `<label for="confirm">`) {
		t.Errorf("confirmation page: %d\n%s", p.Status, p.Body)
	}
	postMatrix(t, bs, delUser, func(string) url.Values { return url.Values{"confirm": {"erin"}} }, map[string]int{"admin": http.StatusSeeOther}, nil)
	if userExists() == nil {
		t.Error("erin survived her deletion")
	}
	audited("user.delete", "erin")
}
