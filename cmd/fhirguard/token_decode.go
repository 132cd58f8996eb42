package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fhirguard/fhirguard/fhir"
	"github.com/fhirguard/fhirguard/internal/fhirjson"
	"github.com/fhirguard/fhirguard/internal/scopeexplain"
)

// Token formats, the format member of the report.
const (
	formatJWT       = "jwt"       // a compact JWS: header.payload.signature
	formatJWSJSON   = "jwsJson"   // a JWS in JSON serialization
	formatJWE       = "jwe"       // a compact JWE (five parts): encrypted claims
	formatOpaque    = "opaque"    // no JWT structure: only introspection resolves it
	formatMalformed = "malformed" // neither: not a bearer token, or a broken JWT
)

// Problem severities, most serious first.
const (
	sevDanger  = "danger"  // a header member that signals an attack on lax verifiers
	sevError   = "error"   // a server following the rules (fhirguard) refuses the token for it
	sevWarning = "warning" // questionable, or refused by some configurations
	sevInfo    = "info"    // worth knowing
)

// Limits of fhirguard's middleware that the decoder mirrors (its
// defaults).
const (
	defaultMaxTokenBytes = 16 << 10
	defaultMaxLifetime   = time.Hour
	maxKidLen            = 256
)

// tokenJSON is the middleware's reader of token headers and claims: the
// kit's strict JSON rules (no duplicate member, valid UTF-8), 32 levels.
var tokenJSON = fhirjson.Options{Mode: fhirjson.Plain, MaxDepth: fhirjson.MaxTokenDepth}

// acceptedAlgs are the JWS algorithms the middleware accepts by default.
var acceptedAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// tokenProblem is one thing wrong with, or worth knowing about, the token.
type tokenProblem struct {
	Severity string `json:"severity"` // danger, error, warning or info
	Field    string `json:"field"`    // "token", "header.jwk", "claims.exp", ...
	Message  string `json:"message"`
}

// timeClaim is a NumericDate claim (exp, iat, nbf) in readable form.
type timeClaim struct {
	Claim    string  `json:"claim"`
	Unix     float64 `json:"unix"`
	Time     string  `json:"time"`     // RFC 3339, UTC
	Relative string  `json:"relative"` // "expires in 42m", "expired 3h ago"
}

// scopeGrant is the scope claim and what it grants.
type scopeGrant struct {
	// Claim is "scope" (a string) or "scp" (an array, used when scope is
	// absent), as the middleware reads them.
	Claim string `json:"claim"`
	Value string `json:"value"`
	// Valid says every scope of the string parses.
	Valid bool `json:"valid"`
	// Effective is what the scopes grant, per context and type, as the
	// middleware enforces them (scope explain's effective permissions).
	Effective []scopeexplain.Effective `json:"effective"`
	// Invalid lists the scopes that do not parse and grant nothing.
	Invalid []invalidScope `json:"invalid"`
}

type invalidScope struct {
	Scope string `json:"scope"`
	Error string `json:"error"`
}

// decoded is what decodeToken learned from the token alone.
type decoded struct {
	format         string
	description    string
	parts          int
	decoded        bool
	header         map[string]any
	headerOrder    []string // member names in the order written
	signatureBytes int
	claims         map[string]any
	times          []timeClaim
	scope          *scopeGrant
	problems       []tokenProblem
}

func (d *decoded) add(sev, field, format string, args ...any) {
	d.problems = append(d.problems, tokenProblem{Severity: sev, Field: field, Message: fmt.Sprintf(format, args...)})
}

