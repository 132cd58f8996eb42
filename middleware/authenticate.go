package middleware

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/jwtauth/v5"
	"golang.org/x/sync/singleflight"
)

// TokenMode says which path a bearer token takes: local JWT verification
// or introspection (RFC 7662).
type TokenMode uint8

// Token modes.
const (
	// ModeAuto, the zero value, follows the configuration: with a key
	// source and Introspection, JWT-shaped tokens are verified locally and
	// the others introspected (a JWT-shaped token that fails verification
	// is refused, never introspected); with only one of them, every token
	// takes its path.
	ModeAuto TokenMode = iota
	// ModeJWT verifies every token locally as a signed JWT. It needs a key
	// source and no Introspection.
	ModeJWT
	// ModeIntrospection introspects every token, JWT-shaped or not. It
	// needs Introspection and no key source.
	ModeIntrospection

	modeBoth // ModeAuto with both paths (internal)
)

// AuthConfig configures NewAuthenticator. Audience, and either a key
// source with Issuers or Introspection, are required; every other field
// has a safe default.
//
// The key source for JWTs is at most one of JWKSURL, JWKS, PublicKeys and
// JWTAuth. A token is verified with the key its kid names (the only key,
// for a token without kid), and each key is bound to exactly one
// algorithm, which must be in Algorithms: the JWK's alg, or else the key
// type's (RSA: DefaultRSAAlgorithm; EC P-256, P-384, P-521: ES256, ES384,
// ES512; Ed25519: EdDSA). RSA keys must have 2048 to 8192 bits. A key that
// breaks these rules makes NewAuthenticator fail (a static source) or is
// left out with a warning (a fetched JWKS).
type AuthConfig struct {
	// Audience is the FHIR base URL: tokens must carry it in aud. It is
	// also the realm of WWW-Authenticate challenges.
	Audience string
	// Issuers are the accepted iss values, compared exactly. Required for
	// JWTs; for introspection a present iss is checked when Issuers is set.
	Issuers []string

	// JWKSURL is the authorization server's JWK Set (https), fetched in the
	// background and refreshed (see JWKS fetching below): the way to
	// follow key rotations.
	JWKSURL string
	// JWKS is a static JWK Set document (RFC 7517 §5).
	JWKS []byte
	// PublicKeys are static keys by kid: *rsa.PublicKey, *ecdsa.PublicKey
	// or ed25519.PublicKey (smarttest.Server.PublicKeys returns such a
	// map). The key under the empty kid verifies tokens without kid and
	// must be the only one. NewAuthenticator reads the map once: a key
	// added later (smarttest.Server.RotateKey, say) is unknown, and its
	// tokens are refused (401).
	PublicKeys map[string]crypto.PublicKey
	// JWTAuth is a go-chi/jwtauth single-key setup; its algorithm must be
	// in Algorithms, and an HMAC secret at least as long as the hash.
	JWTAuth *jwtauth.JWTAuth

	// Introspection configures opaque-token introspection.
	Introspection *IntrospectionConfig
	// Mode chooses which path tokens take (ModeAuto: from the
	// configuration).
	Mode TokenMode

	// Algorithms is the allow-list of JWS algorithms. The default is
	// RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512 and
	// EdDSA. HMAC (HS256, HS384, HS512) is accepted only with JWTAuth;
	// "none" never.
	Algorithms []string
	// DefaultRSAAlgorithm binds RSA keys published without alg (default
	// RS256).
	DefaultRSAAlgorithm string
	// StrictTokenType requires typ at+jwt or application/at+jwt (RFC 9068,
	// case-insensitive). By default JWT (application/jwt) and an absent
	// typ are accepted too; any other typ is always refused.
	StrictTokenType bool
	// Leeway is the clock skew allowed on exp, nbf and iat (default 30 s,
	// at most 5 minutes).
	Leeway time.Duration
	// MaxLifetime refuses tokens living longer (exp − iat, or exp − now
	// without iat); default 1 hour, as SMART recommends.
	MaxLifetime time.Duration
	// MaxTokenBytes caps the token length (default 16 KiB).
	MaxTokenBytes int
	// Claims maps claim names (default: the SMART names).
	Claims ClaimNames

	// JWKS fetching. The set is fetched at start-up (in the background)
	// and again once its refresh interval has passed: the JWKS
	// Cache-Control max-age clamped into [JWKSMinRefresh, JWKSMaxRefresh]
	// (defaults 1 and 10 minutes). A key removed from the JWKS thus stops
	// verifying when that fetch completes. A token with an unknown kid, or
	// whose signature fails with a known kid, fetches at once; such
	// token-caused fetches run at most once per JWKSRefetchCooldown
	// (default 30 s), which is also the wait after a failed fetch.
	// Concurrent callers share one fetch. While the server cannot be
	// reached, known keys keep verifying and an unknown kid is a 503.
	// FetchTimeout (default 5 s) bounds a fetch and JWKSMaxBytes (default
	// 512 KiB) its body. HTTPClient (copied) carries custom transports or
	// TLS roots; without one the Authenticator uses a client of its own,
	// whose idle connections Close closes.
	JWKSMinRefresh      time.Duration
	JWKSMaxRefresh      time.Duration
	JWKSRefetchCooldown time.Duration
	FetchTimeout        time.Duration
	JWKSMaxBytes        int64
	HTTPClient          *http.Client

	// CacheSize bounds the verified-token cache (default 10000 tokens);
	// CacheMaxTTL bounds an entry's life beyond which the token is
	// verified again (default 10 minutes; never beyond exp).
	CacheSize   int
	CacheMaxTTL time.Duration
	// ScopeCacheSize bounds the cache of compiled scope matchers (default
	// 1024 distinct scope strings).
	ScopeCacheSize int

	// AllowFormBody and AllowQuery enable the RFC 6750 §2.2 form-body and
	// §2.3 query access_token methods. Off by default: FHIR search
	// parameters share those namespaces, and URLs end up in logs. Enabled
	// or not, an access_token parameter (in any case: Access_Token too)
	// counts as a method: with a second one (the Authorization header,
	// say) the request is a 400 invalid_request, and alone in a disabled
	// method a 401 without a token; the wrapped handler never sees it.
	AllowFormBody bool
	AllowQuery    bool

	// TrustedProxies lists the proxies (CIDRs or addresses) whose
	// X-Forwarded-Proto is believed when they terminated TLS.
	TrustedProxies []string
	// InsecureAllowHTTP accepts bearer tokens over plain HTTP. For local
	// development only: tokens travel in clear text. Without it, a token
	// that did not come over TLS (directly, or through a trusted proxy
	// saying https) is refused with 400 invalid_request.
	InsecureAllowHTTP bool
	// InsecureAllowHTTPKeyURLs accepts http JWKS and introspection URLs.
	// For local development only: keys and answers can be forged on the
	// way.
	InsecureAllowHTTPKeyURLs bool

	// Logger receives refusals (Info), infrastructure failures (Warn) and
	// start-up warnings; nil uses slog.Default().
	Logger *slog.Logger
	// OnDecision is called once per request with the outcome, for metrics
	// and audit. It must not block.
	OnDecision func(AuthEvent)
	// Now is the clock (default time.Now); for tests.
	Now func() time.Time
}

