package middleware

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// clientAuthMethod is how the middleware authenticates to the
// introspection endpoint (RFC 7662 §2.1 requires some authentication).
type clientAuthMethod uint8

const (
	authClientSecretBasic clientAuthMethod = iota // RFC 6749 §2.3.1 HTTP Basic
	authClientSecretPost                          // client_id and client_secret in the form body
	authBearer                                    // Authorization: Bearer <Credential()>
)

// IntrospectionConfig configures RFC 7662 token introspection under the
// SMART profile.
type IntrospectionConfig struct {
	// Endpoint is the introspection URL; https unless
	// AuthConfig.InsecureAllowHTTPKeyURLs.
	Endpoint string

	// The middleware authenticates to the endpoint (RFC 7662 §2.1) with
	// ClientID and ClientSecret: by HTTP Basic authentication
	// (client_secret_basic, RFC 6749 §2.3.1), or in the form body with
	// ClientSecretPost. With Credential instead (ClientID and ClientSecret
	// empty), it sends "Authorization: Bearer" with the credential
	// Credential returns (SMART 2.2: an appropriately scoped token).
	ClientID         string
	ClientSecret     string
	ClientSecretPost bool
	Credential       func(ctx context.Context) (string, error)

	// HTTPClient is copied and given the timeout, redirect and size
	// limits; nil uses a client of the Authenticator's own, whose idle
	// connections Close closes.
	HTTPClient *http.Client
	// Timeout bounds one introspection call (default 5 s).
	Timeout time.Duration
	// MaxResponseBytes caps the response body (default 64 KiB).
	MaxResponseBytes int64

	// MaxTTL bounds how long an active answer is cached (default 60 s, at
	// most 5 minutes); never beyond the token's exp.
	MaxTTL time.Duration
	// NegativeTTL is how long an inactive answer is cached (default and
	// maximum 10 s).
	NegativeTTL time.Duration
	// CacheSize bounds the number of cached answers (default 10000).
	CacheSize int

	// AllowMissingAudience accepts active answers without aud, for
	// servers that omit it (RFC 7662 makes it optional). By default such
	// answers are refused (401 invalid_token), as JWTs without aud are. A
	// present aud must always contain AuthConfig.Audience.
	AllowMissingAudience bool

	// MaxConcurrent caps the introspection calls in flight (default 8).
	// Concurrent requests with the same token share one call. A request
	// beyond the cap waits for a slot at most QueueTimeout (default
	// Timeout) and its own context, then is a 503.
	MaxConcurrent int
	QueueTimeout  time.Duration
}

const (
	defaultIntrospectionTimeout = 5 * time.Second
	defaultIntrospectionMaxTTL  = 60 * time.Second
	maxIntrospectionTTL         = 5 * time.Minute
	maxNegativeTTL              = 10 * time.Second

	defaultIntrospectionConcurrency = 8
)

type introspector struct {
	endpoint string
	cfg      IntrospectionConfig
	method   clientAuthMethod
	client   *http.Client
	cache    *tokenCache
	sf       singleflight.Group
	slots    chan struct{} // one value per call in flight
	rules    *claimRules
	now      func() time.Time
	log      *slog.Logger

	ctx    context.Context // cancelled by close: calls in flight end
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
	calls  sync.WaitGroup // calls in flight
}

