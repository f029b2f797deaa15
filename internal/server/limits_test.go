package server

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// stalled is a raw connection that sent a request's headers and part of its body and
// then stopped, as a slowloris client does.
type stalled struct {
	conn net.Conn
}

// stall opens a connection from the loopback address ip and sends the headers of a
// request with a body of bodyLen bytes, and the first sent bytes of it.
func stall(t *testing.T, ip, addr, method, path string, hdr map[string]string, bodyLen int, sent []byte) *stalled {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 30 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", method, path, addr, bodyLen)
	for k, v := range hdr {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	if _, err := c.Write(append([]byte(b.String()), sent...)); err != nil {
		t.Fatal(err)
	}
	return &stalled{conn: c}
}

// status reads the response status within wait; 0 when none came (still held).
func (s *stalled) status(wait time.Duration) int {
	_ = s.conn.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(bufio.NewReader(s.conn), nil)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// registryToken gets a registry token for user from /token.
func registryToken(t *testing.T, base, user, pass string, scopes ...string) string {
	t.Helper()
	q := url.Values{"service": {"hubctl"}, "scope": scopes}
	code, body := apiDo(t, "GET", base+"/token?"+q.Encode(), basicAuth(user, pass), nil)
	var tok struct{ Token string }
	if err := json.Unmarshal([]byte(body), &tok); code != 200 || err != nil || tok.Token == "" {
		t.Fatalf("/token for %s = %d %s", user, code, body)
	}
	return tok.Token
}

// push uploads blob to repo monolithically and then chunked, and puts a manifest, with
// the registry token tok; it fails the test on any refusal.
func push(t *testing.T, c *http.Client, base, repo, tok string, blob []byte) {
	t.Helper()
	do := func(method, u string, body []byte, ctype string, want int) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, u, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, u, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s %s = %d %s, want %d", method, u, resp.StatusCode, b, want)
		}
		return resp
	}
	d := digest.FromBytes(blob)
	do("POST", base+"/v2/"+repo+"/blobs/uploads/?digest="+d.String(), blob, "application/octet-stream", 201)
	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	loc := do("POST", base+"/v2/"+repo+"/blobs/uploads/", nil, "", 202).Header.Get("Location")
	loc = do("PATCH", base+loc, cfg, "application/octet-stream", 202).Header.Get("Location")
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	do("PUT", base+loc+sep+"digest="+digest.FromBytes(cfg).String(), nil, "", 201)
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}`,
		digest.FromBytes(cfg), len(cfg), d, len(blob))
	do("PUT", base+"/v2/"+repo+"/manifests/v1", []byte(m), "application/vnd.oci.image.manifest.v1+json", 201)
}

// TestOneAccountCannotBlockEveryPush is issue 12's item 3 as the attacker played it:
// alice opens 300 uploads that each send one byte and stall. Today's 256 shared
// upload slots made every other user's push fail with 429 until they were closed.
// Now alice holds at most her own share, and bob pushes.
func TestOneAccountCannotBlockEveryPush(t *testing.T) {
	r := start(t, map[string]string{"auth.mode": "token", "limits.slow_timeout": "2m"})
	base := "http://" + r.addr
	admin := basicAuth(AdminUser, testAdminPassword)
	for _, u := range []string{"alice", "bob"} {
		if code, b := apiDo(t, "POST", base+"/api/v1/users", admin, map[string]any{"name": u, "password": u + "-password"}); code != 201 {
			t.Fatalf("create %s: %d %s", u, code, b)
		}
	}
	aliceTok := registryToken(t, base, "alice", "alice-password", "repository:alice/app:pull,push")
	bobTok := registryToken(t, base, "bob", "bob-password", "repository:bob/app:pull,push")

	const attackers = 300
	conns := make([]*stalled, attackers)
	fake := digest.FromString("never sent")
	for i := range conns {
		conns[i] = stall(t, "127.0.0.1", r.addr, "POST", "/v2/alice/app/blobs/uploads/?digest="+fake.String(),
			map[string]string{"Authorization": "Bearer " + aliceTok}, 1<<20, []byte("x"))
	}
	statuses := make([]int, attackers)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() { statuses[i] = c.status(15 * time.Second) })
	}
	wg.Wait()
	held, refused := 0, 0
	for _, s := range statuses {
		switch s {
		case 0:
			held++
		case http.StatusTooManyRequests:
			refused++
		default:
			t.Errorf("a stalled upload was answered %d", s)
		}
	}
	t.Logf("alice's %d stalled uploads: %d held by the server, %d refused with 429", attackers, held, refused)

	// While alice's uploads stall, bob pushes: a monolithic blob, a chunked one and a
	// manifest.
	blob := make([]byte, 1<<20)
	_, _ = rand.Read(blob)
	push(t, http.DefaultClient, base, "bob/app", bobTok, blob)
	if held > 32 {
		t.Fatalf("alice holds %d uploads, more than her 32", held)
	}
}

// TestSlowClientsAreCut: a request body that trickles in below the minimum rate is cut
// on every route, a body to /token or /api that does not arrive within the short
// deadline is cut, and a client that stops reading a response is cut; each frees what
// it held.
func TestSlowClientsAreCut(t *testing.T) {
	r := start(t, map[string]string{"auth.mode": "token", "limits.slow_timeout": "2s",
		"limits.small_body_timeout": "2s", "limits.min_body_rate": "1MiB"})
	base := "http://" + r.addr
	admin := basicAuth(AdminUser, testAdminPassword)
	tok := registryToken(t, base, AdminUser, testAdminPassword, "repository:admin/app:pull,push")

	// cut sends the body of s one byte every interval and returns how long the server
	// took to answer or close the connection.
	trickle := func(s *stalled, interval time.Duration) (time.Duration, int) {
		start := time.Now()
		done := make(chan int, 1)
		go func() { done <- s.status(2 * time.Minute) }()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case code := <-done:
				return time.Since(start), code
			case <-tick.C:
				_, _ = s.conn.Write([]byte(" "))
			}
		}
	}
	for _, tc := range []struct {
		name, method, path string
		hdr                map[string]string
	}{
		{"monolithic upload", "POST", "/v2/admin/app/blobs/uploads/?digest=" + digest.FromString("x").String(), map[string]string{"Authorization": "Bearer " + tok}},
		{"manifest", "PUT", "/v2/admin/app/manifests/v1", map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "application/vnd.oci.image.manifest.v1+json"}},
		{"token", "POST", "/token", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}},
		{"hub API", "POST", "/api/v1/orgs", map[string]string{"Authorization": admin, "Content-Type": "application/json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Spaces: JSON and manifest parsers wait for more after them.
			s := stall(t, "127.0.0.1", r.addr, tc.method, tc.path, tc.hdr, 1<<20, []byte(" "))
			took, code := trickle(s, 200*time.Millisecond)
			t.Logf("%s %s trickling 5 bytes/s: answered %d after %v", tc.method, tc.path, code, took.Round(100*time.Millisecond))
			if took > time.Minute {
				t.Fatalf("not cut after %v", took)
			}
		})
	}

	t.Run("slow reader", func(t *testing.T) {
		blob := make([]byte, 64<<20)
		_, _ = rand.Read(blob)
		d := digest.FromBytes(blob)
		req, _ := http.NewRequest("POST", base+"/v2/admin/app/blobs/uploads/?digest="+d.String(), bytes.NewReader(blob))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 201 {
			t.Fatalf("upload: %v %v", err, resp)
		}
		resp.Body.Close()
		c, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /v2/admin/app/blobs/%s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", d, r.addr, tok)
		// Read nothing for a while: the server must give up on us.
		start := time.Now()
		deadline := start.Add(2 * time.Minute)
		for time.Now().Before(deadline) && !strings.Contains(r.log.String(), "response cut off") {
			time.Sleep(100 * time.Millisecond)
		}
		took := time.Since(start)
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, _ := io.Copy(io.Discard, c)
		t.Logf("a reader that stopped was cut after %v, having received %d of %d bytes", took.Round(100*time.Millisecond), n, len(blob))
		if n >= int64(len(blob)) || !strings.Contains(r.log.String(), "response cut off") {
			t.Fatalf("the slow reader was not cut: received %d bytes; log:\n%s", n, r.log.String())
		}
	})
}

// TestStalledAnonymousRequestsHoldOnlyTheirShare: anonymous clients that open /token
// requests and never send the body hold at most their address's share, and another
// address logs in meanwhile.
func TestStalledAnonymousRequestsHoldOnlyTheirShare(t *testing.T) {
	r := start(t, map[string]string{"auth.mode": "token", "limits.small_body_timeout": "1m"})
	conns := make([]*stalled, 300)
	for i := range conns {
		conns[i] = stall(t, "127.0.0.1", r.addr, "POST", "/token", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 100, nil)
	}
	statuses := make([]int, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() { statuses[i] = c.status(10 * time.Second) })
	}
	wg.Wait()
	held := 0
	for _, s := range statuses {
		if s == 0 {
			held++
		} else if s != http.StatusTooManyRequests {
			t.Errorf("stalled /token answered %d", s)
		}
	}
	if held > 256 {
		t.Fatalf("one address holds %d requests, more than 256", held)
	}
	if code, _ := login(t, clientFrom("127.0.0.2"), "http://"+r.addr, AdminUser, testAdminPassword); code != 200 {
		t.Fatalf("login from another address = %d", code)
	}
}

// TestLargeTransfersAtNormalSpeedPass: the rate floor does not touch uploads and pulls
// that move, even a modest stream above the floor.
func TestLargeTransfersAtNormalSpeedPass(t *testing.T) {
	r := start(t, map[string]string{"limits.slow_timeout": "2s", "limits.min_body_rate": "64KiB"})
	base := "http://" + r.addr
	blob := make([]byte, 128<<20)
	_, _ = rand.Read(blob)
	d := digest.FromBytes(blob)
	startT := time.Now()
	resp, err := http.Post(base+"/v2/big/app/blobs/uploads/?digest="+d.String(), "application/octet-stream", bytes.NewReader(blob))
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("128 MiB upload: %v %v", err, resp)
	}
	resp.Body.Close()
	up := time.Since(startT)
	startT = time.Now()
	resp, err = http.Get(base + "/v2/big/app/blobs/" + d.String())
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("pull: %v %v", err, resp)
	}
	got := digest.SHA256.Digester()
	n, err := io.Copy(got.Hash(), resp.Body)
	resp.Body.Close()
	if err != nil || n != int64(len(blob)) || got.Digest() != d {
		t.Fatalf("pulled %d bytes (%v), digest %s", n, err, got.Digest())
	}
	down := time.Since(startT)
	t.Logf("128 MiB: upload %v (%.0f MiB/s), pull %v (%.0f MiB/s)", up.Round(time.Millisecond), 128/up.Seconds(), down.Round(time.Millisecond), 128/down.Seconds())

	// 1 MiB at about 256 KiB/s, four times the floor, in bursts: passes.
	small := blob[:1<<20]
	pr, pw := io.Pipe()
	go func() {
		for off := 0; off < len(small); off += 32 << 10 {
			_, _ = pw.Write(small[off : off+32<<10])
			time.Sleep(125 * time.Millisecond)
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", base+"/v2/big/slow/blobs/uploads/?digest="+digest.FromBytes(small).String(), pr)
	req.ContentLength = int64(len(small))
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 201 {
		b := []byte{}
		if resp != nil {
			b, _ = io.ReadAll(resp.Body)
		}
		t.Fatalf("a stream above the floor was refused: %v %v %s", err, resp, b)
	}
	resp.Body.Close()
}
