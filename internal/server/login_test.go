package server

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clientFrom returns an HTTP client whose connections leave from the loopback address
// ip, so a test can play two client addresses against one server.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 30 * time.Second}
	return &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 64}}
}

// login asks /token with Basic credentials and returns the status and how long it took.
func login(t *testing.T, c *http.Client, base, user, pass string) (int, time.Duration) {
	req, _ := http.NewRequest("GET", base+"/token?service=hubctl", nil)
	req.SetBasicAuth(user, pass)
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		t.Error(err)
		return 0, 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, time.Since(start)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestPasswordSprayNeitherLocksOutNorStarvesOthers is item 9: 40 concurrent failing
// logins with 40 user names from one address. A correct login from another address
// during the spray is never answered 429 (the spray is limited per address, not
// globally) and is not queued behind the spray's hashes: the guard runs one password
// check per address at a time. The figures are logged, not asserted: the machine is
// shared.
func TestPasswordSprayNeitherLocksOutNorStarvesOthers(t *testing.T) {
	for _, tc := range []struct {
		name string
		// max_address_login_failures: the default locks the sprayer out after 20
		// failures; a high one keeps it hashing for the whole run (the worst case for
		// the others).
		addressLimit string
	}{
		{"default limits", ""},
		{"sprayer never locked out", "1000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			flags := map[string]string{"auth.mode": "token"}
			if tc.addressLimit != "" {
				flags["auth.max_address_login_failures"] = tc.addressLimit
			}
			r := start(t, flags)
			base := "http://" + r.addr
			good := clientFrom("127.0.0.2")
			var baseline []time.Duration
			for range 5 {
				code, d := login(t, good, base, AdminUser, testAdminPassword)
				if code != 200 {
					t.Fatalf("baseline login = %d", code)
				}
				baseline = append(baseline, d)
			}

			spray := clientFrom("127.0.0.1")
			ctx, stop := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			var attempts, refused atomic.Int64
			for i := range 40 {
				wg.Go(func() {
					for n := 0; ctx.Err() == nil; n++ {
						code, _ := login(t, spray, base, fmt.Sprintf("victim%d-%d", i, n), "Winter2026!")
						attempts.Add(1)
						if code == http.StatusTooManyRequests {
							refused.Add(1)
						}
					}
				})
			}
			time.Sleep(200 * time.Millisecond) // the spray is under way
			var during []time.Duration
			for range 10 {
				code, d := login(t, good, base, AdminUser, testAdminPassword)
				if code != 200 {
					t.Errorf("a correct login from another address during the spray = %d", code)
				}
				during = append(during, d)
			}
			stop()
			wg.Wait()
			t.Logf("correct login from 127.0.0.2: alone median %v; during a 40-way spray from 127.0.0.1 median %v, max %v (spray: %d attempts, %d answered 429)",
				median(baseline).Round(time.Millisecond), median(during).Round(time.Millisecond), slices.Max(during).Round(time.Millisecond),
				attempts.Load(), refused.Load())
			if tc.addressLimit == "" && refused.Load() == 0 {
				t.Errorf("the sprayer was never refused")
			}
			r.stop(t)
			// Refusals are the client's doing: logged at warn, never at error.
			for _, l := range logLines(t, r.log) {
				if l["level"] == "ERROR" {
					t.Errorf("error logged: %v", l)
				}
			}
		})
	}
}

// TestAPIAccessLogNamesTheUser: the access log line of a hub API request carries the
// signed-in user, as /token's and /v2's do.
func TestAPIAccessLogNamesTheUser(t *testing.T) {
	r := start(t, map[string]string{"auth.mode": "token"})
	if code, _ := apiDo(t, "GET", "http://"+r.addr+"/api/v1/user", basicAuth(AdminUser, testAdminPassword), nil); code != 200 {
		t.Fatal(code)
	}
	r.stop(t)
	for _, l := range logLines(t, r.log) {
		if l["msg"] == "request" && l["path"] == "/api/v1/user" {
			if l["user"] != AdminUser {
				t.Fatalf("access log: %v", l)
			}
			return
		}
	}
	t.Fatalf("no access log line: %s", strings.TrimSpace(r.log.String()))
}
