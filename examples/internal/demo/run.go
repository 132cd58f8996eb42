package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fhirguard/fhirguard/celpolicy"
	"github.com/fhirguard/fhirguard/discovery"
	"github.com/fhirguard/fhirguard/examples/internal/fhirstore"
	"github.com/fhirguard/fhirguard/middleware"
	"github.com/fhirguard/fhirguard/smarttest"
)

// App holds the pieces an example wires into its router.
type App struct {
	// BasePath is the path of the FHIR base ("/fhir"), without a trailing
	// slash. Every request below it (and to it) must go through
	// Guard.Handler.
	BasePath string
	// FHIR is the FHIR server itself: the in-memory store. It performs no
	// authorization; never route to it except through Guard.Handler.
	FHIR http.Handler
	// Guard is the fhirguard stack: discovery documents, /metadata,
	// Authenticate and Authorize.
	Guard *middleware.Guard
	// Auth is the embedded authorization server, to mount at AuthPath
	// (it accepts paths with or without the prefix). Nil with -issuer.
	Auth http.Handler
	// Logger is the demo's logger.
	Logger *slog.Logger
}

// Router builds an example's HTTP handler from the App.
type Router func(app *App) http.Handler

// Options are the inputs of Run that are not flags.
type Options struct {
	// Name is the program name for usage messages. Default "demo".
	Name string
	// Stdout receives the start-up banner; Stderr the logs and usage
	// messages. Nil discards.
	Stdout, Stderr io.Writer
	// Listener, when set, is served instead of listening on -addr (tests
	// pass one on 127.0.0.1:0). Run closes it.
	Listener net.Listener
	// Ready, when set, is called once the server is serving and the banner
	// has been printed.
	Ready func(*Server)
}

// Server is a running demo server.
type Server struct {
	cfg      Config
	base     *url.URL
	issuer   string
	insecure bool
	// insecureOn lists what the demo turned on that weakens security, for
	// the banner's INSECURE warning.
	insecureOn []insecureSetting
	auth       *smarttest.Server
	store      *fhirstore.Store
	guard      *middleware.Guard
	patient    string
	system     string
	curls      []Curl
	discovery  string
	launchURL  string // the banner's EHR launch (embedded server only)
}

// Curl is one command of the start-up banner: what it shows, the HTTP
// status it answers with, and the command line itself, which reads the
// tokens from the shell variables the banner sets (PatientTokenVar,
// SystemTokenVar).
type Curl struct {
	Title   string
	Status  int
	Command string
}

// BaseURL returns the FHIR base URL, without a trailing slash.
func (s *Server) BaseURL() string { return s.base.String() }

// DiscoveryURL returns the URL of the FHIR server's
// .well-known/smart-configuration.
func (s *Server) DiscoveryURL() string { return s.discovery }

// Issuer returns the issuer of the tokens the server accepts.
func (s *Server) Issuer() string { return s.issuer }

// AuthServer returns the embedded authorization server, or nil with
// -issuer.
func (s *Server) AuthServer() *smarttest.Server { return s.auth }

// Store returns the FHIR store.
func (s *Server) Store() *fhirstore.Store { return s.store }

// Insecure reports whether bearer tokens are accepted over plain HTTP
// (loopback with an http base URL).
func (s *Server) Insecure() bool { return s.insecure }

// PatientToken returns the banner's patient-scoped token (patient 123),
// empty with -issuer.
func (s *Server) PatientToken() string { return s.patient }

// SystemToken returns the banner's system-scoped token, empty with
// -issuer.
func (s *Server) SystemToken() string { return s.system }

// EHRLaunchURL returns the banner's EHR launch URL: the embedded server's
// launch simulator, for -app-launch-url and -patient. Each visit makes a
// new single-use launch. Empty with -issuer.
func (s *Server) EHRLaunchURL() string { return s.launchURL }

// Curls returns the banner's curl commands.
func (s *Server) Curls() []Curl { return append([]Curl(nil), s.curls...) }

