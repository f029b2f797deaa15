package password

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

func TestHashVerify(t *testing.T) {
	h, err := Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q is not in the expected PHC form", h)
	}
	ok, err := Verify("correct horse", h)
	if err != nil || !ok {
		t.Fatalf("Verify(right password) = %v, %v", ok, err)
	}
	for _, wrong := range []string{"", "correct horsE", "correct horse ", "correct hors"} {
		if ok, err := Verify(wrong, h); err != nil || ok {
			t.Fatalf("Verify(%q) = %v, %v; want false, nil", wrong, ok, err)
		}
	}
	h2, _ := Hash("correct horse")
	if h2 == h {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	if NeedsRehash(h) {
		t.Fatal("a fresh hash needs a rehash")
	}
}

// TestVerifyStoredParameters checks that Verify reads its parameters from the string,
// so hashes made with other settings keep working after the defaults change.
func TestVerifyStoredParameters(t *testing.T) {
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte("pw"), salt, 1, 64, 2, 24)
	enc := fmt.Sprintf("$argon2id$v=19$m=64,t=1,p=2$%s$%s", b64.EncodeToString(salt), b64.EncodeToString(key))
	ok, err := Verify("pw", enc)
	if err != nil || !ok {
		t.Fatalf("Verify with stored parameters = %v, %v", ok, err)
	}
	if ok, _ := Verify("pw2", enc); ok {
		t.Fatal("wrong password verified")
	}
	if !NeedsRehash(enc) {
		t.Fatal("a hash with old parameters does not need a rehash")
	}

	// Any one parameter differing from today's asks for a rehash.
	phc := func(m, t, p, saltLen, keyLen int) string {
		salt := make([]byte, saltLen)
		key := argon2.IDKey([]byte("pw"), salt, uint32(t), uint32(m), uint8(p), uint32(keyLen))
		return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", m, t, p, b64.EncodeToString(salt), b64.EncodeToString(key))
	}
	if cur := phc(19456, 2, 1, 16, 32); NeedsRehash(cur) {
		t.Fatalf("%s has today's parameters but needs a rehash", cur)
	}
	for _, old := range []string{
		phc(9216, 2, 1, 16, 32),
		phc(19456, 1, 1, 16, 32),
		phc(19456, 2, 2, 16, 32),
		phc(19456, 2, 1, 8, 32),
		phc(19456, 2, 1, 16, 16),
	} {
		if ok, err := Verify("pw", old); !ok || err != nil {
			t.Fatalf("Verify(%s) = %v, %v", old, ok, err)
		}
		if !NeedsRehash(old) {
			t.Errorf("NeedsRehash(%s) = false", old)
		}
	}
}

func TestMalformed(t *testing.T) {
	good, err := Hash("pw")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$")
	salt, key := parts[4], parts[5]
	bad := []string{
		"",
		"pw",
		"$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + key,
		"$argon2id$v=16$m=19456,t=2,p=1$" + salt + "$" + key,
		"$argon2id$m=19456,t=2,p=1$" + salt + "$" + key,
		"$argon2id$v=19$t=2,m=19456,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=19456,t=2$" + salt + "$" + key,
		"$argon2id$v=19$m=019456,t=2,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=+19456,t=2,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=19456,t=0,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=19456,t=2,p=0$" + salt + "$" + key,
		"$argon2id$v=19$m=4,t=2,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=4194304,t=2,p=1$" + salt + "$" + key, // 4 GiB: refused, not allocated
		"$argon2id$v=19$m=19456,t=1000,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=19456,t=2,p=300$" + salt + "$" + key,
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "=$" + key,
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key + "==",
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$",
		"$argon2id$v=19$m=19456,t=2,p=1$$" + key,
		"$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$" + key, // 4-byte salt
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key + "$",
		"x$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key,
	}
	for _, enc := range bad {
		ok, err := Verify("pw", enc)
		if ok || !errors.Is(err, ErrMalformed) {
			t.Errorf("Verify(%q) = %v, %v; want false, ErrMalformed", enc, ok, err)
		}
		if !NeedsRehash(enc) {
			t.Errorf("NeedsRehash(%q) = false for a malformed hash", enc)
		}
	}
}

func TestRandomSecret(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		s, err := RandomSecret(AccessTokenPrefix)
		if err != nil {
			t.Fatal(err)
		}
		body, ok := strings.CutPrefix(s, "hub_")
		if !ok || len(body) != 43 {
			t.Fatalf("secret %q: want hub_ and 43 characters", s)
		}
		for _, c := range body {
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
				t.Fatalf("secret %q has a non-base62 character %q", s, c)
			}
		}
		if seen[s] {
			t.Fatalf("secret %q repeated", s)
		}
		seen[s] = true
	}
	s, err := RandomSecret(RefreshTokenPrefix)
	if err != nil || !strings.HasPrefix(s, "hubr_") || len(s) != len("hubr_")+43 {
		t.Fatalf("refresh secret %q, %v", s, err)
	}
}

func TestSecretHash(t *testing.T) {
	want := sha256.Sum256([]byte("hub_abc"))
	if got := SecretHash("hub_abc"); !bytes.Equal(got, want[:]) {
		t.Fatalf("SecretHash = %x, want %x", got, want)
	}
	if bytes.Equal(SecretHash("hub_abc"), SecretHash("hub_abd")) {
		t.Fatal("different secrets hash equal")
	}
}

func BenchmarkHash(b *testing.B) {
	for b.Loop() {
		if _, err := Hash("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	h, err := Hash("correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if ok, err := Verify("correct horse battery staple", h); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
}
