// Package s3test gives tests a real S3 server: versitygw over a temp directory on
// loopback, one per test binary, with a fresh bucket per test. Local fakes accept what
// real stores refuse (and the reverse), so the S3 blob store is tested against this.
package s3test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Version is the versitygw release the tests run against (FACTS.md: it installs through
// the module proxy and passed multipart, UploadPartCopy and presigned GETs).
const Version = "v1.8.0"

const (
	accessKey = "hubctltest"
	secretKey = "hubctltest-secret-key"
	region    = "us-east-1"
)

// gateway is one versitygw of this test binary: the plain-HTTP one, or the TLS one.
type gateway struct {
	endpoint string
	root     string
	cmd      *exec.Cmd
	exited   chan error
	client   *s3.Client
	// httpClient trusts the TLS gateway's self-signed certificate (nil for plain HTTP).
	httpClient *http.Client
}

var (
	mu     sync.Mutex
	shared *gateway
	err0   error // why the gateway could not be had; remembered so each test skips fast

	sharedTLS *gateway
	errTLS    error
)

// Start returns a running S3 endpoint (path-style, region us-east-1), its credentials and
// a new empty bucket for this test. The gateway is started on first use and shared by
// the test binary; the bucket is removed when the test ends. Without versitygw (and
// without a way to install it) the test is skipped, or fails when CI=true.
func Start(t testing.TB) (endpoint, access, secret, bucket string) {
	t.Helper()
	g := newBucket(t, "S3 server", &bucket, get)
	return g.endpoint, accessKey, secretKey, bucket
}

// newBucket gets a gateway from get (skipping the test, or failing it when CI=true,
// when there is none), creates a fresh bucket in it, removed when the test ends, and
// stores the bucket's name in bucket.
func newBucket(t testing.TB, what string, bucket *string, get func() (*gateway, error)) *gateway {
	t.Helper()
	g, err := get()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("s3test: no %s: %v", what, err)
		}
		t.Skipf("s3test: no %s (install versitygw %s into $HOME/.cache/hubctl/bin): %v", what, Version, err)
	}
	*bucket = "t-" + randomHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := g.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: bucket}); err != nil {
		t.Fatalf("s3test: create bucket %s: %v", *bucket, err)
	}
	name := *bucket
	t.Cleanup(func() {
		// The posix backend keeps a bucket as a directory; removing it directly is much
		// faster than deleting every object through the API.
		os.RemoveAll(filepath.Join(g.root, name))
	})
	return g
}

// Keys lists the keys under prefix in a bucket of the shared gateway, sorted, for tests
// that check what a store left in the bucket.
func Keys(t testing.TB, bucket, prefix string) []string {
	t.Helper()
	g, err := get()
	if err != nil {
		t.Fatalf("s3test: no S3 server: %v", err)
	}
	var keys []string
	var marker *string
	for {
		out, err := g.client.ListObjects(t.Context(), &s3.ListObjectsInput{Bucket: &bucket, Prefix: &prefix, Marker: marker})
		if err != nil {
			t.Fatalf("s3test: list %s/%s: %v", bucket, prefix, err)
		}
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
		if !aws.ToBool(out.IsTruncated) || len(out.Contents) == 0 {
			break
		}
		marker = out.Contents[len(out.Contents)-1].Key
	}
	slices.Sort(keys)
	return keys
}

// MultipartUploads lists the keys of the multipart uploads in progress in a bucket of
// the shared gateway, sorted: what a store would leak if it never aborted them.
func MultipartUploads(t testing.TB, bucket string) []string {
	t.Helper()
	g, err := get()
	if err != nil {
		t.Fatalf("s3test: no S3 server: %v", err)
	}
	var keys []string
	in := &s3.ListMultipartUploadsInput{Bucket: &bucket}
	for {
		out, err := g.client.ListMultipartUploads(t.Context(), in)
		if err != nil {
			t.Fatalf("s3test: list multipart uploads of %s: %v", bucket, err)
		}
		for _, u := range out.Uploads {
			keys = append(keys, aws.ToString(u.Key))
		}
		if !aws.ToBool(out.IsTruncated) || len(out.Uploads) == 0 {
			break
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
	slices.Sort(keys)
	return keys
}

// StartTLS is Start on a second gateway that speaks HTTPS with a self-signed
// certificate for 127.0.0.1; client is an HTTP client that trusts it.
func StartTLS(t testing.TB) (endpoint, access, secret, bucket string, client *http.Client) {
	t.Helper()
	g := newBucket(t, "TLS S3 server", &bucket, getTLS)
	return g.endpoint, accessKey, secretKey, bucket, g.httpClient
}

// Stop ends the shared gateways. A TestMain may call it after m.Run; otherwise the
// gateways die with the test binary (see startProcess).
func Stop() {
	mu.Lock()
	defer mu.Unlock()
	for _, g := range []**gateway{&shared, &sharedTLS} {
		if *g != nil {
			(*g).cmd.Process.Kill()
			<-(*g).exited
			os.RemoveAll((*g).root)
			os.RemoveAll((*g).root + "-tls")
			os.Remove((*g).root + ".log")
			*g = nil
		}
	}
}

func get() (*gateway, error) {
	mu.Lock()
	defer mu.Unlock()
	if shared == nil && err0 == nil {
		shared, err0 = start(false)
	}
	return shared, err0
}

func getTLS() (*gateway, error) {
	mu.Lock()
	defer mu.Unlock()
	if sharedTLS == nil && errTLS == nil {
		sharedTLS, errTLS = start(true)
	}
	return sharedTLS, errTLS
}

// Binary finds versitygw in $HOME/.cache/hubctl/bin or PATH, installing it into the
// cache with `go install` when it is in neither.
func Binary() (string, error) {
	dir, err := cacheDir()
	if err == nil {
		p := filepath.Join(dir, "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	if dir == "" {
		return "", errors.New("no home directory to install versitygw into")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", errors.New("versitygw is not installed and there is no go tool to install it")
	}
	cmd := exec.Command(goTool, "install", "github.com/versity/versitygw/cmd/versitygw@"+Version)
	// Outside any module, so the project's go.mod cannot interfere.
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install versitygw: %v: %s", err, lastLines(string(out), 5))
	}
	return filepath.Join(dir, "versitygw"), nil
}

func cacheDir() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".cache", "hubctl", "bin"), nil
}

