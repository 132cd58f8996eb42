package discovery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/fhirguard/fhirguard/internal/wellknown"
)

// OpenIDConfiguration holds the members of an authorization server's
// OpenID Connect discovery document (or RFC 8414 metadata) that a SMART
// configuration can reuse. Other members are ignored.
type OpenIDConfiguration struct {
	// Issuer is the authorization server's issuer identifier. Required.
	Issuer string `json:"issuer"`
	// AuthorizationEndpoint is the OAuth 2.0 authorization endpoint.
	AuthorizationEndpoint string `json:"authorization_endpoint,omitempty"`
	// TokenEndpoint is the OAuth 2.0 token endpoint.
	TokenEndpoint string `json:"token_endpoint,omitempty"`
	// JWKSURI is the URL of the server's JSON Web Key Set.
	JWKSURI string `json:"jwks_uri,omitempty"`
	// RegistrationEndpoint is the dynamic client registration endpoint.
	RegistrationEndpoint string `json:"registration_endpoint,omitempty"`
	// IntrospectionEndpoint is the RFC 7662 introspection endpoint.
	IntrospectionEndpoint string `json:"introspection_endpoint,omitempty"`
	// RevocationEndpoint is the RFC 7009 revocation endpoint.
	RevocationEndpoint string `json:"revocation_endpoint,omitempty"`
	// UserinfoEndpoint is the OpenID Connect UserInfo endpoint.
	UserinfoEndpoint string `json:"userinfo_endpoint,omitempty"`
	// ScopesSupported lists the scopes the server supports.
	ScopesSupported []string `json:"scopes_supported,omitempty"`
	// ResponseTypesSupported lists the response_type values.
	ResponseTypesSupported []string `json:"response_types_supported,omitempty"`
	// GrantTypesSupported lists the grant types; absent means
	// authorization_code and implicit.
	GrantTypesSupported []string `json:"grant_types_supported,omitempty"`
	// TokenEndpointAuthMethodsSupported lists the client authentication
	// methods of the token endpoint.
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	// TokenEndpointAuthSigningAlgValuesSupported lists the JWS algorithms
	// of client assertions.
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	// CodeChallengeMethodsSupported lists the PKCE methods.
	CodeChallengeMethodsSupported []string `json:"code_challenge_methods_supported,omitempty"`
}

func (oc *OpenIDConfiguration) clone() *OpenIDConfiguration {
	c := *oc
	c.ScopesSupported = slices.Clone(oc.ScopesSupported)
	c.ResponseTypesSupported = slices.Clone(oc.ResponseTypesSupported)
	c.GrantTypesSupported = slices.Clone(oc.GrantTypesSupported)
	c.TokenEndpointAuthMethodsSupported = slices.Clone(oc.TokenEndpointAuthMethodsSupported)
	c.TokenEndpointAuthSigningAlgValuesSupported = slices.Clone(oc.TokenEndpointAuthSigningAlgValuesSupported)
	c.CodeChallengeMethodsSupported = slices.Clone(oc.CodeChallengeMethodsSupported)
	return &c
}

// errOpenIDConfiguration is wrapped by every error of
// parseOpenIDConfiguration.
var errOpenIDConfiguration = errors.New("discovery: OpenID configuration")

// Fetch failures, wrapped in a *FetchError.
var (
	// errInsecureIssuer: the issuer (or base URL) or a redirect is not
	// https and FetchConfig.InsecureAllowHTTPURLs is false.
	errInsecureIssuer = errors.New("not https")
	// errIssuerMismatch: the document names another issuer than the one
	// asked for (OpenID Connect Discovery §4.3, RFC 8414 §3.3).
	errIssuerMismatch = errors.New("issuer mismatch")
	// errBodyTooLarge: the document exceeds FetchConfig.MaxBodyBytes.
	errBodyTooLarge = errors.New("document too large")
	// errHTTPStatus: the server answered with a status other than 200.
	errHTTPStatus = errors.New("unexpected HTTP status")
)

