package middleware

import (
	"context"
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

// TokenMode says which path a bearer token takes.
type TokenMode uint8

// Token modes.
const (
	// ModeDefault derives the mode from the configuration: AutoDetect when
	// both a key source and introspection are configured, otherwise the
	// one configured.
	ModeDefault TokenMode = iota
	// JWTOnly verifies every token locally as a signed JWT.
	JWTOnly
	// IntrospectionOnly introspects every token (RFC 7662).
	IntrospectionOnly
	// AutoDetect verifies JWT-shaped tokens locally and introspects the
	// rest. A JWT-shaped token that fails verification is refused, never
	// introspected.
	AutoDetect
)

// AuthConfig configures Authenticate. Audience, and either a key source
// with Issuers or Introspection, are required; every other field has a
// safe default.
type AuthConfig struct {
	// Audience is the FHIR base URL: tokens must carry it in aud. It is
	// also the realm of WWW-Authenticate challenges.
	Audience string
	// Issuers are the accepted iss values, compared exactly. Required for
	// JWTs; for introspection a present iss is checked when Issuers is set.
	Issuers []string

	// Key source for JWTs: at most one of JWKSURL, KeySet, JWKS, JWTAuth.
	JWKSURL string           // fetched and refreshed (https)
	KeySet  JWKSet           // a static JWK set
	JWKS    []byte           // a static JWK set as a JSON document
	JWTAuth *jwtauth.JWTAuth // a jwtauth single-key setup (its algorithm must be allowed)

	// Introspection configures opaque-token introspection.
	Introspection *IntrospectionConfig
	// Mode chooses which path tokens take (ModeDefault derives it).
	Mode TokenMode

	// Algorithms is the allow-list of JWS algorithms (default
	// DefaultAlgorithms()). HMAC (HS256…) is accepted only with JWTAuth;
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
	// TLS roots.
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
	// development only: tokens travel in clear text.
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

// TokenSource says how a token was validated.
type TokenSource uint8

// Token sources.
const (
	SourceNone          TokenSource = iota // no token was validated
	SourceJWT                              // a signed JWT verified locally
	SourceIntrospection                    // an opaque token introspected
)

func (s TokenSource) String() string {
	switch s {
	case SourceJWT:
		return "jwt"
	case SourceIntrospection:
		return "introspection"
	}
	return "none"
}

// AuthEvent is one authentication outcome, given to AuthConfig.OnDecision.
type AuthEvent struct {
	Request *http.Request
	Token   *Token     // nil when refused
	Err     *AuthError // nil when accepted
	Source  TokenSource
	Cached  bool // answered from the verified-token or introspection cache
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
	realm         string
	mode          TokenMode
	keys          keySource
	rules         *claimRules
	jwtCache      *tokenCache
	hasher        tokenHasher // keys of jwtCache and of the introspection cache
	cacheMaxTTL   time.Duration
	sf            singleflight.Group
	intro         *introspector
	strictTyp     bool
	allowed       map[string]bool
	maxTokenBytes int
	allowForm     bool
	allowQuery    bool
	proxies       []netip.Prefix
	insecureHTTP  bool
	log           *slog.Logger
	onDecision    func(AuthEvent)
	now           func() time.Time

	verifications atomic.Int64 // signature verifications performed (tests)
}

// NewAuthenticator validates cfg and builds the middleware. With a
// JWKSURL it starts fetching the key set in the background (start-up does
// not wait for the authorisation server); call Close to stop refreshing.
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
	for _, iss := range cfg.Issuers {
		if iss == "" {
			return nil, errors.New("middleware: empty issuer")
		}
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
		return nil, errors.New("middleware: MaxTokenBytes below 256")
	}
	scopeSize := cfg.ScopeCacheSize
	if scopeSize <= 0 {
		scopeSize = 1024
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
				return nil, fmt.Errorf("middleware: trusted proxy %q is not a CIDR or an address", p)
			}
			pfx = netip.PrefixFrom(addr, addr.BitLen())
		}
		a.proxies = append(a.proxies, pfx.Masked())
	}

	if err := a.setupKeys(cfg); err != nil {
		return nil, err
	}
	if cfg.Introspection != nil {
		a.intro, err = newIntrospector(*cfg.Introspection, a.rules, cfg.InsecureAllowHTTPKeyURLs, a.now, a.log)
		if err != nil {
			a.Close()
			return nil, err
		}
	}
	a.mode = cfg.Mode
	if a.mode == ModeDefault {
		switch {
		case a.keys != nil && a.intro != nil:
			a.mode = AutoDetect
		case a.keys != nil:
			a.mode = JWTOnly
		default:
			a.mode = IntrospectionOnly
		}
	}
	needKeys := a.mode == JWTOnly || a.mode == AutoDetect
	needIntro := a.mode == IntrospectionOnly || a.mode == AutoDetect
	switch {
	case a.mode > AutoDetect:
		err = fmt.Errorf("middleware: unknown Mode %d", a.mode)
	case needKeys && a.keys == nil:
		err = errors.New("middleware: JWT verification needs a key source (JWKSURL, KeySet, JWKS or JWTAuth)")
	case needIntro && a.intro == nil:
		err = errors.New("middleware: this Mode needs Introspection")
	case needKeys && len(cfg.Issuers) == 0:
		err = errors.New("middleware: JWT verification needs Issuers")
	}
	if err != nil {
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

func durationSetting(name string, v, def, limit time.Duration) (time.Duration, error) {
	switch {
	case v < 0:
		return 0, fmt.Errorf("middleware: negative %s", name)
	case v == 0:
		return def, nil
	case limit > 0 && v > limit:
		return 0, fmt.Errorf("middleware: %s %v exceeds %v", name, v, limit)
	}
	return v, nil
}

func (a *Authenticator) setupKeys(cfg AuthConfig) error {
	n := 0
	for _, set := range []bool{cfg.JWKSURL != "", cfg.KeySet != nil, cfg.JWKS != nil, cfg.JWTAuth != nil} {
		if set {
			n++
		}
	}
	if n > 1 {
		return errors.New("middleware: set at most one of JWKSURL, KeySet, JWKS and JWTAuth")
	}
	algs := cfg.Algorithms
	if len(algs) == 0 {
		algs = defaultAlgorithms[:] // only read: a.allowed is a copy
	}
	a.allowed = map[string]bool{}
	for _, alg := range algs {
		info, ok := algorithms[alg]
		if !ok {
			return fmt.Errorf("middleware: unknown or forbidden algorithm %q", alg)
		}
		if info.family == famHMAC && cfg.JWTAuth == nil {
			return fmt.Errorf("middleware: %s is only accepted with a JWTAuth key source, never with a key set", alg)
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

	size := cfg.CacheSize
	if size <= 0 {
		size = 10000
	}
	var err error
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
			return errors.New("middleware: JWKSMaxRefresh below JWKSMinRefresh")
		}
		cool, err := durationSetting("JWKSRefetchCooldown", cfg.JWKSRefetchCooldown, 30*time.Second, 0)
		if err != nil {
			return err
		}
		timeout, err := durationSetting("FetchTimeout", cfg.FetchTimeout, 5*time.Second, 0)
		if err != nil {
			return err
		}
		maxBytes := cfg.JWKSMaxBytes
		if maxBytes <= 0 {
			maxBytes = 512 << 10
		}
		a.keys = newRemoteKeys(policy, remoteOptions{
			url:        cfg.JWKSURL,
			client:     fetchClient(cfg.HTTPClient, timeout, maxBytes, minR, maxR),
			minRefresh: minR,
			maxRefresh: maxR,
			cooldown:   cool,
			timeout:    timeout,
		}, a.log, a.now)
	case cfg.KeySet != nil:
		if a.keys, err = newStaticKeys(policy, cfg.KeySet); err != nil {
			return err
		}
	case cfg.JWKS != nil:
		set, err := parseJWKS(cfg.JWKS)
		if err != nil {
			return fmt.Errorf("middleware: JWKS: %w", err)
		}
		if a.keys, err = newStaticKeys(policy, set); err != nil {
			return err
		}
	case cfg.JWTAuth != nil:
		if a.keys, err = newJWTAuthKeys(policy, cfg.JWTAuth); err != nil {
			return err
		}
	}
	return nil
}

// Close stops JWKS fetching. The middleware keeps working with the keys it
// has.
func (a *Authenticator) Close() {
	if a.keys != nil {
		a.keys.close()
	}
}

// Authenticate builds an Authenticator and returns its middleware, for
// routers that take func(http.Handler) http.Handler (chi's r.Use). The
// background JWKS refresh then lives as long as the process; use
// NewAuthenticator and Close to stop it.
func Authenticate(cfg AuthConfig) (func(http.Handler) http.Handler, error) {
	a, err := NewAuthenticator(cfg)
	if err != nil {
		return nil, err
	}
	return a.Handler, nil
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
			writeError(w, a.realm, aerr)
			return
		}
		if a.onDecision != nil {
			a.onDecision(AuthEvent{Request: r, Token: e.tok, Source: src, Cached: cached})
		}
		next.ServeHTTP(w, withAuthContext(r2, e))
	})
}