// tokenSource says how a token was validated.
type tokenSource uint8

// Token sources.
const (
	sourceNone          tokenSource = iota // no token was validated
	sourceJWT                              // a signed JWT verified locally
	sourceIntrospection                    // an opaque token introspected
)

func (s tokenSource) String() string {
	switch s {
	case sourceJWT:
		return "jwt"
	case sourceIntrospection:
		return "introspection"
	}
	return "none"
}

// AuthEvent is one authentication outcome, given to AuthConfig.OnDecision.
type AuthEvent struct {
	Request *http.Request
	Token   *Token     // nil when refused
	Err     *AuthError // nil when accepted
	// Introspected is true when the token went to the introspection
	// endpoint (or its cache), false when it was verified as a JWT or
	// refused before either.
	Introspected bool
	Cached       bool // answered from the verified-token or introspection cache
}

const (
	defaultLeeway        = 30 * time.Second
	maxLeeway            = 5 * time.Minute
	defaultMaxLifetime   = time.Hour
	defaultMaxTokenBytes = 16 << 10
	maxFormBytes         = 1 << 20
)

// Authenticator is the authentication middleware. Build it once with
// NewAuthenticator; it is safe for concurrent use.
type Authenticator struct {
	realm string
	// resourceMetadata is the URL of the RFC 9728 metadata the Guard
	// serves, named in challenges ("" when it serves none).
	resourceMetadata string
	mode             TokenMode
	keys             keySource
	rules            *claimRules
	jwtCache         *tokenCache
	hasher           tokenHasher // keys of jwtCache and of the introspection cache
	cacheMaxTTL      time.Duration
	sf               singleflight.Group
	intro            *introspector
	strictTyp        bool
	allowed          map[string]bool
	maxTokenBytes    int
	allowForm        bool
	allowQuery       bool
	proxies          []netip.Prefix
	insecureHTTP     bool
	log              *slog.Logger
	onDecision       func(AuthEvent)
	now              func() time.Time

	verifications atomic.Int64 // signature verifications performed (tests)
}

