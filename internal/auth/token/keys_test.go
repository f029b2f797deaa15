package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeyFilesArePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	ks, err := LoadOrCreateKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Rotate(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Fatalf("key dir mode %04o, want 0700", perm)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("key dir holds %v, want two key files and nothing else", entries)
	}
	for _, e := range entries {
		fi, _ := e.Info()
		if !strings.HasSuffix(e.Name(), ".pem") || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %04o, want a .pem file with 0600", e.Name(), fi.Mode().Perm())
		}
	}

	// Loading the same dir again gives the same keys, it does not create a new one.
	again, err := LoadOrCreateKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again.SigningKeyID() != ks.SigningKeyID() || len(again.PublicKeys()) != 2 {
		t.Fatal("reload changed the key set")
	}

	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		victim := filepath.Join(dir, entries[0].Name())
		if err := os.Chmod(victim, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadOrCreateKeySet(dir)
		if err == nil || !strings.Contains(err.Error(), victim) {
			t.Fatalf("mode %04o: err = %v, want a refusal naming %s", mode, err, victim)
		}
		os.Chmod(victim, 0o600)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestBadKeyFiles(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der384, _ := x509.MarshalPKCS8PrivateKey(p384)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sec1, _ := x509.MarshalECPrivateKey(p256)
	der256, _ := x509.MarshalPKCS8PrivateKey(p256)
	good := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der256})
	for name, data := range map[string][]byte{
		"P-384":    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der384}),
		"SEC1":     pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}),
		"garbage":  []byte("not a key"),
		"bad DER":  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}),
		"two keys": append(append([]byte{}, good...), good...),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "k.pem")
			writeFile(t, path, data)
			if _, err := LoadOrCreateKeySet(dir); err == nil || !strings.Contains(err.Error(), path) {
				t.Fatalf("err = %v, want a refusal naming %s", err, path)
			}
		})
	}

	// A key placed by hand under any name loads; the same key twice does not.
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "mine.pem"), good)
	ks, err := LoadOrCreateKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	if kid, _ := Thumbprint(&p256.PublicKey); ks.SigningKeyID() != kid {
		t.Fatal("hand-placed key is not the signer")
	}
	writeFile(t, filepath.Join(dir, "copy.pem"), good)
	if _, err := LoadOrCreateKeySet(dir); err == nil {
		t.Fatal("the same key in two files loaded")
	}
}

func TestThumbprint(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	got, err := Thumbprint(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	// RFC 7638 computed independently: encoding/json sorts map keys and adds no
	// whitespace, which is the canonical form.
	ecdhPub, err := k.PublicKey.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	pt := ecdhPub.Bytes()
	canon, _ := json.Marshal(map[string]string{
		"kty": "EC", "crv": "P-256",
		"x": base64.RawURLEncoding.EncodeToString(pt[1:33]),
		"y": base64.RawURLEncoding.EncodeToString(pt[33:]),
	})
	sum := sha256.Sum256(canon)
	if want := base64.RawURLEncoding.EncodeToString(sum[:]); got != want {
		t.Fatalf("Thumbprint = %s, want %s", got, want)
	}
}

func TestJWKS(t *testing.T) {
	ks, err := LoadOrCreateKeySet(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Rotate(); err != nil {
		t.Fatal(err)
	}
	data, err := ks.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw.Keys) != 2 || raw.Keys[0]["kid"] != ks.SigningKeyID() {
		t.Fatalf("jwks = %s", data)
	}
	for _, k := range raw.Keys {
		if k["kty"] != "EC" || k["crv"] != "P-256" || k["alg"] != "ES256" || k["use"] != "sig" || len(k) != 7 {
			t.Fatalf("jwk = %v", k)
		}
		if _, private := k["d"]; private {
			t.Fatal("jwks leaks a private key")
		}
	}
	parsed, err := ParseJWKS(data)
	if err != nil {
		t.Fatal(err)
	}
	pubs := ks.PublicKeys()
	if len(parsed) != len(pubs) {
		t.Fatalf("ParseJWKS found %d keys, PublicKeys %d", len(parsed), len(pubs))
	}
	for kid, pub := range pubs {
		if p, ok := parsed[kid]; !ok || !p.Equal(pub) {
			t.Fatalf("key %s differs between JWKS and PublicKeys", kid)
		}
		if tp, _ := Thumbprint(pub); tp != kid {
			t.Fatalf("kid %s is not the thumbprint %s", kid, tp)
		}
	}
	// PublicKeys hands out a copy.
	delete(pubs, ks.SigningKeyID())
	if _, ok := ks.PublicKey(ks.SigningKeyID()); !ok {
		t.Fatal("deleting from PublicKeys' map changed the set")
	}

	// A replica verifies with the JWKS alone.
	iss := &Issuer{Keys: ks, Issuer: "i", Service: "s"}
	tok, err := iss.Issue("alice", Hub{}, pullPush)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&Verifier{Keys: parsed, Issuer: "i", Audience: "s"}).Verify(tok.Raw); err != nil {
		t.Fatalf("verify with JWKS keys: %v", err)
	}
}

