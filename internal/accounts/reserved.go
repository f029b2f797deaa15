package accounts

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// SystemNamespace holds the images the hub publishes itself into its own stores (the
// workflow agent of the Kubernetes executor, internal/agentimage). No account may take
// the name; everybody may pull from it, nobody may push to it or delete from it, site
// admins included (internal/auth/authz, internal/registry), and neither retention nor
// garbage collection removes what it holds: the image of every job's pod must not be
// replaceable by anybody who could then read the job tokens inside those pods.
const SystemNamespace = "hubctl-system"

// IsSystemRepository reports whether repository (or a namespace probe "NS/") lies in
// SystemNamespace.
func IsSystemRepository(repository string) bool {
	ns, _, ok := strings.Cut(repository, "/")
	return ok && ns == SystemNamespace
}

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
	return apiVersionRe.MatchString(name) || slices.Contains(ReservedNames, name) || name == SystemNamespace
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
	if name == SystemNamespace {
		return fmt.Errorf("name %q is reserved (the hub keeps its own images there): %w", name, ErrInvalid)
	}
	if slices.Contains(ReservedNames, name) {
		return fmt.Errorf("name %q is reserved (the hub serves /%s itself): %w", name, name, ErrInvalid)
	}
	return nil
}
