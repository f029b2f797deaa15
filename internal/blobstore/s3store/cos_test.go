package s3store

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/blobstore/storetest"
)

// fakeCOS records every request and answers them like a minimal S3 so that the store
// goes through its real sequences of calls. It is a fake, acceptable here only because
// real COS cannot be reached from this machine and the local S3 servers accept request
// shapes (checksum trailers, aws-chunked bodies, ListObjectsV2, path style) that COS
// refuses: these tests assert the shapes, the versitygw tests assert the behaviour.
type fakeCOS struct {
	mu       sync.Mutex
	requests []recorded
	objects  map[string][]byte
	parts    map[string]map[int][]byte // upload id → part number → bytes
	uploads  int
	// failNext answers that many requests with 503 SlowDown first.
	failNext int
}

type recorded struct {
	Method, Host, Path, RawQuery string
	Header                       http.Header
}

func newFakeCOS() *fakeCOS {
	return &fakeCOS{objects: map[string][]byte{}, parts: map[string]map[int][]byte{}}
}

func (f *fakeCOS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, recorded{r.Method, r.Host, r.URL.Path, r.URL.RawQuery, r.Header.Clone()})
	if f.failNext > 0 {
		f.failNext--
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `<Error><Code>SlowDown</Code><Message>slow down</Message></Error>`)
		return
	}
	key := strings.TrimPrefix(r.URL.Path, "/")
	q := r.URL.Query()
	xmlOut := func(v string) {
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprint(w, v)
	}
	notFound := func(code string) {
		w.WriteHeader(http.StatusNotFound)
		if r.Method != http.MethodHead {
			xmlOut("<Error><Code>" + code + "</Code></Error>")
		}
	}
	src := func() ([]byte, bool) {
		cs, _ := url.PathUnescape(r.Header.Get("X-Amz-Copy-Source"))
		_, k, _ := strings.Cut(strings.TrimPrefix(cs, "/"), "/")
		b, ok := f.objects[k]
		if rg := r.Header.Get("X-Amz-Copy-Source-Range"); ok && rg != "" {
			var a, z int
			fmt.Sscanf(rg, "bytes=%d-%d", &a, &z)
			b = b[a : z+1]
		}
		return b, ok
	}
	switch {
	case key == "" && r.Method == http.MethodHead:
	case key == "" && r.Method == http.MethodGet:
		var keys []string
		for k := range f.objects {
			if strings.HasPrefix(k, q.Get("prefix")) {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		var b strings.Builder
		b.WriteString("<ListBucketResult><IsTruncated>false</IsTruncated>")
		for _, k := range keys {
			fmt.Fprintf(&b, "<Contents><Key>%s</Key><Size>%d</Size></Contents>", k, len(f.objects[k]))
		}
		b.WriteString("</ListBucketResult>")
		xmlOut(b.String())
	case r.Method == http.MethodPost && q.Has("uploads"):
		f.uploads++
		id := "u" + strconv.Itoa(f.uploads)
		f.parts[id] = map[int][]byte{}
		xmlOut("<InitiateMultipartUploadResult><UploadId>" + id + "</UploadId></InitiateMultipartUploadResult>")
	case r.Method == http.MethodPut && q.Has("uploadId"):
		ps, ok := f.parts[q.Get("uploadId")]
		if !ok {
			notFound("NoSuchUpload")
			return
		}
		n, _ := strconv.Atoi(q.Get("partNumber"))
		etag := fmt.Sprintf(`"p%d-%d"`, n, len(f.requests))
		if r.Header.Get("X-Amz-Copy-Source") != "" {
			b, ok := src()
			if !ok {
				notFound("NoSuchKey")
				return
			}
			ps[n] = b
			xmlOut("<CopyPartResult><ETag>" + etag + "</ETag></CopyPartResult>")
			return
		}
		ps[n] = body
		w.Header().Set("ETag", etag)
	case r.Method == http.MethodPost && q.Has("uploadId"):
		ps, ok := f.parts[q.Get("uploadId")]
		if !ok {
			notFound("NoSuchUpload")
			return
		}
		var req struct {
			Parts []struct{ PartNumber int } `xml:"Part"`
		}
		xml.Unmarshal(body, &req)
		var all []byte
		for _, p := range req.Parts {
			all = append(all, ps[p.PartNumber]...)
		}
		f.objects[key] = all
		delete(f.parts, q.Get("uploadId"))
		xmlOut(`<CompleteMultipartUploadResult><ETag>"c"</ETag></CompleteMultipartUploadResult>`)
	case r.Method == http.MethodDelete && q.Has("uploadId"):
		delete(f.parts, q.Get("uploadId"))
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != "":
		b, ok := src()
		if !ok {
			notFound("NoSuchKey")
			return
		}
		f.objects[key] = b
		xmlOut(`<CopyObjectResult><ETag>"c"</ETag></CopyObjectResult>`)
	case r.Method == http.MethodPut:
		f.objects[key] = body
		w.Header().Set("ETag", `"o"`)
	case r.Method == http.MethodDelete:
		delete(f.objects, key)
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodHead || r.Method == http.MethodGet:
		b, ok := f.objects[key]
		if !ok {
			notFound("NoSuchKey")
			return
		}
		status := http.StatusOK
		if rg := r.Header.Get("Range"); rg != "" {
			var a int
			fmt.Sscanf(rg, "bytes=%d-", &a)
			b = b[a:]
			status = http.StatusPartialContent
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(status)
		if r.Method == http.MethodGet {
			w.Write(b)
		}
	default:
		w.WriteHeader(http.StatusNotImplemented)
	}
}

// newCOSStore returns a cos-preset Store whose connections all go to f, whatever host the
// SDK asks for, so the preset's real endpoint and virtual-host addressing stay in place.
func newCOSStore(t *testing.T, f *fakeCOS, edit func(*Options)) *Store {
	t.Helper()
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
		},
		// httptest's certificate names example.com; the SNI host is verified against it.
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "example.com"},
	}
	t.Cleanup(tr.CloseIdleConnections)
	o := Options{
		Preset: PresetCOS, Region: "ap-guangzhou", Bucket: "hubctl-1250000000", Prefix: "reg",
		AccessKey: "AKIDtest", SecretKey: "secret", PartSize: MinPartSize,
		HTTPClient: &http.Client{Transport: tr},
	}
	if edit != nil {
		edit(&o)
	}
	s, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCOSRequestShapes drives every store operation in cos mode and checks each request
