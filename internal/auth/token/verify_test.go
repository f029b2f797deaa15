package token

import (
	"strings"
	"testing"
)

// FuzzVerify feeds arbitrary strings, seeded with a genuine token and near misses of
// it, to Verify: it must never panic, and nothing but the genuine token may verify.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f)
	tok, err := fx.iss.Issue("alice", Hub{}, pullPush)
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(tok.Raw, ".")
	for _, s := range []string{
		tok.Raw,
		parts[0] + "." + parts[1] + ".",
		parts[0] + "." + parts[1],
		"eyJhbGciOiJub25lIn0.e30.",
		"eyJhbGciOiJIUzI1NiJ9.e30.c2ln",
		"..",
		"a.b.c.d",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := fx.ver.Verify(raw)
		if err == nil && raw != tok.Raw {
			t.Fatalf("forged token verified: %q → %+v", raw, c)
		}
		if err != nil && c != nil {
			t.Fatalf("error %v with claims %+v", err, c)
		}
	})
}

// BenchmarkVerify compares a cold verification (the ES256 signature check, as for a
// client's first request with a new token) with a cache hit (every later request).
func BenchmarkVerify(b *testing.B) {
	fx := newFixture(b)
	tok, err := fx.iss.Issue("alice", Hub{}, pullPush)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		size int
	}{{"uncached", -1}, {"cached", 0}} {
		v := &Verifier{Keys: fx.keys, Issuer: "hubctl-test", Audience: "registry.test", Now: fx.clk.now, CacheSize: bc.size}
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := v.Verify(tok.Raw); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"-parallel", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := v.Verify(tok.Raw); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkIssue measures signing, the cost of one /token response.
func BenchmarkIssue(b *testing.B) {
	fx := newFixture(b)
	for b.Loop() {
		if _, err := fx.iss.Issue("alice", Hub{}, pullPush); err != nil {
			b.Fatal(err)
		}
	}
}
