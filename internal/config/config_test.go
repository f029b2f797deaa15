package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hubctl.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadPrecedence(t *testing.T) {
	const file = `
addr: "127.0.0.1:6000"
data: /srv/file-data
max_manifest_size: 8MiB
uploads:
  max_age: 2h
log:
  format: json
`
	tests := []struct {
		name  string
		file  bool
		env   map[string]string
		flags map[string]string
		check func(t *testing.T, c Config)
	}{
		{
			name: "defaults",
			check: func(t *testing.T, c Config) {
				want := Default()
				want.Storage.Filesystem.Root = "./hubctl-data"
				want.DB.Path = filepath.Join("hubctl-data", "hubctl.db")
				want.Auth.KeysDir = filepath.Join("hubctl-data", "keys")
				want.TLS.Mode, want.TLS.Dir = "off", filepath.Join("hubctl-data", "tls")
				if c != want {
					t.Errorf("got %+v\nwant %+v", c, want)
				}
			},
		},
		{
			name: "file overrides defaults",
			file: true,
			check: func(t *testing.T, c Config) {
				eq(t, "addr", c.Addr, "127.0.0.1:6000")
				eq(t, "max_manifest_size", c.MaxManifestSize, 8<<20)
				eq(t, "uploads.max_age", c.Uploads.MaxAge, 2*time.Hour)
				eq(t, "uploads.cleanup_interval (default kept)", c.Uploads.CleanupInterval, 10*time.Minute)
				eq(t, "log.format", c.Log.Format, "json")
				eq(t, "db.path follows data", c.DB.Path, "/srv/file-data/hubctl.db")
				eq(t, "blob root follows data", c.Storage.Filesystem.Root, "/srv/file-data")
			},
		},
		{
			name: "env overrides file",
			file: true,
			env:  map[string]string{"HUBCTL_ADDR": ":7000", "HUBCTL_MAX_MANIFEST_SIZE": "1MiB", "HUBCTL_UPLOADS_MAX_AGE": "3h", "HUBCTL_LOG_LEVEL": "debug"},
			check: func(t *testing.T, c Config) {
				eq(t, "addr", c.Addr, ":7000")
				eq(t, "max_manifest_size", c.MaxManifestSize, 1<<20)
				eq(t, "uploads.max_age", c.Uploads.MaxAge, 3*time.Hour)
				eq(t, "log.level", c.Log.Level, "debug")
				eq(t, "data (file kept)", c.Data, "/srv/file-data")
			},
		},
		{
			name:  "flags override env and file",
			file:  true,
			env:   map[string]string{"HUBCTL_ADDR": ":7000", "HUBCTL_DATA": "/env-data"},
			flags: map[string]string{"addr": "127.0.0.1:0", "uploads.max_age": "1m0s", "db.path": "/x/meta.db"},
			check: func(t *testing.T, c Config) {
				eq(t, "addr", c.Addr, "127.0.0.1:0")
				eq(t, "uploads.max_age", c.Uploads.MaxAge, time.Minute)
				eq(t, "data (env kept)", c.Data, "/env-data")
				eq(t, "db.path", c.DB.Path, "/x/meta.db")
				eq(t, "blob root follows env data", c.Storage.Filesystem.Root, "/env-data")
				eq(t, "max_manifest_size (file kept)", c.MaxManifestSize, 8<<20)
			},
		},
		{
			name: "HUBCTL_CONFIG names the file",
			env:  map[string]string{"HUBCTL_CONFIG": "<file>"},
			check: func(t *testing.T, c Config) {
				eq(t, "addr", c.Addr, "127.0.0.1:6000")
			},
		},
		{
			name:  "explicit blob root is kept",
			flags: map[string]string{"data": "/d", "storage.filesystem.root": "/blobs"},
			check: func(t *testing.T, c Config) {
				eq(t, "root", c.Storage.Filesystem.Root, "/blobs")
				eq(t, "db.path", c.DB.Path, "/d/hubctl.db")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, file)
			src := Sources{Flags: tt.flags}
			if tt.file {
				src.File = p
			}
			env := map[string]string{}
			for k, v := range tt.env {
				env[k] = strings.ReplaceAll(v, "<file>", p)
			}
			src.LookupEnv = envMap(env)
			c, err := Load(src)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		env     map[string]string
		flags   map[string]string
		wantErr string
	}{
		{name: "unknown yaml key", file: "adr: :5000\n", wantErr: "field adr not found"},
		{name: "unknown nested key", file: "uploads:\n  maxage: 1h\n", wantErr: "field maxage not found"},
		{name: "bad size in file", file: "max_manifest_size: 4 parsecs\n", wantErr: "invalid size"},
		{name: "zero size", file: "max_manifest_size: 0\n", wantErr: "max_manifest_size must be greater than 0"},
		{name: "bad env size", env: map[string]string{"HUBCTL_MAX_MANIFEST_SIZE": "lots"}, wantErr: "HUBCTL_MAX_MANIFEST_SIZE: invalid size"},
		{name: "bad env duration", env: map[string]string{"HUBCTL_SHUTDOWN_TIMEOUT": "soon"}, wantErr: "HUBCTL_SHUTDOWN_TIMEOUT"},
		{name: "negative duration", env: map[string]string{"HUBCTL_UPLOADS_CLEANUP_INTERVAL": "-1s"}, wantErr: "uploads.cleanup_interval must be greater than 0"},
		{name: "bad log format", flags: map[string]string{"log.format": "xml"}, wantErr: `log.format "xml"`},
		{name: "s3 without bucket", flags: map[string]string{"storage.driver": "s3"}, wantErr: `needs storage.s3.bucket`},
		{name: "cos without region", flags: map[string]string{"storage.driver": "cos", "storage.s3.bucket": "b-125"}, wantErr: `needs storage.s3.region`},
		{name: "unknown storage", flags: map[string]string{"storage.driver": "nfs"}, wantErr: `storage.driver "nfs"`},
		{name: "postgres without url", flags: map[string]string{"db.driver": "postgres"}, wantErr: `needs db.path to be a postgres://`},
		{name: "bad auth mode", flags: map[string]string{"auth.mode": "off"}, wantErr: `auth.mode "off"`},
		{name: "relative external url", flags: map[string]string{"external_url": "hub.example.com"}, wantErr: `external_url "hub.example.com"`},
		{name: "bad workflow executor", env: map[string]string{"HUBCTL_WORKFLOWS_EXECUTOR": "nomad"}, wantErr: `workflows.executor "nomad": want docker, kubernetes or none`},
		{name: "bad kube workspace class", env: map[string]string{"HUBCTL_WORKFLOWS_EXECUTOR": "kubernetes", "HUBCTL_WORKFLOWS_KUBE_WORKSPACE_CLASS": "Fast_SSD"}, wantErr: `workflows.kube.workspace_class "Fast_SSD"`},
		{name: "bad kube namespace", env: map[string]string{"HUBCTL_WORKFLOWS_EXECUTOR": "kubernetes", "HUBCTL_WORKFLOWS_KUBE_NAMESPACE": "CI/x"}, wantErr: `workflows.kube.namespace "CI/x"`},
		{name: "bad workflow network", env: map[string]string{"HUBCTL_WORKFLOWS_DOCKER_NETWORK": "none"}, wantErr: `workflows.docker.network "none": want bridge or host`},
		{name: "no workflow jobs", file: "workflows:\n  max_jobs: 0\n", wantErr: "workflows.max_jobs must be at least 1"},
		{name: "negative workflow retention", env: map[string]string{"HUBCTL_WORKFLOWS_RETENTION": "-1h"}, wantErr: "workflows.retention must not be negative"},
		{name: "zero artifact size", file: "workflows:\n  artifacts:\n    max_size: 0\n", wantErr: "workflows.artifacts.max_size"},
		{name: "bad log level", flags: map[string]string{"log.level": "loud"}, wantErr: `log.level "loud"`},
		{name: "unsupported db", env: map[string]string{"HUBCTL_DB_DRIVER": "mysql"}, wantErr: `db.driver "mysql"`},
		{name: "empty addr", flags: map[string]string{"addr": ""}, wantErr: "addr must not be empty"},
		{name: "unknown flag key", flags: map[string]string{"nope": "1"}, wantErr: `unknown configuration key "nope"`},
		{name: "secrets given twice", env: map[string]string{"HUBCTL_SECRETS_KEY": "a=AAAA", "HUBCTL_SECRETS_KEYS_FILE": "/k"}, wantErr: "give the keys one way"},
		{name: "missing file", env: map[string]string{"HUBCTL_CONFIG": "/nonexistent/hubctl.yaml"}, wantErr: "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := Sources{LookupEnv: envMap(tt.env), Flags: tt.flags}
			if tt.file != "" {
				src.File = writeFile(t, tt.file)
			}
			_, err := Load(src)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Load error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestPostgresURLSelectsPostgres(t *testing.T) {
	c, err := Load(Sources{Flags: map[string]string{"db.path": "postgres://hub:secret@127.0.0.1:5432/hub"}})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "driver", c.DB.Driver, "postgres")
}

func TestEmptyFileIsDefaults(t *testing.T) {
	c, err := Load(Sources{File: writeFile(t, "# nothing\n")})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "addr", c.Addr, ":5000")
}

func TestEveryKeyHasItsEnvVariable(t *testing.T) {
	// One valid sample per key: a key added without one fails here, and setting each
	// through its derived variable proves set() can parse every field's type.
	samples := map[string]string{
		"addr": "127.0.0.1:1", "data": "/d", "storage.driver": "filesystem",
		"storage.filesystem.root": "/r", "db.driver": "sqlite", "db.path": "/m.db",
		"max_manifest_size": "2MiB", "uploads.max_age": "1h", "uploads.cleanup_interval": "1m",
		"shutdown_timeout": "5s", "log.level": "warn", "log.format": "json",
		"external_url": "https://hub.example.com", "auth.mode": "none", "auth.service": "svc",
		"auth.issuer": "iss", "auth.token_ttl": "2m", "auth.refresh_ttl": "24h", "auth.keys_dir": "/k",
		"storage.s3.endpoint": "http://127.0.0.1:9000", "storage.s3.region": "us-east-1", "storage.s3.bucket": "b",
		"storage.s3.prefix": "p", "storage.s3.path_style": "true", "storage.s3.access_key": "ak", "storage.s3.secret_key": "sk",
		"storage.s3.redirect": "false", "storage.s3.redirect_ttl": "1m", "storage.s3.presign_endpoint": "https://s3.example.com",
		"storage.s3.presign_access_key": "pak", "storage.s3.presign_secret_key": "psk",
		"gc.interval": "6h", "gc.grace": "2h",
		"auth.max_login_failures": "3", "auth.max_address_login_failures": "50", "auth.login_failure_window": "10m",
		"limits.requests_per_client": "64", "limits.uploads_per_client": "8", "limits.min_body_rate": "1KiB",
		"limits.slow_timeout": "20s", "limits.small_body_timeout": "5s",
		"limits.manifests_per_repository": "1000", "limits.tags_per_repository": "100",
		"auth.max_account_login_failures": "80", "trusted_proxies": "10.0.0.0/8, 192.0.2.1", "trusted_proxy_header": "Forwarded",
		"tls.mode": "files", "tls.cert": "/c.pem", "tls.key": "/k.pem", "tls.names": "hub.example.com", "tls.dir": "/t",
		"tls.acme_domain": "hub.example.com", "tls.acme_directory": "https://acme.example.com/dir", "tls.acme_email": "ops@example.com",
		"tls.redirect_addr": ":80", "metrics.addr": "127.0.0.1:9000", "metrics.token": "0123456789abcdef",
		"retention.interval": "1h", "retention.tag_history_hold": "240h", "events.retention": "168h", "events.purge_interval": "10m",
		"events.pull_interval": "30s",
		"secrets.keys_file":    "/s.keys", "webhooks.allow_addresses": "10.0.0.0/8,127.0.0.1", "webhooks.max_failures": "10",
		"webhooks.interval": "2s", "workflows.executor": "none", "workflows.max_jobs": "2", "workflows.interval": "3s",
		"workflows.docker.network": "host", "workflows.retention": "48h", "workflows.artifacts.max_size": "1MiB",
		"workflows.artifacts.max_run_size": "2MiB", "workflows.cache.max_size": "3MiB", "workflows.cache.max_total": "4MiB",
		"workflows.kube.namespace": "ci", "workflows.kube.kubeconfig": "/kube.conf",
		"workflows.kube.workspace_size": "5GiB", "workflows.kube.workspace_class": "fast-ssd",
		"workflows.kube.agent_image": "registry.example.com/hubctl:1",
	}
	env := map[string]string{}
	for _, k := range Keys() {
		v, ok := samples[k]
		if !ok {
			t.Fatalf("key %s has no sample in this test", k)
		}
		env[EnvName(k)] = v
	}
	if len(env) != len(samples) {
		t.Fatalf("Keys() has %d keys, samples %d", len(env), len(samples))
	}
	eq(t, "env name", EnvName("uploads.cleanup_interval"), "HUBCTL_UPLOADS_CLEANUP_INTERVAL")
	c, err := Load(Sources{LookupEnv: envMap(env)})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "addr", c.Addr, "127.0.0.1:1")
	eq(t, "root", c.Storage.Filesystem.Root, "/r")
	eq(t, "db", c.DB.Path, "/m.db")
	eq(t, "size", c.MaxManifestSize, 2<<20)
	eq(t, "interval", c.Uploads.CleanupInterval, time.Minute)
	eq(t, "shutdown", c.ShutdownTimeout, 5*time.Second)
	eq(t, "level", c.Log.Level, "warn")
	eq(t, "format", c.Log.Format, "json")
	eq(t, "gc.interval", c.GC.Interval, 6*time.Hour)
	eq(t, "gc.grace", c.GC.Grace, 2*time.Hour)
	eq(t, "retention.tag_history_hold", c.Retention.TagHistoryHold, 240*time.Hour)
	eq(t, "auth.max_address_login_failures", c.Auth.MaxAddressLoginFailures, 50)
	eq(t, "limits.uploads_per_client", c.Limits.UploadsPerClient, 8)
	eq(t, "limits.min_body_rate", c.Limits.MinBodyRate, 1<<10)
	eq(t, "events.pull_interval", c.Events.PullInterval, 30*time.Second)
	eq(t, "workflows.executor", c.Workflows.Executor, "none")
	eq(t, "workflows.max_jobs", c.Workflows.MaxJobs, 2)
	eq(t, "workflows.interval", c.Workflows.Interval, 3*time.Second)
	eq(t, "workflows.docker.network", c.Workflows.Docker.Network, "host")
	eq(t, "workflows.retention", c.Workflows.Retention, 48*time.Hour)
	eq(t, "workflows.artifacts.max_size", c.Workflows.Artifacts.MaxSize, 1<<20)
	eq(t, "workflows.artifacts.max_run_size", c.Workflows.Artifacts.MaxRunSize, 2<<20)
	eq(t, "workflows.cache.max_size", c.Workflows.Cache.MaxSize, 3<<20)
	eq(t, "workflows.cache.max_total", c.Workflows.Cache.MaxTotal, 4<<20)
	eq(t, "workflows.kube.namespace", c.Workflows.Kube.Namespace, "ci")
	eq(t, "workflows.kube.kubeconfig", c.Workflows.Kube.Kubeconfig, "/kube.conf")
	eq(t, "workflows.kube.workspace_size", c.Workflows.Kube.WorkspaceSize, Size(5<<30))
	eq(t, "workflows.kube.workspace_class", c.Workflows.Kube.WorkspaceClass, "fast-ssd")
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    Size
		wantErr bool
	}{
		{"4194304", 4 << 20, false},
		{"4MiB", 4 << 20, false},
		{"4 MiB", 4 << 20, false},
		{"4mib", 4 << 20, false},
		{"4MB", 4_000_000, false},
		{"512KiB", 512 << 10, false},
		{"1GiB", 1 << 30, false},
		{"2TiB", 2 << 40, false},
		{"10B", 10, false},
		{"", 0, true},
		{"MiB", 0, true},
		{"-1", 0, true},
		{"1.5MiB", 0, true},
		{"4M", 0, true},
		{"99999999999TiB", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	for _, s := range []Size{4 << 20, 1, 1000, 1536, 3 << 30} {
		back, err := ParseSize(s.String())
		if err != nil || back != s {
			t.Errorf("round trip of %d via %q = %d, %v", s, s.String(), back, err)
		}
	}
	eq(t, "String", Size(4<<20).String(), "4MiB")
}

// TestGCOnByDefault (issue 12): garbage collection runs every hour unless told
// otherwise, and 0 (in the file, the environment or a flag) turns it off.
func TestGCOnByDefault(t *testing.T) {
	c, err := Load(Sources{})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "default gc.interval", c.GC.Interval, time.Hour)
	for name, src := range map[string]Sources{
		"file": {File: writeFile(t, "gc:\n  interval: 0s\n")},
		"env":  {LookupEnv: envMap(map[string]string{"HUBCTL_GC_INTERVAL": "0"})},
		"flag": {Flags: map[string]string{"gc.interval": "0s"}},
	} {
		c, err := Load(src)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		eq(t, name+" gc.interval", c.GC.Interval, 0)
	}
}