func newIntrospector(c IntrospectionConfig, rules *claimRules, insecureHTTP bool, now func() time.Time, log *slog.Logger) (*introspector, error) {
	if _, err := checkFetchURL("Introspection.Endpoint", c.Endpoint, insecureHTTP); err != nil {
		return nil, err
	}
	method := authClientSecretBasic
	switch {
	case c.Credential != nil:
		if c.ClientID != "" || c.ClientSecret != "" || c.ClientSecretPost {
			return nil, errors.New("middleware: set either Introspection.Credential or Introspection.ClientID and ClientSecret, not both")
		}
		method = authBearer
	case c.ClientID == "" || c.ClientSecret == "":
		return nil, errors.New("middleware: Introspection needs ClientID and ClientSecret, or Credential (RFC 7662 §2.1: the endpoint authenticates its callers)")
	case c.ClientSecretPost:
		method = authClientSecretPost
	}
	for _, f := range []struct {
		name string
		neg  bool
	}{
		{"Timeout", c.Timeout < 0}, {"MaxTTL", c.MaxTTL < 0}, {"NegativeTTL", c.NegativeTTL < 0},
		{"MaxResponseBytes", c.MaxResponseBytes < 0}, {"CacheSize", c.CacheSize < 0},
		{"MaxConcurrent", c.MaxConcurrent < 0}, {"QueueTimeout", c.QueueTimeout < 0},
	} {
		if f.neg {
			return nil, fmt.Errorf("middleware: Introspection.%s is negative", f.name)
		}
	}
	if c.Timeout == 0 {
		c.Timeout = defaultIntrospectionTimeout
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = defaultIntrospectionConcurrency
	}
	if c.QueueTimeout == 0 {
		c.QueueTimeout = c.Timeout
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = 64 << 10
	}
	if c.MaxTTL == 0 {
		c.MaxTTL = defaultIntrospectionMaxTTL
	}
	if c.MaxTTL > maxIntrospectionTTL {
		return nil, fmt.Errorf("middleware: Introspection.MaxTTL %v exceeds %v", c.MaxTTL, maxIntrospectionTTL)
	}
	if c.NegativeTTL > maxNegativeTTL {
		return nil, fmt.Errorf("middleware: Introspection.NegativeTTL %v exceeds %v", c.NegativeTTL, maxNegativeTTL)
	}
	if c.NegativeTTL == 0 {
		c.NegativeTTL = maxNegativeTTL
	}
	if c.CacheSize == 0 {
		c.CacheSize = 10000
	}
	cache, err := newTokenCache(c.CacheSize)
	if err != nil {
		return nil, err
	}
	r := *rules
	r.requireIssuer = false
	r.requireAudience = !c.AllowMissingAudience
	ctx, cancel := context.WithCancel(context.Background())
	return &introspector{
		endpoint: c.Endpoint,
		cfg:      c,
		method:   method,
		client:   fetchClient(c.HTTPClient, c.MaxResponseBytes, 0, 0),
		cache:    cache,
		slots:    make(chan struct{}, c.MaxConcurrent),
		rules:    &r,
		now:      now,
		log:      log,
		ctx:      ctx,
		cancel:   cancel,
	}, nil
}

// close ends the calls in flight (their requests get a 503), waits for
// them, and closes the idle connections of the introspector's own client.
// Later calls are 503s.
func (in *introspector) close() {
	in.mu.Lock()
	in.closed = true
	in.mu.Unlock()
	in.cancel()
	in.calls.Wait()
	in.client.CloseIdleConnections()
}

// begin registers a call; false once closed.
func (in *introspector) begin() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return false
	}
	in.calls.Add(1)
	return true
}

// token returns the facts about an opaque token: from the cache, or from
// one introspection call shared by concurrent requests for the same token.
// The cache is this introspector's own, so its key (cacheKey) is scoped to
// the endpoint.
func (in *introspector) token(ctx context.Context, raw string, h cacheKey) (*cacheEntry, bool, *AuthError) {
	if e, ok := in.cache.get(h, in.now().UnixNano()); ok {
		if e.refusal != nil {
			return nil, true, e.refusal
		}
		return e, true, nil
	}
	return in.call(ctx, raw, h)
}

// call introspects raw, sharing the call with concurrent requests for the
// same token; the caller stops waiting when ctx ends.
func (in *introspector) call(ctx context.Context, raw string, h cacheKey) (*cacheEntry, bool, *AuthError) {
	// The call is shared only by requests with the same token (the key is
	// the token, never its hash).
	ch := in.sf.DoChan(raw, func() (any, error) {
		// Answer from the cache when another call just filled it.
		if e, ok := in.cache.get(h, in.now().UnixNano()); ok {
			return e, nil
		}
		if !in.begin() {
			return nil, unavailable("the authorization server is unavailable", time.Second,
				fmt.Errorf("%w: the Authenticator is closed", ErrIntrospectionUnavailable))
		}
		defer in.calls.Done()
		if err := in.acquire(); err != nil {
			return nil, err
		}
		defer func() { <-in.slots }()
		// The call outlives the request that started it (others share
		// it, and the cache), not the introspector.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.cfg.Timeout)
		defer cancel()
		defer context.AfterFunc(in.ctx, cancel)()
		e, err := in.introspect(cctx, raw)
		if err != nil {
			return nil, err
		}
		in.cache.add(h, e)
		return e, nil
	})
	var res singleflight.Result
	select {
	case res = <-ch:
	case <-ctx.Done():
		// The call goes on for the other requests and the cache.
		return nil, false, unavailable("the authorization server is unavailable", time.Second,
			fmt.Errorf("%w: waiting for the call: %w", ErrIntrospectionUnavailable, ctx.Err()))
	}
	if res.Err != nil {
		return nil, false, asAuthError(res.Err)
	}
	e := res.Val.(*cacheEntry)
	if e.refusal != nil {
		return nil, false, e.refusal
	}
	return e, false, nil
}

