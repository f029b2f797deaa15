package sqlstore

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/charts/chartstore"
	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/metadata"
)

// allEvents reads every event q selects, as an admin.
func allEvents(t *testing.T, s *Store, q events.Query) []events.Event {
	t.Helper()
	q.Access = metadata.CatalogFilter{All: true}
	q.Limit = events.MaxPage
	p, err := s.ListEvents(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	return p.Events
}

func types(es []events.Event) []events.Type {
	out := make([]events.Type, len(es))
	for i, e := range es {
		out[i] = e.Type
	}
	return out
}

// pushImage links a config blob into repo and puts a manifest referencing it under tag.
func pushImage(t *testing.T, ctx context.Context, s *Store, repo, tag, note string) digest.Digest {
	t.Helper()
	cfg := []byte(`{"note":"` + note + `"}`)
	cd := digest.FromBytes(cfg)
	if err := s.PutBlob(ctx, metadata.Blob{Digest: cd, Size: int64(len(cfg))}); err != nil {
		t.Fatal(err)
	}
	if err := s.LinkBlob(ctx, repo, cd); err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` +
		cd.String() + `","size":` + "1" + `},"layers":[]}`)
	d := digest.FromBytes(payload)
	_, err := s.PutManifest(ctx, metadata.Manifest{Repository: repo, Digest: d, MediaType: "application/vnd.oci.image.manifest.v1+json",
		ArtifactType: "application/vnd.oci.image.config.v1+json", Size: int64(len(payload)), Payload: payload},
		metadata.References{Blobs: []digest.Digest{cd}}, tag)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestEventsCommitWithChange: each change writes its events in its own transaction,
// with the actor of its context; a change that fails writes none.
func TestEventsCommitWithChange(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s, _ := openFresh(t, b)
		ctx := events.WithActor(t.Context(), events.Actor{Name: "alice", Remote: "192.0.2.7", RequestID: "req-1"})

		// A push whose reference is missing rolls back whole: no repository, no event.
		missing := digest.FromString("nowhere")
		_, err := s.PutManifest(ctx, metadata.Manifest{Repository: "alice/app", Digest: digest.FromString("m"), MediaType: "application/vnd.oci.image.manifest.v1+json",
			Payload: []byte("{}")}, metadata.References{Blobs: []digest.Digest{missing}}, "1")
		var mr *metadata.MissingReferenceError
		if !errors.As(err, &mr) {
			t.Fatalf("put with a missing blob: %v", err)
		}
		if es := allEvents(t, s, events.Query{}); len(es) != 0 {
			t.Fatalf("a failed push left events: %v", types(es))
		}

		d1 := pushImage(t, ctx, s, "alice/app", "1", "one")
		es := allEvents(t, s, events.Query{})
		if want := []events.Type{events.RepositoryCreated, events.ManifestPushed, events.TagMoved}; !slices.Equal(types(es), want) {
			t.Fatalf("events of a first push: %v, want %v", types(es), want)
		}
		pushed := es[1]
		if pushed.Repository != "alice/app" || pushed.Digest != d1.String() || pushed.Tag != "1" || pushed.Kind != events.KindImage ||
			pushed.Actor != "alice" || pushed.Remote != "192.0.2.7" || pushed.RequestID != "req-1" || pushed.RepositoryID == 0 ||
			pushed.ID == "" || pushed.Size == 0 || pushed.Time.IsZero() {
			t.Fatalf("manifest.pushed = %+v", pushed)
		}
		if es[0].Visibility != "private" {
			t.Fatalf("repository.created = %+v", es[0])
		}

		// Moving the tag reports the previous digest; re-pushing the same digest
		// raises manifest.pushed only.
		d2 := pushImage(t, ctx, s, "alice/app", "1", "two")
		es = allEvents(t, s, events.Query{After: cursorOf(t, es[len(es)-1])})
		if !slices.Equal(types(es), []events.Type{events.ManifestPushed, events.TagMoved}) || es[1].PreviousDigest != d1.String() || es[1].Digest != d2.String() {
			t.Fatalf("events of a tag move: %+v", es)
		}
		last := es[len(es)-1]
		pushImage(t, ctx, s, "alice/app", "1", "two")
		es = allEvents(t, s, events.Query{After: cursorOf(t, last)})
		if !slices.Equal(types(es), []events.Type{events.ManifestPushed}) {
			t.Fatalf("events of a re-push: %v", types(es))
		}
		last = es[len(es)-1]

		if _, err := s.DeleteTag(ctx, "alice/app", "1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DeleteTag(ctx, "alice/app", "1"); !errors.Is(err, metadata.ErrTagNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		pushImage(t, ctx, s, "alice/app", "2", "one")
		if _, err := s.DeleteManifest(ctx, "alice/app", d1); err != nil {
			t.Fatal(err)
		}
		must(t, s.SetRepositoryVisibility(ctx, "alice/app", accounts.Public))
		must(t, s.SetRepositoryVisibility(ctx, "alice/app", accounts.Public)) // unchanged: no event
		must(t, s.DeleteRepository(ctx, "alice/app"))
		es = allEvents(t, s, events.Query{After: cursorOf(t, last)})
		want := []events.Type{events.TagDeleted, events.ManifestPushed, events.TagMoved, events.TagDeleted, events.ManifestDeleted,
			events.RepositoryVisibilityChanged, events.RepositoryDeleted}
		if !slices.Equal(types(es), want) {
			t.Fatalf("events: %v, want %v", types(es), want)
		}
		if es[3].Tag != "2" || es[4].Digest != d1.String() || es[5].Visibility != "public" {
			t.Fatalf("events: %+v", es)
		}

		// Pushes and deletes are audited in the same transactions.
		audit, err := s.ListAudit(ctx, accounts.AuditFilter{Actor: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, a := range audit {
			actions = append(actions, a.Action+" "+a.Target)
		}
		if !slices.Contains(actions, "push alice/app:1") || !slices.Contains(actions, "delete alice/app@"+d1.String()) ||
			!slices.Contains(actions, "delete alice/app:2") || !slices.Contains(actions, "visibility.change alice/app") ||
			!slices.Contains(actions, "repository.delete alice/app") || len(actions) != 9 {
			t.Fatalf("audit: %q", actions)
		}

		// Ids and numbers are unique.
		es = allEvents(t, s, events.Query{})
		ids, seqs := map[string]bool{}, map[int64]bool{}
		for _, e := range es {
			if ids[e.ID] || seqs[e.Seq] {
				t.Fatalf("duplicate id or seq: %+v", e)
			}
			ids[e.ID], seqs[e.Seq] = true, true
		}
	})
}

func cursorOf(t *testing.T, e events.Event) events.Cursor {
	t.Helper()
	c, err := events.ParseCursor(e.Cursor)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestEventsFiltersAndPages: type, repository and namespace filters, pages that
// continue where the last ended, a bare event number as the cursor, and the caller's
// access.
func TestEventsFiltersAndPages(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s, _ := openFresh(t, b)
		ctx := t.Context()
		pushImage(t, ctx, s, "alice/app", "1", "a")
		pushImage(t, ctx, s, "bob/secret", "1", "b")
		pushImage(t, ctx, s, "bob/open", "1", "c")
		must(t, s.SetRepositoryVisibility(ctx, "bob/open", accounts.Public))
		if _, err := s.AppendEvent(ctx, events.Event{Type: events.GCCompleted, Detail: map[string]any{"manifests": 0}}); err != nil {
			t.Fatal(err)
		}
		all := allEvents(t, s, events.Query{})
		if len(all) != 11 {
			t.Fatalf("%d events: %v", len(all), types(all))
		}

		// Pages of 4 walk the same sequence.
		var walked []events.Event
		var c events.Cursor
		for {
			p, err := s.ListEvents(ctx, events.Query{After: c, Limit: 4, Access: metadata.CatalogFilter{All: true}})
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Events) == 0 {
				if p.Next != c {
					t.Fatalf("empty page moved the cursor from %v to %v", c, p.Next)
				}
				break
			}
			walked = append(walked, p.Events...)
			c = p.Next
		}
		if len(walked) != len(all) {
			t.Fatalf("pages walked %d events of %d", len(walked), len(all))
		}
		for i := range all {
			if walked[i].ID != all[i].ID {
				t.Fatalf("page order differs at %d", i)
			}
		}
		// A bare event number continues after that event.
		p, err := s.ListEvents(ctx, events.Query{After: events.Cursor{Seq: all[4].Seq}, Access: metadata.CatalogFilter{All: true}})
		if err != nil || len(p.Events) != len(all)-5 || p.Events[0].ID != all[5].ID {
			t.Fatalf("after event %d: %v, %v", all[4].Seq, err, p.Events)
		}
		if _, err := s.ListEvents(ctx, events.Query{After: events.Cursor{Seq: 1 << 40}, Access: metadata.CatalogFilter{All: true}}); !errors.Is(err, events.ErrEventNotKept) {
			t.Fatalf("unknown event number: %v", err)
		}
		// Newest: no events, the cursor after the newest one the caller may see.
		p, err = s.ListEvents(ctx, events.Query{Newest: true, Access: metadata.CatalogFilter{All: true}})
		if err != nil || len(p.Events) != 0 || p.Next.String() != all[len(all)-1].Cursor {
			t.Fatalf("newest: %v %+v, want cursor %s", err, p, all[len(all)-1].Cursor)
		}
		p, err = s.ListEvents(ctx, events.Query{Newest: true, Access: metadata.CatalogFilter{Public: true}})
		// The outsider's newest is bob/open's visibility change, before the GC run.
		if err != nil || len(p.Events) != 0 || p.Next.String() != all[len(all)-2].Cursor {
			t.Fatalf("outsider's newest: %v %+v, want %s", err, p.Next, all[len(all)-2].Cursor)
		}

		for _, tc := range []struct {
			name string
			q    events.Query
			want int
		}{
			{"type", events.Query{Types: []events.Type{events.TagMoved}}, 3},
			{"types", events.Query{Types: []events.Type{events.TagMoved, events.GCCompleted}}, 4},
			{"repository", events.Query{Repository: "bob/secret"}, 3},
			{"namespace", events.Query{Namespace: "bob"}, 7},
			{"namespace and type", events.Query{Namespace: "bob", Types: []events.Type{events.RepositoryVisibilityChanged}}, 1},
			// An outsider sees public repositories only, and no hub-wide events.
			{"outsider", events.Query{Access: metadata.CatalogFilter{Public: true}}, 4},
			{"outsider asks for the private repository", events.Query{Repository: "bob/secret", Access: metadata.CatalogFilter{Public: true}}, 0},
			{"outsider asks by namespace", events.Query{Namespace: "bob", Access: metadata.CatalogFilter{Public: true}}, 4},
			{"owner", events.Query{Access: metadata.CatalogFilter{Public: true, Namespaces: []string{"bob"}, Member: "bob"}}, 7},
			{"token for one repository", events.Query{Access: metadata.CatalogFilter{Namespaces: []string{"bob"}, Restricted: true, Patterns: []string{"bob/secret"}}}, 3},
			{"token with no pull", events.Query{Access: metadata.CatalogFilter{All: true, Restricted: true}}, 0},
			{"nothing", events.Query{Access: metadata.CatalogFilter{}}, 0},
		} {
			if !tc.q.Access.All && !tc.q.Access.Public && len(tc.q.Access.Namespaces) == 0 && tc.name != "nothing" {
				tc.q.Access = metadata.CatalogFilter{All: true}
			}
			tc.q.Limit = events.MaxPage
			p, err := s.ListEvents(ctx, tc.q)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if len(p.Events) != tc.want {
				t.Errorf("%s: %d events, want %d: %v", tc.name, len(p.Events), tc.want, types(p.Events))
			}
			for _, e := range p.Events {
				if e.Repository == "bob/secret" && (tc.q.Access.Public && len(tc.q.Access.Namespaces) == 0) {
					t.Errorf("%s: an outsider saw %+v", tc.name, e)
				}
			}
		}
	})
}

// TestEventsRetention: the purge deletes what is older than the cutoff, in batches,
// and two replicas purging at once both succeed.
func TestEventsRetention(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s, reopen := openFresh(t, b)
		other := reopen(t)
		defer other.Close()
		ctx := t.Context()
		old := time.Now().Add(-48 * time.Hour)
		for range 25 {
			if _, err := s.AppendEvent(ctx, events.Event{Type: events.GCCompleted, Time: old}); err != nil {
				t.Fatal(err)
			}
		}
		kept, err := s.AppendEvent(ctx, events.Event{Type: events.GCCompleted})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan int, 2)
		for _, st := range []*Store{s, other} {
			go func() {
				n, err := st.PurgeEvents(ctx, time.Now().Add(-24*time.Hour), 4)
				if err != nil {
					t.Error(err)
				}
				done <- n
			}()
		}
		if n := <-done + <-done; n != 25 {
			t.Fatalf("purged %d, want 25", n)
		}
		es := allEvents(t, s, events.Query{})
		if len(es) != 1 || es[0].ID != kept.ID {
			t.Fatalf("left %+v", es)
		}
		// Numbers are never reused after a purge.
		e, err := s.AppendEvent(ctx, events.Event{Type: events.GCCompleted})
		if err != nil {
			t.Fatal(err)
		}
		es = allEvents(t, s, events.Query{})
		if len(es) != 2 || es[1].ID != e.ID || es[1].Seq <= kept.Seq {
			t.Fatalf("after purge: %+v", es)
		}
	})
}

