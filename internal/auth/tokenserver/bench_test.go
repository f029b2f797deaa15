package tokenserver

import (
	"net/http"
	"net/url"
	"testing"
)

// BenchmarkTokenIssue measures /token: anonymous (policy lookups and one ES256
// signature) and with a password (plus one argon2id verification, by design the
// expensive part: it is what makes guessing slow).
//
//	go test -run XXX -bench TokenIssue ./internal/auth/tokenserver
func BenchmarkTokenIssue(b *testing.B) {
	f := newFixture(b)
	for _, tc := range []struct{ name, user, pass string }{
		{"anonymous", "", ""},
		{"password", "alice", "alice-password"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			q := url.Values{"service": {"hubctl"}, "scope": {"repository:alice/public:pull", "repository:alice/app:pull,push"}}
			u := f.srv.URL + "/token?" + q.Encode()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("GET", u, nil)
					if tc.user != "" {
						req.SetBasicAuth(tc.user, tc.pass)
					}
					res, err := http.DefaultClient.Do(req)
					if err != nil || res.StatusCode != 200 {
						b.Fatalf("token: %v %v", err, res)
					}
					res.Body.Close()
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}
