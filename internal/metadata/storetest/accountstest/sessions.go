package accountstest

import (
	"testing"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
)

func newSession(t *testing.T, s accounts.Store, u accounts.User, secret string, at time.Time) accounts.Session {
	t.Helper()
	sess, err := s.CreateSession(t.Context(), accounts.Session{UserID: u.ID, Kind: accounts.SessionRefresh, Hash: hashOf(secret),
		CreatedAt: at, ExpiresAt: at.Add(720 * time.Hour), Remote: "192.0.2.7", Client: "docker/28"})
	must(t, err)
	return sess
}

func testSessions(t *testing.T, s accounts.Store) {
	ctx := t.Context()
	alice := newUser(t, s, "alice")
	bob := newUser(t, s, "bob")
	first := newSession(t, s, alice, "hubr_1", testTime)
	if first.ID == 0 || first.User != "alice" || !first.ExpiresAt.Equal(testTime.Add(720*time.Hour)) || !first.Active(testTime) {
		t.Fatalf("CreateSession = %+v", first)
	}
	second := newSession(t, s, alice, "hubr_2", testTime.Add(time.Minute))
	newSession(t, s, bob, "hubr_3", testTime)

	got, err := s.SessionByHash(ctx, hashOf("hubr_1"))
	must(t, err)
	if got.ID != first.ID || got.UserID != alice.ID || got.User != "alice" || got.Remote != "192.0.2.7" || got.Client != "docker/28" ||
		string(got.Hash) != string(hashOf("hubr_1")) {
		t.Fatalf("SessionByHash = %+v, want %+v", got, first)
	}
	_, err = s.SessionByHash(ctx, hashOf("hubr_none"))
	wantErr(t, "SessionByHash(unknown)", err, accounts.ErrNotFound)
	if got, err := s.SessionByID(ctx, second.ID); err != nil || got.User != "alice" || got.Hash != nil {
		t.Fatalf("SessionByID = %+v, %v", got, err)
	}
	_, err = s.CreateSession(ctx, accounts.Session{UserID: alice.ID + 1000, Kind: accounts.SessionRefresh, Hash: hashOf("x"), ExpiresAt: testTime})
	wantErr(t, "CreateSession(missing user)", err, accounts.ErrNotFound)
	_, err = s.CreateSession(ctx, accounts.Session{UserID: alice.ID, Kind: accounts.SessionRefresh, Hash: []byte("short"), ExpiresAt: testTime})
	wantErr(t, "CreateSession(bad hash)", err, accounts.ErrInvalid)

	list, err := s.ListSessions(ctx, "alice")
	must(t, err)
	if len(list) != 2 || list[0].ID != second.ID || list[1].ID != first.ID {
		t.Fatalf("ListSessions = %+v, want the two of alice's, newest first", list)
	}
	must(t, s.TouchSession(ctx, first.ID, testTime.Add(time.Hour)))
	must(t, s.TouchSession(ctx, first.ID, testTime))
	if got, _ := s.SessionByID(ctx, first.ID); !got.LastUsedAt.Equal(testTime.Add(time.Hour)) {
		t.Fatalf("LastUsedAt = %s, want the latest use", got.LastUsedAt)
	}
	// A user revokes their own session; not another's, not twice.
	wantErr(t, "RevokeSession(bob's as alice)", s.RevokeSession(ctx, "bob", first.ID), accounts.ErrNotFound)
	must(t, s.RevokeSession(ctx, "alice", first.ID))
	wantErr(t, "RevokeSession twice", s.RevokeSession(ctx, "alice", first.ID), accounts.ErrNotFound)
	if got, _ := s.SessionByHash(ctx, hashOf("hubr_1")); got.RevokedAt.IsZero() || got.Active(testTime) {
		t.Fatalf("revoked session = %+v, want inactive", got)
	}
	if got, _ := s.SessionByHash(ctx, hashOf("hubr_2")); !got.Active(testTime.Add(time.Hour)) {
		t.Fatalf("the other session was ended too: %+v", got)
	}

	// Deleting the account ends its sessions; a new account of the same name has none.
	_, err = s.DeleteUser(ctx, "alice", false)
	must(t, err)
	_, err = s.SessionByHash(ctx, hashOf("hubr_2"))
	wantErr(t, "SessionByHash(deleted user's)", err, accounts.ErrNotFound)
	again := newUser(t, s, "alice")
	if again.ID == alice.ID {
		t.Fatalf("a re-created account got the old id %d", again.ID)
	}
	if list, err := s.ListSessions(ctx, "alice"); err != nil || len(list) != 0 {
		t.Fatalf("sessions of a re-created user = %+v, %v", list, err)
	}
	_, err = s.ListSessions(ctx, "nobody")
	wantErr(t, "ListSessions(missing user)", err, accounts.ErrNotFound)
}

