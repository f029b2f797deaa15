package chartrepo

import (
	"context"
	"errors"

	"github.com/hubctl/hubctl/internal/charts"
	"github.com/hubctl/hubctl/internal/charts/chartstore"
	"github.com/hubctl/hubctl/internal/metadata"
)

// backfillBatch bounds the manifests one Backfill reads.
const backfillBatch = 10_000

// Backfill records chart manifests that have no record: charts pushed before this
// hubctl knew charts, and any whose record a failure between storing the manifest and
// recording it left out. Serve runs it at start. A manifest that is not a valid chart
// is logged and left unrecorded. It returns how many it recorded.
func (h *Hook) Backfill(ctx context.Context) (int, error) {
	us, err := h.Store.UnrecordedCharts(ctx, charts.ConfigMediaType, backfillBatch)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, u := range us {
		m := metadata.Manifest{Repository: u.Repository, Digest: u.Digest, Payload: u.Payload, ArtifactType: charts.ConfigMediaType}
		v, err := h.check(ctx, m, nil)
		if err != nil || v == nil {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			h.Log.WarnContext(ctx, "chart manifest not recorded: not a valid chart, or its blobs are missing",
				"repository", u.Repository, "digest", u.Digest.String(), "error", err)
			continue
		}
		v.CreatedAt = u.CreatedAt
		if cm, err := parseChartManifest(u.Payload); err == nil {
			if _, ok := cm.annotations["org.opencontainers.image.created"]; ok {
				v.CreatedAt = createdAt(cm.annotations)
			}
		}
		if err := h.record(ctx, *v); err != nil && !errors.Is(err, chartstore.ErrManifestNotFound) {
			return n, err
		}
		n++
	}
	return n, nil
}
