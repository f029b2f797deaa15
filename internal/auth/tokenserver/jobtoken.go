package tokenserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/auth/token"
	"github.com/hubctl/hubctl/internal/errcode"
	"github.com/hubctl/hubctl/internal/reqlog"
)

// JobUser is the user name under which /token takes a workflow job's token (the
// machine token of $HUBCTL_TOKEN, subject JobSubjectPrefix + run id) as the password.
// A kubelet passes only a user and a password to the container runtime, which then
// signs in at /token with HTTP Basic (GET) or the OAuth2 password grant (POST): this
// is how the Kubernetes executor's imagePullSecret pulls a job's images from private
// repositories of the hub, and how a step's `docker login -u hubctl-job -p
// "$HUBCTL_TOKEN"` works. The name is for job tokens only: a password or an access
// token given with it is refused.
const JobUser = "hubctl-job"

// JobSubjectPrefix starts the subject of every job token; machine tokens of other
// kinds (a Dragonfly preheat's webhook:ID) are refused as JobUser's password.
const JobSubjectPrefix = "workflow-run:"

// jobLeeway is the clock skew tolerated on a job token's times: replicas mint and
// check them, so a little, but far less than the verifier's default minute, so an
// expired token stops pulling when it expires.
const jobLeeway = 5 * time.Second

// errJobToken is the one answer to every refused job token, whatever the reason, so
// the answer tells a prober nothing; the reason goes to the audit log.
var errJobToken = errcode.New(errcode.Unauthorized, "invalid, expired or revoked job token")

// jobVerifier checks job tokens with the token service's own keys, issuer and
// audience, as the registry checks any token.
func (s *Server) jobVerifier() *token.Verifier {
	s.jobOnce.Do(func() {
		s.jobVerify = &token.Verifier{Keys: s.Keys, Issuer: s.Access.Issuer, Audience: s.Access.Service,
			Leeway: jobLeeway, Now: s.Now}
	})
	return s.jobVerify
}

// jobGrant answers a token request signed in as JobUser with raw, a job token: the
// new token grants what was asked within what the job token grants (never more, never
// longer than it lives), after JobActive, when set, says the run it was minted for may
// still use it. No refresh token is ever minted for it.
//
// The guard's failure counters are not used: a job token is a signature nobody can
// guess, checked in microseconds, and counting failures would let one node's stale
// pull secret lock every job on that node out of the hub.
func (s *Server) jobGrant(w http.ResponseWriter, r *http.Request, raw string, scopes []scope.Scope) error {
	ctx := r.Context()
	c, why := s.checkJobToken(ctx, raw)
	if why != "" {
		s.audit(r, JobUser, "login.failed", "", why)
		return errJobToken
	}
	access := make([]scope.Access, 0, len(scopes))
	var granted []string
	for _, sc := range scopes {
		g := scope.Intersect(sc, jobAllows(c.Access, sc))
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
	iss := *s.Access
	ttl := iss.TTL
	if ttl == 0 {
		ttl = token.DefaultTTL
	}
	left := c.ExpiresAt.Sub(s.Now()).Truncate(time.Second)
	if left < time.Second {
		s.audit(r, JobUser, "login.failed", "", "job token "+c.ID+" expires within a second")
		return errJobToken
	}
	iss.TTL = min(ttl, left)
	tok, err := iss.Issue(c.Subject, token.Hub{}, access)
	if err != nil {
		return err
	}
	reqlog.From(ctx).User = c.Subject
	return respond(w, response{Token: tok.Raw, AccessToken: tok.Raw, ExpiresIn: tok.ExpiresIn,
		IssuedAt: tok.IssuedAt.UTC().Format(time.RFC3339), Scope: strings.Join(granted, " ")})
}

// checkJobToken verifies raw as a job token; why says why it is refused ("" when it
// is not). When JobActive cannot answer (the database is down) the token is refused
// too: the token service grants nothing it could not check.
func (s *Server) checkJobToken(ctx context.Context, raw string) (*token.Claims, string) {
	if raw == "" || strings.HasPrefix(raw, TokenPrefix) || strings.Count(raw, ".") != 2 {
		return nil, "not a job token"
	}
	c, err := s.jobVerifier().Verify(raw)
	if err != nil {
		return nil, "job token: " + strings.TrimPrefix(err.Error(), token.ErrInvalidToken.Error()+": ")
	}
	if !strings.HasPrefix(c.Subject, JobSubjectPrefix) || c.Hub != (token.Hub{Creator: c.Hub.Creator, Deploy: c.Hub.Deploy}) {
		return nil, fmt.Sprintf("token %s of %q is not a job token", c.ID, c.Subject)
	}
	if s.JobActive != nil {
		if err := s.JobActive(ctx, c.Subject); err != nil {
			if errors.Is(err, ErrJobRevoked) {
				return nil, fmt.Sprintf("job token %s of %s: %v", c.ID, c.Subject, err)
			}
			s.Log.WarnContext(ctx, "job token: could not check its run", "subject", c.Subject, "error", err)
			return nil, fmt.Sprintf("job token %s of %s: its run could not be checked", c.ID, c.Subject)
		}
	}
	return c, ""
}

// ErrJobRevoked is what JobActive wraps when a job token's run may no longer use it
// (it finished, was cancelled or deleted).
var ErrJobRevoked = errors.New("job token revoked")

// jobAllows is every action the job token's access grants on sc's resource: entries
// naming it, and repository patterns PREFIX/* above it (pull and push only, as the
// registry honours them, see registry.MachinePatterns), and pull on the hub's own
// images (accounts.SystemNamespace).
func jobAllows(access []scope.Access, sc scope.Scope) []string {
	var out []string
	if sc.Type == scope.TypeRepository && sc.Class == "" && accounts.IsSystemRepository(sc.Name) {
		// The hub's own images (the workflow agent) are public; a job's pod pulls
		// them with its pull secret, which the kubelet uses for every image of the hub.
		out = append(out, scope.Pull)
	}
	for _, a := range access {
		if a.Type != sc.Type || a.Class != sc.Class {
			continue
		}
		if a.Name == sc.Name {
			out = append(out, a.Actions...)
			continue
		}
		prefix, ok := strings.CutSuffix(a.Name, "/*")
		if a.Type != scope.TypeRepository || !ok || prefix == "" || strings.Contains(prefix, "*") || strings.HasPrefix(prefix, "/") ||
			!scope.Match(a.Scope(), sc.Name) {
			continue
		}
		for _, act := range a.Actions {
			if act == scope.Pull || act == scope.Push {
				out = append(out, act)
			}
		}
	}
	return out
}
