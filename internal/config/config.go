// Package config is the configuration of `hubctl serve`: its defaults and how a YAML
// file, HUBCTL_* environment variables and command-line flags override them.
//
// Precedence, lowest first: defaults < YAML file < environment < flags that were set.
// Every setting has a YAML key path (e.g. "uploads.max_age") and an environment variable
// derived from it (HUBCTL_UPLOADS_MAX_AGE), so the three sources cannot drift apart.
//
// Data directory layout (all paths may be overridden):
//
//	<data>/hubctl.db   SQLite metadata (db.path)
//	<data>/            filesystem blob store root (storage.filesystem.root), which keeps
//	                   its own blobs/, uploads/ and tmp/ subdirectories
package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts every environment variable hubctl reads.
const EnvPrefix = "HUBCTL_"

// EnvConfigFile names the YAML file to load when --config is not given.
const EnvConfigFile = "HUBCTL_CONFIG"

// Config is the complete configuration of `hubctl serve`.
type Config struct {
	// Addr is the TCP address to listen on; port 0 picks a free port.
	Addr string `yaml:"addr"`
	// Data is the directory holding the database and blobs unless their paths are set.
	Data    string  `yaml:"data"`
	Storage Storage `yaml:"storage"`
	DB      DB      `yaml:"db"`
	// MaxManifestSize bounds manifest bodies accepted by PUT.
	MaxManifestSize Size    `yaml:"max_manifest_size"`
	Uploads         Uploads `yaml:"uploads"`
	GC              GC      `yaml:"gc"`
	// ShutdownTimeout bounds how long in-flight requests may run after SIGTERM.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	Log             Log           `yaml:"log"`
	// ExternalURL is the base URL clients reach the hub at (behind a proxy); empty
	// means each request's own scheme and Host, which is right without a proxy.
	ExternalURL string `yaml:"external_url"`
	Auth        Auth   `yaml:"auth"`
	Limits      Limits `yaml:"limits"`
	// TrustedProxies lists, comma-separated, the CIDRs of the reverse proxies whose
	// TrustedProxyHeader names the client's address; empty trusts none, and the TCP
	// peer is the client.
	TrustedProxies string `yaml:"trusted_proxies"`
	// TrustedProxyHeader is the header those proxies append the client's address to:
	// "X-Forwarded-For" or "Forwarded". It is read right to left, past the trusted
	// proxies, so a client cannot choose its own address by sending it.
	TrustedProxyHeader string `yaml:"trusted_proxy_header"`
	// TLS, Metrics and Retention are issue 17's (tls.go in this package).
	TLS       TLS       `yaml:"tls"`
	Metrics   Metrics   `yaml:"metrics"`
	Retention Retention `yaml:"retention"`
	// Events is issue 18's event outbox.
	Events Events `yaml:"events"`
	// Secrets holds the keys that seal secrets at rest (webhook secrets and headers).
	Secrets Secrets `yaml:"secrets"`
	// Webhooks configures webhook delivery (docs/webhooks.md).
	Webhooks Webhooks `yaml:"webhooks"`
	// Workflows configures the workflow engine (docs/workflows.md).
	Workflows Workflows `yaml:"workflows"`
}

// Workflow executors `workflows.executor` may name.
const (
	WorkflowExecutorDocker     = "docker"
	WorkflowExecutorKubernetes = "kubernetes"
	WorkflowExecutorNone       = "none"
)

// Workflows configures the workflow engine every replica runs.
type Workflows struct {
	// Executor runs job steps: docker (the engine DOCKER_HOST names, or the local
	// socket; when it does not answer at start, no workflow runs and one warning says
	// so), kubernetes (one Job per job run in workflows.kube.namespace) or none
	// (workflows are kept and their runs queued, none runs here).
	Executor string `yaml:"executor"`
	// MaxJobs bounds the job runs this replica runs at once.
	MaxJobs int `yaml:"max_jobs"`
	// Interval is how often the engine looks for events and runnable jobs when idle.
	Interval time.Duration `yaml:"interval"`
	// Docker configures the Docker executor.
	Docker WorkflowsDocker `yaml:"docker"`
	// Retention is how long finished runs are kept, with their logs and artifacts;
	// 0 keeps them for ever.
	Retention time.Duration `yaml:"retention"`
	// Artifacts and Cache bound what jobs keep in the blob store.
	Artifacts WorkflowsArtifacts `yaml:"artifacts"`
	Cache     WorkflowsCache     `yaml:"cache"`
	// Kube configures the Kubernetes executor.
	Kube WorkflowsKube `yaml:"kube"`
}

