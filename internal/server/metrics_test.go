package server

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrape reads the exposition text at url into series → value (summed over series
// that match a prefix are left to the caller).
func scrape(t *testing.T, url string, hdr map[string]string) map[string]float64 {
	t.Helper()
	resp, body := get(t, url, hdr)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetricsSeriesMove scrapes /metrics before and after a push, a pull, a refused
// token request and a 404, and checks that the series the issue names move, carry no
// repository names, and that the main listener serves them only with the token.
func TestMetricsSeriesMove(t *testing.T) {
	maddr := freeAddr(t)
	token := "metrics-token-0123456789"
	r := start(t, map[string]string{"metrics.addr": maddr, "metrics.token": token, "auth.mode": "token"})
	base := "http://" + r.addr
	murl := "http://" + maddr + "/metrics"
	before := scrape(t, murl, nil)

	// A push of one blob as admin, a pull of it, a token refusal.
	tok := adminToken(t, base, "repository:secret-team/app:push,pull")
	blob := []byte("metrics test blob")
	dg := fmt.Sprintf("sha256:%x", sha256.Sum256(blob))
	req, _ := http.NewRequest(http.MethodPost, base+"/v2/secret-team/app/blobs/uploads/?digest="+dg, bytes.NewReader(blob))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("blob push: %s", resp.Status)
	}
	resp, body := get(t, base+"/v2/secret-team/app/blobs/"+dg, map[string]string{"Authorization": "Bearer " + tok})
	if resp.StatusCode != http.StatusOK || body != string(blob) {
		t.Fatalf("blob pull: %s", resp.Status)
	}
	req, _ = http.NewRequest(http.MethodGet, base+"/token?service=hubctl&scope=repository:x/y:pull", nil)
	req.SetBasicAuth("admin", "wrong password")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	after := scrape(t, murl, nil)
	moved := func(series string, atLeast float64) {
		t.Helper()
		if d := after[series] - before[series]; d < atLeast {
			t.Errorf("%s moved by %v, want at least %v", series, d, atLeast)
		}
	}
	moved(`hubctl_http_requests_total{code="201",method="POST",route="blob_upload"}`, 1)
	moved(`hubctl_http_requests_total{code="200",method="GET",route="blob"}`, 1)
	moved(`hubctl_http_request_duration_seconds_count{method="GET",route="blob"}`, 1)
	moved(`hubctl_http_request_body_bytes_total{route="blob_upload"}`, float64(len(blob)))
	moved(`hubctl_http_response_body_bytes_total{route="blob"}`, float64(len(blob)))
	moved(`hubctl_tokens_issued_total`, 1)
	moved(`hubctl_token_refusals_total{code="401"}`, 1)
	moved(`hubctl_blobstore_operation_duration_seconds_count{op="put"}`, 1)
	moved(`hubctl_blobstore_operation_duration_seconds_count{op="open"}`, 1)
	moved(`hubctl_db_transaction_duration_seconds_count{kind="write"}`, 1)
	for _, s := range []string{"go_goroutines", "process_open_fds", "hubctl_uploads_in_flight", "hubctl_http_requests_in_flight"} {
		if _, ok := after[s]; !ok {
			t.Errorf("series %s missing", s)
		}
	}
	for s := range after {
		if strings.Contains(s, "secret-team") || strings.Contains(s, "admin") || strings.Contains(s, "sha256") {
			t.Errorf("series %s names a repository, user or digest", s)
		}
	}

	// The main listener: 401 without the token, the same text with it.
	resp, _ = get(t, base+"/metrics", nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/metrics on the main listener without the token: %s", resp.Status)
	}
	main := scrape(t, base+"/metrics", map[string]string{"Authorization": "Bearer " + token})
	if _, ok := main["hubctl_tokens_issued_total"]; !ok {
		t.Error("the main listener's /metrics lacks hubctl_tokens_issued_total")
	}
}

// adminToken gets a registry token for scope as the test admin.
func adminToken(t *testing.T, base, scope string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/token?service=hubctl&scope="+scope, nil)
	req.SetBasicAuth(AdminUser, testAdminPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token: %s: %s", resp.Status, b)
	}
	_, rest, _ := strings.Cut(string(b), `"token":"`)
	tok, _, _ := strings.Cut(rest, `"`)
	return tok
}

// TestMetricsGCAndQuota: scheduled collections and quota refusals move their series.
func TestMetricsGCAndQuota(t *testing.T) {
	maddr := freeAddr(t)
	r := start(t, map[string]string{"metrics.addr": maddr, "auth.mode": "token", "gc.interval": "50ms"})
	base := "http://" + r.addr
	req, _ := http.NewRequest(http.MethodPut, base+"/api/v1/namespaces/admin/quota", strings.NewReader(`{"bytes":10}`))
	req.SetBasicAuth(AdminUser, testAdminPassword)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("set quota: %s", resp.Status)
	}
	h := hub{t: t, base: base, tok: adminToken(t, base, "repository:admin/app:push,pull")}
	blob := []byte("more than ten bytes of blob")
	dg := fmt.Sprintf("sha256:%x", sha256.Sum256(blob))
	if resp, b := h.do(http.MethodPost, "/v2/admin/app/blobs/uploads/?digest="+dg, blob, map[string]string{"Content-Type": "application/octet-stream"}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("push over quota: %s %s", resp.Status, b)
	}
	var got map[string]float64
	for i := 0; i < 100; i++ {
		got = scrape(t, "http://"+maddr+"/metrics", nil)
		if got[`hubctl_gc_runs_total{result="ok"}`] > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got[`hubctl_gc_runs_total{result="ok"}`] == 0 {
		t.Error("no scheduled collection counted")
	}
	if got[`hubctl_quota_refusals_total`] != 1 {
		t.Errorf("quota refusals = %v, want 1", got[`hubctl_quota_refusals_total`])
	}
}
