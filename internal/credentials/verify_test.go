package credentials

import (
	"context"
	"errors"
	"maps"
	"testing"

	"github.com/hubctl/hubctl/internal/credentials/credentialstest"
)

var users = map[string]string{"alice": "s3cret"}

func TestVerifyBearer(t *testing.T) {
	reg := credentialstest.NewRegistry(t, credentialstest.Bearer, users)
	res, err := Verify(context.Background(), reg.Host, Credentials{Username: "alice", Password: "s3cret"}, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.NoAuth || res.Credentials != (Credentials{Username: "alice", Password: "s3cret"}) {
		t.Errorf("result %+v", res)
	}
	reqs := reg.TokenRequests()
	if len(reqs) != 1 {
		t.Fatalf("token requests %+v", reqs)
	}
	want := credentialstest.TokenRequest{Service: reg.Service, ClientID: "hubctl", OfflineToken: "true", Username: "alice", Authorized: true}
	if reqs[0] != want {
		t.Errorf("token request %+v, want %+v", reqs[0], want)
	}
}

func TestVerifyBearerRefreshToken(t *testing.T) {
	reg := credentialstest.NewRegistry(t, credentialstest.Bearer, users)
	reg.RefreshToken = "hubr_refresh"
	res, err := Verify(context.Background(), reg.Host, Credentials{Username: "alice", Password: "s3cret"}, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Credentials{Username: "alice", IdentityToken: "hubr_refresh"}); res.Credentials != want {
		t.Errorf("got %+v, want %+v (password replaced by the refresh token)", res.Credentials, want)
	}
}

func TestVerifyRefused(t *testing.T) {
	for _, ch := range []credentialstest.Challenge{credentialstest.Bearer, credentialstest.Basic} {
		reg := credentialstest.NewRegistry(t, ch, users)
		for _, c := range []Credentials{{Username: "alice", Password: "wrong"}, {Username: "mallory", Password: "s3cret"}} {
			_, err := Verify(context.Background(), reg.Host, c, VerifyOptions{})
			if !errors.Is(err, ErrInvalidCredentials) {
				t.Errorf("challenge %d, %s: err %v, want ErrInvalidCredentials", ch, c.Username, err)
			}
			if want := "login to " + reg.Host + " failed: invalid username or password"; err != nil && err.Error() != want {
				t.Errorf("message %q, want %q", err, want)
			}
		}
	}
}

func TestVerifyBasic(t *testing.T) {
	reg := credentialstest.NewRegistry(t, credentialstest.Basic, users)
	res, err := Verify(context.Background(), "http://"+reg.Host+"/", Credentials{Username: "alice", Password: "s3cret"}, VerifyOptions{})
	if err != nil || res.NoAuth || res.Credentials.Password != "s3cret" {
		t.Errorf("got %+v, %v", res, err)
	}
	if n := len(reg.TokenRequests()); n != 0 {
		t.Errorf("%d token requests to a Basic registry", n)
	}
}

func TestVerifyNoAuth(t *testing.T) {
	reg := credentialstest.NewRegistry(t, credentialstest.NoAuth, maps.Clone(users))
	res, err := Verify(context.Background(), reg.Host, Credentials{Username: "anyone", Password: "x"}, VerifyOptions{})
	if err != nil || !res.NoAuth {
		t.Errorf("got %+v, %v", res, err)
	}
}

func TestParseChallenge(t *testing.T) {
	tests := []struct {
		in     string
		scheme string
		params map[string]string
	}{
		{`Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"`,
			"bearer", map[string]string{"realm": "https://auth.example/token", "service": "registry.example", "scope": "repository:a/b:pull,push"}},
		{`bearer realm=https://h/token, service=reg`, "bearer", map[string]string{"realm": "https://h/token", "service": "reg"}},
		{`Basic realm="Registry Realm"`, "basic", map[string]string{"realm": "Registry Realm"}},
		{`Bearer realm="a\"b"`, "bearer", map[string]string{"realm": `a"b`}},
		{`Bearer realm="unterminated`, "bearer", map[string]string{"realm": "unterminated"}},
		{``, "", map[string]string{}},
	}
	for _, tt := range tests {
		scheme, params := ParseChallenge(tt.in)
		if scheme != tt.scheme || !maps.Equal(params, tt.params) {
			t.Errorf("ParseChallenge(%q) = %q %v, want %q %v", tt.in, scheme, params, tt.scheme, tt.params)
		}
	}
}

func FuzzParseChallenge(f *testing.F) {
	f.Add(`Bearer realm="https://h/token",service="s"`)
	f.Add(`Basic realm="x\"`)
	f.Fuzz(func(t *testing.T, s string) { ParseChallenge(s) })
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST:5000": true, "127.0.0.1": true, "127.1.2.3:80": true,
		"[::1]:5000": true, "::1": true, "10.0.0.1:5000": false, "registry.example": false,
		"localhost.example.com": false, "128.0.0.1": false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v", host, got)
		}
	}
}