// parseOpenIDConfiguration reads an OpenID Connect discovery document. It
// must be one JSON object; issuer is required; the members listed in
// OpenIDConfiguration must have the right JSON types (string, or array of
// strings) and URL members must be absolute http(s) URLs. Unknown members
// are ignored.
func parseOpenIDConfiguration(data []byte) (*OpenIDConfiguration, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object: %v", errOpenIDConfiguration, err)
	}
	if raw == nil {
		return nil, fmt.Errorf("%w: not a JSON object", errOpenIDConfiguration)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the JSON object", errOpenIDConfiguration)
	}
	var oc OpenIDConfiguration
	str := func(name string, dst *string, isURL bool) error {
		v, ok := raw[name]
		if !ok || string(v) == "null" {
			return nil
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return fmt.Errorf("%w: %s is not a string", errOpenIDConfiguration, name)
		}
		if isURL && *dst != "" {
			u, err := url.Parse(*dst)
			if err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
				return fmt.Errorf("%w: %s %q is not an absolute http(s) URL", errOpenIDConfiguration, name, *dst)
			}
		}
		return nil
	}
	list := func(name string, dst *[]string) error {
		v, ok := raw[name]
		if !ok || string(v) == "null" {
			return nil
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return fmt.Errorf("%w: %s is not an array of strings", errOpenIDConfiguration, name)
		}
		if len(*dst) == 0 {
			*dst = nil // an empty list lists nothing
		}
		return nil
	}
	for _, f := range []struct {
		name  string
		dst   *string
		isURL bool
	}{
		{"issuer", &oc.Issuer, true},
		{"authorization_endpoint", &oc.AuthorizationEndpoint, true},
		{"token_endpoint", &oc.TokenEndpoint, true},
		{"jwks_uri", &oc.JWKSURI, true},
		{"registration_endpoint", &oc.RegistrationEndpoint, true},
		{"introspection_endpoint", &oc.IntrospectionEndpoint, true},
		{"revocation_endpoint", &oc.RevocationEndpoint, true},
		{"userinfo_endpoint", &oc.UserinfoEndpoint, true},
	} {
		if err := str(f.name, f.dst, f.isURL); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct {
		name string
		dst  *[]string
	}{
		{"scopes_supported", &oc.ScopesSupported},
		{"response_types_supported", &oc.ResponseTypesSupported},
		{"grant_types_supported", &oc.GrantTypesSupported},
		{"token_endpoint_auth_methods_supported", &oc.TokenEndpointAuthMethodsSupported},
		{"token_endpoint_auth_signing_alg_values_supported", &oc.TokenEndpointAuthSigningAlgValuesSupported},
		{"code_challenge_methods_supported", &oc.CodeChallengeMethodsSupported},
	} {
		if err := list(f.name, f.dst); err != nil {
			return nil, err
		}
	}
	if oc.Issuer == "" {
		return nil, fmt.Errorf("%w: issuer missing", errOpenIDConfiguration)
	}
	return &oc, nil
}

// Defaults of FetchConfig.
const (
	defaultFetchTimeout = 10 * time.Second
	defaultMaxBodyBytes = 1 << 20
)

// FetchConfig configures FetchOpenIDConfiguration and FetchDocument.
type FetchConfig struct {
	// Client sends the request; nil means http.DefaultClient. Its
	// redirects are followed but held to the same https rule.
	Client *http.Client
	// Timeout bounds the whole fetch, body included; zero means 10
	// seconds.
	Timeout time.Duration
	// MaxBodyBytes caps the document size; zero means 1 MiB.
	MaxBodyBytes int64
	// InsecureAllowHTTPURLs allows an http issuer or FHIR base URL (and http
	// redirects). For tests and local development only: the document
	// names the endpoints tokens are sent to.
	InsecureAllowHTTPURLs bool
}

// FetchError describes a failed fetch of a discovery document.
type FetchError struct {
	// URL is the document's URL.
	URL string
	// StatusCode is the HTTP status, 0 when no response arrived.
	StatusCode int
	// Err is the cause: a parse error, a transport error (errors.Is finds
	// context.DeadlineExceeded, for example), or what else is wrong (not
	// https, not status 200, too large, another issuer).
	Err error
}

// Error says which URL failed and why.
func (e *FetchError) Error() string {
	if e.StatusCode != 0 {
		return fmt.Sprintf("discovery: fetching %s: HTTP %d: %v", e.URL, e.StatusCode, e.Err)
	}
	return fmt.Sprintf("discovery: fetching %s: %v", e.URL, e.Err)
}

// Unwrap returns the cause.
func (e *FetchError) Unwrap() error { return e.Err }

