package web

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/hubctl/hubctl/internal/charts"
	"github.com/hubctl/hubctl/internal/charts/chartstore"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/reference"
	digest "github.com/opencontainers/go-digest"
)

// Chart and artifact pages (docs/design/web.md, slice 5): /NS/REPO/-/charts/VERSION
// shows a helm chart version beside the repository's other versions, with its
// values.yaml and README read from the chart archive, and the commands that install
// it from the classic index and over OCI; /NS/REPO/-/artifacts/REF shows an OCI
// artifact's type, files and the commands that pull it. The README is rendered as
// the repository readme is (renderMarkdown: goldmark without raw HTML, then the
// allow-list sanitiser), so nothing in it can run.

// ChartVersions reads the chart records of the store (chartstore.Store's reads).
type ChartVersions interface {
	Charts(ctx context.Context, q chartstore.Query) ([]chartstore.Version, error)
}

const (
	// maxChartArchive bounds the compressed chart a page reads.
	maxChartArchive = 16 << 20
	// maxChartExpand bounds what a page decompresses of it (a gzip bomb stops here).
	maxChartExpand = 64 << 20
	// maxChartFile bounds values.yaml and the README as shown.
	maxChartFile = 512 << 10
	// maxChartEntries bounds the tar entries read.
	maxChartEntries = 10000
)

func init() {
	pageNames = append(pageNames, "chart", "artifact")
}

// chartVersionRow is one version in the list beside a chart.
type chartVersionRow struct {
	Version, AppVersion, URL string
	Current, Deprecated      bool
}

type chartPage struct {
	basePage
	Repository, Namespace, Short string
	Chart                        chartstore.Version
	Versions                     []chartVersionRow
	Install                      []pullCommand
	Values, Readme               string
	ReadmeHTML                   template.HTML
	ValuesCut, ReadmeCut         bool
}

// repoSub routes /NS/REPO/-/charts/VERSION and /NS/REPO/-/artifacts/REF; it
// reports false for another kind of sub-page.
func (h *Handler) repoSub(w http.ResponseWriter, r *http.Request, repo, kind, ref string) bool {
	switch kind {
	case "charts":
		h.chartPage(w, r, repo, ref)
	case "artifacts":
		h.artifactPage(w, r, repo, ref)
	default:
		return false
	}
	return true
}

// chartPage shows version of the chart in repo, to whoever may pull repo.
func (h *Handler) chartPage(w http.ResponseWriter, r *http.Request, repo, version string) {
	ctx := r.Context()
	if !h.mayView(w, r, repo) {
		return
	}
	if h.o.Charts == nil {
		h.notFound(w, r)
		return
	}
	view, err := h.o.Views.RetentionView(ctx, repo)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	var ds []digest.Digest
	for _, t := range view.Tags {
		if !slices.Contains(ds, t.Digest) {
			ds = append(ds, t.Digest)
		}
	}
	var versions []chartstore.Version
	if len(ds) > 0 {
		if versions, err = h.o.Charts.Charts(ctx, chartstore.Query{Manifests: ds}); err != nil {
			h.internal(w, r, err)
			return
		}
	}
	versions = slices.DeleteFunc(versions, func(v chartstore.Version) bool { return v.Repository != repo })
	cur := slices.IndexFunc(versions, func(v chartstore.Version) bool { return v.Version == version })
	if cur < 0 {
		h.notFound(w, r)
		return
	}
	rw := row(repo)
	p := chartPage{basePage: h.base(r, repo+" "+version), Repository: repo, Namespace: rw.Namespace, Short: rw.Short,
		Chart: versions[cur]}
	slices.SortFunc(versions, func(a, b chartstore.Version) int { return b.CreatedAt.Compare(a.CreatedAt) })
	for _, v := range versions {
		p.Versions = append(p.Versions, chartVersionRow{Version: v.Version, AppVersion: v.AppVersion, Deprecated: v.Deprecated,
			Current: v.Version == version, URL: "/" + repo + "/-/charts/" + url.PathEscape(v.Version)})
	}
	host, scheme := h.registryHost(r), "http"
	if h.secure(r) {
		scheme = "https"
	}
	plain := ""
	if scheme == "http" {
		plain = " --plain-http"
	}
	ch := p.Chart
	if strings.Count(repo, "/") == 1 {
		// The classic index of a namespace lists its charts named NAMESPACE/CHART.
		p.Install = append(p.Install,
			pullCommand{"helm repo", "helm repo add " + rw.Namespace + " " + scheme + "://" + host + "/charts/" + rw.Namespace},
			pullCommand{"helm install", "helm install " + shellWords([]string{ch.Name, rw.Namespace + "/" + ch.Name, "--version", ch.Version})})
	}
	// Chart.yaml's name and version are the pusher's words: quoted where a shell
	// would read them as more than a word.
	p.Install = append(p.Install,
		pullCommand{"helm pull", "helm pull oci://" + host + "/" + repo + " --version " + shellWords([]string{ch.Version}) + plain},
		pullCommand{"hubctl", "hubctl chart pull " + host + "/" + repo + ":" + ch.Tag()})
	files, err := h.chartFiles(ctx, repo, ch)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	p.Values, p.ValuesCut = files["values.yaml"].text, files["values.yaml"].cut
	p.Readme, p.ReadmeCut = files["readme"].text, files["readme"].cut
	if p.Readme != "" {
		p.ReadmeHTML = renderMarkdown(p.Readme)
	}
	h.render(w, r, http.StatusOK, "chart", p)
}

// chartFile is a file of a chart archive as a page shows it.
type chartFile struct {
	text string
	cut  bool
}

