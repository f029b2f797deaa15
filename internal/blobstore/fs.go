package blobstore

import (
	"context"
	"crypto/sha256"
	_ "crypto/sha512" // registers sha512 for digest.SHA512.Hash
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
)

// FS is the filesystem Store. Layout under its root:
//
//	blobs/<alg>/<first two hex>/<hex>   verified blobs
//	uploads/<id>                        data of upload sessions
//	tmp/                                monolithic puts in progress
//
// Everything is created private (0700 dirs, 0600 files): the data directory belongs to
// the server process alone. One root must be used by one process at a time, since NewFS
// clears tmp/. Callers serialise requests on one upload id (the registry holds a lock per
// id); the store does not.
type FS struct {
	blobs   string
	uploads string
	tmp     string
}

var _ Store = (*FS)(nil)

// NewFS opens (creating if needed) a filesystem store at root and removes the temp files
// that a crash left in tmp/.
func NewFS(root string) (*FS, error) {
	s := &FS{
		blobs:   filepath.Join(root, "blobs"),
		uploads: filepath.Join(root, "uploads"),
		tmp:     filepath.Join(root, "tmp"),
	}
	for _, dir := range []string{s.blobs, s.uploads, s.tmp} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("blobstore: %w", err)
		}
	}
	entries, err := os.ReadDir(s.tmp)
	if err != nil {
		return nil, fmt.Errorf("blobstore: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(s.tmp, e.Name())); err != nil {
			return nil, fmt.Errorf("blobstore: clear temp files: %w", err)
		}
	}
	return s, nil
}

// Ping checks that tmp/ is writable, which every write path needs.
func (s *FS) Ping(ctx context.Context) error {
	f, err := os.CreateTemp(s.tmp, "ping-*")
	if err != nil {
		return fmt.Errorf("blobstore: ping: %w", err)
	}
	f.Close()
	if err := os.Remove(f.Name()); err != nil {
		return fmt.Errorf("blobstore: ping: %w", err)
	}
	return nil
}

// blobPath maps a digest to its file. The digest is validated first so that no input can
// name a path outside blobs/.
func (s *FS) blobPath(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", err
	}
	hex := d.Encoded()
	return filepath.Join(s.blobs, string(d.Algorithm()), hex[:2], hex), nil
}

// Stat returns the size of blob d, or ErrNotFound.
func (s *FS) Stat(ctx context.Context, d digest.Digest, _ string) (int64, error) {
	p, err := s.blobPath(d)
	if err != nil {
		return 0, fmt.Errorf("blobstore: stat %q: %w", d, ErrNotFound)
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("blobstore: %w", err)
	}
	return fi.Size(), nil
}