// acquire takes a call slot, waiting at most QueueTimeout.
func (in *introspector) acquire() error {
	select {
	case in.slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(in.cfg.QueueTimeout)
	defer t.Stop()
	select {
	case in.slots <- struct{}{}:
		return nil
	case <-t.C:
		return in.fail(time.Second, fmt.Errorf("%d introspection calls in flight, none finished within %v", cap(in.slots), in.cfg.QueueTimeout))
	case <-in.ctx.Done():
		return unavailable("the authorization server is unavailable", time.Second,
			fmt.Errorf("%w: the Authenticator is closed", ErrIntrospectionUnavailable))
	}
}

// introspect calls the endpoint. An infrastructure failure is a 503
// *AuthError (never cached); an inactive or invalid token is a cacheEntry
// holding the refusal.
func (in *introspector) introspect(ctx context.Context, raw string) (*cacheEntry, error) {
	form := url.Values{"token": {raw}, "token_type_hint": {"access_token"}}
	if in.method == authClientSecretPost {
		form.Set("client_id", in.cfg.ClientID)
		form.Set("client_secret", in.cfg.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, in.fail(0, fmt.Errorf("building the request: %w", err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	switch in.method {
	case authClientSecretBasic:
		req.SetBasicAuth(url.QueryEscape(in.cfg.ClientID), url.QueryEscape(in.cfg.ClientSecret))
	case authBearer:
		cred, err := in.cfg.Credential(ctx)
		if err != nil {
			return nil, in.fail(0, fmt.Errorf("introspection credential: %w", err))
		}
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	res, err := in.client.Do(req)
	if err != nil {
		return nil, in.fail(0, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, in.fail(0, fmt.Errorf("reading the response: %w", err))
	}
	if res.StatusCode != http.StatusOK {
		return nil, in.fail(retryAfter(res.Header.Get("Retry-After")), fmt.Errorf("status %s", res.Status))
	}
	m, err := decodeObject(body)
	if err != nil {
		return nil, in.fail(0, fmt.Errorf("malformed response: %w", err))
	}
	now := in.now()
	switch active := m["active"].(type) {
	case bool:
		if !active {
			return in.refuse(now, invalidToken("the access token is not active", errInactive)), nil
		}
	default:
		// Missing or not the JSON value true/false: the server is broken,
		// which is not an answer about the token.
		return nil, in.fail(0, errors.New(`malformed response: "active" is not a boolean`))
	}
	if tt, ok := m["token_type"]; ok {
		s, isStr := tt.(string)
		if !isStr || !accessTokenType(s) {
			return in.refuse(now, invalidToken("the token is not an access token", fmt.Errorf("%w: token_type %q", errTokenType, logTrunc(fmt.Sprint(tt), 64)))), nil
		}
	}
	tok, err := in.rules.buildToken(m, now)
	if err != nil {
		return in.refuse(now, claimsError(err)), nil
	}
	exp := tok.Expiry.UnixNano()
	if limit := now.Add(in.cfg.MaxTTL).UnixNano(); limit < exp {
		exp = limit
	}
	return &cacheEntry{tok: tok, expires: exp}, nil
}

// refuse is a cacheable negative answer.
func (in *introspector) refuse(now time.Time, e *AuthError) *cacheEntry {
	return &cacheEntry{refusal: e, expires: now.Add(in.cfg.NegativeTTL).UnixNano()}
}

func (in *introspector) fail(retry time.Duration, err error) *AuthError {
	if retry == 0 {
		retry = 5 * time.Second
	}
	if in.ctx.Err() == nil { // not the end of a call Close cut
		in.log.Warn("fhirguard: token introspection failed", "endpoint", in.endpoint, "error", err)
	}
	return unavailable("the authorization server is unavailable", retry, fmt.Errorf("%w: %v", ErrIntrospectionUnavailable, err))
}

// accessTokenType reports whether an introspection token_type names an
// access token.
func accessTokenType(s string) bool {
	switch strings.ToLower(s) {
	case "bearer", "access_token", "urn:ietf:params:oauth:token-type:access_token":
		return true
	}
	return false
}

// retryAfter reads a Retry-After header in seconds, bounded to [1 s, 60 s].
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 1 {
		return 0
	}
	return time.Duration(min(n, 60)) * time.Second
}