// WorkflowsArtifacts bounds workflow artifacts (docs/workflows.md, "Artifacts and caches").
type WorkflowsArtifacts struct {
	// MaxSize bounds one artifact's files; MaxRunSize the stored artifacts of a run.
	MaxSize    Size `yaml:"max_size"`
	MaxRunSize Size `yaml:"max_run_size"`
}

// WorkflowsCache bounds workflow caches.
type WorkflowsCache struct {
	// MaxSize bounds one cache's files; MaxTotal a workflow's stored caches, beyond
	// which the least recently used are evicted.
	MaxSize  Size `yaml:"max_size"`
	MaxTotal Size `yaml:"max_total"`
}

// WorkflowsKube configures the Kubernetes executor of workflows.
type WorkflowsKube struct {
	// Namespace is where job runs become Jobs (and their Secrets).
	Namespace string `yaml:"namespace"`
	// Kubeconfig is the kubeconfig file of the cluster; "" uses the in-cluster
	// configuration (the hub's pod's service account).
	Kubeconfig string `yaml:"kubeconfig"`
	// WorkspaceSize, when set, makes each job's workspace a PersistentVolumeClaim of
	// that size, made with the job's pod and deleted with it (a generic ephemeral
	// volume), instead of an emptyDir on the node; 0 keeps the emptyDir.
	WorkspaceSize Size `yaml:"workspace_size"`
	// WorkspaceClass is the storage class of those claims; "" is the cluster's
	// default class.
	WorkspaceClass string `yaml:"workspace_class"`
	// AgentImage is the image, holding the hubctl binary at /hubctl, whose `hubctl
	// workflow-agent` moves a job's artifacts in and out of its pod. "" makes the hub
	// publish its own (serve's binary, FROM scratch) as hubctl-system/workflow-agent
	// into its stores and use it by digest on external_url's host; without
	// external_url, or when serve's binary is not a static Linux executable,
	// artifacts are refused on Kubernetes.
	AgentImage string `yaml:"agent_image"`
}

// Networks of job steps under the Docker executor.
const (
	WorkflowNetworkBridge = "bridge"
	WorkflowNetworkHost   = "host"
)

// WorkflowsDocker configures the Docker executor of workflows.
type WorkflowsDocker struct {
	// Network is bridge (each job its own network; the default) or host (steps in
	// the host's network namespace: they reach a hub on 127.0.0.1, and everything
	// else the host reaches; jobs with services are refused).
	Network string `yaml:"network"`
}

// Webhooks configures webhook delivery.
type Webhooks struct {
	// AllowAddresses lists, comma-separated, the CIDRs or addresses webhooks may reach
	// although the SSRF guard refuses them by default (loopback, private, link-local,
	// metadata): a receiver on the hub's own network.
	AllowAddresses string `yaml:"allow_addresses"`
	// MaxFailures failed deliveries in a row pause a hook; 0 never pauses.
	MaxFailures int `yaml:"max_failures"`
	// Interval is how often each replica looks for events and due deliveries when idle.
	Interval time.Duration `yaml:"interval"`
}

// Secrets configures the keys that seal secrets stored in the database
// (internal/secrets, docs/operating.md "Secrets at rest"). With neither set, a hub on
// SQLite keeps its keys in <data>/secrets.keys, made at first start; a hub on
// PostgreSQL refuses to start, since its replicas must all hold the same keys.
type Secrets struct {
	// KeysFile is a file of ID=BASE64 lines (32-byte keys), oldest first: the last
	// seals, every one opens. It must be mode 0600.
	KeysFile string `yaml:"keys_file"`
	// Key holds the keys inline (ID=BASE64, comma-separated, the last seals). Like the
	// admin password it comes only from $HUBCTL_SECRETS_KEY, never a file or a flag.
	Key string `yaml:"-"`
}