// Main runs the demo as a program: flags from os.Args, banner on stdout,
// logs on stderr, stopped by SIGINT or SIGTERM. It exits the process with
// status 1 on error and 2 on bad flags. A second signal during the
// shutdown ends the process at once.
func Main(name string, router Router) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // the next signal takes its default action
	}()
	err := Run(ctx, os.Args[1:], router, Options{Name: name, Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, ErrConfig):
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// Run parses args, builds the demo server with router, serves until ctx
// is done and shuts down cleanly (in-flight requests get
// -shutdown-timeout). It returns nil after a clean shutdown.
func Run(ctx context.Context, args []string, router Router, opt Options) (err error) {
	if opt.Name == "" {
		opt.Name = "demo"
	}
	if opt.Stdout == nil {
		opt.Stdout = io.Discard
	}
	if opt.Stderr == nil {
		opt.Stderr = io.Discard
	}
	if router == nil {
		return fmt.Errorf("%w: no router", ErrConfig)
	}
	cfg, err := ParseFlags(opt.Name, args, opt.Stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(opt.Stderr, nil))

	ln := opt.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return err
		}
	}
	defer ln.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, cleanup, err := build(ctx, cfg, ln.Addr(), log)
	defer cleanup()
	if err != nil {
		return err
	}
	app := &App{BasePath: s.base.Path, FHIR: s.store, Guard: s.guard, Logger: log}
	if s.auth != nil {
		app.Auth = s.auth
	}
	srv := &http.Server{
		Handler:           logRequests(log, router(app)),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	if err := s.prepareBanner(); err != nil {
		_ = srv.Close()
		return err
	}
	s.printBanner(opt.Stdout)
	if opt.Ready != nil {
		opt.Ready(s)
	}

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	<-served
	log.Info("stopped")
	return nil
}