func TestParseJWKSRefuses(t *testing.T) {
	ks, err := LoadOrCreateKeySet(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data, _ := ks.JWKS()
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	json.Unmarshal(data, &set)
	base := set.Keys[0]
	edit := func(f func(map[string]string)) []byte {
		k := map[string]string{}
		for a, b := range base {
			k[a] = b
		}
		f(k)
		b, _ := json.Marshal(map[string]any{"keys": []map[string]string{k}})
		return b
	}
	if _, err := ParseJWKS(edit(func(map[string]string) {})); err != nil {
		t.Fatalf("unedited key refused: %v", err)
	}
	one, _ := json.Marshal(base)
	offCurve := []byte(base["y"])
	offCurve[5] ^= 1
	for name, doc := range map[string][]byte{
		"not json":   []byte("{"),
		"no keys":    []byte(`{"keys":[]}`),
		"RSA":        edit(func(k map[string]string) { k["kty"] = "RSA" }),
		"P-384":      edit(func(k map[string]string) { k["crv"] = "P-384" }),
		"HS256 alg":  edit(func(k map[string]string) { k["alg"] = "HS256" }),
		"enc use":    edit(func(k map[string]string) { k["use"] = "enc" }),
		"no kid":     edit(func(k map[string]string) { delete(k, "kid") }),
		"short x":    edit(func(k map[string]string) { k["x"] = k["x"][:20] }),
		"bad base64": edit(func(k map[string]string) { k["x"] = "!!" + k["x"][2:] }),
		"off curve":  edit(func(k map[string]string) { k["y"] = string(offCurve) }),
		"dup kid":    []byte(`{"keys":[` + string(one) + `,` + string(one) + `]}`),
	} {
		if _, err := ParseJWKS(doc); err == nil {
			t.Errorf("%s: ParseJWKS accepted %s", name, doc)
		}
	}
}

// TestRotateAfterClockStep checks that a rotated key signs even when the newest
// existing key carries a later timestamp than the clock reads now.
func TestRotateAfterClockStep(t *testing.T) {
	dir := t.TempDir()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	writeFile(t, filepath.Join(dir, "es256-21000101T000000.000000000Z.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	writeFile(t, filepath.Join(dir, "es256-20200101T000000.000000000Z.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))))}))
	ks, err := LoadOrCreateKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	if kid, _ := Thumbprint(&k.PublicKey); ks.SigningKeyID() != kid {
		t.Fatal("the key with the newest file-name stamp is not the signer")
	}
	kid, err := ks.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if ks.SigningKeyID() != kid {
		t.Fatal("rotated key does not sign")
	}
	again, err := LoadOrCreateKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again.SigningKeyID() != kid {
		t.Fatal("rotated key does not sign after a reload")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestReloadSeesAnotherProcessRotate(t *testing.T) {
	dir := t.TempDir()
	server, err := LoadOrCreateKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	old := server.SigningKeyID()
	// Another process (hubctl keys rotate) works on the same directory.
	admin, err := LoadOrCreateKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := admin.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if server.SigningKeyID() != old {
		t.Fatal("the server saw the rotation before reloading")
	}
	if err := server.Reload(); err != nil {
		t.Fatal(err)
	}
	keys := server.Keys()
	if server.SigningKeyID() != kid || len(keys) != 2 || !keys[0].Signing || keys[0].ID != kid || keys[1].ID != old {
		t.Fatalf("after reload: signing %s, keys %+v", server.SigningKeyID(), keys)
	}
	if err := admin.Retire(old); err != nil {
		t.Fatal(err)
	}
	if err := server.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := server.PublicKey(old); ok {
		t.Fatal("a retired key still verifies after reload")
	}
	// An emptied directory keeps the loaded keys.
	if err := os.Remove(filepath.Join(dir, filepath.Base(server.state.Load().keys[0].path))); err != nil {
		t.Fatal(err)
	}
	if err := server.Reload(); err == nil || server.SigningKeyID() != kid {
		t.Fatalf("reload of an empty directory: %v, signing %s", err, server.SigningKeyID())
	}
}

func TestConcurrentFirstStartsShareOneKey(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	kids := make(chan string, n)
	errs := make(chan error, n)
	for range n {
		go func() {
			ks, err := LoadOrCreateKeySet(dir)
			if err != nil {
				errs <- err
				return
			}
			kids <- ks.SigningKeyID()
		}()
	}
	first := ""
	for range n {
		select {
		case err := <-errs:
			t.Fatal(err)
		case kid := <-kids:
			if first == "" {
				first = kid
			} else if kid != first {
				t.Fatalf("replicas sign with different keys: %s and %s", first, kid)
			}
		}
	}
	pems, _ := filepath.Glob(filepath.Join(dir, "*.pem"))
	if len(pems) != 1 {
		t.Fatalf("%d key files, want 1: %v", len(pems), pems)
	}
}

// TestRotationAcrossReplicas is issue 16 item 2: after `hubctl keys rotate` on a shared
// key directory, a replica that has reloaded signs with the new key, and another that
// has not must still verify its tokens (it reads the directory on the unknown kid),
// not answer "unknown kid" until its timer fires.
func TestRotationAcrossReplicas(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadOrCreateKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreateKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := LoadOrCreateKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := admin.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	tok, err := (&Issuer{Keys: a, Issuer: "hubctl", Service: "hubctl"}).Issue("alice", Hub{}, pullPush)
	if err != nil {
		t.Fatal(err)
	}
	c, err := (&Verifier{Keys: b, Issuer: "hubctl", Audience: "hubctl"}).Verify(tok.Raw)
	if err != nil || c.Subject != "alice" {
		t.Fatalf("replica b verifying a token of the new key %s: %v", kid, err)
	}
	// A made-up kid is refused, and a second one within the second reads nothing.
	if _, ok := b.PublicKey("no-such-kid"); ok {
		t.Fatal("an unknown kid verified")
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.PublicKey(kid); !ok {
		t.Fatal("a known kid was looked up on disk")
	}
}