// EnvSecretsKey names the variable Secrets.Key is read from.
const EnvSecretsKey = "HUBCTL_SECRETS_KEY"

// DefaultSecretsKeysFile is the keys file of a hub on SQLite that configures none.
func (c Config) DefaultSecretsKeysFile() string { return filepath.Join(c.Data, "secrets.keys") }

// ParseTrustedProxies parses TrustedProxies: CIDRs or single addresses, separated by
// commas or spaces.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("trusted_proxies: %q is neither a CIDR nor an address", f)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// Limits bound what one client may hold of the server (docs/security.md).
// A client is an account when the request carries a valid registry token, else its
// address (an IPv6 /64). They are kept by each replica for itself.
type Limits struct {
	// RequestsPerClient bounds one client's requests in flight; 0 means no bound.
	RequestsPerClient int `yaml:"requests_per_client"`
	// UploadsPerClient bounds one client's blob upload requests in flight (POST, PATCH
	// and PUT of upload sessions), below the server's shared upload slots; 0 means no
	// bound.
	UploadsPerClient int `yaml:"uploads_per_client"`
	// MinBodyRate is the slowest a client may send a request body or read a response,
	// in bytes per second, once SlowTimeout of slack is spent; 0 turns the check off.
	MinBodyRate Size `yaml:"min_body_rate"`
	// SlowTimeout is the slack of that check: how long a client may stall outright.
	SlowTimeout time.Duration `yaml:"slow_timeout"`
	// SmallBodyTimeout is the whole time a /token or hub API (/api/v1/) request body
	// may take.
	SmallBodyTimeout time.Duration `yaml:"small_body_timeout"`
	// ManifestsPerRepository bounds the manifests (referrers included) one repository
	// holds in the database, and TagsPerRepository its tags; 0 means no bound. Unlike
	// the limits above they hold across replicas: the database enforces them.
	ManifestsPerRepository int `yaml:"manifests_per_repository"`
	TagsPerRepository      int `yaml:"tags_per_repository"`
}

// Auth configures the token service and the registry's token checks.
type Auth struct {
	// Mode is "token" (the default: Docker token auth) or "none" (everyone may do
	// everything: only for tests and trusted networks, never implied).
	Mode string `yaml:"mode"`
	// Service names this token service (the JWT audience, the challenge's service=).
	Service string `yaml:"service"`
	// Issuer is the JWT iss claim.
	Issuer string `yaml:"issuer"`
	// TokenTTL is the lifetime of registry tokens.
	TokenTTL time.Duration `yaml:"token_ttl"`
	// RefreshTTL is the lifetime of refresh tokens handed out by offline logins.
	RefreshTTL time.Duration `yaml:"refresh_ttl"`
	// KeysDir holds the ES256 signing keys; empty means <data>/keys.
	KeysDir string `yaml:"keys_dir"`
	// MaxLoginFailures failed logins of one account from one address within
	// LoginFailureWindow lock that pair out; MaxAddressLoginFailures failed logins from
	// one address (an IPv6 /64), whatever the names, lock the address out. 0 turns the
	// per-address limits off (also one password check per address at a time), for a
	// hub behind a proxy that hides client addresses.
	MaxLoginFailures        int           `yaml:"max_login_failures"`
	MaxAddressLoginFailures int           `yaml:"max_address_login_failures"`
	LoginFailureWindow      time.Duration `yaml:"login_failure_window"`
	// MaxAccountLoginFailures failed logins of one account from all addresses together
	// within LoginFailureWindow close it to addresses it never signed in from, until
	// the window passes; 0 turns that ceiling off. The counters live in the database,
	// shared by every replica.
	MaxAccountLoginFailures int `yaml:"max_account_login_failures"`
	// AdminPassword is the password of the admin account created at first start. It
	// comes only from $HUBCTL_ADMIN_PASSWORD: a secret has no place in a config file or
	// on a command line (ps shows it). Empty: one is generated and printed once.
	AdminPassword string `yaml:"-"`
}

