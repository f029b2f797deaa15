package metrics

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"testing"

	"github.com/google/uuid"
	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/blobstore/s3store"
	"github.com/hubctl/hubctl/internal/s3test"
)

func TestMain(m *testing.M) {
	code := m.Run()
	s3test.Stop()
	os.Exit(code)
}

// TestBlobsKeepsWhatTheStoreIs: the timing wrapper keeps a store's optional powers. On
// S3 a monolithic push must stay tracked through it: a wrapper that hid TrackedPutter
// made every push killed mid-way leave its multipart upload in the bucket for ever
// (the e2e TestReplicasInterruptedMonolithicPush caught it after metrics arrived).
func TestBlobsKeepsWhatTheStoreIs(t *testing.T) {
	endpoint, ak, sk, bucket := s3test.Start(t)
	s, err := s3store.New(context.Background(), s3store.Options{
		Endpoint: endpoint, Bucket: bucket, AccessKey: ak, SecretKey: sk, PathStyle: true,
		PartSize: s3store.MinPartSize,
	})
	if err != nil {
		t.Fatal(err)
	}
	wrapped := New().Blobs(s)
	if _, ok := wrapped.(blobstore.Redirector); !ok {
		t.Error("the wrapper of an S3 store is not a Redirector")
	}
	tp, ok := wrapped.(blobstore.TrackedPutter)
	if !ok {
		t.Fatal("the wrapper of an S3 store is not a TrackedPutter")
	}
	data := make([]byte, 2*s3store.MinPartSize+1)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	var tracked string
	track := func(context.Context) (string, error) { tracked = uuid.NewString(); return tracked, nil }
	n, err := tp.PutTracked(context.Background(), digest.FromBytes(data), bytes.NewReader(data), int64(len(data)), track)
	if err != nil || n != int64(len(data)) {
		t.Fatalf("PutTracked = %d, %v", n, err)
	}
	if tracked == "" {
		t.Fatal("a multipart Put through the wrapper was not tracked")
	}
}