// openIDConfigurationURL returns issuer + "/.well-known/openid-configuration"
// (a trailing slash of the issuer removed), as OpenID Connect Discovery
// §4 builds it.
func openIDConfigurationURL(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + wellknown.OpenIDConfigurationPath
}

// FetchOpenIDConfiguration fetches and parses the OpenID configuration of
// issuer (issuer + "/.well-known/openid-configuration"), for Derive. The
// document must be one JSON object naming the same issuer, its members
// of the right JSON types and its URL members absolute http(s) URLs;
// unknown members are ignored. Every failure is a *FetchError.
func FetchOpenIDConfiguration(ctx context.Context, issuer string, cfg FetchConfig) (*OpenIDConfiguration, error) {
	docURL := openIDConfigurationURL(issuer)
	fail := func(status int, err error) (*OpenIDConfiguration, error) {
		return nil, &FetchError{URL: docURL, StatusCode: status, Err: err}
	}
	if err := checkStartURL(issuer, "issuer", cfg); err != nil {
		return fail(0, err)
	}
	resp, err := fetch(ctx, docURL, "", cfg)
	if err != nil {
		return fail(resp.status, err)
	}
	oc, err := parseOpenIDConfiguration(resp.body)
	if err != nil {
		return fail(resp.status, err)
	}
	if oc.Issuer != issuer {
		return fail(resp.status, fmt.Errorf("%w: asked for %q, document says %q", errIssuerMismatch, issuer, oc.Issuer))
	}
	return oc, nil
}

// lintOrigin is the Origin FetchDocument sends, to check that the
// document allows cross-origin reads.
const lintOrigin = "https://fhirguard-discovery-check.example"

// FetchDocument fetches the SMART configuration of the FHIR endpoint
// baseURL (baseURL + "/.well-known/smart-configuration") and checks it as
// Inferno's SMART App Launch test kit does. It returns the document and
// every problem found: first those of the response (an error when its
// Content-Type is not application/json, or when it does not allow
// cross-origin reads; their Field names the header), then those of
// Document.Validate. A document that cannot be read (transport error,
// status other than 200, not a JSON object, a member of the wrong JSON
// type) is a *FetchError.
func FetchDocument(ctx context.Context, baseURL string, cfg FetchConfig) (*Document, Problems, error) {
	docURL := strings.TrimSuffix(baseURL, "/") + wellknown.SMARTConfigurationPath
	fail := func(status int, err error) (*Document, Problems, error) {
		return nil, nil, &FetchError{URL: docURL, StatusCode: status, Err: err}
	}
	if err := checkStartURL(baseURL, "FHIR base URL", cfg); err != nil {
		return fail(0, err)
	}
	resp, err := fetch(ctx, docURL, lintOrigin, cfg)
	if err != nil {
		return fail(resp.status, err)
	}
	if b := bytes.TrimLeft(resp.body, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return fail(resp.status, errors.New("not a JSON object"))
	}
	var doc Document
	if err := json.Unmarshal(resp.body, &doc); err != nil {
		return fail(resp.status, err)
	}
	v := &validator{}
	if mt, _, err := mime.ParseMediaType(resp.header.Get("Content-Type")); err != nil || mt != "application/json" {
		v.add(SeverityError, "Content-Type", errInvalidValue, "%q: the document must be served as application/json", resp.header.Get("Content-Type"))
	}
	if acao := resp.header.Get("Access-Control-Allow-Origin"); acao != "*" && acao != lintOrigin {
		v.add(SeverityError, "Access-Control-Allow-Origin", errMissing, "%q: the document must allow any origin (CORS), as SMART apps in browsers read it", acao)
	}
	return &doc, append(v.ps, doc.Validate()...), nil
}

// checkStartURL checks the URL a fetch starts from: absolute, https
// (unless allowed), without query or fragment.
func checkStartURL(raw, what string, cfg FetchConfig) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("%w: %s %q", errRelativeURL, what, raw)
	}
	if err := checkScheme(u, cfg.InsecureAllowHTTPURLs); err != nil {
		return err
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%w: %s %q has a query or fragment", errInvalidURL, what, raw)
	}
	return nil
}

// fetched is the part of a response fetch keeps.
type fetched struct {
	status int
	header http.Header
	body   []byte
}

