package accountstest

import (
	"crypto/sha256"
	"slices"
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
)

func hashOf(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func equalTokens(t *testing.T, what string, got, want accounts.AccessToken) {
	t.Helper()
	if got.ID != want.ID || got.User != want.User || got.Name != want.Name ||
		string(got.Hash) != string(want.Hash) || !slices.Equal(got.Scopes, want.Scopes) ||
		!got.ExpiresAt.Equal(want.ExpiresAt) || !got.LastUsedAt.Equal(want.LastUsedAt) ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.RevokedAt.Equal(want.RevokedAt) {
		t.Fatalf("%s = %+v, want %+v", what, got, want)
	}
}

func testTokens(t *testing.T, s accounts.Store) {
	ctx := t.Context()
	newUser(t, s, "alice")
	newUser(t, s, "bob")

	tok := accounts.AccessToken{User: "alice", Name: "ci laptop", Hash: hashOf("hub_one"),
		Scopes:    []string{"repository:acme/app:pull,push", "repository:acme/*:pull", "registry:catalog:*"},
		ExpiresAt: testTime.Add(24 * time.Hour), CreatedAt: testTime}
	created, err := s.CreateToken(ctx, tok)
	must(t, err)
	if created.ID == 0 {
		t.Fatal("CreateToken returned no ID")
	}
	tok.ID = created.ID
	equalTokens(t, "CreateToken", created, tok)

	got, err := s.TokenByHash(ctx, hashOf("hub_one"))
	must(t, err)
	equalTokens(t, "TokenByHash", got, tok)
	if !got.Active(testTime) || got.Active(testTime.Add(24*time.Hour)) {
		t.Fatalf("token expiring at %s: Active before/at expiry wrong", got.ExpiresAt)
	}
	_, err = s.TokenByHash(ctx, hashOf("hub_other"))
	wantErr(t, "TokenByHash(unknown)", err, accounts.ErrNotFound)
	_, err = s.TokenByHash(ctx, hashOf("hub_one")[:16])
	wantErr(t, "TokenByHash(prefix of a hash)", err, accounts.ErrNotFound)

	// A token with no expiry and no scopes.
	forever, err := s.CreateToken(ctx, accounts.AccessToken{User: "alice", Name: "forever", Hash: hashOf("hub_two"),
		CreatedAt: testTime.Add(time.Minute)})
	must(t, err)
	got, err = s.TokenByHash(ctx, hashOf("hub_two"))
	must(t, err)
	if !got.ExpiresAt.IsZero() || len(got.Scopes) != 0 || !got.Active(testTime.AddDate(100, 0, 0)) {
		t.Fatalf("token without expiry = %+v", got)
	}
	// An expired token is still found: the caller says why it is refused.
	expired, err := s.CreateToken(ctx, accounts.AccessToken{User: "alice", Name: "old", Hash: hashOf("hub_three"),
		ExpiresAt: testTime.Add(-time.Hour), CreatedAt: testTime.Add(2 * time.Minute)})
	must(t, err)
	got, err = s.TokenByHash(ctx, hashOf("hub_three"))
	must(t, err)
	if got.ID != expired.ID || got.Active(testTime) {
		t.Fatalf("expired token = %+v, want found and inactive", got)
	}

	_, err = s.CreateToken(ctx, accounts.AccessToken{User: "alice", Name: "ci laptop", Hash: hashOf("hub_four")})
	wantErr(t, "CreateToken(name taken)", err, accounts.ErrExists)
	_, err = s.CreateToken(ctx, accounts.AccessToken{User: "bob", Name: "dup hash", Hash: hashOf("hub_one")})
	wantErr(t, "CreateToken(hash taken)", err, accounts.ErrExists)
	_, err = s.CreateToken(ctx, accounts.AccessToken{User: "nobody", Name: "x", Hash: hashOf("hub_five")})
	wantErr(t, "CreateToken(missing user)", err, accounts.ErrNotFound)
	for _, bad := range []accounts.AccessToken{
		{User: "alice", Name: "", Hash: hashOf("hub_six")},
		{User: "alice", Name: "nl\nname", Hash: hashOf("hub_six")},
		{User: "alice", Name: string(make([]byte, 101)), Hash: hashOf("hub_six")},
		{User: "alice", Name: "short hash", Hash: []byte("hub_six")},
		{User: "alice", Name: "no hash"},
	} {
		_, err := s.CreateToken(ctx, bad)
		wantErr(t, "CreateToken("+bad.Name+")", err, accounts.ErrInvalid)
	}
	// The same name is free for another user.
	bobs, err := s.CreateToken(ctx, accounts.AccessToken{User: "bob", Name: "ci laptop", Hash: hashOf("hub_bob"), CreatedAt: testTime})
	must(t, err)

	list, err := s.ListTokens(ctx, "alice")
	must(t, err)
	var ids []int64
	for _, l := range list {
		ids = append(ids, l.ID)
		if l.Hash != nil {
			t.Errorf("ListTokens returned the hash of %s", l.Name)
		}
		if l.User != "alice" {
			t.Errorf("ListTokens(alice) returned %s's token %s", l.User, l.Name)
		}
	}
	if want := []int64{expired.ID, forever.ID, tok.ID}; !slices.Equal(ids, want) {
		t.Fatalf("ListTokens ids = %v, want newest first %v", ids, want)
	}
	tok.Hash = nil
	equalTokens(t, "ListTokens[2]", list[2], tok)
	list, err = s.ListTokens(ctx, "bob")
	must(t, err)
	if len(list) != 1 || list[0].ID != bobs.ID {
		t.Fatalf("ListTokens(bob) = %+v", list)
	}
	_, err = s.ListTokens(ctx, "nobody")
	wantErr(t, "ListTokens(missing user)", err, accounts.ErrNotFound)
}

func testTokenRevoke(t *testing.T, s accounts.Store) {
	ctx := t.Context()
	newUser(t, s, "alice")
	newUser(t, s, "bob")
	first, err := s.CreateToken(ctx, accounts.AccessToken{User: "alice", Name: "ci", Hash: hashOf("hub_1"), CreatedAt: testTime})
	must(t, err)
	_, err = s.CreateToken(ctx, accounts.AccessToken{User: "bob", Name: "ci", Hash: hashOf("hub_b"), CreatedAt: testTime})
	must(t, err)

	wantErr(t, "RevokeToken(missing name)", s.RevokeToken(ctx, "alice", "cd"), accounts.ErrNotFound)
	wantErr(t, "RevokeToken(another user's)", s.RevokeToken(ctx, "carol", "ci"), accounts.ErrNotFound)
	before := time.Now()
	must(t, s.RevokeToken(ctx, "alice", "ci"))
	got, err := s.TokenByHash(ctx, hashOf("hub_1"))
	must(t, err)
	if got.RevokedAt.IsZero() || got.RevokedAt.Before(before.Truncate(time.Microsecond)) || got.Active(testTime) {
		t.Fatalf("revoked token = %+v, want RevokedAt set (after %s) and inactive", got, before)
	}
	wantErr(t, "RevokeToken twice", s.RevokeToken(ctx, "alice", "ci"), accounts.ErrNotFound)
	// Bob's token of the same name is untouched.
	if got, err := s.TokenByHash(ctx, hashOf("hub_b")); err != nil || !got.RevokedAt.IsZero() {
		t.Fatalf("bob's token after revoking alice's = %+v, %v", got, err)
	}

	// The name is free again; both show in the list.
	second, err := s.CreateToken(ctx, accounts.AccessToken{User: "alice", Name: "ci", Hash: hashOf("hub_2"),
		CreatedAt: testTime.Add(time.Hour)})
	must(t, err)
	list, err := s.ListTokens(ctx, "alice")
	must(t, err)
	if len(list) != 2 || list[0].ID != second.ID || !list[0].RevokedAt.IsZero() ||
		list[1].ID != first.ID || list[1].RevokedAt.IsZero() {
		t.Fatalf("ListTokens after revoke and re-create = %+v", list)
	}
	// Revoking by name now means the active one.
	must(t, s.RevokeToken(ctx, "alice", "ci"))
	if got, err := s.TokenByHash(ctx, hashOf("hub_2")); err != nil || got.RevokedAt.IsZero() {
		t.Fatalf("second token after revoke = %+v, %v", got, err)
	}
}

func testTokenTouch(t *testing.T, s accounts.Store) {
	ctx := t.Context()
	newUser(t, s, "alice")
	tok, err := s.CreateToken(ctx, accounts.AccessToken{User: "alice", Name: "ci", Hash: hashOf("hub_1"), CreatedAt: testTime})
	must(t, err)
	other, err := s.CreateToken(ctx, accounts.AccessToken{User: "alice", Name: "cd", Hash: hashOf("hub_2"), CreatedAt: testTime})
	must(t, err)
	if !tok.LastUsedAt.IsZero() {
		t.Fatalf("new token LastUsedAt = %s, want zero", tok.LastUsedAt)
	}
	used := testTime.Add(time.Hour)
	must(t, s.TouchToken(ctx, tok.ID, used))
	got, err := s.TokenByHash(ctx, hashOf("hub_1"))
	must(t, err)
	if !got.LastUsedAt.Equal(used) {
		t.Fatalf("LastUsedAt = %s, want %s", got.LastUsedAt, used)
	}
	// A replica reporting an older use does not move it back.
	must(t, s.TouchToken(ctx, tok.ID, testTime))
	if got, _ = s.TokenByHash(ctx, hashOf("hub_1")); !got.LastUsedAt.Equal(used) {
		t.Fatalf("LastUsedAt after an older touch = %s, want %s", got.LastUsedAt, used)
	}
	later := used.Add(time.Hour)
	must(t, s.TouchToken(ctx, tok.ID, later))
	if got, _ = s.TokenByHash(ctx, hashOf("hub_1")); !got.LastUsedAt.Equal(later) {
		t.Fatalf("LastUsedAt = %s, want %s", got.LastUsedAt, later)
	}
	if got, _ = s.TokenByHash(ctx, hashOf("hub_2")); !got.LastUsedAt.IsZero() || got.ID != other.ID {
		t.Fatalf("touching one token touched another: %+v", got)
	}
	wantErr(t, "TouchToken(unknown)", s.TouchToken(ctx, other.ID+1000, used), accounts.ErrNotFound)
}
