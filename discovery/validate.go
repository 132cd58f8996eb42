package discovery

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
)

// Severity says whether a Problem makes a document unusable.
type Severity uint8

// Severities.
const (
	// SeverityWarning marks something the spec advises against or a test
	// kit warns about; the document is still served.
	SeverityWarning Severity = iota + 1
	// SeverityError marks a violation of a SHALL of the spec or of a
	// check Inferno fails on; the document is refused.
	SeverityError
)

// String returns "warning" or "error".
func (s Severity) String() string {
	switch s {
	case SeverityWarning:
		return "warning"
	case SeverityError:
		return "error"
	}
	return fmt.Sprintf("severity(%d)", uint8(s))
}

// The kinds of problems, kept in Problem.err: the tests tell them apart.
// Their texts are the fallback detail of a Problem.
var (
	// errMissing: a required, conditionally required or recommended member
	// is absent or empty.
	errMissing = errors.New("member missing")
	// errRelativeURL: an endpoint URL is relative (all must be absolute).
	errRelativeURL = errors.New("URL is not absolute")
	// errInvalidURL: a URL does not parse, is not http(s), or has a
	// fragment.
	errInvalidURL = errors.New("invalid URL")
	// errInsecureURL: an endpoint URL uses http instead of https.
	errInsecureURL = errors.New("URL is not https")
	// errMissingValue: a list lacks a value it must contain (S256,
	// authorization_code, private_key_jwt, RS384 or ES384).
	errMissingValue = errors.New("required value missing")
	// errForbiddenValue: a list contains a value it must not contain
	// (plain, none).
	errForbiddenValue = errors.New("forbidden value")
	// errUnexpected: a member is present where the spec says to omit it.
	errUnexpected = errors.New("member not expected")
	// errDeprecated: a member or name the spec deprecates.
	errDeprecated = errors.New("deprecated")
	// errCapabilityAlias: a non-normative capability name
	// (context-passthrough-banner, context-passthrough-style); it is
	// served under its normative name.
	errCapabilityAlias = errors.New("non-normative capability name")
	// errUnknownCapability: a simple (non-URI) capability SMART does not
	// define; such names are reserved to SMART, others must be URIs.
	errUnknownCapability = errors.New("unknown capability")
	// errUnknownValue: a value outside the options the spec lists.
	errUnknownValue = errors.New("unknown value")
	// errDuplicate: a value is listed twice.
	errDuplicate = errors.New("duplicate value")
	// errInvalidValue: an empty string or otherwise malformed value.
	errInvalidValue = errors.New("invalid value")
	// errReservedExtension: an extension member uses a standard name.
	errReservedExtension = errors.New("extension uses a standard member name")
)

// Problem is one finding of a validation (Document.Validate,
// ProtectedResourceMetadata.Validate) or of Derive.
type Problem struct {
	// Severity says whether the document is refused (SeverityError).
	Severity Severity
	// Field is the JSON member concerned, with an index for list items
	// ("capabilities[2]", "associated_endpoints[0].url"), or, for a
	// problem of the response FetchDocument read, the HTTP header
	// ("Content-Type").
	Field string
	// Detail says what was found, for people.
	Detail string

	err error // the kind of problem
}

// Error returns "severity: field: detail", for example
// `warning: capabilities[0]: "launch-standalon" is not a SMART capability; ...`.
func (p Problem) Error() string {
	msg := p.Detail
	if msg == "" && p.err != nil {
		msg = p.err.Error()
	}
	return p.Severity.String() + ": " + p.Field + ": " + msg
}

// Problems is the result of a validation: every finding, in document order.
type Problems []Problem

// Errors returns the problems of SeverityError.
func (ps Problems) Errors() Problems { return ps.filter(SeverityError) }

// Warnings returns the problems of SeverityWarning.
func (ps Problems) Warnings() Problems { return ps.filter(SeverityWarning) }

func (ps Problems) filter(s Severity) Problems {
	var out Problems
	for _, p := range ps {
		if p.Severity == s {
			out = append(out, p)
		}
	}
	return out
}

// Err returns a *ValidationError holding every problem when at least one
// is an error, and nil otherwise (warnings alone are not an error).
func (ps Problems) Err() error {
	if len(ps.Errors()) == 0 {
		return nil
	}
	return &ValidationError{Problems: ps}
}

// ValidationError is returned when a document has errors. It holds every
// problem found, warnings included.
type ValidationError struct {
	// Problems holds every finding, errors and warnings, in document order.
	Problems Problems
}

