package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fhirguard/fhirguard/middleware"
)

// maxJWKSBytes bounds the JWK Set read by the server check (the
// middleware's default JWKSMaxBytes).
const maxJWKSBytes = 512 << 10

// checkOptions are the flags of the server check of token inspect.
type checkOptions struct {
	baseURL             string
	issuer              string
	jwksURL             string
	jwksFile            string
	introspectionURL    string
	introspectionID     string
	introspectionSecret string
	caFile              string
	insecureHTTPKeyURLs bool
	timeout             time.Duration
	request             string
	transport           http.RoundTripper // tests: replaces the network (caFile ignored)
}

// requested reports whether any server-check flag is set.
func (o *checkOptions) requested() bool {
	return o.baseURL != "" || o.issuer != "" || o.jwksURL != "" || o.jwksFile != "" ||
		o.introspectionURL != "" || o.introspectionID != "" || o.introspectionSecret != "" || o.request != "" ||
		o.caFile != "" || o.insecureHTTPKeyURLs
}

// validate checks the flags of the server check; the error is a usage
// error.
func (o *checkOptions) validate() error {
	if o.baseURL == "" {
		return errors.New("the server check needs --base-url, the FHIR base URL the token is for (its expected audience)")
	}
	u, err := url.Parse(o.baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(o.baseURL, "?#") {
		return fmt.Errorf("--base-url %q is not a FHIR base URL (an absolute http or https URL without query or fragment)", o.baseURL)
	}
	if o.jwksURL != "" && o.jwksFile != "" {
		return errors.New("give --jwks-url or --jwks-file, not both")
	}
	hasKeys := o.jwksURL != "" || o.jwksFile != ""
	if !hasKeys && o.introspectionURL == "" {
		return errors.New("the server check needs the authorization server's keys (--jwks-url or --jwks-file) or its introspection endpoint (--introspection-url)")
	}
	if hasKeys && o.issuer == "" {
		return errors.New("verifying JWTs needs --issuer, the iss value the server accepts")
	}
	if o.introspectionURL == "" && (o.introspectionID != "" || o.introspectionSecret != "") {
		return errors.New("--introspection-client-id and --introspection-client-secret need --introspection-url")
	}
	if o.introspectionURL != "" && (o.introspectionID == "" || o.introspectionSecret == "") {
		return errors.New("--introspection-url needs --introspection-client-id and --introspection-client-secret (RFC 7662: the endpoint authenticates its callers)")
	}
	for _, f := range []struct{ flag, value string }{{"--jwks-url", o.jwksURL}, {"--introspection-url", o.introspectionURL}} {
		if f.value == "" {
			continue
		}
		u, err := url.Parse(f.value)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return fmt.Errorf("%s %q is not an absolute https URL", f.flag, f.value)
		}
		if u.Scheme == "http" {
			if !o.insecureHTTPKeyURLs {
				return fmt.Errorf("%s %q: keys and introspection answers are only fetched over https (for an authorization server on this machine, add --insecure-allow-http-key-urls)", f.flag, f.value)
			}
			if !isLoopback(u.Hostname()) {
				return fmt.Errorf("%s %q: --insecure-allow-http-key-urls only allows http on loopback (localhost, 127.0.0.1, ::1)", f.flag, f.value)
			}
		}
	}
	if o.timeout <= 0 {
		return errors.New("--timeout must be positive")
	}
	if o.request != "" {
		if _, _, err := parseRequestFlag(o.request); err != nil {
			return err
		}
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkReport is the outcome of the server check.
type checkReport struct {
	// The configuration checked against.
	BaseURL       string   `json:"baseUrl"`
	Issuer        string   `json:"issuer"`
	Keys          string   `json:"keys"`          // the JWKS URL or file, "" without
	KeyIDs        []string `json:"keyIds"`        // the kids of the key set, when it was read
	Introspection string   `json:"introspection"` // the endpoint, "" without

	// Outcome is accepted, refused, or unavailable (keys or introspection
	// could not be reached: no verdict).
	Outcome string `json:"outcome"`
	// Status, Error and Description are the refusal as a client sees it:
	// HTTP status, RFC 6750 error code and error_description.
	Status      int    `json:"status"`
	Error       string `json:"error"`
	Description string `json:"description"`
	// Cause is the middleware's precise cause (its log text), and
	// Explanation the same in words, with the token's and the server's
	// values side by side.
	Cause       string `json:"cause"`
	Explanation string `json:"explanation"`
	// Introspected says the token went to the introspection endpoint.
	Introspected bool `json:"introspected"`
	// Token is what the server learned from an accepted token.
	Token *acceptedToken `json:"token"`
	// Request is the authorization preview of --request.
	Request *requestPreview `json:"request"`
	// Notes are remarks about the configuration (keys the JWKS holds
	// that the middleware left out, for instance).
	Notes []string `json:"notes"`
}

// acceptedToken is what the middleware's Token says of an accepted token.
type acceptedToken struct {
	Subject   string   `json:"subject"`
	ClientID  string   `json:"clientId"`
	Issuer    string   `json:"issuer"`
	Audience  []string `json:"audience"`
	ExpiresAt string   `json:"expiresAt"`
	Patient   string   `json:"patient"`
	Encounter string   `json:"encounter"`
	FHIRUser  string   `json:"fhirUser"`
	Scopes    string   `json:"scopes"`
	// Unreadable names the launch-context claims the middleware could not
	// read (their grants are refused).
	Unreadable []string `json:"unreadable"`
	// Scope is what the scopes grant, for an introspected token (whose
	// claims only the introspection answer holds); null otherwise.
	Scope *scopeGrant `json:"scope"`
}

// Outcomes of the server check.
const (
	outcomeAccepted    = "accepted"
	outcomeRefused     = "refused"
	outcomeUnavailable = "unavailable"
)

// checkEnv is what the server check runs with.
type checkEnv struct {
	client  *http.Client
	keys    *onceTransport
	jwks    []byte // --jwks-file
	logBuf  *bytes.Buffer
	logger  *slog.Logger
	now     func() time.Time
	options *checkOptions
}

// newCheckEnv prepares the HTTP client and reads the JWKS file. Its
// errors are usage errors.
func newCheckEnv(o *checkOptions, now func() time.Time) (*checkEnv, error) {
	rt := o.transport
	if rt == nil {
		c, err := lintClient(lintOptions{caFile: o.caFile})
		if err != nil {
			return nil, err
		}
		rt = c.Transport
	}
	env := &checkEnv{keys: &onceTransport{base: rt, urls: []string{o.jwksURL, o.introspectionURL}}, logBuf: &bytes.Buffer{}, now: now, options: o}
	env.client = &http.Client{Transport: env.keys}
	env.logger = slog.New(slog.NewJSONHandler(&lockedWriter{w: env.logBuf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if o.jwksFile != "" {
		b, err := os.ReadFile(o.jwksFile)
		if err != nil {
			return nil, fmt.Errorf("--jwks-file: %w", err)
		}
		env.jwks = b
	}
	return env, nil
}

// authConfig is the middleware configuration the flags describe.
func (env *checkEnv) authConfig(onDecision func(middleware.AuthEvent)) middleware.AuthConfig {
	o := env.options
	cfg := middleware.AuthConfig{
		Audience:                 o.baseURL,
		JWKSURL:                  o.jwksURL,
		JWKS:                     env.jwks,
		HTTPClient:               env.client,
		FetchTimeout:             o.timeout,
		InsecureAllowHTTPKeyURLs: o.insecureHTTPKeyURLs,
		Logger:                   env.logger,
		OnDecision:               onDecision,
		Now:                      env.now,
	}
	if o.issuer != "" {
		cfg.Issuers = []string{o.issuer}
	}
	if o.introspectionURL != "" {
		cfg.Introspection = &middleware.IntrospectionConfig{
			Endpoint:     o.introspectionURL,
			ClientID:     o.introspectionID,
			ClientSecret: o.introspectionSecret,
			HTTPClient:   env.client,
			Timeout:      o.timeout,
		}
	}
	return cfg
}

// errConfig wraps a configuration the middleware refuses (a usage error).
type errConfig struct{ err error }

func (e errConfig) Error() string { return e.err.Error() }

// checkToken runs tok through the middleware configured by o, in memory,
// and reports whether it would be accepted and, if not, exactly why. tok
// leaves the process only for the configured introspection endpoint.
func checkToken(ctx context.Context, tok string, d *decoded, o *checkOptions, now func() time.Time) (*checkReport, error) {
	env, err := newCheckEnv(o, now)
	if err != nil {
		return nil, errConfig{err}
	}
	rep := &checkReport{BaseURL: o.baseURL, Issuer: o.issuer, Introspection: o.introspectionURL, KeyIDs: []string{}, Notes: []string{}}
	switch {
	case o.jwksURL != "":
		rep.Keys = o.jwksURL
	case o.jwksFile != "":
		rep.Keys = o.jwksFile
	}

	var event *middleware.AuthEvent
	cfg := env.authConfig(func(e middleware.AuthEvent) { event = &e })
	a, err := middleware.NewAuthenticator(cfg)
	if err != nil {
		return nil, errConfig{fmt.Errorf("the middleware refuses this configuration: %w", err)}
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	var tokSeen *middleware.Token
	h := a.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokSeen, _ = middleware.TokenFromContext(r.Context())
		w.WriteHeader(http.StatusNoContent)
	}))
	req, err := bearerRequest(ctx, http.MethodGet, o.baseURL, tok)
	if err != nil {
		a.Close()
		return nil, errConfig{err}
	}
	w := newRecorder()
	h.ServeHTTP(w, req)
	a.Close()

	rep.KeyIDs = env.keyIDs()
	rep.Notes = append(rep.Notes, env.logNotes()...)
	if strings.HasPrefix(o.baseURL, "http:") {
		rep.Notes = append(rep.Notes, "the base URL is http: a server refuses bearer tokens over plain HTTP unless configured to allow them (InsecureAllowHTTP); this check sends the token as if over https")
	}

	switch {
	case event == nil:
		// Cannot happen: the Authenticator reports every request.
		rep.Outcome, rep.Status = outcomeRefused, w.status
		rep.Explanation = "the middleware reported no decision"
	case event.Err == nil && tokSeen != nil:
		rep.Outcome, rep.Status = outcomeAccepted, http.StatusOK
		rep.Introspected = event.Introspected
		rep.Token = describeToken(tokSeen)
		if event.Introspected && tokSeen.Scopes != nil {
			rep.Token.Scope = explainScope("scope", tokSeen.Scopes.Set().String())
		}
		if tokSeen.Scopes == nil || tokSeen.Scopes.Empty() {
			rep.Notes = append(rep.Notes, "accepted, but its scopes grant no access to FHIR data")
		}
	default:
		ae := event.Err
		rep.Introspected = event.Introspected
		rep.Outcome = outcomeRefused
		if errors.Is(ae, middleware.ErrKeysUnavailable) || errors.Is(ae, middleware.ErrIntrospectionUnavailable) {
			rep.Outcome = outcomeUnavailable
		}
		rep.Status, rep.Error, rep.Description = ae.Status, string(ae.Code), ae.Description
		if ae.Err != nil {
			rep.Cause = ae.Err.Error()
		}
		rep.Explanation = explainRefusal(ae, d, rep, o)
	}

	switch {
	case o.request == "":
	case rep.Outcome == outcomeAccepted:
		rep.Request = previewRequest(ctx, tok, env, o)
	default:
		rep.Notes = append(rep.Notes, "--request was not previewed: the token is not accepted")
	}
	return rep, nil
}

// bearerRequest is a request carrying tok in the Authorization header, as
// received over TLS.
func bearerRequest(ctx context.Context, method, target, tok string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		return nil, err
	}
	req.RequestURI = req.URL.RequestURI()
	req.RemoteAddr = "192.0.2.1:49152"
	req.TLS = &tls.ConnectionState{Version: tls.VersionTLS13, HandshakeComplete: true, ServerName: req.URL.Hostname()}
	req.Header.Set("Authorization", "Bearer "+tok)
	return req, nil
}

func describeToken(t *middleware.Token) *acceptedToken {
	at := &acceptedToken{
		Subject: t.Subject, ClientID: t.ClientID, Issuer: t.Issuer, Audience: slices.Clone(t.Audience),
		Patient: t.Patient, Encounter: t.Encounter, FHIRUser: t.FHIRUser,
		Unreadable: t.UnreadableContext(),
	}
	if at.Audience == nil {
		at.Audience = []string{}
	}
	if at.Unreadable == nil {
		at.Unreadable = []string{}
	}
	if !t.Expiry.IsZero() {
		at.ExpiresAt = t.Expiry.UTC().Format(time.RFC3339)
	}
	if t.Scopes != nil {
		at.Scopes = t.Scopes.Set().String()
	}
	return at
}

// explainRefusal says in words why the middleware refused the token,
// setting the token's values beside the server's.
func explainRefusal(ae *middleware.AuthError, d *decoded, rep *checkReport, o *checkOptions) string {
	claim := func(name string) string {
		if d.claims == nil {
			return "(unreadable)"
		}
		v, ok := d.claims[name]
		if !ok {
			return "(none)"
		}
		if s, isStr := v.(string); isStr {
			return oneLine(s)
		}
		return truncate(oneLine(compactJSON(v)), 200)
	}
	hdr := func(name string) string {
		if d.header == nil {
			return ""
		}
		s, _ := d.header[name].(string)
		return oneLine(s)
	}
	timeOf := func(name string) string {
		for _, t := range d.times {
			if t.Claim == name {
				return fmt.Sprintf("%s (%s)", t.Time, t.Relative)
			}
		}
		return "(none)"
	}

	why := refusalReason(ae, d, rep, o, claim, hdr, timeOf)
	if ae.Code == middleware.CodeInvalidToken && d.header != nil {
		for _, m := range []string{"jwk", "jku", "x5u", "x5c"} {
			if _, ok := d.header[m]; ok {
				why += fmt.Sprintf(" (the server ignores the token's own %s: its keys come from %s only)", m, keySource(rep))
				break
			}
		}
	}
	return why
}

func keySource(rep *checkReport) string {
	if rep.Keys != "" {
		return rep.Keys
	}
	return "its configuration"
}

// refusalReason is explainRefusal without the remark on embedded keys.
func refusalReason(ae *middleware.AuthError, d *decoded, rep *checkReport, o *checkOptions, claim, hdr, timeOf func(string) string) string {
	cause := rep.Cause
	has := func(prefix string) bool { return strings.HasPrefix(cause, prefix) }
	if alg := hdr("alg"); ae.Code == middleware.CodeInvalidToken && strings.EqualFold(alg, "none") {
		return fmt.Sprintf("alg %q: an unsigned token is never accepted", alg)
	}
	switch {
	case errors.Is(ae, middleware.ErrKeysUnavailable):
		return fmt.Sprintf("could not get the authorization server's keys from %s, so no JWT can be verified (a server answers 503): %s", rep.Keys, strings.TrimPrefix(cause, middleware.ErrKeysUnavailable.Error()+": "))
	case errors.Is(ae, middleware.ErrIntrospectionUnavailable):
		return fmt.Sprintf("the introspection endpoint %s gave no usable answer (a server answers 503): %s", rep.Introspection, strings.TrimPrefix(cause, middleware.ErrIntrospectionUnavailable.Error()+": "))
	case errors.Is(ae, middleware.ErrTokenExpired):
		return fmt.Sprintf("the token expired: exp %s; the server allows 30s of clock skew", timeOf("exp"))
	case has("audience not accepted"):
		if d.claims == nil {
			return fmt.Sprintf("audience not accepted: the introspection answer's aud does not name this server, %s (%s)", o.baseURL, cause)
		}
		if claim("aud") == "(none)" {
			return fmt.Sprintf("audience not accepted: the token has no aud; this server is %s", o.baseURL)
		}
		return fmt.Sprintf("audience not accepted: token aud %s, this server is %s (aud must contain the FHIR base URL exactly)", audList(d), o.baseURL)
	case has("issuer not accepted"):
		if d.format == formatOpaque || d.claims == nil {
			return fmt.Sprintf("issuer not accepted: the introspection answer's iss is not %s (%s)", o.issuer, cause)
		}
		return fmt.Sprintf("issuer not accepted: token iss %s, this server accepts %s", claim("iss"), o.issuer)
	case has("no key for the token"):
		kids := "it holds no kid"
		if len(rep.KeyIDs) > 0 {
			kids = "it holds kid " + strings.Join(rep.KeyIDs, ", ")
		}
		if _, ok := d.header["kid"]; !ok {
			return fmt.Sprintf("no key for the token: it has no kid, and the key set holds several keys (%s)", kids)
		}
		return fmt.Sprintf("no key for the token: kid %q is not in the key set from %s (%s), even after fetching it again", hdr("kid"), rep.Keys, kids)
	case has("signature algorithm not allowed"):
		alg := hdr("alg")
		switch {
		case strings.HasPrefix(strings.ToUpper(alg), "HS"):
			return fmt.Sprintf("alg %s (HMAC) is refused: this server verifies with the authorization server's public keys (HMAC would be the RS/HS confusion attack)", alg)
		case strings.Contains(cause, "key is bound to"):
			return fmt.Sprintf("the key %q is only trusted with its own algorithm: %s", hdr("kid"), cause[strings.Index(cause, "key is bound to"):])
		}
		return fmt.Sprintf("alg %q is not an algorithm this server accepts (%s)", alg, strings.Join(acceptedAlgs, ", "))
	case has("signature verification failed"):
		return fmt.Sprintf("the signature does not verify with the key %q from %s: the token was not signed by this issuer's key, or was altered", hdr("kid"), rep.Keys)
	case has("unsupported JOSE header parameter"):
		return fmt.Sprintf("the header has a member this server refuses (%s): no crit, b64, zip, enc or cty", strings.TrimPrefix(cause, "unsupported JOSE header parameter: "))
	case has("token type (typ) not accepted"):
		return fmt.Sprintf("typ %q: not an access token type (at+jwt, or JWT)", hdr("typ"))
	case has("token not yet valid"):
		if strings.Contains(cause, "nbf") {
			return fmt.Sprintf("not valid yet: nbf %s", timeOf("nbf"))
		}
		return fmt.Sprintf("issued in the future: iat %s (the issuer's clock is ahead)", timeOf("iat"))
	case has("token lifetime exceeds"):
		return fmt.Sprintf("the token lives longer than this server accepts (one hour): iat %s, exp %s", timeOf("iat"), timeOf("exp"))
	case has("token is not active"):
		return "the introspection endpoint says the token is not active: unknown to it, expired or revoked"
	case has("malformed bearer token request"):
		if d.format == formatJWSJSON {
			return "a JWS in JSON serialization is not a bearer token: send the compact form header.payload.signature"
		}
		return "the Authorization header does not hold a bearer token (b64token characters only)"
	case has("token exceeds the size limit"):
		return fmt.Sprintf("the token is larger than the %d KiB this server accepts", defaultMaxTokenBytes>>10)
	case has("malformed token"):
		if d.format == formatOpaque || d.format == formatMalformed && d.header == nil {
			if o.introspectionURL == "" {
				return "not a JWT, and this server has no introspection endpoint (--introspection-url) to resolve an opaque token"
			}
		}
		return "the token is malformed: " + strings.TrimPrefix(cause, "malformed token: ")
	case has("invalid token claims"):
		return "invalid claims: " + strings.TrimPrefix(cause, "invalid token claims: ")
	}
	if ae.Description != "" {
		return ae.Description + ": " + cause
	}
	return cause
}

// audList writes the token's aud as a list.
func audList(d *decoded) string {
	aud, ok := stringOrArray(d.claims["aud"])
	if !ok {
		return oneLine(compactJSON(d.claims["aud"]))
	}
	q := make([]string, len(aud))
	for i, a := range aud {
		q[i] = oneLine(a)
	}
	return "[" + strings.Join(q, " ") + "]"
}

// keyIDs returns the kids of the key set read (JWKS file or fetched).
func (env *checkEnv) keyIDs() []string {
	doc := env.jwks
	if doc == nil {
		doc = env.keys.fetched()
	}
	var set struct {
		Keys []struct {
			Kid any `json:"kid"`
		} `json:"keys"`
	}
	out := []string{}
	if json.Unmarshal(doc, &set) != nil {
		return out
	}
	for _, k := range set.Keys {
		if s, ok := k.Kid.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// logNotes returns the middleware's warnings about the key set (keys it
// left out), from its log.
func (env *checkEnv) logNotes() []string {
	var notes []string
	dec := json.NewDecoder(bytes.NewReader(env.logBuf.Bytes()))
	for {
		var rec map[string]any
		if dec.Decode(&rec) != nil {
			return notes
		}
		if rec["msg"] == "fhirguard: JWKS key refused" {
			notes = append(notes, fmt.Sprintf("the middleware left a key of the JWKS out: %v", rec["error"]))
		}
	}
}

// onceTransport sends each distinct request for the JWKS or the
// introspection endpoint over the network once, and answers it again from
// memory: a refetch of the JWKS (for an unknown kid) sees the same
// document, and the request preview's introspection sends the token no
// second time. Other requests (redirects) pass through.
type onceTransport struct {
	base http.RoundTripper
	urls []string // the URLs whose answers are kept

	mu      sync.Mutex
	answers map[string]*onceAnswer // by method, URL and body
	jwks    *onceAnswer            // the first GET of urls[0]
}

type onceAnswer struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func (t *onceTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !slices.Contains(t.urls, r.URL.String()) {
		return t.base.RoundTrip(r)
	}
	var reqBody []byte
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	key := r.Method + " " + r.URL.String() + "\n" + string(reqBody)
	t.mu.Lock()
	defer t.mu.Unlock()
	a, ok := t.answers[key]
	if !ok {
		a = &onceAnswer{}
		res, err := t.base.RoundTrip(r)
		if err != nil {
			a.err = err
		} else {
			a.body, a.err = io.ReadAll(io.LimitReader(res.Body, maxJWKSBytes+1))
			res.Body.Close()
			a.status, a.header = res.StatusCode, res.Header.Clone()
		}
		if t.answers == nil {
			t.answers = map[string]*onceAnswer{}
		}
		t.answers[key] = a
		if t.jwks == nil && r.Method == http.MethodGet && r.URL.String() == t.urls[0] {
			t.jwks = a
		}
	}
	if a.err != nil {
		return nil, a.err
	}
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", a.status, http.StatusText(a.status)),
		StatusCode:    a.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        a.header.Clone(),
		Body:          io.NopCloser(bytes.NewReader(a.body)),
		ContentLength: int64(len(a.body)),
		Request:       r,
	}, nil
}

// fetched returns the JWKS document fetched with status 200, or nil.
func (t *onceTransport) fetched() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.jwks == nil || t.jwks.err != nil || t.jwks.status != http.StatusOK {
		return nil
	}
	return t.jwks.body
}

// lockedWriter serializes writes to w (the middleware logs from its
// fetch goroutines).
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// recorder is a minimal in-memory http.ResponseWriter.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newRecorder() *recorder { return &recorder{header: http.Header{}} }

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.body.Len() > 1<<20 {
		return len(p), nil
	}
	return r.body.Write(p)
}
