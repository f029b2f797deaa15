// Package chartclient is the work behind `hubctl chart`: packaging a chart directory
// with the helm v4 SDK, pushing and pulling charts as OCI artifacts through the
// transfer engine (same credentials, retries and progress as images), resolving
// versions and semver ranges from tags, showing a chart, and listing and searching the
// charts of a hub.
package chartclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"sigs.k8s.io/yaml"

	"github.com/hubctl/hubctl/internal/artifact"
	"github.com/hubctl/hubctl/internal/charts"
	"github.com/hubctl/hubctl/internal/distclient"
	"github.com/hubctl/hubctl/internal/hubclient"
	"github.com/hubctl/hubctl/internal/transfer"
)

// Client runs chart actions against registries.
type Client struct {
	Engine *transfer.Engine
	// Hub returns the hub API client of a registry host, for listing and search.
	Hub func(host string) (*hubclient.Client, error)
}

// PackageOptions tune Package.
type PackageOptions struct {
	// Version and AppVersion, when set, replace Chart.yaml's.
	Version, AppVersion string
	// Destination is the directory the archive is written to ("" : the current one).
	Destination string
	// Sign, when set, signs the archive: NAME-VERSION.tgz.prov beside it.
	Sign *SignOptions
}

// Package archives the chart in dir as helm package does and returns the archive's
// path (DEST/NAME-VERSION.tgz), signed when o.Sign asks (FILE.prov).
func Package(dir string, o PackageOptions) (string, error) {
	ch, err := loader.LoadDir(dir)
	if err != nil {
		return "", fmt.Errorf("load chart %s: %w", dir, err)
	}
	if o.Version != "" {
		ch.Metadata.Version = o.Version
	}
	if o.AppVersion != "" {
		ch.Metadata.AppVersion = o.AppVersion
	}
	if _, err := charts.ParseVersion(ch.Metadata.Version); err != nil {
		return "", fmt.Errorf("chart %s: version %q is not semver", dir, ch.Metadata.Version)
	}
	dest := o.Destination
	if dest == "" {
		dest = "."
	}
	p, err := chartutil.Save(ch, dest)
	if err != nil {
		return "", fmt.Errorf("package %s: %w", dir, err)
	}
	if o.Sign != nil {
		if _, err := Sign(p, *o.Sign); err != nil {
			_ = os.Remove(p)
			return "", err
		}
	}
	return p, nil
}

// trimOCI removes the oci:// scheme helm uses for registry references.
func trimOCI(s string) string { return strings.TrimPrefix(s, "oci://") }

// PushResult is what Push stored.
type PushResult struct {
	Reference string // HOST/NS/NAME:TAG@DIGEST
	Digest    digest.Digest
	Name      string
	Version   string
	Prov      bool
}

// Push pushes the chart archive at file (with FILE.prov when it exists) to the
// namespace dest (oci://HOST/NS, or HOST/NS), as HOST/NS/NAME:VERSION with '+'
// written '_'. The chart is checked first: nothing is sent for an archive that is not
// a valid chart.
func (c *Client) Push(ctx context.Context, file, dest string, o transfer.Options) (PushResult, error) {
	tgz, err := os.ReadFile(file)
	if err != nil {
		return PushResult{}, err
	}
	prov, err := os.ReadFile(file + ".prov")
	if errors.Is(err, os.ErrNotExist) {
		prov = nil
	} else if err != nil {
		return PushResult{}, err
	}
	a, err := charts.NewArtifact(tgz, prov, time.Time{})
	if err != nil {
		return PushResult{}, fmt.Errorf("%s: %w", file, err)
	}
	base := strings.TrimSuffix(trimOCI(dest), "/")
	if _, err := distclient.ParseRepo(base + "/" + a.Meta.Name); err != nil {
		return PushResult{}, fmt.Errorf("destination %s: %w", dest, err)
	}
	ref := base + "/" + a.Meta.Name + ":" + charts.TagOf(a.Meta.Version)
	dl, err := transfer.ParseLocation(ref)
	if err != nil {
		return PushResult{}, err
	}
	var blobs []artifact.Blob
	for _, b := range a.Blobs() {
		blobs = append(blobs, artifact.BytesBlob(b.Desc.MediaType, b.Data))
	}
	src := artifact.NewSource(ocispec.MediaTypeImageManifest, a.Manifest, blobs)
	if o.Label == "" {
		o.Label = ref
	}
	res, err := c.Engine.CopyLocations(ctx, transfer.Custom(file, src, nil), dl, o)
	if err != nil {
		return PushResult{}, err
	}
	return PushResult{Reference: res.Reference, Digest: res.Digest, Name: a.Meta.Name, Version: a.Meta.Version, Prov: prov != nil}, nil
}

