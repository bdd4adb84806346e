package main

import (
	"flag"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/imaged/imaged/outbound"
)

// config is everything the commands read. Each field is one setting below:
// a flag and an IMAGED_* variable (the README's configuration table lists them).
type config struct {
	Addr            string
	DataDir         string
	BaseURL         string
	PublicURL       string
	LogLevel        string
	LogFormat       string
	JWTSecret       string
	JWKSURL         string
	JWTIssuer       string
	JWTAudience     string
	JWTMaxTTL       time.Duration
	SecretWithJWKS  bool
	BodyIdleTimeout time.Duration
	MetricsAddr     string
	MetricsToken    string
	MaxFileSize     int64
	MaxPixels       int64
	KeepMetadata    bool
	ImageCache      int
	MaxFiles        int
	DevToken        string
	ShutdownTimeout time.Duration
	DatabaseURL     string
	DBMaxConns      int
	DBQueryTimeout  time.Duration

	QuotaPerDay       int
	QuotaConcurrent   int
	GenerationTimeout time.Duration
	Workers           int
	JobLease          time.Duration
	DefaultProvider   string
	ModelsFile        string

	OutboundAllow []netip.Prefix
	ImportTimeout time.Duration

	// The gallery page and other origins' pages.
	CORSOrigins     string
	OIDCIssuer      string
	OIDCClientID    string
	OIDCScopes      string
	OIDCAudience    string
	C2PA            bool
	C2PACertFile    string
	C2PAKeyFile     string
	RenderWorkers   int
	RenderQueue     int
	RenderTimeout   time.Duration
	RenderMaxSide   int
	RenderIsolation string
	Variants        string
	SigningKey      string
}

// setting binds one config field to a flag and an environment variable.
type setting struct {
	flag, env, def, help string
	set                  func(c *config, v string) error
}

func str(p func(*config) *string) func(*config, string) error {
	return func(c *config, v string) error { *p(c) = v; return nil }
}

func integer(name string, min int64, p func(*config) *int64) func(*config, string) error {
	return func(c *config, v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < min {
			return fmt.Errorf("%s must be a whole number of at least %d, got %q", name, min, v)
		}
		*p(c) = n
		return nil
	}
}

func smallInt(name string, min int, p func(*config) *int) func(*config, string) error {
	return func(c *config, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < min {
			return fmt.Errorf("%s must be a whole number of at least %d, got %q", name, min, v)
		}
		*p(c) = n
		return nil
	}
}

func duration(name string, p func(*config) *time.Duration) func(*config, string) error {
	return func(c *config, v string) error {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d <= 0 {
			return fmt.Errorf("%s must be a positive duration such as 30s, got %q", name, v)
		}
		*p(c) = d
		return nil
	}
}

// optionalDuration is duration where 0 (or empty) means "off".
func optionalDuration(name string, p func(*config) *time.Duration) func(*config, string) error {
	return func(c *config, v string) error {
		if v = strings.TrimSpace(v); v == "" || v == "0" {
			*p(c) = 0
			return nil
		}
		return duration(name, p)(c, v)
	}
}

func boolean(name string, p func(*config) *bool) func(*config, string) error {
	return func(c *config, v string) error {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%s must be true or false, got %q", name, v)
		}
		*p(c) = b
		return nil
	}
}

