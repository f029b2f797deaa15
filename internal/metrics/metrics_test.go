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
	if Method("BREW") != "OTHER" || Method("GET") != "GET" {
		t.Error("method folding")
	}
}

func TestTemplate(t *testing.T) {
	for path, want := range map[string]string{
		"/v2/":                                  "/v2/",
		"/v2/_catalog":                          "/v2/_catalog",
		"/v2/secret-team/app/manifests/latest":  "/v2/{name}/manifests/{reference}",
		"/v2/a/b/c/manifests/sha256:abc":        "/v2/{name}/manifests/{reference}",
		"/v2/a/blobs/sha256:abc":                "/v2/{name}/blobs/{digest}",
		"/v2/a/blobs/uploads/":                  "/v2/{name}/blobs/uploads/",
		"/v2/a/blobs/uploads":                   "/v2/{name}/blobs/uploads/",
		"/v2/a/blobs/uploads/0f3c":              "/v2/{name}/blobs/uploads/{reference}",
		"/v2/a/blobs/uploads/../../../etc/pass": "/v2/{name}/blobs/uploads/{reference}",
		"/v2/a/tags/list":                       "/v2/{name}/tags/list",
		"/v2/a/referrers/sha256:abc":            "/v2/{name}/referrers/{digest}",
		"/v2/a/something":                       "/v2/*",
		"/token":                                "/token",
		"/token/jwks.json":                      "/token/jwks.json",
		"/token/alice":                          "/token/*",
		"/api/v1/users/alice":                   "/api/v1/*",
		"/api/team/charts":                      "/api/*",
		"/charts/team/index.yaml":               "/charts/{namespace}/index.yaml",
		"/charts/team/app-1.0.0.tgz":            "/charts/*",
		"/healthz":                              "/healthz",
		"/metrics":                              "/metrics",
		"/alice/secret":                         "/*",
	} {
		if got := Template(path); got != want {
			t.Errorf("Template(%q) = %q, want %q", path, got, want)
		}
	}
}
