package outbound

import (
	"net/netip"
)

// blocked are the address ranges a user-given URL may never reach unless
// allow-listed: everything that is not a public unicast address on the
// internet. Each entry names its class; the name goes to tests and docs only,
// never to the caller (a refusal does not say what a name resolved to).
var blocked = []struct {
	class  string
	prefix netip.Prefix
}{
	{"unspecified", netip.MustParsePrefix("0.0.0.0/8")}, // "this network", 0.0.0.0 included
	{"private", netip.MustParsePrefix("10.0.0.0/8")},
	{"cgnat", netip.MustParsePrefix("100.64.0.0/10")}, // 100.100.100.200 is Alibaba's metadata
	{"loopback", netip.MustParsePrefix("127.0.0.0/8")},
	{"link-local", netip.MustParsePrefix("169.254.0.0/16")}, // 169.254.169.254 is the cloud metadata address
	{"private", netip.MustParsePrefix("172.16.0.0/12")},
	{"reserved", netip.MustParsePrefix("192.0.0.0/24")}, // IETF protocol assignments
	{"documentation", netip.MustParsePrefix("192.0.2.0/24")},
	{"reserved", netip.MustParsePrefix("192.88.99.0/24")}, // 6to4 relay anycast
	{"private", netip.MustParsePrefix("192.168.0.0/16")},
	{"benchmarking", netip.MustParsePrefix("198.18.0.0/15")},
	{"documentation", netip.MustParsePrefix("198.51.100.0/24")},
	{"documentation", netip.MustParsePrefix("203.0.113.0/24")},
	{"multicast", netip.MustParsePrefix("224.0.0.0/4")},
	{"reserved", netip.MustParsePrefix("240.0.0.0/4")}, // 255.255.255.255, the broadcast address, included

	{"unspecified", netip.MustParsePrefix("::/128")},
	{"loopback", netip.MustParsePrefix("::1/128")},
	{"discard", netip.MustParsePrefix("100::/64")},
	{"nat64-local", netip.MustParsePrefix("64:ff9b:1::/48")},
	{"reserved", netip.MustParsePrefix("2001::/23")}, // IETF protocol assignments, Teredo included
	{"documentation", netip.MustParsePrefix("2001:db8::/32")},
	{"private", netip.MustParsePrefix("fc00::/7")}, // unique local; fd00:ec2::254 is the AWS metadata address
	{"link-local", netip.MustParsePrefix("fe80::/10")},
	{"site-local", netip.MustParsePrefix("fec0::/10")},
	{"multicast", netip.MustParsePrefix("ff00::/8")},
}

// Forms of IPv6 that carry an IPv4 address inside: the address is judged by
// the IPv4 one it leads to.
var (
	ipv4Compatible = netip.MustParsePrefix("::/96")        // ::a.b.c.d, deprecated
	nat64          = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052 well-known prefix
	sixToFour      = netip.MustParsePrefix("2002::/16")    // 2002:aabb:ccdd::/48
)

// classify returns the class of a blocked address and "" for a public one.
// IPv4 hidden in IPv6 (mapped, compatible, NAT64, 6to4) is judged as IPv4.
func classify(a netip.Addr) string {
	a = a.WithZone("")
	if v4, ok := embeddedIPv4(a); ok {
		if c := classify(v4); c != "" {
			return c
		}
		return ""
	}
	for _, b := range blocked {
		if b.prefix.Contains(a) {
			return b.class
		}
	}
	return ""
}

// embeddedIPv4 returns the IPv4 address that an IPv6 one stands for.
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	if a.Is4In6() {
		return a.Unmap(), true
	}
	if !a.Is6() {
		return netip.Addr{}, false
	}
	b := a.As16()
	switch {
	case a == netip.IPv6Unspecified() || a == netip.IPv6Loopback():
		return netip.Addr{}, false // judged as themselves
	case ipv4Compatible.Contains(a), nat64.Contains(a):
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), true
	}
	return netip.Addr{}, false
}

// allowed reports whether the client may connect to a: it is public, or the
// operator allow-listed it (in either of its IPv4/IPv6 spellings).
func (c *Client) allowed(a netip.Addr) bool {
	a = a.WithZone("")
	for _, p := range c.allow {
		if p.Contains(a) || p.Contains(a.Unmap()) {
			return true
		}
	}
	return classify(a) == ""
}
