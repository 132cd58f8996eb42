package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/fhirguard/fhirguard/fhir"
	"github.com/fhirguard/fhirguard/internal/cliconfig"
	"github.com/fhirguard/fhirguard/middleware"
)

// introspectionSecretEnv is the environment variable read when
// --introspection-client-secret is not given (a secret on the command
// line is visible to every user of the machine).
const introspectionSecretEnv = "FHIRGUARD_INTROSPECTION_CLIENT_SECRET"

// Paths served outside the FHIR base.
const (
	healthzPath = "/healthz"
	readyzPath  = "/readyz"
	metricsPath = "/metrics"
)

// proxyConfig holds the flags of fhirguard proxy.
type proxyConfig struct {
	upstream, baseURL, listen string

	issuer, jwksURL                     string
	introspectionURL, introspectionID   string
	introspectionSecret                 string
	upstreamAuthFile, upstreamAuth      string // the credential sent to the upstream
	capabilities, corsOrigins, proxies  cliconfig.List
	policy, fhirVersion                 string
	tlsCert, tlsKey                     string
	insecureAllowHTTP                   bool
	readHeaderTimeout, readTimeout      time.Duration
	writeTimeout, idleTimeout           time.Duration
	shutdownTimeout, upstreamTimeout    time.Duration
	maxHeaderBytes                      int
	maxBodyBytes                        int64
	metrics                             bool
	logFormat, logLevel                 string
	release                             fhir.Release // from fhirVersion
	origins                             []string     // corsOrigins, normalised
	base, up                            *url.URL     // baseURL, upstream, parsed
	issuerURL                           *url.URL
	listenLoopback, plainHTTP, httpBase bool
}

// proxyHooks let tests run the command in-process. Production passes nil.
type proxyHooks struct {
	// listener is served instead of listening on --listen.
	listener net.Listener
	// ready is called once the server is serving.
	ready func(*proxyServer)
	// noSignals leaves SIGHUP alone (the test process's signals).
	noSignals bool
	// getenv replaces os.Getenv.
	getenv func(string) string
}

