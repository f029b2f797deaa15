package engine_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/blobstore/s3store"
	"github.com/hubctl/hubctl/internal/gc"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/registry"
	"github.com/hubctl/hubctl/internal/s3test"
	"github.com/hubctl/hubctl/internal/workflow/engine"
)

// bigFilesWorkflow keeps an artifact and a cache of 6 MiB of random bytes each: past
// one S3 part (the store below uses 5 MiB parts), so each goes up as a multipart
// upload, the storage a tracked put records.
const bigFilesWorkflow = `name: bigfiles
on:
  push:
    repositories: [team/app]
jobs:
  a:
    image: alpine
    artifacts:
      - {name: big, path: out}
    cache:
      key: big
    steps:
      - run: |
          mkdir -p out
          head -c 6291456 /dev/urandom > out/blob
          head -c 6291456 /dev/urandom > "$HUBCTL_CACHE/blob"
  b:
    needs: [a]
    image: alpine
    outputs: [size]
    steps:
      - run: echo "[JOB_OUT] size = $(wc -c < out/blob | tr -d ' ')"
`

// s3Blobs opens a store on a fresh bucket of the shared S3 gateway, with the smallest
// parts S3 allows.
func s3Blobs(t *testing.T, endpoint, ak, sk, bucket string) *s3store.Store {
	t.Helper()
	blobs, err := s3store.New(t.Context(), s3store.Options{Endpoint: endpoint, Bucket: bucket, AccessKey: ak, SecretKey: sk,
		PathStyle: true, PartSize: s3store.MinPartSize})
	if err != nil {
		t.Fatal(err)
	}
	return blobs
}

