package discovery

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// errUnsupported marks a finding of Derive: the authorization server's
// metadata does not support a capability that was configured, or offers a
// feature only in a form SMART cannot use (private_key_jwt without RS384
// or ES384, openid without fhirUser, an authorization endpoint without
// PKCE S256, ...).
var errUnsupported = errors.New("not supported by the authorization server")

// DeriveConfig configures Derive.
type DeriveConfig struct {
	// Local holds the local settings. Its members win over the
	// authorization server's metadata and are served as given.
	//
	// Local.Capabilities, when not empty, lists the capabilities to
	// advertise; each is checked against the metadata. When it is empty
	// (or Local is nil), the capabilities are derived from the metadata.
	Local *Document
	// Strict refuses metadata that Derive would otherwise work around:
	// with Strict, every finding (a configured capability the metadata
	// does not support, a feature offered in a form SMART cannot use,
	// "none" as a client assertion algorithm) is an error and Derive
	// fails. Without Strict they are warnings, and the document served
	// leaves out what is not supported.
	Strict bool
}

// Derive builds the SMART configuration of a FHIR server whose tokens come
// from the authorization server described by oc, and says what in oc is
// imperfect for SMART. A real authorization server's metadata rarely
// matches SMART exactly (npm oidc-provider's defaults, for example, offer
// response types "code id_token" and "none", and client assertion
// algorithms without RS384 or ES384), so by default Derive serves what the
// server does support and reports the rest as warnings; DeriveConfig.Strict
// refuses instead.
//
// Capabilities: when cfg.Local lists none, they are derived from the
// metadata:
//
//   - launch-standalone when the authorization code flow is offered (an
//     authorization endpoint, grant type authorization_code, response type
//     code when response types are listed, PKCE S256); launch-ehr when, in
//     addition, scopes_supported lists launch;
//   - client-public, client-confidential-symmetric and
//     client-confidential-asymmetric from token_endpoint_auth_methods_supported
//     (none; client_secret_basic or client_secret_post; private_key_jwt
//     with RS384 or ES384 in token_endpoint_auth_signing_alg_values_supported),
//     the first two only with a launch capability;
//   - sso-openid-connect when scopes_supported lists openid and fhirUser
//     and jwks_uri is set, with a launch capability;
//   - context-ehr-patient, context-standalone-patient (and -encounter)
//     from launch/patient (launch/encounter) in scopes_supported;
//   - permission-offline and permission-online from offline_access and
//     online_access in scopes_supported, with grant type refresh_token;
//   - permission-patient, permission-user, permission-v1 and
//     permission-v2 from the patient/ and user/ scopes listed, and the
//     syntax of the patient/, user/ and system/ scopes listed.
//
// authorize-post, context-banner, context-style and smart-app-state
// cannot be seen in OAuth metadata; list them in cfg.Local to advertise
// them. Absent lists take the defaults of OpenID Connect Discovery and
// RFC 8414: grant types authorization_code and implicit, client
// authentication client_secret_basic.
//
// Capabilities listed in cfg.Local are checked with the same rules (the
// context capabilities need their launch capability, not a listed scope);
// one the metadata does not support is left out with a warning (an error
// with Strict). client-public is kept even when the server does not list
// "none", with a warning (an error with Strict), and served with "none".
//
// Members: every member set in cfg.Local wins; empty ones are taken from
// oc: the endpoints (authorization, token, registration, introspection,
// revocation) and jwks_uri; issuer only with sso-openid-connect (SMART
// says to omit it otherwise); grant_types_supported keeping only
// authorization_code and client_credentials; code_challenge_methods_supported
// without plain (SMART forbids advertising it). Capabilities aside,
// management_endpoint, associated endpoints, brands and extensions come
// from cfg.Local only.
//
// Lists taken from the metadata are narrowed to what the capabilities
// use: response_types_supported to "code" (none without a launch
// capability), scopes_supported to the scopes SMART defines whose
// capability is advertised (see Document.Validate),
// token_endpoint_auth_methods_supported to the methods of the advertised
// client types, and token_endpoint_auth_signing_alg_values_supported to
// the algorithms of client-confidential-asymmetric (dropped without it).
// Lists set in cfg.Local are kept as they are.
//
// Derive returns the document, which has no validation errors, and the
// warnings: the findings above and the warnings of Document.Validate. It
// fails with a *ValidationError, holding every problem, when the document
// still has errors (no token endpoint; no PKCE S256 listed, which SMART
// requires of every server: set CodeChallengeMethodsSupported in
// cfg.Local when the server supports it without saying so) or, with
// Strict, when there is any finding.
func Derive(oc *OpenIDConfiguration, cfg DeriveConfig) (*Document, Problems, error) {
	if oc == nil {
		return nil, nil, errors.New("discovery: Derive: nil OpenID configuration")
	}
	local := cfg.Local
	if local == nil {
		local = &Document{}
	}
	f := factsOf(oc, local)
	var findings Problems
	find := func(field string, err error, format string, args ...any) {
		findings = append(findings, Problem{Severity: SeverityWarning, Field: field, Detail: fmt.Sprintf(format, args...), err: err})
	}

	var caps []string
	if len(local.Capabilities) > 0 {
		caps = f.checkCapabilities(local.Capabilities, find)
	} else {
		caps = f.deriveCapabilities(find)
	}

	l := local.clone()
	l.Capabilities = caps
	d := fromOpenIDConfiguration(oc, l)
	if len(local.ResponseTypesSupported) == 0 {
		d.ResponseTypesSupported = nil
		if launchCapable(d) && contains(oc.ResponseTypesSupported, responseTypeCode) {
			d.ResponseTypesSupported = []string{responseTypeCode}
		}
	}
	if len(local.TokenEndpointAuthMethodsSupported) == 0 {
		d.TokenEndpointAuthMethodsSupported = authMethodsFor(d, oc.TokenEndpointAuthMethodsSupported)
	}
	if len(local.TokenEndpointAuthSigningAlgValuesSupported) == 0 {
		d.TokenEndpointAuthSigningAlgValuesSupported = nil
		if d.advertises(capabilityClientConfidentialAsymmetric) {
			d.TokenEndpointAuthSigningAlgValuesSupported = filter(oc.TokenEndpointAuthSigningAlgValuesSupported, func(a string) bool {
				if strings.EqualFold(a, "none") {
					find("token_endpoint_auth_signing_alg_values_supported", errForbiddenValue, "%q (unsigned client assertions) is offered by the authorization server; it is not served", a)
					return false
				}
				return true
			})
		}
	}
	if len(local.ScopesSupported) == 0 {
		// Scopes are narrowed last: they depend on the grant types and
		// capabilities of the final document.
		d.ScopesSupported = filter(oc.ScopesSupported, func(s string) bool {
			_, ok, known := scopeNeeds(d, s)
			return ok && known
		})
	}

	ps := d.Validate()
	if cfg.Strict && len(findings) > 0 {
		all := make(Problems, 0, len(findings)+len(ps))
		for _, p := range findings {
			p.Severity = SeverityError
			all = append(all, p)
		}
		return nil, nil, &ValidationError{Problems: append(all, ps...)}
	}
	if ps.Err() != nil {
		return nil, nil, &ValidationError{Problems: append(findings, ps...)}
	}
	return d, append(findings, ps.Warnings()...), nil
}