func proxyCommand(hooks *proxyHooks) command {
	if hooks == nil {
		hooks = &proxyHooks{}
	}
	return command{
		name:    "proxy",
		maxArgs: 0,
		summary: "guard a FHIR server: a reverse proxy enforcing SMART authorization",
		help: `
Runs a SMART on FHIR gateway in front of an existing FHIR server of any
make (--upstream): every request to the public FHIR base (--base-url) is
authenticated (JWTs verified with the authorization server's keys, opaque
tokens introspected) and authorized (scopes, patient compartments,
granular scopes, CEL policies) by the fhirguard middleware, then forwarded;
what the server answers is verified before it reaches the client. The
server's own address is rewritten into the public base in response
headers and JSON bodies; a response that cannot be rewritten is a 502.

The SMART configuration (<base>/.well-known/smart-configuration) is
derived from the authorization server's metadata (--issuer), and its
capabilities from that metadata unless --capabilities lists them.

Outside the FHIR base: /healthz (alive), /readyz (keys loaded and the
upstream's /metadata answering; 503 with the reasons otherwise), /metrics
(Prometheus; --metrics=false turns it off), and the RFC 9728 metadata at
/.well-known/oauth-protected-resource/<base path>. One JSON log line per
request (the access line) says what was decided and why. Log lines are
written in batches, within 0.1 s (warnings and errors at once, and all of
them at shutdown).

Plain HTTP is served only behind a TLS-terminating proxy listed in
--trusted-proxies, or on a loopback --listen with --insecure-allow-http
(local development: an http --base-url, issuer and key URLs on loopback);
elsewhere give --tls-cert and --tls-key and an https --base-url.

The process keeps no state beyond bounded caches (tokens, keys,
introspection answers): run as many replicas as needed behind a load
balancer. SIGTERM or SIGINT shut it down gracefully (a second one ends it
at once); SIGHUP reloads --policy.

The client's Authorization header is never forwarded (its audience is the
public base): an upstream that needs a credential of its own gets, on
every request, the value of --upstream-authorization-file (or of
$` + upstreamAuthEnv + `), such as "Bearer <token>" or
"Basic <base64>". The file is read again when it changes, so a sidecar
can renew the token in place.`,
		setup: func(fs *flag.FlagSet) runFunc {
			c := &proxyConfig{}
			fs.StringVar(&c.upstream, "upstream", "", "base `URL` of the FHIR server to guard (required), such as http://10.0.0.5:8080/fhir")
			fs.StringVar(&c.baseURL, "base-url", "", "public FHIR base `URL` (required): the audience tokens must carry, such as https://ehr.example.org/fhir")
			fs.StringVar(&c.listen, "listen", "127.0.0.1:8080", "listen `address`")
			fs.StringVar(&c.issuer, "issuer", "", "the authorization server's `issuer` (required); its OpenID configuration gives the keys and the SMART configuration")
			fs.StringVar(&c.jwksURL, "jwks-url", "", "JWK Set `URL` (default: the issuer's jwks_uri)")
			fs.StringVar(&c.introspectionURL, "introspection-url", "", "RFC 7662 introspection `URL` for opaque tokens")
			fs.StringVar(&c.introspectionID, "introspection-client-id", "", "client `id` at the introspection endpoint")
			fs.StringVar(&c.introspectionSecret, "introspection-client-secret", "", "client `secret` at the introspection endpoint (default: $"+introspectionSecretEnv+")")
			fs.StringVar(&c.upstreamAuthFile, "upstream-authorization-file", "", "`file` holding the Authorization value the proxy sends to the upstream, such as \"Bearer <token>\"\n(read again when it changes; default: $"+upstreamAuthEnv+"; none: the upstream gets no credential)")
			fs.StringVar(&c.policy, "policy", "", "CEL policy `file` (reloaded on SIGHUP)")
			fs.Var(&c.capabilities, "capabilities", "comma-separated SMART `capabilities` to advertise (default: derived from the issuer's metadata)")
			fs.Var(&c.corsOrigins, "cors-origins", "comma-separated browser `origins` (scheme://host[:port], or *) allowed to call the FHIR API")
			fs.Var(&c.proxies, "trusted-proxies", "comma-separated TLS-terminating `proxies` (CIDRs or addresses) whose X-Forwarded-Proto is believed")
			fs.StringVar(&c.tlsCert, "tls-cert", "", "TLS certificate `file` (PEM, with --tls-key)")
			fs.StringVar(&c.tlsKey, "tls-key", "", "TLS private key `file` (PEM, with --tls-cert)")
			fs.StringVar(&c.fhirVersion, "fhir-version", "R4", "the upstream's FHIR `release`: R4 or R5")
			fs.BoolVar(&c.insecureAllowHTTP, "insecure-allow-http", false, "local development only, on a loopback --listen: accept bearer tokens over plain HTTP\n(an http --base-url) and fetch keys, introspection and the issuer's metadata over plain HTTP from loopback")
			fs.DurationVar(&c.readHeaderTimeout, "read-header-timeout", 10*time.Second, "HTTP server: most `time` to read a request's headers")
			fs.DurationVar(&c.readTimeout, "read-timeout", time.Minute, "HTTP server: most `time` to read a whole request, body included")
			fs.DurationVar(&c.writeTimeout, "write-timeout", 2*time.Minute, "HTTP server: most `time` from the end of a request's headers to the end of the response")
			fs.DurationVar(&c.idleTimeout, "idle-timeout", 2*time.Minute, "HTTP server: most `time` a keep-alive connection waits for the next request")
			fs.IntVar(&c.maxHeaderBytes, "max-header-bytes", 64<<10, "HTTP server: largest request header `size` in bytes")
			fs.Int64Var(&c.maxBodyBytes, "max-body-bytes", 16<<20, "largest request body in `bytes` (413 above)")
			fs.DurationVar(&c.upstreamTimeout, "upstream-timeout", time.Minute, "most `time` the upstream may take to start its answer (504 after)")
			fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 10*time.Second, "graceful shutdown: most `time` requests in flight get to complete")
			fs.BoolVar(&c.metrics, "metrics", true, "serve Prometheus metrics at "+metricsPath)
			fs.StringVar(&c.logFormat, "log-format", "json", "log `format`: json or text")
			fs.StringVar(&c.logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
			return func(ctx context.Context, _ []string, stdout, stderr io.Writer) int {
				getenv := hooks.getenv
				if getenv == nil {
					getenv = os.Getenv
				}
				if c.introspectionSecret == "" {
					c.introspectionSecret = getenv(introspectionSecretEnv)
				}
				if c.upstreamAuthFile == "" {
					c.upstreamAuth = getenv(upstreamAuthEnv)
				}
				bound := ""
				if hooks.listener != nil {
					bound = hooks.listener.Addr().String()
				}
				if err := c.validate(bound); err != nil {
					fmt.Fprintf(stderr, "fhirguard proxy: %v\n", err)
					return exitUsage
				}
				return runProxy(ctx, c, hooks, stdout, stderr)
			}
		},
	}
}