func (a *Authenticator) refused(r *http.Request, src TokenSource, cached bool, e *AuthError) {
	level := slog.LevelInfo
	if e.Status >= 500 {
		level = slog.LevelWarn
	}
	a.log.Log(r.Context(), level, "fhirguard: request refused",
		"status", e.Status, "code", string(e.Code), "source", src.String(), "cached", cached,
		"method", r.Method, "path", r.URL.Path, "error", e.Err)
	if a.onDecision != nil {
		a.onDecision(AuthEvent{Request: r, Err: e, Source: src, Cached: cached})
	}
}

// authenticate finds and validates the request's token.
func (a *Authenticator) authenticate(r *http.Request) (*http.Request, *cacheEntry, TokenSource, bool, *AuthError) {
	key, r2, aerr := a.extract(r)
	if aerr != nil {
		return r, nil, SourceNone, false, aerr
	}
	if key.raw == "" {
		return r, nil, SourceNone, false, errNoToken()
	}
	if !a.secure(r) {
		return r, nil, SourceNone, false, &AuthError{
			Status: http.StatusUnauthorized, Code: CodeInvalidRequest,
			Description: "bearer tokens are only accepted over https", Err: ErrInsecureTransport,
		}
	}
	e, src, cached, aerr := a.validateKey(r.Context(), key)
	return r2, e, src, cached, aerr
}