// asFacts is what an authorization server offers, its metadata overridden
// by the local settings, with the defaults of absent lists applied.
type asFacts struct {
	authorizationEndpoint, jwksURI string
	grants                         []string // SMART-level grant types (local or metadata)
	rawGrants                      []string // the metadata's grant types, refresh_token included
	methods                        []string
	methodsListed                  bool
	algs, pkce, scopes             []string
	responseTypes                  []string // nil: not listed
}

func factsOf(oc *OpenIDConfiguration, local *Document) *asFacts {
	pick := func(l, r []string) []string {
		if len(l) > 0 {
			return l
		}
		return r
	}
	str := func(l, r string) string {
		if l != "" {
			return l
		}
		return r
	}
	f := &asFacts{
		authorizationEndpoint: str(local.AuthorizationEndpoint, oc.AuthorizationEndpoint),
		jwksURI:               str(local.JWKSURI, oc.JWKSURI),
		rawGrants:             oc.GrantTypesSupported,
		methods:               pick(local.TokenEndpointAuthMethodsSupported, oc.TokenEndpointAuthMethodsSupported),
		algs:                  pick(local.TokenEndpointAuthSigningAlgValuesSupported, oc.TokenEndpointAuthSigningAlgValuesSupported),
		pkce:                  pick(local.CodeChallengeMethodsSupported, oc.CodeChallengeMethodsSupported),
		scopes:                pick(local.ScopesSupported, oc.ScopesSupported),
		responseTypes:         pick(local.ResponseTypesSupported, oc.ResponseTypesSupported),
	}
	if len(f.rawGrants) == 0 {
		// OpenID Connect Discovery §3, RFC 8414 §2.
		f.rawGrants = []string{grantAuthorizationCode, "implicit"}
	}
	f.grants = pick(local.GrantTypesSupported, f.rawGrants)
	f.methodsListed = len(f.methods) > 0
	if !f.methodsListed {
		f.methods = []string{authClientSecretBasic} // the same defaults
	}
	return f
}