func start(useTLS bool) (*gateway, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp("", "hubctl-s3test-")
	if err != nil {
		return nil, err
	}
	scheme, tlsArgs, httpClient := "http", []string(nil), http.DefaultClient
	if useTLS {
		certFile, keyFile, pool, err := selfSigned(root + "-tls")
		if err != nil {
			os.RemoveAll(root)
			return nil, err
		}
		scheme, tlsArgs = "https", []string{"--cert", certFile, "--key", keyFile}
		httpClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	// A fresh port can be taken by someone else between Close and versitygw's bind, so
	// a failed start is tried again on another one.
	var lastErr error
	for range 3 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		args := append([]string{"--port", addr, "--region", region}, tlsArgs...)
		cmd := exec.Command(bin, append(args, "posix", root)...)
		cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+accessKey, "ROOT_SECRET_KEY="+secretKey)
		// Logs go to a file next to the root, not to memory: the gateway lives as long
		// as the test binary.
		logs, err := os.Create(root + ".log")
		if err != nil {
			os.RemoveAll(root)
			return nil, err
		}
		cmd.Stdout, cmd.Stderr = logs, logs
		startProcess(cmd)
		err = cmd.Start()
		logs.Close()
		if err != nil {
			os.RemoveAll(root)
			return nil, fmt.Errorf("start versitygw: %w", err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		endpoint := scheme + "://" + addr
		if err := waitReady(httpClient, endpoint, done); err != nil {
			cmd.Process.Kill()
			<-done
			out, _ := os.ReadFile(root + ".log")
			lastErr = fmt.Errorf("%w; output: %s", err, lastLines(string(out), 5))
			continue
		}
		client := s3.New(s3.Options{
			Region:       region,
			BaseEndpoint: aws.String(endpoint),
			UsePathStyle: true,
			Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
			HTTPClient:   httpClient,
		})
		g := &gateway{endpoint: endpoint, root: root, cmd: cmd, exited: done, client: client}
		if useTLS {
			g.httpClient = httpClient
		}
		return g, nil
	}
	os.RemoveAll(root)
	return nil, lastErr
}

// waitReady polls until the gateway answers HTTP (any status: unauthenticated requests
// are refused) or exits. It polls for readiness only; no test asserts on timing.
func waitReady(client *http.Client, endpoint string, exited <-chan error) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("versitygw exited: %v", err)
		default:
		}
		resp, err := client.Get(endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("versitygw did not answer within 30s")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Pause stops the shared gateway, as an outage would, and returns a function that starts
// it again on the same address and directory (also called when the test ends), so a
// test can watch code ride out an S3 server that is down. Objects survive. Tests that
// use Pause must not run in parallel with others of the same binary.
func Pause(t testing.TB) (resume func()) {
	t.Helper()
	g, err := get()
	if err != nil {
		t.Fatalf("s3test: pause: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	_ = g.cmd.Process.Kill()
	<-g.exited
	var once sync.Once
	resume = func() {
		once.Do(func() {
			mu.Lock()
			defer mu.Unlock()
			bin, err := Binary()
			if err != nil {
				t.Fatalf("s3test: resume: %v", err)
			}
			addr := strings.TrimPrefix(g.endpoint, "http://")
			cmd := exec.Command(bin, "--port", addr, "--region", region, "posix", g.root)
			cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+accessKey, "ROOT_SECRET_KEY="+secretKey)
			logs, err := os.OpenFile(g.root+".log", os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
			if err != nil {
				t.Fatalf("s3test: resume: %v", err)
			}
			cmd.Stdout, cmd.Stderr = logs, logs
			startProcess(cmd)
			err = cmd.Start()
			logs.Close()
			if err != nil {
				t.Fatalf("s3test: resume: %v", err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			if err := waitReady(http.DefaultClient, g.endpoint, done); err != nil {
				t.Fatalf("s3test: resume: %v", err)
			}
			g.cmd, g.exited = cmd, done
		})
	}
	t.Cleanup(resume)
	return resume
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key under dir and
// returns their paths and a pool that trusts the certificate.
func selfSigned(dir string) (certFile, keyFile string, pool *x509.CertPool, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "s3test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		IsCA:         true,

		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", nil, err
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return "", "", nil, err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return "", "", nil, err
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool, nil
}
