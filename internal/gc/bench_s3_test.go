package gc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/blobstore/s3store"
	"github.com/hubctl/hubctl/internal/gc"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/pgtest"
	"github.com/hubctl/hubctl/internal/s3test"
)

// BenchmarkCollectS3Postgres is issue 4's case on the shared stores of a replica set:
// 10,000 blobs in a versitygw bucket with their metadata in PostgreSQL, half of them
// layers of manifests (kept), half pushed and then deleted from their repository
// (garbage). One collection with grace 0 must sweep exactly the garbage; the target is
// under 30 s. Setup (10,000 objects through the S3 API) is not timed.
//
//	go test -run XXX -bench CollectS3Postgres -benchtime 1x ./internal/gc
func BenchmarkCollectS3Postgres(b *testing.B) {
	ctx := context.Background()
	const n, perManifest = 10000, 500
	for range b.N {
		b.StopTimer()
		endpoint, ak, sk, bucket := s3test.Start(b)
		blobs, err := s3store.New(ctx, s3store.Options{Endpoint: endpoint, Bucket: bucket, AccessKey: ak, SecretKey: sk, PathStyle: true})
		if err != nil {
			b.Fatal(err)
		}
		meta, err := sqlstore.OpenPostgres(ctx, pgtest.Start(b))
		if err != nil {
			b.Fatal(err)
		}
		kept := seedBlobs(b, meta, blobs, n, perManifest)
		rep := timedCollection(b, gc.Options{Meta: meta, Blobs: blobs})
		if rep.Swept != n/2 {
			b.Fatalf("swept %d, want the %d garbage blobs: %+v", rep.Swept, n/2, rep)
		}
		for _, d := range kept[:10] {
			if _, err := blobs.Stat(ctx, d, ""); err != nil {
				b.Fatalf("kept blob %s after gc: %v", d, err)
			}
		}
		meta.Close()
	}
}

// seedBlobs stores n small blobs in repository bench/app: the odd ones as the layers of
// manifests of perManifest layers each, the even ones linked and then unlinked, as a
// blob DELETE leaves them. It returns the kept digests.
func seedBlobs(b *testing.B, meta metadata.Store, blobs blobstore.Store, n, perManifest int) []digest.Digest {
	ctx := context.Background()
	ds := make([]digest.Digest, n)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		failure error
	)
	next := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				content := []byte(fmt.Sprintf("gc bench blob %d %d", i, time.Now().UnixNano()))
				d := digest.FromBytes(content)
				ds[i] = d
				err := func() error {
					pinned, err := meta.PinBlob(ctx, d, int64(len(content)))
					if err != nil {
						return err
					}
					if _, err := blobs.Put(ctx, d, bytes.NewReader(content), int64(len(content))); err != nil {
						return err
					}
					if _, err := meta.CommitBlob(ctx, "bench/app", metadata.Blob{Digest: d, Size: int64(len(content))}, pinned); err != nil {
						return err
					}
					if i%2 == 0 {
						return meta.UnlinkBlob(ctx, "bench/app", d)
					}
					return nil
				}()
				if err != nil {
					mu.Lock()
					failure = err
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if failure != nil {
		b.Fatal(failure)
	}
	var kept []digest.Digest
	for i := 1; i < n; i += 2 {
		kept = append(kept, ds[i])
	}
	for m := 0; m*perManifest < len(kept); m++ {
		layers := kept[m*perManifest : min(len(kept), (m+1)*perManifest)]
		type desc struct {
			MediaType string        `json:"mediaType"`
			Digest    digest.Digest `json:"digest"`
			Size      int64         `json:"size"`
		}
		man := struct {
			SchemaVersion int    `json:"schemaVersion"`
			MediaType     string `json:"mediaType"`
			Config        desc   `json:"config"`
			Layers        []desc `json:"layers"`
		}{SchemaVersion: 2, MediaType: "application/vnd.oci.image.manifest.v1+json",
			Config: desc{"application/vnd.oci.image.config.v1+json", layers[0], 1}}
		for _, l := range layers {
			man.Layers = append(man.Layers, desc{"application/vnd.oci.image.layer.v1.tar", l, 1})
		}
		payload, err := json.Marshal(man)
		if err != nil {
			b.Fatal(err)
		}
		md := digest.FromBytes(payload)
		_, err = meta.PutManifest(ctx, metadata.Manifest{
			Repository: "bench/app", Digest: md, MediaType: man.MediaType, Size: int64(len(payload)), Payload: payload,
		}, metadata.References{Blobs: layers}, fmt.Sprintf("v%d", m))
		if err != nil {
			b.Fatal(err)
		}
	}
	return kept
}