// EnvAdminPassword names the variable AdminPassword is read from.
const EnvAdminPassword = "HUBCTL_ADMIN_PASSWORD"

// Storage selects and configures the blob store.
type Storage struct {
	// Driver is the blob store: "filesystem", "s3" (AWS, MinIO, Ceph and the like) or
	// "cos" (Tencent COS through its S3 API).
	Driver     string     `yaml:"driver"`
	Filesystem Filesystem `yaml:"filesystem"`
	S3         S3         `yaml:"s3"`
}

// S3 configures the s3 and cos drivers. Credentials left empty come from the standard
// AWS environment and profile (AWS_ACCESS_KEY_ID, ~/.aws/credentials, …).
type S3 struct {
	// Endpoint is the S3 API URL (s3 only; cos derives https://cos.<region>.myqcloud.com).
	Endpoint string `yaml:"endpoint"`
	Region   string `yaml:"region"`
	// Bucket is the bucket name (for COS: <name>-<APPID>).
	Bucket string `yaml:"bucket"`
	// Prefix is prepended to every key, so several hubs can share a bucket.
	Prefix string `yaml:"prefix"`
	// PathStyle addresses the bucket in the path (MinIO, versitygw) instead of the host.
	PathStyle bool   `yaml:"path_style"`
	AccessKey string `yaml:"access_key"`
	SecretKey string `yaml:"secret_key"`
	// Redirect answers blob pulls with 307 to a presigned URL valid RedirectTTL, so
	// blob bytes go from the bucket to the client directly; off streams them through.
	// A URL never outlives the registry token of the request that obtained it.
	Redirect    bool          `yaml:"redirect"`
	RedirectTTL time.Duration `yaml:"redirect_ttl"`
	// PresignEndpoint is the base URL clients reach the bucket at, for presigned URLs,
	// when the server reaches it at another (internal) one; empty means Endpoint.
	PresignEndpoint string `yaml:"presign_endpoint"`
	// PresignAccessKey and PresignSecretKey sign presigned URLs instead of AccessKey
	// and SecretKey, whose key id every URL shows: give them a key that may only read.
	PresignAccessKey string `yaml:"presign_access_key"`
	PresignSecretKey string `yaml:"presign_secret_key"`
}

// Filesystem configures the filesystem blob store.
type Filesystem struct {
	// Root is the blob store directory; empty means <data>. The store only uses its
	// blobs/, uploads/ and tmp/ subdirectories, so it shares <data> with the database.
	Root string `yaml:"root"`
}

// DB selects and configures the metadata database.
type DB struct {
	// Driver is the database: "sqlite" or "postgres". A Path that is a postgres:// URL
	// selects postgres by itself, so `--db postgres://…` is all it takes.
	Driver string `yaml:"driver"`
	// Path is the SQLite database file (empty means <data>/hubctl.db) or the PostgreSQL
	// connection URL.
	Path string `yaml:"path"`
}

// IsPostgresURL reports whether s is a PostgreSQL connection URL.
func IsPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Uploads configures blob upload sessions.
type Uploads struct {
	// MaxAge is how long an upload session may sit idle before it is removed.
	MaxAge time.Duration `yaml:"max_age"`
	// CleanupInterval is how often stale sessions are looked for.
	CleanupInterval time.Duration `yaml:"cleanup_interval"`
}

// DefaultGCInterval is how often serve collects garbage unless told otherwise: with
// the default grace of an hour, unreferenced bytes are gone within about three hours
// (marked by one run, swept by the next at least a grace later).
const DefaultGCInterval = time.Hour

// GC configures the garbage collection scheduled by serve (docs/design/gc.md).
type GC struct {
	// Interval is how often serve runs a garbage collection (DefaultGCInterval unless
	// set); 0 never, which must be asked for: without collection, the bytes of
	// deleted images and refused pushes stay on disk.
	Interval time.Duration `yaml:"interval"`
	// Grace is how old an unreferenced link or blob must be before it is collected.
	Grace time.Duration `yaml:"grace"`
}

