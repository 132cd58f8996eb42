package discovery

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
)

// Capabilities defined by SMART App Launch 2.2 (conformance page,
// "Capabilities"). Users write them as strings; Document.Validate reports
// unknown and misspelled ones.
const (
	capabilityLaunchEHR                    = "launch-ehr"
	capabilityLaunchStandalone             = "launch-standalone"
	capabilityAuthorizePost                = "authorize-post"
	capabilityClientPublic                 = "client-public"
	capabilityClientConfidentialSymmetric  = "client-confidential-symmetric"
	capabilityClientConfidentialAsymmetric = "client-confidential-asymmetric"
	capabilitySSOOpenIDConnect             = "sso-openid-connect"
	capabilityContextBanner                = "context-banner"
	capabilityContextStyle                 = "context-style"
	capabilityContextEHRPatient            = "context-ehr-patient"
	capabilityContextEHREncounter          = "context-ehr-encounter"
	capabilityContextStandalonePatient     = "context-standalone-patient"
	capabilityContextStandaloneEncounter   = "context-standalone-encounter"
	capabilityPermissionOffline            = "permission-offline"
	capabilityPermissionOnline             = "permission-online"
	capabilityPermissionPatient            = "permission-patient"
	capabilityPermissionUser               = "permission-user"
	capabilityPermissionV1                 = "permission-v1"
	capabilityPermissionV2                 = "permission-v2"
	capabilitySMARTAppState                = "smart-app-state"
)

// Capability names used by the worked examples of SMART 2.x but defined
// nowhere normatively. They are accepted on input and emitted as
// capabilityContextBanner and capabilityContextStyle.
const (
	capabilityContextPassthroughBanner = "context-passthrough-banner"
	capabilityContextPassthroughStyle  = "context-passthrough-style"
)

// knownCapabilities lists every simple (non-URI) capability string SMART 2.2 defines.
var knownCapabilities = map[string]bool{
	capabilityLaunchEHR: true, capabilityLaunchStandalone: true, capabilityAuthorizePost: true,
	capabilityClientPublic: true, capabilityClientConfidentialSymmetric: true,
	capabilityClientConfidentialAsymmetric: true, capabilitySSOOpenIDConnect: true,
	capabilityContextBanner: true, capabilityContextStyle: true,
	capabilityContextEHRPatient: true, capabilityContextEHREncounter: true,
	capabilityContextStandalonePatient: true, capabilityContextStandaloneEncounter: true,
	capabilityPermissionOffline: true, capabilityPermissionOnline: true,
	capabilityPermissionPatient: true, capabilityPermissionUser: true,
	capabilityPermissionV1: true, capabilityPermissionV2: true,
	capabilitySMARTAppState: true,
}

// capabilityAliases maps non-normative capability names to the normative ones.
var capabilityAliases = map[string]string{
	capabilityContextPassthroughBanner: capabilityContextBanner,
	capabilityContextPassthroughStyle:  capabilityContextStyle,
}

// Values of grant_types_supported, code_challenge_methods_supported,
// token_endpoint_auth_methods_supported and response_types_supported named
// by SMART 2.2 (and "none", the method of public clients, by RFC 7591).
const (
	grantAuthorizationCode = "authorization_code"
	grantClientCredentials = "client_credentials"
	codeChallengeS256      = "S256"
	codeChallengePlain     = "plain"
	authClientSecretBasic  = "client_secret_basic"
	authClientSecretPost   = "client_secret_post"
	authPrivateKeyJWT      = "private_key_jwt"
	authNone               = "none" // public clients (RFC 7591 §2): client_id only, no secret
	responseTypeCode       = "code"
)

const (
	algRS384 = "RS384"
	algES384 = "ES384"
)

