// Command chartbench measures the hub's chart repository (issue 15): the classic
// index of one namespace holding many chart versions, cold, warm and 304, for callers
// without auth, anonymous (every other repository is public) and an organisation
// member; the index right after a new version; and the upload rate through the
// ChartMuseum API and through OCI. It runs the real handlers (registry, chart hook,
// chart repository) over loopback HTTP on a real store: SQLite in a temp directory, or
// PostgreSQL with -db postgres://…. Two chart repositories share the store, as two
// replicas would: one without auth, one with.
//
//	go run ./bench/chartbench                          # 10,000 versions of 500 charts, SQLite
//	go run ./bench/chartbench -db postgres://…/bench    # on PostgreSQL (an empty database)
//	bench/chartbench/run.sh                            # both, 3 runs each, a throwaway PostgreSQL
//
// The 10,000 versions are written to the store directly (records of real chart
// manifests, with their index entries as the chart hook records them), which is how
// the index sees them; the upload rates are measured separately with -uploads charts
// each way. The load average at start and end is printed: the machine is shared.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/charts"
	"github.com/hubctl/hubctl/internal/charts/chartrepo"
	"github.com/hubctl/hubctl/internal/charts/chartstore"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
	"github.com/hubctl/hubctl/internal/registry"
)

func main() {
	dsn := flag.String("db", "", "PostgreSQL URL (default: SQLite in a temp dir)")
	nCharts := flag.Int("charts", 500, "charts in the namespace")
	nVersions := flag.Int("versions", 20, "versions per chart")
	requests := flag.Int("requests", 100, "warm requests per format")
	uploads := flag.Int("uploads", 200, "charts uploaded through each API for the rate")
	changes := flag.Int("changes", 20, "versions added one at a time, each followed by an index request")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the index requests (cold, warm, 304) to this file")
	flag.Parse()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "chartbench-")
	check(err)
	defer os.RemoveAll(dir)

	open := func() *sqlstore.Store {
		var s *sqlstore.Store
		var err error
		if *dsn != "" {
			s, err = sqlstore.OpenPostgres(ctx, *dsn)
		} else {
			s, err = sqlstore.OpenSQLite(ctx, filepath.Join(dir, "hub.db"))
		}
		check(err)
		return s
	}
	store := open()
	blobs, err := blobstore.NewFS(filepath.Join(dir, "blobs"))
	check(err)

	fmt.Printf("load average at start: %s\n", loadavg())
	start := time.Now()
	member := setupAccounts(ctx, store)
	populate(ctx, store, *nCharts, *nVersions)
	fmt.Printf("populated %d versions of %d charts in %s (every other repository public)\n", *nCharts**nVersions, *nCharts, time.Since(start).Round(time.Millisecond))
	check(store.Close())

	// Cold: a new store (connections, statement caches) and new handlers (no index in
	// memory). The operating system's page cache stays warm. Two hubs on the one
	// database, as two replicas: one without auth, one with.
	store = open()
	defer store.Close()
	base, stop := serve(store, blobs, nil)
	defer stop()
	authBase, stopAuth := serve(store, blobs, benchAuth(store, member))
	defer stopAuth()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		check(err)
		check(pprof.StartCPUProfile(f))
	}
	for _, f := range []string{"index.yaml", "index.json"} {
		d, n, _ := get(base+"/charts/bench/"+f, "")
		fmt.Printf("%-10s cold                   %9s  %d bytes\n", f, d.Round(time.Microsecond), n)
	}
	d, n, _ := get(authBase+"/charts/bench/index.yaml", "member")
	fmt.Printf("%-10s cold, member (auth)    %9s  %d bytes\n", "index.yaml", d.Round(time.Microsecond), n)
	for _, c := range []struct{ name, base, user string }{
		{"no auth", base, ""}, {"anonymous", authBase, ""}, {"member", authBase, "member"},
	} {
		for _, f := range []string{"index.yaml", "index.json"} {
			var ds []time.Duration
			var tag string
			var n int
			for range *requests {
				d, size, et := get(c.base+"/charts/bench/"+f, c.user)
				ds, tag, n = append(ds, d), et, size
			}
			p50, p95 := pct(ds)
			fmt.Printf("%-10s warm %-10s  p50 %9s  p95 %9s  (%d requests, %d bytes)\n", f, c.name, p50.Round(time.Microsecond), p95.Round(time.Microsecond), *requests, n)
			ds = ds[:0]
			for range *requests {
				ds = append(ds, getIfNoneMatch(c.base+"/charts/bench/"+f, c.user, tag))
			}
			p50, p95 = pct(ds)
			fmt.Printf("%-10s 304  %-10s  p50 %9s  p95 %9s\n", f, c.name, p50.Round(time.Microsecond), p95.Round(time.Microsecond))
		}
	}

	if *cpuprofile != "" {
		pprof.StopCPUProfile()
	}

	// A new version is in the next answer: record one (not timed), then time the next
	// index of each hub.
	var ds, dsAuth []time.Duration
	for i := range *changes {
		addVersion(ctx, store, "bench/chart-1", "chart-1", fmt.Sprintf("50.0.%d", i))
		d, _, _ := get(base+"/charts/bench/index.yaml", "")
		ds = append(ds, d)
		d, _, _ = get(authBase+"/charts/bench/index.yaml", "member")
		dsAuth = append(dsAuth, d)
	}
	p50, p95 := pct(ds)
	fmt.Printf("index.yaml after a new version, no auth   p50 %9s  p95 %9s  (%d changes)\n", p50.Round(time.Microsecond), p95.Round(time.Microsecond), *changes)
	p50, p95 = pct(dsAuth)
	fmt.Printf("index.yaml after a new version, member    p50 %9s  p95 %9s\n", p50.Round(time.Microsecond), p95.Round(time.Microsecond))
	start = time.Now()
	upload(base+"/api/bench/charts", archive("chart-0", "99.0.0"))
	d, _, _ = get(base+"/charts/bench/index.yaml", "")
	fmt.Printf("new version: ChartMuseum upload + next index.yaml in %s (index alone %s)\n", time.Since(start).Round(time.Microsecond), d.Round(time.Microsecond))

	// Upload rates.
	start = time.Now()
	for i := range *uploads {
		upload(base+"/api/bench/charts", archive(fmt.Sprintf("cm-%d", i%50), fmt.Sprintf("1.0.%d", i)))
	}
	el := time.Since(start)
	fmt.Printf("ChartMuseum upload: %d charts in %s: %.0f charts/s\n", *uploads, el.Round(time.Millisecond), float64(*uploads)/el.Seconds())
	start = time.Now()
	for i := range *uploads {
		pushOCI(base, fmt.Sprintf("oci-%d", i%50), fmt.Sprintf("1.0.%d", i))
	}
	el = time.Since(start)
	fmt.Printf("OCI push:           %d charts in %s: %.0f charts/s\n", *uploads, el.Round(time.Millisecond), float64(*uploads)/el.Seconds())
	fmt.Printf("load average at end: %s\n", loadavg())
}