// NewAuthenticator validates cfg and builds the middleware. With a
// JWKSURL it starts fetching the key set in the background (start-up does
// not wait for the authorisation server). Close stops the goroutines it
// starts (the JWKS fetches and schedule, introspection calls).
func NewAuthenticator(cfg AuthConfig) (*Authenticator, error) {
	a := &Authenticator{
		hasher:       newTokenHasher(),
		allowForm:    cfg.AllowFormBody,
		allowQuery:   cfg.AllowQuery,
		insecureHTTP: cfg.InsecureAllowHTTP,
		strictTyp:    cfg.StrictTokenType,
		onDecision:   cfg.OnDecision,
		now:          cfg.Now,
		log:          cfg.Logger,
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	u, err := url.Parse(cfg.Audience)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("middleware: Audience %q must be the absolute FHIR base URL", cfg.Audience)
	}
	a.realm = cfg.Audience
	for i, iss := range cfg.Issuers {
		if iss == "" {
			return nil, fmt.Errorf("middleware: Issuers[%d] is empty", i)
		}
	}
	if a.mode, err = resolveMode(cfg); err != nil {
		return nil, err
	}

	leeway, err := durationSetting("Leeway", cfg.Leeway, defaultLeeway, maxLeeway)
	if err != nil {
		return nil, err
	}
	maxLife, err := durationSetting("MaxLifetime", cfg.MaxLifetime, defaultMaxLifetime, 0)
	if err != nil {
		return nil, err
	}
	a.maxTokenBytes = cfg.MaxTokenBytes
	switch {
	case a.maxTokenBytes == 0:
		a.maxTokenBytes = defaultMaxTokenBytes
	case a.maxTokenBytes < 256:
		return nil, fmt.Errorf("middleware: MaxTokenBytes %d is below 256", a.maxTokenBytes)
	}
	scopeSize, err := sizeSetting("ScopeCacheSize", cfg.ScopeCacheSize, 1024)
	if err != nil {
		return nil, err
	}
	scopes, err := newScopeCache(scopeSize)
	if err != nil {
		return nil, err
	}
	a.rules = &claimRules{
		issuers:         slices.Clone(cfg.Issuers), // the caller keeps its slice
		requireIssuer:   true,
		audience:        cfg.Audience,
		requireAudience: true,
		leeway:          leeway,
		maxLifetime:     maxLife,
		names:           cfg.Claims.withDefaults(),
		scopes:          scopes,
	}

	for _, p := range cfg.TrustedProxies {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			addr, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return nil, fmt.Errorf("middleware: TrustedProxies: %q is not a CIDR or an address", p)
			}
			pfx = netip.PrefixFrom(addr, addr.BitLen())
		}
		a.proxies = append(a.proxies, pfx.Masked())
	}

	// Introspection first: it starts no goroutine, the JWKS source does.
	if cfg.Introspection != nil {
		a.intro, err = newIntrospector(*cfg.Introspection, a.rules, cfg.InsecureAllowHTTPKeyURLs, a.now, a.log)
		if err != nil {
			return nil, err
		}
	}
	if err := a.setupKeys(cfg); err != nil {
		a.Close()
		return nil, err
	}
	if a.insecureHTTP {
		a.log.Warn("fhirguard: InsecureAllowHTTP is set: bearer tokens are accepted over plain HTTP; never use this in production")
	}
	if cfg.InsecureAllowHTTPKeyURLs {
		a.log.Warn("fhirguard: InsecureAllowHTTPKeyURLs is set: keys and introspection answers may be fetched over plain HTTP; never use this in production")
	}
	return a, nil
}

