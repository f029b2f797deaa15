// Package tokenserver is the hub's Docker token service: `GET /token` (Docker registry
// token spec) and `POST /token` (its OAuth2 variant: password and refresh_token grants),
// plus the public keys as JWKS at `/token/jwks.json` so registry replicas can verify
// tokens on their own.
package tokenserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/password"
	"github.com/hubctl/hubctl/internal/auth/ratelimit"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/auth/token"
	"github.com/hubctl/hubctl/internal/errcode"
	"github.com/hubctl/hubctl/internal/metadata"
	"github.com/hubctl/hubctl/internal/reqlog"
)

// TokenPrefix starts every access-token secret, so a password and a token are told
// apart without a lookup (and secret scanners can find leaked ones).
const TokenPrefix = "hub_"

// Login rate limit: this many failures per account and client address per window.
const (
	MaxFailures   = ratelimit.DefaultMaxFailures
	FailureWindow = ratelimit.DefaultWindow
	// touchEvery bounds how often a token's or session's last-used time is written.
	touchEvery = time.Minute
	// DefaultRefreshTTL is how long a refresh session lasts unless RefreshTTL says.
	DefaultRefreshTTL = 720 * time.Hour
)

// Server serves /token and /token/jwks.json.
type Server struct {
	Accounts accounts.Store
	Policy   *authz.Policy
	// Access issues the registry tokens; its Service is the audience registries check.
	Access *token.Issuer
	// RefreshTTL is the lifetime of the refresh sessions of offline logins (docker's
	// identity token); zero means DefaultRefreshTTL.
	RefreshTTL time.Duration
	Keys       *token.KeySet
	Log        *slog.Logger
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
	// Guard limits failed logins and concurrent password checks; nil means one of the
	// server's own. Share one with the hub API so guesses count wherever they are made.
	Guard *ratelimit.Guard
	// JobActive, when set, is asked whether the run a job token was minted for
	// (subject workflow-run:ID) may still use it as JobUser's password; an error
	// wrapping ErrJobRevoked refuses it (the run ended), any other refuses it too and
	// is logged. Nil takes every valid, unexpired job token.
	JobActive func(ctx context.Context, subject string) error

	once    sync.Once
	touched sync.Map // "t<id>" or "s<id>" -> time.Time of the last recorded use of a token or session
	// dummyHash is verified against when a user does not exist, so a wrong user name
	// takes as long as a wrong password and names cannot be probed by timing.
	dummyHash string

	jobOnce   sync.Once
	jobVerify *token.Verifier
}

func (s *Server) init() {
	s.once.Do(func() {
		if s.Now == nil {
			s.Now = time.Now
		}
		if s.Guard == nil {
			s.Guard = ratelimit.NewGuard(ratelimit.GuardOptions{Now: s.Now})
		}
		if s.Log == nil {
			s.Log = slog.New(slog.DiscardHandler)
		}
		if s.RefreshTTL == 0 {
			s.RefreshTTL = DefaultRefreshTTL
		}
		s.dummyHash, _ = password.Hash("not a real password")
	})
}