var settings = []setting{
	{"addr", "IMAGED_ADDR", "127.0.0.1:8080", "address to listen on", str(func(c *config) *string { return &c.Addr })},
	{"data-dir", "IMAGED_DATA_DIR", "./data", "directory for the SQLite file, the blobs and the generated secret", str(func(c *config) *string { return &c.DataDir })},
	{"base-url", "IMAGED_BASE_URL", "", "public base URL of this service, for image URLs (default: the request's Host)", str(func(c *config) *string { return &c.BaseURL })},
	{"public-url", "IMAGED_PUBLIC_URL", "", "public base URL of a CDN or bucket that serves the blobs; image URLs point there", str(func(c *config) *string { return &c.PublicURL })},
	{"log-level", "IMAGED_LOG_LEVEL", "info", "debug, info, warn or error", str(func(c *config) *string { return &c.LogLevel })},
	{"log-format", "IMAGED_LOG_FORMAT", "text", "text or json", str(func(c *config) *string { return &c.LogFormat })},
	{"jwt-secret", "IMAGED_JWT_SECRET", "", "HS256 secret, at least 32 bytes (default: a random one kept in the data directory)", str(func(c *config) *string { return &c.JWTSecret })},
	{"jwks-url", "IMAGED_JWKS_URL", "", "JWKS URL for RS256/ES256 tokens (Keycloak: {issuer}/protocol/openid-connect/certs)", str(func(c *config) *string { return &c.JWKSURL })},
	{"jwt-issuer", "IMAGED_JWT_ISSUER", "", "required iss claim, if set", str(func(c *config) *string { return &c.JWTIssuer })},
	{"jwt-audience", "IMAGED_JWT_AUDIENCE", "", "required aud claim, if set", str(func(c *config) *string { return &c.JWTAudience })},
	{"jwt-max-ttl", "IMAGED_JWT_MAX_TTL", "0", "longest token lifetime accepted (exp - iat), such as 24h; 0: no limit", optionalDuration("jwt-max-ttl", func(c *config) *time.Duration { return &c.JWTMaxTTL })},
	{"jwt-secret-with-jwks", "IMAGED_JWT_SECRET_WITH_JWKS", "false", "with a JWKS URL, also accept HS256 tokens of the secret (IMAGED_JWT_SECRET or the data directory's)", boolean("jwt-secret-with-jwks", func(c *config) *bool { return &c.SecretWithJWKS })},
	{"max-file-size", "IMAGED_MAX_FILE_SIZE", "20971520", "largest accepted image in bytes", integer("max-file-size", 1, func(c *config) *int64 { return &c.MaxFileSize })},
	{"max-pixels", "IMAGED_MAX_PIXELS", "50000000", "largest accepted image in pixels (width x height)", integer("max-pixels", 1, func(c *config) *int64 { return &c.MaxPixels })},
	{"keep-upload-metadata", "IMAGED_KEEP_UPLOAD_METADATA", "false", "store uploads with their metadata as sent (by default GPS, serial numbers, location and contact fields are removed)", boolean("keep-upload-metadata", func(c *config) *bool { return &c.KeepMetadata })},
	{"image-cache", "IMAGED_IMAGE_CACHE", "65536", "images whose metadata is kept in memory for GET /api/images/{id} (and as many for the byte URLs); 0 turns the cache off", smallInt("image-cache", 0, func(c *config) *int { return &c.ImageCache })},
	{"max-files", "IMAGED_MAX_FILES", "10", "most files in one upload-multiple request", smallInt("max-files", 1, func(c *config) *int { return &c.MaxFiles })},
	{"dev-token", "IMAGED_DEV_TOKEN", "auto", "print a ready-to-use token at start: auto (only with the generated secret), true or false", str(func(c *config) *string { return &c.DevToken })},
	{"body-idle-timeout", "IMAGED_BODY_IDLE_TIMEOUT", "30s", "a request body that sends no byte for this long is cut off with 408", duration("body-idle-timeout", func(c *config) *time.Duration { return &c.BodyIdleTimeout })},
	{"metrics-addr", "IMAGED_METRICS_ADDR", "", "serve GET /metrics on this address instead of the main one", str(func(c *config) *string { return &c.MetricsAddr })},
	{"metrics-token", "IMAGED_METRICS_TOKEN", "", "bearer token a scrape of /metrics must send (default: none)", str(func(c *config) *string { return &c.MetricsToken })},
	{"shutdown-timeout", "IMAGED_SHUTDOWN_TIMEOUT", "20s", "how long in-flight requests may finish on shutdown", duration("shutdown-timeout", func(c *config) *time.Duration { return &c.ShutdownTimeout })},
	{"database-url", "IMAGED_DATABASE_URL", "", "postgres://... keeps metadata in PostgreSQL (default: SQLite in the data directory)", str(func(c *config) *string { return &c.DatabaseURL })},
	{"db-max-conns", "IMAGED_DB_MAX_CONNS", "10", "PostgreSQL connections per replica", smallInt("db-max-conns", 1, func(c *config) *int { return &c.DBMaxConns })},
	{"db-timeout", "IMAGED_DB_TIMEOUT", "5s", "bound on one PostgreSQL operation (and on connecting); past it the request answers 503", duration("db-timeout", func(c *config) *time.Duration { return &c.DBQueryTimeout })},
	{"quota-images-per-day", "IMAGED_QUOTA_IMAGES_PER_DAY", "0", "generated images per owner per rolling 24 hours (0: unlimited)", smallInt("quota-images-per-day", 0, func(c *config) *int { return &c.QuotaPerDay })},
	{"quota-concurrent", "IMAGED_QUOTA_CONCURRENT", "0", "generations running at once per owner (0: unlimited)", smallInt("quota-concurrent", 0, func(c *config) *int { return &c.QuotaConcurrent })},
	{"generation-timeout", "IMAGED_GENERATION_TIMEOUT", "120s", "longest a generation may take", duration("generation-timeout", func(c *config) *time.Duration { return &c.GenerationTimeout })},
	{"workers", "IMAGED_WORKERS", "2", "asynchronous generation jobs this replica runs at once", smallInt("workers", 1, func(c *config) *int { return &c.Workers })},
	{"job-lease", "IMAGED_JOB_LEASE", "30s", "how long a job of a replica that died waits before another replica runs it", duration("job-lease", func(c *config) *time.Duration { return &c.JobLease })},
	{"default-provider", "IMAGED_DEFAULT_PROVIDER", "builtin", "provider used when a request names none", str(func(c *config) *string { return &c.DefaultProvider })},
	{"models-file", "IMAGED_MODELS_FILE", "", "JSON file that restricts, narrows or adds the providers' models (see the README, \"The models file\")", str(func(c *config) *string { return &c.ModelsFile })},
	{"cors-origins", "IMAGED_CORS_ORIGINS", "", "origins whose pages may call the API, comma-separated (https://app.example.com), or * for any; none by default", str(func(c *config) *string { return &c.CORSOrigins })},
	{"oidc-issuer", "IMAGED_OIDC_ISSUER", "", "OpenID provider the gallery page signs in with (authorization code + PKCE); needs IMAGED_OIDC_CLIENT_ID and IMAGED_JWKS_URL", str(func(c *config) *string { return &c.OIDCIssuer })},
	{"oidc-client-id", "IMAGED_OIDC_CLIENT_ID", "", "the page's client id at the OpenID provider (a public client; redirect URI: the service's base URL + /)", str(func(c *config) *string { return &c.OIDCClientID })},
	{"oidc-scopes", "IMAGED_OIDC_SCOPES", "openid", "scopes the page asks the OpenID provider for, space-separated", str(func(c *config) *string { return &c.OIDCScopes })},
	{"oidc-audience", "IMAGED_OIDC_AUDIENCE", "", "audience the gallery asks the OpenID provider for (the authorization request's audience parameter: Ory Hydra, Auth0); pair it with IMAGED_JWT_AUDIENCE", str(func(c *config) *string { return &c.OIDCAudience })},
	{"c2pa", "IMAGED_C2PA", "on", "on or off: sign generated images with C2PA Content Credentials (the XMP mark is written either way)", func(c *config, v string) error {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "on", "true", "1":
			c.C2PA = true
		case "off", "false", "0":
			c.C2PA = false
		default:
			return fmt.Errorf("c2pa must be on or off, got %q", v)
		}
		return nil
	}},
	{"c2pa-cert-file", "IMAGED_C2PA_CERT_FILE", "", "PEM certificate chain that signs C2PA manifests, signing certificate first (default: a development certificate made in the data directory, which validators report as untrusted)", str(func(c *config) *string { return &c.C2PACertFile })},
	{"c2pa-key-file", "IMAGED_C2PA_KEY_FILE", "", "PEM ECDSA P-256 private key of the C2PA signing certificate", str(func(c *config) *string { return &c.C2PAKeyFile })},
	{"render-workers", "IMAGED_RENDER_WORKERS", "0", "variant renders that run at once (0: the number of CPUs)", smallInt("render-workers", 0, func(c *config) *int { return &c.RenderWorkers })},
	{"render-queue", "IMAGED_RENDER_QUEUE", "64", "renders that may wait for a worker; past it a render answers 503 at once", smallInt("render-queue", 1, func(c *config) *int { return &c.RenderQueue })},
	{"render-timeout", "IMAGED_RENDER_TIMEOUT", "30s", "longest one render may take (an isolated worker past it is killed)", duration("render-timeout", func(c *config) *time.Duration { return &c.RenderTimeout })},
	{"render-max-side", "IMAGED_RENDER_MAX_SIDE", "4096", "largest side of a rendered variant, in pixels", smallInt("render-max-side", 16, func(c *config) *int { return &c.RenderMaxSide })},
	{"render-isolation", "IMAGED_RENDER_ISOLATION", "process", "where renders run: process (supervised imaged render-worker processes) or none (in the service's process)", str(func(c *config) *string { return &c.RenderIsolation })},
	{"variants", "IMAGED_VARIANTS", "", "variant presets, changing the defaults (thumb, small, medium, large): NAME=SIZE[,fit=F][,format=F][,quality=Q] separated by ; or new lines, NAME=off to drop one (or from a file: IMAGED_VARIANTS_FILE)", str(func(c *config) *string { return &c.Variants })},
	{"signing-key", "IMAGED_SIGNING_KEY", "", "key signing the transform URLs of variants, at least 32 bytes, the same on every replica (default: a random one kept in the data directory)", str(func(c *config) *string { return &c.SigningKey })},
	{"outbound-allow", "IMAGED_OUTBOUND_ALLOW", "", "comma-separated IPs or CIDR prefixes that calls to user-given URLs (webhooks, import) may reach although not public", func(c *config, v string) (err error) {
		c.OutboundAllow, err = outbound.ParseAllow(v)
		return err
	}},
	{"import-timeout", "IMAGED_IMPORT_TIMEOUT", "60s", "longest an import by URL may take, from the request to the last byte", duration("import-timeout", func(c *config) *time.Duration { return &c.ImportTimeout })},
}

