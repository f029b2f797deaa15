package accounts

import (
	"fmt"
	"regexp"
	"slices"
)

// ReservedNames are the namespace names no user or organisation may take, because a
// route of the hub's listener hangs on them: the web UI serves a namespace's page at
// /NAMESPACE, so a namespace "login" or "static" would collide with the hub's own
// pages, and "v2", "api", "token", "charts" … with its APIs. This is the one list:
// internal/web and internal/server mount nothing at the top level that is not here.
//
// "admin" is missing on purpose: it is the bootstrap account's own name (hubs in use
// have that namespace), so the site-admin pages live under /settings/admin/.
var ReservedNames = []string{
	"api", "charts", "docs", "explore", "favicon.ico", "healthz", "help", "login",
	"logout", "metrics", "readyz", "robots.txt", "search", "settings", "static", "token",
	"v2",
}

// apiVersionRe matches the other reserved names: the hub serves the ChartMuseum API
// at /api/NAMESPACE/… beside its own API at /api/v1/, so a namespace "v1" (or a later
// API version's "v2" …) would collide with it.
var apiVersionRe = regexp.MustCompile(`^v[0-9]+$`)

// IsReserved reports whether name is a reserved namespace name.
func IsReserved(name string) bool {
	return apiVersionRe.MatchString(name) || slices.Contains(ReservedNames, name)
}

// CheckNamespaceName is CheckName for names that become namespaces (users and
// organisations): it also refuses the reserved names.
func CheckNamespaceName(name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if apiVersionRe.MatchString(name) {
		return fmt.Errorf("name %q is reserved (it would collide with the hub API at /api/%s/): %w", name, name, ErrInvalid)
	}
	if slices.Contains(ReservedNames, name) {
		return fmt.Errorf("name %q is reserved (the hub serves /%s itself): %w", name, name, ErrInvalid)
	}
	return nil
}