// Open returns blob d as an *os.File, so net/http can serve it with sendfile.
func (s *FS) Open(ctx context.Context, d digest.Digest, _ string) (io.ReadSeekCloser, int64, error) {
	p, err := s.blobPath(d)
	if err != nil {
		return nil, 0, fmt.Errorf("blobstore: open %q: %w", d, ErrNotFound)
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("blobstore: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("blobstore: %w", err)
	}
	return f, fi.Size(), nil
}

// Delete removes blob d; a missing blob is not an error.
func (s *FS) Delete(ctx context.Context, d digest.Digest, _ string) error {
	p, err := s.blobPath(d)
	if err != nil {
		return nil // an invalid digest names no blob, so there is nothing to delete
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blobstore: %w", err)
	}
	return nil
}

// Put streams r into a temp file while verifying size and digest, then makes it blob d.
func (s *FS) Put(ctx context.Context, d digest.Digest, r io.Reader, size int64) (int64, error) {
	dst, err := s.blobPath(d)
	if err != nil {
		return 0, fmt.Errorf("blobstore: put %q: %w: %v", d, ErrDigestMismatch, err)
	}
	f, err := os.CreateTemp(s.tmp, "put-*")
	if err != nil {
		return 0, fmt.Errorf("blobstore: %w", err)
	}
	tmp := f.Name()
	n, err := s.put(ctx, f, d, dst, r, size)
	if err != nil {
		// Closing twice is harmless; the temp file must go on every error path.
		f.Close()
		os.Remove(tmp)
		return 0, err
	}
	return n, nil
}

func (s *FS) put(ctx context.Context, f *os.File, d digest.Digest, dst string, r io.Reader, size int64) (int64, error) {
	h := d.Algorithm().Hash()
	n, err := copyHashed(ctx, &writebackFile{f: f}, r, h, size)
	if err != nil {
		return 0, fmt.Errorf("blobstore: put %s: %w", d, err)
	}
	if size >= 0 && n != size {
		return 0, fmt.Errorf("blobstore: put %s: got %d bytes, want %d: %w", d, n, size, ErrSizeMismatch)
	}
	if got := digest.NewDigest(d.Algorithm(), h); got != d {
		return 0, fmt.Errorf("blobstore: put %s: content is %s: %w", d, got, ErrDigestMismatch)
	}
	if err := s.install(f, dst); err != nil {
		return 0, fmt.Errorf("blobstore: put %s: %w", d, err)
	}
	return n, nil
}

// install makes the verified file f blob dst: fsync, rename, fsync the directory. If the
// blob already exists the same bytes are there, so f is dropped instead (concurrent
// installs of one blob are safe either way: rename replaces atomically). f is closed.
func (s *FS) install(f *os.File, dst string) error {
	name := f.Name()
	if _, err := os.Stat(dst); err == nil {
		f.Close()
		return os.Remove(name)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	dir := filepath.Dir(dst)
	if err := mkdirDurable(dir); err != nil {
		return err
	}
	if err := os.Rename(name, dst); err != nil {
		return err
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	// The source directory lost an entry; syncing it keeps a crash from resurrecting the
	// name, which NewFS (tmp/) or the caller (uploads/) would then have to clean.
	_ = syncDir(filepath.Dir(name))
	return nil
}

// mkdirDurable creates dir and its missing parents under the store and fsyncs each parent
// that gained an entry, so a renamed blob's path survives a crash.
func mkdirDurable(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if err := mkdirDurable(parent); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // a concurrent put made it
		}
		return err
	}
	return syncDir(parent)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// uploadPath maps an upload id to its file. Ids are uuid-like; anything else could name a
// path outside uploads/, so it is refused as an upload that cannot exist.
func (s *FS) uploadPath(id string) (string, error) {
	if !validUploadID(id) {
		return "", fmt.Errorf("blobstore: invalid upload id %q: %w", id, ErrUploadNotFound)
	}
	return filepath.Join(s.uploads, id), nil
}

// validUploadID accepts 1–128 characters of [A-Za-z0-9_-], which covers uuids and rules
// out separators, dots and anything a filesystem treats specially.
func validUploadID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// CreateUpload creates the empty data file of upload id. The filesystem needs no backend
// state, so it returns nil.
func (s *FS) CreateUpload(ctx context.Context, id string) ([]byte, error) {
	p, err := s.uploadPath(id)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("blobstore: create upload: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("blobstore: create upload: %w", err)
	}
	return nil, nil
}

// openUpload opens the data of upload id and cuts it back to st.Offset, discarding what a
// crashed or failed request wrote past the last recorded offset.
func (s *FS) openUpload(id string, st UploadState) (*os.File, error) {
	p, err := s.uploadPath(id)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blobstore: upload %s: %w", id, ErrUploadNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("blobstore: upload %s: %w", id, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blobstore: upload %s: %w", id, err)
	}
	switch {
	case fi.Size() < st.Offset:
		// The bytes the caller recorded as durable are gone; the upload cannot go on.
		f.Close()
		return nil, fmt.Errorf("blobstore: upload %s has %d bytes, state says %d: %w", id, fi.Size(), st.Offset, ErrUploadNotFound)
	case fi.Size() > st.Offset:
		if err := f.Truncate(st.Offset); err != nil {
			f.Close()
			return nil, fmt.Errorf("blobstore: upload %s: %w", id, err)
		}
	}
	return f, nil
}