// against what COS accepts.
func TestCOSRequestShapes(t *testing.T) {
	f := newFakeCOS()
	s := newCOSStore(t, f, nil)
	ctx := context.Background()
	// Deferred so that the shapes are reported even when an operation fails first, as it
	// does when a body arrives aws-chunked.
	defer f.checkShapes(t)

	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	small := storetest.Random(t, 1000)
	big := storetest.Random(t, 11*mib+3)
	for _, data := range [][]byte{small, big} {
		d := digest.FromBytes(data)
		if _, err := s.Put(ctx, d, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatalf("Put %d bytes: %v", len(data), err)
		}
		checkBlob(t, s, d, "", data)
	}
	id := storetest.NewID(t)
	st := storetest.CreateUpload(t, s, id)
	st = storetest.Append(t, s, id, st, big[:6*mib])
	st = storetest.Append(t, s, id, st, big[6*mib:7*mib])
	st = storetest.Append(t, s, id, st, big[7*mib:])
	loc, err := s.CommitUpload(ctx, id, st, digest.SHA512.FromBytes(big))
	if err != nil {
		t.Fatalf("CommitUpload: %v", err)
	}
	if loc != byUpload+id {
		t.Fatalf("CommitUpload of a multipart upload = location %q, want %q", loc, byUpload+id)
	}
	checkBlob(t, s, digest.SHA512.FromBytes(big), loc, big)
	// An upload smaller than a part is copied from its tail object to the blob's key.
	tailID := storetest.NewID(t)
	tailData := storetest.Random(t, 2000)
	tst := storetest.Append(t, s, tailID, storetest.CreateUpload(t, s, tailID), tailData)
	if tloc, err := s.CommitUpload(ctx, tailID, tst, digest.FromBytes(tailData)); err != nil || tloc != "" {
		t.Fatalf("CommitUpload of a tail-only upload = %q, %v; want the blob's own key", tloc, err)
	}
	checkBlob(t, s, digest.FromBytes(tailData), "", tailData)
	abortID := storetest.NewID(t)
	storetest.Append(t, s, abortID, storetest.CreateUpload(t, s, abortID), small)
	if err := s.AbortUpload(ctx, abortID); err != nil {
		t.Fatalf("AbortUpload: %v", err)
	}
	if err := s.Delete(ctx, digest.FromBytes(small), ""); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	redirect, err := s.RedirectURL(ctx, digest.FromBytes(big), "", 0)
	if err != nil {
		t.Fatalf("RedirectURL: %v", err)
	}
	u, err := url.Parse(redirect)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "https" || u.Host != cosHost || !strings.HasPrefix(u.Path, "/reg/blobs/sha256/") {
		t.Errorf("presigned URL %s: want https://%s/reg/blobs/sha256/…", redirect, cosHost)
	}
	for k := range u.Query() {
		if strings.Contains(strings.ToLower(k), "checksum") {
			t.Errorf("presigned URL carries %s", k)
		}
	}
	if byLoc, err := s.RedirectURL(ctx, digest.SHA512.FromBytes(big), loc, 0); err != nil || !strings.Contains(byLoc, "/reg/blobs/by-upload/"+id+"?") {
		t.Errorf("presigned URL of a blob at %q = %s, %v", loc, byLoc, err)
	}
	if u.Query().Get("X-Amz-Expires") != "60" {
		t.Errorf("presigned URL expires after %s s, want the default 60", u.Query().Get("X-Amz-Expires"))
	}
}

