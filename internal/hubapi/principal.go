package hubapi

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/ratelimit"
	"github.com/hubctl/hubctl/internal/errcode"
)

// Authenticator finds who sends a request exactly as the API does (HTTP Basic with a
// password or an access token, Bearer with an access token or a registry token, with
// the API's failed-login limit), for other parts of the hub that accept the same
// credentials: the chart repository.
type Authenticator struct{ a *api }

// NewAuthenticator returns an Authenticator over the options the API would get.
func NewAuthenticator(o Options) *Authenticator {
	return &Authenticator{a: New(o).(*api)}
}

// Principal returns the principal of r, or nil for a request without an
// Authorization header or with a workflow job's token (which signs in to the deploy
// endpoints alone). Bad credentials are an *errcode.Error (401); too many failed
// sign-ins one with status 429 (and Retry-After set on w).
func (x *Authenticator) Principal(w http.ResponseWriter, r *http.Request) (*authz.Principal, error) {
	if r.Header.Get("Authorization") == "" {
		return nil, nil
	}
	p, err := x.a.authenticate(r)
	var tm *ratelimit.TooManyError
	if errors.As(err, &tm) {
		x.a.log.WarnContext(r.Context(), "sign-in refused by the rate limit", "remote", remoteAddr(r), "reason", tm.Reason)
		w.Header().Set("Retry-After", strconv.Itoa(tm.RetryAfterSeconds()))
		return nil, errcode.New(errcode.TooManyRequests, "%s; retry in %d s", tm.Reason, tm.RetryAfterSeconds())
	}
	if err == nil && p.Job != nil {
		// A job's token signs in to the deploy endpoints alone: anonymous here.
		return nil, nil
	}
	return p, err
}