// Log configures the server log on stderr.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is text or json.
	Format string `yaml:"format"`
}

// Default returns the configuration used when nothing is set: `hubctl serve` must work
// with no configuration at all.
func Default() Config {
	return Config{
		Addr:            ":5000",
		Data:            "./hubctl-data",
		Storage:         Storage{Driver: "filesystem", S3: S3{Redirect: true, RedirectTTL: time.Minute}},
		DB:              DB{Driver: "sqlite"},
		MaxManifestSize: 4 << 20,
		Uploads:         Uploads{MaxAge: 24 * time.Hour, CleanupInterval: 10 * time.Minute},
		GC:              GC{Interval: DefaultGCInterval, Grace: time.Hour},
		ShutdownTimeout: 30 * time.Second,
		Log:             Log{Level: "info", Format: "text"},
		Limits: Limits{RequestsPerClient: 256, UploadsPerClient: 32, MinBodyRate: 10 << 10, SlowTimeout: 30 * time.Second, SmallBodyTimeout: 10 * time.Second,
			ManifestsPerRepository: 1_000_000, TagsPerRepository: 100_000},
		Auth: Auth{Mode: "token", Service: "hubctl", Issuer: "hubctl", TokenTTL: 5 * time.Minute, RefreshTTL: 30 * 24 * time.Hour,
			MaxLoginFailures: 5, MaxAddressLoginFailures: 20, LoginFailureWindow: 5 * time.Minute, MaxAccountLoginFailures: 50},
		TrustedProxyHeader: "X-Forwarded-For",
		TLS:                TLS{ACMEDirectory: DefaultACMEDirectory},
		Metrics:            Metrics{Addr: DefaultMetricsAddr},
		Retention:          Retention{Interval: DefaultRetentionInterval, TagHistoryHold: 30 * 24 * time.Hour},
		Events:             Events{Retention: DefaultEventRetention, PurgeInterval: DefaultEventPurgeInterval, PullInterval: DefaultPullInterval},
		Webhooks:           Webhooks{MaxFailures: 50, Interval: time.Second},
		Workflows: Workflows{Executor: WorkflowExecutorDocker, MaxJobs: 4, Interval: time.Second,
			Docker: WorkflowsDocker{Network: WorkflowNetworkBridge}, Retention: 30 * 24 * time.Hour,
			Artifacts: WorkflowsArtifacts{MaxSize: 256 << 20, MaxRunSize: 1 << 30},
			Cache:     WorkflowsCache{MaxSize: 1 << 30, MaxTotal: 4 << 30},
			Kube:      WorkflowsKube{Namespace: "hubctl-workflows"}},
	}
}

// Sources are the places Load reads settings from, besides the defaults.
type Sources struct {
	// File is the YAML file to read; empty means $HUBCTL_CONFIG, and no file if unset.
	File string
	// LookupEnv reads the environment (os.LookupEnv); nil means an empty environment.
	LookupEnv func(string) (string, bool)
	// Flags maps key paths ("uploads.max_age") to values of flags explicitly set on the
	// command line, in the same text form the environment uses.
	Flags map[string]string
}

