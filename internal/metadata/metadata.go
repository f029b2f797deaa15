// Package metadata defines the registry's metadata store: repositories, tags, manifests,
// blob↔repository links, referrers and upload sessions. Package sqlstore implements it
// on SQLite (the default) and PostgreSQL, with every query written once.
//
// Every mutation that must be consistent (a manifest put that moves a tag, a delete that
// drops tags and referrers) happens in one transaction inside the store, so callers never
// see a half-applied change and concurrent writers cannot lose updates.
package metadata

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// Sentinel errors callers branch on with errors.Is.
var (
	ErrRepositoryNotFound = errors.New("repository not found")
	ErrManifestNotFound   = errors.New("manifest not found")
	ErrTagNotFound        = errors.New("tag not found")
	ErrBlobNotFound       = errors.New("blob not found")
	ErrUploadNotFound     = errors.New("upload session not found")
	// ErrUnavailable means the database could not be reached; the registry answers 503
	// so clients retry later.
	ErrUnavailable = errors.New("metadata store unavailable")
	// ErrUploadConflict is returned by UpdateUpload when the session's offset is not the
	// one the caller read (another request appended in between).
	ErrUploadConflict = errors.New("upload session was modified concurrently")
	// ErrUploadBusy is returned by BeginUploadWrite while another request, on any
	// replica, holds the right to write to the session.
	ErrUploadBusy = errors.New("upload session is being written by another request")
	// ErrQuotaExceeded is returned by LinkBlob when linking a blob new to the
	// repository's namespace would take the namespace's usage over its quota; the
	// wrapping message names the namespace, the quota and the usage.
	ErrQuotaExceeded = errors.New("storage quota exceeded")
	// ErrRepositoryFull is returned by PutManifest when a new manifest or tag would
	// take the repository past its RepositoryLimits; nothing is written. The wrapping
	// message names the limit.
	ErrRepositoryFull = errors.New("repository limit reached")
	// ErrBlobReclaimed is returned by CommitBlob when garbage collection marked or
	// swept the blob after the caller pinned it: the bytes the caller found in storage
	// may be gone, so it must pin again and store the bytes again.
	ErrBlobReclaimed = errors.New("blob was reclaimed by garbage collection since it was pinned")
	// ErrGCLeaseLost is returned by RenewGCLease when the caller no longer holds the
	// garbage-collection lease: it expired and another collector took it, or it was
	// released.
	ErrGCLeaseLost = errors.New("garbage-collection lease is no longer held")
)

// RepositoryLimits bound the rows one repository holds in the database, whatever its
// namespace's quota (there may be none): the manifests (referrers included) and the
// tags. 0 means no bound.
type RepositoryLimits struct {
	Manifests int
	Tags      int
}

// RowQuotaBytes is what a tag counts against its namespace's quota, and what a manifest
// counts beyond its bytes: a database row with its index entries.
const RowQuotaBytes = 512

// ManifestQuotaBytes is what a manifest of size bytes counts against its namespace's
// quota: its bytes twice (the payload, and what the database keeps from it: its
// annotations and references) and a row.
func ManifestQuotaBytes(size int64) int64 { return 2*size + RowQuotaBytes }

// GCLease is the lease that lets one garbage collection run at a time across every
// process sharing the database (docs/design/gc.md).
type GCLease struct {
	Holder     string // names the collector, e.g. "serve on host-a pid 12 run 3f2a"
	AcquiredAt time.Time
	// ExpiresAt is when another collector may take the lease over unless the holder
	// renews it first.
	ExpiresAt time.Time
}

// MissingReferenceError is returned by PutManifest when a blob or child manifest the
// manifest references is not present in the repository.
type MissingReferenceError struct {
	Digest   digest.Digest
	Manifest bool // a child manifest rather than a blob
}

func (e *MissingReferenceError) Error() string {
	kind := "blob"
	if e.Manifest {
		kind = "manifest"
	}
	return fmt.Sprintf("referenced %s %s is not in the repository", kind, e.Digest)
}

// ReferencedManifestError is returned by DeleteManifest when an index of the same
// repository still lists the manifest as a child: deleting it would leave that index
// pointing at nothing (MANIFEST_UNKNOWN on every pull of the index). Nothing is
// deleted; the index must go first.
type ReferencedManifestError struct {
	Digest digest.Digest
	// Indexes are the digests of the indexes that reference it, in byte order (at
	// most a few: see DeleteManifest).
	Indexes []digest.Digest
	// More counts further referencing indexes not listed in Indexes.
	More int
}

