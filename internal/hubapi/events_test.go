package hubapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/hubtypes"
	"github.com/hubctl/hubctl/internal/metadata"
)

// push puts a manifest (an image with no layers) into repo under tag, as actor.
func (f *fixture) push(actor, repo, tag, note string) {
	f.t.Helper()
	ctx := events.WithActor(context.Background(), events.Actor{Name: actor, Remote: "198.51.100.9", RequestID: "req-" + note})
	cfg := []byte(`{"note":"` + note + `"}`)
	cd := digest.FromBytes(cfg)
	if err := f.store.PutBlob(ctx, metadata.Blob{Digest: cd, Size: int64(len(cfg))}); err != nil {
		f.t.Fatal(err)
	}
	if err := f.store.LinkBlob(ctx, repo, cd); err != nil {
		f.t.Fatal(err)
	}
	payload := []byte(`{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + cd.String() + `","size":1},"layers":[]}`)
	_, err := f.store.PutManifest(ctx, metadata.Manifest{Repository: repo, Digest: digest.FromBytes(payload),
		MediaType: "application/vnd.oci.image.manifest.v1+json", ArtifactType: "application/vnd.oci.image.config.v1+json",
		Size: int64(len(payload)), Payload: payload}, metadata.References{Blobs: []digest.Digest{cd}}, tag)
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) events(a auth, query string) hubtypes.EventPage {
	f.t.Helper()
	return decodeAs[hubtypes.EventPage](f.t, f.want(f.do(a, "GET", "/api/v1/events"+query, nil), 200, ""))
}

func repos(p hubtypes.EventPage) map[string]int {
	out := map[string]int{}
	for _, e := range p.Events {
		out[e.Repository]++
	}
	return out
}

// TestEventsAuthorisation is the attacker's test: whatever bob asks for, he never
// sees an event of alice's private repository, nor learns it exists; he sees public
// repositories' events and his own; an admin sees everything.
func TestEventsAuthorisation(t *testing.T) {
	f := newFixture(t)
	f.push("alice", "alice/private", "1", "a")
	f.push("alice", "alice/open", "1", "b")
	must(t, f.store.SetRepositoryVisibility(context.Background(), "alice/open", accounts.Public))
	f.push("bob", "bob/app", "1", "c")
	if _, err := f.store.AppendEvent(context.Background(), events.Event{Type: events.GCCompleted}); err != nil {
		t.Fatal(err)
	}

	// Hub-wide: the gc.completed, and the fixture's accounts (account.created).
	all := f.events(asAdmin, "")
	if got := repos(all); got["alice/private"] != 3 || got["alice/open"] != 4 || got["bob/app"] != 3 || got[""] < 1 {
		t.Fatalf("admin sees %v", got)
	}
	for _, e := range all.Events {
		if e.Type == "manifest.pushed" && (e.Remote != "198.51.100.9" || e.RequestID == "" || e.Actor == "") {
			t.Fatalf("admin's view of a push lacks where it came from: %+v", e)
		}
	}

	for _, q := range []string{"", "?repository=alice/private", "?namespace=alice", "?type=manifest.pushed",
		"?since=0", "?repository=alice/private&type=tag.moved", "?limit=1000"} {
		// The API refuses anonymous callers outright (TestUnauthenticated).
		for name, who := range map[string]auth{"bob": asBob} {
			p := f.events(who, q)
			got := repos(p)
			if got["alice/private"] != 0 || got[""] != 0 {
				t.Fatalf("%s asking %q sees %v", name, q, got)
			}
			for _, e := range p.Events {
				if e.Remote != "" || e.RequestID != "" {
					t.Fatalf("%s sees where a push came from: %+v", name, e)
				}
			}
		}
	}
	if got := repos(f.events(asBob, "")); got["bob/app"] != 3 || got["alice/open"] != 4 || len(got) != 2 {
		t.Fatalf("bob sees %v", got)
	}
	f.want(f.do(anon, "GET", "/api/v1/events", nil), 401, "UNAUTHORIZED")
	if got := repos(f.events(asAlice, "?namespace=alice")); got["alice/private"] != 3 || got["alice/open"] != 4 || len(got) != 2 {
		t.Fatalf("alice sees %v", got)
	}

	// Made private again, alice/open's events are hidden from bob, old ones too.
	ctx := events.WithActor(context.Background(), events.Actor{Name: "alice"})
	must(t, f.store.SetRepositoryVisibility(ctx, "alice/open", accounts.Private))
	if got := repos(f.events(asBob, "")); got["alice/open"] != 0 {
		t.Fatalf("bob still sees a repository made private: %v", got)
	}

	// An access token reads events only with hub:events:read, and only of the
	// repositories its scopes let it pull.
	noArea := bearer(f.token(asAlice, "pull-only", "repository:alice/*:pull"))
	f.want(f.do(noArea, "GET", "/api/v1/events", nil), 403, "DENIED")
	narrow := bearer(f.token(asAlice, "narrow", "hub:events:read", "repository:alice/open:pull"))
	if got := repos(f.events(narrow, "")); got["alice/private"] != 0 || got["alice/open"] == 0 {
		t.Fatalf("a token for alice/open sees %v", got)
	}
	// bob's token cannot widen what bob may read.
	bobTok := bearer(f.token(asBob, "wide", "hub:events:read", "repository:*:pull"))
	if got := repos(f.events(bobTok, "")); got["alice/private"] != 0 || got["alice/open"] != 0 {
		t.Fatalf("bob's token sees %v", got)
	}
}

// TestEventsPagesAndValidation: since/limit walk the feed; bad parameters are 400.
func TestEventsPagesAndValidation(t *testing.T) {
	f := newFixture(t)
	for i := range 5 {
		f.push("alice", "alice/app", "t"+string(rune('0'+i)), "n"+string(rune('0'+i)))
	}
	all := f.events(asAdmin, "")
	var walked []hubtypes.Event
	since := ""
	for {
		p := f.events(asAdmin, "?limit=3&since="+since)
		if len(p.Events) == 0 {
			if p.Next != since && since != "" {
				t.Fatalf("empty page moved the cursor %q to %q", since, p.Next)
			}
			break
		}
		walked = append(walked, p.Events...)
		since = p.Next
	}
	if len(walked) != len(all.Events) || walked[len(walked)-1].ID != all.Events[len(all.Events)-1].ID {
		t.Fatalf("walked %d of %d", len(walked), len(all.Events))
	}
	// since=now answers the cursor after the newest event, and no events.
	if now := f.events(asAdmin, "?since=now"); len(now.Events) != 0 || now.Next != all.Events[len(all.Events)-1].Cursor {
		t.Fatalf("since=now: %+v", now)
	}
	// A bare SEQ continues after that event.
	p := f.events(asAdmin, "?since="+all.Events[2].Cursor)
	if len(p.Events) != len(all.Events)-3 {
		t.Fatalf("after %s: %d events", all.Events[2].Cursor, len(p.Events))
	}
	p = f.events(asAdmin, "?type=tag.moved,repository.created")
	if len(p.Events) != 6 {
		t.Fatalf("two types: %d events", len(p.Events))
	}
	for _, q := range []string{"?limit=0", "?limit=1001", "?since=x", "?since=1.x", "?type=nope", "?wait=31", "?repository=UPPER"} {
		f.want(f.do(asAdmin, "GET", "/api/v1/events"+q, nil), 400, "INVALID_REQUEST")
	}
	f.want(f.do(asAdmin, "GET", "/api/v1/events?since=99999", nil), 404, "NAME_UNKNOWN")
}

// TestEventsLongPoll: a request with wait answers as soon as an event arrives.
func TestEventsLongPoll(t *testing.T) {
	f := newFixture(t)
	f.push("alice", "alice/app", "1", "a")
	next := f.events(asAlice, "").Next
	got := make(chan hubtypes.EventPage, 1)
	start := time.Now()
	go func() { got <- f.events(asAlice, "?wait=10&since="+next) }()
	time.Sleep(400 * time.Millisecond)
	f.push("alice", "alice/app", "2", "b")
	var p hubtypes.EventPage
	select {
	case p = <-got:
		if len(p.Events) == 0 || p.Events[0].Tag != "2" {
			t.Fatalf("long poll answered %+v", p)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("long poll took %s", d)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("long poll never answered")
	}
	// With nothing new, it answers empty when the time is up, with the same cursor.
	start = time.Now()
	empty := f.events(asAlice, "?wait=1&since="+p.Next)
	if len(empty.Events) != 0 || empty.Next != p.Next || time.Since(start) < 500*time.Millisecond {
		t.Fatalf("idle long poll: %+v after %s", empty, time.Since(start))
	}
}

// TestEventsCarryTheAPICaller: a change made through the API records its caller.
func TestEventsCarryTheAPICaller(t *testing.T) {
	f := newFixture(t)
	f.push("alice", "alice/app", "1", "a")
	f.want(f.do(asAlice, "PATCH", "/api/v1/repositories/alice/app", map[string]any{"visibility": "public"}), 200, "")
	p := f.events(asAdmin, "?type=repository.visibility_changed")
	if len(p.Events) != 1 || p.Events[0].Actor != "alice" || p.Events[0].Visibility != "public" || p.Events[0].Remote == "" {
		t.Fatalf("visibility event: %+v", p.Events)
	}
	// Through an access token, the audit entry written with the change names it.
	tok := bearer(f.token(asAlice, "ops", "repository:alice/app:*"))
	f.want(f.do(tok, "PATCH", "/api/v1/repositories/alice/app", map[string]any{"visibility": "private"}), 200, "")
	if e := f.audited("visibility.change"); len(e) != 2 || e[0].Detail != "private (token ops)" || e[0].Actor != "alice" {
		t.Fatalf("audit of a change by token: %+v", e)
	}
	f.want(f.do(asAlice, "DELETE", "/api/v1/repositories/alice/app", nil), 204, "")
	f.wantAudit("repository.delete", "alice", "alice/app")
	p = f.events(asAdmin, "?type=repository.deleted")
	if len(p.Events) != 1 || p.Events[0].Actor != "alice" {
		t.Fatalf("delete event: %+v", p.Events)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
