package server

import (
	"strings"
	"testing"
)

// TestWarnsWhenTheRealmFollowsHostOffLoopback: without external_url the token realm is
// built from each request's Host header, which is only safe where no one else can reach
// the listener; serving on every interface must say so at start.
func TestWarnsWhenTheRealmFollowsHostOffLoopback(t *testing.T) {
	const want = "without --external-url"
	for _, tc := range []struct {
		name  string
		flags map[string]string
		warn  bool
	}{
		{"loopback", map[string]string{"auth.mode": "token"}, false},
		{"every interface", map[string]string{"auth.mode": "token", "addr": "0.0.0.0:0"}, true},
		{"every interface with external_url", map[string]string{"auth.mode": "token", "addr": "0.0.0.0:0", "external_url": "https://hub.example.com"}, false},
		{"auth off", map[string]string{"addr": "0.0.0.0:0"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := start(t, tc.flags)
			r.stop(t)
			warned := false
			for _, l := range logLines(t, r.log) {
				if l["level"] == "WARN" && strings.Contains(l["msg"].(string), want) {
					warned = true
				}
			}
			if warned != tc.warn {
				t.Fatalf("warned = %v, want %v; log:\n%s", warned, tc.warn, r.log.String())
			}
		})
	}
}