// validate routes a token to JWT verification or introspection.
func (a *Authenticator) validate(ctx context.Context, raw string) (*cacheEntry, TokenSource, bool, *AuthError) {
	return a.validateKey(ctx, a.hasher.key(raw))
}

// validateKey is validate for the token of h.
func (a *Authenticator) validateKey(ctx context.Context, h cacheKey) (*cacheEntry, TokenSource, bool, *AuthError) {
	raw := h.raw
	if a.mode == AutoDetect {
		// A cached JWT skips the shape check.
		if e, ok := a.cachedJWT(h); ok {
			return e, SourceJWT, true, nil
		}
	}
	jwtPath := a.mode == JWTOnly || (a.mode == AutoDetect && looksLikeJWT(raw))
	if !jwtPath {
		e, cached, aerr := a.intro.token(ctx, raw, h)
		return e, SourceIntrospection, cached, aerr
	}
	e, cached, aerr := a.verifyJWT(ctx, raw, h)
	return e, SourceJWT, cached, aerr
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
		return nil, invalidToken("the access token is not valid", fmt.Errorf("%w: %q", ErrAlgorithm, logTrunc(t.alg, 16)))
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
			err = fmt.Errorf("%w: %v", ErrUnknownKey, err)
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
		return nil, invalidToken("the access token is malformed", fmt.Errorf("%w: claims: %v", ErrMalformedToken, err))
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
	case errors.Is(err, ErrTokenNotYetValid):
		desc = "the access token is not valid yet"
	case errors.Is(err, ErrAudience):
		desc = "the access token is not meant for this server"
	case errors.Is(err, ErrTokenLifetime):
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
// slot where Authorize records its Decision (as NewContextWithToken does).
type authContext struct {
	context.Context
	e    *cacheEntry
	slot decisionSlot
}

func (c *authContext) Value(key any) any {
	switch key {
	case tokenKey{}:
		return c.e.tok
	case slotKey{}:
		return &c.slot
	case decisionKey{}:
		if c.slot.set {
			return &c.slot.d
		}
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
