package web

import (
	"errors"
	"net/http"
	"net/url"
)

// ContentSecurityPolicy is sent with every response: only the hub's own script and
// stylesheet run (no inline script, style or event handler: templates have none), no
// plugin, no <base>, forms post only here, and no other site may frame a page.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// setSecurityHeaders sets the headers every response of the web UI carries. Pages
// may show private names, so no shared cache keeps them; static assets override
// Cache-Control.
func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// errCrossOrigin refuses a state-changing request that does not come from one of the
// hub's own pages.
var errCrossOrigin = errors.New("cross-origin request refused")

// sameOrigin checks a state-changing request: the browser's own word first
// (http.CrossOriginProtection reads Sec-Fetch-Site and Origin), then an Origin or,
// without one, a Referer that must be present and name this host. Non-browser clients
// have no business posting forms here, so a request with neither is refused too.
func (h *Handler) sameOrigin(r *http.Request) error {
	if err := h.cop.Check(r); err != nil {
		return errCrossOrigin
	}
	src := r.Header.Get("Origin")
	if src == "null" {
		// A sandboxed frame or a redirect chain that hides where it came from.
		return errCrossOrigin
	}
	if src == "" {
		src = r.Header.Get("Referer")
	}
	if src == "" {
		return errCrossOrigin
	}
	u, err := url.Parse(src)
	if err != nil || u.Host == "" || u.Host != r.Host {
		return errCrossOrigin
	}
	return nil
}
