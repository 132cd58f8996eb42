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
	"time"

	"golang.org/x/sync/singleflight"
)

// ClientAuthMethod is how the middleware authenticates to the
// introspection endpoint (RFC 7662 §2.1 requires some authentication).
type ClientAuthMethod uint8

// Client authentication methods.
const (
	// ClientSecretBasic sends ClientID and ClientSecret with HTTP Basic
	// authentication (RFC 6749 §2.3.1). It is the default.
	ClientSecretBasic ClientAuthMethod = iota
	// ClientSecretPost sends client_id and client_secret in the form body.
	ClientSecretPost
	// BearerCredential sends "Authorization: Bearer" with the credential
	// that Credential returns (SMART 2.2: an appropriately scoped token).
	BearerCredential
)

// IntrospectionConfig configures RFC 7662 token introspection under the
// SMART profile.
type IntrospectionConfig struct {
	// Endpoint is the introspection URL; https unless
	// AuthConfig.InsecureAllowHTTPKeyURLs.
	Endpoint string

	ClientAuth   ClientAuthMethod
	ClientID     string
	ClientSecret string
	// Credential returns the bearer credential for BearerCredential.
	Credential func(ctx context.Context) (string, error)

	// HTTPClient is copied and given the timeout, redirect and size
	// limits; nil uses a new client.
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
	client   *http.Client
	cache    *tokenCache
	sf       singleflight.Group
	slots    chan struct{} // one value per call in flight
	rules    *claimRules
	now      func() time.Time
	log      *slog.Logger
}

func newIntrospector(c IntrospectionConfig, rules *claimRules, insecureHTTP bool, now func() time.Time, log *slog.Logger) (*introspector, error) {
	if _, err := checkFetchURL("introspection endpoint", c.Endpoint, insecureHTTP); err != nil {
		return nil, err
	}
	switch c.ClientAuth {
	case ClientSecretBasic, ClientSecretPost:
		if c.ClientID == "" || c.ClientSecret == "" {
			return nil, errors.New("middleware: introspection needs ClientID and ClientSecret")
		}
	case BearerCredential:
		if c.Credential == nil {
			return nil, errors.New("middleware: introspection with BearerCredential needs Credential")
		}
	default:
		return nil, fmt.Errorf("middleware: unknown introspection client authentication %d", c.ClientAuth)
	}
	if c.Timeout < 0 || c.MaxTTL < 0 || c.NegativeTTL < 0 || c.MaxResponseBytes < 0 || c.CacheSize < 0 ||
		c.MaxConcurrent < 0 || c.QueueTimeout < 0 {
		return nil, errors.New("middleware: negative introspection setting")
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
		return nil, fmt.Errorf("middleware: introspection MaxTTL %v exceeds %v", c.MaxTTL, maxIntrospectionTTL)
	}
	if c.NegativeTTL == 0 || c.NegativeTTL > maxNegativeTTL {
		if c.NegativeTTL > maxNegativeTTL {
			return nil, fmt.Errorf("middleware: introspection NegativeTTL %v exceeds %v", c.NegativeTTL, maxNegativeTTL)
		}
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
	return &introspector{
		endpoint: c.Endpoint,
		cfg:      c,
		client:   fetchClient(c.HTTPClient, c.Timeout, c.MaxResponseBytes, 0, 0),
		cache:    cache,
		slots:    make(chan struct{}, c.MaxConcurrent),
		rules:    &r,
		now:      now,
		log:      log,
	}, nil
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
		if err := in.acquire(); err != nil {
			return nil, err
		}
		defer func() { <-in.slots }()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.cfg.Timeout)
		defer cancel()
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
	}
}

// introspect calls the endpoint. An infrastructure failure is a 503
// *AuthError (never cached); an inactive or invalid token is a cacheEntry
// holding the refusal.
func (in *introspector) introspect(ctx context.Context, raw string) (*cacheEntry, error) {
	form := url.Values{"token": {raw}, "token_type_hint": {"access_token"}}
	if in.cfg.ClientAuth == ClientSecretPost {
		form.Set("client_id", in.cfg.ClientID)
		form.Set("client_secret", in.cfg.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, in.fail(0, fmt.Errorf("building the request: %w", err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	switch in.cfg.ClientAuth {
	case ClientSecretBasic:
		req.SetBasicAuth(url.QueryEscape(in.cfg.ClientID), url.QueryEscape(in.cfg.ClientSecret))
	case BearerCredential:
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
			return in.refuse(now, invalidToken("the access token is not active", ErrInactive)), nil
		}
	default:
		// Missing or not the JSON value true/false: the server is broken,
		// which is not an answer about the token.
		return nil, in.fail(0, errors.New(`malformed response: "active" is not a boolean`))
	}
	if tt, ok := m["token_type"]; ok {
		s, isStr := tt.(string)
		if !isStr || !accessTokenType(s) {
			return in.refuse(now, invalidToken("the token is not an access token", fmt.Errorf("%w: token_type %q", ErrTokenType, logTrunc(fmt.Sprint(tt), 64)))), nil
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
	in.log.Warn("fhirguard: token introspection failed", "endpoint", in.endpoint, "error", err)
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
