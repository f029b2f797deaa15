// Package secrets is the hub's one mechanism for secrets at rest: webhook secrets and
// headers now, workflow and deploy secrets later (docs/design/secrets.md).
//
// A secret is sealed with AES-256-GCM under the newest key of a Keyring into the text
// envelope
//
//	v1:<key id>:<base64url(nonce || ciphertext+tag)>
//
// with associated data naming the row and purpose it belongs to ("webhooks/ID/secret"),
// so a ciphertext copied into another row, or another column, does not open. Every key
// of the ring opens what it sealed, so keys rotate without a flag day: add a key (it
// seals from then on), re-encrypt the stored secrets (`hubctl admin secrets rotate`),
// then drop the old key.
//
// Nothing in this package compares secrets (GCM's tag check is the library's constant
// time one), and no error, String or log value carries key or plaintext bytes.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
)

// KeySize is the size of a key: AES-256.
const KeySize = 32

// version is the envelope's format, its first field.
const version = "v1"

// Errors a caller may branch on.
var (
	// ErrUnknownKey: the envelope names a key the ring does not hold (retired too soon,
	// or a replica that was not given the newer key).
	ErrUnknownKey = errors.New("secrets: sealed with a key this hub does not hold")
	// ErrOpen: the envelope was tampered with, or belongs to another row or purpose.
	ErrOpen = errors.New("secrets: cannot open: tampered, or sealed for another row")
	// ErrFormat: not an envelope this version writes.
	ErrFormat = errors.New("secrets: not a sealed secret (want v1:KEYID:DATA)")
)

// Key is one AES-256 key and its id. Its String hides the bytes.
type Key struct {
	// ID names the key in envelopes: letters, digits, '-', '_' and '.'.
	ID    string
	bytes [KeySize]byte
}

// NewKey makes a Key of id and raw, which must be KeySize bytes.
func NewKey(id string, raw []byte) (Key, error) {
	if err := checkID(id); err != nil {
		return Key{}, err
	}
	if len(raw) != KeySize {
		return Key{}, fmt.Errorf("secrets: key %s is %d bytes, want %d", id, len(raw), KeySize)
	}
	k := Key{ID: id}
	copy(k.bytes[:], raw)
	return k, nil
}

// GenerateKey makes a new random key named id.
func GenerateKey(id string) (Key, error) {
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return Key{}, fmt.Errorf("secrets: generate a key: %w", err)
	}
	return NewKey(id, raw)
}

// String names the key and never shows its bytes.
func (k Key) String() string { return "secrets.Key(" + k.ID + ")" }

// GoString is String, for %#v.
func (k Key) GoString() string { return k.String() }

// LogValue is String, for slog.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// Encoded is the key as the keys file holds it: ID=base64.
func (k Key) Encoded() string { return k.ID + "=" + base64.StdEncoding.EncodeToString(k.bytes[:]) }

func checkID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("secrets: a key id must be 1 to 64 characters, got %d", len(id))
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("secrets: key id %q: only letters, digits, '-', '_' and '.'", id)
		}
	}
	return nil
}

// Keyring holds the keys a hub seals and opens secrets with: the newest seals, every
// one opens. It is safe for concurrent use; Reload swaps the keys in place.
type Keyring struct {
	mu     sync.RWMutex
	newest string
	aeads  map[string]cipher.AEAD
	ids    []string // oldest first
	keys   []Key
	// reload, when set, reads the keys again (a keys file another process changed).
	reload func() ([]Key, error)
}

// NewKeyring makes a ring of keys, oldest first: the last one seals.
func NewKeyring(keys ...Key) (*Keyring, error) {
	r := &Keyring{}
	if err := r.set(keys); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Keyring) set(keys []Key) error {
	if len(keys) == 0 {
		return errors.New("secrets: no key")
	}
	aeads := make(map[string]cipher.AEAD, len(keys))
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		if err := checkID(k.ID); err != nil {
			return err
		}
		if _, dup := aeads[k.ID]; dup {
			return fmt.Errorf("secrets: key id %s is listed twice", k.ID)
		}
		block, err := aes.NewCipher(k.bytes[:])
		if err != nil {
			return fmt.Errorf("secrets: key %s: %w", k.ID, err)
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			return fmt.Errorf("secrets: key %s: %w", k.ID, err)
		}
		aeads[k.ID] = gcm
		ids = append(ids, k.ID)
	}
	r.mu.Lock()
	r.aeads, r.ids, r.newest, r.keys = aeads, ids, ids[len(ids)-1], append([]Key(nil), keys...)
	r.mu.Unlock()
	return nil
}

