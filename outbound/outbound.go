// Package outbound is the HTTP client for every call the service makes to a
// URL that a user gave (webhook receivers, import by URL). It is safe against
// server-side request forgery: only http and https; the host is resolved once
// per connection and the connection is pinned to the checked address, so DNS
// rebinding cannot swap it; loopback, private, link-local, CGNAT, multicast,
// unspecified, broadcast, reserved and cloud-metadata addresses (also in their
// IPv4-mapped, IPv4-compatible, NAT64 and 6to4 IPv6 spellings) are refused
// before any connection unless the operator allow-listed them
// (IMAGED_OUTBOUND_ALLOW); every redirect hop is checked the same way and at
// most MaxRedirects are followed; dialing, the TLS handshake, the response
// headers and the whole exchange are bounded in time, and the response body in
// size. Environment proxies are ignored: a proxy would be a way around the
// checks.
//
// A refusal is a *RefusedError whose message says what rule refused the
// request, never what a name resolved to or what answered there.
package outbound

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Config bounds the client. Zero values take the defaults below.
type Config struct {
	// Allow lists addresses that may be reached although they are not
	// public (a receiver on the operator's own network). Empty: none.
	Allow []netip.Prefix
	// Timeout bounds a whole exchange, redirects and reading the body
	// included. Default 30s.
	Timeout time.Duration
	// MaxRedirects is how many redirects are followed; 0 follows none, and
	// a redirect beyond the limit is an error.
	MaxRedirects int
	// MaxBody bounds the response body: reading past it fails. Default 32 MiB.
	MaxBody int64
	// Resolver looks up host names; nil uses the system's.
	Resolver Resolver
}

// Resolver is the part of *net.Resolver the client uses.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Defaults for a zero Config.
const (
	DefaultTimeout = 30 * time.Second
	DefaultMaxBody = 32 << 20
	dialTimeout    = 5 * time.Second
	tlsTimeout     = 5 * time.Second
	headerTimeout  = 15 * time.Second
	maxHeaderBytes = 64 << 10
)

// Client sends requests under the rules of the package.
type Client struct {
	allow    []netip.Prefix
	maxBody  int64
	resolver Resolver
	http     *http.Client
	// dial connects to a checked address; tests replace it to make sure
	// nothing but loopback is ever reached.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// RefusedError is a request the rules refused. Reason is safe to show the
// user who gave the URL.
type RefusedError struct {
	Reason string
}

func (e *RefusedError) Error() string { return "outbound: refused: " + e.Reason }

// Reasons of a RefusedError.
const (
	ReasonScheme   = "only http and https URLs are allowed"
	ReasonAddress  = "the destination address is not allowed"
	ReasonRedirect = "too many redirects"
	ReasonTooLarge = "the response is too large"
)

// New returns a client with cfg's rules.
func New(cfg Config) *Client {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.MaxRedirects < 0 {
		cfg.MaxRedirects = 0
	}
	c := &Client{allow: cfg.Allow, maxBody: cfg.MaxBody, resolver: cfg.Resolver}
	if c.resolver == nil {
		c.resolver = net.DefaultResolver
	}
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second, Control: c.control}
	c.dial = d.DialContext
	transport := &http.Transport{
		Proxy:                  nil,
		DialContext:            c.dialContext,
		TLSHandshakeTimeout:    tlsTimeout,
		ResponseHeaderTimeout:  min(headerTimeout, cfg.Timeout),
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: maxHeaderBytes,
		MaxIdleConns:           64,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        60 * time.Second,
		ForceAttemptHTTP2:      true,
	}
	maxRedirects := cfg.MaxRedirects
	c.http = &http.Client{
		Transport: transport,
		Timeout:   cfg.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > maxRedirects {
				return &RefusedError{Reason: ReasonRedirect}
			}
			return checkURL(req)
		},
	}
	return c
}