// decodeToken reads raw without verifying anything: its format, JOSE
// header, claims and the problems a careful server would find. now is the
// time relative times refer to.
func decodeToken(raw string, now time.Time) *decoded {
	d := &decoded{}
	if raw == "" {
		d.format, d.description = formatMalformed, "empty: no token"
		d.add(sevError, "token", "the token is empty")
		return d
	}
	if len(raw) > defaultMaxTokenBytes {
		d.add(sevWarning, "token", "%d bytes: larger than the %d KiB fhirguard accepts by default (AuthConfig.MaxTokenBytes)", len(raw), defaultMaxTokenBytes>>10)
	}
	if t := strings.TrimLeft(raw, " \t\r\n"); strings.HasPrefix(t, "{") {
		d.decodeJSONSerialization(t, now)
		return d
	}
	if off, c, ok := notB64Token(raw); ok {
		d.format, d.description = formatMalformed, "not a bearer token"
		d.add(sevError, "token", "character %s at offset %d is not a b64token character (RFC 6750 §2.1: letters, digits, - . _ ~ + / and trailing =): a server answers 400 invalid_request", quoteRune(c), off)
		if strings.Count(raw, ".") == 2 {
			// Say what the parts hold anyway: a pasted token with a
			// line break, say.
			d.decodeCompact(strings.Map(dropSpace, raw), now, false)
			d.format, d.description = formatMalformed, "not a bearer token"
			d.decoded = false
		}
		return d
	}
	d.decodeCompact(raw, now, true)
	return d
}

func dropSpace(r rune) rune {
	if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
		return -1
	}
	return r
}

// notB64Token returns the offset of the first byte of raw that a b64token
// (RFC 6750 §2.1) cannot hold there.
func notB64Token(raw string) (int, rune, bool) {
	end := len(strings.TrimRight(raw, "="))
	if end == 0 {
		return 0, '=', true
	}
	for i, c := range raw[:end] {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("-._~+/", c)) {
			return i, c, true
		}
	}
	return 0, 0, false
}

func quoteRune(c rune) string {
	switch c {
	case ' ':
		return "' ' (a space)"
	case '\n':
		return `'\n' (a line break)`
	}
	return strconv.QuoteRune(c)
}

// decodeCompact reads a compact serialization (dot-separated parts).
// bearer is false when raw is not a b64token (the caller said so).
func (d *decoded) decodeCompact(raw string, now time.Time, bearer bool) {
	parts := strings.Split(raw, ".")
	d.parts = len(parts)
	if len(parts) == 1 {
		d.format, d.description = formatOpaque, "an opaque token (no JWT structure)"
		d.add(sevInfo, "token", "an opaque token: it means nothing outside its authorization server; only introspection (RFC 7662, --introspection-url) can tell whether it is active and what it grants")
		return
	}
	hdr, hdrErr := decodeSegment(parts[0])
	if hdrErr != nil || !bytes.HasPrefix(bytes.TrimLeft(hdr, " \t\r\n"), []byte("{")) {
		// Not a JWT header: the middleware takes such a token for an
		// opaque one (introspection) when it has a dot but no JSON header.
		if len(parts) == 3 || len(parts) == 5 {
			if lenient, err := decodeLenient(parts[0]); err == nil && bytes.HasPrefix(bytes.TrimLeft(lenient, " \t\r\n"), []byte("{")) {
				d.format, d.description = formatMalformed, fmt.Sprintf("a JWT with a badly encoded header (%d parts)", len(parts))
				d.add(sevError, "header", "not base64url: %s", describeB64Error(parts[0], hdrErr))
				d.readHeader(lenient)
				d.readPayloadSegment(parts, now)
				return
			}
		}
		d.format, d.description = formatOpaque, fmt.Sprintf("an opaque token (%d dot-separated parts, but no JSON header)", len(parts))
		d.add(sevInfo, "token", "not a JWT: its first part is not a base64url JSON object. A server taking it for an opaque token can only introspect it (RFC 7662, --introspection-url)")
		return
	}
	d.readHeader(hdr)

	switch len(parts) {
	case 3:
		d.format, d.description = formatJWT, "a signed JWT (compact JWS)"
		if alg, _ := d.header["alg"].(string); strings.EqualFold(alg, "none") {
			d.description = "an unsigned JWT (alg none)"
		}
	case 5:
		d.format, d.description = formatJWE, "an encrypted JWT (compact JWE)"
		alg, _ := d.header["alg"].(string)
		enc, _ := d.header["enc"].(string)
		d.add(sevError, "token", "a JWE (alg %s, enc %s): its claims are encrypted and can only be read with the decryption key; fhirguard verifies signed JWTs (JWS) only and refuses it", oneLine(alg), oneLine(enc))
		return
	default:
		d.format, d.description = formatMalformed, fmt.Sprintf("a broken JWT (%d parts)", len(parts))
		d.add(sevError, "token", "%d dot-separated parts: a signed JWT has three (header.payload.signature)", len(parts))
	}
	d.readPayloadSegment(parts, now)
	if len(parts) != 3 {
		d.decoded = false
		return
	}
	sig := parts[2]
	if sig == "" {
		if alg, _ := d.header["alg"].(string); !strings.EqualFold(alg, "none") {
			d.add(sevError, "signature", "empty: the token is not signed")
		}
	} else if b, err := decodeSegment(sig); err != nil {
		d.add(sevError, "signature", "not base64url: %s", describeB64Error(sig, err))
		d.decoded = false
	} else {
		d.signatureBytes = len(b)
	}
	if !bearer {
		d.decoded = false
	}
}

