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
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Key files are named for the instant they were created, so the newest signs no
// matter how the files were later copied (which resets modification times).
const (
	keyFilePrefix = "es256-"
	keyFileTime   = "20060102T150405.000000000Z"
	keyFileExt    = ".pem"
)

// KeySet is the token service's set of ECDSA P-256 signing keys, kept as PKCS#8 PEM
// files in one directory. The newest key signs; every key in the set verifies, so a
// rotation does not break tokens that are still live. It is safe for concurrent use.
type KeySet struct {
	dir string
	mu  sync.Mutex // serialises Rotate and Retire
	// lastMiss is when (unix nanoseconds) an unknown kid last made PublicKey read the
	// directory again.
	lastMiss atomic.Int64
	// state is replaced whole on every change, so lookups on the request path take
	// no lock.
	state atomic.Pointer[keyState]
}

type keyState struct {
	keys  []*signingKey // newest first
	byKid map[string]*ecdsa.PublicKey
}

type signingKey struct {
	kid     string
	priv    *ecdsa.PrivateKey
	path    string
	created time.Time
}

// LoadOrCreateKeySet reads every *.pem file in dir as a PKCS#8 P-256 private key. When
// there is none it creates dir (0700) and a first key (0600). A key file that group or
// others may read is refused, as ssh refuses a loose private key.
func LoadOrCreateKeySet(dir string) (*KeySet, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("token keys: %w", err)
	}
	ks := &KeySet{dir: dir}
	keys, err := readKeys(dir)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		// Replicas sharing one key directory may all start at once: the first key has
		// a fixed name and is linked into place exclusively, so exactly one of them
		// creates it and the others load that one, and every replica signs with it.
		k, err := writeKey(dir, time.Now(), firstKeyFile)
		switch {
		case errors.Is(err, fs.ErrExist):
			if keys, err = readKeys(dir); err != nil {
				return nil, err
			}
		case err != nil:
			return nil, err
		default:
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("token keys: %s holds no key", dir)
	}
	ks.state.Store(newKeyState(keys))
	return ks, nil
}

// firstKeyFile names the key created when the directory is empty.
const firstKeyFile = keyFilePrefix + "first" + keyFileExt

// readKeys loads every key file of dir.
func readKeys(dir string) ([]*signingKey, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*"+keyFileExt))
	if err != nil {
		return nil, fmt.Errorf("token keys: %w", err)
	}
	var keys []*signingKey
	seen := map[string]string{}
	for _, p := range paths {
		k, err := loadKey(p)
		if err != nil {
			return nil, err
		}
		// Retire removes one file per kid; a copy would keep the key alive.
		if other, dup := seen[k.kid]; dup {
			return nil, fmt.Errorf("token keys: %s and %s hold the same key", other, p)
		}
		seen[k.kid] = p
		keys = append(keys, k)
	}
	return keys, nil
}

// Reload reads the key directory again, so a rotation or retirement done by another
// process (`hubctl keys`, another replica on a shared directory) takes effect without a
// restart. A directory left with no readable key keeps the current set: something
// must always sign.
func (ks *KeySet) Reload() error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	keys, err := readKeys(ks.dir)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return fmt.Errorf("token keys: %s holds no key; keeping the loaded ones", ks.dir)
	}
	ks.state.Store(newKeyState(keys))
	return nil
}

// KeyInfo describes one key of the set.
type KeyInfo struct {
	ID      string    `json:"kid"`
	Created time.Time `json:"created"`
	// Signing is true for the key new tokens are signed with.
	Signing bool `json:"signing"`
}

// Keys lists the keys, newest (the signing one) first.
func (ks *KeySet) Keys() []KeyInfo {
	st := ks.state.Load()
	out := make([]KeyInfo, len(st.keys))
	for i, k := range st.keys {
		out[i] = KeyInfo{ID: k.kid, Created: k.created, Signing: i == 0}
	}
	return out
}

func loadKey(path string) (*signingKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("token key %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("token key %s: mode %04o lets group or others read it; chmod 600 it", path, perm)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" || len(strings.TrimSpace(string(rest))) != 0 {
		return nil, fmt.Errorf("token key %s: want exactly one PKCS#8 \"PRIVATE KEY\" PEM block", path)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("token key %s: %w", path, err)
	}
	priv, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, fmt.Errorf("token key %s: not an ECDSA P-256 key (ES256 needs one)", path)
	}
	kid, err := Thumbprint(&priv.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("token key %s: %w", path, err)
	}
	created := fi.ModTime()
	name := filepath.Base(path)
	if ts, ok := strings.CutPrefix(strings.TrimSuffix(name, keyFileExt), keyFilePrefix); ok {
		if t, err := time.Parse(keyFileTime, ts); err == nil {
			created = t
		}
	}
	return &signingKey{kid: kid, priv: priv, path: path, created: created}, nil
}