// build makes the store, the authorization side and the Guard. cleanup
// must be called even when err is not nil.
func build(ctx context.Context, cfg Config, bound net.Addr, log *slog.Logger) (s *Server, cleanup func(), err error) {
	var closers []func()
	cleanup = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	base, err := cfg.baseURLFor(bound)
	if err != nil {
		return nil, cleanup, fmt.Errorf("%w: base URL: %v", ErrConfig, err)
	}
	s = &Server{cfg: cfg, base: base, discovery: base.String() + "/.well-known/smart-configuration"}
	if cfg.Issuer == "" && (base.Path == AuthPath || strings.HasPrefix(base.Path, AuthPath+"/")) {
		return nil, cleanup, fmt.Errorf("%w: the FHIR base path %s collides with the embedded authorization server at %s", ErrConfig, base.Path, AuthPath)
	}

	// Plain HTTP: allowed only on loopback, and said loudly (the banner's
	// INSECURE warning).
	if base.Scheme == "http" {
		if !isLoopback(bound) {
			return nil, cleanup, fmt.Errorf("%w: an http -base-url needs a loopback -addr (bearer tokens over plain HTTP are refused elsewhere); terminate TLS in front of the server and give an https -base-url", ErrConfig)
		}
		s.insecure = true
		s.insecureOn = append(s.insecureOn, insecureSetting{setting: "AuthConfig.InsecureAllowHTTP", guardField: "InsecureAllowHTTP",
			what: "bearer tokens are accepted over plain HTTP (loopback only)",
			off:  "an https -base-url, with TLS terminated in front (-trusted-proxies)"})
	}

	store, err := fhirstore.New(fhirstore.Config{BasePath: base.Path, BaseURL: base.String()})
	if err != nil {
		return nil, cleanup, err
	}
	if !cfg.Empty {
		if err := store.Seed(); err != nil {
			return nil, cleanup, err
		}
	}
	s.store = store

	auth := middleware.AuthConfig{
		InsecureAllowHTTP:   s.insecure,
		JWKSRefetchCooldown: cfg.JWKSRefetchCooldown,
		TrustedProxies:      cfg.TrustedProxies,
	}
	var dh *discovery.Handler
	var prh *discovery.ProtectedResourceHandler
	if cfg.Issuer == "" {
		as, err := smarttest.New(smarttest.Config{
			Issuer:      base.Scheme + "://" + base.Host + AuthPath,
			FHIRBase:    base.String(),
			User:        "Practitioner/9",
			Patient:     cfg.Patient,
			Consent:     cfg.Consent,
			CORSOrigins: cfg.CORSOrigins, // besides the app redirect URIs' origins
		})
		if err != nil {
			return nil, cleanup, err
		}
		s.auth = as
		if s.launchURL, err = registerApps(as, cfg); err != nil {
			return nil, cleanup, err
		}
		s.issuer = as.SMARTConfiguration().Issuer
		auth.JWKSURL = as.SMARTConfiguration().JWKSURI
		auth.Issuers = []string{as.SMARTConfiguration().Issuer}
		if cfg.IntrospectionURL == "" {
			// Opaque tokens of the embedded server are introspected there,
			// with a client registered for the purpose.
			secret := randomString()
			if err := as.RegisterClient(smarttest.Client{ID: "fhirguard-demo", Secret: secret, Introspect: true}); err != nil {
				return nil, cleanup, err
			}
			auth.Introspection = &middleware.IntrospectionConfig{
				Endpoint: as.SMARTConfiguration().IntrospectionEndpoint, ClientID: "fhirguard-demo", ClientSecret: secret,
			}
		}
		b, err := json.Marshal(as.SMARTConfiguration())
		if err != nil {
			return nil, cleanup, err
		}
		var doc discovery.Document
		if err := json.Unmarshal(b, &doc); err != nil {
			return nil, cleanup, err
		}
		if dh, err = discovery.NewHandler(&doc, discovery.HandlerConfig{}); err != nil {
			return nil, cleanup, err
		}
		if prh, err = discovery.NewProtectedResourceHandler(doc.ProtectedResource(base.String(), as.SMARTConfiguration().Issuer), discovery.HandlerConfig{}); err != nil {
			return nil, cleanup, err
		}
		log.Info("embedded SMART authorization server (smarttest; NOT FOR PRODUCTION)", "issuer", as.SMARTConfiguration().Issuer)
	} else {
		iss, err := url.Parse(cfg.Issuer)
		if err != nil {
			return nil, cleanup, fmt.Errorf("%w: -issuer: %v", ErrConfig, err)
		}
		httpOK := s.insecure && iss.Scheme == "http" && isLoopbackHost(iss)
		if httpOK {
			s.insecureOn = append(s.insecureOn, insecureSetting{setting: "discovery FetchConfig.InsecureAllowHTTPURLs",
				what: "the authorization server's OpenID configuration is fetched over plain HTTP (loopback only)",
				off:  "an https -issuer"})
		}
		remote, err := discovery.NewRemote(ctx, discovery.RemoteConfig{
			Issuer: cfg.Issuer,
			// Without -capabilities they are derived from the server's
			// metadata (discovery.Derive), which advertises only what it
			// supports; given ones it cannot support are dropped with a
			// warning.
			Local:           &discovery.Document{Capabilities: cfg.Capabilities},
			Resource:        base.String(),
			Fetch:           discovery.FetchConfig{InsecureAllowHTTPURLs: httpOK},
			RefreshInterval: 10 * time.Minute,
			OnRefresh: func(err error) {
				if err != nil {
					log.Warn("refreshing the authorization server's OpenID configuration failed", "error", err)
				}
			},
			OnWarnings: func(ps discovery.Problems) {
				for _, p := range ps {
					log.Warn("SMART configuration from the authorization server's metadata", "problem", p.Error())
				}
			},
		})
		if err != nil {
			return nil, cleanup, fmt.Errorf("authorization server %s: %w", cfg.Issuer, err)
		}
		closers = append(closers, remote.Close)
		dh = remote.Handler()
		prh = remote.ProtectedResourceHandler()
		s.issuer = strings.TrimRight(cfg.Issuer, "/")
		auth.Issuers = []string{cfg.Issuer}
		auth.JWKSURL = cfg.JWKSURL
		if auth.JWKSURL == "" {
			auth.JWKSURL = remote.OpenIDConfiguration().JWKSURI
		}
		if auth.JWKSURL == "" && cfg.IntrospectionURL == "" {
			return nil, cleanup, fmt.Errorf("%w: the authorization server publishes no jwks_uri; give -jwks-url or -introspection-url", ErrConfig)
		}
		log.Info("trusting an external authorization server", "issuer", cfg.Issuer, "jwks", auth.JWKSURL)
	}
	if cfg.IntrospectionURL != "" {
		auth.Introspection = &middleware.IntrospectionConfig{
			Endpoint:     cfg.IntrospectionURL,
			ClientID:     cfg.IntrospectionClientID,
			ClientSecret: cfg.IntrospectionClientSecret,
		}
	}
	// Keys and introspection answers over plain HTTP: only with an http
	// base on loopback, and only when one of their URLs is http.
	var httpIn []string // where those URLs come from
	if isHTTP(auth.JWKSURL) {
		switch {
		case s.auth != nil:
			httpIn = append(httpIn, "-base-url (the embedded server shares its listener)")
		case cfg.JWKSURL != "":
			httpIn = append(httpIn, "-jwks-url")
		default:
			httpIn = append(httpIn, "the jwks_uri of the -issuer")
		}
	}
	if auth.Introspection != nil && isHTTP(auth.Introspection.Endpoint) {
		if cfg.IntrospectionURL != "" {
			httpIn = append(httpIn, "-introspection-url")
		} else if s.auth == nil || !isHTTP(auth.JWKSURL) {
			httpIn = append(httpIn, "-base-url (the embedded server shares its listener)")
		}
	}
	if s.insecure && len(httpIn) > 0 {
		auth.InsecureAllowHTTPKeyURLs = true
		s.insecureOn = append(s.insecureOn, insecureSetting{setting: "AuthConfig.InsecureAllowHTTPKeyURLs", guardField: "InsecureAllowHTTPKeyURLs",
			what: "keys and introspection answers are fetched over plain HTTP", off: "https in " + strings.Join(httpIn, " and ")})
	}
	if s.auth != nil {
		s.insecureOn = append(s.insecureOn, insecureSetting{setting: "embedded authorization server (smarttest)",
			what: "issues tokens to anyone who reaches it, without any login", off: "-issuer with your authorization server"})
	}
	// The Guard's own start-up warnings about the settings above would
	// repeat the banner's INSECURE warning: they are held back while New
	// runs (warnings about any other setting pass).
	quiet := newQuietInsecure(log.Handler(), s.insecureOn)
	auth.Logger = slog.New(quiet)

	authz := middleware.AuthorizeConfig{BaseURL: base.String(), Logger: log,
		EnforceEncounter: cfg.EnforceEncounter, RequireEncounter: cfg.RequireEncounter}
	if cfg.PolicyFile != "" {
		p, err := celpolicy.New(celpolicy.Config{File: cfg.PolicyFile, Logger: log,
			Watch: celpolicy.WatchConfig{Signals: []os.Signal{syscall.SIGHUP}}})
		if err != nil {
			return nil, cleanup, fmt.Errorf("-policy: %w", err)
		}
		authz.Policies = []middleware.Policy{p}
		closers = append(closers, p.Close)
		log.Info("CEL policies loaded (SIGHUP reloads them)", "file", cfg.PolicyFile, "rules", len(p.Rules()))
	}

	if _, err := middleware.ParseOrigins(strings.Join(cfg.corsOrigins(), ",")); err != nil {
		return nil, cleanup, fmt.Errorf("%w: CORS origins (-cors-origins, -app-redirect-uris): %v", ErrConfig, err)
	}
	g, err := middleware.New(middleware.Config{
		Authorize:          authz,
		Auth:               auth,
		CORS:               middleware.CORSConfig{AllowedOrigins: cfg.corsOrigins()},
		SMARTConfiguration: dh,
		ProtectedResource:  prh,
		PatchCapabilities:  true,
	})
	quiet.release()
	if err != nil {
		return nil, cleanup, err
	}
	closers = append(closers, g.Close)
	s.guard = g
	return s, cleanup, nil
}

func randomString() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
