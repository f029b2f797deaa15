// Package s3store is the blobstore.Store on the S3 API, for AWS S3, MinIO, Ceph and the
// like (preset "s3") and Tencent COS through its S3-compatible API (preset "cos").
//
// Layout under the bucket and an optional prefix:
//
//	<prefix>/blobs/<alg>/<first two hex>/<hex>   verified blobs at their own key
//	<prefix>/blobs/by-upload/<id>                target of a chunked upload's multipart upload,
//	                                             and where the blob stays once committed
//	<prefix>/uploads/<id>/info                   marker of a chunked upload (its multipart upload id)
//	<prefix>/uploads/<id>/tail-<random>          bytes that do not yet fill a part
//
// A chunked upload's digest is known only at its last request, after the multipart
// upload's key was chosen, so it completes where it was written and CommitUpload returns
// the location "by-upload/<id>", which the registry records with the blob and passes
// back to Stat, Open, Delete and RedirectURL (docs/design/blob-locations.md). Copying it
// to its own key would cost a server-side copy of every byte at the end of every docker
// push. Monolithic uploads, whose digest comes first, go straight to their own key.
//
// Nothing the store needs to resume an upload is discovered by listing multipart uploads:
// the upload id and the part list travel in blobstore.UploadState.Backend, which the
// registry keeps in its shared metadata, so any replica can continue an upload.
package s3store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/blobstore"
)

// Presets name the flavours of S3 the store knows how to talk to.
const (
	// PresetS3 is any S3 implementation reached at Options.Endpoint (AWS when empty).
	PresetS3 = "s3"
	// PresetCOS is Tencent COS: endpoint https://cos.<region>.myqcloud.com and
	// virtual-hosted addressing, which COS requires for buckets made after 2024-01-01.
	PresetCOS = "cos"
)

// Size limits of the S3 multipart API.
const (
	// MinPartSize is the smallest part S3 accepts except for the last one.
	MinPartSize = 5 << 20
	// DefaultPartSize is used when Options.PartSize is zero. 16 MiB parts pushed only
	// about 5% faster against versitygw, for twice the memory per stream.
	DefaultPartSize = 8 << 20
	maxParts        = 10000
	// maxPartSize is the largest part S3 accepts, and the largest range one
	// UploadPartCopy may copy.
	maxPartSize = 5 << 30
	// copyPartSize is the range of each UploadPartCopy when a completed upload is
	// reopened to append to it.
	copyPartSize = 1 << 30
)

// ErrUnavailable means the object store could not be reached or kept failing after
// retries (connection errors, 5xx, throttling). The registry answers 503 for it.
var ErrUnavailable = blobstore.ErrUnavailable

// Options configures a Store. Only Bucket is required; Region is required for cos.
type Options struct {
	// Preset is PresetS3 (default) or PresetCOS.
	Preset string
	// Endpoint is the S3 base URL, e.g. http://127.0.0.1:7070. Empty means AWS for s3
	// and https://cos.<Region>.myqcloud.com for cos.
	Endpoint string
	// Region signs requests; default us-east-1 for s3.
	Region string
	// Bucket holds everything; for COS it is "<name>-<APPID>".
	Bucket string
	// Prefix is prepended to every key, so one bucket can host several stores.
	Prefix string
	// AccessKey and SecretKey (and optionally SessionToken) are static credentials;
	// when AccessKey is empty the standard AWS environment/profile chain is used.
	AccessKey, SecretKey, SessionToken string
	// PathStyle addresses buckets as http://endpoint/bucket (MinIO, versitygw). Ignored
	// for cos, which refuses path style.
	PathStyle bool
	// PartSize is the multipart part size, at least MinPartSize; DefaultPartSize when 0.
	PartSize int64
	// PartsInFlight is how many parts of one stream upload concurrently while the next
	// part is read and hashed (default 2: 64 MiB Puts ran about 40% faster than with 1
	// against versitygw). Memory per stream is (PartsInFlight+1)*PartSize, 24 MiB by
	// default; set 1 to trade speed for memory on small hosts.
	PartsInFlight int
	// PresignTTL is the lifetime of RedirectURL links when the caller passes none
	// (default 1 minute: a client follows the redirect at once, and a download that
	// started goes on past it, while a leaked link soon stops working).
	PresignTTL time.Duration
	// PresignEndpoint, when set, is the base URL clients use to reach the store, for
	// deployments where the server talks to S3 over an internal address.
	PresignEndpoint string
	// PresignAccessKey and PresignSecretKey, when set, sign RedirectURL links instead
	// of the store's credentials: every link shows its key id, so this can be a key
	// that may only read.
	PresignAccessKey, PresignSecretKey string
	// MaxAttempts bounds attempts per request, retries included (default 5).
	MaxAttempts int
	// MaxBackoff caps the delay between attempts (default 5s).
	MaxBackoff time.Duration
	// HTTPClient replaces the SDK's HTTP client (proxies, private CAs, tests); its TLS
	// settings then apply instead of AWS_CA_BUNDLE.
	HTTPClient *http.Client
}