// codeFlow says why the authorization code flow SMART launches use is not
// offered, or "" when it is.
func (f *asFacts) codeFlow() string {
	var why []string
	if f.authorizationEndpoint == "" {
		why = append(why, "no authorization_endpoint")
	}
	if !contains(f.grants, grantAuthorizationCode) {
		why = append(why, "grant_types_supported lacks authorization_code")
	}
	if f.responseTypes != nil && !contains(f.responseTypes, responseTypeCode) {
		why = append(why, "response_types_supported lacks code")
	}
	if !contains(f.pkce, codeChallengeS256) {
		why = append(why, "code_challenge_methods_supported lacks S256 (SMART requires PKCE S256)")
	}
	return strings.Join(why, "; ")
}

func (f *asFacts) symmetric() bool {
	return contains(f.methods, authClientSecretBasic) || contains(f.methods, authClientSecretPost)
}

// asymmetric says why client-confidential-asymmetric is not offered, or "".
func (f *asFacts) asymmetric() string {
	if !contains(f.methods, authPrivateKeyJWT) {
		return "token_endpoint_auth_methods_supported lacks private_key_jwt"
	}
	if !contains(f.algs, algRS384) && !contains(f.algs, algES384) {
		return fmt.Sprintf("token_endpoint_auth_signing_alg_values_supported lists neither RS384 nor ES384 (%s)", listOrNone(f.algs))
	}
	return ""
}

// methodsDesc describes the client authentication methods for a finding.
func (f *asFacts) methodsDesc() string {
	if !f.methodsListed {
		return "none listed: client_secret_basic by default"
	}
	return strings.Join(f.methods, ", ")
}

func (f *asFacts) refresh() bool { return contains(f.rawGrants, "refresh_token") }

func listOrNone(vals []string) string {
	if len(vals) == 0 {
		return "none listed"
	}
	return strings.Join(vals, ", ")
}

// capabilityFields names, for the findings, the metadata member that
// decides each capability.
var capabilityFields = map[string]string{
	capabilityClientPublic:                 "token_endpoint_auth_methods_supported",
	capabilityClientConfidentialSymmetric:  "token_endpoint_auth_methods_supported",
	capabilityClientConfidentialAsymmetric: "token_endpoint_auth_signing_alg_values_supported",
	capabilitySSOOpenIDConnect:             "jwks_uri",
	capabilityPermissionOffline:            "grant_types_supported",
	capabilityPermissionOnline:             "grant_types_supported",
}