// keySourceFields names the key source fields, for messages.
const keySourceFields = "JWKSURL, JWKS, PublicKeys or JWTAuth"

// resolveMode checks that the configured sources fit cfg.Mode, and
// resolves ModeAuto.
func resolveMode(cfg AuthConfig) (TokenMode, error) {
	var keys []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"JWKSURL", cfg.JWKSURL != ""}, {"JWKS", cfg.JWKS != nil},
		{"PublicKeys", cfg.PublicKeys != nil}, {"JWTAuth", cfg.JWTAuth != nil},
	} {
		if f.set {
			keys = append(keys, f.name)
		}
	}
	if len(keys) > 1 {
		return 0, fmt.Errorf("middleware: set at most one key source (%s), not %s", keySourceFields, strings.Join(keys, " and "))
	}
	hasKeys, hasIntro := len(keys) == 1, cfg.Introspection != nil
	mode := cfg.Mode
	switch mode {
	case ModeAuto:
		switch {
		case hasKeys && hasIntro:
			mode = modeBoth
		case hasKeys:
			mode = ModeJWT
		case hasIntro:
			mode = ModeIntrospection
		default:
			return 0, fmt.Errorf("middleware: no way to validate tokens: set a key source (%s) for JWTs, or Introspection", keySourceFields)
		}
	case ModeJWT:
		if !hasKeys {
			return 0, fmt.Errorf("middleware: ModeJWT needs a key source (%s)", keySourceFields)
		}
		if hasIntro {
			return 0, errors.New("middleware: ModeJWT never introspects: remove Introspection, or use ModeAuto")
		}
	case ModeIntrospection:
		if !hasIntro {
			return 0, errors.New("middleware: ModeIntrospection needs Introspection")
		}
		if hasKeys {
			return 0, fmt.Errorf("middleware: ModeIntrospection verifies no JWT locally: remove %s, or use ModeAuto", keys[0])
		}
	default:
		return 0, fmt.Errorf("middleware: unknown Mode %d", cfg.Mode)
	}
	if mode != ModeIntrospection && len(cfg.Issuers) == 0 {
		return 0, fmt.Errorf("middleware: verifying JWTs (%s is set) needs Issuers, their accepted iss values", keys[0])
	}
	return mode, nil
}

func durationSetting(name string, v, def, limit time.Duration) (time.Duration, error) {
	switch {
	case v < 0:
		return 0, fmt.Errorf("middleware: %s is negative", name)
	case v == 0:
		return def, nil
	case limit > 0 && v > limit:
		return 0, fmt.Errorf("middleware: %s %v exceeds %v", name, v, limit)
	}
	return v, nil
}

func sizeSetting[T int | int64](name string, v, def T) (T, error) {
	switch {
	case v < 0:
		return 0, fmt.Errorf("middleware: %s is negative", name)
	case v == 0:
		return def, nil
	}
	return v, nil
}