// artifactSessions lists the upload sessions that track artifact and cache puts.
func artifactSessions(t *testing.T, s *sqlstore.Store) []metadata.Upload {
	t.Helper()
	all, err := s.StaleUploads(t.Context(), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(all, func(u metadata.Upload) bool { return u.Repository != engine.UploadRepository })
}

// TestWorkflowFilesOnS3Tracked: an artifact and a cache too large for one S3 part
// are stored through the tracked put; when the run is done no upload session and no
// multipart upload is left, and garbage collection sees both blobs as referenced by
// their rows (it sweeps nothing and the next job still reads the artifact).
func TestWorkflowFilesOnS3Tracked(t *testing.T) {
	endpoint, ak, sk, bucket := s3test.Start(t)
	blobs := s3Blobs(t, endpoint, ak, sk, bucket)
	s := mustStore(t)(sqlstore.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "meta.db")))
	rec := &recordingStore{Store: s}
	startFilesEngine(t, s, engine.ArtifactOptions{Blobs: blobs, Store: rec})
	w := trigger(t, s, "bigfiles", bigFilesWorkflow)
	run := waitRuns(t, s, w, 1)[0]
	if run.State != engine.StateSucceeded {
		t.Fatalf("run %s: %+v", run.State, run.Jobs)
	}
	if got := jobsByName(run)["b"].Outputs["size"]; got != "6291456" {
		t.Fatalf("b read %q bytes of a's artifact, want 6291456", got)
	}
	arts, err := s.ListWorkflowArtifacts(t.Context(), run.ID)
	if err != nil || len(arts) != 1 || arts[0].Size <= s3store.MinPartSize {
		t.Fatalf("artifacts %+v (want one past a part), %v", arts, err)
	}
	caches, err := s.ListWorkflowCaches(t.Context(), w.ID)
	if err != nil || len(caches) != 1 || caches[0].Size <= s3store.MinPartSize {
		t.Fatalf("caches %+v (want one past a part), %v", caches, err)
	}
	rec.mu.Lock()
	tracked := slices.Clone(rec.created)
	rec.mu.Unlock()
	if len(tracked) != 2 || tracked[0].Repository != engine.UploadRepository || tracked[1].Repository != engine.UploadRepository {
		t.Fatalf("sessions recorded by the artifact's and the cache's puts: %+v, want two of %s", tracked, engine.UploadRepository)
	}
	if left := artifactSessions(t, s); len(left) != 0 {
		t.Fatalf("sessions left by finished puts: %+v", left)
	}
	if left := s3test.MultipartUploads(t, bucket); len(left) != 0 {
		t.Fatalf("multipart uploads left by finished puts: %v", left)
	}

	rep, err := gc.Run(t.Context(), gc.Options{Meta: s, Blobs: blobs, Holder: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Marked != 0 || rep.Swept != 0 {
		t.Fatalf("GC took artifact or cache blobs: %+v", rep)
	}
	for _, b := range []struct {
		d    digest.Digest
		loc  string
		size int64
	}{{arts[0].Digest, arts[0].Location, arts[0].Size}, {caches[0].Digest, caches[0].Location, caches[0].Size}} {
		if size, err := blobs.Stat(t.Context(), b.d, b.loc); err != nil || size != b.size {
			t.Fatalf("blob %s after GC: size %d (row %d), %v", b.d, size, b.size, err)
		}
	}
}

// recordingStore is the real store that notes the upload sessions created through it,
// to show the engine's puts were tracked once the sessions are gone.
type recordingStore struct {
	*sqlstore.Store
	mu      sync.Mutex
	created []metadata.Upload
}

func (r *recordingStore) CreateUpload(ctx context.Context, u metadata.Upload) error {
	err := r.Store.CreateUpload(ctx, u)
	if err == nil {
		r.mu.Lock()
		r.created = append(r.created, u)
		r.mu.Unlock()
	}
	return err
}

// The child process of TestArtifactPutKilledMidway: it puts a blob through PutBlob
// from a reader that, past the first part, never ends, and is killed there.
const childEnv = "HUBCTL_TEST_TRACKEDPUT_CHILD"

// TestArtifactPutKilledMidway: a hub killed (SIGKILL) in the middle of an artifact's
// put leaves a multipart upload on S3 and the session that tracks it; the stale-upload
// purge of `hubctl serve` (registry.CleanStaleUploads) aborts the one and deletes the
// other, so nothing half-written stays in the bucket.
func TestArtifactPutKilledMidway(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("the child's own test run")
	}
	endpoint, ak, sk, bucket := s3test.Start(t)
	dbPath := filepath.Join(t.TempDir(), "meta.db")
	marker := filepath.Join(t.TempDir(), "read")
	s := mustStore(t)(sqlstore.OpenSQLite(t.Context(), dbPath))
	blobs := s3Blobs(t, endpoint, ak, sk, bucket)

	cmd := exec.Command(os.Args[0], "-test.run=^TestTrackedPutChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=1", "CHILD_S3="+endpoint, "CHILD_AK="+ak, "CHILD_SK="+sk,
		"CHILD_BUCKET="+bucket, "CHILD_DB="+dbPath, "CHILD_MARKER="+marker)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	// Wait for the put to be under way: its session recorded, its multipart upload
	// created, and the first 6 MiB (more than a part) read by the store.
	var sessions []metadata.Upload
	var uploads []string
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			t.Fatalf("the child ended before it was killed: %v", err)
		default:
		}
		sessions, uploads = artifactSessions(t, s), s3test.MultipartUploads(t, bucket)
		if len(sessions) == 1 && len(uploads) == 1 && fileExists(marker) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the put never got under way: sessions %+v, multipart uploads %v", sessions, uploads)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
	exited <- nil // for the cleanup

	// The dead hub's storage is still there, and tracked.
	if got := artifactSessions(t, s); len(got) != 1 || got[0].ID != sessions[0].ID {
		t.Fatalf("after the kill: sessions %+v, want %s", got, sessions[0].ID)
	}
	if got := s3test.MultipartUploads(t, bucket); !slices.Equal(got, uploads) {
		t.Fatalf("after the kill: multipart uploads %v, want %v", got, uploads)
	}

	reg := registry.New(registry.Options{Blobs: blobs, Meta: s})
	// A purge whose age bound the session has not passed leaves it alone.
	if n, err := reg.CleanStaleUploads(t.Context(), time.Hour); err != nil || n != 0 {
		t.Fatalf("purge of uploads older than 1h: %d, %v", n, err)
	}
	if got := s3test.MultipartUploads(t, bucket); len(got) != 1 {
		t.Fatalf("a fresh tracked upload was aborted: %v", got)
	}
	n, err := reg.CleanStaleUploads(t.Context(), 0)
	if err != nil || n != 1 {
		t.Fatalf("purge: %d, %v; want 1 session discarded", n, err)
	}
	if got := artifactSessions(t, s); len(got) != 0 {
		t.Fatalf("sessions after the purge: %+v", got)
	}
	if got := s3test.MultipartUploads(t, bucket); len(got) != 0 {
		t.Fatalf("multipart uploads after the purge: %v", got)
	}
	if keys := s3test.Keys(t, bucket, ""); len(keys) != 0 {
		t.Fatalf("keys left in the bucket after the purge: %v", keys)
	}
}

// TestTrackedPutChild is the child process of TestArtifactPutKilledMidway (skipped
// unless run as one).
func TestTrackedPutChild(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("run by TestArtifactPutKilledMidway only")
	}
	s, err := sqlstore.OpenSQLite(context.Background(), os.Getenv("CHILD_DB"))
	if err != nil {
		t.Fatal(err)
	}
	blobs := s3Blobs(t, os.Getenv("CHILD_S3"), os.Getenv("CHILD_AK"), os.Getenv("CHILD_SK"), os.Getenv("CHILD_BUCKET"))
	// The digest of a blob never fully sent: 12 MiB declared, 6 MiB then silence.
	size := int64(12 << 20)
	d := digest.NewDigest(digest.SHA256, sha256.New())
	r := io.MultiReader(io.LimitReader(rand.Reader, 6<<20), blockForever{os.Getenv("CHILD_MARKER")})
	_, err = engine.PutBlob(context.Background(), s, blobs, d, r, size, nil)
	t.Fatalf("the put ended (it should have been killed): %v", err)
}

// blockForever is a reader that, once read, creates the file marker and never
// returns: the hub is killed while it waits.
type blockForever struct{ marker string }

func (b blockForever) Read([]byte) (int, error) {
	if err := os.WriteFile(b.marker, nil, 0o600); err != nil {
		panic(err)
	}
	time.Sleep(time.Hour) // a sleep, not a select{}: the runtime never calls it a deadlock
	return 0, io.ErrUnexpectedEOF
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