// chartFiles reads values.yaml and README.md (any case) at the top of v's chart
// archive, bounded; a missing or unreadable archive gives none.
func (h *Handler) chartFiles(ctx context.Context, repo string, v chartstore.Version) (map[string]chartFile, error) {
	out := map[string]chartFile{}
	if v.ChartDigest == "" || v.ChartSize > maxChartArchive {
		return out, nil
	}
	b, err := h.o.Meta.RepositoryBlob(ctx, repo, v.ChartDigest)
	if errors.Is(err, metadata.ErrBlobNotFound) {
		return out, nil
	} else if err != nil {
		return nil, err
	}
	rc, _, err := h.o.Blobs.Open(ctx, v.ChartDigest, b.Location)
	if err != nil {
		h.o.Log.WarnContext(ctx, "web: open chart archive", "repo", repo, "digest", v.ChartDigest, "err", err)
		return out, nil
	}
	defer rc.Close()
	zr, err := gzip.NewReader(io.LimitReader(rc, maxChartArchive))
	if err != nil {
		return out, nil
	}
	defer zr.Close()
	tr := tar.NewReader(io.LimitReader(zr, maxChartExpand))
	for i := 0; i < maxChartEntries && len(out) < 2; i++ {
		hdr, err := tr.Next()
		if err != nil {
			break // the end, or a broken archive: show what was found
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		dir, name := path.Split(path.Clean(strings.TrimPrefix(hdr.Name, "./")))
		if strings.Count(dir, "/") != 1 {
			continue // only the chart's own top-level files, not its subcharts'
		}
		key := ""
		switch {
		case name == "values.yaml":
			key = "values.yaml"
		case strings.EqualFold(name, "readme.md"):
			key = "readme"
		default:
			continue
		}
		if _, seen := out[key]; seen {
			continue
		}
		data, err := io.ReadAll(io.LimitReader(tr, maxChartFile+1))
		if err != nil {
			break
		}
		f := chartFile{cut: len(data) > maxChartFile}
		if f.cut {
			data = data[:maxChartFile]
		}
		f.text = strings.ToValidUTF8(string(data), "\uFFFD")
		out[key] = f
	}
	return out, nil
}

// artifactFile is a layer of an artifact.
type artifactFile struct {
	Title, MediaType, Digest string
	Size                     int64
}

type artifactPage struct {
	basePage
	Repository, Namespace, Short string
	Ref, Digest, MediaType       string
	ArtifactType                 string
	Subject                      string
	SubjectURL                   string
	Files                        []artifactFile
	Size                         int64
	Annotations                  []keyValue
	Pull                         []pullCommand
	ChartURL                     string
}

// artifactDoc is the manifest of an artifact, read leniently.
type artifactDoc struct {
	manifestDoc
	Subject *descriptor `json:"subject"`
}

// artifactPage shows the manifest ref (a tag or a digest) of repo as an artifact.
func (h *Handler) artifactPage(w http.ResponseWriter, r *http.Request, repo, ref string) {
	ctx := r.Context()
	if !h.mayView(w, r, repo) {
		return
	}
	var err error
	var m metadata.Manifest
	sep := ":"
	if d, perr := reference.ParseDigest(ref); perr == nil {
		m, err = h.o.Meta.GetManifest(ctx, repo, d)
		sep = "@"
	} else if reference.IsTag(ref) {
		m, err = h.o.Meta.GetManifestByTag(ctx, repo, ref)
	} else {
		h.notFound(w, r)
		return
	}
	if errors.Is(err, metadata.ErrTagNotFound) || errors.Is(err, metadata.ErrManifestNotFound) || errors.Is(err, metadata.ErrRepositoryNotFound) {
		h.notFound(w, r)
		return
	} else if err != nil {
		h.internal(w, r, err)
		return
	}
	var doc artifactDoc
	if err := json.Unmarshal(m.Payload, &doc); err != nil || doc.isIndex() {
		h.notFound(w, r) // an index is not an artifact: its tag page shows it
		return
	}
	rw := row(repo)
	p := artifactPage{basePage: h.base(r, repo+sep+ref), Repository: repo, Namespace: rw.Namespace, Short: rw.Short, Ref: ref,
		Digest: m.Digest.String(), MediaType: m.MediaType, ArtifactType: doc.ArtifactType,
		Annotations: sortedPairs(doc.Annotations), Size: contentSize(doc.manifestDoc)}
	if p.ArtifactType == "" && doc.Config != nil {
		p.ArtifactType = doc.Config.MediaType
	}
	if doc.Subject != nil {
		p.Subject = doc.Subject.Digest
		if _, err := reference.ParseDigest(doc.Subject.Digest); err == nil {
			p.SubjectURL = "/" + repo + "/-/manifests/" + doc.Subject.Digest
		}
	}
	for _, l := range doc.Layers {
		p.Files = append(p.Files, artifactFile{Title: l.Annotations["org.opencontainers.image.title"], MediaType: l.MediaType,
			Digest: l.Digest, Size: l.Size})
	}
	host := h.registryHost(r)
	full := host + "/" + repo + sep + ref
	plain := ""
	if !h.secure(r) {
		plain = " --plain-http"
	}
	p.Pull = []pullCommand{{"hubctl", "hubctl artifact pull " + full + " -d out/"}, {"oras", "oras pull" + plain + " -o out/ " + full}}
	if p.ArtifactType == charts.ConfigMediaType && sep == ":" {
		p.ChartURL = "/" + repo + "/-/charts/" + url.PathEscape(strings.ReplaceAll(ref, "_", "+"))
	}
	if !utf8.ValidString(p.ArtifactType) {
		p.ArtifactType = strings.ToValidUTF8(p.ArtifactType, "\uFFFD")
	}
	h.render(w, r, http.StatusOK, "artifact", p)
}
