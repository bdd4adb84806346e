package http

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// CORS lets pages of other origins call the API and fetch the bytes
// (IMAGED_CORS_ORIGINS). The API authenticates with bearer tokens, never
// cookies, so credentials are never allowed: a page of an allowed origin
// must hold a token itself, and "*" is safe to offer.
type CORS struct {
	any     bool
	origins []string // "https://app.example.com", lower case, no trailing slash
}

// corsMaxAge is how long a browser may cache a preflight answer, seconds.
const corsMaxAge = 600

var (
	corsMethods = "GET, HEAD, POST, DELETE"
	corsHeaders = "Authorization, Content-Type, Idempotency-Key, Prefer, X-Request-Id, If-None-Match, Range"
	corsExpose  = "Location, Retry-After, X-Request-Id, Idempotent-Replayed, Preference-Applied, ETag, Content-Range, Content-Length"
)

// ParseCORSOrigins reads the list IMAGED_CORS_ORIGINS holds: origins
// (scheme://host[:port]) separated by commas or spaces, or "*" for any.
func ParseCORSOrigins(list string) (*CORS, error) {
	c := &CORS{}
	for _, o := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' }) {
		if o == "*" {
			c.any = true
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return nil, fmt.Errorf("IMAGED_CORS_ORIGINS: %q is not an origin such as https://app.example.com", o)
		}
		c.origins = append(c.origins, strings.ToLower(u.Scheme+"://"+u.Host))
	}
	if !c.any && len(c.origins) == 0 {
		return nil, nil
	}
	return c, nil
}

func (c *CORS) allows(origin string) bool {
	return c.any || slices.Contains(c.origins, strings.ToLower(origin))
}

// wrap answers preflights and marks answers readable by allowed origins,
// on /api and /cdn only (the page and its token endpoint stay same-origin).
func (c *CORS) wrap(next http.Handler) http.Handler {
	if c == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !(strings.HasPrefix(r.URL.Path, "/api/") || strings.HasPrefix(r.URL.Path, "/cdn/")) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if preflight {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
		}
		if !c.allows(origin) {
			if preflight {
				// Answered, without permission: the browser refuses the call.
				w.WriteHeader(http.StatusNoContent)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if c.any {
			h.Set("Access-Control-Allow-Origin", "*")
		} else {
			h.Set("Access-Control-Allow-Origin", origin)
		}
		if preflight {
			h.Set("Access-Control-Allow-Methods", corsMethods)
			h.Set("Access-Control-Allow-Headers", corsHeaders)
			h.Set("Access-Control-Max-Age", fmt.Sprint(corsMaxAge))
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", corsExpose)
		next.ServeHTTP(w, r)
	})
}