// Error lists the errors (not the warnings) on one line.
func (e *ValidationError) Error() string {
	errs := e.Problems.Errors()
	parts := make([]string, len(errs))
	for i, p := range errs {
		parts[i] = p.Field + ": " + p.Detail
	}
	return fmt.Sprintf("discovery: invalid document (%d errors): %s", len(errs), strings.Join(parts, "; "))
}

// validator collects problems.
type validator struct{ ps Problems }

func (v *validator) add(s Severity, field string, err error, format string, args ...any) {
	v.ps = append(v.ps, Problem{Severity: s, Field: field, Detail: fmt.Sprintf(format, args...), err: err})
}

// url checks an endpoint URL member. Empty values are not checked here.
func (v *validator) url(field, raw string) {
	if raw == "" {
		return
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		v.add(SeverityError, field, errInvalidURL, "%q does not parse as a URL", raw)
	case !u.IsAbs() || u.Host == "":
		v.add(SeverityError, field, errRelativeURL, "%q is not an absolute URL; endpoint URLs must be absolute", raw)
	case u.Scheme != "https" && u.Scheme != "http":
		v.add(SeverityError, field, errInvalidURL, "%q: scheme %q is not https", raw, u.Scheme)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		v.add(SeverityError, field, errInvalidURL, "%q has a fragment", raw)
	case u.User != nil:
		v.add(SeverityError, field, errInvalidURL, "%q carries user information", raw)
	case u.Scheme == "http":
		v.add(SeverityWarning, field, errInsecureURL, "%q uses http; use https outside development", raw)
	}
}

func (v *validator) required(field string, present bool, why string) {
	if !present {
		v.add(SeverityError, field, errMissing, "required%s", why)
	}
}

func (v *validator) recommended(field string, present bool) {
	if !present {
		v.add(SeverityWarning, field, errMissing, "recommended by SMART 2.2")
	}
}

// list checks a list of strings for empty and duplicate values.
func (v *validator) list(field string, vals []string) {
	seen := make(map[string]bool, len(vals))
	for i, s := range vals {
		f := fmt.Sprintf("%s[%d]", field, i)
		if strings.TrimSpace(s) == "" || s != strings.TrimSpace(s) {
			v.add(SeverityError, f, errInvalidValue, "%q is empty or has surrounding spaces", s)
			continue
		}
		if seen[s] {
			v.add(SeverityWarning, f, errDuplicate, "%q is listed twice", s)
		}
		seen[s] = true
	}
}

func contains(vals []string, s string) bool {
	for _, x := range vals {
		if x == s {
			return true
		}
	}
	return false
}

// capabilities checks a capability list.
func (v *validator) capabilities(field string, caps []string) {
	v.list(field, caps)
	for i, c := range caps {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case c == "" || strings.TrimSpace(c) != c:
			// reported by list
		case capabilityAliases[c] != "":
			v.add(SeverityWarning, f, errCapabilityAlias, "%q is not defined by SMART; it is served as %q", c, capabilityAliases[c])
		case knownCapabilities[c]:
		case isURI(c):
			// an extension capability named by a URI: allowed
		default:
			v.add(SeverityWarning, f, errUnknownCapability, "%q is not a SMART capability; simple names are reserved to SMART, use a full URI%s", c, didYouMean(c, sortedCapabilities))
		}
	}
}

// sortedCapabilities lists knownCapabilities in order, for didYouMean.
var sortedCapabilities = slices.Sorted(maps.Keys(knownCapabilities))

// smartGrants lists the grant types SMART names.
var smartGrants = []string{grantAuthorizationCode, grantClientCredentials}

// didYouMean returns `; did you mean "x"?` when x, one of known, is close
// to s (a misspelling: a different case, "_" for "-", a letter or two
// wrong), and "" otherwise.
func didYouMean(s string, known []string) string {
	if k := closest(s, known); k != "" {
		return fmt.Sprintf("; did you mean %q?", k)
	}
	return ""
}

// misspelt returns `; is "x" a misspelling of it?` when a value x of vals
// is close to want, a value the list lacks, and "" otherwise.
func misspelt(vals []string, want string) string {
	for _, x := range vals {
		if closest(x, []string{want}) != "" {
			return fmt.Sprintf("; is %q a misspelling of it?", x)
		}
	}
	return ""
}

