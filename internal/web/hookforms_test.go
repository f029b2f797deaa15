package web_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/hubctl/hubctl/internal/webhook"
)

var (
	secretRe = regexp.MustCompile(`whsec_[A-Za-z0-9+/=_-]+`)
	hookIDRe = regexp.MustCompile(`href="/settings/admin/webhooks/([0-9a-f-]{36})"`)
)

// TestWebhookForms: hooks are created, changed, turned off, given a new secret and
// deleted with the webhook pages' forms, by whoever manages them (the API's check),
// audited by the store as for the API; the secret is shown once, in the answer that
// made it; refused, forged and cross-site posts change nothing; markup in a field is
// shown inert beside the refusal.
func TestWebhookForms(t *testing.T) {
	h := startAdminHub(t)
	bs := h.acme()
	ctx := context.Background()
	admin := bs["admin"]
	audited := func(action, target string) {
		t.Helper()
		if p := admin.get("/settings/admin/audit?action=" + action); !strings.Contains(p.Body, "<td>"+target+"</td>") {
			t.Errorf("%s of %s not audited", action, target)
		}
	}
	count := func() int {
		hs, err := h.store.ListWebhooks(ctx, webhook.Filter{All: true})
		if err != nil {
			t.Fatal(err)
		}
		return len(hs)
	}
	none := func() error {
		if n := count(); n != 0 {
			return errors.New("a hook was made")
		}
		return nil
	}
	newHook := func(string) url.Values {
		return url.Values{"scope": {"namespace"}, "target": {"acme"}, "url": {"http://hooks.invalid/a"}, "events": {"manifest.pushed, tag.deleted"},
			"repositories": {"acme/app*"}, "format": {"hubctl"}}
	}
	postMatrix(t, bs, "/settings/admin/webhooks", newHook,
		map[string]int{"anonymous": refused, "dave": refused, "carol": refused, "bob": refused}, none)
	if p := bs["alice"].postWith("/settings/admin/webhooks", func() url.Values { f := newHook(""); f.Set("csrf", csrfOf(t, bs, "alice")); return f }(),
		map[string]string{"Origin": "http://evil.example"}); p.Status != refused || none() != nil {
		t.Errorf("create from another origin: %d", p.Status)
	}
	site := url.Values{"scope": {"site"}, "url": {"http://hooks.invalid/site"}, "format": {"hubctl"}}
	postMatrix(t, bs, "/settings/admin/webhooks", func(string) url.Values { return site }, map[string]int{"alice": refused}, none)

	f := newHook("")
	f.Set("csrf", csrfOf(t, bs, "alice"))
	p := bs["alice"].post("/settings/admin/webhooks", f)
	secret := secretRe.FindString(p.Body)
	m := hookIDRe.FindStringSubmatch(p.Body)
	if p.Status != http.StatusCreated || secret == "" || m == nil || !strings.Contains(p.Header.Get("Cache-Control"), "no-store") {
		t.Fatalf("create: %d %q\n%s", p.Status, p.Header.Get("Cache-Control"), p.Body)
	}
	id := m[1]
	hk, err := h.store.GetWebhook(ctx, id)
	if err != nil || hk.URL != "http://hooks.invalid/a" || len(hk.Events) != 2 || strings.Join(hk.Repositories, ",") != "acme/app*" || !hk.Enabled {
		t.Fatalf("hook made by the form: %+v %v", hk, err)
	}
	audited("webhook.create", id)
	for _, path := range []string{"/settings/admin/webhooks/" + id, "/settings/admin/webhooks?namespace=acme"} {
		if p := bs["alice"].get(path); strings.Contains(p.Body, secret) || secretRe.MatchString(p.Body) {
			t.Errorf("%s shows the secret again", path)
		}
	}
	postMatrix(t, bs, "/settings/admin/webhooks", func(string) url.Values { return site }, map[string]int{"admin": http.StatusCreated}, nil)

	// A refusal keeps the input and shows markup inert.
	bad := newHook("")
	bad.Set("csrf", csrfOf(t, bs, "alice"))
	bad.Set("url", `javascript:"><script>alert(1)</script>`)
	if p := bs["alice"].post("/settings/admin/webhooks", bad); p.Status != http.StatusBadRequest || strings.Contains(p.Body, "<script>alert") ||
		!strings.Contains(p.Body, "&lt;script&gt;alert(1)") || !strings.Contains(p.Body, `value="acme/app*"`) {
		t.Errorf("bad URL: %d\n%s", p.Status, p.Body)
	}

	// Editing: only those who manage the hook; a refused post changes nothing.
	edit := "/settings/admin/webhooks/" + id
	unchanged := func() error {
		if hk, _ := h.store.GetWebhook(ctx, id); hk.URL != "http://hooks.invalid/a" || !hk.Enabled {
			return errors.New("hook changed")
		}
		return nil
	}
	change := func(string) url.Values {
		return url.Values{"url": {"http://hooks.invalid/b"}, "events": {"tag.moved"}, "repositories": {"acme/web"}, "format": {"cloudevents"}}
	}
	postMatrix(t, bs, edit, change, map[string]int{"anonymous": refused, "dave": hidden, "carol": hidden, "bob": hidden}, unchanged)
	for _, path := range []string{edit + "/enabled", edit + "/rotate-secret", edit + "/delete"} {
		postMatrix(t, bs, path, func(string) url.Values { return url.Values{"enabled": {"false"}, "confirm": {"delete"}} },
			map[string]int{"anonymous": refused, "dave": hidden, "carol": hidden, "bob": hidden}, unchanged)
	}
	if p := bs["alice"].postWith(edit, func() url.Values { f := change(""); f.Set("csrf", csrfOf(t, bs, "alice")); return f }(),
		map[string]string{"Origin": "http://evil.example"}); p.Status != refused || unchanged() != nil {
		t.Errorf("edit from another origin: %d", p.Status)
	}
	if p := bs["alice"].post(edit, url.Values{"csrf": {csrfOf(t, bs, "alice")}, "url": {"http://hooks.invalid/b"}, "format": {"nope"}}); p.Status != http.StatusBadRequest ||
		unchanged() != nil || !strings.Contains(p.Body, `value="http://hooks.invalid/b"`) {
		t.Errorf("edit with a bad format: %d\n%s", p.Status, p.Body)
	}
	postMatrix(t, bs, edit, change, map[string]int{"alice": http.StatusSeeOther}, nil)
	if hk, _ := h.store.GetWebhook(ctx, id); hk.URL != "http://hooks.invalid/b" || hk.Format != "cloudevents" || string(hk.Events[0]) != "tag.moved" ||
		strings.Join(hk.Repositories, ",") != "acme/web" {
		t.Errorf("after editing: %+v", hk)
	}
	audited("webhook.update", id)

	// Turning it off and on.
	postMatrix(t, bs, edit+"/enabled", func(string) url.Values { return url.Values{"enabled": {"false"}} }, map[string]int{"alice": http.StatusSeeOther}, nil)
	if hk, _ := h.store.GetWebhook(ctx, id); hk.Enabled {
		t.Error("the hook is still on")
	}
	audited("webhook.disable", id)

	// Rotating: a new secret, shown once.
	rf := url.Values{"csrf": {csrfOf(t, bs, "alice")}, "expire_previous_in": {"1h"}}
	p = bs["alice"].post(edit+"/rotate-secret", rf)
	rotated := secretRe.FindString(p.Body)
	if p.Status != http.StatusOK || rotated == "" || rotated == secret {
		t.Fatalf("rotate: %d\n%s", p.Status, p.Body)
	}
	if p := bs["alice"].get(edit); strings.Contains(p.Body, rotated) || !strings.Contains(p.Body, "previous one still signs") {
		t.Errorf("hook page after rotating:\n%s", p.Body)
	}
	audited("webhook.rotate_secret", id)
	rf.Set("expire_previous_in", "9999h")
	if p := bs["alice"].post(edit+"/rotate-secret", rf); p.Status != http.StatusBadRequest || secretRe.MatchString(p.Body) {
		t.Errorf("rotate keeping the previous secret too long: %d", p.Status)
	}

	// Deleting: "delete" typed.
	if p := bs["alice"].get(edit + "/delete"); p.Status != ok || !strings.Contains(p.Body, "http://hooks.invalid/b") {
		t.Errorf("delete page: %d", p.Status)
	}
	if p := bs["alice"].post(edit+"/delete", url.Values{"csrf": {csrfOf(t, bs, "alice")}, "confirm": {id}}); p.Status != http.StatusBadRequest {
		t.Errorf("delete without typing delete: %d", p.Status)
	}
	if _, err := h.store.GetWebhook(ctx, id); err != nil {
		t.Fatal("a refused delete deleted the hook")
	}
	postMatrix(t, bs, edit+"/delete", func(string) url.Values { return url.Values{"confirm": {"delete"}} }, map[string]int{"alice": http.StatusSeeOther}, nil)
	if _, err := h.store.GetWebhook(ctx, id); !errors.Is(err, webhook.ErrNotFound) {
		t.Errorf("after deleting: %v", err)
	}
	audited("webhook.delete", id)
}
