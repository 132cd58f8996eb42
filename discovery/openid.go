package discovery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
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

// ErrOpenIDConfiguration is wrapped by every error of
// ParseOpenIDConfiguration and FetchOpenIDConfiguration.
var ErrOpenIDConfiguration = errors.New("discovery: OpenID configuration")

// Fetch failures, wrapped in a *FetchError.
var (
	// ErrInsecureIssuer: the issuer or a redirect is not https and
	// FetchConfig.InsecureAllowHTTP is false.
	ErrInsecureIssuer = errors.New("not https")
	// ErrIssuerMismatch: the document names another issuer than the one
	// asked for (OpenID Connect Discovery §4.3, RFC 8414 §3.3).
	ErrIssuerMismatch = errors.New("issuer mismatch")
	// ErrBodyTooLarge: the document exceeds FetchConfig.MaxBodyBytes.
	ErrBodyTooLarge = errors.New("document too large")
	// ErrHTTPStatus: the server answered with a status other than 200.
	ErrHTTPStatus = errors.New("unexpected HTTP status")
)

// ParseOpenIDConfiguration reads an OpenID Connect discovery document. It
// must be one JSON object; issuer is required; the members listed in
// OpenIDConfiguration must have the right JSON types (string, or array of
// strings) and URL members must be absolute http(s) URLs. Unknown members
// are ignored.
func ParseOpenIDConfiguration(data []byte) (*OpenIDConfiguration, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object: %v", ErrOpenIDConfiguration, err)
	}
	if raw == nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrOpenIDConfiguration)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the JSON object", ErrOpenIDConfiguration)
	}
	var oc OpenIDConfiguration
	str := func(name string, dst *string, isURL bool) error {
		v, ok := raw[name]
		if !ok || string(v) == "null" {
			return nil
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return fmt.Errorf("%w: %s is not a string", ErrOpenIDConfiguration, name)
		}
		if isURL && *dst != "" {
			u, err := url.Parse(*dst)
			if err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
				return fmt.Errorf("%w: %s %q is not an absolute http(s) URL", ErrOpenIDConfiguration, name, *dst)
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
			return fmt.Errorf("%w: %s is not an array of strings", ErrOpenIDConfiguration, name)
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
		return nil, fmt.Errorf("%w: issuer missing", ErrOpenIDConfiguration)
	}
	return &oc, nil
}

// Defaults of FetchConfig.
const (
	DefaultFetchTimeout = 10 * time.Second
	DefaultMaxBodyBytes = 1 << 20
)

// FetchConfig configures FetchOpenIDConfiguration.
type FetchConfig struct {
	// Client sends the request; nil means http.DefaultClient. Its
	// redirects are followed but held to the same https rule.
	Client *http.Client
	// Timeout bounds the whole fetch, body included; zero means
	// DefaultFetchTimeout.
	Timeout time.Duration
	// MaxBodyBytes caps the document size; zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// InsecureAllowHTTP allows an http issuer (and http redirects). For
	// tests and local development only: the document names the endpoints
	// tokens are sent to.
	InsecureAllowHTTP bool
}

// FetchError describes a failed fetch of an OpenID configuration.
type FetchError struct {
	// URL is the document's URL.
	URL string
	// StatusCode is the HTTP status, 0 when no response arrived.
	StatusCode int
	// Err is the cause: a sentinel of this package, a parse error, or a
	// transport error.
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

// Is makes every FetchError match ErrOpenIDConfiguration.
func (e *FetchError) Is(target error) bool { return target == ErrOpenIDConfiguration }

// OpenIDConfigurationURL returns issuer + "/.well-known/openid-configuration"
// (a trailing slash of the issuer removed), as OpenID Connect Discovery
// §4 builds it.
func OpenIDConfigurationURL(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + OpenIDConfigurationPath
}

// FetchOpenIDConfiguration fetches and parses the OpenID configuration of
// issuer and checks that it names the same issuer. Every failure is a
// *FetchError.
func FetchOpenIDConfiguration(ctx context.Context, issuer string, cfg FetchConfig) (*OpenIDConfiguration, error) {
	docURL := OpenIDConfigurationURL(issuer)
	fail := func(status int, err error) (*OpenIDConfiguration, error) {
		return nil, &FetchError{URL: docURL, StatusCode: status, Err: err}
	}
	u, err := url.Parse(issuer)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return fail(0, fmt.Errorf("%w: issuer %q", ErrRelativeURL, issuer))
	}
	if err := checkScheme(u, cfg.InsecureAllowHTTP); err != nil {
		return fail(0, err)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fail(0, fmt.Errorf("%w: issuer %q has a query or fragment", ErrInvalidURL, issuer))
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultFetchTimeout
	}
	limit := cfg.MaxBodyBytes
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	client := *http.DefaultClient
	if cfg.Client != nil {
		client = *cfg.Client
	}
	next := client.CheckRedirect
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := checkScheme(req.URL, cfg.InsecureAllowHTTP); err != nil {
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
		return fail(0, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fail(0, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return fail(resp.StatusCode, ErrHTTPStatus)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fail(resp.StatusCode, err)
	}
	if int64(len(body)) > limit {
		return fail(resp.StatusCode, fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, limit))
	}
	oc, err := ParseOpenIDConfiguration(body)
	if err != nil {
		return fail(resp.StatusCode, err)
	}
	if oc.Issuer != issuer {
		return fail(resp.StatusCode, fmt.Errorf("%w: asked for %q, document says %q", ErrIssuerMismatch, issuer, oc.Issuer))
	}
	return oc, nil
}

func checkScheme(u *url.URL, allowHTTP bool) error {
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && allowHTTP:
		return nil
	}
	return fmt.Errorf("%w: scheme %q", ErrInsecureIssuer, u.Scheme)
}

// FromOpenIDConfiguration builds a SMART configuration from an
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
// extensions come from local only. The result is not validated; call
// Validate or pass it to NewHandler. Derive builds on it: it also derives
// or checks the capabilities, narrows the lists to what they use and
// reports what in the metadata is imperfect for SMART.
func FromOpenIDConfiguration(oc *OpenIDConfiguration, local *Document) *Document {
	var d *Document
	if local != nil {
		d = local.Clone()
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
	if d.HasCapability(CapabilitySSOOpenIDConnect) {
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
		grants = []string{GrantAuthorizationCode, "implicit"}
	}
	setList(&d.GrantTypesSupported, filter(grants, func(g string) bool {
		return g == GrantAuthorizationCode || g == GrantClientCredentials
	}))
	setList(&d.CodeChallengeMethodsSupported, filter(oc.CodeChallengeMethodsSupported, func(m string) bool {
		return !strings.EqualFold(m, CodeChallengePlain)
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