// setupKeys builds the key source, if any. A JWKS URL starts fetching: it
// comes last, after every check.
func (a *Authenticator) setupKeys(cfg AuthConfig) error {
	algs := cfg.Algorithms
	if len(algs) == 0 {
		algs = defaultAlgorithms[:] // only read: a.allowed is a copy
	}
	a.allowed = map[string]bool{}
	for _, alg := range algs {
		info, ok := algorithms[alg]
		if !ok {
			return fmt.Errorf("middleware: Algorithms: unknown or forbidden algorithm %q", alg)
		}
		if info.family == famHMAC && cfg.JWTAuth == nil {
			return fmt.Errorf("middleware: Algorithms: %s is only accepted with JWTAuth, never with a key set", alg)
		}
		a.allowed[alg] = true
	}
	policy := &keyPolicy{allowed: a.allowed, defaultRSA: cfg.DefaultRSAAlgorithm}
	if policy.defaultRSA == "" {
		policy.defaultRSA = "RS256"
	}
	if f := algorithms[policy.defaultRSA].family; f != famRSA && f != famPSS {
		return fmt.Errorf("middleware: DefaultRSAAlgorithm %q is not an RSA algorithm", policy.defaultRSA)
	}
	if a.mode == ModeIntrospection {
		return nil
	}

	size, err := sizeSetting("CacheSize", cfg.CacheSize, 10000)
	if err != nil {
		return err
	}
	if a.jwtCache, err = newTokenCache(size); err != nil {
		return err
	}
	if a.cacheMaxTTL, err = durationSetting("CacheMaxTTL", cfg.CacheMaxTTL, 10*time.Minute, 0); err != nil {
		return err
	}

	switch {
	case cfg.JWKSURL != "":
		if _, err := checkFetchURL("JWKSURL", cfg.JWKSURL, cfg.InsecureAllowHTTPKeyURLs); err != nil {
			return err
		}
		minR, err := durationSetting("JWKSMinRefresh", cfg.JWKSMinRefresh, time.Minute, 0)
		if err != nil {
			return err
		}
		maxR, err := durationSetting("JWKSMaxRefresh", cfg.JWKSMaxRefresh, 10*time.Minute, 0)
		if err != nil {
			return err
		}
		if maxR < minR {
			return fmt.Errorf("middleware: JWKSMaxRefresh %v is below JWKSMinRefresh %v", maxR, minR)
		}
		cool, err := durationSetting("JWKSRefetchCooldown", cfg.JWKSRefetchCooldown, 30*time.Second, 0)
		if err != nil {
			return err
		}
		timeout, err := durationSetting("FetchTimeout", cfg.FetchTimeout, 5*time.Second, 0)
		if err != nil {
			return err
		}
		maxBytes, err := sizeSetting("JWKSMaxBytes", cfg.JWKSMaxBytes, 512<<10)
		if err != nil {
			return err
		}
		a.keys = newRemoteKeys(policy, remoteOptions{
			url:        cfg.JWKSURL,
			client:     fetchClient(cfg.HTTPClient, maxBytes, minR, maxR),
			minRefresh: minR,
			maxRefresh: maxR,
			cooldown:   cool,
			timeout:    timeout,
		}, a.log, a.now)
	case cfg.JWKS != nil:
		entries, err := parseJWKS(cfg.JWKS, false)
		if err != nil {
			return fmt.Errorf("middleware: JWKS: %w", err)
		}
		if a.keys, err = newStaticKeys(policy, "JWKS", entries); err != nil {
			return err
		}
	case cfg.PublicKeys != nil:
		if _, ok := cfg.PublicKeys[""]; ok && len(cfg.PublicKeys) > 1 {
			return errors.New(`middleware: PublicKeys: the key without kid ("") must be the only key (it verifies tokens without kid)`)
		}
		if a.keys, err = newStaticKeys(policy, "PublicKeys", publicKeyEntries(cfg.PublicKeys)); err != nil {
			return err
		}
	case cfg.JWTAuth != nil:
		if a.keys, err = newJWTAuthKeys(policy, cfg.JWTAuth); err != nil {
			return err
		}
	}
	return nil
}

// Close stops the goroutines the Authenticator started and waits for them:
// the JWKS schedule and a fetch in flight, and introspection calls in
// flight (their requests get a 503). It closes the idle connections of the
// transports it made (a transport given in HTTPClient is the caller's). Afterwards the
// middleware keeps verifying JWTs with the keys it has, without refreshing
// them, and answers tokens that need an introspection call (not cached)
// with a 503. Close may be called more than once.
func (a *Authenticator) Close() {
	if a.keys != nil {
		a.keys.close()
	}
	if a.intro != nil {
		a.intro.close()
	}
}

// Handler wraps next: a request with a valid bearer token reaches next
// with the *Token in its context (TokenFromContext) and, for a JWT,
// jwtauth's context values (jwtauth.FromContext); any other request is
// answered with an RFC 6750 error and a FHIR OperationOutcome.
func (a *Authenticator) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r2, e, src, cached, aerr := a.authenticate(r)
		if aerr != nil {
			a.refused(r, src, cached, aerr)
			closeUnreadBody(w, r)
			writeError(w, challengeInfo{a.realm, a.resourceMetadata}, aerr)
			return
		}
		if a.onDecision != nil {
			a.onDecision(AuthEvent{Request: r, Token: e.tok, Introspected: src == sourceIntrospection, Cached: cached})
		}
		next.ServeHTTP(w, withAuthContext(r2, e))
	})
}

