package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fhirguard/fhirguard/celpolicy"
	"github.com/fhirguard/fhirguard/discovery"
	"github.com/fhirguard/fhirguard/gateway"
	"github.com/fhirguard/fhirguard/middleware"
)

// proxyServer is a running fhirguard proxy.
type proxyServer struct {
	cfg     *proxyConfig
	log     *slog.Logger
	logw    *logWriter // log's output
	addr    net.Addr
	scheme  string // of the listener: http or https
	remote  *discovery.Remote
	guard   *middleware.Guard
	proxy   *gateway.Proxy
	policy  *celpolicy.Policy
	metrics *proxyMetrics
	client  *http.Client // for the readiness probe of the JWK Set
	handler http.Handler
	srv     *http.Server

	jwksURL    string
	keysLoaded atomic.Bool // a JWK Set was fetched once (or introspection is configured)
	insecure   []string    // what --insecure-allow-http turned on
	closers    []func()
}

// runProxy builds the gateway, serves until ctx is done, and shuts down
// gracefully.
func runProxy(ctx context.Context, c *proxyConfig, hooks *proxyHooks, stdout, stderr io.Writer) int {
	// The log is buffered (one write per batch of lines, not per request);
	// the messages below that bypass the logger go through the same buffer
	// so that the order is kept. Close writes the rest, last.
	lw := newLogWriter(stderr, logBufferBytes)
	defer lw.Close()
	stderr = lw
	log := newLogger(c, lw)
	s, err := buildProxy(ctx, c, hooks, log)
	if err != nil {
		if s != nil {
			s.close()
		}
		fmt.Fprintf(stderr, "fhirguard proxy: %v\n", err)
		return exitFail
	}
	defer s.close()
	s.logw = lw

	ln := hooks.listener
	if ln == nil {
		if ln, err = net.Listen("tcp", c.listen); err != nil {
			fmt.Fprintf(stderr, "fhirguard proxy: --listen: %v\n", err)
			return exitFail
		}
	}
	s.addr = ln.Addr()
	if c.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
		if err != nil {
			_ = ln.Close()
			fmt.Fprintf(stderr, "fhirguard proxy: --tls-cert, --tls-key: %v\n", err)
			return exitFail
		}
		s.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
		ln = tls.NewListener(ln, s.srv.TLSConfig)
		s.scheme = "https"
	}
	if s.policy == nil && !hooks.noSignals {
		// SIGHUP reloads the policy; without one it changes nothing (and
		// must not end the process, its default action).
		signal.Ignore(syscall.SIGHUP)
	}
	served := make(chan error, 1)
	go func() { served <- s.srv.Serve(ln) }()
	s.printBanner(stdout)
	if len(s.insecure) > 0 {
		log.Warn("INSECURE: --insecure-allow-http is for local development only", "enables", strings.Join(s.insecure, "; "))
	}
	log.Info("fhirguard proxy started", "listen", s.scheme+"://"+s.addr.String(), "base_url", c.base.String(), "upstream", c.up.String(), "issuer", c.issuer)
	if hooks.ready != nil {
		hooks.ready(s)
	}

	select {
	case err := <-served:
		log.Error("serving failed", "error", err)
		return exitFail
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", c.shutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.shutdownTimeout)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		_ = s.srv.Close()
		log.Error("shutdown: requests still in flight were cut", "error", err)
		<-served
		return exitFail
	}
	<-served
	log.Info("stopped")
	return exitOK
}

// newLogger returns the logger of --log-format and --log-level, writing
// to w; records at Warn and above flush it.
func newLogger(c *proxyConfig, w *logWriter) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.logLevel)) // checked by validate
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if c.logFormat == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(flushAtWarn{h, w})
}

