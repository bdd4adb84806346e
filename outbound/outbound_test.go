package outbound

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// guard replaces the client's dialer: it records every address the client
// tried to reach and connects only to loopback (the tests' own servers).
// Anything else is recorded and refused here, so no test ever sends a packet
// beyond this machine even if a rule were broken.
type guard struct {
	mu    sync.Mutex
	dials []string
}

func (g *guard) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	g.mu.Lock()
	g.dials = append(g.dials, addr)
	g.mu.Unlock()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().IsLoopback() {
		return nil, errors.New("test guard: not dialing " + addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

func (g *guard) dialed() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.dials...)
}

// names is a resolver from a fixed table; it counts lookups.
type names struct {
	mu      sync.Mutex
	table   map[string][]string
	lookups int
}

func (n *names) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.lookups++
	var out []netip.Addr
	for _, s := range n.table[host] {
		out = append(out, netip.MustParseAddr(s))
	}
	if out == nil {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return out, nil
}

func newTestClient(t *testing.T, cfg Config) (*Client, *guard) {
	t.Helper()
	c := New(cfg)
	g := &guard{}
	c.dial = g.dial
	return c, g
}

func get(t *testing.T, c *Client, url string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err == nil {
		t.Cleanup(func() { resp.Body.Close() })
	}
	return resp, err
}

func wantRefused(t *testing.T, err error, reason string) {
	t.Helper()
	var re *RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("error = %v, want *RefusedError (%s)", err, reason)
	}
	if re.Reason != reason {
		t.Fatalf("reason = %q, want %q", re.Reason, reason)
	}
}

// Every class of address that must not be reached, in each spelling.
var refusedAddresses = []struct{ name, addr string }{
	{"loopback", "127.0.0.1"},
	{"loopback_other", "127.3.4.5"},
	{"loopback_v6", "::1"},
	{"unspecified", "0.0.0.0"},
	{"this_network", "0.1.2.3"},
	{"unspecified_v6", "::"},
	{"private_10", "10.0.0.1"},
	{"private_172", "172.16.5.4"},
	{"private_172_top", "172.31.255.255"},
	{"private_192", "192.168.1.1"},
	{"unique_local", "fc00::1"},
	{"unique_local_fd", "fd12:3456::1"},
	{"link_local", "169.254.10.20"},
	{"link_local_v6", "fe80::1"},
	{"link_local_v6_zone", "fe80::1%25eth0"},
	{"metadata_v4", "169.254.169.254"},
	{"metadata_aws_v6", "fd00:ec2::254"},
	{"metadata_alibaba", "100.100.100.200"},
	{"cgnat", "100.64.0.1"},
	{"cgnat_top", "100.127.255.254"},
	{"multicast", "224.0.0.1"},
	{"multicast_v6", "ff02::1"},
	{"broadcast", "255.255.255.255"},
	{"reserved_240", "240.0.0.1"},
	{"documentation", "192.0.2.10"},
	{"benchmarking", "198.18.0.1"},
	{"ietf_protocol", "192.0.0.8"},
	{"mapped_loopback", "::ffff:127.0.0.1"},
	{"mapped_private", "::ffff:10.0.0.1"},
	{"mapped_metadata", "::ffff:169.254.169.254"},
	{"mapped_hex", "::ffff:7f00:1"},
	{"compatible_loopback", "::127.0.0.1"},
	{"compatible_private", "::10.0.0.1"},
	{"nat64_loopback", "64:ff9b::127.0.0.1"},
	{"nat64_metadata", "64:ff9b::a9fe:a9fe"},
	{"nat64_private", "64:ff9b::192.168.0.1"},
	{"nat64_local_use", "64:ff9b:1::1"},
	{"sixtofour_private", "2002:c0a8:0101::1"},
	{"sixtofour_loopback", "2002:7f00:0001::1"},
	{"teredo", "2001:0::1"},
	{"site_local_v6", "fec0::1"},
	{"documentation_v6", "2001:db8::1"},
	{"discard_v6", "100::1"},
}

func hostOf(addr string) string {
	if strings.Contains(addr, ":") {
		return "[" + addr + "]"
	}
	return addr
}

func TestRefusesAddressClasses(t *testing.T) {
	for _, tc := range refusedAddresses {
		t.Run(tc.name+"/literal", func(t *testing.T) {
			c, g := newTestClient(t, Config{})
			_, err := get(t, c, "http://"+hostOf(tc.addr)+":8080/latest/meta-data/")
			wantRefused(t, err, ReasonAddress)
			if d := g.dialed(); len(d) > 0 {
				t.Fatalf("dialed %v before refusing", d)
			}
		})
		t.Run(tc.name+"/by_name", func(t *testing.T) {
			addr, _, _ := strings.Cut(tc.addr, "%")
			res := &names{table: map[string][]string{"hook.example.com": {addr}}}
			c, g := newTestClient(t, Config{Resolver: res})
			_, err := get(t, c, "https://hook.example.com/x")
			wantRefused(t, err, ReasonAddress)
			if d := g.dialed(); len(d) > 0 {
				t.Fatalf("dialed %v before refusing", d)
			}
			if strings.Contains(err.Error(), addr) {
				t.Fatalf("error %q tells what the name resolved to", err)
			}
		})
	}
}

