package hubapi

import (
	"github.com/hubctl/hubctl/internal/auth/authz"
)

// requireHubRead refuses an access token without a hub:AREA:read scope (or hub:*:read).
// Sessions pass: what they may read is up to their user's rights, checked after.
func requireHubRead(p *authz.Principal, area string) error {
	if p.MayReadHub(area) {
		return nil
	}
	return denied("this access token may not read %s: that needs a token with the scope hub:%s:read, or a password login", area, area)
}