// buildProxy builds everything but the listener. When it fails, the
// returned server (if any) must still be closed.
func buildProxy(ctx context.Context, c *proxyConfig, hooks *proxyHooks, log *slog.Logger) (*proxyServer, error) {
	s := &proxyServer{cfg: c, log: log, scheme: "http", metrics: newProxyMetrics(c.metrics)}
	base := c.base.String()

	// The authorization server's metadata: keys, SMART configuration.
	issuerHTTP := c.issuerURL.Scheme == "http"
	if issuerHTTP {
		s.insecure = append(s.insecure, "the issuer's metadata fetched over plain HTTP")
	}
	var caps []string
	if len(c.capabilities) > 0 {
		caps = c.capabilities
	}
	remote, err := discovery.NewRemote(ctx, discovery.RemoteConfig{
		Issuer:          c.issuer,
		Local:           &discovery.Document{Capabilities: caps},
		Resource:        base,
		Fetch:           discovery.FetchConfig{InsecureAllowHTTPURLs: issuerHTTP},
		RefreshInterval: 10 * time.Minute,
		OnRefresh: func(err error) {
			if err != nil {
				log.Warn("refreshing the authorization server's metadata failed", "error", err)
			}
		},
		OnWarnings: func(ps discovery.Problems) {
			for _, p := range ps {
				if issuerHTTP && strings.Contains(p.Error(), "uses http") {
					continue // said once, by the INSECURE warning
				}
				log.Warn("SMART configuration derived from the authorization server's metadata", "problem", p.Error())
			}
		},
	})
	if err != nil {
		return s, fmt.Errorf("--issuer: %w", err)
	}
	s.remote = remote
	s.closers = append(s.closers, remote.Close)

	// The Guard logs refusals at Info: the access line has them, so only
	// its warnings and errors are kept, unless --log-level debug.
	guardLog := log
	if !log.Enabled(ctx, slog.LevelDebug) {
		guardLog = quietBelow(log, slog.LevelWarn)
	}
	// The Guard's start-up warnings about its Insecure… settings would
	// repeat the INSECURE warning: they are dropped while New runs.
	quiet := &dropInsecure{Handler: guardLog.Handler(), hold: new(atomic.Bool)}
	quiet.hold.Store(true)
	guardLog = slog.New(quiet)
	auth := middleware.AuthConfig{
		Issuers:           []string{c.issuer},
		JWKSURL:           c.jwksURL,
		TrustedProxies:    c.proxies,
		InsecureAllowHTTP: c.insecureAllowHTTP,
		Logger:            guardLog,
		OnDecision:        s.onAuth,
	}
	if auth.JWKSURL == "" {
		auth.JWKSURL = remote.OpenIDConfiguration().JWKSURI
	}
	if auth.JWKSURL == "" && c.introspectionURL == "" {
		return s, errors.New("--issuer: the authorization server publishes no jwks_uri; give --jwks-url or --introspection-url")
	}
	s.jwksURL = auth.JWKSURL
	if c.introspectionURL != "" {
		auth.Introspection = &middleware.IntrospectionConfig{
			Endpoint: c.introspectionURL, ClientID: c.introspectionID, ClientSecret: c.introspectionSecret,
		}
		s.keysLoaded.Store(true) // nothing to load: every token can be introspected
	}
	for _, u := range []string{auth.JWKSURL, c.introspectionURL} {
		if strings.HasPrefix(u, "http:") {
			if !c.insecureAllowHTTP {
				return s, fmt.Errorf("the key URL %s is http: an https URL is required (http only for a loopback host with --insecure-allow-http)", u)
			}
			auth.InsecureAllowHTTPKeyURLs = true
		}
	}
	if auth.InsecureAllowHTTPKeyURLs {
		s.insecure = append(s.insecure, "keys and introspection answers fetched over plain HTTP")
	}
	if c.insecureAllowHTTP {
		s.insecure = append(s.insecure, "bearer tokens accepted over plain HTTP")
	}

	authz := middleware.AuthorizeConfig{
		BaseURL:         base,
		UpstreamBaseURL: c.up.String(),
		FHIRVersion:     c.release,
		Logger:          guardLog,
		OnDecision:      s.onAuthorize,
	}
	if c.policy != "" {
		pc := celpolicy.Config{File: c.policy, Logger: log}
		if !hooks.noSignals {
			pc.Watch = celpolicy.WatchConfig{Signals: []os.Signal{syscall.SIGHUP}, OnReload: s.reloaded}
		}
		p, err := celpolicy.New(pc)
		if err != nil {
			return s, fmt.Errorf("--policy: %w", err)
		}
		s.policy = p
		s.closers = append(s.closers, p.Close)
		authz.Policies = []middleware.Policy{p}
	}

	guard, err := middleware.New(middleware.Config{
		Authorize:          authz,
		Auth:               auth,
		CORS:               middleware.CORSConfig{AllowedOrigins: c.origins},
		SMARTConfiguration: remote.Handler(),
		ProtectedResource:  remote.ProtectedResourceHandler(),
		PatchCapabilities:  true,
	})
	quiet.hold.Store(false)
	if err != nil {
		return s, err
	}
	s.guard = guard
	s.closers = append(s.closers, guard.Close)

	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 64
	transport.ResponseHeaderTimeout = c.upstreamTimeout
	upstream := http.RoundTripper(&timedTransport{base: transport, m: s.metrics})
	cred, err := newUpstreamAuth(c.upstreamAuthFile, c.upstreamAuth, log)
	if err != nil {
		return s, err
	}
	if cred != nil {
		upstream = &authTransport{base: upstream, auth: cred}
	}
	proxy, err := gateway.New(gateway.Config{
		Upstream:  c.up.String(),
		BaseURL:   base,
		Transport: upstream,
		Logger:    log,
	})
	if err != nil {
		return s, fmt.Errorf("--upstream, --base-url: %w", err)
	}
	s.proxy = proxy
	s.closers = append(s.closers, proxy.Close)
	s.client = &http.Client{Timeout: 5 * time.Second, Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	mux := http.NewServeMux()
	mux.HandleFunc(healthzPath, s.healthz)
	mux.HandleFunc(readyzPath, s.readyz)
	if c.metrics {
		mux.Handle(metricsPath, s.metrics.handler())
	}
	if err := guard.MountProtectedResource(mux); err != nil {
		return s, err
	}
	fhirHandler := guard.Handler(proxy)
	basePath := strings.TrimRight(c.base.EscapedPath(), "/")
	mux.Handle(basePath, fhirHandler)
	mux.Handle(basePath+"/", fhirHandler)
	s.handler = s.observe(mux)
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: c.readHeaderTimeout,
		ReadTimeout:       c.readTimeout,
		WriteTimeout:      c.writeTimeout,
		IdleTimeout:       c.idleTimeout,
		MaxHeaderBytes:    c.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// close releases everything, last built first.
func (s *proxyServer) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

// printBanner says what the proxy serves and what it derived.
func (s *proxyServer) printBanner(w io.Writer) {
	c := s.cfg
	base := c.base.String()
	keys := "JWT: JWK Set " + s.jwksURL
	if c.jwksURL == "" && s.jwksURL != "" {
		keys += " (the issuer's jwks_uri)"
	}
	if s.jwksURL == "" {
		keys = "JWT: none"
	}
	if c.introspectionURL != "" {
		keys += "; opaque: introspection at " + c.introspectionURL
	}
	capsFrom := "derived from the issuer's metadata"
	if len(c.capabilities) > 0 {
		capsFrom = "from --capabilities, less those the issuer cannot support"
	}
	var caps []string
	if doc := s.remote.Handler().Document(); doc != nil {
		caps = doc.Capabilities
	}
	policy := "none"
	if s.policy != nil {
		policy = fmt.Sprintf("%s (%d rules; SIGHUP reloads it)", c.policy, len(s.policy.Rules()))
	}
	metrics := "off"
	if c.metrics {
		metrics = metricsPath
	}
	fmt.Fprintf(w, `fhirguard proxy
  listening on       %s://%s
  public FHIR base   %s
  upstream           %s (its address is rewritten into the public base)
  issuer             %s
  tokens             %s
  capabilities       %s (%s)
  discovery          %s/.well-known/smart-configuration
  FHIR release       %s
  policy             %s
  health             %s (alive), %s (keys and upstream), metrics %s
  stateless: caches are per process and bounded; run any number of replicas
`, s.scheme, s.addr, base, c.up, c.issuer, keys, strings.Join(caps, " "), capsFrom, base, c.release, policy, healthzPath, readyzPath, metrics)
}

// healthz answers 200 while the process serves.
func (s *proxyServer) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
}

// readyz answers 200 when the keys are loaded and the upstream answers,
// 503 with the reasons otherwise. The reasons name no address.
func (s *proxyServer) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	var reasons []string
	if err := s.checkKeys(ctx); err != nil {
		s.log.Info("not ready: keys", "error", err)
		reasons = append(reasons, "the authorization server's signing keys (JWK Set) could not be fetched yet")
	}
	if err := s.proxy.Ready(ctx); err != nil {
		s.log.Info("not ready: upstream", "error", err)
		reasons = append(reasons, "the upstream FHIR server's /metadata does not answer 2xx")
	}
	if len(reasons) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "reasons": reasons})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
}