// requirement says why capability c (a normative name) cannot be
// advertised given the metadata and the capabilities kept so far, or "".
// Capabilities the metadata cannot show (permissions, app state, URIs)
// have no requirement.
func (f *asFacts) requirement(c string, kept map[string]bool) string {
	launch := kept[capabilityLaunchEHR] || kept[capabilityLaunchStandalone]
	const noLaunch = "neither launch-ehr nor launch-standalone is advertised"
	switch c {
	case capabilityLaunchEHR, capabilityLaunchStandalone:
		return f.codeFlow()
	case capabilityAuthorizePost, capabilityClientPublic:
		if !launch {
			return noLaunch
		}
	case capabilityClientConfidentialSymmetric:
		if !launch {
			return noLaunch
		}
		if !f.symmetric() {
			return fmt.Sprintf("token_endpoint_auth_methods_supported lists neither client_secret_basic nor client_secret_post (%s)", f.methodsDesc())
		}
	case capabilityClientConfidentialAsymmetric:
		return f.asymmetric()
	case capabilitySSOOpenIDConnect:
		if !launch {
			return noLaunch
		}
		if f.jwksURI == "" {
			return "no jwks_uri"
		}
	case capabilityContextEHRPatient, capabilityContextEHREncounter, capabilityContextBanner, capabilityContextStyle:
		if !kept[capabilityLaunchEHR] {
			return "launch-ehr is not advertised"
		}
	case capabilityContextStandalonePatient, capabilityContextStandaloneEncounter:
		if !kept[capabilityLaunchStandalone] {
			return "launch-standalone is not advertised"
		}
	case capabilityPermissionOffline, capabilityPermissionOnline:
		if !launch {
			return noLaunch
		}
		if !f.refresh() {
			return "grant_types_supported lacks refresh_token"
		}
	}
	return ""
}

// checkCapabilities keeps the configured capabilities the metadata
// supports, in their order and spelling, launch capabilities judged first
// since others depend on them.
func (f *asFacts) checkCapabilities(configured []string, find func(string, error, string, ...any)) []string {
	kept := map[string]bool{}
	drop := map[int]bool{}
	for pass := 0; pass < 2; pass++ {
		for i, c := range configured {
			n := c
			if a, ok := capabilityAliases[c]; ok {
				n = a
			}
			isLaunch := n == capabilityLaunchEHR || n == capabilityLaunchStandalone
			if isLaunch != (pass == 0) {
				continue
			}
			if why := f.requirement(n, kept); why != "" {
				drop[i] = true
				field := capabilityFields[n]
				if field == "" {
					field = "capabilities"
				}
				find(field, errUnsupported, "capability %s is configured but not supported by the authorization server: %s", c, why)
				continue
			}
			kept[n] = true
			if n == capabilityClientPublic && !contains(f.methods, authNone) {
				find("token_endpoint_auth_methods_supported", errUnsupported, "capability client-public is configured but the authorization server does not list %q (%s); it is advertised as configured", authNone, f.methodsDesc())
			}
		}
	}
	out := make([]string, 0, len(configured))
	for i, c := range configured {
		if !drop[i] {
			out = append(out, c)
		}
	}
	return out
}

