package config

import (
	"strings"
	"testing"
)

func TestTLSSettings(t *testing.T) {
	for _, tt := range []struct {
		name    string
		flags   map[string]string
		mode    string
		wantErr string
	}{
		{name: "off by default", mode: "off"},
		{name: "a cert selects files", flags: map[string]string{"tls.cert": "/c", "tls.key": "/k"}, mode: "files"},
		{name: "files needs the key", flags: map[string]string{"tls.cert": "/c"}, wantErr: "needs both tls.cert and tls.key"},
		{name: "self-signed", flags: map[string]string{"tls.mode": "self-signed"}, mode: "self-signed"},
		{name: "acme needs a domain", flags: map[string]string{"tls.mode": "acme"}, wantErr: "needs tls.acme_domain"},
		{name: "acme needs a dot", flags: map[string]string{"tls.mode": "acme", "tls.acme_domain": "hub"}, wantErr: "DNS name with a dot"},
		{name: "acme", flags: map[string]string{"tls.mode": "acme", "tls.acme_domain": "hub.example.com"}, mode: "acme"},
		{name: "unknown mode", flags: map[string]string{"tls.mode": "yes"}, wantErr: `tls.mode "yes" is not supported`},
		{name: "http external url with TLS", flags: map[string]string{"tls.mode": "self-signed", "external_url": "http://hub:5000"}, wantErr: "is http but the listener serves TLS"},
		{name: "redirect without TLS", flags: map[string]string{"tls.redirect_addr": ":80"}, wantErr: "needs TLS on"},
		{name: "cert with acme", flags: map[string]string{"tls.mode": "acme", "tls.acme_domain": "a.b", "tls.cert": "/c"}, wantErr: "are for tls.mode files"},
		{name: "metrics addr", flags: map[string]string{"metrics.addr": "9000"}, wantErr: "metrics.addr"},
		{name: "short metrics token", flags: map[string]string{"metrics.token": "short"}, wantErr: "at least 16"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(Sources{Flags: tt.flags})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "mode", c.TLS.Mode, tt.mode)
		})
	}
}

func TestOpsDefaults(t *testing.T) {
	c, err := Load(Sources{Flags: map[string]string{"data": "/srv/hub"}})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "tls dir", c.TLS.Dir, "/srv/hub/tls")
	eq(t, "metrics", c.Metrics.Addr, DefaultMetricsAddr)
	eq(t, "acme", c.TLS.ACMEDirectory, DefaultACMEDirectory)
	c, err = Load(Sources{Flags: map[string]string{"metrics.addr": ""}})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "metrics off", c.Metrics.Addr, "off")
	eq(t, "list", strings.Join(List(" a, ,b "), "|"), "a|b")
}