// checkKeys reports whether the key source is loaded: introspection is
// configured, a JWT was verified, or the JWK Set was fetched once (by this
// check: the middleware does not say).
func (s *proxyServer) checkKeys(ctx context.Context) error {
	if s.keysLoaded.Load() {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.jwksURL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %d", s.jwksURL, resp.StatusCode)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil || len(set.Keys) == 0 {
		return fmt.Errorf("%s: not a JWK Set with keys (%v)", s.jwksURL, err)
	}
	s.keysLoaded.Store(true)
	return nil
}

// reload reads --policy again (what SIGHUP does).
func (s *proxyServer) reload() error {
	if s.policy == nil {
		return nil
	}
	err := s.policy.Reload()
	s.reloaded(err)
	return err
}

// reloaded counts a policy reload (celpolicy logs it).
func (s *proxyServer) reloaded(err error) {
	result := "ok"
	if err != nil {
		result = "failed"
	}
	s.metrics.policyReloads.WithLabelValues(result).Inc()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// quietBelow returns log without the records below level.
func quietBelow(log *slog.Logger, level slog.Level) *slog.Logger {
	return slog.New(levelFloor{log.Handler(), level})
}

// dropInsecure drops, while hold is set, the warnings that name an
// Insecure… setting.
type dropInsecure struct {
	slog.Handler
	hold *atomic.Bool
}

func (h *dropInsecure) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn && h.hold.Load() && strings.Contains(r.Message, "Insecure") {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h *dropInsecure) WithAttrs(as []slog.Attr) slog.Handler {
	return &dropInsecure{h.Handler.WithAttrs(as), h.hold}
}

func (h *dropInsecure) WithGroup(name string) slog.Handler {
	return &dropInsecure{h.Handler.WithGroup(name), h.hold}
}

type levelFloor struct {
	slog.Handler
	min slog.Level
}

func (h levelFloor) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelFloor) WithAttrs(as []slog.Attr) slog.Handler {
	return levelFloor{h.Handler.WithAttrs(as), h.min}
}

func (h levelFloor) WithGroup(name string) slog.Handler {
	return levelFloor{h.Handler.WithGroup(name), h.min}
}