// testSessionsEndTogether: a password change or reset, disabling and "sign out
// everywhere" end every session and raise the epoch; other changes end nothing.
func testSessionsEndTogether(t *testing.T, s accounts.Store) {
	ctx := t.Context()
	alice := newUser(t, s, "alice")
	bob := newUser(t, s, "bob")
	newSession(t, s, bob, "hubr_bob", testTime)
	epoch := alice.SessionEpoch
	for i, change := range []struct {
		name  string
		apply func(u accounts.User) error
		ends  bool
	}{
		{"email", func(u accounts.User) error { u.Email = "new@example.com"; return s.UpdateUser(ctx, u) }, false},
		{"admin flag", func(u accounts.User) error { u.Admin = true; return s.UpdateUser(ctx, u) }, false},
		{"password", func(u accounts.User) error { u.PasswordHash = "$argon2id$other"; return s.UpdateUser(ctx, u) }, true},
		{"disable", func(u accounts.User) error { u.Disabled = true; return s.UpdateUser(ctx, u) }, true},
		{"enable", func(u accounts.User) error { u.Disabled = false; return s.UpdateUser(ctx, u) }, false},
		{"sign out everywhere", func(accounts.User) error { return s.EndSessions(ctx, "alice") }, true},
	} {
		secret := "hubr_alice_" + change.name
		newSession(t, s, alice, secret, testTime.Add(time.Duration(i)*time.Second))
		u, err := s.GetUser(ctx, "alice")
		must(t, err)
		must(t, change.apply(u))
		got, err := s.SessionByHash(ctx, hashOf(secret))
		must(t, err)
		after, err := s.GetUser(ctx, "alice")
		must(t, err)
		if ended := !got.RevokedAt.IsZero(); ended != change.ends {
			t.Errorf("after a %s change the session is ended=%v, want %v", change.name, ended, change.ends)
		}
		wantEpoch := epoch
		if change.ends {
			wantEpoch++
		}
		if after.SessionEpoch != wantEpoch {
			t.Errorf("after a %s change SessionEpoch = %d, want %d", change.name, after.SessionEpoch, wantEpoch)
		}
		epoch = after.SessionEpoch
	}
	if got, _ := s.SessionByHash(ctx, hashOf("hubr_bob")); !got.RevokedAt.IsZero() {
		t.Fatal("ending alice's sessions ended bob's")
	}
	wantErr(t, "EndSessions(missing user)", s.EndSessions(ctx, "nobody"), accounts.ErrNotFound)
}

// testBootstrapAdmin: the bootstrap account is made once per database, never again,
// even after it is deleted and its name taken by someone else.
func testBootstrapAdmin(t *testing.T, s accounts.Store) {
	ctx := t.Context()
	u, created, err := s.BootstrapAdmin(ctx, accounts.User{Name: "admin", PasswordHash: "$argon2id$first"})
	must(t, err)
	if !created || !u.Admin || u.ID == 0 {
		t.Fatalf("first BootstrapAdmin = %+v, created %v", u, created)
	}
	if _, created, err := s.BootstrapAdmin(ctx, accounts.User{Name: "admin", PasswordHash: "$argon2id$second"}); err != nil || created {
		t.Fatalf("second BootstrapAdmin: created %v, %v", created, err)
	}
	if got, _ := s.GetUser(ctx, "admin"); got.PasswordHash != "$argon2id$first" {
		t.Fatal("a second bootstrap changed the admin's password")
	}
	_, err = s.DeleteUser(ctx, "admin", false)
	must(t, err)
	newUser(t, s, "mallory")
	_, err = s.CreateOrg(ctx, "admin", "mallory")
	must(t, err)
	if _, created, err := s.BootstrapAdmin(ctx, accounts.User{Name: "admin", PasswordHash: "$argon2id$third"}); err != nil || created {
		t.Fatalf("BootstrapAdmin after the admin was deleted: created %v, %v; want nothing made, no error", created, err)
	}
	if _, err := s.GetUser(ctx, "admin"); err == nil {
		t.Fatal("a deleted bootstrap admin came back")
	}
}
