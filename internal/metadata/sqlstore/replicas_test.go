package sqlstore

import (
	"errors"
	"fmt"
	"testing"

	"github.com/hubctl/hubctl/internal/metadata/storetest"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/metadata"
)

func manifest(repo, content string) metadata.Manifest {
	payload := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","x":%q}`, content))
	return metadata.Manifest{Repository: repo, Digest: digest.FromBytes(payload),
		MediaType: "application/vnd.oci.image.manifest.v1+json", Size: int64(len(payload)), Payload: payload}
}

// replicas opens two stores on one new database of b's kind: two pools, as two
// hubctl serve processes would have, so nothing is shared but the database (for
// SQLite, the file: its processes share one host).
func replicas(t *testing.T, b backend) [2]*Store {
	t.Helper()
	a, reopen := openFresh(t, b)
	other := reopen(t)
	t.Cleanup(func() { other.Close() })
	return [2]*Store{a, other}
}

// eachReplicaPair runs fn as a subtest per database, with two replicas of a new one.
func eachReplicaPair(t *testing.T, fn func(t *testing.T, rs [2]*Store)) {
	eachBackend(t, func(t *testing.T, b backend) { fn(t, replicas(t, b)) })
}

// TestReplicasPutSameTag pushes 50 manifests to one tag, alternately through two
// replicas, all at once. The tag moves must form one chain (each put reports the digest
// the previous put left), the final tag must be the chain's end on both replicas, and
// there must be exactly one tag row.
func TestReplicasPutSameTag(t *testing.T) {
	eachReplicaPair(t, func(t *testing.T, rs [2]*Store) {
		ctx := t.Context()
		const n = 50
		cfg := digest.FromString("config")
		if err := rs[0].PutBlob(ctx, metadata.Blob{Digest: cfg, Size: 6}); err != nil {
			t.Fatal(err)
		}
		// Both replicas link the config at once, creating the repository in a race.
		if err := errors.Join(storetest.Concurrently(8, func(i int) error { return rs[i%2].LinkBlob(ctx, "team/app", cfg) })...); err != nil {
			t.Fatalf("concurrent LinkBlob: %v", err)
		}
		ms := make([]metadata.Manifest, n)
		for i := range ms {
			ms[i] = manifest("team/app", fmt.Sprint("build ", i))
		}
		results := make([]metadata.PutManifestResult, n)
		errs := storetest.Concurrently(n, func(i int) error {
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
		tagRows, repoRows := count(t, rs[1], "tags"), count(t, rs[1], "repositories")
		if tagRows != 1 || repoRows != 1 {
			t.Fatalf("%d tag rows and %d repository rows, want 1 and 1", tagRows, repoRows)
		}
	})
}

// TestReplicasPutAndDelete races puts that move a tag with deletes of the manifests
// it points at, across two replicas: at the end the tag, if any, must point at a
// manifest that exists (the foreign key would refuse otherwise, and every operation
// must have succeeded or failed cleanly).
func TestReplicasPutAndDelete(t *testing.T) {
	eachReplicaPair(t, func(t *testing.T, rs [2]*Store) {
		ctx := t.Context()
		const n = 40
		ms := make([]metadata.Manifest, n)
		for i := range ms {
			ms[i] = manifest("app", fmt.Sprint("m", i))
			if _, err := rs[0].PutManifest(ctx, ms[i], metadata.References{}, ""); err != nil {
				t.Fatal(err)
			}
		}
		errs := storetest.Concurrently(2*n, func(i int) error {
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
	})
}

// TestReplicasUploadCompareAndSet races PATCHes of one upload session on two replicas:
// exactly one may win.
func TestReplicasUploadCompareAndSet(t *testing.T) {
	eachReplicaPair(t, func(t *testing.T, rs [2]*Store) {
		ctx := t.Context()
		if err := rs[0].CreateUpload(ctx, metadata.Upload{ID: "u", Repository: "app"}); err != nil {
			t.Fatal(err)
		}
		const n = 20
		errs := storetest.Concurrently(n, func(i int) error {
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
	})
}
