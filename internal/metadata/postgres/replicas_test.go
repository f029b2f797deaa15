package postgres

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/hubctl/hubctl/internal/metadata/storetest"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/pgtest"
)

// concurrently runs fn(i) for i in [0, n) in n goroutines released together, and
// returns the errors by index.
func concurrently(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func manifest(repo, content string) metadata.Manifest {
	payload := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","x":%q}`, content))
	return metadata.Manifest{Repository: repo, Digest: digest.FromBytes(payload),
		MediaType: "application/vnd.oci.image.manifest.v1+json", Size: int64(len(payload)), Payload: payload}
}

// replicas opens two stores on one new database: two pools, as two hubctl serve
// processes would have, so nothing is shared but the database.
func replicas(t *testing.T) [2]*Store {
	t.Helper()
	a, dsn := openFresh(t)
	t.Cleanup(func() { a.Close() })
	b, err := Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return [2]*Store{a, b}
}

// TestReplicasPutSameTag pushes 50 manifests to one tag, alternately through two
// replicas, all at once. The tag moves must form one chain (each put reports the digest
// the previous put left), the final tag must be the chain's end on both replicas, and
// there must be exactly one tag row.
func TestReplicasPutSameTag(t *testing.T) {
	rs := replicas(t)
	ctx := t.Context()
	const n = 50
	cfg := digest.FromString("config")
	if err := rs[0].PutBlob(ctx, metadata.Blob{Digest: cfg, Size: 6}); err != nil {
		t.Fatal(err)
	}
	// Both replicas link the config at once, creating the repository in a race.
	if err := errors.Join(concurrently(8, func(i int) error { return rs[i%2].LinkBlob(ctx, "team/app", cfg) })...); err != nil {
		t.Fatalf("concurrent LinkBlob: %v", err)
	}
	ms := make([]metadata.Manifest, n)
	for i := range ms {
		ms[i] = manifest("team/app", fmt.Sprint("build ", i))
	}
	results := make([]metadata.PutManifestResult, n)
	errs := concurrently(n, func(i int) error {
		var err error
		results[i], err = rs[i%2].PutManifest(ctx, ms[i], metadata.References{Blobs: []digest.Digest{cfg}}, "latest")
		return err
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent PutManifest: %v", err)
	}

	pushed, replaced := storetest.CheckTagChain(t, ms, results)
	var finals [2]digest.Digest
	for i, s := range rs {
		d, err := s.ResolveTag(ctx, "team/app", "latest")
		if err != nil {
			t.Fatal(err)
		}
		finals[i] = d
	}
	if finals[0] != finals[1] {
		t.Fatalf("replicas disagree on latest: %s and %s", finals[0], finals[1])
	}
	if !pushed[finals[0]] || replaced[finals[0]] != 0 || len(replaced) != n-1 {
		t.Errorf("latest = %s: not the end of the chain of %d moves (replaced %d times, %d replaced)",
			finals[0], n-1, replaced[finals[0]], len(replaced))
	}
	var tagRows, repoRows int
	if err := rs[1].pool.QueryRow(ctx, "SELECT count(*) FROM tags").Scan(&tagRows); err != nil {
		t.Fatal(err)
	}
	if err := rs[1].pool.QueryRow(ctx, "SELECT count(*) FROM repositories").Scan(&repoRows); err != nil {
		t.Fatal(err)
	}
	if tagRows != 1 || repoRows != 1 {
		t.Fatalf("%d tag rows and %d repository rows, want 1 and 1", tagRows, repoRows)
	}
}

// TestReplicasPutAndDelete races puts that move a tag with deletes of the manifests
// it points at, across two replicas: at the end the tag, if any, must point at a
// manifest that exists (the foreign key would refuse otherwise, and every operation
// must have succeeded or failed cleanly).
func TestReplicasPutAndDelete(t *testing.T) {
	rs := replicas(t)
	ctx := t.Context()
	const n = 40
	ms := make([]metadata.Manifest, n)
	for i := range ms {
		ms[i] = manifest("app", fmt.Sprint("m", i))
		if _, err := rs[0].PutManifest(ctx, ms[i], metadata.References{}, ""); err != nil {
			t.Fatal(err)
		}
	}
	errs := concurrently(2*n, func(i int) error {
		s := rs[i%2]
		m := ms[i/2]
		if i%4 < 2 {
			_, err := s.PutManifest(ctx, m, metadata.References{}, "latest")
			return err
		}
		_, err := s.DeleteManifest(ctx, "app", m.Digest)
		if errors.Is(err, metadata.ErrManifestNotFound) {
			return nil
		}
		return err
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent put/delete: %v", err)
	}
	d, err := rs[1].ResolveTag(ctx, "app", "latest")
	switch {
	case errors.Is(err, metadata.ErrTagNotFound):
	case err != nil:
		t.Fatal(err)
	default:
		if _, err := rs[0].GetManifestByTag(ctx, "app", "latest"); err != nil {
			t.Fatalf("latest = %s but its manifest: %v", d, err)
		}
	}
}

// TestReplicasUploadCompareAndSet races PATCHes of one upload session on two replicas:
// exactly one may win.
func TestReplicasUploadCompareAndSet(t *testing.T) {
	rs := replicas(t)
	ctx := t.Context()
	if err := rs[0].CreateUpload(ctx, metadata.Upload{ID: "u", Repository: "app"}); err != nil {
		t.Fatal(err)
	}
	const n = 20
	errs := concurrently(n, func(i int) error {
		return rs[i%2].UpdateUpload(ctx, metadata.Upload{ID: "u", Repository: "app", Offset: int64(100 + i)}, 0)
	})
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won >= 0:
			t.Fatalf("updates %d and %d both succeeded from offset 0", won, i)
		case err == nil:
			won = i
		case !errors.Is(err, metadata.ErrUploadConflict):
			t.Fatalf("update %d: %v, want nil or ErrUploadConflict", i, err)
		}
	}
	if won < 0 {
		t.Fatal("no update succeeded")
	}
	u, err := rs[(won+1)%2].GetUpload(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	if u.Offset != int64(100+won) {
		t.Fatalf("offset seen by the other replica = %d, want the winner's %d", u.Offset, 100+won)
	}
}

// TestServerRestart restarts PostgreSQL under an open Store, whose pool then holds
// only dead connections: the next calls must succeed without reopening the Store.
func TestServerRestart(t *testing.T) {
	s, _ := openFresh(t)
	defer s.Close()
	ctx := t.Context()
	m := manifest("app", "before")
	if _, err := s.PutManifest(ctx, m, metadata.References{}, "latest"); err != nil {
		t.Fatal(err)
	}
	// Fill the pool with several idle connections, all of which the restart kills.
	if err := errors.Join(concurrently(8, func(int) error {
		_, err := s.ResolveTag(ctx, "app", "latest")
		return err
	})...); err != nil {
		t.Fatal(err)
	}
	if idle := s.pool.Stat().IdleConns(); idle < 2 {
		t.Logf("only %d idle connections before the restart", idle)
	}

	pgtest.Restart(t)

	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after restart: %v", err)
	}
	pgtest.Restart(t)
	// Reads and writes, each the first call after a restart in turn.
	if d, err := s.ResolveTag(ctx, "app", "latest"); err != nil || d != m.Digest {
		t.Fatalf("ResolveTag after restart = %s, %v; want %s", d, err, m.Digest)
	}
	pgtest.Restart(t)
	after := manifest("app", "after")
	res, err := s.PutManifest(ctx, after, metadata.References{}, "latest")
	if err != nil {
		t.Fatalf("PutManifest after restart: %v", err)
	}
	if res.PreviousTagDigest != m.Digest || !res.Created {
		t.Fatalf("PutManifest after restart = %+v", res)
	}
	// Concurrent calls after a restart each draw a dead connection at first.
	pgtest.Restart(t)
	if err := errors.Join(concurrently(8, func(i int) error {
		_, err := s.GetManifestByTag(ctx, "app", "latest")
		return err
	})...); err != nil {
		t.Fatalf("concurrent reads after restart: %v", err)
	}
}
