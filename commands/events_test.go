package commands

import (
	"bufio"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/hubctl/hubctl/internal/metadata"
)

// push records a push of an empty image to repo:tag in the hub's store, as bob.
func (h *hub) push(repo, tag string) digest.Digest {
	h.t.Helper()
	ctx := events.WithActor(context.Background(), events.Actor{Name: "bob"})
	cfg := []byte(`{"tag":"` + tag + `"}`)
	cd := digest.FromBytes(cfg)
	if err := h.store.PutBlob(ctx, metadata.Blob{Digest: cd, Size: int64(len(cfg))}); err != nil {
		h.t.Fatal(err)
	}
	if err := h.store.LinkBlob(ctx, repo, cd); err != nil {
		h.t.Fatal(err)
	}
	payload := []byte(`{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + cd.String() + `","size":1},"layers":[]}`)
	d := digest.FromBytes(payload)
	if _, err := h.store.PutManifest(ctx, metadata.Manifest{Repository: repo, Digest: d, MediaType: "application/vnd.oci.image.manifest.v1+json",
		ArtifactType: "application/vnd.oci.image.config.v1+json", Size: int64(len(payload)), Payload: payload},
		metadata.References{Blobs: []digest.Digest{cd}}, tag); err != nil {
		h.t.Fatal(err)
	}
	return d
}

func TestEventsList(t *testing.T) {
	h := newHub(t)
	admin := h.login("admin", "admin-password")
	bob := h.login("bob", "bob-password")
	d := h.push("bob/app", "1")
	h.push("admin/secret", "1")

	out := h.ok(bob, "events", "ls")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "SEQ") || !strings.Contains(out, "manifest.pushed") ||
		!strings.Contains(out, d.String()[:19]) || !strings.Contains(out, "image") || strings.Contains(out, "admin/secret") {
		t.Fatalf("bob's events ls:\n%s", out)
	}
	if out := h.ok(admin, "events", "ls", "--repo", "admin/secret", "--type", "tag.moved"); strings.Count(out, "\n") != 2 {
		t.Fatalf("admin's filtered events ls:\n%s", out)
	}
	var page hubtypes.EventPage
	if err := json.Unmarshal([]byte(h.ok(admin, "events", "ls", "-o", "json", "--limit", "2")), &page); err != nil ||
		len(page.Events) != 2 || page.Next != page.Events[1].Cursor {
		t.Fatalf("events ls -o json: %v %+v", err, page)
	}
	// The admin sees the accounts' own events too (account.created of admin and bob),
	// so the second page is everything but the first two.
	var all hubtypes.EventPage
	if err := json.Unmarshal([]byte(h.ok(admin, "events", "ls", "-o", "json")), &all); err != nil || len(all.Events) < 6 {
		t.Fatalf("events ls -o json: %v %+v", err, all)
	}
	if err := json.Unmarshal([]byte(h.ok(admin, "events", "ls", "-o", "json", "--since", page.Next)), &page); err != nil ||
		len(page.Events) != len(all.Events)-2 || page.Events[0].Cursor != all.Events[2].Cursor {
		t.Fatalf("events ls --since: %v %+v", err, page)
	}
	h.fails(admin, "cannot be used together", "events", "ls", "--repo", "a/b", "--namespace", "a")
	h.fails(admin, "invalid --limit", "events", "ls", "--limit", "5000")
	h.fails(admin, "invalid request", "events", "ls", "--type", "nope")
}

// TestEventsFollow: --follow prints the events that arrive after it starts, one JSON
// line each, and ends cleanly when interrupted.
func TestEventsFollow(t *testing.T) {
	h := newHub(t)
	bob := h.login("bob", "bob-password")
	h.push("bob/app", "old")

	ios, _, out, errOut := iostreams.Test()
	f := NewFactory(ios, BuildInfo{})
	env := map[string]string{"DOCKER_CONFIG": bob, "HUBCTL_REGISTRY": h.host}
	f.LookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	// Follow from the current end: the push above is not printed.
	var start hubtypes.EventPage
	if err := json.Unmarshal([]byte(h.ok(bob, "events", "ls", "-o", "json")), &start); err != nil {
		t.Fatal(err)
	}
	go func() {
		code <- Execute(ctx, f, []string{"events", "ls", "--follow", "-o", "json", "--since", start.Next, "--type", "manifest.pushed"})
	}()
	time.Sleep(300 * time.Millisecond)
	h.push("bob/app", "new1")
	time.Sleep(300 * time.Millisecond)
	h.push("bob/app", "new2")
	time.Sleep(2 * time.Second)
	cancel()
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("follow exit %d: %s", c, errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not end when interrupted")
	}
	var tags []string
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		var e hubtypes.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		tags = append(tags, e.Tag)
	}
	if strings.Join(tags, ",") != "new1,new2" {
		t.Fatalf("followed %v, want new1,new2; output:\n%s", tags, out.String())
	}
}