// Store is the S3 blobstore.Store. It is safe for concurrent use; like the filesystem
// store, callers serialise requests on one upload id.
type Store struct {
	client  *s3.Client
	presign *s3.PresignClient
	bucket  string
	prefix  string // "" or ends in "/"
	// overTLS is true for an HTTPS endpoint, over which the SDK sends the bytes of
	// PutObject and UploadPart as UNSIGNED-PAYLOAD (TLS protects them); over plain HTTP
	// they carry their CRC32C instead (see partChecksum).
	overTLS bool

	partSize    int64
	inFlight    int
	presignTTL  time.Duration
	copyPart    int64
	cleanupTime time.Duration
}

var _ blobstore.Store = (*Store)(nil)

// New makes a Store from o. It does not contact the store; call Ping for that.
func New(ctx context.Context, o Options) (*Store, error) {
	if err := o.normalize(); err != nil {
		return nil, fmt.Errorf("s3store: %w", err)
	}
	retryer := func() aws.Retryer {
		return retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = o.MaxAttempts
			so.MaxBackoff = o.MaxBackoff
			// The default retry quota is shared by the whole client: under a burst of
			// SlowDown answers it runs dry and later requests fail without a single
			// retry. A server makes many requests at once, so each one gets its own
			// MaxAttempts instead.
			so.RateLimiter = ratelimit.None
		})
	}
	load := []func(*config.LoadOptions) error{
		config.WithRegion(o.Region),
		config.WithRetryer(retryer),
	}
	if o.AccessKey != "" {
		load = append(load, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(o.AccessKey, o.SecretKey, o.SessionToken)))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("s3store: load AWS config: %w", err)
	}
	if o.HTTPClient != nil {
		// Set after loading: the loader would try to add AWS_CA_BUNDLE to a plain
		// *http.Client and fail; a caller's own client brings its own TLS settings.
		cfg.HTTPClient = o.HTTPClient
	}
	// Since s3 v1.73 the SDK adds CRC32 trailers and aws-chunked bodies to every upload;
	// COS and many S3 look-alikes refuse them. Set after loading so that no environment
	// variable or profile can turn them back on.
	cfg.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	cfg.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	clientOpts := func(endpoint string) func(*s3.Options) {
		return func(so *s3.Options) {
			if endpoint != "" {
				so.BaseEndpoint = aws.String(endpoint)
			}
			so.UsePathStyle = o.PathStyle
			so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
	}
	client := s3.NewFromConfig(cfg, clientOpts(o.Endpoint))
	presignClient := client
	if o.PresignEndpoint != "" || o.PresignAccessKey != "" {
		endpoint := o.PresignEndpoint
		if endpoint == "" {
			endpoint = o.Endpoint
		}
		opts := []func(*s3.Options){clientOpts(endpoint)}
		if o.PresignAccessKey != "" {
			opts = append(opts, func(so *s3.Options) {
				so.Credentials = credentials.NewStaticCredentialsProvider(o.PresignAccessKey, o.PresignSecretKey, "")
			})
		}
		presignClient = s3.NewFromConfig(cfg, opts...)
	}
	prefix := strings.Trim(o.Prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &Store{
		client:      client,
		presign:     s3.NewPresignClient(presignClient),
		bucket:      o.Bucket,
		prefix:      prefix,
		partSize:    o.PartSize,
		overTLS:     o.Endpoint == "" || strings.HasPrefix(strings.ToLower(o.Endpoint), "https://"),
		inFlight:    o.PartsInFlight,
		presignTTL:  o.PresignTTL,
		copyPart:    copyPartSize,
		cleanupTime: 30 * time.Second,
	}, nil
}

// normalize validates o and fills in defaults.
func (o *Options) normalize() error {
	if o.Bucket == "" {
		return errors.New("bucket is required")
	}
	switch o.Preset {
	case "", PresetS3:
		o.Preset = PresetS3
		if o.Region == "" {
			o.Region = "us-east-1"
		}
	case PresetCOS:
		if o.Region == "" {
			return errors.New("cos needs a region (e.g. ap-guangzhou)")
		}
		if o.Endpoint == "" {
			o.Endpoint = "https://cos." + o.Region + ".myqcloud.com"
		}
		o.PathStyle = false
	default:
		return fmt.Errorf("unknown preset %q (want %q or %q)", o.Preset, PresetS3, PresetCOS)
	}
	if o.Endpoint != "" {
		if u, err := url.Parse(o.Endpoint); err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Errorf("endpoint %q is not an absolute URL", o.Endpoint)
		}
	}
	switch {
	case o.PartSize == 0:
		o.PartSize = DefaultPartSize
	case o.PartSize < MinPartSize:
		return fmt.Errorf("part size %d is below the S3 minimum of %d", o.PartSize, MinPartSize)
	case o.PartSize > maxPartSize:
		return fmt.Errorf("part size %d is above the S3 maximum of %d", o.PartSize, int64(maxPartSize))
	}
	if o.PartsInFlight <= 0 {
		o.PartsInFlight = 2
	}
	if o.PresignTTL <= 0 {
		o.PresignTTL = time.Minute
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	return nil
}

// blobKey maps a digest to its key. The digest is validated first so that no input can
// name a key outside blobs/.
func (s *Store) blobKey(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", err
	}
	hx := d.Encoded()
	return s.prefix + "blobs/" + string(d.Algorithm()) + "/" + hx[:2] + "/" + hx, nil
}