// readPayloadSegment reads the claims in parts[1] (when there is one).
func (d *decoded) readPayloadSegment(parts []string, now time.Time) {
	if len(parts) < 2 {
		return
	}
	payload, err := decodeSegment(parts[1])
	if err != nil {
		d.add(sevError, "payload", "not base64url: %s", describeB64Error(parts[1], err))
		if lenient, lerr := decodeLenient(parts[1]); lerr == nil {
			d.readClaims(lenient, now)
		}
		return
	}
	if d.readClaims(payload, now) && d.header != nil {
		d.decoded = true
	}
}

// decodeJSONSerialization reads a JWS in JSON serialization (RFC 7515
// §7.2), which no bearer token can be.
func (d *decoded) decodeJSONSerialization(raw string, now time.Time) {
	d.format, d.description = formatJWSJSON, "a JWS in JSON serialization"
	d.add(sevError, "token", "JWS JSON serialization: not a bearer token (braces and quotes are not b64token characters), so a server answers 400 invalid_request; send the compact form header.payload.signature")
	var doc map[string]any
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		d.format, d.description = formatMalformed, "not a token: starts with { but is not a JSON object"
		d.problems = d.problems[:0]
		d.add(sevError, "token", "starts with { but is not a JSON object: %v", err)
		return
	}
	sigs := doc
	if arr, ok := doc["signatures"].([]any); ok {
		if len(arr) == 0 {
			d.add(sevError, "signatures", "empty array: no signature")
			return
		}
		if len(arr) > 1 {
			d.add(sevWarning, "signatures", "%d signatures; only the first is shown", len(arr))
		}
		sigs, _ = arr[0].(map[string]any)
	}
	prot, _ := sigs["protected"].(string)
	payload, _ := doc["payload"].(string)
	sig, _ := sigs["signature"].(string)
	d.parts = 3
	if _, ok := sigs["header"]; ok {
		d.add(sevWarning, "header", "an unprotected header: its members are not covered by the signature")
	}
	hdr, err := decodeSegment(prot)
	if err != nil || prot == "" {
		d.add(sevError, "protected", "missing or not base64url")
		return
	}
	d.readHeader(hdr)
	d.readPayloadSegment([]string{prot, payload}, now)
	if b, err := decodeSegment(sig); err == nil {
		d.signatureBytes = len(b)
	}
}

// decodeSegment decodes a base64url segment exactly as the middleware
// does: the URL alphabet, no padding, no white space, canonical.
func decodeSegment(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return nil, fmt.Errorf("character %q at offset %d", c, i)
		}
	}
	return base64.RawURLEncoding.Strict().DecodeString(s)
}

