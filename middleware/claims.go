package middleware

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"
)

// ClaimNames says where the SMART launch context and the token facts are
// found in JWT claims or an introspection response. The zero value uses
// the SMART names; set a field to follow an authorisation server that uses
// other names (for example Patient: "patient_id").
type ClaimNames struct {
	// Context, when set, names an object claim holding the launch-context
	// claims (Patient, Encounter, FHIRContext, NeedPatientBanner,
	// SMARTStyleURL, Tenant, FHIRUser); a claim missing from it is then
	// looked up at the top level.
	Context string

	Scope             string // default "scope" (a space-separated string)
	ScopeArray        string // default "scp" (an array of strings), used when Scope is absent
	ClientID          string // default "client_id"
	Patient           string // default "patient"
	Encounter         string // default "encounter"
	FHIRUser          string // default "fhirUser"
	FHIRContext       string // default "fhirContext"
	NeedPatientBanner string // default "need_patient_banner"
	SMARTStyleURL     string // default "smart_style_url"
	Tenant            string // default "tenant"
}

func (n ClaimNames) withDefaults() ClaimNames {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&n.Scope, "scope")
	def(&n.ScopeArray, "scp")
	def(&n.ClientID, "client_id")
	def(&n.Patient, "patient")
	def(&n.Encounter, "encounter")
	def(&n.FHIRUser, "fhirUser")
	def(&n.FHIRContext, "fhirContext")
	def(&n.NeedPatientBanner, "need_patient_banner")
	def(&n.SMARTStyleURL, "smart_style_url")
	def(&n.Tenant, "tenant")
	return n
}

// claimRules are the checks applied to a claim set.
type claimRules struct {
	issuers         []string // accepted iss values; empty: not checked (introspection only)
	requireIssuer   bool     // iss must be present (JWT)
	audience        string   // the FHIR base URL
	requireAudience bool     // aud must be present (JWT; introspection unless AllowMissingAudience)
	leeway          time.Duration
	maxLifetime     time.Duration
	names           ClaimNames
	scopes          *scopeCache
}