// Newest is the id of the key that seals.
func (r *Keyring) Newest() string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.newest
}

// IDs lists the key ids, oldest first.
func (r *Keyring) IDs() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]string(nil), r.ids...)
}

// Keys returns the ring's keys, oldest first, to make another ring of (a test joining
// two rings, a command adding a key). Their String hides their bytes.
func (r *Keyring) Keys() []Key {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]Key(nil), r.keys...)
}

// Reload reads the keys again from where they came from (a keys file); a ring made by
// NewKeyring has nothing to reload.
func (r *Keyring) Reload() error {
	if r.reload == nil {
		return nil
	}
	keys, err := r.reload()
	if err != nil {
		return err
	}
	return r.set(keys)
}

// Seal encrypts plaintext under the newest key, bound to ad (the row and purpose, e.g.
// "webhooks/ID/secret"), and returns the envelope.
func (r *Keyring) Seal(plaintext []byte, ad string) (string, error) {
	r.mu.RLock()
	id, gcm := r.newest, r.aeads[r.newest]
	r.mu.RUnlock()
	nonce := make([]byte, gcm.NonceSize(), gcm.NonceSize()+len(plaintext)+gcm.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("secrets: nonce: %w", err)
	}
	out := gcm.Seal(nonce, nonce, plaintext, adBytes(id, ad))
	return version + ":" + id + ":" + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decrypts an envelope Seal made with the same ad. A key id the ring does not
// know makes it reload once (another replica or `hubctl admin secrets add-key` may
// have added a key to a shared keys file) before it fails with ErrUnknownKey.
func (r *Keyring) Open(envelope, ad string) ([]byte, error) {
	id, data, err := split(envelope)
	if err != nil {
		return nil, err
	}
	gcm := r.aead(id)
	if gcm == nil && r.reload != nil {
		if err := r.Reload(); err != nil {
			return nil, err
		}
		gcm = r.aead(id)
	}
	if gcm == nil {
		return nil, fmt.Errorf("%w (key id %s)", ErrUnknownKey, id)
	}
	if len(data) < gcm.NonceSize()+gcm.Overhead() {
		return nil, ErrOpen
	}
	n := gcm.NonceSize()
	pt, err := gcm.Open(nil, data[:n], data[n:], adBytes(id, ad))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// KeyID is the id of the key an envelope was sealed with.
func KeyID(envelope string) (string, error) {
	id, _, err := split(envelope)
	return id, err
}

// NeedsRotation reports whether envelope was sealed by a key other than the newest.
func (r *Keyring) NeedsRotation(envelope string) bool {
	id, err := KeyID(envelope)
	return err != nil || id != r.Newest()
}

// Reseal opens envelope and seals it again under the newest key, with the same ad.
func (r *Keyring) Reseal(envelope, ad string) (string, error) {
	pt, err := r.Open(envelope, ad)
	if err != nil {
		return "", err
	}
	defer clear(pt)
	return r.Seal(pt, ad)
}

func (r *Keyring) aead(id string) cipher.AEAD {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.aeads[id]
}

func split(envelope string) (id string, data []byte, err error) {
	v, rest, ok := strings.Cut(envelope, ":")
	if !ok || v != version {
		return "", nil, ErrFormat
	}
	id, enc, ok := strings.Cut(rest, ":")
	if !ok || checkID(id) != nil {
		return "", nil, ErrFormat
	}
	data, err = base64.RawURLEncoding.Strict().DecodeString(enc)
	if err != nil {
		return "", nil, ErrFormat
	}
	return id, data, nil
}

// adBytes binds the envelope's version and key id too, so neither can be swapped.
func adBytes(id, ad string) []byte {
	return []byte(version + "\x00" + id + "\x00" + ad)
}

// RowAD is the associated data of a secret stored in column of the row id of table:
// "table/id/column". A sealed value moved to another row or column does not open.
func RowAD(table, id, column string) string { return table + "/" + id + "/" + column }