// Load merges defaults, the YAML file, the environment and flags, fills the paths derived
// from Data and validates the result.
func Load(src Sources) (Config, error) {
	cfg := Default()
	env := src.LookupEnv
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	file := src.File
	if file == "" {
		file, _ = env(EnvConfigFile)
	}
	if file != "" {
		if err := loadFile(&cfg, file); err != nil {
			return Config{}, err
		}
	}
	for _, k := range fields(&cfg) {
		if v, ok := env(k.Env()); ok {
			if err := k.set(v); err != nil {
				return Config{}, fmt.Errorf("%s: %w", k.Env(), err)
			}
		}
	}
	if v, ok := env(EnvAdminPassword); ok {
		cfg.Auth.AdminPassword = v
	}
	if v, ok := env(EnvSecretsKey); ok {
		cfg.Secrets.Key = v
	}
	byKey := map[string]field{}
	for _, k := range fields(&cfg) {
		byKey[k.Key] = k
	}
	// Sorted so that an error names the same key on every run.
	keys := make([]string, 0, len(src.Flags))
	for k := range src.Flags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		k, ok := byKey[key]
		if !ok {
			return Config{}, fmt.Errorf("unknown configuration key %q", key)
		}
		if err := k.set(src.Flags[key]); err != nil {
			return Config{}, fmt.Errorf("%s: %w", key, err)
		}
	}
	cfg.resolve()
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func loadFile(cfg *Config, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	// A misspelt key would otherwise be ignored silently and the default used instead.
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

// resolve fills the paths that default to places under Data, after all sources are
// merged, so that `--data X` alone moves the database and blobs too.
func (c *Config) resolve() {
	if c.Storage.Filesystem.Root == "" && c.Data != "" {
		c.Storage.Filesystem.Root = c.Data
	}
	if IsPostgresURL(c.DB.Path) {
		c.DB.Driver = "postgres"
	}
	if c.DB.Path == "" && c.Data != "" && c.DB.Driver == "sqlite" {
		c.DB.Path = filepath.Join(c.Data, "hubctl.db")
	}
	if c.Auth.KeysDir == "" && c.Data != "" {
		c.Auth.KeysDir = filepath.Join(c.Data, "keys")
	}
	c.resolveTLS()
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("addr must not be empty"))
	}
	if c.Data == "" {
		errs = append(errs, errors.New("data must not be empty"))
	}
	switch c.Storage.Driver {
	case "filesystem":
	case "s3", "cos":
		if c.Storage.S3.Bucket == "" {
			errs = append(errs, fmt.Errorf("storage.driver %s needs storage.s3.bucket", c.Storage.Driver))
		}
		if c.Storage.Driver == "cos" && c.Storage.S3.Region == "" {
			errs = append(errs, errors.New("storage.driver cos needs storage.s3.region (e.g. ap-guangzhou)"))
		}
		if c.Storage.Driver == "s3" && c.Storage.S3.Endpoint != "" {
			if u, err := url.Parse(c.Storage.S3.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				errs = append(errs, fmt.Errorf("storage.s3.endpoint %q must be an absolute http(s) URL", c.Storage.S3.Endpoint))
			}
		}
		if e := c.Storage.S3.PresignEndpoint; e != "" {
			if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				errs = append(errs, fmt.Errorf("storage.s3.presign_endpoint %q must be an absolute http(s) URL", e))
			}
		}
		if (c.Storage.S3.PresignAccessKey == "") != (c.Storage.S3.PresignSecretKey == "") {
			errs = append(errs, errors.New("storage.s3.presign_access_key and storage.s3.presign_secret_key go together"))
		}
	default:
		errs = append(errs, fmt.Errorf("storage.driver %q is not supported (want filesystem, s3 or cos)", c.Storage.Driver))
	}
	switch c.DB.Driver {
	case "sqlite":
		if IsPostgresURL(c.DB.Path) {
			errs = append(errs, errors.New("db.path is a postgres:// URL but db.driver is sqlite"))
		}
	case "postgres":
		if !IsPostgresURL(c.DB.Path) {
			errs = append(errs, errors.New("db.driver postgres needs db.path to be a postgres:// connection URL"))
		}
	default:
		errs = append(errs, fmt.Errorf("db.driver %q is not supported (want sqlite or postgres)", c.DB.Driver))
	}
	if c.MaxManifestSize <= 0 {
		errs = append(errs, fmt.Errorf("max_manifest_size must be greater than 0, got %d", c.MaxManifestSize))
	}
	for name, d := range map[string]time.Duration{
		"uploads.max_age":           c.Uploads.MaxAge,
		"uploads.cleanup_interval":  c.Uploads.CleanupInterval,
		"shutdown_timeout":          c.ShutdownTimeout,
		"auth.token_ttl":            c.Auth.TokenTTL,
		"storage.s3.redirect_ttl":   c.Storage.S3.RedirectTTL,
		"auth.refresh_ttl":          c.Auth.RefreshTTL,
		"auth.login_failure_window": c.Auth.LoginFailureWindow,
		"limits.slow_timeout":       c.Limits.SlowTimeout,
		"limits.small_body_timeout": c.Limits.SmallBodyTimeout,
	} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be greater than 0, got %s", name, d))
		}
	}
	if _, err := ParseTrustedProxies(c.TrustedProxies); err != nil {
		errs = append(errs, err)
	}
	if h := strings.ToLower(c.TrustedProxyHeader); h != "x-forwarded-for" && h != "forwarded" {
		errs = append(errs, fmt.Errorf("trusted_proxy_header must be X-Forwarded-For or Forwarded, got %q", c.TrustedProxyHeader))
	}
	if c.Auth.MaxAccountLoginFailures != 0 && c.Auth.MaxAccountLoginFailures < c.Auth.MaxLoginFailures {
		errs = append(errs, fmt.Errorf("auth.max_account_login_failures must be 0 (off) or at least auth.max_login_failures (%d), got %d",
			c.Auth.MaxLoginFailures, c.Auth.MaxAccountLoginFailures))
	}
	if c.Auth.MaxLoginFailures < 1 || c.Auth.MaxAddressLoginFailures < 0 {
		errs = append(errs, fmt.Errorf("auth.max_login_failures must be at least 1 and auth.max_address_login_failures at least 0 (off), got %d and %d",
			c.Auth.MaxLoginFailures, c.Auth.MaxAddressLoginFailures))
	}
	if c.Limits.RequestsPerClient < 0 || c.Limits.UploadsPerClient < 0 || c.Limits.MinBodyRate < 0 ||
		c.Limits.ManifestsPerRepository < 0 || c.Limits.TagsPerRepository < 0 {
		errs = append(errs, errors.New("limits.requests_per_client, limits.uploads_per_client, limits.min_body_rate, "+
			"limits.manifests_per_repository and limits.tags_per_repository must not be negative (0 means no limit)"))
	}
	if c.GC.Interval < 0 || c.GC.Grace < 0 {
		errs = append(errs, fmt.Errorf("gc.interval and gc.grace must not be negative, got %s and %s", c.GC.Interval, c.GC.Grace))
	}
	if _, err := c.Log.SlogLevel(); err != nil {
		errs = append(errs, err)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		errs = append(errs, fmt.Errorf("log.format %q is not supported (want text or json)", c.Log.Format))
	}
	if c.Auth.Mode != "token" && c.Auth.Mode != "none" {
		errs = append(errs, fmt.Errorf("auth.mode %q is not supported (want token or none)", c.Auth.Mode))
	}
	if c.Auth.Service == "" || c.Auth.Issuer == "" {
		errs = append(errs, errors.New("auth.service and auth.issuer must not be empty"))
	}
	if c.ExternalURL != "" {
		if u, err := url.Parse(c.ExternalURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("external_url %q must be an absolute http(s) URL", c.ExternalURL))
		}
	}
	if _, err := ParseTrustedProxies(c.Webhooks.AllowAddresses); err != nil {
		errs = append(errs, fmt.Errorf("webhooks.allow_addresses: %w", err))
	}
	if c.Webhooks.MaxFailures < 0 || c.Webhooks.Interval <= 0 {
		errs = append(errs, fmt.Errorf("webhooks.max_failures must not be negative and webhooks.interval must be greater than 0, got %d and %s",
			c.Webhooks.MaxFailures, c.Webhooks.Interval))
	}
	switch c.Workflows.Executor {
	case WorkflowExecutorDocker, WorkflowExecutorNone:
	case WorkflowExecutorKubernetes:
		if !kubeNamespace.MatchString(c.Workflows.Kube.Namespace) {
			errs = append(errs, fmt.Errorf("workflows.kube.namespace %q: want a Kubernetes namespace name (lower-case letters, digits, -, at most 63)", c.Workflows.Kube.Namespace))
		}
		if k := c.Workflows.Kube; k.WorkspaceSize < 0 || (k.WorkspaceClass != "" && !kubeClass.MatchString(k.WorkspaceClass)) {
			errs = append(errs, fmt.Errorf("workflows.kube.workspace_size must not be negative and workflows.kube.workspace_class %q must be a storage class name (lower-case letters, digits, '-', '.', at most 253)", k.WorkspaceClass))
		}
	default:
		errs = append(errs, fmt.Errorf("workflows.executor %q: want docker, kubernetes or none", c.Workflows.Executor))
	}
	if n := c.Workflows.Docker.Network; n != WorkflowNetworkBridge && n != WorkflowNetworkHost {
		errs = append(errs, fmt.Errorf("workflows.docker.network %q: want bridge or host", n))
	}
	if c.Workflows.MaxJobs < 1 || c.Workflows.Interval <= 0 {
		errs = append(errs, fmt.Errorf("workflows.max_jobs must be at least 1 and workflows.interval greater than 0, got %d and %s",
			c.Workflows.MaxJobs, c.Workflows.Interval))
	}
	if w := c.Workflows; w.Retention < 0 || w.Artifacts.MaxSize <= 0 || w.Artifacts.MaxRunSize <= 0 || w.Cache.MaxSize <= 0 || w.Cache.MaxTotal <= 0 {
		errs = append(errs, fmt.Errorf("workflows.retention must not be negative and workflows.artifacts.max_size, .max_run_size, "+
			"workflows.cache.max_size and .max_total must be greater than 0"))
	}
	if c.Secrets.KeysFile != "" && c.Secrets.Key != "" {
		errs = append(errs, fmt.Errorf("secrets.keys_file and %s are both set: give the keys one way", EnvSecretsKey))
	}
	errs = append(errs, c.validateOps()...)
	// Map iteration above is unordered; sort so the message is stable.
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