func (a *Authenticator) refused(r *http.Request, src tokenSource, cached bool, e *AuthError) {
	level := slog.LevelInfo
	if e.Status >= 500 {
		level = slog.LevelWarn
	}
	a.log.Log(r.Context(), level, "fhirguard: request refused",
		"status", e.Status, "code", string(e.Code), "source", src.String(), "cached", cached,
		"method", r.Method, "path", r.URL.Path, "error", e.Err)
	if a.onDecision != nil {
		a.onDecision(AuthEvent{Request: r, Err: e, Introspected: src == sourceIntrospection, Cached: cached})
	}
}

// authenticate finds and validates the request's token.
func (a *Authenticator) authenticate(r *http.Request) (*http.Request, *cacheEntry, tokenSource, bool, *AuthError) {
	key, r2, aerr := a.extract(r)
	if aerr != nil {
		return r, nil, sourceNone, false, aerr
	}
	if key.raw == "" {
		return r, nil, sourceNone, false, unauthenticated()
	}
	if !a.secure(r) {
		// RFC 6750 §3.1: invalid_request is a 400. The token may have
		// crossed the network in clear text: the client should revoke it.
		return r, nil, sourceNone, false, invalidRequest("bearer tokens are only accepted over https", errInsecureTransport)
	}
	e, src, cached, aerr := a.validateKey(r.Context(), key)
	return r2, e, src, cached, aerr
}

// validate routes a token to JWT verification or introspection.
func (a *Authenticator) validate(ctx context.Context, raw string) (*cacheEntry, tokenSource, bool, *AuthError) {
	return a.validateKey(ctx, a.hasher.key(raw))
}

// validateKey is validate for the token of h.
func (a *Authenticator) validateKey(ctx context.Context, h cacheKey) (*cacheEntry, tokenSource, bool, *AuthError) {
	raw := h.raw
	if a.mode == modeBoth {
		// A cached JWT skips the shape check.
		if e, ok := a.cachedJWT(h); ok {
			return e, sourceJWT, true, nil
		}
	}
	jwtPath := a.mode == ModeJWT || (a.mode == modeBoth && looksLikeJWT(raw))
	if !jwtPath {
		e, cached, aerr := a.intro.token(ctx, raw, h)
		return e, sourceIntrospection, cached, aerr
	}
	e, cached, aerr := a.verifyJWT(ctx, raw, h)
	return e, sourceJWT, cached, aerr
}

// verifyJWT answers from the verified-token cache when the entry is alive
// and was verified with the current key set; otherwise one verification
// runs, shared by concurrent requests with the same token.
func (a *Authenticator) verifyJWT(ctx context.Context, raw string, h cacheKey) (*cacheEntry, bool, *AuthError) {
	if e, ok := a.cachedJWT(h); ok {
		return e, true, nil
	}
	// Concurrent requests share one verification only when they carry the
	// same token: the key is the token, never its hash.
	v, err, _ := a.sf.Do(raw, func() (any, error) {
		if e, ok := a.cachedJWT(h); ok {
			return e, nil
		}
		e, err := a.verifyJWTSlow(context.WithoutCancel(ctx), raw)
		if err != nil {
			return nil, err
		}
		a.jwtCache.add(h, e)
		return e, nil
	})
	if err != nil {
		return nil, false, asAuthError(err)
	}
	return v.(*cacheEntry), false, nil
}

// cachedJWT returns the live cache entry of h verified with the current
// key set.
func (a *Authenticator) cachedJWT(h cacheKey) (*cacheEntry, bool) {
	now := a.now().UnixNano()
	e, ok := a.jwtCache.get(h, now)
	if !ok || e.keyGen != a.keys.generation(now) {
		return nil, false
	}
	return e, true
}