// closest returns the value of known nearest to s when it is near enough
// to be what s meant, or "". Case and the choice of "-" or "_" do not
// count; then at most a quarter of the letters (and at least two) may
// differ.
func closest(s string, known []string) string {
	norm := func(x string) string { return strings.ReplaceAll(strings.ToLower(x), "_", "-") }
	ns := norm(s)
	best, bestDist := "", -1
	for _, k := range known {
		if k == s {
			continue
		}
		nk := norm(k)
		d := editDistance(ns, nk)
		if d > max(2, len(nk)/4) {
			continue
		}
		if bestDist < 0 || d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b (bytes).
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		if a == b {
			return 0
		}
		return 1 << 30 // long values are no misspellings of short names
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// isURI reports whether s is an absolute URI (scheme ":" rest).
func isURI(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && len(s) > len(u.Scheme)+1
}

// Validate checks d against SMART App Launch 2.2 and the discovery checks
// of Inferno's STU2 test kit, and returns every problem found. A passthrough
// capability name counts as its normative name. A value that looks like a
// misspelling of one SMART names ("launch-standalon", "s256") is reported
// with the value it probably meant. Validate does not change d.
//
// Errors: a missing token_endpoint, capabilities, grant_types_supported,
// code_challenge_methods_supported or authorization_endpoint; S256
// missing or plain listed; issuer and jwks_uri missing with
// sso-openid-connect; a relative or malformed endpoint URL; with
// client-confidential-asymmetric, private_key_jwt or both of RS384 and
// ES384 missing; a launch capability without authorization_code; "none"
// as a signing algorithm; an extension named like a standard member.
//
// Warnings: issuer without sso-openid-connect; http URLs; missing
// recommended members; passthrough and unknown simple capability names;
// the deprecated smart_app_state_endpoint; duplicates; grant types other
// than authorization_code and client_credentials; client-public with
// token_endpoint_auth_methods_supported lacking "none" (the served form adds
// it), and "none" without client-public; scopes_supported offering scopes
// whose capability is not advertised (v1 or v2 syntax, patient/ or user/
// scopes, openid and fhirUser, offline_access, online_access, launch,
// launch/patient, launch/encounter) or system/ scopes without
// client_credentials.
func (d *Document) Validate() Problems {
	v := &validator{}
	sso := d.advertises(capabilitySSOOpenIDConnect)

	// issuer and jwks_uri: conditional on sso-openid-connect.
	if sso {
		v.required("issuer", d.Issuer != "", " with capability sso-openid-connect")
		v.required("jwks_uri", d.JWKSURI != "", " with capability sso-openid-connect")
	} else if d.Issuer != "" {
		v.add(SeverityWarning, "issuer", errUnexpected, "set without capability sso-openid-connect; SMART says to omit it")
	}
	v.url("issuer", d.Issuer)
	if u, err := url.Parse(d.Issuer); d.Issuer != "" && err == nil && u.RawQuery != "" {
		v.add(SeverityError, "issuer", errInvalidURL, "%q has a query; an OpenID Connect issuer has none", d.Issuer)
	}
	v.url("jwks_uri", d.JWKSURI)

	// authorization_endpoint: SMART 2.2 makes it conditional on launch
	// capabilities; Inferno's STU2 test requires it always.
	launch := d.advertises(capabilityLaunchEHR) || d.advertises(capabilityLaunchStandalone)
	if launch {
		v.required("authorization_endpoint", d.AuthorizationEndpoint != "", " with launch-ehr or launch-standalone")
	} else {
		v.required("authorization_endpoint", d.AuthorizationEndpoint != "", " by Inferno's STU2 discovery test")
	}
	v.url("authorization_endpoint", d.AuthorizationEndpoint)

	// grant_types_supported.
	v.required("grant_types_supported", len(d.GrantTypesSupported) > 0, "")
	v.list("grant_types_supported", d.GrantTypesSupported)
	if len(d.GrantTypesSupported) > 0 && !contains(d.GrantTypesSupported, grantAuthorizationCode) {
		if launch {
			v.add(SeverityError, "grant_types_supported", errMissingValue, "launch capabilities need %q%s", grantAuthorizationCode, misspelt(d.GrantTypesSupported, grantAuthorizationCode))
		} else {
			v.add(SeverityWarning, "grant_types_supported", errMissingValue, "Inferno's STU2 discovery test requires %q%s", grantAuthorizationCode, misspelt(d.GrantTypesSupported, grantAuthorizationCode))
		}
	}
	for i, g := range d.GrantTypesSupported {
		if g != grantAuthorizationCode && g != grantClientCredentials && strings.TrimSpace(g) != "" {
			v.add(SeverityWarning, fmt.Sprintf("grant_types_supported[%d]", i), errUnknownValue, "%q: SMART lists only authorization_code and client_credentials%s", g, didYouMean(g, smartGrants))
		}
	}

	// token_endpoint.
	v.required("token_endpoint", d.TokenEndpoint != "", "")
	v.url("token_endpoint", d.TokenEndpoint)

	// Client authentication.
	v.list("token_endpoint_auth_methods_supported", d.TokenEndpointAuthMethodsSupported)
	v.list("token_endpoint_auth_signing_alg_values_supported", d.TokenEndpointAuthSigningAlgValuesSupported)
	if d.advertises(capabilityClientConfidentialAsymmetric) {
		if !contains(d.TokenEndpointAuthMethodsSupported, authPrivateKeyJWT) {
			v.add(SeverityError, "token_endpoint_auth_methods_supported", errMissingValue, "capability client-confidential-asymmetric needs %q%s", authPrivateKeyJWT, misspelt(d.TokenEndpointAuthMethodsSupported, authPrivateKeyJWT))
		}
		if !contains(d.TokenEndpointAuthSigningAlgValuesSupported, algRS384) && !contains(d.TokenEndpointAuthSigningAlgValuesSupported, algES384) {
			v.add(SeverityError, "token_endpoint_auth_signing_alg_values_supported", errMissingValue, "capability client-confidential-asymmetric needs RS384 or ES384")
		}
	}
	if d.advertises(capabilityClientPublic) && len(d.TokenEndpointAuthMethodsSupported) > 0 && !contains(d.TokenEndpointAuthMethodsSupported, authNone) {
		v.add(SeverityWarning, "token_endpoint_auth_methods_supported", errMissingValue, "capability client-public: public clients authenticate with %q; it is served with it", authNone)
	}
	if contains(d.TokenEndpointAuthMethodsSupported, authNone) && !d.advertises(capabilityClientPublic) {
		v.add(SeverityWarning, "token_endpoint_auth_methods_supported", errUnexpected, "%q (public clients) is listed but capability client-public is not advertised", authNone)
	}
	if d.advertises(capabilityClientConfidentialSymmetric) && len(d.TokenEndpointAuthMethodsSupported) > 0 &&
		!contains(d.TokenEndpointAuthMethodsSupported, authClientSecretBasic) && !contains(d.TokenEndpointAuthMethodsSupported, authClientSecretPost) {
		v.add(SeverityWarning, "token_endpoint_auth_methods_supported", errMissingValue, "capability client-confidential-symmetric but neither client_secret_basic nor client_secret_post")
	}
	for i, a := range d.TokenEndpointAuthSigningAlgValuesSupported {
		if strings.EqualFold(a, "none") {
			v.add(SeverityError, fmt.Sprintf("token_endpoint_auth_signing_alg_values_supported[%d]", i), errForbiddenValue, "%q: unsigned client assertions", a)
		}
	}

	v.url("registration_endpoint", d.RegistrationEndpoint)
	if d.SMARTAppStateEndpoint != "" {
		v.add(SeverityWarning, "smart_app_state_endpoint", errDeprecated, "deprecated in SMART 2.2; list the endpoint in associated_endpoints with capability smart-app-state")
	}
	v.url("smart_app_state_endpoint", d.SMARTAppStateEndpoint)

	for i, e := range d.AssociatedEndpoints {
		f := fmt.Sprintf("associated_endpoints[%d]", i)
		v.required(f+".url", e.URL != "", "")
		v.url(f+".url", e.URL)
		v.required(f+".capabilities", len(e.Capabilities) > 0, "")
		v.capabilities(f+".capabilities", e.Capabilities)
	}

	v.url("user_access_brand_bundle", d.UserAccessBrandBundle)
	if id := d.UserAccessBrandIdentifier; id != nil && id.Value == "" {
		v.add(SeverityError, "user_access_brand_identifier", errInvalidValue, "identifier without a value")
	}

	v.recommended("scopes_supported", len(d.ScopesSupported) > 0)
	v.list("scopes_supported", d.ScopesSupported)
	for i, s := range d.ScopesSupported {
		if strings.ContainsAny(s, " \t\r\n\"\\") {
			v.add(SeverityError, fmt.Sprintf("scopes_supported[%d]", i), errInvalidValue, "%q is not a single scope token", s)
		}
	}
	v.scopeConsistency(d)
	v.recommended("response_types_supported", len(d.ResponseTypesSupported) > 0)
	v.list("response_types_supported", d.ResponseTypesSupported)
	if launch && len(d.ResponseTypesSupported) > 0 && !contains(d.ResponseTypesSupported, responseTypeCode) {
		v.add(SeverityWarning, "response_types_supported", errMissingValue, "launch capabilities use response_type %q", responseTypeCode)
	}
	v.recommended("management_endpoint", d.ManagementEndpoint != "")
	v.url("management_endpoint", d.ManagementEndpoint)
	v.recommended("introspection_endpoint", d.IntrospectionEndpoint != "")
	v.url("introspection_endpoint", d.IntrospectionEndpoint)
	v.recommended("revocation_endpoint", d.RevocationEndpoint != "")
	v.url("revocation_endpoint", d.RevocationEndpoint)

	v.required("capabilities", len(d.Capabilities) > 0, "")
	v.capabilities("capabilities", d.Capabilities)

	v.required("code_challenge_methods_supported", len(d.CodeChallengeMethodsSupported) > 0, "")
	v.list("code_challenge_methods_supported", d.CodeChallengeMethodsSupported)
	if len(d.CodeChallengeMethodsSupported) > 0 && !contains(d.CodeChallengeMethodsSupported, codeChallengeS256) {
		v.add(SeverityError, "code_challenge_methods_supported", errMissingValue, "S256 must be listed%s", misspelt(d.CodeChallengeMethodsSupported, codeChallengeS256))
	}
	for i, m := range d.CodeChallengeMethodsSupported {
		if strings.EqualFold(m, codeChallengePlain) {
			v.add(SeverityError, fmt.Sprintf("code_challenge_methods_supported[%d]", i), errForbiddenValue, "%q must not be listed", m)
		}
	}

	for _, k := range slices.Sorted(maps.Keys(d.Extensions)) {
		if standardMembers[k] {
			v.add(SeverityError, k, errReservedExtension, "extension %q collides with a standard member", k)
		} else if !json.Valid(d.Extensions[k]) {
			v.add(SeverityError, k, errInvalidValue, "extension %q is not valid JSON", k)
		}
	}
	return v.ps
}

// scopeConsistency warns when scopes_supported offers scopes whose
// capability (or grant type) the document does not advertise.
func (v *validator) scopeConsistency(d *Document) {
	for i, s := range d.ScopesSupported {
		if what, ok, _ := scopeNeeds(d, s); !ok {
			v.add(SeverityWarning, fmt.Sprintf("scopes_supported[%d]", i), errMissingValue, "%q is offered but %s is not advertised", s, what)
		}
	}
}

// scopeNeeds says what scope s needs from d: a capability or grant type
// (what), whether d advertises it (ok), and whether s is a scope SMART
// defines at all (known). A SMART resource scope may need two things (its
// context and its syntax); what names the first one missing.
func scopeNeeds(d *Document, s string) (what string, ok, known bool) {
	has := func(c string) bool { return d.advertises(c) }
	launch := has(capabilityLaunchEHR) || has(capabilityLaunchStandalone)
	switch s {
	case "openid", "fhirUser", "profile":
		return "capability sso-openid-connect", has(capabilitySSOOpenIDConnect), true
	case "offline_access":
		return "capability permission-offline", has(capabilityPermissionOffline), true
	case "online_access":
		return "capability permission-online", has(capabilityPermissionOnline), true
	case "launch":
		return "capability launch-ehr", has(capabilityLaunchEHR), true
	case "launch/patient":
		return "capability context-ehr-patient or context-standalone-patient",
			has(capabilityContextEHRPatient) || has(capabilityContextStandalonePatient), true
	case "launch/encounter":
		return "capability context-ehr-encounter or context-standalone-encounter",
			has(capabilityContextEHREncounter) || has(capabilityContextStandaloneEncounter), true
	}
	ctx, rest, found := strings.Cut(s, "/")
	if !found {
		return "", true, false
	}
	switch ctx {
	case "launch":
		// launch/<type>, launch/<type>?role=...: other launch context.
		return "capability launch-ehr or launch-standalone", launch, true
	case "patient":
		what, ok = "capability permission-patient", has(capabilityPermissionPatient)
	case "user":
		what, ok = "capability permission-user", has(capabilityPermissionUser)
	case "system":
		what, ok = "grant type client_credentials", contains(d.GrantTypesSupported, grantClientCredentials)
	default:
		return "", true, false
	}
	rest, _, _ = strings.Cut(rest, "?") // granular constraints may hold dots
	dot := strings.LastIndexByte(rest, '.')
	if dot < 0 {
		return what, ok, false
	}
	perm := rest[dot+1:]
	var syntax string
	switch {
	case perm == "read" || perm == "write" || perm == "*":
		syntax = capabilityPermissionV1
	case perm != "" && strings.Trim(perm, "cruds") == "":
		syntax = capabilityPermissionV2
	default:
		return what, ok, false
	}
	if !ok {
		return what, false, true
	}
	return "capability " + syntax, has(syntax), true
}