// Document is the SMART App Launch 2.2 configuration document served at
// <base>/.well-known/smart-configuration. Every member of the 2.2
// conformance page has a field; members the spec does not define (vendor
// extensions) live in Extensions. Empty fields are omitted from the JSON.
//
// A Document is plain data: build it by hand, from JSON (encoding/json
// uses its UnmarshalJSON), or from an authorization server's OpenID
// configuration with Derive. Validate reports what is wrong with it.
type Document struct {
	// Issuer is the OpenID Connect issuer URL. Required when Capabilities
	// contains sso-openid-connect, omitted otherwise.
	Issuer string `json:"issuer,omitempty"`
	// JWKSURI is the URL of the OpenID Connect JSON Web Key Set. Required
	// when Capabilities contains sso-openid-connect, optional otherwise.
	JWKSURI string `json:"jwks_uri,omitempty"`
	// AuthorizationEndpoint is the OAuth 2.0 authorization endpoint.
	// SMART 2.2 requires it for launch-ehr and launch-standalone; Inferno's
	// STU2 test requires it always, and so does Validate.
	AuthorizationEndpoint string `json:"authorization_endpoint,omitempty"`
	// GrantTypesSupported lists the grant types of the token endpoint:
	// authorization_code (App Launch) and client_credentials (Backend
	// Services). Required.
	GrantTypesSupported []string `json:"grant_types_supported,omitempty"`
	// TokenEndpoint is the OAuth 2.0 token endpoint. Required.
	TokenEndpoint string `json:"token_endpoint,omitempty"`
	// TokenEndpointAuthMethodsSupported lists the client authentication
	// methods of the token endpoint (client_secret_post,
	// client_secret_basic, private_key_jwt).
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	// TokenEndpointAuthSigningAlgValuesSupported lists the JWS algorithms
	// accepted for private_key_jwt client assertions; with
	// client-confidential-asymmetric it must include RS384 or ES384.
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	// RegistrationEndpoint is the OAuth 2.0 dynamic registration endpoint.
	RegistrationEndpoint string `json:"registration_endpoint,omitempty"`
	// SMARTAppStateEndpoint is the app state endpoint of SMART 2.1,
	// deprecated in 2.2 in favour of AssociatedEndpoints.
	SMARTAppStateEndpoint string `json:"smart_app_state_endpoint,omitempty"`
	// AssociatedEndpoints lists endpoints sharing this endpoint's
	// authorization (experimental in SMART 2.2).
	AssociatedEndpoints []AssociatedEndpoint `json:"associated_endpoints,omitempty"`
	// UserAccessBrandBundle is the URL of a User Access Brand Bundle.
	UserAccessBrandBundle string `json:"user_access_brand_bundle,omitempty"`
	// UserAccessBrandIdentifier identifies the primary entry of the Brand
	// Bundle (a FHIR Identifier, as in the spec's User Access Brands page).
	UserAccessBrandIdentifier *Identifier `json:"user_access_brand_identifier,omitempty"`
	// ScopesSupported lists scopes a client may request (recommended).
	ScopesSupported []string `json:"scopes_supported,omitempty"`
	// ResponseTypesSupported lists the OAuth 2.0 response_type values
	// supported (recommended).
	ResponseTypesSupported []string `json:"response_types_supported,omitempty"`
	// ManagementEndpoint is where an end user reviews and revokes app
	// access (recommended).
	ManagementEndpoint string `json:"management_endpoint,omitempty"`
	// IntrospectionEndpoint is the RFC 7662 introspection endpoint
	// (recommended).
	IntrospectionEndpoint string `json:"introspection_endpoint,omitempty"`
	// RevocationEndpoint is the RFC 7009 revocation endpoint (recommended).
	RevocationEndpoint string `json:"revocation_endpoint,omitempty"`
	// Capabilities lists the SMART capabilities of the server. Required.
	Capabilities []string `json:"capabilities,omitempty"`
	// CodeChallengeMethodsSupported lists the PKCE methods. Required; it
	// must contain S256 and must not contain plain.
	CodeChallengeMethodsSupported []string `json:"code_challenge_methods_supported,omitempty"`

	// Extensions holds members the spec does not define, by name, as raw
	// JSON values. They are emitted after the standard members, sorted by
	// name. A name that collides with a standard member is an error.
	Extensions map[string]json.RawMessage `json:"-"`
}