// TestEventsNoSkipOnPostgres is the case a reader following the sequence alone gets
// wrong: transaction A takes its event number first, B takes a later one and commits
// first. A follower must not move past A's event before A commits.
func TestEventsNoSkipOnPostgres(t *testing.T) {
	b := backends[1]
	s, _ := openFresh(t, b)
	ctx := t.Context()
	admin := metadata.CatalogFilter{All: true}

	a, err := s.e.begin(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	defer a.rollback(ctx)
	// The repository lock assigns no transaction id: the id comes after it.
	if err := s.lockRepo(ctx, a, "x/a"); err != nil {
		t.Fatal(err)
	}
	var assigned *string
	if err := a.QueryRow(ctx, "SELECT CAST(pg_current_xact_id_if_assigned() AS TEXT)").Scan(&assigned); err != nil {
		t.Fatal(err)
	}
	if assigned != nil {
		t.Fatalf("the repository lock assigned transaction id %s", *assigned)
	}
	if err := s.appendEvent(ctx, a, events.Event{Type: events.TagMoved, Repository: "x/a"}); err != nil {
		t.Fatal(err)
	}
	eb, err := s.AppendEvent(ctx, events.Event{Type: events.TagMoved, Repository: "x/b"})
	if err != nil {
		t.Fatal(err)
	}

	// B is committed, but A, older, is not: the follower gets nothing yet.
	p, err := s.ListEvents(ctx, events.Query{Access: admin})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 0 {
		t.Fatalf("follower got %+v while an older transaction is open", p.Events)
	}
	cur := p.Next
	if err := a.commit(ctx); err != nil {
		t.Fatal(err)
	}
	p, err = s.ListEvents(ctx, events.Query{After: cur, Access: admin})
	if err != nil {
		t.Fatal(err)
	}
	if got := types(p.Events); len(got) != 2 || p.Events[0].Repository != "x/a" || p.Events[1].ID != eb.ID {
		t.Fatalf("after A commits: %+v", p.Events)
	}
	if p.Events[0].Seq > p.Events[1].Seq {
		t.Logf("A's number %d is above B's %d: feed order is by transaction", p.Events[0].Seq, p.Events[1].Seq)
	}
}

// TestEventsFollowConcurrentWriters: a follower polling with its cursor while writers
// on two replicas push concurrently sees every event exactly once.
func TestEventsFollowConcurrentWriters(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s, reopen := openFresh(t, b)
		other := reopen(t)
		defer other.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		const perWriter = 40
		errs := make(chan error, 2)
		for i, st := range []*Store{s, other} {
			go func() {
				for j := range perWriter {
					repo := []string{"w/a", "w/b", "w/c"}[j%3]
					if _, err := st.AppendEvent(ctx, events.Event{Type: events.TagMoved, Repository: repo, Tag: string(rune('a'+i)) + "-" + time.Now().String()}); err != nil {
						errs <- err
						return
					}
				}
				errs <- nil
			}()
		}
		seen := map[string]int{}
		var c events.Cursor
		writers := 2
		for len(seen) < 2*perWriter {
			if writers > 0 {
				select {
				case err := <-errs:
					if err != nil {
						t.Fatal(err)
					}
					writers--
				default:
				}
			}
			p, err := s.ListEvents(ctx, events.Query{After: c, Limit: 7, Access: metadata.CatalogFilter{All: true}})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range p.Events {
				seen[e.ID]++
				if seen[e.ID] > 1 {
					t.Fatalf("event %s seen twice", e.ID)
				}
			}
			c = p.Next
			if ctx.Err() != nil {
				t.Fatalf("saw %d of %d events", len(seen), 2*perWriter)
			}
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestEventsRepositoryOrder: one repository's events are in commit order in the feed,
// even when two replicas push to one tag at once: every tag.moved names as previous
// digest the digest of the tag.moved before it.
func TestEventsRepositoryOrder(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s, reopen := openFresh(t, b)
		other := reopen(t)
		defer other.Close()
		ctx := t.Context()
		const perWriter = 15
		done := make(chan struct{}, 2)
		for i, st := range []*Store{s, other} {
			go func() {
				defer func() { done <- struct{}{} }()
				for j := range perWriter {
					pushImage(t, ctx, st, "o/app", "latest", string(rune('a'+i))+strconv.Itoa(j))
				}
			}()
		}
		<-done
		<-done
		es := allEvents(t, s, events.Query{Repository: "o/app", Types: []events.Type{events.TagMoved}})
		if len(es) != 2*perWriter {
			t.Fatalf("%d tag moves, want %d", len(es), 2*perWriter)
		}
		prev := ""
		for i, e := range es {
			if e.PreviousDigest != prev {
				t.Fatalf("move %d (seq %d) says the tag was at %q, the move before left it at %q", i, e.Seq, e.PreviousDigest, prev)
			}
			prev = e.Digest
		}
	})
}

// TestEventsChartPushed: recording a chart version raises chart.pushed once; recording
// it again (a backfill, a repair) raises nothing.
func TestEventsChartPushed(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s, _ := openFresh(t, b)
		ctx := events.WithActor(t.Context(), events.Actor{Name: "carol"})
		d := pushImage(t, ctx, s, "carol/charts/web", "1.2.0", "chart")
		v := chartstore.Version{Repository: "carol/charts/web", Digest: d, Name: "web", Version: "1.2.0",
			Metadata: []byte(`{"name":"web","version":"1.2.0"}`), ChartDigest: digest.FromString("tgz"), ChartSize: 1234}
		must(t, s.RecordChart(ctx, v))
		must(t, s.RecordChart(ctx, v))
		es := allEvents(t, s, events.Query{Types: []events.Type{events.ChartPushed}})
		if len(es) != 1 || es[0].Chart != "web" || es[0].Version != "1.2.0" || es[0].Digest != d.String() ||
			es[0].Kind != events.KindChart || es[0].Actor != "carol" || es[0].Size != 1234 {
			t.Fatalf("chart.pushed: %+v", es)
		}
	})
}