// loadavg is the machine's load average (1, 5 and 15 minutes).
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// setupAccounts makes the organisation "bench" with a team granted read on all of it,
// whose member is returned.
func setupAccounts(ctx context.Context, s *sqlstore.Store) accounts.User {
	_, err := s.CreateUser(ctx, accounts.User{Name: "owner", PasswordHash: "x"})
	check(err)
	_, err = s.CreateOrg(ctx, "bench", "owner")
	check(err)
	u, err := s.CreateUser(ctx, accounts.User{Name: "member", PasswordHash: "x"})
	check(err)
	check(s.CreateTeam(ctx, accounts.Team{Org: "bench", Name: "readers"}))
	check(s.AddTeamMember(ctx, "bench", "readers", "member"))
	check(s.SetTeamGrant(ctx, accounts.TeamGrant{Org: "bench", Team: "readers", Role: accounts.RoleRead}))
	return u
}

// benchAuth signs requests in by the X-Bench-User header (member), anonymous without.
func benchAuth(s *sqlstore.Store, member accounts.User) *chartrepo.Auth {
	return &chartrepo.Auth{
		Principal: func(_ http.ResponseWriter, r *http.Request) (*authz.Principal, error) {
			if r.Header.Get("X-Bench-User") == member.Name {
				return &authz.Principal{User: &member}, nil
			}
			return nil, nil
		},
		Policy: &authz.Policy{Store: s},
	}
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

// populate writes n×v chart manifests with their records into namespace "bench";
// every other repository is public.
func populate(ctx context.Context, s *sqlstore.Store, n, v int) {
	for c := range n {
		name := fmt.Sprintf("chart-%d", c)
		repo := "bench/" + name
		for i := range v {
			addVersion(ctx, s, repo, name, fmt.Sprintf("1.%d.%d", i/10, i%10))
		}
		if c%2 == 0 {
			check(s.SetRepositoryVisibility(ctx, repo, accounts.Public))
		}
	}
}

// addVersion writes the manifest of chart name version ver into repo, with its record.
func addVersion(ctx context.Context, s *sqlstore.Store, repo, name, ver string) {
	cfg := []byte(fmt.Sprintf(`{"apiVersion":"v2","name":%q,"version":%q,"appVersion":"v%s","description":"Benchmark chart %s, a web service with a database","keywords":["bench","web"],"maintainers":[{"name":"Ada","email":"ada@example.com"}],"type":"application"}`, name, ver, ver, name))
	tgz := []byte(repo + ver) // the index only needs its digest
	cd, td := digest.FromBytes(cfg), digest.FromBytes(tgz)
	for _, b := range []struct {
		d    digest.Digest
		size int
	}{{cd, len(cfg)}, {td, len(tgz)}} {
		check(s.PutBlob(ctx, metadata.Blob{Digest: b.d, Size: int64(b.size)}))
		check(s.LinkBlob(ctx, repo, b.d))
	}
	m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":%q,"digest":%q,"size":%d},"layers":[{"mediaType":%q,"digest":%q,"size":%d}]}`,
		charts.ConfigMediaType, cd, len(cfg), charts.ChartLayerMediaType, td, len(tgz)))
	md := digest.FromBytes(m)
	_, err := s.PutManifest(ctx, metadata.Manifest{Repository: repo, Digest: md, MediaType: "application/vnd.oci.image.manifest.v1+json",
		ArtifactType: charts.ConfigMediaType, Size: int64(len(m)), Payload: m},
		metadata.References{Blobs: []digest.Digest{cd, td}}, charts.TagOf(ver))
	check(err)
	v := chartstore.Version{Repository: repo, Digest: md, Name: name, Version: ver, AppVersion: "v" + ver,
		Description: "Benchmark chart", Keywords: []string{"bench", "web"}, Metadata: cfg, ChartDigest: td, ChartSize: int64(len(tgz)),
		CreatedAt: time.Now()}
	check(chartrepo.IndexEntries(&v)) // as the chart hook records them
	check(s.RecordChart(ctx, v))
}

