package kube

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"helm.sh/helm/v4/pkg/action"
	ci "helm.sh/helm/v4/pkg/chart"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	repo "helm.sh/helm/v4/pkg/repo/v1"

	"github.com/hubctl/hubctl/internal/charts/chartclient"
	"github.com/hubctl/hubctl/internal/deploy"
	"github.com/hubctl/hubctl/internal/transfer"
)

// Bounds of what a classic repository may send.
const (
	MaxIndexSize = 32 << 20
	MaxChartSize = 64 << 20
)

// loadChart fetches and loads the spec's chart: oci://HOST/REPO/CHART through hubctl's
// registry client, NAME from the classic repository Repo, or a local chart
// directory or archive (a path; the deploy file's parser does not offer it yet, the
// package does for tests and tools). done removes what was fetched.
func (h *Helm) loadChart(ctx context.Context, k *deploy.Kubernetes) (ch *chart.Chart, done func(), err error) {
	done = func() {}
	var file string
	switch {
	case strings.HasPrefix(k.Chart, "oci://"):
		if h.o.Charts == nil {
			return nil, done, fmt.Errorf("chart %s: this hubctl has no registry client for oci:// charts", k.Chart)
		}
		dir, err := os.MkdirTemp(h.o.TempDir, "hubctl-chart-")
		if err != nil {
			return nil, done, err
		}
		done = func() { os.RemoveAll(dir) }
		res, err := h.o.Charts.Pull(ctx, k.Chart, k.Version, dir, chartclient.PullOptions{}, transfer.Options{})
		if err != nil {
			done()
			return nil, func() {}, fmt.Errorf("chart %s: %w", k.Chart, err)
		}
		file = res.Path
	case k.Repo != "":
		dir, err := os.MkdirTemp(h.o.TempDir, "hubctl-chart-")
		if err != nil {
			return nil, done, err
		}
		done = func() { os.RemoveAll(dir) }
		file, err = h.fetchFromRepo(ctx, k.Repo, k.Chart, k.Version, dir)
		if err != nil {
			done()
			return nil, func() {}, fmt.Errorf("chart %s from %s: %w", k.Chart, k.Repo, err)
		}
	default:
		file = strings.TrimPrefix(k.Chart, "file://")
		if _, err := os.Stat(file); err != nil {
			return nil, done, fmt.Errorf("chart %s: not oci://…, not a name with repo, and not a local chart: %w", k.Chart, err)
		}
	}
	ch, err = loader.Load(file)
	if err != nil {
		done()
		return nil, func() {}, fmt.Errorf("chart %s: %w", k.Chart, err)
	}
	if k.Version != "" && !strings.HasPrefix(k.Chart, "oci://") && k.Repo == "" && ch.Metadata.Version != k.Version {
		done()
		return nil, func() {}, fmt.Errorf("chart %s is version %s, not %s", k.Chart, ch.Metadata.Version, k.Version)
	}
	if deps := ch.Metadata.Dependencies; len(deps) > 0 {
		reqs := make([]ci.Dependency, len(deps))
		for i, d := range deps {
			reqs[i] = d
		}
		if err := action.CheckDependencies(ch, reqs); err != nil {
			done()
			return nil, func() {}, fmt.Errorf("chart %s: %w", k.Chart, err)
		}
	}
	return ch, done, nil
}

// fetchFromRepo downloads chart name at version (exact, a semver range, or "" for the
// newest stable) from the classic repository at base into dir, checking the
// archive's digest against the index.
func (h *Helm) fetchFromRepo(ctx context.Context, base, name, version, dir string) (string, error) {
	bu, err := url.Parse(base)
	if err != nil || (bu.Scheme != "http" && bu.Scheme != "https") || bu.Host == "" {
		return "", errors.New("the repository is not an http(s):// URL")
	}
	if bu.User != nil {
		return "", errors.New("the repository URL carries credentials: log in with hubctl login instead")
	}
	indexURL := strings.TrimSuffix(base, "/") + "/index.yaml"
	idxFile := filepath.Join(dir, "index.yaml")
	if _, err := h.download(ctx, bu, indexURL, idxFile, MaxIndexSize); err != nil {
		return "", err
	}
	idx, err := repo.LoadIndexFile(idxFile)
	if err != nil {
		return "", fmt.Errorf("index.yaml: %w", err)
	}
	idx.SortEntries()
	cv, err := idx.Get(name, version)
	if err != nil {
		if version == "" {
			return "", fmt.Errorf("no stable version in the repository's index: %w", err)
		}
		return "", fmt.Errorf("version %q: %w", version, err)
	}
	if len(cv.URLs) == 0 {
		return "", fmt.Errorf("%s %s has no URL in the index", name, cv.Version)
	}
	u, err := repo.ResolveReferenceURL(base, cv.URLs[0])
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", name, cv.Version, err)
	}
	file := filepath.Join(dir, name+"-"+path.Base(cv.Version)+".tgz")
	sum, err := h.download(ctx, bu, u, file, MaxChartSize)
	if err != nil {
		return "", err
	}
	if want := strings.TrimPrefix(cv.Digest, "sha256:"); want != "" && !strings.EqualFold(want, sum) {
		return "", fmt.Errorf("%s %s: the archive's sha256 is %s, the index says %s", name, cv.Version, sum, want)
	}
	return file, nil
}

// download GETs u into file (at most max bytes) and answers its sha256. The
// repository's credentials go only to its own scheme, host and port.
func (h *Helm) download(ctx context.Context, base *url.URL, u, file string, max int64) (string, error) {
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		return "", fmt.Errorf("%q is not an http(s):// URL", u)
	}
	if pu.User != nil {
		return "", fmt.Errorf("%s: URLs with credentials are refused", pu.Redacted())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	if h.o.RepoCredentials != nil && pu.Scheme == base.Scheme && pu.Host == base.Host {
		c, err := h.o.RepoCredentials.Resolve(base.Host)
		if err != nil {
			return "", err
		}
		switch {
		case c.RegistryToken != "":
			req.Header.Set("Authorization", "Bearer "+c.RegistryToken)
		case c.Username != "" || c.Password != "":
			req.SetBasicAuth(c.Username, c.Password)
		}
	}
	client := *h.o.HTTPClient
	// a redirect elsewhere must not carry the repository's login
	client.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("too many redirects")
		}
		if r.URL.Scheme != base.Scheme || r.URL.Host != base.Host {
			r.Header.Del("Authorization")
		}
		return nil
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", pu.Redacted(), resp.Status)
	}
	f, err := os.OpenFile(file, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", err
	}
	hash := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, hash), io.LimitReader(resp.Body, max+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", pu.Redacted(), err)
	}
	if n > max {
		return "", fmt.Errorf("GET %s: larger than %d MiB", pu.Redacted(), max>>20)
	}
	return hex.EncodeToString(hash.Sum(nil)), nil
}
