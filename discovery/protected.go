package discovery

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// ProtectedResourceMetadata is the RFC 9728 (OAuth 2.0 Protected Resource
// Metadata) document of a FHIR endpoint: which authorization servers issue
// its tokens, its scopes, and how bearer tokens are sent. Members RFC 9728
// does not define live in Extensions.
type ProtectedResourceMetadata struct {
	// Resource is the resource identifier: the FHIR base URL, https,
	// without fragment. Required.
	Resource string `json:"resource"`
	// AuthorizationServers lists the issuer identifiers of the
	// authorization servers that issue tokens for Resource.
	AuthorizationServers []string `json:"authorization_servers,omitempty"`
	// JWKSURI is the resource's own JWK Set (for signed responses); not
	// the authorization server's.
	JWKSURI string `json:"jwks_uri,omitempty"`
	// ScopesSupported lists the scopes used to request access (recommended).
	ScopesSupported []string `json:"scopes_supported,omitempty"`
	// BearerMethodsSupported lists how bearer tokens may be sent: "header",
	// "body", "query" (RFC 6750).
	BearerMethodsSupported []string `json:"bearer_methods_supported,omitempty"`
	// ResourceSigningAlgValuesSupported lists the JWS algorithms of signed
	// responses.
	ResourceSigningAlgValuesSupported []string `json:"resource_signing_alg_values_supported,omitempty"`
	// ResourceName is a human-readable name.
	ResourceName string `json:"resource_name,omitempty"`
	// ResourceDocumentation is a URL of developer documentation.
	ResourceDocumentation string `json:"resource_documentation,omitempty"`
	// ResourcePolicyURI is a URL of the data use policy.
	ResourcePolicyURI string `json:"resource_policy_uri,omitempty"`
	// ResourceTOSURI is a URL of the terms of service.
	ResourceTOSURI string `json:"resource_tos_uri,omitempty"`
	// TLSClientCertificateBoundAccessTokens says the resource supports
	// RFC 8705 certificate-bound tokens.
	TLSClientCertificateBoundAccessTokens bool `json:"tls_client_certificate_bound_access_tokens,omitempty"`
	// AuthorizationDetailsTypesSupported lists RFC 9396 authorization
	// details types.
	AuthorizationDetailsTypesSupported []string `json:"authorization_details_types_supported,omitempty"`
	// DPoPSigningAlgValuesSupported lists RFC 9449 DPoP proof algorithms.
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported,omitempty"`
	// DPoPBoundAccessTokensRequired says DPoP-bound tokens are required.
	DPoPBoundAccessTokensRequired bool `json:"dpop_bound_access_tokens_required,omitempty"`

	// Extensions holds other members by name, emitted after the standard
	// ones, sorted by name.
	Extensions map[string]json.RawMessage `json:"-"`
}

type protectedFields ProtectedResourceMetadata

var protectedMembers = jsonMembers(protectedFields{
	Resource: "x", AuthorizationServers: []string{"x"}, JWKSURI: "x", ScopesSupported: []string{"x"},
	BearerMethodsSupported: []string{"x"}, ResourceSigningAlgValuesSupported: []string{"x"},
	ResourceName: "x", ResourceDocumentation: "x", ResourcePolicyURI: "x", ResourceTOSURI: "x",
	TLSClientCertificateBoundAccessTokens: true, AuthorizationDetailsTypesSupported: []string{"x"},
	DPoPSigningAlgValuesSupported: []string{"x"}, DPoPBoundAccessTokensRequired: true,
})

// MarshalJSON encodes the standard members, then the extensions sorted by
// name (an extension named like a standard member is skipped).
func (m ProtectedResourceMetadata) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(protectedFields(m))
	if err != nil {
		return nil, err
	}
	return appendExtensions(b, m.Extensions, protectedMembers)
}

// UnmarshalJSON decodes the metadata; other members go to Extensions.
func (m *ProtectedResourceMetadata) UnmarshalJSON(data []byte) error {
	var f protectedFields
	if err := json.Unmarshal(data, &f); err != nil {
		return err
	}
	ext, err := extraMembers(data, protectedMembers)
	if err != nil {
		return err
	}
	f.Extensions = ext
	*m = ProtectedResourceMetadata(f)
	return nil
}

// clone returns a deep copy of m.
func (m *ProtectedResourceMetadata) clone() *ProtectedResourceMetadata {
	c := *m
	c.AuthorizationServers = slices.Clone(m.AuthorizationServers)
	c.ScopesSupported = slices.Clone(m.ScopesSupported)
	c.BearerMethodsSupported = slices.Clone(m.BearerMethodsSupported)
	c.ResourceSigningAlgValuesSupported = slices.Clone(m.ResourceSigningAlgValuesSupported)
	c.AuthorizationDetailsTypesSupported = slices.Clone(m.AuthorizationDetailsTypesSupported)
	c.DPoPSigningAlgValuesSupported = slices.Clone(m.DPoPSigningAlgValuesSupported)
	if m.Extensions != nil {
		c.Extensions = make(map[string]json.RawMessage, len(m.Extensions))
		for k, v := range m.Extensions {
			c.Extensions[k] = slices.Clone(v)
		}
	}
	return &c
}

