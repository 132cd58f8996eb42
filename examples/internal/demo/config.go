package demo

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/fhirguard/fhirguard/fhir"
)

// ErrConfig reports invalid flags or an invalid Config; errors from
// ParseFlags and Run that concern the configuration wrap it.
var ErrConfig = errors.New("demo: invalid configuration")

// DefaultAddr is the listen address when -addr is not given.
const DefaultAddr = "127.0.0.1:8080"

// AuthPath is the path under which the embedded authorization server is
// mounted (its issuer is the FHIR base's origin followed by AuthPath).
const AuthPath = "/auth"

// Config is the demo's configuration, one field per flag.
type Config struct {
	// Addr is the listen address (-addr).
	Addr string
	// BaseURL is the FHIR base URL, the audience tokens must carry
	// (-base-url). Empty means http://<addr>/fhir, with the port actually
	// bound.
	BaseURL string
	// Issuer is an external authorization server's issuer (-issuer). Empty
	// embeds the smarttest authorization server under AuthPath.
	Issuer string
	// JWKSURL is the external authorization server's JWK Set (-jwks-url).
	// Empty takes jwks_uri from its OpenID configuration.
	JWKSURL string
	// IntrospectionURL, IntrospectionClientID and IntrospectionClientSecret
	// configure RFC 7662 introspection of opaque tokens
	// (-introspection-url, -introspection-client-id,
	// -introspection-client-secret). Without -issuer and without these
	// flags, opaque tokens are introspected at the embedded server.
	IntrospectionURL          string
	IntrospectionClientID     string
	IntrospectionClientSecret string
	// PolicyFile is a CEL policy file (-policy); see package celpolicy.
	PolicyFile string
	// Empty starts with an empty store (-empty).
	Empty bool
	// Capabilities are the SMART capabilities advertised with an external
	// authorization server (-capabilities, comma-separated); empty derives
	// them from its metadata (discovery.Derive). Capabilities it cannot
	// support are dropped with a warning.
	Capabilities []string
	// EnforceEncounter holds patient-held tokens that carry an encounter to
	// that encounter's compartment (-enforce-encounter); RequireEncounter
	// refuses those without one (-require-encounter). See
	// middleware.AuthorizeConfig.
	EnforceEncounter, RequireEncounter bool
	// CORSOrigins are the browser origins allowed to call the API and the
	// embedded token endpoint, besides the origins of AppRedirectURIs
	// (-cors-origins, comma-separated, normalized; "*" for any).
	CORSOrigins []string
	// TrustedProxies are the TLS-terminating proxies (CIDRs or addresses)
	// whose X-Forwarded-Proto is believed (-trusted-proxies,
	// comma-separated); needed with an https -base-url served through a
	// proxy.
	TrustedProxies []string
	// JWKSRefetchCooldown is the least time between two JWKS fetches caused
	// by an unknown key id (-jwks-refetch-cooldown).
	JWKSRefetchCooldown time.Duration
	// ShutdownTimeout bounds the graceful shutdown (-shutdown-timeout).
	ShutdownTimeout time.Duration

	// AppRedirectURIs are the redirect URIs of the SMART app clients the
	// embedded authorization server registers, matched exactly
	// (-app-redirect-uris, comma-separated): https, or http on a loopback
	// host. Their origins may also call the token endpoint and the FHIR API
	// from a browser (CORS).
	AppRedirectURIs []string
	// AppLaunchURL is the app's launch URL that the banner's EHR launch
	// opens (-app-launch-url). Default: launch.html next to the first
	// redirect URI. Its origin must be that of a redirect URI.
	AppLaunchURL string
	// AppConfidentialSecret, when set, also registers the confidential
	// client ConfidentialAppClientID with this secret and the same redirect
	// URIs (-app-confidential-secret).
	AppConfidentialSecret string
	// Patient is the patient of standalone launches asking for
	// launch/patient and of the banner's EHR launch (-patient).
	Patient string
	// Consent makes the embedded authorization server show a consent page
	// (approve / deny, and a patient picker in a standalone launch) instead
	// of approving every request (-consent).
	Consent bool

	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout are the
	// HTTP server's timeouts, MaxHeaderBytes its request header limit
	// (-read-header-timeout, -read-timeout, -write-timeout, -idle-timeout,
	// -max-header-bytes); see net/http.Server.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
}