// buildToken checks the registered claims of m against the rules and maps
// the claims onto a Token. now is the current time.
func (r *claimRules) buildToken(m map[string]any, now time.Time) (*Token, error) {
	t := &Token{Claims: m}
	var err error

	// iss
	if v, ok := m["iss"]; ok {
		s, isStr := v.(string)
		if !isStr {
			return nil, fmt.Errorf("%w: iss is not a string", errIssuer)
		}
		if len(r.issuers) > 0 && !inList(r.issuers, s) {
			return nil, fmt.Errorf("%w: %q", errIssuer, logTrunc(s, 128))
		}
		t.Issuer = s
	} else if r.requireIssuer {
		return nil, fmt.Errorf("%w: iss missing", errIssuer)
	}

	// aud
	if v, ok := m["aud"]; ok {
		if t.Audience, err = stringOrArray(v); err != nil || len(t.Audience) == 0 {
			return nil, fmt.Errorf("%w: aud is not a string or an array of strings", errAudience)
		}
		if !inList(t.Audience, r.audience) {
			return nil, fmt.Errorf("%w: %q does not contain the FHIR base URL", errAudience, logTrunc(strings.Join(t.Audience, " "), 128))
		}
	} else if r.requireAudience {
		return nil, fmt.Errorf("%w: aud missing", errAudience)
	}

	// Times.
	exp, ok, err := numericDate(m, "exp")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: exp missing", errClaims)
	}
	nowS := float64(now.UnixNano()) / 1e9
	lw := r.leeway.Seconds()
	if nowS >= exp+lw {
		return nil, fmt.Errorf("%w: exp %.0f is %.0f s in the past", ErrTokenExpired, exp, nowS-exp)
	}
	if nbf, ok, err := numericDate(m, "nbf"); err != nil {
		return nil, err
	} else if ok && nbf > nowS+lw {
		return nil, fmt.Errorf("%w: nbf is %.0f s in the future", errTokenNotYetValid, nbf-nowS)
	}
	iat, hasIat, err := numericDate(m, "iat")
	if err != nil {
		return nil, err
	}
	if hasIat && iat > nowS+lw {
		return nil, fmt.Errorf("%w: iat is %.0f s in the future", errTokenNotYetValid, iat-nowS)
	}
	if r.maxLifetime > 0 {
		limit := r.maxLifetime.Seconds()
		if hasIat {
			if life := exp - iat; life > limit {
				return nil, fmt.Errorf("%w: exp - iat = %.0f s, MaxLifetime = %.0f s", errTokenLifetime, life, limit)
			}
		} else if rest := exp - nowS; rest > limit+lw {
			return nil, fmt.Errorf("%w: no iat and exp - now = %.0f s, MaxLifetime = %.0f s", errTokenLifetime, rest, limit)
		}
	}
	t.Expiry = secondsToTime(exp)
	if hasIat {
		t.IssuedAt = secondsToTime(iat)
	}

	// Sender-constrained tokens need a proof this middleware does not check
	// (threat model A23): fail closed.
	if _, ok := m["cnf"]; ok {
		return nil, fmt.Errorf("%w: sender-constrained token (cnf) presented as a bearer token", errClaims)
	}

	if t.Subject, err = optString(m, "sub"); err != nil {
		return nil, err
	}
	n := r.names
	if t.ClientID, err = optString(m, n.ClientID); err != nil {
		return nil, err
	}

	// Scopes.
	var scopeText string
	if v, ok := m[n.Scope]; ok {
		s, isStr := v.(string)
		if !isStr {
			return nil, fmt.Errorf("%w: %s is not a string", errClaims, n.Scope)
		}
		scopeText = s
	} else if v, ok := m[n.ScopeArray]; ok {
		list, err := stringOrArray(v)
		if err != nil {
			return nil, fmt.Errorf("%w: %s is not an array of strings", errClaims, n.ScopeArray)
		}
		for _, s := range list {
			if strings.ContainsAny(s, " \t\r\n") {
				return nil, fmt.Errorf("%w: %s entry contains white space", errClaims, n.ScopeArray)
			}
		}
		scopeText = strings.Join(list, " ")
	}
	t.Scopes = r.scopes.get(scopeText)

	// Launch context.
	ctxObj := m
	if n.Context != "" {
		if v, ok := m[n.Context]; ok {
			o, isObj := v.(map[string]any)
			if !isObj {
				return nil, fmt.Errorf("%w: %s is not an object", errClaims, n.Context)
			}
			ctxObj = o
		}
	}
	get := func(name string) (any, bool) {
		if v, ok := ctxObj[name]; ok {
			return v, true
		}
		v, ok := m[name]
		return v, ok
	}
	// patient, encounter and fhirUser that cannot be read exactly (another
	// JSON type than a string, null included; a string that is not a FHIR
	// id, or for fhirUser not a reference to a user) leave the token
	// without that context: never a crash, never a coerced value (the
	// number 123 is not patient "123"). The token stays valid for what
	// needs no context (system/ grants), and Authorize refuses, with 403,
	// every grant the claim would have held: patient/ grants without a
	// patient, user/ grants when fhirUser is unreadable (dropping it would
	// free them from the Patient compartment a Patient user is held to),
	// and under EnforceEncounter patient-held grants when the encounter is
	// unreadable. Token.UnreadableContext names the claims (never their
	// values) for logs and policies.
	if v, ok := get(n.Patient); ok {
		if t.Patient, err = contextID(v, "Patient"); err != nil {
			t.unreadable = append(t.unreadable, n.Patient+": "+err.Error())
		}
	}
	if v, ok := get(n.Encounter); ok {
		if t.Encounter, err = contextID(v, "Encounter"); err != nil {
			t.unreadable = append(t.unreadable, n.Encounter+": "+err.Error())
			t.badEncounter = true
		}
	}
	if v, ok := get(n.FHIRUser); ok {
		if t.FHIRUser, err = fhirUser(v); err != nil {
			t.unreadable = append(t.unreadable, n.FHIRUser+": "+err.Error())
			t.badFHIRUser = true
		}
	}
	if v, ok := get(n.FHIRContext); ok {
		if t.FHIRContext, err = fhirContext(v); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", errClaims, n.FHIRContext, err)
		}
	}
	if v, ok := get(n.NeedPatientBanner); ok {
		b, isBool := v.(bool)
		if !isBool {
			return nil, fmt.Errorf("%w: %s is not a boolean", errClaims, n.NeedPatientBanner)
		}
		t.NeedPatientBanner = b
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{n.SMARTStyleURL, &t.SMARTStyleURL}, {n.Tenant, &t.Tenant}} {
		if v, ok := get(f.name); ok {
			s, isStr := v.(string)
			if !isStr {
				return nil, fmt.Errorf("%w: %s is not a string", errClaims, f.name)
			}
			*f.dst = s
		}
	}
	return t, nil
}