// ParseChartRef reads oci://HOST/NS/NAME[:VERSION] (oci:// optional) into the
// repository and the version it names ("" when none; a tag's '_' is read as '+').
func ParseChartRef(s string) (distclient.Repo, string, error) {
	ref, err := distclient.ParseRef(trimOCI(s))
	if err != nil {
		return distclient.Repo{}, "", err
	}
	if ref.Digest != "" {
		return distclient.Repo{}, "", fmt.Errorf("%s: name a chart version with --version, not a digest", s)
	}
	v := ""
	if strings.Contains(path.Base(trimOCI(s)), ":") {
		v = charts.VersionOf(ref.Tag)
	}
	return ref.Repo, v, nil
}

// Versions lists the chart versions of repo: its tags that are semver (with '_' read
// as '+'), newest first.
func (c *Client) Versions(ctx context.Context, repo distclient.Repo) ([]string, error) {
	tags, err := c.Engine.Client.Tags(ctx, repo)
	if err != nil {
		return nil, err
	}
	var vs []string
	for _, t := range tags {
		v := charts.VersionOf(t)
		if _, err := charts.ParseVersion(v); err == nil {
			vs = append(vs, v)
		}
	}
	charts.SortVersions(vs)
	return vs, nil
}

// Resolve picks the version of repo that want names: an exact version, or the highest
// matching a semver range ("" : the highest stable one).
func (c *Client) Resolve(ctx context.Context, repo distclient.Repo, want string) (string, error) {
	if want != "" {
		if _, err := charts.ParseVersion(want); err == nil && !strings.ContainsAny(want, "^~<>=*xX| ,") {
			return charts.VersionOf(want), nil // an exact version: no listing needed
		}
	}
	vs, err := c.Versions(ctx, repo)
	if err != nil {
		return "", err
	}
	v, err := charts.Select(vs, want)
	if err != nil {
		return "", fmt.Errorf("%s: %w (versions: %s)", repo, err, strings.Join(head(vs, 10), ", "))
	}
	return v, nil
}

func head(vs []string, n int) []string {
	if len(vs) > n {
		return append(vs[:n:n], "…")
	}
	return vs
}

// PullResult is what Pull wrote.
type PullResult struct {
	Reference string // HOST/NS/NAME:TAG@DIGEST
	Digest    digest.Digest
	Version   string
	Path      string // the archive
	ProvPath  string // the provenance file, "" without one
	// SignedBy is the signer of a verified chart (PullOptions.VerifyKeyring).
	SignedBy string `json:",omitempty"`
}

// PullOptions tune Pull.
type PullOptions struct {
	// VerifyKeyring, when set, makes Pull verify the chart's provenance file with the
	// public keys of this keyring, as 'helm pull --verify' does: a chart without one,
	// or whose signature or digest does not verify, is refused and not left in the
	// directory.
	VerifyKeyring string
}

// Pull fetches the chart version of ref (oci://HOST/NS/NAME) that version names (an
// exact version or a semver range; a version in ref is used when version is empty)
// into dir as NAME-VERSION.tgz, with NAME-VERSION.tgz.prov when the chart has one.
func (c *Client) Pull(ctx context.Context, ref, version, dir string, opts PullOptions, o transfer.Options) (PullResult, error) {
	out, err := c.pull(ctx, ref, version, dir, o)
	if err != nil || opts.VerifyKeyring == "" {
		return out, err
	}
	refuse := func(err error) (PullResult, error) {
		_ = os.Remove(out.Path)
		if out.ProvPath != "" {
			_ = os.Remove(out.ProvPath)
		}
		return PullResult{}, err
	}
	if out.ProvPath == "" {
		return refuse(fmt.Errorf("%s has no provenance file to verify", out.Reference))
	}
	v, err := Verify(out.Path, out.ProvPath, opts.VerifyKeyring)
	if err != nil {
		return refuse(err)
	}
	out.SignedBy = v.SignedBy
	return out, nil
}