// Defaults of the flags for the app clients and the HTTP server.
const (
	// DefaultAppRedirectURIs is the default of -app-redirect-uris: an app
	// served on port 9000 of the loopback interface, with npm fhirclient's
	// default redirect URI (the app page's directory, trailing slash).
	DefaultAppRedirectURIs = "http://127.0.0.1:9000/,http://localhost:9000/"
	// DefaultPatient is the default of -patient (a patient of the seed
	// data).
	DefaultPatient = "123"

	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = time.Minute
	DefaultWriteTimeout      = 2 * time.Minute
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultMaxHeaderBytes    = 64 << 10
)

// ParseFlags parses the demo's command-line flags. name is the program
// name used in usage messages, which go to output. It returns flag.ErrHelp
// for -h, and errors wrapping ErrConfig for invalid values.
func ParseFlags(name string, args []string, output io.Writer) (Config, error) {
	var cfg Config
	var cors, proxies, caps string
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&cfg.Addr, "addr", DefaultAddr, "listen `address`")
	fs.StringVar(&cfg.BaseURL, "base-url", "", "FHIR base `URL`, the audience tokens must carry (default http://<addr>/fhir)")
	fs.StringVar(&cfg.Issuer, "issuer", "", "external authorization server `issuer`; empty embeds a test server under "+AuthPath)
	fs.StringVar(&cfg.JWKSURL, "jwks-url", "", "JWK Set `URL` of the external authorization server (default its jwks_uri)")
	fs.StringVar(&cfg.IntrospectionURL, "introspection-url", "", "RFC 7662 introspection `URL` for opaque tokens")
	fs.StringVar(&cfg.IntrospectionClientID, "introspection-client-id", "", "client `id` for the introspection endpoint")
	fs.StringVar(&cfg.IntrospectionClientSecret, "introspection-client-secret", "", "client `secret` for the introspection endpoint")
	fs.StringVar(&cfg.PolicyFile, "policy", "", "CEL policy `file` (reloaded on SIGHUP)")
	fs.BoolVar(&cfg.Empty, "empty", false, "start with no seed data")
	fs.StringVar(&caps, "capabilities", "", "comma-separated SMART `capabilities` to advertise with -issuer (default: derived from its metadata)")
	fs.BoolVar(&cfg.EnforceEncounter, "enforce-encounter", false, "hold patient tokens with an encounter in their launch context to that encounter's compartment")
	fs.BoolVar(&cfg.RequireEncounter, "require-encounter", false, "with -enforce-encounter, refuse patient tokens without an encounter")
	fs.StringVar(&cors, "cors-origins", "", "comma-separated browser `origins` (scheme://host[:port]) allowed to call the API and the embedded token endpoint, besides those of -app-redirect-uris (\"*\" for any)")
	fs.StringVar(&proxies, "trusted-proxies", "", "comma-separated TLS-terminating `proxies` (CIDRs or addresses) whose X-Forwarded-Proto is believed")
	fs.DurationVar(&cfg.JWKSRefetchCooldown, "jwks-refetch-cooldown", 30*time.Second, "least `time` between JWKS fetches caused by an unknown key id")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "graceful shutdown `timeout`")
	var redirects string
	fs.StringVar(&redirects, "app-redirect-uris", DefaultAppRedirectURIs, "comma-separated redirect `URIs` of the SMART app clients "+AppClientID+
		" (and "+ConfidentialAppClientID+"), matched exactly: https, or http on a loopback host; their origins may call the token endpoint and the API (CORS)")
	fs.StringVar(&cfg.AppLaunchURL, "app-launch-url", "", "the app's launch `URL` for the banner's EHR launch (default launch.html next to the first -app-redirect-uris URI)")
	fs.StringVar(&cfg.AppConfidentialSecret, "app-confidential-secret", "", "also register the confidential client "+ConfidentialAppClientID+" with this `secret`")
	fs.StringVar(&cfg.Patient, "patient", DefaultPatient, "patient `id` of standalone launches (launch/patient) and of the banner's EHR launch")
	fs.BoolVar(&cfg.Consent, "consent", false, "show a consent page (approve or deny; patient picker in standalone launches) instead of approving every request")
	fs.DurationVar(&cfg.ReadHeaderTimeout, "read-header-timeout", DefaultReadHeaderTimeout, "HTTP server: most `time` to read a request's headers")
	fs.DurationVar(&cfg.ReadTimeout, "read-timeout", DefaultReadTimeout, "HTTP server: most `time` to read a whole request, body included")
	fs.DurationVar(&cfg.WriteTimeout, "write-timeout", DefaultWriteTimeout, "HTTP server: most `time` from the end of a request's headers to the end of the response")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", DefaultIdleTimeout, "HTTP server: most `time` a keep-alive connection waits for the next request")
	fs.IntVar(&cfg.MaxHeaderBytes, "max-header-bytes", DefaultMaxHeaderBytes, "HTTP server: largest request header `size` in bytes")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Config{}, err
		}
		return Config{}, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("%w: unexpected argument %q", ErrConfig, fs.Arg(0))
	}
	if cfg.Issuer != "" {
		var embeddedOnly []string
		fs.Visit(func(f *flag.Flag) {
			if embeddedFlags[f.Name] {
				embeddedOnly = append(embeddedOnly, "-"+f.Name)
			}
		})
		if len(embeddedOnly) > 0 {
			return Config{}, fmt.Errorf("%w: %s configure the embedded authorization server, which -issuer replaces", ErrConfig, strings.Join(embeddedOnly, ", "))
		}
	}
	var err error
	if cfg.CORSOrigins, err = parseOrigins(cors); err != nil {
		return Config{}, fmt.Errorf("%w: -cors-origins: %v", ErrConfig, err)
	}
	cfg.TrustedProxies = splitList(proxies)
	cfg.Capabilities = splitList(caps)
	if len(cfg.Capabilities) > 0 && cfg.Issuer == "" {
		return Config{}, fmt.Errorf("%w: -capabilities needs -issuer (the embedded server's capabilities are fixed)", ErrConfig)
	}
	if cfg.RequireEncounter && !cfg.EnforceEncounter {
		return Config{}, fmt.Errorf("%w: -require-encounter needs -enforce-encounter", ErrConfig)
	}
	if cfg.Issuer == "" {
		if cfg.AppRedirectURIs, err = parseRedirectURIs(redirects); err != nil {
			return Config{}, fmt.Errorf("%w: -app-redirect-uris: %v", ErrConfig, err)
		}
		if cfg.AppLaunchURL == "" {
			cfg.AppLaunchURL = defaultLaunchURL(cfg.AppRedirectURIs[0])
		}
	}
	return cfg, cfg.validate()
}