// verifyJWTSlow is first-sight verification: strict parse, header policy,
// key selection (with a rate-limited refetch), signature, claims.
func (a *Authenticator) verifyJWTSlow(ctx context.Context, raw string) (*cacheEntry, error) {
	t, err := parseJWS(raw)
	if err != nil {
		return nil, invalidToken("the access token is malformed", err)
	}
	if !a.allowed[t.alg] {
		return nil, invalidToken("the access token is not valid", fmt.Errorf("%w: %q", errAlgorithm, logTrunc(t.alg, 16)))
	}
	if err := t.checkTyp(a.strictTyp); err != nil {
		return nil, invalidToken("the token is not an access token", err)
	}
	ks, err := a.keys.keys(ctx)
	if err != nil {
		return nil, err
	}
	k, err := ks.lookup(t)
	if errors.Is(err, errNoSuchKid) {
		// An unknown kid may be a new key: refetch (rate-limited). Only a
		// successful fetch without the kid makes the token invalid.
		ks2, ferr := a.keys.refetch(ctx, func(s *keySet) bool {
			_, lerr := s.lookup(t)
			return !errors.Is(lerr, errNoSuchKid)
		})
		if ks2 != nil {
			ks = ks2
			k, err = ks.lookup(t)
		}
		if errors.Is(err, errNoSuchKid) {
			if ferr != nil {
				return nil, ferr
			}
			err = fmt.Errorf("%w: %v", errUnknownKey, err)
		}
	}
	if err != nil {
		return nil, invalidToken("the access token is not valid", err)
	}
	a.verifications.Add(1)
	if err := verifySignature(t, k); err != nil {
		// The key may have been replaced under the same kid: refetch
		// (rate-limited) and try a changed key once. The token stays
		// invalid for a key source that cannot be reached.
		ks2, _ := a.keys.refetch(ctx, func(s *keySet) bool {
			k2, lerr := s.lookup(t)
			return lerr == nil && !k2.equal(k)
		})
		if ks2 == nil {
			return nil, invalidToken("the access token is not valid", err)
		}
		k2, lerr := ks2.lookup(t)
		if lerr != nil || k2.equal(k) {
			return nil, invalidToken("the access token is not valid", err)
		}
		ks, k = ks2, k2
		a.verifications.Add(1)
		if err := verifySignature(t, k); err != nil {
			return nil, invalidToken("the access token is not valid", err)
		}
	}
	claims, err := decodeObject(t.payload)
	if err != nil {
		return nil, invalidToken("the access token is malformed", fmt.Errorf("%w: claims: %v", errMalformedToken, err))
	}
	now := a.now()
	tok, err := a.rules.buildToken(claims, now)
	if err != nil {
		return nil, claimsError(err)
	}
	exp := tok.Expiry.Add(a.rules.leeway).UnixNano()
	if limit := now.Add(a.cacheMaxTTL).UnixNano(); limit < exp {
		exp = limit
	}
	return &cacheEntry{tok: tok, expires: exp, keyGen: ks.gen, isJWT: true}, nil
}

// claimsError renders a claim-check failure.
func claimsError(err error) *AuthError {
	desc := "the access token is not valid"
	switch {
	case errors.Is(err, ErrTokenExpired):
		desc = "the access token expired"
	case errors.Is(err, errTokenNotYetValid):
		desc = "the access token is not valid yet"
	case errors.Is(err, errAudience):
		desc = "the access token is not meant for this server"
	case errors.Is(err, errTokenLifetime):
		desc = "the access token lives longer than this server accepts"
	}
	return invalidToken(desc, err)
}

// secure reports whether the request arrived over TLS: directly, or
// through a trusted proxy that says so in X-Forwarded-Proto, or anyway
// with InsecureAllowHTTP.
func (a *Authenticator) secure(r *http.Request) bool {
	if r.TLS != nil || a.insecureHTTP {
		return true
	}
	if len(a.proxies) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	trusted := false
	for _, p := range a.proxies {
		if p.Contains(ip) {
			trusted = true
			break
		}
	}
	if !trusted {
		return false
	}
	xfp := r.Header.Values("X-Forwarded-Proto")
	return len(xfp) == 1 && strings.EqualFold(strings.TrimSpace(xfp[0]), "https")
}

// authContext is the request context after authentication: one
// allocation answers TokenFromContext, jwtauth.FromContext, and holds the
// link through which it answers DecisionFromContext (as
// newContextWithToken's does).
type authContext struct {
	context.Context
	e    *cacheEntry
	link decisionLink
}

func (c *authContext) Value(key any) any {
	switch key {
	case tokenKey{}:
		return c.e.tok
	case linkKey{}:
		return &c.link
	case decisionKey{}:
		return c.link.value()
	case jwtauth.TokenCtxKey:
		if c.e.isJWT {
			return c.e.jwtToken()
		}
	case jwtauth.ErrorCtxKey:
		if c.e.isJWT {
			return nil
		}
	}
	return c.Context.Value(key)
}