func (c *Client) pull(ctx context.Context, ref, version, dir string, o transfer.Options) (PullResult, error) {
	repo, inRef, err := ParseChartRef(ref)
	if err != nil {
		return PullResult{}, err
	}
	if version == "" {
		version = inRef
	}
	v, err := c.Resolve(ctx, repo, version)
	if err != nil {
		return PullResult{}, err
	}
	if dir == "" {
		dir = "."
	}
	sink, err := artifact.NewSink(dir)
	if err != nil {
		return PullResult{}, err
	}
	defer sink.Cleanup()
	src := repo.String() + ":" + charts.TagOf(v)
	sl, err := transfer.ParseLocation(src)
	if err != nil {
		return PullResult{}, err
	}
	if o.Label == "" {
		o.Label = src
	}
	res, err := c.Engine.CopyLocations(ctx, sl, transfer.Custom(dir, nil, sink), o)
	if err != nil {
		return PullResult{}, err
	}
	_, raw := sink.Root()
	m, err := artifact.ParseManifest(raw)
	if err != nil {
		return PullResult{}, err
	}
	if !charts.IsChartManifest(m.Config.MediaType) {
		return PullResult{}, fmt.Errorf("%s is not a helm chart (config %s)", src, m.Config.MediaType)
	}
	name := path.Base(repo.Path)
	out := PullResult{Reference: repo.String() + ":" + charts.TagOf(v) + "@" + res.Digest.String(), Digest: res.Digest, Version: v}
	for _, l := range m.Layers {
		switch {
		case charts.IsChartLayer(l.MediaType):
			out.Path = filepath.Join(dir, charts.FileName(name, v))
			if err := os.Rename(sink.BlobPath(l.Digest), out.Path); err != nil {
				return PullResult{}, err
			}
		case l.MediaType == charts.ProvLayerMediaType:
			out.ProvPath = filepath.Join(dir, charts.FileName(name, v)+".prov")
			if err := os.Rename(sink.BlobPath(l.Digest), out.ProvPath); err != nil {
				return PullResult{}, err
			}
		}
	}
	if out.Path == "" {
		return PullResult{}, fmt.Errorf("%s has no chart layer", src)
	}
	return out, nil
}

// ShowResult is a chart's description.
type ShowResult struct {
	Reference string
	Version   string
	ChartYAML []byte // Chart.yaml as written in the archive
	Values    []byte // values.yaml, nil without one
	Readme    []byte // README.md (or README), nil without one
}

// Show reads the chart version of ref that version names (as Pull) without writing
// anything.
func (c *Client) Show(ctx context.Context, ref, version string) (ShowResult, error) {
	repo, inRef, err := ParseChartRef(ref)
	if err != nil {
		return ShowResult{}, err
	}
	if version == "" {
		version = inRef
	}
	v, err := c.Resolve(ctx, repo, version)
	if err != nil {
		return ShowResult{}, err
	}
	r := distclient.Ref{Repo: repo, Tag: charts.TagOf(v)}
	_, raw, err := c.Engine.Client.GetManifest(ctx, r)
	if err != nil {
		return ShowResult{}, err
	}
	m, err := artifact.ParseManifest(raw)
	if err != nil {
		return ShowResult{}, err
	}
	var layer *ocispec.Descriptor
	for i := range m.Layers {
		if charts.IsChartLayer(m.Layers[i].MediaType) {
			layer = &m.Layers[i]
		}
	}
	if !charts.IsChartManifest(m.Config.MediaType) || layer == nil {
		return ShowResult{}, fmt.Errorf("%s is not a helm chart", r)
	}
	if layer.Size > charts.MaxArchiveSize {
		return ShowResult{}, fmt.Errorf("%s: chart archive of %d bytes is too large to show", r, layer.Size)
	}
	rc, err := c.Engine.Client.GetBlob(ctx, repo, layer.Digest)
	if err != nil {
		return ShowResult{}, err
	}
	defer rc.Close()
	tgz, err := io.ReadAll(io.LimitReader(rc, charts.MaxArchiveSize+1))
	if err != nil {
		return ShowResult{}, err
	}
	if digest.FromBytes(tgz) != layer.Digest {
		return ShowResult{}, fmt.Errorf("%s: chart archive does not match its digest", r)
	}
	ch, err := charts.LoadArchive(tgz)
	if err != nil {
		return ShowResult{}, err
	}
	out := ShowResult{Reference: r.String(), Version: v}
	for _, f := range ch.Raw {
		switch f.Name {
		case "Chart.yaml":
			out.ChartYAML = f.Data
		case "values.yaml":
			out.Values = f.Data
		}
	}
	for _, f := range ch.Files {
		if n := strings.ToLower(f.Name); (n == "readme.md" || n == "readme" || n == "readme.txt") && out.Readme == nil {
			out.Readme = f.Data
		}
	}
	if out.ChartYAML == nil {
		if out.ChartYAML, err = yaml.Marshal(ch.Metadata); err != nil {
			return ShowResult{}, err
		}
	}
	return out, nil
}

// Search lists the charts of host (in namespace ns when set) whose name, description
// or keywords hold term (every chart when term is empty), that the login may pull.
func (c *Client) Search(ctx context.Context, host, ns, term string) ([]charts.Summary, error) {
	hc, err := c.Hub(host)
	if err != nil {
		return nil, err
	}
	q := "/charts/-/search?q=" + urlQuery(term)
	if ns != "" {
		q += "&namespace=" + urlQuery(ns)
	}
	var out []charts.Summary
	if err := hc.GetPath(ctx, q, &out); err != nil {
		return nil, fmt.Errorf("charts of %s: %w", host, err)
	}
	return out, nil
}

func urlQuery(s string) string {
	var b bytes.Buffer
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