// embeddedFlags are the flags that configure the embedded authorization
// server.
var embeddedFlags = map[string]bool{
	"app-redirect-uris": true, "app-launch-url": true, "app-confidential-secret": true, "patient": true, "consent": true,
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// validate checks the values that do not depend on the bound address.
func (c Config) validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, a...)...)
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return bad("-addr %q: %v", c.Addr, err)
	}
	if c.BaseURL != "" {
		if _, err := parseBaseURL(c.BaseURL); err != nil {
			return bad("-base-url: %v", err)
		}
	}
	for _, f := range []struct{ name, v string }{
		{"-issuer", c.Issuer}, {"-jwks-url", c.JWKSURL}, {"-introspection-url", c.IntrospectionURL},
	} {
		if f.v == "" {
			continue
		}
		u, err := url.Parse(f.v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" || u.User != nil {
			return bad("%s %q must be an absolute http(s) URL", f.name, f.v)
		}
	}
	if c.JWKSURL != "" && c.Issuer == "" {
		return bad("-jwks-url needs -issuer (without -issuer the embedded server's keys are used)")
	}
	if c.IntrospectionURL != "" && (c.IntrospectionClientID == "" || c.IntrospectionClientSecret == "") {
		return bad("-introspection-url needs -introspection-client-id and -introspection-client-secret")
	}
	if c.IntrospectionURL == "" && (c.IntrospectionClientID != "" || c.IntrospectionClientSecret != "") {
		return bad("-introspection-client-id and -introspection-client-secret need -introspection-url")
	}
	if c.JWKSRefetchCooldown <= 0 {
		return bad("-jwks-refetch-cooldown must be positive")
	}
	if c.ShutdownTimeout <= 0 {
		return bad("-shutdown-timeout must be positive")
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{
		{"-read-header-timeout", c.ReadHeaderTimeout}, {"-read-timeout", c.ReadTimeout},
		{"-write-timeout", c.WriteTimeout}, {"-idle-timeout", c.IdleTimeout},
	} {
		if f.d <= 0 {
			return bad("%s must be positive", f.name)
		}
	}
	if c.MaxHeaderBytes < 1024 || c.MaxHeaderBytes > 1<<20 {
		return bad("-max-header-bytes %d must lie between 1024 and 1048576", c.MaxHeaderBytes)
	}
	if c.Issuer == "" {
		if len(c.AppRedirectURIs) == 0 {
			return bad("-app-redirect-uris: at least one redirect URI is needed")
		}
		if err := checkLaunchURL(c.AppLaunchURL, c.AppRedirectURIs); err != nil {
			return bad("-app-launch-url: %v", err)
		}
		if !fhir.ValidID(c.Patient) {
			return bad("-patient %q is not a FHIR id ([A-Za-z0-9.-], at most 64)", c.Patient)
		}
	}
	return nil
}