// serve runs the registry and the chart repository, without auth, on loopback.
func serve(s *sqlstore.Store, blobs blobstore.Store, auth *chartrepo.Auth) (string, func()) {
	hook := &chartrepo.Hook{Store: s, Blobs: blobs}
	reg := registry.New(registry.Options{Blobs: blobs, Meta: s, Artifacts: hook})
	ch := chartrepo.New(chartrepo.Options{Store: s, Blobs: blobs, Registry: reg, Auth: auth})
	mux := http.NewServeMux()
	mux.Handle("/v2/", reg)
	mux.Handle("/charts/", ch)
	mux.Handle("/api/", ch)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }
}

func get(url, user string) (time.Duration, int, string) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if user != "" {
		req.Header.Set("X-Bench-User", user)
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	check(err)
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		log.Fatalf("GET %s: %s", url, resp.Status)
	}
	return time.Since(start), int(n), resp.Header.Get("ETag")
}

func getIfNoneMatch(url, user, tag string) time.Duration {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if user != "" {
		req.Header.Set("X-Bench-User", user)
	}
	req.Header.Set("If-None-Match", tag)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	check(err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		log.Fatalf("If-None-Match %s: %s", url, resp.Status)
	}
	return time.Since(start)
}

func pct(ds []time.Duration) (p50, p95 time.Duration) {
	slices.Sort(ds)
	return ds[len(ds)/2], ds[len(ds)*95/100]
}

// archive makes a small valid chart archive.
func archive(name, version string) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for f, c := range map[string]string{
		"Chart.yaml":  fmt.Sprintf("apiVersion: v2\nname: %s\nversion: %s\n", name, version),
		"values.yaml": "replicas: 1\n",
	} {
		check(tw.WriteHeader(&tar.Header{Name: name + "/" + f, Mode: 0o644, Size: int64(len(c))}))
		_, err := tw.Write([]byte(c))
		check(err)
	}
	check(tw.Close())
	check(zw.Close())
	return buf.Bytes()
}

func upload(url string, tgz []byte) {
	resp, err := http.Post(url, "application/gzip", bytes.NewReader(tgz))
	check(err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		log.Fatalf("upload: %s %s", resp.Status, body)
	}
}

// pushOCI pushes a chart as helm push does: config, layer, manifest.
func pushOCI(base, name, version string) {
	a, err := charts.NewArtifact(archive(name, version), nil, time.Time{})
	check(err)
	repo := "bench/" + name
	for _, b := range a.Blobs() {
		resp, err := http.Post(base+"/v2/"+repo+"/blobs/uploads/?digest="+b.Desc.Digest.String(), "application/octet-stream", bytes.NewReader(b.Data))
		check(err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			log.Fatalf("blob: %s", resp.Status)
		}
	}
	req, _ := http.NewRequest(http.MethodPut, base+"/v2/"+repo+"/manifests/"+charts.TagOf(version), bytes.NewReader(a.Manifest))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	check(err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		var e any
		_ = json.Unmarshal(body, &e)
		log.Fatalf("manifest: %s %v", resp.Status, e)
	}
}
