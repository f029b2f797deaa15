package dockerdaemon

import (
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestChainIDs follows the OCI image spec: ChainID(L0) = DiffID(L0), ChainID(L0|…|Ln)
// = sha256(ChainID(L0|…|Ln-1) + " " + DiffID(Ln)).
func TestChainIDs(t *testing.T) {
	a, b, c := digest.FromString("a").String(), digest.FromString("b").String(), digest.FromString("c").String()
	ab := digest.FromString(a + " " + b)
	abc := digest.FromString(ab.String() + " " + c)
	got := ChainIDs([]string{a, b, c})
	if len(got) != 3 || got[0] != digest.Digest(a) || got[1] != ab || got[2] != abc {
		t.Fatalf("ChainIDs = %v, want [%s %s %s]", got, a, ab, abc)
	}
	if len(ChainIDs(nil)) != 0 {
		t.Error("ChainIDs(nil) is not empty")
	}
}
