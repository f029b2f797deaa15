package metrics

import "testing"

func TestRoute(t *testing.T) {
	for path, want := range map[string]string{
		"/v2/":                                  "v2",
		"/v2":                                   "v2",
		"/v2/_catalog":                          "catalog",
		"/v2/a/b/manifests/latest":              "manifest",
		"/v2/manifests/manifests/manifests/1":   "manifest",
		"/v2/a/blobs/sha256:abc":                "blob",
		"/v2/a/blobs/uploads/":                  "blob_upload",
		"/v2/a/blobs/uploads/0f3c":              "blob_upload",
		"/v2/a/tags/list":                       "tags_list",
		"/v2/a/referrers/sha256:abc":            "referrers",
		"/v2/a/something":                       "v2_other",
		"/token":                                "token",
		"/token/jwks.json":                      "token",
		"/api/v1/users":                         "api",
		"/api/team/charts":                      "charts",
		"/charts/team/index.yaml":               "charts",
		"/healthz":                              "healthz",
		"/metrics":                              "metrics",
		"/favicon.ico":                          "other",
		"/v2/a/blobs/uploads/../../../etc/pass": "blob_upload",
	} {
		if got := Route(path); got != want {
			t.Errorf("Route(%q) = %q, want %q", path, got, want)
		}
	}
	if method("BREW") != "OTHER" || method("GET") != "GET" {
		t.Error("method folding")
	}
}
