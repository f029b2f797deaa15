package dockerdaemon

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

func digestOf(b []byte) digest.Digest { return digest.FromBytes(b) }

func TestUnreachable(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "nothing.sock")
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	c, err := New()
	if err != nil {
		t.Fatal(err)
	}
	err = c.Ping(context.Background())
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "cannot reach the Docker engine at unix://"+sock+": ") || !strings.Contains(err.Error(), "DOCKER_HOST") {
		t.Fatalf("Ping: %v", err)
	}
	if _, err := c.Inspect(context.Background(), "app"); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Inspect: %v", err)
	}
}

func TestNewHosts(t *testing.T) {
	t.Setenv("DOCKER_TLS_VERIFY", "")
	t.Setenv("DOCKER_CERT_PATH", "")
	for _, tc := range []struct {
		host, base string
	}{
		{"", "http://docker"},
		{"unix:///run/user/1000/docker.sock", "http://docker"},
		{"tcp://10.0.0.1:2375", "http://10.0.0.1:2375"},
		{"ssh://me@host", ""},
		{"tcp://", ""},
	} {
		t.Setenv("DOCKER_HOST", tc.host)
		c, err := New()
		if tc.base == "" {
			if err == nil {
				t.Errorf("%q: no error", tc.host)
			}
			continue
		}
		if err != nil || c.baseURL != tc.base {
			t.Errorf("%q: %v, base %q", tc.host, err, c.baseURL)
		}
	}
	t.Setenv("DOCKER_HOST", "tcp://10.0.0.1:2376")
	t.Setenv("DOCKER_TLS_VERIFY", "1")
	t.Setenv("DOCKER_CERT_PATH", t.TempDir())
	if _, err := New(); err == nil || !strings.Contains(err.Error(), "ca.pem") {
		t.Fatalf("TLS without ca.pem: %v", err)
	}
}

func TestVersionLess(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		less bool
	}{
		{"1.41", "1.43", true}, {"1.9", "1.41", true}, {"1.41", "1.41", false}, {"1.41", "1.24", false}, {"2.0", "1.99", false},
	} {
		if versionLess(tc.a, tc.b) != tc.less {
			t.Errorf("versionLess(%s, %s) != %v", tc.a, tc.b, tc.less)
		}
	}
}

func TestReadMessages(t *testing.T) {
	for _, tc := range []struct {
		in, err string
	}{
		{`{"stream":"Loaded image: app:1\n"}`, ""},
		{`{"stream":"x"}{"errorDetail":{"message":"bad tar"},"error":"bad tar"}`, "docker load: bad tar"},
		{`{"error":"only error"}`, "docker load: only error"},
		{`{"stream":`, "reading the engine's reply"},
	} {
		err := readMessages(strings.NewReader(tc.in))
		if (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want %q", tc.in, err, tc.err)
		}
	}
}

func TestImagePath(t *testing.T) {
	for in, want := range map[string]string{
		"app:1":                     "app:1",
		"localhost:5000/team/app:1": "localhost:5000/team/app:1",
		"app@sha256:abc":            "app@sha256:abc",
	} {
		if got, err := imagePath(in); err != nil || got != want {
			t.Errorf("imagePath(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := imagePath("a?b"); err == nil {
		t.Error("imagePath took a query")
	}
}