// decodeLenient decodes s in any base64 variant, for display only.
func decodeLenient(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	s = strings.NewReplacer("+", "-", "/", "_").Replace(s)
	return base64.RawURLEncoding.DecodeString(s)
}

func describeB64Error(seg string, err error) string {
	switch {
	case strings.Contains(seg, "="):
		return "it has '=' padding, which base64url in a JWT never has (RFC 7515 §2)"
	case strings.ContainsAny(seg, "+/"):
		return "it uses standard base64 ('+' or '/'), not base64url ('-' and '_')"
	case err == nil:
		return "not a JSON object"
	}
	if e, ok := err.(base64.CorruptInputError); ok {
		return fmt.Sprintf("corrupt at offset %d (a truncated or non-canonical encoding)", int64(e))
	}
	return err.Error()
}

// readHeader decodes the JOSE header and notes its dangerous members.
func (d *decoded) readHeader(b []byte) {
	h, order, ok := d.readObject("header", b)
	if !ok {
		return
	}
	d.header, d.headerOrder = h, order
	d.checkHeader()
}

// readObject decodes a JSON object under the middleware's strict rules,
// falling back to a lenient reading (for display) when they refuse it.
func (d *decoded) readObject(field string, b []byte) (map[string]any, []string, bool) {
	obj, err := fhirjson.Decode(b, tokenJSON)
	if err != nil {
		var lenient map[string]any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if lerr := dec.Decode(&lenient); lerr != nil || lenient == nil {
			d.add(sevError, field, "not a JSON object: %s", oneLine(err.Error()))
			return nil, nil, false
		}
		d.add(sevError, field, "fhirguard's strict JSON reader refuses it: %s (JSON parsers may disagree about such a document)", oneLine(err.Error()))
		obj = lenient // encoding/json replaced any invalid UTF-8
	}
	return obj, memberOrder(b), true
}

// memberOrder returns the top-level member names of the JSON object b, in
// order, first occurrence only.
func memberOrder(b []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	var names []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return names
		}
		name, _ := t.(string)
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return names
		}
	}
	return names
}