// fetch GETs docURL as JSON, with an Origin header when origin is set,
// bounded by cfg. On error, status is the response's when one arrived.
func fetch(ctx context.Context, docURL, origin string, cfg FetchConfig) (fetched, error) {
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = defaultFetchTimeout
	}
	limit := cfg.MaxBodyBytes
	if limit <= 0 {
		limit = defaultMaxBodyBytes
	}
	client := *http.DefaultClient
	if cfg.Client != nil {
		client = *cfg.Client
	}
	next := client.CheckRedirect
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := checkScheme(req.URL, cfg.InsecureAllowHTTPURLs); err != nil {
			return fmt.Errorf("redirect to %s: %w", req.URL.Redacted(), err)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, docURL, nil)
	if err != nil {
		return fetched{}, err
	}
	req.Header.Set("Accept", "application/json")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fetched{}, err
	}
	defer resp.Body.Close()
	out := fetched{status: resp.StatusCode, header: resp.Header}
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return out, errHTTPStatus
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return out, err
	}
	if int64(len(body)) > limit {
		return out, fmt.Errorf("%w: more than %d bytes", errBodyTooLarge, limit)
	}
	out.body = body
	return out, nil
}

func checkScheme(u *url.URL, allowHTTP bool) error {
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && allowHTTP:
		return nil
	}
	return fmt.Errorf("%w: scheme %q", errInsecureIssuer, u.Scheme)
}

// fromOpenIDConfiguration builds a SMART configuration from an
// authorization server's OpenID configuration and local settings. Every
// member set in local wins; empty members are taken from oc:
//
//   - endpoints (authorization, token, registration, introspection,
//     revocation) and jwks_uri;
//   - issuer, only when the capabilities include sso-openid-connect
//     (SMART says to omit it otherwise);
//   - scopes_supported, response_types_supported and the token endpoint
//     authentication lists;
//   - grant_types_supported, keeping only authorization_code and
//     client_credentials (an absent list means authorization_code and
//     implicit, the default of OpenID Connect Discovery);
//   - code_challenge_methods_supported, without plain (SMART forbids
//     advertising it).
//
// Capabilities, management_endpoint, associated endpoints, brands and
// extensions come from local only. The result is not validated. Derive
// builds on it: it also derives
// or checks the capabilities, narrows the lists to what they use and
// reports what in the metadata is imperfect for SMART.
func fromOpenIDConfiguration(oc *OpenIDConfiguration, local *Document) *Document {
	var d *Document
	if local != nil {
		d = local.clone()
	} else {
		d = &Document{}
	}
	if oc == nil {
		return d
	}
	setStr := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	setList := func(dst *[]string, v []string) {
		if len(*dst) == 0 && len(v) > 0 {
			*dst = slices.Clone(v)
		}
	}
	if d.advertises(capabilitySSOOpenIDConnect) {
		setStr(&d.Issuer, oc.Issuer)
	}
	setStr(&d.JWKSURI, oc.JWKSURI)
	setStr(&d.AuthorizationEndpoint, oc.AuthorizationEndpoint)
	setStr(&d.TokenEndpoint, oc.TokenEndpoint)
	setStr(&d.RegistrationEndpoint, oc.RegistrationEndpoint)
	setStr(&d.IntrospectionEndpoint, oc.IntrospectionEndpoint)
	setStr(&d.RevocationEndpoint, oc.RevocationEndpoint)
	setList(&d.ScopesSupported, oc.ScopesSupported)
	setList(&d.ResponseTypesSupported, oc.ResponseTypesSupported)
	setList(&d.TokenEndpointAuthMethodsSupported, oc.TokenEndpointAuthMethodsSupported)
	setList(&d.TokenEndpointAuthSigningAlgValuesSupported, oc.TokenEndpointAuthSigningAlgValuesSupported)
	grants := oc.GrantTypesSupported
	if len(grants) == 0 {
		// The default of OpenID Connect Discovery §3 and RFC 8414 §2.
		grants = []string{grantAuthorizationCode, "implicit"}
	}
	setList(&d.GrantTypesSupported, filter(grants, func(g string) bool {
		return g == grantAuthorizationCode || g == grantClientCredentials
	}))
	setList(&d.CodeChallengeMethodsSupported, filter(oc.CodeChallengeMethodsSupported, func(m string) bool {
		return !strings.EqualFold(m, codeChallengePlain)
	}))
	return d
}

func filter(vals []string, keep func(string) bool) []string {
	var out []string
	for _, v := range vals {
		if keep(v) {
			out = append(out, v)
		}
	}
	return out
}