// validate checks the flags; every error names its flag. bound, when not
// empty, is the address of a listener given by a test (instead of
// --listen).
func (c *proxyConfig) validate(bound string) error {
	var err error
	if c.upstream == "" {
		return errors.New("--upstream is required: the base URL of the FHIR server to guard")
	}
	if c.up, err = parseHTTPURL(c.upstream); err != nil {
		return fmt.Errorf("--upstream: %v", err)
	}
	if c.baseURL == "" {
		return errors.New("--base-url is required: the public FHIR base URL, the audience of the tokens")
	}
	if c.base, err = parseHTTPURL(c.baseURL); err != nil {
		return fmt.Errorf("--base-url: %v", err)
	}
	if p := strings.TrimRight(c.base.EscapedPath(), "/"); p == "" {
		return fmt.Errorf("--base-url %q needs a path below the root, such as /fhir (%s, %s and %s are served outside it)", c.baseURL, healthzPath, readyzPath, metricsPath)
	} else {
		for _, reserved := range []string{healthzPath, readyzPath, metricsPath, "/.well-known"} {
			if p == reserved || strings.HasPrefix(p, reserved+"/") {
				return fmt.Errorf("--base-url %q: the path %s is served outside the FHIR base", c.baseURL, reserved)
			}
		}
	}
	if c.issuer == "" {
		return errors.New("--issuer is required: the authorization server whose tokens are accepted")
	}
	if c.issuerURL, err = parseHTTPURL(c.issuer); err != nil {
		return fmt.Errorf("--issuer: %v", err)
	}
	for _, f := range []struct{ name, v string }{{"--jwks-url", c.jwksURL}, {"--introspection-url", c.introspectionURL}} {
		if f.v != "" {
			if _, err := parseHTTPURL(f.v); err != nil {
				return fmt.Errorf("%s: %v", f.name, err)
			}
		}
	}
	switch {
	case c.introspectionURL != "" && c.introspectionID == "":
		return errors.New("--introspection-url needs --introspection-client-id")
	case c.introspectionURL != "" && c.introspectionSecret == "":
		return fmt.Errorf("--introspection-url needs --introspection-client-secret (or $%s)", introspectionSecretEnv)
	case c.introspectionURL == "" && c.introspectionID != "":
		return errors.New("--introspection-client-id needs --introspection-url")
	}
	switch strings.ToUpper(c.fhirVersion) {
	case "R4":
		c.release = fhir.R4
	case "R5":
		c.release = fhir.R5
	default:
		return fmt.Errorf("--fhir-version %q: R4 or R5", c.fhirVersion)
	}
	if c.origins, err = middleware.ParseOrigins(strings.Join(c.corsOrigins, ",")); err != nil {
		return fmt.Errorf("--cors-origins: %v", err)
	}
	for _, p := range c.proxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				return fmt.Errorf("--trusted-proxies: %q is not a CIDR or an address", p)
			}
		}
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if c.policy != "" {
		if _, err := os.Stat(c.policy); err != nil {
			return fmt.Errorf("--policy: %v", err)
		}
	}
	if c.upstreamAuthFile != "" {
		if _, err := os.Stat(c.upstreamAuthFile); err != nil {
			return fmt.Errorf("--upstream-authorization-file: %v", err)
		}
	}

	// Where plain HTTP is allowed.
	addr := c.listen
	if bound != "" {
		addr = bound
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: %v", c.listen, err)
	}
	c.listenLoopback = isLoopbackHost(host)
	c.plainHTTP = c.tlsCert == ""
	c.httpBase = c.base.Scheme == "http"
	switch {
	case c.insecureAllowHTTP && !c.listenLoopback:
		return fmt.Errorf("--insecure-allow-http is for local development: it needs a loopback --listen, not %q", addr)
	case c.httpBase && !c.plainHTTP:
		return fmt.Errorf("--base-url %q is http but --tls-cert serves https: give an https --base-url", c.baseURL)
	case c.httpBase && !c.insecureAllowHTTP:
		return fmt.Errorf("--base-url %q: bearer tokens over plain HTTP are refused; give an https --base-url (--insecure-allow-http allows http on a loopback --listen, for development)", c.baseURL)
	case c.plainHTTP && !c.insecureAllowHTTP && len(c.proxies) == 0:
		return errors.New("--tls-cert and --tls-key are required to serve https, unless TLS is terminated in front: list that proxy in --trusted-proxies (or, for development on a loopback --listen, --insecure-allow-http)")
	}
	for _, f := range []struct{ name, v string }{{"--issuer", c.issuer}, {"--jwks-url", c.jwksURL}, {"--introspection-url", c.introspectionURL}} {
		if f.v == "" {
			continue
		}
		u, _ := url.Parse(f.v)
		if u.Scheme == "http" && (!c.insecureAllowHTTP || !isLoopbackHost(u.Hostname())) {
			return fmt.Errorf("%s %q: an https URL is required (http only for a loopback host with --insecure-allow-http)", f.name, f.v)
		}
	}

	for _, f := range []struct {
		name string
		d    time.Duration
	}{
		{"--read-header-timeout", c.readHeaderTimeout}, {"--read-timeout", c.readTimeout},
		{"--write-timeout", c.writeTimeout}, {"--idle-timeout", c.idleTimeout},
		{"--shutdown-timeout", c.shutdownTimeout}, {"--upstream-timeout", c.upstreamTimeout},
	} {
		if f.d <= 0 {
			return fmt.Errorf("%s must be positive", f.name)
		}
	}
	if c.maxHeaderBytes < 1024 || c.maxHeaderBytes > 1<<20 {
		return fmt.Errorf("--max-header-bytes %d must lie between 1024 and 1048576", c.maxHeaderBytes)
	}
	if c.maxBodyBytes < 1024 {
		return fmt.Errorf("--max-body-bytes %d must be at least 1024", c.maxBodyBytes)
	}
	switch c.logFormat {
	case "json", "text":
	default:
		return fmt.Errorf("--log-format %q: json or text", c.logFormat)
	}
	switch strings.ToLower(c.logLevel) {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("--log-level %q: debug, info, warn or error", c.logLevel)
	}
	return nil
}

// parseHTTPURL checks an absolute http(s) URL without user information,
// query or fragment; the trailing slash is removed.
func parseHTTPURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	switch {
	case err != nil:
		return nil, err
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%q is not an absolute http(s) URL", raw)
	case u.Host == "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("%q must be absolute, without user info, query or fragment", raw)
	}
	return u, nil
}

// isLoopbackHost reports whether host is "localhost" or a loopback IP.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