// checkHeader notes the header members a verifier must not trust.
func (d *decoded) checkHeader() {
	h := d.header
	alg, isStr := h["alg"].(string)
	switch {
	case !isStr:
		d.add(sevError, "header.alg", "missing or not a string: the token cannot be verified")
	case strings.EqualFold(alg, "none"):
		d.add(sevDanger, "header.alg", "%q: an unsigned token that anyone can forge; never accept it (fhirguard never does)", alg)
	case strings.HasPrefix(strings.ToUpper(alg), "HS"):
		d.add(sevDanger, "header.alg", "%s: HMAC with a shared secret. Against a server that publishes public keys this is the RS/HS algorithm-confusion attack (the public key used as the secret); fhirguard accepts HMAC only when configured with a secret (JWTAuth)", oneLine(alg))
	case !slices.Contains(acceptedAlgs, alg) && d.header["enc"] == nil:
		d.add(sevError, "header.alg", "%q is not an algorithm fhirguard accepts (%s)", oneLine(alg), strings.Join(acceptedAlgs, ", "))
	}
	for _, name := range []string{"jwk", "jku", "x5u", "x5c"} {
		v, ok := h[name]
		if !ok {
			continue
		}
		switch name {
		case "jwk":
			d.add(sevDanger, "header.jwk", "the token carries its own verification key: a verifier that uses it accepts tokens signed by anyone. Keys must come from the authorization server's JWKS; fhirguard ignores this member")
		case "jku", "x5u":
			s, _ := v.(string)
			d.add(sevDanger, "header."+name, "a key URL chosen by the token (%s): a verifier that fetches it can be led to the attacker's keys, or made to send requests anywhere (SSRF); fhirguard never fetches it", truncate(oneLine(s), 120))
		case "x5c":
			d.add(sevDanger, "header.x5c", "the token carries its own certificate chain: a verifier that trusts it without checking the chain against its own roots accepts anyone's key; fhirguard ignores this member")
		}
	}
	if v, ok := h["crit"]; ok {
		d.add(sevDanger, "header.crit", "critical extensions %s: a verifier must refuse the token unless it understands them all (RFC 7515 §4.1.11); fhirguard refuses any crit", truncate(compactJSON(v), 120))
	}
	if v, ok := h["b64"]; ok {
		if v == false {
			d.add(sevDanger, "header.b64", "false: an unencoded payload (RFC 7797) whose signature covers other bytes than a JWT verifier reads; fhirguard refuses it")
		} else {
			d.add(sevError, "header.b64", "present: fhirguard refuses the b64 member (RFC 7797)")
		}
	}
	for _, name := range []string{"zip", "cty"} {
		if _, ok := h[name]; ok && d.header["enc"] == nil {
			d.add(sevError, "header."+name, "fhirguard refuses tokens with %s (a compressed or nested token is no access token)", name)
		}
	}
	if v, ok := h["kid"]; ok {
		if s, isStr := v.(string); !isStr || len(s) > maxKidLen {
			d.add(sevError, "header.kid", "not a string of at most %d bytes: fhirguard refuses it", maxKidLen)
		}
	} else if d.header["enc"] == nil {
		d.add(sevInfo, "header.kid", "no kid: a server can only verify it when its key set holds a single key")
	}
	if v, ok := h["typ"]; !ok {
		if d.header["enc"] == nil {
			d.add(sevInfo, "header.typ", "no typ: RFC 9068 access tokens say at+jwt (servers requiring it refuse this token; fhirguard accepts it unless StrictTokenType)")
		}
	} else if s, isStr := v.(string); !isStr {
		d.add(sevError, "header.typ", "not a string: fhirguard refuses it")
	} else {
		switch strings.ToLower(s) {
		case "at+jwt", "application/at+jwt":
		case "jwt", "application/jwt":
			d.add(sevInfo, "header.typ", "%q: not at+jwt (RFC 9068); fhirguard accepts it unless StrictTokenType. An id_token also says JWT: never send an id_token as an access token", s)
		default:
			d.add(sevError, "header.typ", "%q: not an access token type (at+jwt or JWT); fhirguard refuses it", truncate(oneLine(s), 64))
		}
	}
}

// readClaims decodes the claims and notes their problems; it reports
// whether they are a JSON object.
func (d *decoded) readClaims(b []byte, now time.Time) bool {
	c, _, ok := d.readObject("claims", b)
	if !ok {
		return false
	}
	d.claims = c
	d.checkClaims(now)
	return true
}