func TestClassifyPublicAddresses(t *testing.T) {
	for _, a := range []string{"8.8.8.8", "1.1.1.1", "93.184.216.34", "172.32.0.1", "100.128.0.1", "169.255.0.1",
		"2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::8.8.8.8", "2002:0808:0808::1", "2a00:1450::1"} {
		if c := classify(netip.MustParseAddr(a)); c != "" {
			t.Errorf("classify(%s) = %q, want public", a, c)
		}
	}
}

func TestPublicAddressIsDialedPinned(t *testing.T) {
	// The guard refuses to connect anywhere but loopback: the test only
	// checks that the client would dial the resolved public address.
	res := &names{table: map[string][]string{"public.example.com": {"93.184.216.34"}}}
	c, g := newTestClient(t, Config{Resolver: res})
	_, err := get(t, c, "http://public.example.com/")
	if err == nil {
		t.Fatal("request succeeded; the guard should have stopped it")
	}
	if d := g.dialed(); len(d) != 1 || d[0] != "93.184.216.34:80" {
		t.Fatalf("dialed %v, want the resolved address pinned", d)
	}
}

func TestMixedAnswerIsRefusedAsAWhole(t *testing.T) {
	res := &names{table: map[string][]string{"rebind.example.com": {"93.184.216.34", "127.0.0.1"}}}
	c, g := newTestClient(t, Config{Resolver: res})
	_, err := get(t, c, "http://rebind.example.com/")
	wantRefused(t, err, ReasonAddress)
	if d := g.dialed(); len(d) > 0 {
		t.Fatalf("dialed %v", d)
	}
}

func TestAllowListLetsPrivateAddressesThrough(t *testing.T) {
	allow, err := ParseAllow("10.0.0.0/8, fd00::/8")
	if err != nil {
		t.Fatal(err)
	}
	c, g := newTestClient(t, Config{Allow: allow})
	get(t, c, "http://10.1.2.3:9000/hook")
	get(t, c, "http://[::ffff:10.1.2.3]:9001/hook") // the mapped spelling too
	get(t, c, "http://[fd00:ec2::254]/")
	_, err = get(t, c, "http://192.168.1.1/")
	wantRefused(t, err, ReasonAddress)
	want := []string{"10.1.2.3:9000", "10.1.2.3:9001", "[fd00:ec2::254]:80"}
	if d := g.dialed(); fmt.Sprint(d) != fmt.Sprint(want) {
		t.Fatalf("dialed %v, want %v", d, want)
	}
}

func TestControlGuardsTheSocket(t *testing.T) {
	c := New(Config{})
	for _, a := range []string{"127.0.0.1:80", "[::1]:80", "10.0.0.1:443", "[::ffff:169.254.169.254]:80", "garbage"} {
		if err := c.control("tcp", a, nil); err == nil {
			t.Errorf("control(%s) allowed the connection", a)
		}
	}
	if err := c.control("tcp", "93.184.216.34:443", nil); err != nil {
		t.Errorf("control refused a public address: %v", err)
	}
}

func TestSchemes(t *testing.T) {
	c, g := newTestClient(t, Config{})
	for _, u := range []string{"file:///etc/passwd", "gopher://127.0.0.1:70/", "ftp://example.com/", "http:///nohost", "unix:///var/run/docker.sock"} {
		t.Run(u, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
			if err != nil {
				return // refused by the standard library already
			}
			_, err = c.Do(req)
			wantRefused(t, err, ReasonScheme)
		})
	}
	if d := g.dialed(); len(d) > 0 {
		t.Fatalf("dialed %v", d)
	}
}

// local starts a loopback server and a client allowed to reach it.
func local(t *testing.T, cfg Config, h http.Handler) (*Client, *guard, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg.Allow = append(cfg.Allow, netip.MustParsePrefix("127.0.0.1/32"))
	c, g := newTestClient(t, cfg)
	return c, g, srv.URL
}

