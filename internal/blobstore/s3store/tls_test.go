package s3store

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/blobstore/storetest"
	"github.com/hubctl/hubctl/internal/s3test"
)

// payloadRecorder notes the x-amz-content-sha256 of every PUT that carries bytes.
type payloadRecorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	seen []string
}

func (p *payloadRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPut && r.ContentLength > 0 && r.Header.Get("X-Amz-Copy-Source") == "" {
		p.mu.Lock()
		p.seen = append(p.seen, r.URL.Path+" "+r.Header.Get("X-Amz-Content-Sha256"))
		p.mu.Unlock()
	}
	return p.base.RoundTrip(r)
}

func (p *payloadRecorder) hashes() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

// pushAll stores a blob through Put in one PutObject and in parts, and one through a
// chunked upload with a tail, and reads them back.
func pushAll(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	for _, size := range []int{100 << 10, 12*mib + 1} {
		data := storetest.Random(t, size)
		d := digest.FromBytes(data)
		if _, err := s.Put(ctx, d, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatalf("Put %d bytes: %v", size, err)
		}
		checkBlob(t, s, d, "", data)
	}
	data := storetest.Random(t, 11*mib+7)
	id := storetest.NewID(t)
	st := storetest.Append(t, s, id, storetest.CreateUpload(t, s, id), data[:7*mib])
	st = storetest.Append(t, s, id, st, data[7*mib:])
	d := digest.FromBytes(data)
	loc, err := s.CommitUpload(ctx, id, st, d)
	if err != nil {
		t.Fatalf("CommitUpload: %v", err)
	}
	checkBlob(t, s, d, loc, data)
}

var hexSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// TestPayloadSigning: over HTTPS blob bytes go as UNSIGNED-PAYLOAD (the SDK's own choice
// over TLS, and no payload hash is computed for it); over plain HTTP they are signed
// with the sha256 computed while they were read (versitygw checks it). The store suite
// passes over TLS too.
func TestPayloadSigning(t *testing.T) {
	endpoint, ak, sk, bucket, client := s3test.StartTLS(t)
	for _, tc := range []struct {
		name     string
		tls      bool
		unsigned bool
	}{
		{"https", true, true},
		{"http", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &payloadRecorder{base: http.DefaultTransport}
			o := Options{Endpoint: endpoint, Bucket: bucket, AccessKey: ak, SecretKey: sk, PathStyle: true,
				PartSize: MinPartSize, Prefix: tc.name}
			if tc.tls {
				rec.base = client.Transport
			} else {
				o.Endpoint, _, _, o.Bucket = s3test.Start(t)
			}
			o.HTTPClient = &http.Client{Transport: rec}
			s, err := New(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			pushAll(t, s)
			seen := rec.hashes()
			if s.unsignedPayload != tc.unsigned {
				t.Errorf("unsignedPayload = %v for %s", s.unsignedPayload, o.Endpoint)
			}
			if len(seen) < 5 {
				t.Fatalf("recorded %d PUTs with bytes, want the parts, objects and tail: %q", len(seen), seen)
			}
			for _, s := range seen {
				_, h, _ := strings.Cut(s, " ")
				if tc.unsigned && h != "UNSIGNED-PAYLOAD" || !tc.unsigned && !hexSHA256.MatchString(h) {
					t.Errorf("PUT %s: x-amz-content-sha256 %q, want unsigned %v", s, h, tc.unsigned)
				}
			}
		})
	}
	t.Run("suite over TLS", func(t *testing.T) {
		s, err := New(context.Background(), Options{Endpoint: endpoint, Bucket: bucket, AccessKey: ak, SecretKey: sk,
			PathStyle: true, Prefix: "suite", HTTPClient: client})
		if err != nil {
			t.Fatal(err)
		}
		storetest.Run(t, s)
	})
}