// uploadHash returns the sha256 of the first st.Offset bytes of f: restored from
// st.HashState when there is one, else recomputed from the file.
func uploadHash(f *os.File, st UploadState) (hash.Hash, error) {
	h := sha256.New()
	if len(st.HashState) > 0 {
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(st.HashState); err != nil {
			return nil, fmt.Errorf("restore hash state: %w", err)
		}
		return h, nil
	}
	if err := hashFile(h, f, st.Offset); err != nil {
		return nil, err
	}
	return h, nil
}

// hashFile feeds the first n bytes of f to h. Reading back from the page cache is cheap
// next to hashing, so no pipeline is needed here.
func hashFile(h hash.Hash, f *os.File, n int64) error {
	buf := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(buf)
	m, err := io.CopyBuffer(h, io.NewSectionReader(f, 0, n), *buf)
	if err != nil {
		return fmt.Errorf("rehash: %w", err)
	}
	if m != n {
		return fmt.Errorf("rehash: read %d of %d bytes: %w", m, n, io.ErrUnexpectedEOF)
	}
	return nil
}

// AppendUpload appends r at st.Offset of upload id and fsyncs it, so the offset the caller
// records next is durable. On any error the data is cut back to st.Offset.
func (s *FS) AppendUpload(ctx context.Context, id string, st UploadState, r io.Reader) (UploadState, error) {
	f, err := s.openUpload(id, st)
	if err != nil {
		return st, err
	}
	defer f.Close()
	next, err := appendUpload(ctx, f, st, r)
	if err != nil {
		// Best effort: a failure here leaves bytes past st.Offset, which the next append
		// or commit truncates anyway.
		_ = f.Truncate(st.Offset)
		return st, fmt.Errorf("blobstore: append upload %s: %w", id, err)
	}
	return next, nil
}

func appendUpload(ctx context.Context, f *os.File, st UploadState, r io.Reader) (UploadState, error) {
	h, err := uploadHash(f, st)
	if err != nil {
		return st, err
	}
	if _, err := f.Seek(st.Offset, io.SeekStart); err != nil {
		return st, err
	}
	n, err := copyHashed(ctx, &writebackFile{f: f, off: st.Offset}, r, h, -1)
	if err != nil {
		return st, err
	}
	if err := f.Sync(); err != nil {
		return st, err
	}
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return st, err
	}
	return UploadState{Offset: st.Offset + n, HashState: state}, nil
}

// CommitUpload verifies the first st.Offset bytes of upload id against d and makes them
// blob d at its own key, so the location is always "". On ErrDigestMismatch the upload
// is kept so the client may retry.
func (s *FS) CommitUpload(ctx context.Context, id string, st UploadState, d digest.Digest) (string, error) {
	dst, err := s.blobPath(d)
	if err != nil {
		return "", fmt.Errorf("blobstore: commit upload %s to %q: %w: %v", id, d, ErrDigestMismatch, err)
	}
	f, err := s.openUpload(id, st)
	if err != nil {
		return "", err
	}
	var h hash.Hash
	if d.Algorithm() == digest.SHA256 && len(st.HashState) > 0 {
		h, err = uploadHash(f, st)
	} else {
		h = d.Algorithm().Hash()
		err = hashFile(h, f, st.Offset)
	}
	if err != nil {
		f.Close()
		return "", fmt.Errorf("blobstore: commit upload %s: %w", id, err)
	}
	if got := digest.NewDigest(d.Algorithm(), h); got != d {
		f.Close()
		return "", fmt.Errorf("blobstore: commit upload %s: content is %s, not %s: %w", id, got, d, ErrDigestMismatch)
	}
	if err := s.install(f, dst); err != nil {
		return "", fmt.Errorf("blobstore: commit upload %s: %w", id, err)
	}
	return "", nil
}

// AbortUpload removes the data of upload id; a missing upload is not an error.
func (s *FS) AbortUpload(ctx context.Context, id string) error {
	p, err := s.uploadPath(id)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blobstore: abort upload %s: %w", id, err)
	}
	return nil
}