// byUpload starts the locations of blobs committed where their chunked upload wrote them.
const byUpload = "by-upload/"

// dataKey is the key the multipart upload of upload id (already validated) writes.
func (s *Store) dataKey(id string) string {
	return s.prefix + "blobs/" + byUpload + id
}

// locationKey maps blob d at location loc (as CommitUpload returned it; "" for the
// digest's own key) to its key. Locations are checked as strictly as digests.
func (s *Store) locationKey(d digest.Digest, loc string) (string, error) {
	if loc == "" {
		return s.blobKey(d)
	}
	id, ok := strings.CutPrefix(loc, byUpload)
	if !ok || !validUploadID(id) {
		return "", fmt.Errorf("unknown blob location %q", loc)
	}
	return s.dataKey(id), nil
}

// uploadDir is the key prefix of everything upload id stores. Ids are checked like the
// filesystem store's, so they cannot escape uploads/.
func (s *Store) uploadDir(id string) (string, error) {
	if !validUploadID(id) {
		return "", fmt.Errorf("s3store: invalid upload id %q: %w", id, blobstore.ErrUploadNotFound)
	}
	return s.prefix + "uploads/" + id + "/", nil
}

// validUploadID accepts 1–128 characters of [A-Za-z0-9_-], which covers uuids.
func validUploadID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// Ping checks that the bucket is reachable with our credentials.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket}); err != nil {
		return s.fail(ctx, "ping bucket "+s.bucket, err)
	}
	return nil
}

