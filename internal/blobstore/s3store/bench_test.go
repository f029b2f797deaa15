package s3store

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/blobstore/storetest"
)

// BenchmarkPut64MiB pushes a 64 MiB blob into versitygw through Put and, as the peer in
// the same run, through one bare PutObject of the same bytes (no hashing, no multipart):
// the ceiling the server and the SDK's own signing allow. Compare MB/s across sub-benchmarks.
func BenchmarkPut64MiB(b *testing.B) {
	data := storetest.Random(b, 64*mib)
	d := digest.FromBytes(data)
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		edit func(*Options)
	}{
		{"Put/part8MiB-1inflight", func(o *Options) { o.PartsInFlight = 1 }},
		{"Put/default", nil},
		{"Put/part16MiB", func(o *Options) { o.PartSize = 16 * mib }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := newStore(b, bc.edit)
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := s.Put(ctx, d, bytes.NewReader(data), int64(len(data))); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := s.Delete(ctx, d, ""); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
	b.Run("Chunked/8MiB-appends", func(b *testing.B) {
		s := newStore(b, nil)
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			id := storetest.NewID(b)
			st := storetest.CreateUpload(b, s, id)
			for off := 0; off < len(data); off += 8 * mib {
				st = storetest.Append(b, s, id, st, data[off:off+8*mib])
			}
			loc, err := s.CommitUpload(ctx, id, st, d)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := s.Delete(ctx, d, loc); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
	b.Run("peer/bare-PutObject", func(b *testing.B) {
		s := newStore(b, nil)
		key := "peer/blob"
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
				Bucket: &s.bucket, Key: &key, Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRedirectURL presigns a blob's GET, as every redirected pull does.
func BenchmarkRedirectURL(b *testing.B) {
	s := newStore(b, nil)
	d := digest.FromString("redirect")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.RedirectURL(ctx, d, "", time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}
