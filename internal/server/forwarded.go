package server

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Behind a reverse proxy every request's TCP peer is the proxy, so rate limits, the
// login guard, the access log and the audit log would see one client. A request from a
// trusted proxy (trusted_proxies) has its client address taken from the header the
// proxies append to (X-Forwarded-For or Forwarded), read from the right: each trusted
// proxy appends the address it received from, so the rightmost address that is not a
// trusted proxy is the client. Whatever a client wrote into the header itself sits to
// the left of that and is never read. A request from any other peer is its own client.

// clientAddress returns next behind the rewrite of r.RemoteAddr to the client's address
// (the peer's port kept); with no trusted proxies it returns next.
func clientAddress(proxies []netip.Prefix, header string, next http.Handler) http.Handler {
	if len(proxies) == 0 {
		return next
	}
	forwarded := strings.EqualFold(header, "Forwarded")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, port, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			next.ServeHTTP(w, r)
			return
		}
		if client, ok := forwardedClient(proxies, host, r.Header, forwarded); ok {
			r2 := r.Clone(r.Context())
			r2.RemoteAddr = net.JoinHostPort(client.String(), port)
			r = r2
		}
		next.ServeHTTP(w, r)
	})
}

// forwardedClient returns the client of a request from peer: when peer is a trusted
// proxy, the rightmost address of the header that is not one (or the leftmost, when
// all are); false when peer is not trusted or the header names nobody. An entry that
// is not an address ("unknown", an obfuscated name, garbage) stops the walk: the
// trusted proxy that wrote it is then the client, as nothing to its left can be
// believed.
func forwardedClient(proxies []netip.Prefix, peer string, h http.Header, forwarded bool) (netip.Addr, bool) {
	addr, err := netip.ParseAddr(peer)
	if err != nil || !trusted(proxies, addr.Unmap()) {
		return netip.Addr{}, false
	}
	var hops []string
	if forwarded {
		hops = forwardedFor(h.Values("Forwarded"))
	} else {
		for _, v := range h.Values("X-Forwarded-For") {
			for _, f := range strings.Split(v, ",") {
				hops = append(hops, strings.TrimSpace(f))
			}
		}
	}
	client := addr.Unmap()
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			break
		}
		client = a
		if !trusted(proxies, a) {
			break
		}
	}
	return client, client != addr.Unmap()
}

// forwardedFor returns the for= values of Forwarded headers (RFC 7239), in order.
func forwardedFor(values []string) []string {
	var out []string
	for _, v := range values {
		for _, elem := range strings.Split(v, ",") {
			found := ""
			for _, pair := range strings.Split(elem, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "for") {
					found = strings.Trim(strings.TrimSpace(val), `"`)
				}
			}
			out = append(out, found)
		}
	}
	return out
}

// parseHop reads one hop: an address, with or without a port, IPv6 in brackets or not.
func parseHop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}

func trusted(proxies []netip.Prefix, a netip.Addr) bool {
	for _, p := range proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
