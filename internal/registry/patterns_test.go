package registry

import (
	"bytes"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/auth/token"
)

// TestMachinePatternGrants: the registry honours a repository pattern (NAMESPACE/*)
// only in a machine token (subject KIND:ID), only for repositories below the prefix
// (a repository made later included, never the prefix itself or a sibling namespace
// sharing its first letters), only for pull and push (a claim saying delete or "*"
// deletes nothing), and never `*` alone. The tokens are signed by a real issuer: the
// claim is what a forged-by-the-minter token could say at worst.
func TestMachinePatternGrants(t *testing.T) {
	keys, err := token.LoadOrCreateKeySet(t.TempDir() + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	v := &token.Verifier{Keys: keys, Issuer: "hubctl", Audience: "hubctl"}
	a := &authEnv{env: newEnv(t, func(o *Options) {
		o.Auth = &Auth{Service: "hubctl", Anonymous: "anonymous", Verify: func(raw string) (Token, error) {
			c, err := v.Verify(raw)
			if err != nil {
				return Token{}, err
			}
			named, patterns := MachinePatterns(c.Subject, c.Access)
			return Token{Subject: c.Subject, Access: named, Patterns: patterns, ExpiresAt: c.ExpiresAt}, nil
		}}
	}), issuer: &token.Issuer{Keys: keys, Issuer: "hubctl", Service: "hubctl"}}
	sign := func(subject string, access ...scope.Access) string {
		tok, err := a.issuer.Issue(subject, token.Hub{}, access)
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + tok.Raw
	}
	pat := func(name string, acts ...string) scope.Access {
		return scope.Access{Type: scope.TypeRepository, Name: name, Actions: acts}
	}
	blob := []byte("layer")
	d := digest.FromBytes(blob)
	push := func(auth, repo string) int {
		return a.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), bytes.NewReader(blob), "Authorization", auth).status
	}

	machine := sign("workflow-run:7", pat("acme/*", scope.Pull, scope.Push, scope.Delete, scope.All))
	for _, repo := range []string{"acme/new", "acme/deep/er"} {
		if got := push(machine, repo); got != 201 {
			t.Errorf("machine pattern push to %s: %d, want 201", repo, got)
		}
		if got := a.do("HEAD", "/v2/"+repo+"/blobs/"+d.String(), nil, "Authorization", machine).status; got != 200 {
			t.Errorf("machine pattern pull from %s: %d, want 200", repo, got)
		}
	}
	for _, repo := range []string{"acme", "acme-evil/x", "acmex/y", "other/acme"} {
		if got := push(machine, repo); got != 401 {
			t.Errorf("machine pattern acme/* pushed to %s: %d, want 401", repo, got)
		}
	}
	// delete and "*" in a pattern's claim grant nothing.
	if got := a.do("DELETE", "/v2/acme/new/blobs/"+d.String(), nil, "Authorization", machine).status; got != 401 {
		t.Errorf("pattern delete: %d, want 401", got)
	}
	// A cross-repository mount needs pull on the source: the pattern gives it within
	// acme, never from outside.
	if got := a.do("POST", "/v2/acme/copy/blobs/uploads/?mount="+d.String()+"&from=acme/new", nil, "Authorization", machine).status; got != 201 {
		t.Errorf("mount within the pattern: %d, want 201", got)
	}
	if got := a.do("POST", "/v2/acme/copy2/blobs/uploads/?mount="+d.String()+"&from=elsewhere/x", nil, "Authorization", machine).status; got == 201 {
		t.Errorf("mount from outside the pattern: %d", got)
	}

	for name, auth := range map[string]string{
		// An account's token never carries patterns: the token service does not
		// grant them, and the registry ignores them if it did.
		"user":      sign("alice", pat("acme/*", scope.Pull, scope.Push)),
		"anonymous": sign("anonymous", pat("acme/*", scope.Pull, scope.Push)),
		// Every namespace: refused even in a machine token.
		"star":      sign("workflow-run:7", pat("*", scope.Pull, scope.Push)),
		"starstar":  sign("workflow-run:7", pat("acme/**", scope.Pull, scope.Push)),
		"slashstar": sign("workflow-run:7", pat("/*", scope.Pull, scope.Push)),
		"class":     sign("workflow-run:7", scope.Access{Type: scope.TypeRepository, Class: "plugin", Name: "acme/*", Actions: []string{scope.Push}}),
	} {
		if got := push(auth, "acme/other"); got != 401 {
			t.Errorf("%s: push with a pattern: %d, want 401", name, got)
		}
	}
}

func TestMachinePatternsSplit(t *testing.T) {
	named, patterns := MachinePatterns("webhook:x", []scope.Access{
		{Type: scope.TypeRepository, Name: "acme/app", Actions: []string{scope.Pull}},
		{Type: scope.TypeRepository, Name: "acme/*", Actions: []string{scope.Delete, scope.Push}},
		{Type: scope.TypeRepository, Name: "acme/*/x", Actions: []string{scope.Push}},
		{Type: scope.TypeRegistry, Name: "catalog", Actions: []string{scope.All}},
	})
	if len(named) != 2 || named[0].Name != "acme/app" || named[1].Name != "catalog" {
		t.Errorf("named %+v", named)
	}
	if len(patterns) != 1 || patterns[0].Name != "acme/*" || len(patterns[0].Actions) != 1 || patterns[0].Actions[0] != scope.Push {
		t.Errorf("patterns %+v", patterns)
	}
}
