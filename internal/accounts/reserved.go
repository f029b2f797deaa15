package accounts

import (
	"fmt"
	"regexp"
)

// reservedRe matches the namespace names no user or organisation may take: the hub
// serves the ChartMuseum API at /api/NAMESPACE/… beside its own API at /api/v1/, so a
// namespace "v1" (or a later API version's "v2" …) would collide with it.
var reservedRe = regexp.MustCompile(`^v[0-9]+$`)

// CheckNamespaceName is CheckName for names that become namespaces (users and
// organisations): it also refuses the reserved names.
func CheckNamespaceName(name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if reservedRe.MatchString(name) {
		return fmt.Errorf("name %q is reserved (it would collide with the hub API at /api/%s/): %w", name, name, ErrInvalid)
	}
	return nil
}