func (e *ReferencedManifestError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "manifest %s is a child of index %s", e.Digest, e.Indexes[0])
	for _, d := range e.Indexes[1:] {
		fmt.Fprintf(&b, ", %s", d)
	}
	if e.More > 0 {
		fmt.Fprintf(&b, " and %d more", e.More)
	}
	return b.String()
}

// CatalogFilter selects the repositories a caller may pull, for the catalog
// (authz.Policy.CatalogFilter builds it). The zero value selects nothing. A repository
// is selected when All is set or when it is public (Public), in one of Namespaces
// ("alice" selects "alice/…", not a repository named "alice"), or granted to a team
// Member belongs to (a grant on the whole organisation selects its every repository);
// and then, when Restricted, only if one of Patterns matches its name.
type CatalogFilter struct {
	All        bool
	Public     bool
	Namespaces []string
	Member     string // a user name; "" for none
	// Restricted limits the selection to Patterns, the repository patterns of an access
	// token that grant pull: an exact name, "prefix/*" (anything under prefix, at any
	// depth) or "*". Restricted with no patterns selects nothing.
	Restricted bool
	Patterns   []string
}

// Blob is a content-addressed blob known to the registry.
type Blob struct {
	Digest digest.Digest
	Size   int64
	// Location is where the blob store keeps the bytes when not at the digest's own
	// key: an opaque name the blob store returned from CommitUpload (an S3 chunked
	// upload completes where it was written, docs/design/blob-locations.md). "" means
	// the default, content-addressed key. It never changes once the blob is committed.
	Location  string
	CreatedAt time.Time
}

// Manifest is a manifest stored in a repository. Payload holds the exact bytes pushed.
type Manifest struct {
	Repository   string
	Digest       digest.Digest
	MediaType    string
	ArtifactType string // for referrers: artifactType, else config media type for artifacts
	Size         int64
	Payload      []byte
	Subject      digest.Digest // empty when the manifest has no subject
	Annotations  map[string]string
	CreatedAt    time.Time
}

// References lists what a manifest points at; PutManifest checks each is present in the
// repository and records the edges (for garbage collection and deletes).
type References struct {
	Blobs     []digest.Digest // config and layers that must be linked to the repository
	Manifests []digest.Digest // children of an index that must be in the repository
}

// PutManifestResult reports what a PutManifest changed.
type PutManifestResult struct {
	// Created is true when the manifest was new to the repository.
	Created bool
	// PreviousTagDigest is the digest the tag pointed at before, empty if the tag is new.
	PreviousTagDigest digest.Digest
	// TagMoved is true when a tag was given and now points somewhere new.
	TagMoved bool
}

// DeleteManifestResult reports what deleting a manifest removed.
type DeleteManifestResult struct {
	Manifest Manifest // without payload
	Tags     []string // tags that pointed at it and are gone
}

// Upload is a resumable blob upload session. Offset is the number of bytes durably
// appended; HashState is the marshalled state of the running sha256 at Offset.
type Upload struct {
	ID         string
	Repository string
	Offset     int64
	HashState  []byte
	// BackendState is opaque state of the blob store (e.g. S3 upload id and parts).
	BackendState []byte
	CreatedAt    time.Time
	UpdatedAt    time.Time
	// Writer is the request holding the session's write (BeginUploadWrite), for
	// UpdateUpload; "" when the caller took none.
	Writer string
}