func TestRedirects(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/hop/{n}", func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscan(r.PathValue("n"), &n)
		if n == 0 {
			io.WriteString(w, "arrived")
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/hop/%d", n-1), http.StatusFound)
	})
	mux.HandleFunc("/to", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("u"), http.StatusFound)
	})

	t.Run("within_the_limit", func(t *testing.T) {
		c, _, base := local(t, Config{MaxRedirects: 2}, mux)
		resp, err := get(t, c, base+"/hop/2")
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := io.ReadAll(resp.Body); string(b) != "arrived" {
			t.Fatalf("body %q", b)
		}
	})
	t.Run("over_the_limit", func(t *testing.T) {
		c, _, base := local(t, Config{MaxRedirects: 2}, mux)
		_, err := get(t, c, base+"/hop/3")
		wantRefused(t, err, ReasonRedirect)
	})
	t.Run("none_followed_by_default", func(t *testing.T) {
		c, _, base := local(t, Config{}, mux)
		_, err := get(t, c, base+"/hop/1")
		wantRefused(t, err, ReasonRedirect)
	})
	for _, target := range []string{"http://169.254.169.254/latest/meta-data/", "http://[::ffff:10.0.0.1]/", "http://0.0.0.0:22/", "http://internal.example.com/"} {
		t.Run("hop_to_"+target, func(t *testing.T) {
			res := &names{table: map[string][]string{"internal.example.com": {"10.9.9.9"}}}
			c, g, base := local(t, Config{MaxRedirects: 5, Resolver: res}, mux)
			_, err := get(t, c, base+"/to?u="+target)
			wantRefused(t, err, ReasonAddress)
			for _, d := range g.dialed() {
				if !strings.HasPrefix(d, "127.0.0.1:") {
					t.Fatalf("dialed %s", d)
				}
			}
		})
	}
	t.Run("hop_to_another_scheme", func(t *testing.T) {
		c, _, base := local(t, Config{MaxRedirects: 5}, mux)
		_, err := get(t, c, base+"/to?u=file:///etc/passwd")
		wantRefused(t, err, ReasonScheme)
	})
}

func TestBodyLimit(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			for range 10 {
				io.WriteString(w, strings.Repeat("x", 100))
				w.(http.Flusher).Flush()
			}
			return
		}
		w.Header().Set("Content-Length", "1000")
		io.WriteString(w, strings.Repeat("x", 1000))
	})
	c, _, base := local(t, Config{MaxBody: 500}, h)
	_, err := get(t, c, base+"/declared")
	wantRefused(t, err, ReasonTooLarge)

	resp, err := get(t, c, base+"/chunked")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	wantRefused(t, err, ReasonTooLarge)
	if len(b) != 500 {
		t.Fatalf("read %d bytes before the limit, want 500", len(b))
	}

	c2, _, base2 := local(t, Config{MaxBody: 1000}, h)
	resp, err = get(t, c2, base2+"/chunked")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(resp.Body); err != nil || len(b) != 1000 {
		t.Fatalf("exact limit: %d bytes, %v", len(b), err)
	}
}

func TestTimeBounded(t *testing.T) {
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	c, _, base := local(t, Config{Timeout: 200 * time.Millisecond}, h)
	defer close(release)
	start := time.Now()
	_, err := get(t, c, base+"/slow")
	if err == nil {
		t.Fatal("a server that never answers did not time out")
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("took %v", el)
	}
}

func TestResolvesOncePerConnection(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	res := &names{table: map[string][]string{"hook.example.com": {"127.0.0.1"}}}
	c, g := newTestClient(t, Config{Resolver: res, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	resp, err := get(t, c, "http://hook.example.com:"+port+"/")
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	if res.lookups != 1 {
		t.Fatalf("%d lookups for one connection", res.lookups)
	}
	if d := g.dialed(); len(d) != 1 || d[0] != "127.0.0.1:"+port {
		t.Fatalf("dialed %v", d)
	}
}

func TestCheck(t *testing.T) {
	res := &names{table: map[string][]string{"ok.example.com": {"93.184.216.34"}, "bad.example.com": {"10.0.0.1"}}}
	c, g := newTestClient(t, Config{Resolver: res})
	if err := c.Check(t.Context(), "https://ok.example.com/hook"); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, c.Check(t.Context(), "https://bad.example.com/hook"), ReasonAddress)
	wantRefused(t, c.Check(t.Context(), "http://[::1]:8080/"), ReasonAddress)
	wantRefused(t, c.Check(t.Context(), "ftp://ok.example.com/"), ReasonScheme)
	if err := c.Check(t.Context(), "https://nowhere.example.com/"); err == nil {
		t.Fatal("an unknown name passed the check")
	}
	if d := g.dialed(); len(d) > 0 {
		t.Fatalf("Check connected: %v", d)
	}
}

func TestParseAllow(t *testing.T) {
	got, err := ParseAllow(" 10.0.0.0/8,192.168.1.20 , fd00::1, 172.16.3.4/12,")
	if err != nil {
		t.Fatal(err)
	}
	want := "[10.0.0.0/8 192.168.1.20/32 fd00::1/128 172.16.0.0/12]"
	if fmt.Sprint(got) != want {
		t.Fatalf("got %v, want %s", got, want)
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0"} {
		if _, err := ParseAllow(bad); err == nil {
			t.Errorf("ParseAllow(%q) accepted it", bad)
		}
	}
	if got, err := ParseAllow(""); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v %v", got, err)
	}
}
