package distclient

import (
	"strings"
	"testing"
)

// TestErrorSummary: the one line people read says who was logged in, what was
// refused and what to do, with human sizes for quotas, and no URL or digest.
func TestErrorSummary(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		e    Error
		want string
	}{
		{"403 as a user", Error{Method: "HEAD", URL: "/v2/admin/x/blobs/sha256:abc", Status: 403, Host: "h:5000", Repository: "h:5000/admin/x", User: "alice", Action: "push"},
			"denied: logged in to h:5000 as alice, who may not push to h:5000/admin/x; check the name, or ask for write access"},
		{"403 anonymous", Error{Status: 403, Host: "h:5000", Repository: "h:5000/a/b", Action: "pull"},
			"denied: anonymous users may not pull h:5000/a/b: run 'hubctl login h:5000'"},
		{"401 anonymous", Error{Status: 401, Host: "h:5000", Repository: "h:5000/a/b", Action: "pull"},
			"unauthorized: h:5000 needs a login to pull h:5000/a/b: run 'hubctl login h:5000'"},
		{"401 refused login", Error{Status: 401, Host: "h:5000", User: "bob"},
			"unauthorized: h:5000 refused the login of bob: run 'hubctl login h:5000' again"},
		{"quota", Error{Status: 403, Host: "h:5000", User: "alice", Action: "push", Codes: []ErrorDetail{{Code: "DENIED",
			Message: "link blob sha256:a94 to alice/x: namespace alice would exceed its storage quota of 10240 bytes: 2197 bytes used, blob of 1055669 bytes: storage quota exceeded"}}},
			"storage quota exceeded: namespace alice uses 2.1 KiB of its 10.0 KiB quota, and a blob of 1.0 MiB does not fit"},
		{"other", Error{Status: 400, Repository: "h/a", Codes: []ErrorDetail{{Code: "MANIFEST_INVALID", Message: "bad"}}},
			"400 Bad Request: MANIFEST_INVALID bad (h/a)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.e.Summary()
			if !strings.HasPrefix(got, tt.want) {
				t.Errorf("Summary() = %q\nwant prefix %q", got, tt.want)
			}
			if strings.Contains(got, "/v2/") || strings.Contains(got, "sha256:") {
				t.Errorf("Summary() carries a URL or digest: %q", got)
			}
		})
	}
}

func TestActionAndRepositoryOf(t *testing.T) {
	t.Parallel()
	if a := actionOf([]string{"repository:a/b:pull", "repository:a/b:pull,push"}); a != "push" {
		t.Errorf("actionOf = %q, want push", a)
	}
	if a := actionOf([]string{"registry:catalog:*"}); a != "list" {
		t.Errorf("actionOf(catalog) = %q, want list", a)
	}
	if a := actionOf([]string{"repository:a/b:delete"}); a != "delete" {
		t.Errorf("actionOf = %q, want delete", a)
	}
	for in, want := range map[string]string{
		"/v2/team/app/blobs/sha256:x":                  "team/app",
		"http://h:5000/v2/team/app/blobs/uploads/uuid": "team/app",
		"/v2/team/manifests/x/manifests/1":             "team/manifests/x",
		"/v2/":                                         "",
		"http://h/v2/a/tags/list":                      "a",
	} {
		if got := repositoryOf(in); got != want {
			t.Errorf("repositoryOf(%q) = %q, want %q", in, got, want)
		}
	}
}