// parseBaseURL checks a FHIR base URL: absolute http(s), no query,
// fragment or user info, a path below the root. The trailing slash is
// removed.
func parseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	switch {
	case err != nil:
		return nil, err
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%q is not an http(s) URL", raw)
	case u.Host == "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("%q must be absolute, without user info, query or fragment", raw)
	case u.Path == "" || u.Path == "/":
		return nil, fmt.Errorf("%q needs a path below the root, such as /fhir", raw)
	case u.RawPath != "" || strings.ContainsAny(u.Path, ";\\") || strings.Contains(u.Path, "//") || strings.Contains(u.Path, "/."):
		return nil, fmt.Errorf("%q must have a plain path", raw)
	}
	return u, nil
}

// baseURLFor returns the FHIR base URL for the bound address: cfg.BaseURL,
// or http://<addr>/fhir where an unspecified host (":8080", "0.0.0.0")
// becomes localhost.
func (c Config) baseURLFor(bound net.Addr) (*url.URL, error) {
	if c.BaseURL != "" {
		return parseBaseURL(c.BaseURL)
	}
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return nil, err
	}
	_, port, err := net.SplitHostPort(bound.String())
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return parseBaseURL("http://" + net.JoinHostPort(host, port) + "/fhir")
}

// isLoopback reports whether every address the listener may accept from is
// the local machine: a loopback IP or "localhost".
func isLoopback(bound net.Addr) bool {
	tcp, ok := bound.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// isLoopbackHost reports whether the host of a URL is a loopback address.
func isLoopbackHost(u *url.URL) bool {
	h := u.Hostname()
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