// newFlagSet declares the named settings (all when names is empty) as flags
// whose defaults come from the environment, then the built-in default.
// Declare any flags of the command's own on fs, then call parse with the
// arguments: it parses them and fills the config.
func newFlagSet(name string, getenv func(string) string, stderr io.Writer, names ...string) (fs *flag.FlagSet, parse func(args []string) (*config, error)) {
	fs = newCommandFlags(strings.TrimPrefix(name, "imaged "), stderr)
	type bound struct {
		s   setting
		val *string
	}
	var all []bound
	for _, s := range settings {
		v := s.def
		if e := getenv(s.env); e != "" {
			v = e
		}
		b := bound{s: s, val: new(string)}
		*b.val = v
		if len(names) == 0 || slices.Contains(names, s.flag) {
			shown := s.def
			fs.Func(s.flag, fmt.Sprintf("%s (env %s, default %q)", s.help, s.env, shown), func(x string) error {
				*b.val = x
				return nil
			})
		}
		all = append(all, b)
	}
	return fs, func(args []string) (*config, error) {
		rest, err := parseArgs(fs, args)
		if err != nil {
			return nil, err
		}
		if err := noArgs(fs.Name(), rest); err != nil {
			return nil, err
		}
		c := &config{}
		for _, b := range all {
			if err := b.s.set(c, *b.val); err != nil {
				return nil, usageError{err}
			}
		}
		return c, nil
	}
}
