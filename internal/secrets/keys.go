package secrets

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"crypto/rand"
)

// ParseKeys reads keys written one a line as ID=BASE64 (standard base64 of 32 bytes),
// oldest first, so the last one seals. Blank lines and lines starting with '#' are
// skipped; commas separate keys too, so one environment variable can hold several.
func ParseKeys(text string) ([]Key, error) {
	var keys []Key
	n := 0
	var items []string
	for _, line := range strings.Split(text, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			items = append(items, strings.Split(line, ",")...)
		}
	}
	for _, line := range items {
		n++
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		id, enc, ok := strings.Cut(line, "=")
		if !ok {
			// Never echo the line: it may be a key without its id.
			return nil, fmt.Errorf("secrets: key %d: want ID=BASE64", n)
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
		if err != nil {
			return nil, fmt.Errorf("secrets: key %s: not base64", strings.TrimSpace(id))
		}
		k, err := NewKey(strings.TrimSpace(id), raw)
		clear(raw)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("secrets: no key given")
	}
	return keys, nil
}

// NewKeyID names a key generated now: its UTC time and a random suffix, so ids sort
// by age and two made in one second differ.
func NewKeyID(now time.Time) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b)
}

// LoadFile reads a keys file. A file that group or others may read is refused, as ssh
// refuses a loose private key.
func LoadFile(path string) ([]Key, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("secrets: keys file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secrets: keys file %s is readable by others (mode %04o): chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secrets: keys file: %w", err)
	}
	defer clear(b)
	keys, err := ParseKeys(string(b))
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return keys, nil
}

// FileKeyring makes a ring from a keys file that Open reloads when it meets a key id
// it does not know. With create, a missing file is created (0600, its directory 0700)
// with one new key; two processes creating it at once end up with the same one.
func FileKeyring(path string, create bool) (*Keyring, error) {
	keys, err := LoadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		var k Key
		if k, err = GenerateKey(NewKeyID(time.Now())); err != nil {
			return nil, err
		}
		err = writeFile(path, []Key{k}, true)
		if errors.Is(err, fs.ErrExist) {
			err = nil
		}
		if err == nil {
			keys, err = LoadFile(path)
		}
	}
	if err != nil {
		return nil, err
	}
	r, err := NewKeyring(keys...)
	if err != nil {
		return nil, err
	}
	r.reload = func() ([]Key, error) { return LoadFile(path) }
	return r, nil
}

// AddKey appends a new key to the keys file at path, which must exist, and returns
// its id: it seals from then on, in every process that reads the file again.
func AddKey(path string) (string, error) {
	keys, err := LoadFile(path)
	if err != nil {
		return "", err
	}
	k, err := GenerateKey(NewKeyID(time.Now()))
	if err != nil {
		return "", err
	}
	if err := writeFile(path, append(keys, k), false); err != nil {
		return "", err
	}
	return k.ID, nil
}

// writeFile writes keys durably: a temp file (0600), fsync, then rename over path, or
// with exclusive a link that fails with fs.ErrExist when path exists.
func writeFile(path string, keys []Key, exclusive bool) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("secrets: keys file: %w", err)
	}
	var b strings.Builder
	b.WriteString("# hubctl secret keys, oldest first: the last one seals, every one opens.\n")
	b.WriteString("# Every replica must hold the same keys (docs/operating.md, Secrets at rest).\n")
	for _, k := range keys {
		b.WriteString(k.Encoded())
		b.WriteByte('\n')
	}
	tmp, err := os.CreateTemp(dir, ".secrets-*.tmp")
	if err != nil {
		return fmt.Errorf("secrets: keys file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(b.String()); err != nil {
		tmp.Close()
		return fmt.Errorf("secrets: keys file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("secrets: keys file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("secrets: keys file: %w", err)
	}
	if exclusive {
		err = os.Link(tmp.Name(), path)
	} else {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("secrets: keys file: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