// AssociatedEndpoint is one entry of associated_endpoints.
type AssociatedEndpoint struct {
	// URL is the endpoint's absolute URL.
	URL string `json:"url"`
	// Capabilities lists the SMART capabilities of that endpoint.
	Capabilities []string `json:"capabilities"`
}

// Identifier is a FHIR Identifier (system and value only).
type Identifier struct {
	// System is the namespace of the value, a URI.
	System string `json:"system,omitempty"`
	// Value is the identifier within System.
	Value string `json:"value,omitempty"`
}

// documentFields is the Document without its methods, for encoding/json.
type documentFields Document

// standardMembers is the set of JSON member names Document defines.
var standardMembers = jsonMembers(documentFields{
	Issuer: "x", JWKSURI: "x", AuthorizationEndpoint: "x", GrantTypesSupported: []string{"x"},
	TokenEndpoint: "x", TokenEndpointAuthMethodsSupported: []string{"x"},
	TokenEndpointAuthSigningAlgValuesSupported: []string{"x"}, RegistrationEndpoint: "x",
	SMARTAppStateEndpoint: "x", AssociatedEndpoints: []AssociatedEndpoint{{}},
	UserAccessBrandBundle: "x", UserAccessBrandIdentifier: &Identifier{},
	ScopesSupported: []string{"x"}, ResponseTypesSupported: []string{"x"},
	ManagementEndpoint: "x", IntrospectionEndpoint: "x", RevocationEndpoint: "x",
	Capabilities: []string{"x"}, CodeChallengeMethodsSupported: []string{"x"},
})

// jsonMembers returns the member names of v encoded as a JSON object; v
// must have every omitempty field filled.
func jsonMembers(v any) map[string]bool {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		panic(err)
	}
	m := make(map[string]bool, len(all))
	for k := range all {
		m[k] = true
	}
	return m
}

// MarshalJSON encodes the standard members in the spec's order, then the
// extensions sorted by name. An extension whose name is a standard member
// is skipped (Validate reports it); an extension that is not valid JSON is
// an error.
func (d Document) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(documentFields(d))
	if err != nil {
		return nil, err
	}
	return appendExtensions(b, d.Extensions, standardMembers)
}

// UnmarshalJSON decodes a document; members the spec does not define are
// kept in Extensions.
func (d *Document) UnmarshalJSON(data []byte) error {
	var f documentFields
	if err := json.Unmarshal(data, &f); err != nil {
		return err
	}
	ext, err := extraMembers(data, standardMembers)
	if err != nil {
		return err
	}
	f.Extensions = ext
	*d = Document(f)
	return nil
}

// appendExtensions adds ext (minus reserved names) to the JSON object b.
func appendExtensions(b []byte, ext map[string]json.RawMessage, reserved map[string]bool) ([]byte, error) {
	if len(ext) == 0 {
		return b, nil
	}
	names := make([]string, 0, len(ext))
	for k := range ext {
		if !reserved[k] {
			names = append(names, k)
		}
	}
	if len(names) == 0 {
		return b, nil
	}
	sort.Strings(names)
	out := bytes.NewBuffer(make([]byte, 0, len(b)+64*len(names)))
	out.Write(b[:len(b)-1]) // drop '}'
	first := len(b) == 2    // "{}"
	for _, k := range names {
		v := ext[k]
		if !json.Valid(v) {
			return nil, fmt.Errorf("discovery: extension %q is not valid JSON", k)
		}
		if !first {
			out.WriteByte(',')
		}
		first = false
		kb, _ := json.Marshal(k)
		out.Write(kb)
		out.WriteByte(':')
		if err := json.Compact(out, v); err != nil {
			return nil, fmt.Errorf("discovery: extension %q: %w", k, err)
		}
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}

// extraMembers returns the members of the JSON object data not in known.
func extraMembers(data []byte, known map[string]bool) (map[string]json.RawMessage, error) {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		return nil, err
	}
	var ext map[string]json.RawMessage
	for k, v := range all {
		if known[k] {
			continue
		}
		if ext == nil {
			ext = map[string]json.RawMessage{}
		}
		ext[k] = v
	}
	return ext, nil
}

