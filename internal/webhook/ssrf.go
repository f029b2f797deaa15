package webhook

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ErrForbiddenAddress: a webhook tried to reach an address the SSRF guard refuses.
var ErrForbiddenAddress = errors.New("webhook: address not allowed")

// Ranges no webhook may reach unless allowed: the hub's own host and network, and the
// cloud metadata service. Checked on the address actually connected to (a dialer
// Control function, after DNS), so a name that resolves, or later rebinds, to one of
// them is refused too.
var forbidden = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network", 0.0.0.0 reaches loopback on Linux
	netip.MustParsePrefix("10.0.0.0/8"),      // private
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT, cloud-internal
	netip.MustParsePrefix("127.0.0.0/8"),     // loopback
	netip.MustParsePrefix("169.254.0.0/16"),  // link-local, metadata (169.254.169.254)
	netip.MustParsePrefix("172.16.0.0/12"),   // private
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.168.0.0/16"),  // private
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("224.0.0.0/4"),     // multicast
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("::/128"),          // unspecified
	netip.MustParsePrefix("::1/128"),         // loopback
	netip.MustParsePrefix("fc00::/7"),        // unique local (fd00:ec2::254, the AWS metadata address, too)
	netip.MustParsePrefix("fe80::/10"),       // link-local
	netip.MustParsePrefix("ff00::/8"),        // multicast
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64 of any IPv4, forbidden ones included
	netip.MustParsePrefix("2002::/16"),       // 6to4 of any IPv4
	netip.MustParsePrefix("::ffff:0:0/96"),   // IPv4-mapped (unmapped before the check anyway)
	netip.MustParsePrefix("100::/64"),        // discard
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
}

// Guard decides which addresses webhooks may connect to.
type Guard struct {
	// Allow lists ranges opened despite the forbidden list (webhooks.allow_addresses):
	// a receiver on the hub's own network, 127.0.0.1 in tests.
	Allow []netip.Prefix
}

// Check reports whether a connection to addr ("ip:port") is allowed.
func (g Guard) Check(addr string) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return fmt.Errorf("%w: %s is not an IP address and port", ErrForbiddenAddress, addr)
	}
	ip := ap.Addr().Unmap()
	for _, p := range g.Allow {
		if p.Contains(ip) {
			return nil
		}
	}
	for _, p := range forbidden {
		if p.Contains(ip) {
			return fmt.Errorf("%w: %s is in %s (open it with webhooks.allow_addresses)", ErrForbiddenAddress, ip, p)
		}
	}
	return nil
}

// Timeout bounds one delivery attempt, connection to last byte.
const Timeout = 15 * time.Second

// NewClient returns the HTTP client deliveries use: the guard checks every address it
// connects to, no proxy from the environment (the guard would check the proxy, not the
// receiver), redirects are not followed (a 3xx is the answer), and each attempt ends
// after Timeout.
func NewClient(g Guard) *http.Client {
	d := &net.Dialer{
		Timeout: 10 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error { return g.Check(address) },
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: Timeout,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
