package server

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/hubctl/hubctl/internal/config"
)

// TestForwardedClient: the client behind trusted proxies is the rightmost address of
// the header that is not a trusted proxy; an untrusted peer's header is ignored, so a
// client cannot pick its own address (issue 16, item 8).
func TestForwardedClient(t *testing.T) {
	proxies, err := config.ParseTrustedProxies("10.0.0.0/8, 2001:db8:ff::/48, 192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, peer string
		xff        []string
		fwd        []string
		forwarded  bool
		want       string // "" for no change
	}{
		{name: "no proxy configured for the peer", peer: "198.51.100.1", xff: []string{"203.0.113.5"}},
		{name: "one proxy", peer: "10.1.1.1", xff: []string{"203.0.113.5"}, want: "203.0.113.5"},
		{name: "a forged entry on the left is skipped", peer: "10.1.1.1", xff: []string{"1.2.3.4, 203.0.113.5"}, want: "203.0.113.5"},
		{name: "two proxies", peer: "10.1.1.1", xff: []string{"1.2.3.4, 203.0.113.5, 10.2.2.2"}, want: "203.0.113.5"},
		{name: "several header lines", peer: "192.0.2.1", xff: []string{"1.2.3.4", "203.0.113.5", "10.2.2.2"}, want: "203.0.113.5"},
		{name: "all trusted", peer: "10.1.1.1", xff: []string{"10.3.3.3, 10.2.2.2"}, want: "10.3.3.3"},
		{name: "garbage stops the walk", peer: "10.1.1.1", xff: []string{"203.0.113.5, unknown"}},
		{name: "garbage behind a trusted hop", peer: "10.1.1.1", xff: []string{"bogus, 10.2.2.2"}, want: "10.2.2.2"},
		{name: "no header", peer: "10.1.1.1"},
		{name: "ipv6 with port", peer: "2001:db8:ff::1", xff: []string{"[2001:db8:1::7]:4711"}, want: "2001:db8:1::7"},
		{name: "Forwarded", peer: "10.1.1.1", forwarded: true, fwd: []string{`for=1.2.3.4, for="[2001:db8:1::7]:4711";proto=https`}, want: "2001:db8:1::7"},
		{name: "Forwarded ignores X-Forwarded-For", peer: "10.1.1.1", forwarded: true, xff: []string{"1.2.3.4"}, fwd: []string{"for=203.0.113.5"}, want: "203.0.113.5"},
		{name: "X-Forwarded-For ignores Forwarded", peer: "10.1.1.1", xff: []string{"203.0.113.5"}, fwd: []string{"for=1.2.3.4"}, want: "203.0.113.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tc.xff {
				h.Add("X-Forwarded-For", v)
			}
			for _, v := range tc.fwd {
				h.Add("Forwarded", v)
			}
			got, ok := forwardedClient(proxies, tc.peer, h, tc.forwarded)
			switch {
			case tc.want == "" && ok:
				t.Fatalf("client = %s, want the peer", got)
			case tc.want != "" && (!ok || got != netip.MustParseAddr(tc.want)):
				t.Fatalf("client = %s, %v; want %s", got, ok, tc.want)
			}
		})
	}
}

func TestClientAddressRewritesRemoteAddr(t *testing.T) {
	proxies, _ := config.ParseTrustedProxies("127.0.0.1")
	var seen string
	h := clientAddress(proxies, "X-Forwarded-For", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r.RemoteAddr }))
	r := httptest.NewRequest("GET", "/v2/", nil)
	r.RemoteAddr = "127.0.0.1:5555"
	r.Header.Set("X-Forwarded-For", "203.0.113.5")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if seen != "203.0.113.5:5555" {
		t.Fatalf("RemoteAddr = %q", seen)
	}
}

func FuzzForwardedClient(f *testing.F) {
	proxies, _ := config.ParseTrustedProxies("10.0.0.0/8")
	f.Add("1.2.3.4, 10.0.0.1", `for="[::1]:80";by=x, for=unknown`)
	f.Fuzz(func(t *testing.T, xff, fwd string) {
		h := http.Header{"X-Forwarded-For": {xff}, "Forwarded": {fwd}}
		for _, forwarded := range []bool{false, true} {
			if a, ok := forwardedClient(proxies, "10.9.9.9", h, forwarded); ok && !a.IsValid() {
				t.Fatalf("invalid client %v", a)
			}
		}
	})
}
