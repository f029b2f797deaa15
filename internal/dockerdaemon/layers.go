package dockerdaemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// maxImagesScanned bounds how many images LayerChains inspects: an engine with more
// is asked about that many (most recent first), and a layer only they lack is sent.
const maxImagesScanned = 2000

// ClassicStore reports whether the engine keeps images in its classic layer store,
// whose docker load takes an archive that leaves out the layers it has (it looks each
// layer up by chain ID before it opens the layer's file). The containerd image store
// wants every file, so it gets whole archives.
func (c *Client) ClassicStore(ctx context.Context) (bool, error) {
	req, err := c.request(ctx, http.MethodGet, "/info", nil, nil)
	if err != nil {
		return false, err
	}
	resp, err := c.send(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, c.statusError(resp, "info")
	}
	var info struct {
		Driver       string     `json:"Driver"`
		DriverStatus [][]string `json:"DriverStatus"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return false, fmt.Errorf("docker engine: info: %w", err)
	}
	for _, kv := range info.DriverStatus {
		for _, v := range kv {
			if strings.Contains(v, "io.containerd.snapshotter") {
				return false, nil
			}
		}
	}
	return info.Driver != "", nil
}

// LayerChains returns the chain IDs (the OCI image spec's ChainID of each prefix of
// an image's diff IDs) of every layer the engine's images hold.
func (c *Client) LayerChains(ctx context.Context) (map[digest.Digest]bool, error) {
	req, err := c.request(ctx, http.MethodGet, "/images/json", url.Values{"all": {"1"}}, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, c.statusError(resp, "list images")
	}
	var list []struct {
		ID      string `json:"Id"`
		Created int64  `json:"Created"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, fmt.Errorf("docker engine: list images: %w", err)
	}
	if len(list) > maxImagesScanned {
		list = list[:maxImagesScanned] // the engine lists newest first
	}
	chains := map[digest.Digest]bool{}
	results := make([][]digest.Digest, len(list))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, im := range list {
		g.Go(func() error {
			img, err := c.Inspect(gctx, im.ID)
			if err != nil {
				return nil // removed meanwhile: it holds nothing
			}
			results[i] = ChainIDs(img.RootFS.Layers)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, r := range results {
		for _, d := range r {
			chains[d] = true
		}
	}
	return chains, nil
}

// ChainIDs returns the chain ID of each prefix of diffIDs: the first is the first diff
// ID, then sha256 of "<previous chain ID> <diff ID>".
func ChainIDs(diffIDs []string) []digest.Digest {
	out := make([]digest.Digest, 0, len(diffIDs))
	var prev digest.Digest
	for i, d := range diffIDs {
		if i == 0 {
			prev = digest.Digest(d)
		} else {
			prev = digest.FromString(prev.String() + " " + d)
		}
		out = append(out, prev)
	}
	return out
}