// Do sends req under the rules and returns the response, whose body stops
// with a *RefusedError past MaxBody. The caller closes the body.
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	if err := checkURL(req); err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > c.maxBody {
		resp.Body.Close()
		return nil, &RefusedError{Reason: ReasonTooLarge}
	}
	resp.Body = &limitedBody{r: resp.Body, left: c.maxBody}
	return resp, nil
}

// Check tells whether a request to rawURL would be refused, resolving its host
// but connecting nowhere: an early answer for a URL a user just gave. The
// address is checked again on every connection.
func (c *Client) Check(ctx context.Context, rawURL string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return &RefusedError{Reason: ReasonScheme}
	}
	if err := checkURL(req); err != nil {
		return err
	}
	port := req.URL.Port()
	if port == "" {
		port = "80"
	}
	_, err = c.resolve(ctx, net.JoinHostPort(req.URL.Hostname(), port))
	return err
}

func checkURL(req *http.Request) error {
	if req.URL == nil || (req.URL.Scheme != "http" && req.URL.Scheme != "https") || req.URL.Hostname() == "" {
		return &RefusedError{Reason: ReasonScheme}
	}
	return nil
}

// dialContext resolves the host once, refuses the connection if any address
// it resolves to is not allowed (a name that mixes public and private
// addresses is refused as a whole), and dials the checked addresses only.
func (c *Client) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	addrs, err := c.resolve(ctx, addr)
	if err != nil {
		return nil, err
	}
	var firstErr error
	for _, a := range addrs {
		conn, err := c.dial(ctx, network, a.String())
		if err == nil {
			return conn, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, firstErr
}

// resolve turns host:port into checked addresses with the port.
func (c *Client) resolve(ctx context.Context, hostport string) ([]netip.AddrPort, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, &RefusedError{Reason: ReasonAddress}
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return nil, &RefusedError{Reason: ReasonAddress}
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		ctx, cancel := context.WithTimeout(ctx, dialTimeout)
		defer cancel()
		ips, err = c.resolver.LookupNetIP(ctx, "ip", strings.TrimSuffix(host, "."))
		if err != nil {
			return nil, &lookupError{host: host, err: err}
		}
	}
	if len(ips) == 0 {
		return nil, &lookupError{host: host, err: errors.New("no addresses")}
	}
	out := make([]netip.AddrPort, 0, len(ips))
	for _, ip := range ips {
		if !c.allowed(ip) {
			return nil, &RefusedError{Reason: ReasonAddress}
		}
		out = append(out, netip.AddrPortFrom(ip.WithZone("").Unmap(), uint16(port)))
	}
	return out, nil
}

// control checks the address the socket is about to connect to: a second
// guard under dialContext, so that no code path dials an unchecked address.
func (c *Client) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !c.allowed(ap.Addr()) {
		return &RefusedError{Reason: ReasonAddress}
	}
	return nil
}

// ErrNoSuchHost is what errors.Is finds in the error of a request whose
// host name did not resolve.
var ErrNoSuchHost = errors.New("outbound: the host name does not resolve")

// lookupError is a name that did not resolve; it names the host the user gave
// and nothing the resolver said.
type lookupError struct {
	host string
	err  error
}

func (e *lookupError) Error() string        { return fmt.Sprintf("outbound: cannot resolve %q", e.host) }
func (e *lookupError) Unwrap() error        { return e.err }
func (e *lookupError) Is(target error) bool { return target == ErrNoSuchHost }

// limitedBody fails with a *RefusedError once more than left bytes were read.
type limitedBody struct {
	r    io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, &RefusedError{Reason: ReasonTooLarge}
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n - 1, &RefusedError{Reason: ReasonTooLarge}
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.r.Close() }

// ParseAllow reads IMAGED_OUTBOUND_ALLOW: comma-separated CIDR prefixes or
// single addresses ("10.0.0.0/8, 192.168.1.20, fd00::/8").
func ParseAllow(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("outbound allow-list: %q is not a CIDR prefix", f)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("outbound allow-list: %q is not an IP address or CIDR prefix", f)
		}
		a = a.WithZone("")
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