// writeNewKey generates a key and writes it durably under a name stamped with
// created: temp file (0600 from CreateTemp), fsync, rename, fsync of the directory.
func writeNewKey(dir string, created time.Time) (*signingKey, error) {
	return writeKey(dir, created, "")
}

// writeKey writes a new key under name, or under a name stamped with created when name
// is empty. A fixed name is claimed exclusively (link, not rename): when the file
// exists already the error wraps fs.ErrExist and nothing is written.
func writeKey(dir string, created time.Time, name string) (*signingKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("token key: generate: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	kid, err := Thumbprint(&priv.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	created = created.UTC()
	path := filepath.Join(dir, keyFilePrefix+created.Format(keyFileTime)+keyFileExt)
	if name != "" {
		path = filepath.Join(dir, name)
	}
	tmp, err := os.CreateTemp(dir, ".key-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if err := pem.Encode(tmp, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("token key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("token key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	if name != "" {
		if err := os.Link(tmp.Name(), path); err != nil {
			return nil, fmt.Errorf("token key: %w", err)
		}
	} else if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	return &signingKey{kid: kid, priv: priv, path: path, created: created}, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func newKeyState(keys []*signingKey) *keyState {
	keys = slices.Clone(keys)
	slices.SortStableFunc(keys, func(a, b *signingKey) int {
		if c := b.created.Compare(a.created); c != 0 {
			return c
		}
		return strings.Compare(b.path, a.path) // deterministic when stamps tie
	})
	st := &keyState{keys: keys, byKid: make(map[string]*ecdsa.PublicKey, len(keys))}
	for _, k := range keys {
		st.byKid[k.kid] = &k.priv.PublicKey
	}
	return st
}

// signer returns the newest key, the one new tokens are signed with.
func (ks *KeySet) signer() *signingKey {
	return ks.state.Load().keys[0]
}

// SigningKeyID returns the kid of the key that signs new tokens.
func (ks *KeySet) SigningKeyID() string {
	return ks.signer().kid
}

// Rotate writes a new key, which signs from now on; older keys keep verifying until
// they are retired (wait at least one token lifetime before retiring them).
func (ks *KeySet) Rotate() (kid string, err error) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	st := ks.state.Load()
	created := time.Now()
	// The new key must sort newest even if the clock stepped back since the last one.
	if newest := st.keys[0].created; !created.After(newest) {
		created = newest.Add(time.Nanosecond)
	}
	k, err := writeNewKey(ks.dir, created)
	if err != nil {
		return "", err
	}
	ks.state.Store(newKeyState(append(slices.Clone(st.keys), k)))
	return k.kid, nil
}

// ErrUnknownKey is returned by Retire for a kid that is not in the set.
var ErrUnknownKey = errors.New("unknown key id")

// Retire deletes the key kid: tokens it signed stop verifying at once. The last key
// cannot be retired, since something has to sign; rotate first.
func (ks *KeySet) Retire(kid string) error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	st := ks.state.Load()
	i := slices.IndexFunc(st.keys, func(k *signingKey) bool { return k.kid == kid })
	if i < 0 {
		return fmt.Errorf("retire %q: %w", kid, ErrUnknownKey)
	}
	if len(st.keys) == 1 {
		return fmt.Errorf("retire %q: it is the only key; rotate first", kid)
	}
	if err := os.Remove(st.keys[i].path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("retire %q: %w", kid, err)
	}
	if err := syncDir(ks.dir); err != nil {
		return fmt.Errorf("retire %q: %w", kid, err)
	}
	ks.state.Store(newKeyState(slices.Delete(slices.Clone(st.keys), i, i+1)))
	return nil
}

// missReload bounds how often an unknown kid makes PublicKey read the directory.
const missReload = time.Second

// PublicKey returns the public key of kid; it makes a KeySet a KeyLookup for a
// Verifier in the same process.
//
// A kid it does not know may name a key that `hubctl keys rotate` or another replica
// has just added to a shared key directory, which the reload timer has not read yet:
// PublicKey then reads the directory at once (at most once per missReload, so tokens
// with made-up kids cost one directory read a second), so a rotation never makes a
// replica refuse the tokens another replica signs with the new key.
func (ks *KeySet) PublicKey(kid string) (*ecdsa.PublicKey, bool) {
	if k, ok := ks.state.Load().byKid[kid]; ok {
		return k, true
	}
	now, last := time.Now().UnixNano(), ks.lastMiss.Load()
	if now-last < int64(missReload) || !ks.lastMiss.CompareAndSwap(last, now) {
		return nil, false
	}
	if err := ks.Reload(); err != nil {
		return nil, false
	}
	k, ok := ks.state.Load().byKid[kid]
	return k, ok
}

// PublicKeys returns the public keys of the set by kid, in a map the caller owns.
func (ks *KeySet) PublicKeys() map[string]*ecdsa.PublicKey {
	st := ks.state.Load()
	out := make(map[string]*ecdsa.PublicKey, len(st.byKid))
	for kid, k := range st.byKid {
		out[kid] = k
	}
	return out
}

// JWK is one public key in JSON Web Key form (RFC 7517, RFC 7518 section 6.2).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
}

