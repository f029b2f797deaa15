package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"path"
	"time"
)

// Templates and assets are embedded: the binary is the whole UI.
//
//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pageNames are the pages; each is templates/NAME.html on top of layout.html.
var pageNames = []string{"error", "explore", "login", "manifest", "namespace", "repo", "settings", "tokens"}

// pageTemplate is one page's parsed template set.
type pageTemplate struct{ t *template.Template }

func (p *pageTemplate) execute(w io.Writer, data any) error {
	return p.t.ExecuteTemplate(w, "layout", data)
}

// assets are the static files with their content hashes: pages link them as
// /static/NAME?v=HASH, so a browser may cache them for good and still sees a change.
type assets struct {
	CSS, JS string // URLs with the hash
	files   map[string]asset
}

type asset struct {
	data []byte
	hash string
}

func loadAssets() (assets, error) {
	a := assets{files: map[string]asset{}}
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		a.files[path.Base(p)] = asset{data: b, hash: hex.EncodeToString(sum[:6])}
		return nil
	})
	if err != nil {
		return a, fmt.Errorf("web: static assets: %w", err)
	}
	url := func(name string) string { return "/static/" + name + "?v=" + a.files[name].hash }
	a.CSS, a.JS = url("style.css"), url("copy.js")
	return a, nil
}

// static serves an embedded asset: cached for a year when asked for by its current
// hash, briefly otherwise.
func (h *Handler) static(w http.ResponseWriter, r *http.Request) {
	f, ok := h.assets.files[r.PathValue("file")]
	if !ok {
		h.notFound(w, r)
		return
	}
	if r.URL.Query().Get("v") == f.hash {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "public, max-age=300")
	}
	w.Header().Set("ETag", `"`+f.hash+`"`)
	http.ServeContent(w, r, r.PathValue("file"), time.Time{}, bytes.NewReader(f.data))
}

// funcs are the helpers templates may call; none returns unescaped HTML.
var funcs = template.FuncMap{
	"short": shortDigest,
	"bytes": humanBytes,
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
}

func parsePages(a assets) (map[string]*pageTemplate, error) {
	pages := make(map[string]*pageTemplate, len(pageNames))
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("web: parse template %s: %w", name, err)
		}
		pages[name] = &pageTemplate{t: t}
	}
	return pages, nil
}

// humanBytes shows a size in binary units, one decimal.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
