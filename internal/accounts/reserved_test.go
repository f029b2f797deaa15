package accounts

import (
	"errors"
	"testing"
)

func TestCheckNamespaceName(t *testing.T) {
	for _, n := range []string{"v1", "v2", "v10"} {
		if err := CheckNamespaceName(n); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid (it collides with /api/%s/)", n, err, n)
		}
	}
	for _, n := range ReservedNames {
		if err := CheckNamespaceName(n); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid (the hub serves /%s)", n, err, n)
		}
		if !IsReserved(n) {
			t.Errorf("IsReserved(%q) = false", n)
		}
	}
	if err := CheckNamespaceName(SystemNamespace); !errors.Is(err, ErrInvalid) || !IsReserved(SystemNamespace) {
		t.Errorf("%s: %v, want ErrInvalid (the hub's own images)", SystemNamespace, err)
	}
	if CheckName(SystemNamespace) != nil {
		t.Errorf("%s is not a valid name at all: nothing would be reserved by it", SystemNamespace)
	}
	for repo, want := range map[string]bool{SystemNamespace + "/workflow-agent": true, SystemNamespace + "/": true,
		SystemNamespace: false, SystemNamespace + "x/a": false, "team/" + SystemNamespace: false} {
		if IsSystemRepository(repo) != want {
			t.Errorf("IsSystemRepository(%q) = %v", repo, !want)
		}
	}
	for _, n := range []string{"alice", "v", "v1x", "team-v1", "vv1", "admin", "logins", "static-site", "explorer"} {
		if err := CheckNamespaceName(n); err != nil {
			t.Errorf("%s: %v", n, err)
		}
		if IsReserved(n) {
			t.Errorf("IsReserved(%q) = true", n)
		}
	}
}

// TestReservedNamesAreNames: a reserved name that CheckName refuses anyway would hide
// a typo in the list (nothing would be reserved by it).
func TestReservedNamesAreNames(t *testing.T) {
	for _, n := range ReservedNames {
		if err := CheckName(n); err != nil {
			t.Errorf("reserved %q is not a valid name at all: %v", n, err)
		}
	}
}