// Store is the metadata store. Implementations are safe for concurrent use.
type Store interface {
	// Ping checks the database is reachable.
	Ping(ctx context.Context) error
	Close() error

	// EnsureRepository creates the repository if it does not exist.
	EnsureRepository(ctx context.Context, name string) error
	// RepositoryExists reports whether the repository exists.
	RepositoryExists(ctx context.Context, name string) (bool, error)
	// ListRepositories returns up to n repository names sorted lexically after last
	// (n <= 0 means no limit).
	ListRepositories(ctx context.Context, last string, n int) ([]string, error)
	// DeleteRepository removes a repository with its tags, manifests and blob links in
	// one transaction (the blobs are left to garbage collection), or returns
	// ErrRepositoryNotFound.
	DeleteRepository(ctx context.Context, name string) error

	// Catalog returns up to n names (n <= 0: no limit), in byte order after last, of
	// the repositories f selects: one query, whatever the share of repositories the
	// caller may see.
	Catalog(ctx context.Context, f CatalogFilter, last string, n int) ([]string, error)

	// PutBlob records a blob that is durably stored (idempotent; b.Location is kept
	// only when the row is new or pending).
	PutBlob(ctx context.Context, b Blob) error
	// GetBlob returns a blob known to the registry, or ErrBlobNotFound.
	GetBlob(ctx context.Context, d digest.Digest) (Blob, error)
	// LinkBlob makes a known blob part of a repository, creating the repository. It
	// returns ErrQuotaExceeded when the blob is new to the repository's namespace (the
	// first path component) and would take its usage over its quota; the check and the
	// link are one transaction.
	LinkBlob(ctx context.Context, repo string, d digest.Digest) error
	// RepositoryBlob returns the blob if it is linked to the repository, or ErrBlobNotFound.
	RepositoryBlob(ctx context.Context, repo string, d digest.Digest) (Blob, error)
	// UnlinkBlob removes the blob from the repository, or returns ErrBlobNotFound.
	UnlinkBlob(ctx context.Context, repo string, d digest.Digest) error

	// PinBlob claims a blob for a push before the push writes (or skips writing)
	// its bytes: in one transaction it upserts the row with pinned_at = now and
	// deleting_at = NULL, so GC will not sweep it (docs/design/gc.md). A new row is
	// pending: its size is size when known (>= 0), else -1, and GetBlob, LinkBlob and
	// RepositoryBlob ignore a row of size -1 until PutBlob or CommitBlob records the
	// size. It returns the pin time, which CommitBlob checks.
	PinBlob(ctx context.Context, d digest.Digest, size int64) (pinnedAt time.Time, err error)
	// CommitBlob finishes a pinned push in one transaction: it checks that the row
	// pinned at pinnedAt still exists (not re-created since) and is not marked for
	// deletion (else ErrBlobReclaimed: the push must pin and store the bytes again),
	// records b.Size and b.Location if the row is still pending, and links the blob
	// into repo as LinkBlob does (quota included). It returns the location the row
	// holds afterwards: b.Location when this call recorded the blob, the earlier
	// location when the blob was already committed. When the two differ, the bytes the
	// caller stored at b.Location are a redundant copy that nothing refers to.
	CommitBlob(ctx context.Context, repo string, b Blob, pinnedAt time.Time) (location string, err error)
	// CommitUploadedBlob is CommitBlob for the blob of upload session upload, which it
	// deletes in the same transaction. When the session is gone (claimed by a cancel or
	// the stale-session purge, see ClaimUpload) it returns ErrUploadNotFound and
	// commits nothing. So the bytes at b.Location are either recorded with the blob or
	// owned by whoever claimed the session, never both.
	CommitUploadedBlob(ctx context.Context, repo string, b Blob, pinnedAt time.Time, upload string) (location string, err error)
	// DiscardBlob removes the bytes and the row of a blob whose push was refused after
	// its bytes were stored (over quota), at once rather than at the next garbage
	// collection: in one transaction it locks the row if it is still the pending row
	// the pin at pinnedAt created and nobody pinned since (so no other push can be
	// relying on those bytes), calls del with the row's location (del deletes the
	// bytes) while holding the lock, and deletes the row. It reports false, without
	// calling del, in any other state: the bytes are then left to garbage collection.
	DiscardBlob(ctx context.Context, d digest.Digest, pinnedAt time.Time, del func(location string) error) (bool, error)
	// UnpinBlob withdraws a pin whose push failed: it removes the row if it is still the
	// pending row that pin created (no size recorded, pinned at pinnedAt, linked
	// nowhere), so a refused upload leaves nothing behind. Any other state is left alone.
	UnpinBlob(ctx context.Context, d digest.Digest, pinnedAt time.Time) error

	// GCUntaggedManifests is phase 1 of garbage collection: manifests created before
	// before that no tag points at, that no other manifest of the repository lists as
	// a child, and whose subject (if any) is not a manifest of the repository. Unless
	// dryRun, each is deleted as DeleteManifest does, in one transaction. It returns
	// them (without payload).
	GCUntaggedManifests(ctx context.Context, before time.Time, dryRun bool) ([]Manifest, error)
	// GCUnlinkUnreferenced is phase 2: it removes the repository links created before
	// before that no manifest of the repository references (one statement, under the
	// repository lock PutManifest takes), and returns how many (would) go.
	GCUnlinkUnreferenced(ctx context.Context, before time.Time, dryRun bool) (int, error)
	// GCMarkBlobs is phase 3a: blobs linked nowhere, not marked yet, whose
	// max(created_at, pinned_at) is before before get deleting_at = now (unless
	// dryRun). It returns them. A dry run also counts as gone the links
	// GCUnlinkUnreferenced would remove with the same cutoff.
	GCMarkBlobs(ctx context.Context, before time.Time, dryRun bool) ([]Blob, error)
	// GCSweepCandidates lists blobs marked before before, not pinned since the mark and
	// linked nowhere: what GCSweepBlob would delete.
	GCSweepCandidates(ctx context.Context, before time.Time) ([]Blob, error)
	// GCSweepBlob is phase 3b for one blob, in one transaction: it locks the row if it
	// is still a sweep candidate (see GCSweepCandidates), calls del with the row's
	// Location (del deletes the bytes from the blob store) while holding the lock,
	// then deletes the row. It reports false, without calling del, when the blob is no
	// longer a candidate; an error from del rolls back and is returned.
	GCSweepBlob(ctx context.Context, d digest.Digest, before time.Time, del func(location string) error) (bool, error)

	// AcquireGCLease takes the garbage-collection lease for holder until ttl from now
	// when nobody holds it, its holder let it expire, or holder already holds it (then
	// it is extended). It returns the lease as it stands and whether holder holds it;
	// when not, the lease names the collector that does. Expiry is judged by one clock
	// for every replica (PostgreSQL's server clock; SQLite's processes share a host).
	AcquireGCLease(ctx context.Context, holder string, ttl time.Duration) (GCLease, bool, error)
	// RenewGCLease extends holder's lease until ttl from now, or returns
	// ErrGCLeaseLost when holder no longer holds it. A lease that expired but that
	// nobody took over is renewed.
	RenewGCLease(ctx context.Context, holder string, ttl time.Duration) error
	// ReleaseGCLease gives the lease up if holder holds it; otherwise it does nothing.
	ReleaseGCLease(ctx context.Context, holder string) error

	// SetRepositoryLimits sets the bounds PutManifest enforces (zero values: none).
	SetRepositoryLimits(l RepositoryLimits)
	// PutManifest stores m in its repository, checks refs are present (else
	// *MissingReferenceError), records referrer edges for m.Subject, and points tag at
	// it when tag is not empty, all in one transaction. A manifest new to the
	// repository and a new tag must fit in the repository's limits (else
	// ErrRepositoryFull) and in its namespace's quota, which counts them
	// (ManifestQuotaBytes, RowQuotaBytes) with the blobs (else ErrQuotaExceeded).
	PutManifest(ctx context.Context, m Manifest, refs References, tag string) (PutManifestResult, error)
	// GetManifest returns the manifest with payload, or ErrManifestNotFound.
	GetManifest(ctx context.Context, repo string, d digest.Digest) (Manifest, error)
	// GetManifestByTag returns the manifest a tag points at, with payload, in one
	// lookup (the hot path of every pull by tag), or ErrTagNotFound.
	GetManifestByTag(ctx context.Context, repo, tag string) (Manifest, error)
	// ResolveTag returns the digest a tag points at, or ErrTagNotFound.
	ResolveTag(ctx context.Context, repo, tag string) (digest.Digest, error)
	// ListTags returns up to n tags sorted lexically after last (n <= 0: no limit), or
	// ErrRepositoryNotFound.
	ListTags(ctx context.Context, repo, last string, n int) ([]string, error)
	// DeleteTag removes a tag, or returns ErrTagNotFound.
	DeleteTag(ctx context.Context, repo, tag string) (digest.Digest, error)
	// DeleteManifest removes a manifest, the tags pointing at it and its referrer edges,
	// or returns ErrManifestNotFound. It refuses, deleting nothing, a manifest that
	// another manifest of the repository lists as a child (an index), with a
	// *ReferencedManifestError naming up to three of those indexes.
	DeleteManifest(ctx context.Context, repo string, d digest.Digest) (DeleteManifestResult, error)
	// Referrers lists manifests of the repository whose subject is d (without payload),
	// filtered by artifactType when it is not empty, ordered by digest.
	Referrers(ctx context.Context, repo string, d digest.Digest, artifactType string) ([]Manifest, error)

	// CreateUpload records a new upload session.
	CreateUpload(ctx context.Context, u Upload) error
	// GetUpload returns an upload session, or ErrUploadNotFound.
	GetUpload(ctx context.Context, id string) (Upload, error)
	// UpdateUpload stores the session's new offset and states if its offset is still
	// prevOffset and its write is held by u.Writer (or by nobody, when u.Writer is ""),
	// else returns ErrUploadConflict (ErrUploadNotFound if it is gone). It ends the
	// session's reservation (ReserveUpload) and the write: the bytes are in Offset now.
	UpdateUpload(ctx context.Context, u Upload, prevOffset int64) error
	// BeginUploadWrite makes writer the one request that may write to session id, for
	// ttl unless renewed, if the session's offset is still offset (else
	// ErrUploadConflict; ErrUploadNotFound when it is gone) and no other writer holds
	// it (else ErrUploadBusy). The blob store is written only after it: two requests on
	// two replicas never write one session's next bytes at once (on S3 the second part
	// of one number would replace the first). Holds are judged by the database's clock.
	BeginUploadWrite(ctx context.Context, id string, offset int64, writer string, ttl time.Duration) error
	// RenewUploadWrite extends writer's hold on session id to ttl from now, or returns
	// ErrUploadConflict when writer no longer holds it (ErrUploadNotFound when the
	// session is gone).
	RenewUploadWrite(ctx context.Context, id, writer string, ttl time.Duration) error
	// EndUploadWrite gives writer's hold on session id up (idempotent), for a request
	// that failed before UpdateUpload.
	EndUploadWrite(ctx context.Context, id, writer string) error
	// DeleteUpload removes a session (idempotent).
	DeleteUpload(ctx context.Context, id string) error
	// ClaimUpload marks session id claimed and reports whether this call did: with a
	// zero staleBefore (a cancel) if no one claimed it; with a non-zero one (the purge)
	// if it was last updated before staleBefore and no one claimed it, or if it was
	// claimed before staleBefore by a claimer that never finished (died before
	// DeleteUpload). Whoever claims a session owns what the upload stored and discards
	// it, then deletes the session: from the claim on, GetUpload, UpdateUpload and
	// CommitUploadedBlob see no session, so no commit can record those bytes.
	ClaimUpload(ctx context.Context, id string, staleBefore time.Time) (bool, error)
	// UnclaimUpload puts a claimed session back, for a claimer that could not discard
	// what the upload stored: the next cancel or purge tries again.
	UnclaimUpload(ctx context.Context, id string) error
	// StaleUploads lists sessions not updated since before, claimed ones included.
	StaleUploads(ctx context.Context, before time.Time) ([]Upload, error)

	// ReserveUpload makes room in its namespace's quota for bytes a request is about
	// to append to upload session id, before they are written: at least atLeast and
	// at most atMost bytes, as many as the quota leaves. A namespace's quota counts its
	// linked blobs and, for every upload session of its repositories, the bytes
	// received (Offset) and those reserved; the reservation and that count are one
	// transaction under the namespace's lock, so requests on any replica cannot
	// reserve the same bytes twice. It returns the bytes granted, or limited false
	// (and atMost) when the namespace has no quota: the caller need not reserve again
	// for this request. Less than atLeast left is ErrQuotaExceeded, with a message naming
	// the quota and the usage; a session that is gone is ErrUploadNotFound.
	// UpdateUpload and ReleaseUpload end the reservation.
	ReserveUpload(ctx context.Context, id string, atLeast, atMost int64) (granted int64, limited bool, err error)
	// ReleaseUpload drops what session id has reserved (idempotent), for a request
	// that failed before UpdateUpload recorded its bytes.
	ReleaseUpload(ctx context.Context, id string) error
	// QuotaHeadroom returns how many bytes a blob d new to the namespace of repo may
	// have within the namespace's quota (linked blobs and open uploads counted as
	// ReserveUpload counts them), or limited false when the namespace has no quota or
	// already holds d. When size >= 0 does not fit, it returns ErrQuotaExceeded with
	// a message naming the quota and the usage. It reads without locking: a check
	// before any byte is stored; the link decides.
	QuotaHeadroom(ctx context.Context, repo string, d digest.Digest, size int64) (headroom int64, limited bool, err error)
}

// QuotaError returns nil when size more bytes fit in namespace's quota with used bytes
// taken by its blobs and uploading bytes by its open upload sessions, else an error
// wrapping ErrQuotaExceeded that names the namespace, the quota and the usage; what
// says what the size is of ("blob", "upload of"). Stores call it inside the
// transaction that links or reserves.
func QuotaError(namespace string, quota, used, uploading, size int64, what string) error {
	if used+uploading+size <= quota {
		return nil
	}
	inUploads := ""
	if uploading > 0 {
		inUploads = fmt.Sprintf(" and %d bytes in open uploads", uploading)
	}
	return fmt.Errorf("namespace %s would exceed its storage quota of %d bytes: %d bytes used%s, %s %d bytes: %w",
		namespace, quota, used, inUploads, what, size, ErrQuotaExceeded)
}
