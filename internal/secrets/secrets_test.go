package secrets

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func ring(t *testing.T, ids ...string) (*Keyring, []Key) {
	t.Helper()
	var keys []Key
	for _, id := range ids {
		k, err := GenerateKey(id)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	r, err := NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return r, keys
}

func TestRoundTrip(t *testing.T) {
	r, _ := ring(t, "a")
	for _, pt := range [][]byte{nil, []byte("whsec_c2VjcmV0"), bytes.Repeat([]byte{0}, 4096)} {
		env, err := r.Seal(pt, "webhooks/1/secret")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(env, "v1:a:") {
			t.Fatalf("envelope %q: want v1:a:…", env)
		}
		if len(pt) > 4 && strings.Contains(env, string(pt)) {
			t.Fatal("the plaintext shows in the envelope")
		}
		got, err := r.Open(env, "webhooks/1/secret")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, pt) {
			t.Fatalf("got %q, want %q", got, pt)
		}
	}
	// Two seals of one plaintext differ (random nonces).
	e1, _ := r.Seal([]byte("x"), "ad")
	e2, _ := r.Seal([]byte("x"), "ad")
	if e1 == e2 {
		t.Fatal("two seals are equal: nonce reused")
	}
}

func TestTamperAndWrongAD(t *testing.T) {
	r, _ := ring(t, "a", "b")
	env, err := r.Seal([]byte("the secret"), "webhooks/1/secret")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Open(env, "webhooks/2/secret"); !errors.Is(err, ErrOpen) {
		t.Fatalf("another row's ad: %v, want ErrOpen", err)
	}
	if _, err := r.Open(env, "webhooks/1/headers"); !errors.Is(err, ErrOpen) {
		t.Fatalf("another purpose's ad: %v, want ErrOpen", err)
	}
	data := env[len("v1:b:"):]
	raw := []byte(env)
	for i := len("v1:b:"); i < len(raw); i++ {
		c := append([]byte(nil), raw...)
		c[i] ^= 1
		if _, err := r.Open(string(c), "webhooks/1/secret"); err == nil {
			t.Fatalf("flipping byte %d still opened", i)
		}
	}
	// Relabelling the key id is caught even when both keys are held.
	swapped := strings.Replace(env, "v1:b:", "v1:a:", 1)
	if _, err := r.Open(swapped, "webhooks/1/secret"); !errors.Is(err, ErrOpen) {
		t.Fatalf("relabelled key id: %v, want ErrOpen", err)
	}
	for _, bad := range []string{"", "v1", "v2:b:" + data, "v1::" + data, "v1:b:!!!", "v1:b:AAAA"} {
		if _, err := r.Open(bad, "webhooks/1/secret"); err == nil {
			t.Fatalf("%q opened", bad)
		}
	}
}

func TestUnknownKey(t *testing.T) {
	old, _ := ring(t, "old")
	env, _ := old.Seal([]byte("s"), "ad")
	r, _ := ring(t, "new")
	if _, err := r.Open(env, "ad"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("got %v, want ErrUnknownKey", err)
	}
}

func TestRotation(t *testing.T) {
	one, keys := ring(t, "k1")
	env, _ := one.Seal([]byte("s"), "ad")
	k2, _ := GenerateKey("k2")
	two, err := NewKeyring(keys[0], k2)
	if err != nil {
		t.Fatal(err)
	}
	if two.Newest() != "k2" {
		t.Fatalf("newest %s, want the last listed", two.Newest())
	}
	if !two.NeedsRotation(env) {
		t.Fatal("an envelope of k1 needs no rotation?")
	}
	re, err := two.Reseal(env, "ad")
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := KeyID(re); id != "k2" || two.NeedsRotation(re) {
		t.Fatalf("resealed with %s", id)
	}
	// With k1 dropped, the resealed secret still opens and the old one does not.
	only2, _ := NewKeyring(k2)
	if pt, err := only2.Open(re, "ad"); err != nil || string(pt) != "s" {
		t.Fatalf("open after dropping k1: %q %v", pt, err)
	}
	if _, err := only2.Open(env, "ad"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("old envelope without k1: %v", err)
	}
	if _, err := NewKeyring(k2, k2); err == nil {
		t.Fatal("a duplicate key id was accepted")
	}
}

func TestKeysFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "secrets.keys")
	if _, err := FileKeyring(path, false); err == nil {
		t.Fatal("a missing file without create opened")
	}
	r, err := FileKeyring(path, true)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("keys file mode %v %v, want 0600", fi.Mode().Perm(), err)
	}
	env, _ := r.Seal([]byte("s"), "ad")
	// Another process adds a key: this ring opens its envelopes after a reload made
	// by meeting the unknown id.
	id, err := AddKey(path)
	if err != nil {
		t.Fatal(err)
	}
	other, err := FileKeyring(path, false)
	if err != nil {
		t.Fatal(err)
	}
	if other.Newest() != id {
		t.Fatalf("newest %s, want the added %s", other.Newest(), id)
	}
	env2, _ := other.Seal([]byte("t"), "ad")
	if pt, err := r.Open(env2, "ad"); err != nil || string(pt) != "t" {
		t.Fatalf("open a newer key's envelope: %q %v", pt, err)
	}
	if pt, err := other.Open(env, "ad"); err != nil || string(pt) != "s" {
		t.Fatalf("open the first key's envelope: %q %v", pt, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFile(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a loose keys file: %v", err)
	}
}

func TestParseKeys(t *testing.T) {
	raw := bytes.Repeat([]byte{7}, KeySize)
	b64 := base64.StdEncoding.EncodeToString(raw)
	keys, err := ParseKeys("# c\n\na=" + b64 + "\n b = " + b64 + " ")
	if err != nil || len(keys) != 2 || keys[1].ID != "b" {
		t.Fatalf("%v %v", keys, err)
	}
	if keys, err := ParseKeys("x=" + b64 + ",y=" + b64); err != nil || len(keys) != 2 {
		t.Fatalf("comma separated: %v %v", keys, err)
	}
	for _, bad := range []string{"", "# only", b64, "a=short", "a:b=" + b64, "a=***"} {
		_, err := ParseKeys(bad)
		if err == nil {
			t.Fatalf("%q parsed", bad)
		}
		if strings.Contains(err.Error(), b64) {
			t.Fatalf("%q: the error shows the key: %v", bad, err)
		}
	}
}

// TestNothingLeaks: keys never print, and no error shows a key or a plaintext. Nothing
// in the package compares secret bytes itself: GCM's tag check is the only comparison.
func TestNothingLeaks(t *testing.T) {
	r, keys := ring(t, "a")
	k := keys[0]
	enc := k.Encoded()
	_, b64, _ := strings.Cut(enc, "=")
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("key", "key", k, "ring", r)
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k), logged.String()} {
		if strings.Contains(s, b64) || bytes.Contains([]byte(s), k.bytes[:8]) {
			t.Fatalf("a key shows in %q", s)
		}
	}
	env, _ := r.Seal([]byte("plaintext-secret"), "ad")
	_, err := r.Open(env, "other")
	if err == nil || strings.Contains(err.Error(), "plaintext-secret") || strings.Contains(err.Error(), env) {
		t.Fatalf("error %v", err)
	}
}

func FuzzOpen(f *testing.F) {
	k, _ := NewKey("f", bytes.Repeat([]byte{1}, KeySize))
	r, _ := NewKeyring(k)
	env, _ := r.Seal([]byte("s"), "ad")
	f.Add(env)
	f.Add("v1:f:")
	f.Fuzz(func(t *testing.T, s string) {
		pt, err := r.Open(s, "ad")
		if err == nil && s != env && string(pt) != "s" {
			t.Fatalf("%q opened to %q", s, pt)
		}
	})
}
