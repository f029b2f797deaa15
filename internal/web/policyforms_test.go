package web_test

import (
	"context"
	"errors"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestPolicyForms: a scope's policy is set and removed with the policies page's
// forms, through the policy API's own code: the admin role on the scope, the
// document checked, audited as policy.set and policy.delete; refused, forged and
// cross-site posts change nothing; a bad document is kept (inert) beside the refusal.
func TestPolicyForms(t *testing.T) {
	h := startAdminHub(t)
	bs := h.acme()
	ctx := context.Background()
	admin := bs["admin"]
	policyOf := func(scope string) string {
		all, err := h.store.ListPolicies(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range all {
			if s.Scope == scope {
				return strings.Join(s.Policy.ImmutableTags, ",")
			}
		}
		return ""
	}
	none := func() error {
		if p := policyOf("acme"); p != "" {
			return errors.New("acme has a policy: " + p)
		}
		return nil
	}
	doc := `{"immutable_tags":["v*"],"retention":{"rules":[{"tags":"dev-*","keep_newest":3}]}}`
	set := func(string) url.Values { return url.Values{"scope": {"acme"}, "policy": {doc}} }
	postMatrix(t, bs, "/settings/admin/policies", set,
		map[string]int{"anonymous": refused, "dave": refused, "carol": refused, "bob": refused}, none)
	if p := bs["alice"].postWith("/settings/admin/policies", url.Values{"csrf": {csrfOf(t, bs, "alice")}, "scope": {"acme"}, "policy": {doc}},
		map[string]string{"Origin": "http://evil.example"}); p.Status != refused || none() != nil {
		t.Errorf("set from another origin: %d", p.Status)
	}
	bad := `{"immutable_tags":["<script>alert(1)</script>"],"nope":1}`
	p := bs["alice"].post("/settings/admin/policies", url.Values{"csrf": {csrfOf(t, bs, "alice")}, "scope": {"acme"}, "policy": {bad}})
	if p.Status != http.StatusBadRequest || none() != nil || strings.Contains(p.Body, "<script>alert") || !strings.Contains(p.Body, html.EscapeString(bad)) {
		t.Errorf("bad document: %d\n%s", p.Status, p.Body)
	}
	postMatrix(t, bs, "/settings/admin/policies", set, map[string]int{"alice": http.StatusSeeOther}, nil)
	if got := policyOf("acme"); got != "v*" {
		t.Fatalf("acme's policy after the form: %q", got)
	}
	if p := admin.get("/settings/admin/audit?action=policy.set"); !strings.Contains(p.Body, "<td>acme</td>") || !strings.Contains(p.Body, "<td>alice</td>") {
		t.Errorf("policy.set not audited:\n%s", p.Body)
	}
	// The edit link fills the form with the stored policy, which sets again as it is.
	p = bs["alice"].get("/settings/admin/policies?scope=acme")
	m := regexp.MustCompile(`(?s)<textarea id="policy-doc"[^>]*>(.*?)</textarea>`).FindStringSubmatch(p.Body)
	if m == nil || !strings.Contains(m[1], "dev-*") {
		t.Fatalf("edit form not filled:\n%s", p.Body)
	}
	if p := bs["alice"].post("/settings/admin/policies", url.Values{"csrf": {csrfOf(t, bs, "alice")}, "scope": {"acme"}, "policy": {html.UnescapeString(m[1])}}); p.Status != http.StatusSeeOther {
		t.Errorf("the stored policy set again: %d\n%s", p.Status, p.Body)
	}

	// Removing: the scope typed.
	del := "/settings/admin/policies/delete?scope=acme"
	postMatrix(t, bs, del, func(string) url.Values { return url.Values{"confirm": {"acme"}} },
		map[string]int{"anonymous": refused, "dave": refused, "carol": refused, "bob": refused}, func() error {
			if policyOf("acme") == "" {
				return errors.New("the policy is gone")
			}
			return nil
		})
	if p := bs["alice"].post(del, url.Values{"csrf": {csrfOf(t, bs, "alice")}, "confirm": {"acm"}}); p.Status != http.StatusBadRequest || policyOf("acme") == "" {
		t.Errorf("remove with a mistyped scope: %d", p.Status)
	}
	if p := bs["alice"].get(del); p.Status != ok || !strings.Contains(p.Body, `<label for="confirm">`) {
		t.Errorf("remove page: %d", p.Status)
	}
	postMatrix(t, bs, del, func(string) url.Values { return url.Values{"confirm": {"acme"}} }, map[string]int{"alice": http.StatusSeeOther}, nil)
	if err := none(); err != nil {
		t.Error(err)
	}
	if p := admin.get("/settings/admin/audit?action=policy.delete"); !strings.Contains(p.Body, "<td>acme</td>") {
		t.Error("policy.delete not audited")
	}
}