// deriveCapabilities reads the capabilities from the metadata, in the
// order of SMART's conformance page.
func (f *asFacts) deriveCapabilities(find func(string, error, string, ...any)) []string {
	kept := map[string]bool{}
	var caps []string
	add := func(c string, ok bool) {
		if ok && f.requirement(c, kept) == "" {
			kept[c] = true
			caps = append(caps, c)
		}
	}
	scope := func(s string) bool { return contains(f.scopes, s) }

	codeFlow := f.codeFlow()
	if codeFlow != "" && f.authorizationEndpoint != "" {
		find("capabilities", errUnsupported, "launch-standalone and launch-ehr not derived: %s", codeFlow)
	}
	add(capabilityLaunchEHR, scope("launch"))
	add(capabilityLaunchStandalone, true)
	launch := kept[capabilityLaunchEHR] || kept[capabilityLaunchStandalone]

	add(capabilityClientPublic, contains(f.methods, authNone))
	add(capabilityClientConfidentialSymmetric, true)
	add(capabilityClientConfidentialAsymmetric, true)
	if why := f.asymmetric(); why != "" && contains(f.methods, authPrivateKeyJWT) {
		find("token_endpoint_auth_signing_alg_values_supported", errUnsupported, "client-confidential-asymmetric not derived: private_key_jwt is offered, but %s; SMART needs one of them", why)
	}

	add(capabilitySSOOpenIDConnect, scope("openid") && scope("fhirUser"))
	if launch && scope("openid") && !kept[capabilitySSOOpenIDConnect] {
		why := "scopes_supported lacks fhirUser"
		if f.jwksURI == "" {
			why = "no jwks_uri"
		}
		find("scopes_supported", errUnsupported, "sso-openid-connect not derived: openid is offered but %s", why)
	}

	add(capabilityContextEHRPatient, scope("launch/patient"))
	add(capabilityContextEHREncounter, scope("launch/encounter"))
	add(capabilityContextStandalonePatient, scope("launch/patient"))
	add(capabilityContextStandaloneEncounter, scope("launch/encounter"))

	add(capabilityPermissionOffline, scope("offline_access"))
	add(capabilityPermissionOnline, scope("online_access"))
	for _, s := range []string{"offline_access", "online_access"} {
		if launch && scope(s) && !f.refresh() {
			find("grant_types_supported", errUnsupported, "%s is offered but grant type refresh_token is not: no refresh capability derived", s)
		}
	}

	var patient, user, v1, v2 bool
	for _, s := range f.scopes {
		ctx, rest, ok := strings.Cut(s, "/")
		if !ok || (ctx != "patient" && ctx != "user" && ctx != "system") {
			continue
		}
		rest, _, _ = strings.Cut(rest, "?")
		dot := strings.LastIndexByte(rest, '.')
		if dot < 0 {
			continue
		}
		switch perm := rest[dot+1:]; {
		case perm == "read" || perm == "write" || perm == "*":
			v1 = true
		case perm != "" && strings.Trim(perm, "cruds") == "":
			v2 = true
		default:
			continue
		}
		patient = patient || ctx == "patient"
		user = user || ctx == "user"
	}
	add(capabilityPermissionPatient, patient)
	add(capabilityPermissionUser, user)
	add(capabilityPermissionV1, v1)
	add(capabilityPermissionV2, v2)
	if !v1 && !v2 {
		find("scopes_supported", errUnsupported, "no patient/, user/ or system/ scope is listed (%s): no permission capability derived; list the capabilities explicitly", listOrNone(f.scopes))
	}
	return caps
}

// launchCapable reports whether d advertises a launch capability.
func launchCapable(d *Document) bool {
	return d.advertises(capabilityLaunchEHR) || d.advertises(capabilityLaunchStandalone)
}

// authMethodsFor narrows the authorization server's client authentication
// methods to those of the client types d advertises, adding "none" for
// client-public. An absent list stays absent.
func authMethodsFor(d *Document, offered []string) []string {
	if len(offered) == 0 {
		return nil
	}
	out := filter(offered, func(m string) bool {
		switch m {
		case authNone:
			return d.advertises(capabilityClientPublic)
		case authClientSecretBasic, authClientSecretPost:
			return d.advertises(capabilityClientConfidentialSymmetric)
		case authPrivateKeyJWT:
			return d.advertises(capabilityClientConfidentialAsymmetric)
		}
		return false
	})
	if d.advertises(capabilityClientPublic) && !contains(out, authNone) {
		out = append(out, authNone)
	}
	return slices.Clip(out)
}
