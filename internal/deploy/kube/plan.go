package kube

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"helm.sh/helm/v4/pkg/action"
	ri "helm.sh/helm/v4/pkg/release"
	rcommon "helm.sh/helm/v4/pkg/release/common"
	release "helm.sh/helm/v4/pkg/release/v1"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	"sigs.k8s.io/yaml"

	"github.com/hubctl/hubctl/internal/deploy"
)

// Plan renders the manifests Upgrade would apply, with image pinned, as a dry run
// that reads from the cluster (helm's server dry-run: lookups and the API server's
// OpenAPI validation) and writes nothing, and answers a unified diff of them against
// the deployed release's manifests ("" when nothing would change; everything added
// when the release is not installed). Secrets' values are never shown: each is
// replaced by a keyed hash made with a key of this call only (so a changed value
// still shows as a changed line, and no hash can be guessed back to its value).
func (h *Helm) Plan(ctx context.Context, spec *deploy.Spec, image string) (string, error) {
	k, err := kubeOf(spec)
	if err != nil {
		return "", err
	}
	pin, err := parsePinned(image)
	if err != nil {
		return "", err
	}
	ch, done, err := h.loadChart(ctx, k)
	if err != nil {
		return "", err
	}
	defer done()
	vals, err := pinValues(k.Values, k.ImagePath, pin, ch.Values)
	if err != nil {
		return "", err
	}
	cfg, ns, err := h.config(k)
	if err != nil {
		return "", err
	}
	rels, err := history(cfg, k.Release)
	if err != nil && !errors.Is(err, ErrNoRelease) {
		return "", fmt.Errorf("plan %s in %s: %w", k.Release, ns, err)
	}
	var cur *release.Release
	for _, r := range rels {
		if r.Info.Status == rcommon.StatusDeployed {
			cur = r
			break
		}
	}
	var rel ri.Releaser
	if cur == nil {
		in := action.NewInstall(cfg)
		in.Namespace, in.ReleaseName = ns, k.Release
		in.DryRunStrategy = action.DryRunServer
		in.Replace = true // a release uninstalled with its history kept
		rel, err = in.RunWithContext(ctx, ch, vals)
	} else {
		up := action.NewUpgrade(cfg)
		up.Namespace = ns
		up.DryRunStrategy = action.DryRunServer
		up.ResetValues = true
		rel, err = up.RunWithContext(ctx, k.Release, ch, vals)
	}
	if err != nil {
		return "", fmt.Errorf("plan %s in %s: %w", k.Release, ns, err)
	}
	next, err := toV1(rel)
	if err != nil {
		return "", err
	}
	from, fromName := "", "/dev/null"
	if cur != nil {
		from = cur.Manifest
		fromName = k.Release + " revision " + strconv.Itoa(cur.Version) + " (deployed)"
	}
	return diffManifests(from, next.Manifest, fromName, k.Release+" (planned)")
}

// diffManifests answers a unified diff of two rendered release manifests, each
// document in a stable order (by its source file and position) and Secrets masked.
func diffManifests(from, to, fromName, toName string) (string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	a, err := normalize(from, key)
	if err != nil {
		return "", fmt.Errorf("deployed manifest: %w", err)
	}
	b, err := normalize(to, key)
	if err != nil {
		return "", fmt.Errorf("planned manifest: %w", err)
	}
	if a == b {
		return "", nil
	}
	return difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(a), B: difflib.SplitLines(b),
		FromFile: fromName, ToFile: toName, Context: 3,
	})
}

// normalize orders a manifest's documents and masks Secrets' values.
func normalize(manifest string, key []byte) (string, error) {
	docs := releaseutil.SplitManifests(manifest)
	keys := make([]string, 0, len(docs))
	for k := range docs {
		keys = append(keys, k)
	}
	sort.Sort(releaseutil.BySplitManifestsOrder(keys))
	var b strings.Builder
	for _, name := range keys {
		doc := strings.TrimSpace(docs[name])
		if doc == "" {
			continue
		}
		doc, err := maskSecret(doc, key)
		if err != nil {
			return "", err
		}
		b.WriteString("---\n")
		b.WriteString(doc)
		b.WriteString("\n")
	}
	return b.String(), nil
}

// maskSecret replaces the values of a Secret's data and stringData with
// "(hidden <12 hex of HMAC-SHA256(key, value)>)"; other documents are answered as
// they are.
func maskSecret(doc string, key []byte) (string, error) {
	if !strings.Contains(doc, "Secret") {
		return doc, nil
	}
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
		// a document the diff cannot read is not shown: it could be a Secret
		return "", fmt.Errorf("a document is not YAML: %w", err)
	}
	if kind, _ := obj["kind"].(string); kind != "Secret" {
		return doc, nil
	}
	for _, field := range []string{"data", "stringData"} {
		m, ok := obj[field].(map[string]any)
		if !ok {
			continue
		}
		for k, v := range m {
			mac := hmac.New(sha256.New, key)
			mac.Write([]byte(fmt.Sprint(v)))
			m[k] = "(hidden " + hex.EncodeToString(mac.Sum(nil)[:6]) + ")"
		}
	}
	out, err := yaml.Marshal(obj)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}
