package sqlstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/metadata"
)

// BenchmarkOutboxRows is what the outbox adds to a push's manifest transaction
// (issue 18, "Benchmark"; bench/README.md, Webhooks). There is no switch that turns the
// outbox off, so it is measured by difference, on both databases:
//
//   - commit: a write transaction that inserts one audit row, so it pays a commit as
//     the manifest transaction does;
//   - commit+outbox: the same transaction plus what PutManifest adds for the outbox —
//     the repository's lock (an advisory lock on PostgreSQL) and the manifest.pushed
//     and tag.moved rows (appendEvent, which writes the push's audit entry too: that
//     entry predates the outbox, so the difference overstates the outbox a little);
//   - push: the metadata of a whole push, as BenchmarkPushImage (two blob commits and
//     the manifest put, outbox included).
//
// (commit+outbox − commit) / push is the outbox's share of a push's metadata work;
// bench/webhookbench puts it beside a whole push over HTTP. internal/pgtest runs
// PostgreSQL with fsync off, so there the commit is cheaper than in production and the
// share larger.
func BenchmarkOutboxRows(b *testing.B) {
	audit := func(ctx context.Context, q querier, i int64) error {
		_, err := q.Exec(ctx, `INSERT INTO audit_log (time, actor, action, target, remote, detail)
			VALUES ($1, $2, $3, $4, $5, $6)`, time.Now().UnixNano(), "alice", "bench", fmt.Sprint("team/app:", i), "", "")
		return err
	}
	for _, o := range backends {
		b.Run(o.name, func(b *testing.B) {
			s, _ := openFresh(b, o)
			ctx := events.WithActor(b.Context(), events.Actor{Name: "alice"})
			b.Run("commit", func(b *testing.B) {
				b.ReportAllocs()
				for i := int64(0); b.Loop(); i++ {
					if err := s.write(ctx, func(q querier) error { return audit(ctx, q, i) }); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("commit+outbox", func(b *testing.B) {
				b.ReportAllocs()
				for i := int64(0); b.Loop(); i++ {
					d := digest.FromString(fmt.Sprint("manifest ", i))
					prev := digest.FromString(fmt.Sprint("manifest ", i-1))
					err := s.write(ctx, func(q querier) error {
						if err := s.lockRepo(ctx, q, "team/app"); err != nil {
							return err
						}
						if err := audit(ctx, q, i); err != nil {
							return err
						}
						pushed := events.Event{Type: events.ManifestPushed, RepositoryID: 1, Repository: "team/app", Tag: "latest",
							Digest: d.String(), MediaType: "application/vnd.oci.image.manifest.v1+json", Kind: "image", Size: 400}
						if err := s.appendEvent(ctx, q, pushed); err != nil {
							return err
						}
						return s.appendEvent(ctx, q, events.Event{Type: events.TagMoved, RepositoryID: 1, Repository: "team/app",
							Tag: "latest", Digest: d.String(), PreviousDigest: prev.String()})
					})
					if err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("push", func(b *testing.B) {
				b.ReportAllocs()
				for i := int64(0); b.Loop(); i++ {
					var refs metadata.References
					for _, what := range []string{"config", "layer"} {
						d := digest.FromString(fmt.Sprint(what, i))
						pinned, err := s.PinBlob(ctx, d, 100)
						if err != nil {
							b.Fatal(err)
						}
						if _, err := s.CommitBlob(ctx, "team/app", metadata.Blob{Digest: d, Size: 100}, pinned); err != nil {
							b.Fatal(err)
						}
						refs.Blobs = append(refs.Blobs, d)
					}
					payload := fmt.Appendf(nil, `{"schemaVersion":2,"n":%d}`, i)
					m := metadata.Manifest{Repository: "team/app", Digest: digest.FromBytes(payload),
						MediaType: "application/vnd.oci.image.manifest.v1+json", Size: int64(len(payload)), Payload: payload}
					if _, err := s.PutManifest(ctx, m, refs, "latest"); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