// response is the token endpoint's answer: `token` for the Docker spec and
// `access_token` for OAuth2 clients carry the same JWT.
type response struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int    `json:"expires_in"`
	IssuedAt     string `json:"issued_at"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// ServeHTTP implements http.Handler for /token and /token/jwks.json.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.init()
	w.Header().Set("Cache-Control", "no-store")
	var err error
	switch {
	case r.URL.Path == "/token/jwks.json" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		err = s.jwks(w)
	case r.URL.Path == "/token" && r.Method == http.MethodGet:
		err = s.get(w, r)
	case r.URL.Path == "/token" && r.Method == http.MethodPost:
		err = s.post(w, r)
	default:
		err = errcode.New(errcode.Unsupported, "no such endpoint %s %s", r.Method, r.URL.Path).WithStatus(http.StatusNotFound)
	}
	if err != nil {
		var e *errcode.Error
		var tm *ratelimit.TooManyError
		if errors.As(err, &tm) {
			// The client's doing, not the server's failure: warn, never error.
			s.Log.WarnContext(r.Context(), "login refused by the rate limit", "request_id", reqlog.From(r.Context()).RequestID,
				"remote", clientIP(r), "reason", tm.Reason)
			w.Header().Set("Retry-After", strconv.Itoa(tm.RetryAfterSeconds()))
			err = errcode.New(errcode.TooManyRequests, "%s; retry in %d s", tm.Reason, tm.RetryAfterSeconds())
		} else if errors.Is(err, metadata.ErrUnavailable) {
			s.Log.WarnContext(r.Context(), "token request: database unavailable", "request_id", reqlog.From(r.Context()).RequestID, "error", err)
			w.Header().Set("Retry-After", "5")
			err = errcode.New(errcode.Unavailable, "the account database is unavailable; retry shortly")
		} else if !errors.As(err, &e) {
			s.Log.ErrorContext(r.Context(), "token request failed", "request_id", reqlog.From(r.Context()).RequestID, "error", err)
		}
		errcode.Write(w, err)
	}
}

func (s *Server) jwks(w http.ResponseWriter) error {
	b, err := s.Keys.JWKS()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "max-age=60")
	_, _ = w.Write(b)
	return nil
}

// get is the Docker token spec: credentials in HTTP Basic (or none), scopes in
// `scope` parameters, a refresh token with `offline_token=true`.
func (s *Server) get(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := s.checkService(q.Get("service")); err != nil {
		return err
	}
	scopes, err := scope.ParseAll(q["scope"])
	if err != nil {
		return errcode.New(errcode.Unsupported, "%v", err).WithStatus(http.StatusBadRequest)
	}
	var p authz.Principal
	viaPassword := false
	if user, pass, ok := r.BasicAuth(); ok {
		if user == JobUser {
			return s.jobGrant(w, r, pass, scopes)
		}
		if p, viaPassword, err = s.authenticate(r, user, pass); err != nil {
			return err
		}
	}
	offline := q.Get("offline_token") == "true" && viaPassword
	return s.issue(w, r, p, scopes, offline, "", offline)
}

// post is the OAuth2 variant docker uses when it holds a refresh token.
func (s *Server) post(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return oauthError("invalid_request", "malformed form: "+err.Error())
	}
	f := r.PostForm
	if err := s.checkService(f.Get("service")); err != nil {
		return err
	}
	scopes, err := scope.ParseAll(strings.Fields(f.Get("scope")))
	if err != nil {
		return oauthError("invalid_scope", err.Error())
	}
	offline := f.Get("access_type") == "offline"
	switch f.Get("grant_type") {
	case "password":
		if f.Get("username") == JobUser {
			return s.jobGrant(w, r, f.Get("password"), scopes)
		}
		p, viaPassword, err := s.authenticate(r, f.Get("username"), f.Get("password"))
		if err != nil {
			return err
		}
		return s.issue(w, r, p, scopes, offline && viaPassword, "", viaPassword)
	case "refresh_token":
		rt := f.Get("refresh_token")
		p, err := s.refreshPrincipal(r.Context(), rt)
		if errors.Is(err, authz.ErrBadCredentials) {
			s.audit(r, "anonymous", "login.failed", "", "invalid, revoked or expired refresh token")
			return errcode.New(errcode.Unauthorized, "invalid, revoked or expired refresh token: log in again")
		} else if err != nil {
			return err
		}
		s.audit(r, p.Name(), "login.refresh", "", fmt.Sprintf("session %d", p.Session.ID))
		return s.issue(w, r, p, scopes, false, rt, false)
	default:
		return oauthError("unsupported_grant_type", fmt.Sprintf("grant_type %q is not supported (password, refresh_token)", f.Get("grant_type")))
	}
}

func oauthError(code, msg string) error {
	return errcode.New(errcode.Code{Name: strings.ToUpper(code), Status: http.StatusBadRequest}, "%s", msg)
}

func (s *Server) checkService(service string) error {
	if service != "" && service != s.Access.Service {
		return errcode.New(errcode.Unsupported, "unknown service %q (this token service is %q)", service, s.Access.Service).WithStatus(http.StatusBadRequest)
	}
	return nil
}

// issue grants the asked scopes to p and writes the token response. A refresh token is
// minted when mint is set; refresh, when not empty, is echoed (the refresh grant).
// login marks an explicit sign-in worth an audit entry.
func (s *Server) issue(w http.ResponseWriter, r *http.Request, p authz.Principal, scopes []scope.Scope, mint bool, refresh string, login bool) error {
	ctx := r.Context()
	access := make([]scope.Access, 0, len(scopes))
	var granted []string
	for _, sc := range scopes {
		g, err := s.Policy.Grant(ctx, p, sc)
		if err != nil {
			return err
		}
		a := g.Access()
		for _, act := range sc.Actions {
			if !g.Allows(act) && !slices.Contains(a.Denied, act) {
				a.Denied = append(a.Denied, act)
			}
		}
		access = append(access, a)
		if len(g.Actions) > 0 {
			granted = append(granted, g.String())
		}
	}
	tok, err := s.Access.Issue(p.Name(), hubClaims(p), access)
	if err != nil {
		return err
	}
	resp := response{Token: tok.Raw, AccessToken: tok.Raw, ExpiresIn: tok.ExpiresIn,
		IssuedAt: tok.IssuedAt.UTC().Format(time.RFC3339), RefreshToken: refresh, Scope: strings.Join(granted, " ")}
	detail := ""
	if mint && p.User != nil {
		secret, sess, err := s.newSession(r, p.User)
		if err != nil {
			return err
		}
		resp.RefreshToken = secret
		detail = fmt.Sprintf("refresh session %d", sess.ID)
	}
	if login {
		s.audit(r, p.Name(), "login", "", detail)
	}
	reqlog.From(ctx).User = p.Name()
	return respond(w, resp)
}

// respond writes a token response.
func respond(w http.ResponseWriter, resp response) error {
	b, err := json.Marshal(resp)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
	return nil
}

// hubClaims says in a registry token how p signed in, by immutable ids.
func hubClaims(p authz.Principal) token.Hub {
	var h token.Hub
	if p.User != nil {
		h.UserID, h.Epoch = p.User.ID, p.User.SessionEpoch
	}
	if p.Token != nil {
		h.TokenID = p.Token.ID
	}
	if p.Session != nil {
		h.SessionID = p.Session.ID
	}
	return h
}

// newSession starts a refresh session for u (an offline login) and returns its secret,
// shown to the client once.
func (s *Server) newSession(r *http.Request, u *accounts.User) (string, accounts.Session, error) {
	secret, err := password.RandomSecret(password.RefreshTokenPrefix)
	if err != nil {
		return "", accounts.Session{}, err
	}
	now := s.Now()
	sess, err := s.Accounts.CreateSession(r.Context(), accounts.Session{UserID: u.ID, Kind: accounts.SessionRefresh,
		Hash: password.SecretHash(secret), CreatedAt: now, ExpiresAt: now.Add(s.RefreshTTL),
		Remote: clientIP(r), Client: r.UserAgent()})
	if err != nil {
		return "", accounts.Session{}, fmt.Errorf("start a refresh session for %s: %w", u.Name, err)
	}
	return secret, sess, nil
}

// authenticate checks a user name with a password or an access token. viaPassword
// tells which: logins with a password may get a refresh token, token logins may not
// (the token itself is the long-lived credential, and revoking it must end access).
func (s *Server) authenticate(r *http.Request, user, pass string) (authz.Principal, bool, error) {
	ctx := r.Context()
	var p authz.Principal
	var viaPassword bool
	err := s.Guard.Login(ctx, user, clientIP(r), !strings.HasPrefix(pass, TokenPrefix), func() (bool, error) {
		var err error
		p, viaPassword, err = s.check(ctx, user, pass, s.Now())
		if errors.Is(err, authz.ErrBadCredentials) {
			s.audit(r, user, "login.failed", "", "bad credentials")
			return true, errcode.New(errcode.Unauthorized, "invalid username, password or token")
		}
		return false, err
	})
	if err != nil {
		return authz.Principal{}, false, err
	}
	reqlog.From(ctx).User = p.Name()
	return p, viaPassword, nil
}

func (s *Server) check(ctx context.Context, user, pass string, now time.Time) (authz.Principal, bool, error) {
	if strings.HasPrefix(pass, TokenPrefix) {
		t, err := s.Accounts.TokenByHash(ctx, password.SecretHash(pass))
		if errors.Is(err, accounts.ErrNotFound) {
			return authz.Principal{}, false, authz.ErrBadCredentials
		} else if err != nil {
			return authz.Principal{}, false, err
		}
		p, err := authz.TokenPrincipal(ctx, s.Accounts, t, now)
		if err != nil {
			return p, false, err
		}
		s.touch(ctx, t.ID, now)
		return p, false, nil
	}
	u, err := s.Accounts.GetUser(ctx, user)
	if errors.Is(err, accounts.ErrNotFound) || (err == nil && (u.Robot || u.PasswordHash == "")) {
		_, _ = password.Verify(pass, s.dummyHash)
		return authz.Principal{}, false, authz.ErrBadCredentials
	} else if err != nil {
		return authz.Principal{}, false, err
	}
	ok, err := password.Verify(pass, u.PasswordHash)
	if err != nil {
		return authz.Principal{}, false, fmt.Errorf("verify password of %s: %w", u.Name, err)
	}
	if !ok || u.Disabled {
		return authz.Principal{}, false, authz.ErrBadCredentials
	}
	return authz.Principal{User: &u}, true, nil
}

// touch records a token's use, at most once per touchEvery per token.
func (s *Server) touch(ctx context.Context, id int64, now time.Time) {
	if s.recent(fmt.Sprint("t", id), now) {
		return
	}
	if err := s.Accounts.TouchToken(ctx, id, now); err != nil {
		s.Log.WarnContext(ctx, "record token use", "token_id", id, "error", err)
	}
}

// recent reports whether key's last use was recorded less than touchEvery ago, and
// notes now as its last use otherwise.
func (s *Server) recent(key string, now time.Time) bool {
	if last, ok := s.touched.Load(key); ok && now.Sub(last.(time.Time)) < touchEvery {
		return true
	}
	s.touched.Store(key, now)
	return false
}

// refreshPrincipal finds the session of a refresh token. The session hangs on the
// account's id: a deleted account's sessions are gone, and a new account of the same
// name has none of them. Refresh tokens of earlier hubctl versions (JWTs bound to a
// name) are refused: their holders log in again.
func (s *Server) refreshPrincipal(ctx context.Context, raw string) (authz.Principal, error) {
	if !strings.HasPrefix(raw, password.RefreshTokenPrefix) {
		return authz.Principal{}, authz.ErrBadCredentials
	}
	sess, err := s.Accounts.SessionByHash(ctx, password.SecretHash(raw))
	if errors.Is(err, accounts.ErrNotFound) {
		return authz.Principal{}, authz.ErrBadCredentials
	} else if err != nil {
		return authz.Principal{}, err
	}
	now := s.Now()
	if !sess.Active(now) {
		return authz.Principal{}, authz.ErrBadCredentials
	}
	u, err := s.Accounts.GetUser(ctx, sess.User)
	if errors.Is(err, accounts.ErrNotFound) {
		return authz.Principal{}, authz.ErrBadCredentials
	} else if err != nil {
		return authz.Principal{}, err
	}
	if u.ID != sess.UserID || u.Disabled {
		return authz.Principal{}, authz.ErrBadCredentials
	}
	if !s.recent(fmt.Sprint("s", sess.ID), now) {
		if err := s.Accounts.TouchSession(ctx, sess.ID, now); err != nil {
			s.Log.WarnContext(ctx, "record session use", "session_id", sess.ID, "error", err)
		}
	}
	return authz.Principal{User: &u, Session: &sess}, nil
}

func (s *Server) audit(r *http.Request, actor, action, target, detail string) {
	e := accounts.AuditEntry{Time: s.Now(), Actor: actor, Action: action, Target: target, Remote: clientIP(r), Detail: detail}
	if err := s.Accounts.Audit(r.Context(), e); err != nil {
		s.Log.WarnContext(r.Context(), "audit", "action", action, "error", err)
	}
}

// clientIP is the address the request came from (the peer; forwarded headers are not
// trusted here, so a client cannot pick its own rate-limit key).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
