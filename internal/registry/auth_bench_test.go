package registry

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// BenchmarkAuthOverhead measures what token verification costs the registry: the same
// manifest HEAD by tag against a registry without auth and one that checks an ES256
// bearer token on every request, alternating in batches so machine noise hits both
// alike. It reports both request rates and the overhead in percent (issue 3 asks for
// under 10%).
//
//	go test -run XXX -bench AuthOverhead ./internal/registry
func BenchmarkAuthOverhead(b *testing.B) {
	plain := newEnv(b)
	secured := newAuthEnv(b)
	secured.auth = secured.token("bench", "repository:team/app:pull,push")
	for _, e := range []*env{plain, secured.env} {
		_, p := e.image("team/app")
		if r := e.do("PUT", "/v2/team/app/manifests/v1", bytes.NewReader(p), "Content-Type", ocispec.MediaTypeImageManifest); r.status != 201 {
			b.Fatalf("push: %d %s", r.status, r.body)
		}
	}
	bearer := secured.token("bench", "repository:team/app:pull")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	head := func(base, auth string) {
		req, _ := http.NewRequest("HEAD", base+"/v2/team/app/manifests/v1", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := client.Do(req)
		if err != nil || res.StatusCode != 200 {
			b.Fatalf("HEAD: %v %v", err, res)
		}
		res.Body.Close()
	}
	const batch = 200
	var tPlain, tAuth time.Duration
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		n := min(batch, b.N-done)
		start := time.Now()
		for range n {
			head(plain.srv.URL, "")
		}
		tPlain += time.Since(start)
		start = time.Now()
		for range n {
			head(secured.srv.URL, bearer)
		}
		tAuth += time.Since(start)
	}
	b.StopTimer()
	rPlain := float64(b.N) / tPlain.Seconds()
	rAuth := float64(b.N) / tAuth.Seconds()
	b.ReportMetric(rPlain, "req/s-none")
	b.ReportMetric(rAuth, "req/s-token")
	b.ReportMetric((rPlain-rAuth)/rPlain*100, "overhead-%")
	fmt.Printf("manifest HEAD: %.0f req/s without auth, %.0f req/s with token checks: %.1f%% overhead\n", rPlain, rAuth, (rPlain-rAuth)/rPlain*100)
}