// Stat returns the size of blob d at loc, or ErrNotFound.
func (s *Store) Stat(ctx context.Context, d digest.Digest, loc string) (int64, error) {
	key, err := s.locationKey(d, loc)
	if err != nil {
		return 0, fmt.Errorf("s3store: stat %q: %w", d, blobstore.ErrNotFound)
	}
	size, err := s.head(ctx, key)
	if err != nil {
		if isNotFound(err) {
			return 0, blobstore.ErrNotFound
		}
		return 0, s.fail(ctx, "stat "+d.String(), err)
	}
	return size, nil
}

// head returns the size of key; the SDK's error is returned unwrapped.
func (s *Store) head(ctx context.Context, key string) (int64, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return 0, err
	}
	return aws.ToInt64(out.ContentLength), nil
}

// exists reports whether key is stored.
func (s *Store) exists(ctx context.Context, key string) (bool, error) {
	_, err := s.head(ctx, key)
	switch {
	case err == nil:
		return true, nil
	case isNotFound(err):
		return false, nil
	}
	return false, err
}

// Delete removes blob d at loc; a missing blob is not an error.
func (s *Store) Delete(ctx context.Context, d digest.Digest, loc string) error {
	key, err := s.locationKey(d, loc)
	if err != nil {
		return nil // an invalid digest or location names no blob: nothing to delete
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key}); err != nil && !isNotFound(err) {
		return s.fail(ctx, "delete "+d.String(), err)
	}
	return nil
}

// RedirectURL returns a presigned GET URL of blob d at loc valid for ttl
// (Options.PresignTTL when ttl <= 0), for the registry to answer 307 with. It makes no
// request, so it does not check that the blob exists: the registry already knows from
// its metadata.
func (s *Store) RedirectURL(ctx context.Context, d digest.Digest, loc string, ttl time.Duration) (string, error) {
	key, err := s.locationKey(d, loc)
	if err != nil {
		return "", fmt.Errorf("s3store: redirect %q: %w", d, blobstore.ErrNotFound)
	}
	if ttl <= 0 {
		ttl = s.presignTTL
	}
	req, err := s.presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key}, s3.WithPresignExpires(ttl))
	if err != nil {
		return "", fmt.Errorf("s3store: presign %s: %w", d, err)
	}
	return req.URL, nil
}

// fail wraps an SDK error for the caller: a cancelled context is reported as such (the
// SDK buries it), and errors that mean the store is down or overloaded wrap ErrUnavailable.
func (s *Store) fail(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("s3store: %s: %w", op, cerr)
	}
	var be *bodyError
	if isUnavailable(err) && !errors.As(err, &be) {
		return fmt.Errorf("s3store: %s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("s3store: %s: %w", op, err)
}

// apiCode returns the S3 error code of err, or "".
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func isNotFound(err error) bool {
	switch apiCode(err) {
	case "NoSuchKey", "NotFound":
		return true
	}
	return httpStatus(err) == http.StatusNotFound && apiCode(err) != "NoSuchBucket" && apiCode(err) != "NoSuchUpload"
}

func isNoSuchUpload(err error) bool {
	return apiCode(err) == "NoSuchUpload"
}

// isInvalidPart reports a completion refused because a listed part is missing or its
// ETag is not the stored part's.
func isInvalidPart(err error) bool {
	switch apiCode(err) {
	case "InvalidPart", "InvalidPartOrder":
		return true
	}
	return false
}

// isUnavailable tells a store that is down, overloaded or failing from a request it
// refused (403, 404, 400), which retrying would not fix.
func isUnavailable(err error) bool {
	switch apiCode(err) {
	case "SlowDown", "ServiceUnavailable", "Throttling", "ThrottlingException", "RequestTimeout",
		"InternalError", "RequestTimeTooSkewed":
		return true
	}
	if st := httpStatus(err); st >= 500 || st == http.StatusTooManyRequests {
		return true
	}
	var ne net.Error
	var qe *ratelimit.QuotaExceededError
	return errors.As(err, &ne) || errors.As(err, &qe) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

// randomName returns 16 random hex characters for keys that must never collide.
func randomName() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// cleanupContext outlives a cancelled request so that an abort still reaches the store,
// which would otherwise keep the parts of a failed upload and bill for them.
func (s *Store) cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.cleanupTime)
}