const cosHost = "hubctl-1250000000.cos.ap-guangzhou.myqcloud.com"

// checkShapes asserts that every recorded request is one COS accepts, and that the
// requests covered every kind of call the store makes.
func (f *fakeCOS) checkShapes(t *testing.T) {
	const host = cosHost
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := map[string]bool{}
	for _, r := range f.requests {
		what := r.Method + " " + r.Path + "?" + r.RawQuery
		if r.Host != host {
			t.Errorf("%s: Host %q, want the virtual host %q", what, r.Host, host)
		}
		if strings.HasPrefix(r.Path, "/hubctl-1250000000") {
			t.Errorf("%s: path-style request", what)
		}
		for name := range r.Header {
			if l := strings.ToLower(name); strings.HasPrefix(l, "x-amz-checksum-") || l == "x-amz-sdk-checksum-algorithm" ||
				l == "x-amz-trailer" || l == "x-amz-decoded-content-length" {
				t.Errorf("%s: sends %s", what, name)
			}
		}
		if ce := r.Header.Get("Content-Encoding"); strings.Contains(ce, "aws-chunked") {
			t.Errorf("%s: Content-Encoding %q", what, ce)
		}
		if sha := r.Header.Get("X-Amz-Content-Sha256"); strings.HasPrefix(sha, "STREAMING-") {
			t.Errorf("%s: streaming payload %q", what, sha)
		} else if r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") == "" && sha != "UNSIGNED-PAYLOAD" {
			// Over TLS the SDK sends bodies unsigned, and the store computes no payload
			// hash of its own there.
			t.Errorf("%s: x-amz-content-sha256 %q, want UNSIGNED-PAYLOAD over TLS", what, sha)
		}
		if !strings.Contains(r.Header.Get("Authorization"), "/ap-guangzhou/s3/aws4_request") {
			t.Errorf("%s: Authorization %q is not signed for ap-guangzhou", what, r.Header.Get("Authorization"))
		}
		q, _ := url.ParseQuery(r.RawQuery)
		if q.Has("list-type") {
			t.Errorf("%s: ListObjectsV2", what)
		}
		switch {
		case r.Method == http.MethodGet && r.Path == "/" && q.Has("prefix"):
			seen["ListObjects"] = true
		case r.Method == http.MethodPut && q.Has("partNumber") && r.Header.Get("X-Amz-Copy-Source") != "":
			seen["UploadPartCopy"] = true
		case r.Method == http.MethodPut && q.Has("partNumber"):
			seen["UploadPart"] = true
		case r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != "":
			seen["CopyObject"] = true
		case r.Method == http.MethodPut:
			seen["PutObject"] = true
		case r.Method == http.MethodPost && q.Has("uploadId"):
			seen["CompleteMultipartUpload"] = true
		case r.Method == http.MethodDelete && q.Has("uploadId"):
			seen["AbortMultipartUpload"] = true
		}
	}
	for _, op := range []string{"ListObjects", "UploadPartCopy", "UploadPart", "CopyObject", "PutObject", "CompleteMultipartUpload", "AbortMultipartUpload"} {
		if !seen[op] {
			t.Errorf("no %s request was made; the shapes above do not cover it", op)
		}
	}

}

// TestRetriesThrottling checks the retry configuration: SlowDown answers are retried
// until MaxAttempts, and then surface as ErrUnavailable. No local S3 server can be made to
// throttle, hence the fake.
func TestRetriesThrottling(t *testing.T) {
	f := newFakeCOS()
	s := newCOSStore(t, f, func(o *Options) { o.MaxAttempts = 3; o.MaxBackoff = time.Millisecond })
	ctx := context.Background()
	d := digest.FromBytes([]byte("x"))

	f.mu.Lock()
	f.failNext = 2
	f.mu.Unlock()
	if _, err := s.Stat(ctx, d, ""); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("Stat after two SlowDowns = %v, want ErrNotFound from the third attempt", err)
	}
	f.mu.Lock()
	f.failNext, f.requests = 3, nil
	f.mu.Unlock()
	if _, err := s.Stat(ctx, d, ""); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Stat after three SlowDowns = %v, want ErrUnavailable", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) != 3 {
		t.Fatalf("%d attempts, want MaxAttempts = 3", len(f.requests))
	}
}