// clone returns a deep copy of d.
func (d *Document) clone() *Document {
	c := *d
	c.GrantTypesSupported = slices.Clone(d.GrantTypesSupported)
	c.TokenEndpointAuthMethodsSupported = slices.Clone(d.TokenEndpointAuthMethodsSupported)
	c.TokenEndpointAuthSigningAlgValuesSupported = slices.Clone(d.TokenEndpointAuthSigningAlgValuesSupported)
	c.ScopesSupported = slices.Clone(d.ScopesSupported)
	c.ResponseTypesSupported = slices.Clone(d.ResponseTypesSupported)
	c.Capabilities = slices.Clone(d.Capabilities)
	c.CodeChallengeMethodsSupported = slices.Clone(d.CodeChallengeMethodsSupported)
	if d.AssociatedEndpoints != nil {
		c.AssociatedEndpoints = make([]AssociatedEndpoint, len(d.AssociatedEndpoints))
		for i, e := range d.AssociatedEndpoints {
			c.AssociatedEndpoints[i] = AssociatedEndpoint{URL: e.URL, Capabilities: slices.Clone(e.Capabilities)}
		}
	}
	if d.UserAccessBrandIdentifier != nil {
		id := *d.UserAccessBrandIdentifier
		c.UserAccessBrandIdentifier = &id
	}
	if d.Extensions != nil {
		c.Extensions = make(map[string]json.RawMessage, len(d.Extensions))
		for k, v := range d.Extensions {
			c.Extensions[k] = slices.Clone(v)
		}
	}
	return &c
}

// normalize returns the form of d that is served: a deep copy in which the
// non-normative capability names context-passthrough-banner and
// context-passthrough-style are replaced by context-banner and
// context-style, repeated capabilities are listed once (first occurrence
// kept), and, when client-public is advertised and
// token_endpoint_auth_methods_supported lists methods but not "none",
// "none" is appended to it: a public client authenticates with "none"
// (RFC 7591 §2), so advertising the capability already says the token
// endpoint accepts it. Nothing else changes.
func (d *Document) normalize() *Document {
	c := d.clone()
	c.Capabilities = normalizeCapabilities(c.Capabilities)
	for i := range c.AssociatedEndpoints {
		c.AssociatedEndpoints[i].Capabilities = normalizeCapabilities(c.AssociatedEndpoints[i].Capabilities)
	}
	if c.advertises(capabilityClientPublic) && len(c.TokenEndpointAuthMethodsSupported) > 0 &&
		!contains(c.TokenEndpointAuthMethodsSupported, authNone) {
		c.TokenEndpointAuthMethodsSupported = append(c.TokenEndpointAuthMethodsSupported, authNone)
	}
	return c
}

func normalizeCapabilities(caps []string) []string {
	if caps == nil {
		return nil
	}
	out := caps[:0]
	seen := make(map[string]bool, len(caps))
	for _, c := range caps {
		if n, ok := capabilityAliases[c]; ok {
			c = n
		}
		if seen[c] {
			continue
		}
		seen[c] = true
		out = append(out, c)
	}
	return out
}

// advertises reports whether d lists capability c, an alias counting as
// its normative name.
func (d *Document) advertises(c string) bool {
	return hasCapability(d.Capabilities, c)
}

func hasCapability(caps []string, c string) bool {
	for _, x := range caps {
		if n, alias := capabilityAliases[x]; x == c || alias && n == c {
			return true
		}
	}
	return false
}
