// Command loginspray measures what a password spray does to other clients' logins
// (issue 12, item 9): the latency of a correct login from 127.0.0.2, alone and while
// -sprayers goroutines send failing logins with fresh user names from 127.0.0.1, against
// a hub listening on loopback.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 64}}
}

func login(c *http.Client, base, user, pass string) (int, time.Duration) {
	req, _ := http.NewRequest("GET", base+"/token?service=hubctl", nil)
	req.SetBasicAuth(user, pass)
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, time.Since(start)
}

func pct(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)].Round(time.Millisecond)
}

func main() {
	base := flag.String("base", "http://127.0.0.1:5000", "the hub's base URL (listening on 127.0.0.1)")
	user := flag.String("user", "admin", "an account whose password is -pass")
	pass := flag.String("pass", "", "the account's password")
	sprayers := flag.Int("sprayers", 40, "concurrent failing logins from 127.0.0.1")
	flag.Parse()
	good := clientFrom("127.0.0.2")
	var alone []time.Duration
	for range 20 {
		code, d := login(good, *base, *user, *pass)
		if code != 200 {
			fmt.Fprintf(os.Stderr, "loginspray: baseline login answered %d\n", code)
			os.Exit(1)
		}
		alone = append(alone, d)
	}
	spray := clientFrom("127.0.0.1")
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var n, r429 atomic.Int64
	for i := range *sprayers {
		wg.Go(func() {
			for k := 0; ctx.Err() == nil; k++ {
				code, _ := login(spray, *base, fmt.Sprintf("v%d-%d", i, k), "Winter2026!")
				n.Add(1)
				if code == http.StatusTooManyRequests {
					r429.Add(1)
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	var during []time.Duration
	codes := map[int]int{}
	for range 20 {
		c, d := login(good, *base, *user, *pass)
		codes[c]++
		during = append(during, d)
	}
	stop()
	wg.Wait()
	fmt.Printf("correct login from 127.0.0.2: alone median %v p90 %v | during a %d-way spray from 127.0.0.1: median %v p90 %v max %v, statuses %v | spray: %d attempts, %d answered 429\n",
		pct(alone, .5), pct(alone, .9), *sprayers, pct(during, .5), pct(during, .9), pct(during, 1), codes, n.Load(), r429.Load())
}
