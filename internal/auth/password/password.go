// Package password hashes account passwords with argon2id in PHC string form and
// generates and hashes the random secrets of access and refresh tokens.
package password

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Parameters of new hashes. We take OWASP's first argon2id recommendation (m=19 MiB,
// t=2, p=1) rather than RFC 9106's 64 MiB: every docker/crane/helm token request
// with a password runs one verification, so a busy /token endpoint on a small host
// would otherwise spend 64 MiB per concurrent login. 19 MiB with two passes costs an
// attacker about the same as 64 MiB with one, and p=1 keeps one login on one core.
// Hashes carry their parameters, so raising these later only needs NeedsRehash.
const (
	Memory  uint32 = 19 * 1024 // KiB
	Time    uint32 = 2
	Threads uint8  = 1
	SaltLen        = 16
	KeyLen         = 32
)

// Bounds on parameters read from a stored hash: a corrupted or planted row must not
// make one login allocate gigabytes or spin for minutes.
const (
	maxMemory  = 256 * 1024 // KiB
	maxTime    = 16
	maxThreads = 16
	minSalt    = 8
	maxSalt    = 64
	minKey     = 16
	maxKey     = 64
)

// Prefixes of the random secrets hubctl hands out, so secret scanners and humans
// recognise them: access tokens are used as passwords, refresh tokens only at /token.
const (
	AccessTokenPrefix  = "hub_"
	RefreshTokenPrefix = "hubr_"
)

// ErrMalformed is wrapped by the error for a stored hash that is not an argon2id PHC
// string we can read.
var ErrMalformed = errors.New("malformed password hash")

// slots bounds concurrent argon2 computations to the number of cores: each one holds
// Memory KiB and a core, so a burst of logins queues instead of exhausting memory.
var slots = make(chan struct{}, runtime.GOMAXPROCS(0))

// b64 is the PHC string format's base64: standard alphabet, no padding.
var b64 = base64.RawStdEncoding.Strict()

type params struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

// Hash returns the argon2id PHC string of password with a fresh random salt:
// `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>`.
func Hash(password string) (string, error) {
	salt := make([]byte, SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	key := derive(password, salt, Time, Memory, Threads, KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, Memory, Time, Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify reports whether password matches the PHC string encoded, using the
// parameters stored in it. The comparison is constant-time. An error means encoded
// is malformed, never that the password is wrong.
func Verify(password, encoded string) (bool, error) {
	p, err := decode(encoded)
	if err != nil {
		return false, err
	}
	key := derive(password, p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(key, p.key) == 1, nil
}

// NeedsRehash reports whether encoded was made with other parameters than Hash uses
// now (or cannot be read), so a successful login can store a fresh hash.
func NeedsRehash(encoded string) bool {
	p, err := decode(encoded)
	if err != nil {
		return true
	}
	return p.memory != Memory || p.time != Time || p.threads != Threads ||
		len(p.salt) != SaltLen || len(p.key) != KeyLen
}

func derive(password string, salt []byte, t, m uint32, p uint8, keyLen uint32) []byte {
	slots <- struct{}{}
	defer func() { <-slots }()
	return argon2.IDKey([]byte(password), salt, t, m, p, keyLen)
}

// decode parses `$argon2id$v=19$m=M,t=T,p=P$salt$key` strictly: exact field order,
// canonical decimal numbers, unpadded base64, parameters within bounds.
func decode(encoded string) (params, error) {
	fail := func(why string) (params, error) {
		return params{}, fmt.Errorf("%w: %s", ErrMalformed, why)
	}
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" {
		return fail("want $argon2id$v=19$m=…,t=…,p=…$salt$hash")
	}
	if parts[1] != "argon2id" {
		return fail("algorithm is not argon2id")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return fail("unsupported argon2 version")
	}
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return fail("want m=…,t=…,p=…")
	}
	var num [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(kv[i], name)
		if !ok {
			return fail("want m=…,t=…,p=…")
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || strconv.FormatUint(n, 10) != v {
			return fail("parameter " + name + " is not a decimal number")
		}
		num[i] = n
	}
	p := params{memory: uint32(num[0]), time: uint32(num[1]), threads: uint8(min(num[2], 255))}
	// argon2 itself needs m >= 8p; the other bounds protect us.
	if p.time < 1 || p.time > maxTime || num[2] < 1 || num[2] > maxThreads ||
		p.memory < 8*uint32(p.threads) || p.memory > maxMemory {
		return fail("parameters out of bounds")
	}
	var err error
	if p.salt, err = b64.DecodeString(parts[4]); err != nil || len(p.salt) < minSalt || len(p.salt) > maxSalt {
		return fail("bad salt")
	}
	if p.key, err = b64.DecodeString(parts[5]); err != nil || len(p.key) < minKey || len(p.key) > maxKey {
		return fail("bad hash")
	}
	return p, nil
}

// secretLen is the number of base62 digits of 32 random bytes (62^43 > 2^256).
const secretLen = 43

// RandomSecret returns prefix followed by 32 random bytes in fixed-width base62,
// e.g. `hub_` + 43 characters: the secret of an access or refresh token. Base62 has
// no padding or punctuation, so a secret survives shells, URLs and double-click
// selection whole.
func RandomSecret(prefix string) (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("random secret: %w", err)
	}
	n := new(big.Int).SetBytes(raw[:])
	digits := []byte(n.Text(62))
	var b strings.Builder
	b.Grow(len(prefix) + secretLen)
	b.WriteString(prefix)
	// Fixed width, so every secret of a kind has the same length.
	for range secretLen - len(digits) {
		b.WriteByte('0')
	}
	b.Write(digits)
	return b.String(), nil
}

// SecretHash returns the sha256 of a token secret, the only form in which it is
// stored. A fast hash is right here, unlike for passwords: the secret has 256 bits
// of entropy, so there is nothing to brute-force, and lookups by hash stay cheap.
func SecretHash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}