func inList(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// stringOrArray reads a JSON string or an array of strings.
func stringOrArray(v any) ([]string, error) {
	switch v := v.(type) {
	case string:
		return []string{v}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, errors.New("array member is not a string")
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, errors.New("not a string or an array")
}

// numericDate reads a NumericDate claim (RFC 7519 §2): a JSON number of
// seconds, finite and within the range of time.Time arithmetic.
func numericDate(m map[string]any, name string) (float64, bool, error) {
	v, ok := m[name]
	if !ok {
		return 0, false, nil
	}
	f, isNum := v.(float64)
	if !isNum || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1<<40 {
		return 0, false, fmt.Errorf("%w: %s is not a valid NumericDate", errClaims, name)
	}
	return f, true, nil
}

func secondsToTime(f float64) time.Time {
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC()
}

func optString(m map[string]any, name string) (string, error) {
	v, ok := m[name]
	if !ok {
		return "", nil
	}
	s, isStr := v.(string)
	if !isStr {
		return "", fmt.Errorf("%w: %s is not a string", errClaims, name)
	}
	return s, nil
}

// validID reports whether s is a FHIR id: [A-Za-z0-9\-\.]{1,64}.
func isFHIRID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// validTypeName reports whether s looks like a FHIR resource type name.
func isTypeName(s string) bool {
	if len(s) == 0 || len(s) > 64 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// contextID reads a patient or encounter context value: "123" or
// "Patient/123", reduced to the id and validated as a FHIR id.
func contextID(v any, typ string) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", notAString(v)
	}
	if rest, found := strings.CutPrefix(s, typ+"/"); found {
		s = rest
	}
	if !isFHIRID(s) {
		return "", errors.New("not a FHIR id")
	}
	return s, nil
}

// notAString describes a claim value of another JSON type than a string,
// for logs (never the value itself).
func notAString(v any) error {
	kind := "an object"
	switch v.(type) {
	case nil:
		kind = "null"
	case bool:
		kind = "a boolean"
	case float64, int64, int, json.Number:
		kind = "a number"
	case []any:
		kind = "an array"
	}
	return fmt.Errorf("%s, not a string", kind)
}

// fhirUserTypes are the resource types fhirUser may name (SMART 2.1+).
var fhirUserTypes = []string{"Patient", "Practitioner", "PractitionerRole", "RelatedPerson", "Person"}

// fhirUser validates a fhirUser claim: a relative reference "Type/id" or an
// absolute http(s) URL ending in "/Type/id" (nothing after the id, not
// even an empty query or fragment). It is kept as sent.
func fhirUser(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", notAString(v)
	}
	ref := s
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return "", errors.New("not an absolute http(s) URL")
		}
		p := u.EscapedPath()
		i := strings.LastIndexByte(p, '/')
		if i <= 0 {
			return "", errors.New("URL does not end in Type/id")
		}
		j := strings.LastIndexByte(p[:i], '/')
		ref = p[j+1:]
		if !strings.HasSuffix(s, "/"+ref) {
			return "", errors.New("URL does not end in Type/id")
		}
	}
	typ, id, found := strings.Cut(ref, "/")
	if !found || !inList(fhirUserTypes, typ) || !isFHIRID(id) {
		return "", errors.New("not a reference to a Patient, Practitioner, PractitionerRole, RelatedPerson or Person")
	}
	return s, nil
}

// fhirContext decodes the SMART fhirContext claim: an array of 2.0 strings
// ("DiagnosticReport/123") or 2.1/2.2 objects.
func fhirContext(v any) ([]ContextItem, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, errors.New("not an array")
	}
	out := make([]ContextItem, 0, len(list))
	for i, e := range list {
		var it ContextItem
		switch e := e.(type) {
		case string:
			if !isRelativeRef(e) {
				return nil, fmt.Errorf("item %d is not a relative reference", i)
			}
			it.Reference = e
		case map[string]any:
			for name, dst := range map[string]*string{"reference": &it.Reference, "canonical": &it.Canonical, "type": &it.Type, "role": &it.Role} {
				if fv, ok := e[name]; ok {
					s, isStr := fv.(string)
					if !isStr || s == "" {
						return nil, fmt.Errorf("item %d: %s is not a non-empty string", i, name)
					}
					*dst = s
				}
			}
			if idv, ok := e["identifier"]; ok {
				id, isObj := idv.(map[string]any)
				if !isObj {
					return nil, fmt.Errorf("item %d: identifier is not an object", i)
				}
				it.Identifier = id
			}
			if it.Reference == "" && it.Canonical == "" && it.Identifier == nil {
				return nil, fmt.Errorf("item %d has no reference, canonical or identifier", i)
			}
			if it.Reference != "" && !isRelativeRef(it.Reference) {
				return nil, fmt.Errorf("item %d: reference is not a relative reference", i)
			}
			if it.Type != "" && !isTypeName(it.Type) {
				return nil, fmt.Errorf("item %d: type is not a resource type", i)
			}
		default:
			return nil, fmt.Errorf("item %d is not a string or an object", i)
		}
		out = append(out, it)
	}
	return out, nil
}

// validReference reports whether s is a relative reference "Type/id".
func isRelativeRef(s string) bool {
	typ, id, ok := strings.Cut(s, "/")
	return ok && isTypeName(typ) && isFHIRID(id)
}
