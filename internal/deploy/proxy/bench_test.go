package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"
)

// BenchmarkProxy sends the same small GET through the hubctl proxy and through a
// bare httputil.ReverseProxy (the peer, with the same transport settings) to the same
// task, alternating, and reports each one's time per request and their ratio.
func BenchmarkProxy(b *testing.B) {
	tk := startTask(b, "v1", true)
	tp := startProxy(b, "")
	if _, err := tp.p.Deploy(context.Background(), "web", DeployRequest{Targets: targets(tk), Health: fastHealth}); err != nil {
		b.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxIdleConnsPerHost = 256
	peer := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: tk.addr})
	peer.Transport = tr
	ps := serve(b, peer)
	b.Cleanup(func() { ps.srv.Close() })

	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	one := func(u string) time.Duration {
		start := time.Now()
		resp, err := c.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatal(resp.Status)
		}
		return time.Since(start)
	}
	ours, theirs := tp.url+"/", "http://"+ps.addr+"/"
	one(ours)
	one(theirs)
	var dOurs, dPeer time.Duration
	n := 0
	for b.Loop() {
		dOurs += one(ours)
		dPeer += one(theirs)
		n++
	}
	b.ReportMetric(float64(dOurs.Nanoseconds())/float64(n), "ns/req-hubctl")
	b.ReportMetric(float64(dPeer.Nanoseconds())/float64(n), "ns/req-httputil")
	b.ReportMetric(float64(dOurs)/float64(dPeer), "ratio")
}