func (d *decoded) checkClaims(now time.Time) {
	c := d.claims
	if v, ok := c["iss"]; !ok {
		d.add(sevError, "claims.iss", "missing: fhirguard refuses a JWT without issuer")
	} else if _, isStr := v.(string); !isStr {
		d.add(sevError, "claims.iss", "not a string")
	}
	if v, ok := c["aud"]; !ok {
		d.add(sevError, "claims.aud", "missing: fhirguard refuses a token without audience (the FHIR base URL)")
	} else if aud, ok := stringOrArray(v); !ok || len(aud) == 0 {
		d.add(sevError, "claims.aud", "not a string or an array of strings")
	}
	for _, name := range []string{"client_id", "sub"} {
		if v, ok := c[name]; ok {
			if _, isStr := v.(string); !isStr {
				d.add(sevWarning, "claims."+name, "not a string")
			}
		}
	}

	// Times.
	vals := map[string]float64{}
	for _, name := range []string{"exp", "iat", "nbf"} {
		v, ok := c[name]
		if !ok {
			continue
		}
		secs, err := numericDate(v)
		if err != nil {
			d.add(sevError, "claims."+name, "%v: fhirguard refuses the token", err)
			continue
		}
		vals[name] = secs
		d.times = append(d.times, timeClaim{Claim: name, Unix: secs, Time: formatUnix(secs), Relative: relative(name, secs, now)})
	}
	nowS := float64(now.UnixNano()) / 1e9
	exp, hasExp := vals["exp"]
	iat, hasIat := vals["iat"]
	_, expPresent := c["exp"]
	switch {
	case !expPresent:
		d.add(sevError, "claims.exp", "missing: a token without expiry is never accepted")
	case hasExp && nowS >= exp:
		d.add(sevError, "claims.exp", "the token %s", relative("exp", exp, now))
	}
	if nbf, ok := vals["nbf"]; ok && nbf > nowS {
		d.add(sevError, "claims.nbf", "not valid yet: %s", relative("nbf", nbf, now))
	}
	if hasIat && iat > nowS {
		d.add(sevWarning, "claims.iat", "in the future (%s): the issuer's clock is ahead; beyond the allowed skew (30 s by default) fhirguard refuses it", relative("iat", iat, now))
	}
	if hasExp && hasIat && exp-iat > defaultMaxLifetime.Seconds() {
		d.add(sevWarning, "claims.exp", "lifetime %s (exp - iat): longer than the hour SMART recommends; fhirguard refuses it by default (AuthConfig.MaxLifetime)", duration(exp-iat))
	}
	if hasExp && hasIat && exp < iat {
		d.add(sevError, "claims.exp", "before iat")
	}

	// The SMART context.
	for _, name := range []string{"patient", "encounter"} {
		v, ok := c[name]
		if !ok {
			continue
		}
		s, isStr := v.(string)
		switch {
		case !isStr:
			d.add(sevError, "claims."+name, "%s, not a string: fhirguard leaves it unread and refuses the grants it would hold", jsonKind(v))
		case !fhir.ValidID(strings.TrimPrefix(s, map[string]string{"patient": "Patient/", "encounter": "Encounter/"}[name])):
			d.add(sevError, "claims."+name, "%q is not a FHIR id: fhirguard leaves it unread and refuses the grants it would hold", truncate(oneLine(s), 80))
		case strings.Contains(s, "/"):
			d.add(sevInfo, "claims."+name, "%q: SMART sends a bare id; fhirguard reads it as %q", truncate(oneLine(s), 80), s[strings.LastIndexByte(s, '/')+1:])
		}
	}
	if v, ok := c["fhirUser"]; ok {
		if _, isStr := v.(string); !isStr {
			d.add(sevError, "claims.fhirUser", "%s, not a string: fhirguard leaves it unread", jsonKind(v))
		}
	}
	if v, ok := c["fhirContext"]; ok {
		if _, isArr := v.([]any); !isArr {
			d.add(sevError, "claims.fhirContext", "%s, not an array", jsonKind(v))
		}
	}
	for _, name := range []string{"cnf"} {
		if _, ok := c[name]; ok {
			d.add(sevWarning, "claims.cnf", "a sender-constrained token (cnf, RFC 7800/8705/9449): fhirguard checks no proof of possession and refuses it")
		}
	}

	// Scopes.
	claim, value, present := "scope", "", false
	if v, ok := c["scope"]; ok {
		present = true
		s, isStr := v.(string)
		if !isStr {
			d.add(sevError, "claims.scope", "%s, not a space-separated string: it grants nothing", jsonKind(v))
			present = false
		}
		value = s
	} else if v, ok := c["scp"]; ok {
		claim, present = "scp", true
		arr, isArr := v.([]any)
		var items []string
		for _, it := range arr {
			s, isStr := it.(string)
			if !isStr {
				isArr = false
				break
			}
			items = append(items, s)
		}
		if !isArr {
			d.add(sevError, "claims.scp", "not an array of strings: it grants nothing")
			present = false
		}
		value = strings.Join(items, " ")
	} else {
		d.add(sevWarning, "claims.scope", "no scope claim: the token grants no access to FHIR data")
	}
	if present {
		d.scope = explainScope(claim, value)
		if !d.scope.Valid {
			if n := len(d.scope.Invalid); n == 1 {
				d.add(sevWarning, "claims."+claim, "1 scope does not parse and grants nothing")
			} else {
				d.add(sevWarning, "claims."+claim, "%d scopes do not parse and grant nothing", n)
			}
		}
	}
}

