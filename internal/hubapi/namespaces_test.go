package hubapi_test

import (
	"context"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/metadata"
)

func TestQuotaAndUsage(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.want(f.do(asAlice, "POST", "/api/v1/orgs", hubtypes.CreateOrgRequest{Name: "acme"}), 201, "")
	d := digest.FromString("layer")
	if err := f.store.PutBlob(ctx, metadata.Blob{Digest: d, Size: 300}); err != nil {
		t.Fatal(err)
	}
	for _, repo := range []string{"acme/app", "acme/web", "bob/tools"} {
		if err := f.store.LinkBlob(ctx, repo, d); err != nil {
			t.Fatal(err)
		}
	}

	// Only site admins set quotas.
	f.want(f.do(asAlice, "PUT", "/api/v1/namespaces/acme/quota", hubtypes.SetQuotaRequest{Bytes: 1000}), 403, "DENIED")
	u := decodeAs[hubtypes.Usage](t, f.want(f.do(asAdmin, "PUT", "/api/v1/namespaces/acme/quota", hubtypes.SetQuotaRequest{Bytes: 1000}), 200, ""))
	if u != (hubtypes.Usage{Namespace: "acme", UsedBytes: 300, QuotaBytes: 1000}) {
		t.Errorf("PUT quota = %+v", u)
	}
	f.wantAudit("quota.change", "admin", "acme")
	f.want(f.do(asAdmin, "PUT", "/api/v1/namespaces/ghost/quota", hubtypes.SetQuotaRequest{Bytes: 1}), 404, "NAME_UNKNOWN")
	f.want(f.do(asAdmin, "GET", "/api/v1/namespaces/acme/quota", nil), 405, "UNSUPPORTED")

	// Usage: the org's admins and site admins; not other users.
	for _, a := range []auth{asAlice, asAdmin} {
		u = decodeAs[hubtypes.Usage](t, f.want(f.do(a, "GET", "/api/v1/namespaces/acme/usage", nil), 200, ""))
		if u != (hubtypes.Usage{Namespace: "acme", UsedBytes: 300, QuotaBytes: 1000}) {
			t.Errorf("GET usage = %+v", u)
		}
	}
	f.want(f.do(asBob, "GET", "/api/v1/namespaces/acme/usage", nil), 404, "NAME_UNKNOWN")
	f.want(f.do(anon, "GET", "/api/v1/namespaces/acme/usage", nil), 401, "UNAUTHORIZED")
	f.want(f.do(asAdmin, "GET", "/api/v1/namespaces/ghost/usage", nil), 404, "NAME_UNKNOWN")
	// A personal namespace: its user and site admins.
	u = decodeAs[hubtypes.Usage](t, f.want(f.do(asBob, "GET", "/api/v1/namespaces/bob/usage", nil), 200, ""))
	if u != (hubtypes.Usage{Namespace: "bob", UsedBytes: 300}) {
		t.Errorf("GET bob usage = %+v", u)
	}
	f.want(f.do(asAlice, "GET", "/api/v1/namespaces/bob/usage", nil), 404, "NAME_UNKNOWN")

	// The organisation and the user report it to those who may see it.
	o := decodeAs[hubtypes.Org](t, f.want(f.do(asAlice, "GET", "/api/v1/orgs/acme", nil), 200, ""))
	if o.Usage == nil || o.Usage.UsedBytes != 300 || o.Usage.QuotaBytes != 1000 {
		t.Errorf("GET org usage = %+v", o.Usage)
	}
	if o = decodeAs[hubtypes.Org](t, f.want(f.do(asBob, "GET", "/api/v1/orgs/acme", nil), 200, "")); o.Usage != nil {
		t.Errorf("GET org shows bob the usage: %+v", o.Usage)
	}
	usr := decodeAs[hubtypes.User](t, f.want(f.do(asBob, "GET", "/api/v1/users/bob", nil), 200, ""))
	if usr.Usage == nil || usr.Usage.UsedBytes != 300 {
		t.Errorf("GET user usage = %+v", usr.Usage)
	}

	// Zero removes the quota.
	u = decodeAs[hubtypes.Usage](t, f.want(f.do(asAdmin, "PUT", "/api/v1/namespaces/acme/quota", hubtypes.SetQuotaRequest{}), 200, ""))
	if u.QuotaBytes != 0 {
		t.Errorf("quota after clearing = %d", u.QuotaBytes)
	}
}