// SlogLevel parses Level.
func (l Log) SlogLevel() (slog.Level, error) {
	var lv slog.Level
	switch strings.ToLower(l.Level) {
	case "debug", "info", "warn", "error":
		_ = lv.UnmarshalText([]byte(l.Level))
		return lv, nil
	}
	return 0, fmt.Errorf("log.level %q is not supported (want debug, info, warn or error)", l.Level)
}

// Keys lists every configuration key path ("uploads.max_age") in the order of the
// Config struct; EnvName gives each one's environment variable.
func Keys() []string {
	var c Config
	fs := fields(&c)
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Key
	}
	return out
}

// EnvName is the environment variable that sets key: HUBCTL_ followed by the key path
// upper-cased with dots replaced by underscores.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

type field struct {
	Key string
	v   reflect.Value
}

func (f field) Env() string { return EnvName(f.Key) }

var durationType = reflect.TypeFor[time.Duration]()

// kubeNamespace is a Kubernetes namespace name (a DNS-1123 label).
var kubeNamespace = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// kubeClass is a storage class name (a DNS-1123 subdomain).
var kubeClass = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)

// fields walks the leaves of c by their yaml tags.
func fields(c *Config) []field {
	var out []field
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			key := name
			if prefix != "" {
				key = prefix + "." + name
			}
			fv := v.Field(i)
			if fv.Kind() == reflect.Struct && fv.Type() != durationType {
				walk(key, fv)
				continue
			}
			out = append(out, field{Key: key, v: fv})
		}
	}
	walk("", reflect.ValueOf(c).Elem())
	return out
}

// set parses s into the field the same way for environment and flags.
func (f field) set(s string) error {
	if u, ok := f.v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(s))
	}
	if f.v.Type() == durationType {
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		f.v.SetInt(int64(d))
		return nil
	}
	switch f.v.Kind() {
	case reflect.String:
		f.v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		f.v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		f.v.SetInt(n)
	default:
		// Adding a field of a new kind must come with a parser here.
		panic(fmt.Sprintf("config: no parser for %s (%s)", f.Key, f.v.Type()))
	}
	return nil
}