// JWKS returns `{"keys":[…]}` with every public key of the set, newest first: what
// /token/jwks.json publishes so registry replicas can verify without the private keys.
func (ks *KeySet) JWKS() ([]byte, error) {
	st := ks.state.Load()
	set := struct {
		Keys []JWK `json:"keys"`
	}{Keys: make([]JWK, 0, len(st.keys))}
	for _, k := range st.keys {
		x, y, err := coordinates(&k.priv.PublicKey)
		if err != nil {
			return nil, err
		}
		set.Keys = append(set.Keys, JWK{Kty: "EC", Crv: "P-256", X: x, Y: y, Kid: k.kid, Alg: "ES256", Use: "sig"})
	}
	return json.Marshal(set)
}

// StaticKeys is a fixed set of public keys by kid, e.g. read from a JWKS by ParseJWKS
// on a registry replica that holds no private keys.
type StaticKeys map[string]*ecdsa.PublicKey

// PublicKey returns the key of kid; it makes StaticKeys a KeyLookup.
func (s StaticKeys) PublicKey(kid string) (*ecdsa.PublicKey, bool) {
	k, ok := s[kid]
	return k, ok
}

// ParseJWKS reads the P-256 keys of a JWKS document. Keys of other types or curves,
// and keys marked for another algorithm or use, are refused rather than skipped, so
// a misconfigured key set fails at start and not on the first request.
func ParseJWKS(data []byte) (StaticKeys, error) {
	var set struct {
		Keys []JWK `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("jwks: no keys")
	}
	out := make(StaticKeys, len(set.Keys))
	for _, k := range set.Keys {
		if k.Kty != "EC" || k.Crv != "P-256" || (k.Alg != "" && k.Alg != "ES256") || (k.Use != "" && k.Use != "sig") {
			return nil, fmt.Errorf("jwks: key %q is not an ES256 signing key", k.Kid)
		}
		if k.Kid == "" {
			return nil, errors.New("jwks: key without kid")
		}
		x, errX := base64.RawURLEncoding.Strict().DecodeString(k.X)
		y, errY := base64.RawURLEncoding.Strict().DecodeString(k.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return nil, fmt.Errorf("jwks: key %q: bad coordinates", k.Kid)
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, fmt.Errorf("jwks: key %q: %w", k.Kid, err)
		}
		if _, dup := out[k.Kid]; dup {
			return nil, fmt.Errorf("jwks: duplicate kid %q", k.Kid)
		}
		out[k.Kid] = pub
	}
	return out, nil
}

// coordinates returns the base64url x and y of a P-256 key, each 32 bytes wide as
// RFC 7518 requires.
func coordinates(pub *ecdsa.PublicKey) (x, y string, err error) {
	b, err := pub.Bytes()
	if err != nil {
		return "", "", err
	}
	if len(b) != 65 || b[0] != 4 {
		return "", "", errors.New("not an uncompressed P-256 point")
	}
	return base64.RawURLEncoding.EncodeToString(b[1:33]), base64.RawURLEncoding.EncodeToString(b[33:]), nil
}

// Thumbprint returns the RFC 7638 JWK thumbprint of a P-256 public key, base64url
// without padding: the kid of the key, stable across restarts and replicas.
func Thumbprint(pub *ecdsa.PublicKey) (string, error) {
	x, y, err := coordinates(pub)
	if err != nil {
		return "", err
	}
	// RFC 7638: the required members only, in lexicographic order, no whitespace.
	canon := `{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`
	sum := sha256.Sum256([]byte(canon))
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}