// explainScope summarizes what a scope string grants with scope explain's
// logic (the middleware's own parser and matcher).
func explainScope(claim, value string) *scopeGrant {
	r := scopeexplain.Explain(value)
	g := &scopeGrant{Claim: claim, Value: value, Valid: r.Valid, Effective: r.Effective, Invalid: []invalidScope{}}
	if g.Effective == nil {
		g.Effective = []scopeexplain.Effective{}
	}
	for _, s := range r.Scopes {
		if !s.Valid {
			g.Invalid = append(g.Invalid, invalidScope{Scope: s.Raw, Error: s.Error})
		}
	}
	return g
}

// numericDate reads a NumericDate (RFC 7519 §2): a JSON number of
// seconds, within years 1 to 9999.
func numericDate(v any) (float64, error) {
	var f float64
	switch n := v.(type) {
	case json.Number:
		var err error
		if f, err = n.Float64(); err != nil {
			return 0, fmt.Errorf("%s is out of range", truncate(n.String(), 40))
		}
	case float64:
		f = n
	default:
		return 0, fmt.Errorf("%s, not a number of seconds", jsonKind(v))
	}
	if math.IsNaN(f) || f < -62135596800 || f > 253402300799 {
		return 0, fmt.Errorf("%s is out of range", strconv.FormatFloat(f, 'g', -1, 64))
	}
	return f, nil
}

func formatUnix(secs float64) string {
	whole := math.Floor(secs)
	t := time.Unix(int64(whole), int64((secs-whole)*1e9)).UTC()
	return t.Format(time.RFC3339)
}

// relative says when a time claim falls relative to now: "expires in
// 42m", "expired 3h ago", "issued 18m ago".
func relative(claim string, secs float64, now time.Time) string {
	diff := secs - float64(now.UnixNano())/1e9 // > 0: in the future
	future := diff > 0
	d := duration(math.Abs(diff))
	switch claim {
	case "exp":
		if future {
			return "expires in " + d
		}
		return "expired " + d + " ago"
	case "nbf":
		if future {
			return "not valid for another " + d
		}
		return "valid since " + d + " ago"
	default: // iat
		if future {
			return "issued in the future (in " + d + ")"
		}
		return "issued " + d + " ago"
	}
}

// duration writes a number of seconds as "42s", "42m", "3h5m", "2d4h".
func duration(secs float64) string {
	s := int64(math.Round(secs))
	days, hours, mins := s/86400, s%86400/3600, s%3600/60
	switch {
	case days > 0 && hours > 0:
		return fmt.Sprintf("%dd%dh", days, hours)
	case days > 0:
		return fmt.Sprintf("%dd", days)
	case hours > 0 && mins > 0:
		return fmt.Sprintf("%dh%dm", hours, mins)
	case hours > 0:
		return fmt.Sprintf("%dh", hours)
	case mins > 0:
		return fmt.Sprintf("%dm", mins)
	}
	return fmt.Sprintf("%ds", s)
}

func stringOrArray(v any) ([]string, bool) {
	switch t := v.(type) {
	case string:
		return []string{t}, true
	case []any:
		out := make([]string, 0, len(t))
		for _, it := range t {
			s, ok := it.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number, float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// compactJSON writes v as compact JSON.
func compactJSON(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// truncate shortens s to about n bytes (on a rune boundary).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes)", s[:cut], len(s))
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