// ProtectedResource returns RFC 9728 metadata for the FHIR endpoint
// resource (its base URL) derived from d: the given authorization server
// issuers (d.Issuer when none are given and it is set), d's scopes, and
// bearer tokens in the Authorization header only.
func (d *Document) ProtectedResource(resource string, authorizationServers ...string) *ProtectedResourceMetadata {
	as := slices.Clone(authorizationServers)
	if len(as) == 0 && d.Issuer != "" {
		as = []string{d.Issuer}
	}
	return &ProtectedResourceMetadata{
		Resource:               resource,
		AuthorizationServers:   as,
		ScopesSupported:        slices.Clone(d.ScopesSupported),
		BearerMethodsSupported: []string{"header"},
	}
}

// bearerMethods are the values of bearer_methods_supported (RFC 9728 §2).
var bearerMethods = []string{"header", "body", "query"}

// Validate checks m against RFC 9728 §2 and returns every problem.
// Errors: resource missing, relative, not http(s), with a fragment;
// malformed URLs; bearer methods other than header, body and query; "none"
// as a signing algorithm. Warnings: http URLs, resource with a query, no
// authorization servers, no scopes, bearer tokens in the query.
func (m *ProtectedResourceMetadata) Validate() Problems {
	v := &validator{}
	v.required("resource", m.Resource != "", "")
	v.url("resource", m.Resource)
	if u, err := url.Parse(m.Resource); m.Resource != "" && err == nil && u.RawQuery != "" {
		v.add(SeverityWarning, "resource", errInvalidURL, "%q has a query; RFC 9728 advises against it", m.Resource)
	}
	if len(m.AuthorizationServers) == 0 {
		v.add(SeverityWarning, "authorization_servers", errMissing, "no authorization server listed")
	}
	v.list("authorization_servers", m.AuthorizationServers)
	for i, as := range m.AuthorizationServers {
		v.url(fmt.Sprintf("authorization_servers[%d]", i), as)
	}
	v.url("jwks_uri", m.JWKSURI)
	v.recommended("scopes_supported", len(m.ScopesSupported) > 0)
	v.list("scopes_supported", m.ScopesSupported)
	v.list("bearer_methods_supported", m.BearerMethodsSupported)
	for i, b := range m.BearerMethodsSupported {
		f := fmt.Sprintf("bearer_methods_supported[%d]", i)
		switch b {
		case "header", "body":
		case "query":
			v.add(SeverityWarning, f, errUnknownValue, "bearer tokens in the query leak into logs (RFC 6750 §2.3)")
		default:
			v.add(SeverityError, f, errUnknownValue, "%q: RFC 9728 defines header, body and query%s", b, didYouMean(b, bearerMethods))
		}
	}
	for i, a := range m.ResourceSigningAlgValuesSupported {
		if strings.EqualFold(a, "none") {
			v.add(SeverityError, fmt.Sprintf("resource_signing_alg_values_supported[%d]", i), errForbiddenValue, "%q must not be used", a)
		}
	}
	v.url("resource_documentation", m.ResourceDocumentation)
	v.url("resource_policy_uri", m.ResourcePolicyURI)
	v.url("resource_tos_uri", m.ResourceTOSURI)
	for _, k := range slices.Sorted(maps.Keys(m.Extensions)) {
		if protectedMembers[k] {
			v.add(SeverityError, k, errReservedExtension, "extension %q collides with a standard member", k)
		} else if !json.Valid(m.Extensions[k]) {
			v.add(SeverityError, k, errInvalidValue, "extension %q is not valid JSON", k)
		}
	}
	return v.ps
}

// ProtectedResourceHandler serves RFC 9728 metadata with the same HTTP
// behaviour as Handler (cached body, ETag, Cache-Control, CORS, 405). Give
// it to middleware.Config.ProtectedResource: the Guard serves it at the
// RFC 9728 location of the FHIR base and under the base.
type ProtectedResourceHandler struct {
	h docHandler
}

// NewProtectedResourceHandler returns a handler serving m (build m with
// Document.ProtectedResource, or by hand). It fails with a
// *ValidationError when m has errors.
func NewProtectedResourceHandler(m *ProtectedResourceMetadata, cfg HandlerConfig) (*ProtectedResourceHandler, error) {
	if m == nil {
		return nil, errors.New("discovery: NewProtectedResourceHandler: nil metadata")
	}
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	rep, err := prepareProtected(m)
	if err != nil {
		return nil, err
	}
	h := &ProtectedResourceHandler{}
	h.h.init(cfg, rep)
	return h, nil
}

func prepareProtected(m *ProtectedResourceMetadata) (*representation, error) {
	if err := m.Validate().Err(); err != nil {
		return nil, err
	}
	c := m.clone()
	body, err := encodeBody(c)
	if err != nil {
		return nil, err
	}
	return newRepresentation(c, body), nil
}

// ServeHTTP serves the metadata.
func (h *ProtectedResourceHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.h.serve(w, r)
}

// Update validates m and, when it has no errors, serves it from now on.
func (h *ProtectedResourceHandler) Update(m *ProtectedResourceMetadata) error {
	if m == nil {
		return errors.New("discovery: Update: nil metadata")
	}
	rep, err := prepareProtected(m)
	if err != nil {
		return err
	}
	h.h.cur.Store(rep)
	return nil
}

// Metadata returns a copy of the metadata being served.
func (h *ProtectedResourceHandler) Metadata() *ProtectedResourceMetadata {
	return h.h.cur.Load().src.(*ProtectedResourceMetadata).clone()
}

// body returns the exact bytes served.
func (h *ProtectedResourceHandler) body() []byte {
	return append([]byte(nil), h.h.cur.Load().body...)
}
