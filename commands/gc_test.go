package commands

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/events"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/blobstore"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/metadata/sqlstore"
)

func TestGC(t *testing.T) {
	data := t.TempDir()
	ctx := context.Background()
	fs, err := blobstore.NewFS(data)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := sqlstore.OpenSQLite(ctx, filepath.Join(data, "hubctl.db"))
	if err != nil {
		t.Fatal(err)
	}
	body := "an unreferenced blob"
	d := digest.FromString(body)
	if _, err := fs.Put(ctx, d, strings.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}
	if err := meta.PutBlob(ctx, metadata.Blob{Digest: d, Size: int64(len(body))}); err != nil {
		t.Fatal(err)
	}
	if err := meta.LinkBlob(ctx, "app", d); err != nil {
		t.Fatal(err)
	}
	meta.Close()

	// Within the default grace of an hour nothing goes.
	code, out, errOut := runIO(t, t.TempDir(), "", false, "gc", "--data", data, "-o", "json")
	var rep struct {
		Links, Swept int
		BytesFreed   int64 `json:"bytes_freed"`
		DryRun       bool  `json:"dry_run"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.Links != 0 || rep.Swept != 0 {
		t.Fatalf("gc: exit %d %q %q", code, out, errOut)
	}
	code, out, errOut = runIO(t, t.TempDir(), "", false, "gc", "--data", data, "--grace", "0s", "--dry-run", "-o", "json")
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || !rep.DryRun || rep.Links != 1 || rep.Swept != 1 || rep.BytesFreed != int64(len(body)) {
		t.Fatalf("gc --dry-run: exit %d %q %q", code, out, errOut)
	}
	if _, err := fs.Stat(ctx, d, ""); err != nil {
		t.Fatalf("dry run deleted the blob: %v", err)
	}
	code, out, errOut = runIO(t, t.TempDir(), "", false, "gc", "--data", data, "--grace", "0s", "--untagged")
	if code != 0 || !strings.Contains(out, "swept: 1") || !strings.Contains(out, "bytes freed: 20") {
		t.Fatalf("gc: exit %d %q %q", code, out, errOut)
	}
	if _, err := fs.Stat(ctx, d, ""); err == nil {
		t.Fatal("gc left the blob")
	}
	// An untagged manifest deleted by --untagged is a delete like any other: audited.
	meta, err = sqlstore.OpenSQLite(ctx, filepath.Join(data, "hubctl.db"))
	if err != nil {
		t.Fatal(err)
	}
	m := metadata.Manifest{Repository: "app", Digest: digest.FromString("manifest"), MediaType: "application/vnd.oci.image.manifest.v1+json", Payload: []byte("manifest"), Size: 8}
	if _, err := meta.PutManifest(ctx, m, metadata.References{}, ""); err != nil {
		t.Fatal(err)
	}
	meta.Close()
	if code, out, errOut = runIO(t, t.TempDir(), "", false, "gc", "--data", data, "--grace", "0s", "--untagged"); code != 0 {
		t.Fatalf("gc --untagged: exit %d %q %q", code, out, errOut)
	}
	meta, err = sqlstore.OpenSQLite(ctx, filepath.Join(data, "hubctl.db"))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := meta.ListAudit(ctx, accounts.AuditFilter{Action: "delete"})
	page, perr := meta.ListEvents(ctx, events.Query{Access: metadata.CatalogFilter{All: true}, Types: []events.Type{events.ManifestDeleted, events.GCCompleted}})
	meta.Close()
	// Each run records gc.completed; this one's deletion comes before its own.
	if n := len(page.Events); perr != nil || n < 2 || page.Events[n-2].Digest != m.Digest.String() || page.Events[n-2].Actor != "system" ||
		page.Events[n-1].Type != events.GCCompleted || page.Events[n-1].Detail["manifests"] != float64(1) {
		t.Fatalf("events after gc --untagged: %+v %v", page.Events, perr)
	}
	if err != nil || len(entries) != 1 || entries[0].Actor != "system" || entries[0].Target != "app@"+m.Digest.String() {
		t.Fatalf("audit after gc --untagged: %+v %v", entries, err)
	}

	// While another collection (a replica's schedule) holds the lease: exit 1, saying
	// so, and nothing collected.
	meta, err = sqlstore.OpenSQLite(ctx, filepath.Join(data, "hubctl.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := meta.AcquireGCLease(ctx, "serve on replica-a", time.Hour); err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	meta.Close()
	code, out, errOut = runIO(t, t.TempDir(), "", false, "gc", "--data", data, "--grace", "0s")
	if code != 1 || out != "" || !strings.Contains(errOut, "another garbage collection is running (holder serve on replica-a") {
		t.Fatalf("gc while the lease is held: exit %d %q %q", code, out, errOut)
	}

	// No hub at --data: an error, not an empty hub created there.
	code, _, errOut = runIO(t, t.TempDir(), "", false, "gc", "--data", filepath.Join(data, "nope"))
	if code != 1 || !strings.Contains(errOut, "no hub here") {
		t.Fatalf("gc on a missing data directory: exit %d %q", code, errOut)
	}
}
