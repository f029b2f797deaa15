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
	for _, n := range []string{"alice", "v", "v1x", "team-v1", "vv1"} {
		if err := CheckNamespaceName(n); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}
