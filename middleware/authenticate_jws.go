package middleware

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// maxKidLen bounds the kid header (threat model A6): a kid is only ever a
// map key into the loaded key set.
const maxKidLen = 256

// jws is a parsed compact JWS: the signing input, the decoded segments and
// the header parameters the verifier uses.
type jws struct {
	raw          string // the compact serialization
	signingInput string // "header.payload" as received
	payload      []byte
	signature    []byte
	alg          string
	kid          string
	hasKid       bool
	typ          string
	hasTyp       bool
}

var b64 = base64.RawURLEncoding.Strict()

// isB64URL reports whether s uses only the base64url alphabet (no padding,
// no white space: Go's decoder would silently skip CR and LF).
func isB64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// splitCompact splits a compact serialization into its three segments:
// exactly two dots, a non-empty header and signature, every segment in the
// base64url alphabet. (An empty payload is a valid JWS; as a JWT it fails
// later, when the claims are decoded.)
func splitCompact(raw string) (h, p, s string, err error) {
	i := strings.IndexByte(raw, '.')
	if i < 0 {
		return "", "", "", fmt.Errorf("%w: not a compact JWS (no dot)", errMalformedToken)
	}
	j := strings.IndexByte(raw[i+1:], '.')
	if j < 0 {
		return "", "", "", fmt.Errorf("%w: not a compact JWS (one dot)", errMalformedToken)
	}
	j += i + 1
	if strings.IndexByte(raw[j+1:], '.') >= 0 {
		return "", "", "", fmt.Errorf("%w: more than three segments", errMalformedToken)
	}
	h, p, s = raw[:i], raw[i+1:j], raw[j+1:]
	if h == "" || s == "" {
		return "", "", "", fmt.Errorf("%w: empty header or signature", errMalformedToken)
	}
	if !isB64URL(h) || !isB64URL(p) || !isB64URL(s) {
		return "", "", "", fmt.Errorf("%w: segment is not base64url", errMalformedToken)
	}
	return h, p, s, nil
}

// looksLikeJWT reports whether tok has the compact JWS shape with a JSON
// object header; used to route tokens in AutoDetect mode.
func looksLikeJWT(tok string) bool {
	h, _, _, err := splitCompact(tok)
	if err != nil {
		return false
	}
	hb, err := b64.DecodeString(h)
	if err != nil {
		return false
	}
	for _, c := range hb {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		}
		return false
	}
	return false
}

// parseJWS parses a compact JWS strictly (threat model A9, A17, A18, A21):
// three segments, canonical base64url, a JSON object header without
// duplicate names, a string alg, no crit, b64, zip, enc or cty. The header
// parameters jwk, jku, x5u and x5c are never used.
func parseJWS(raw string) (*jws, error) {
	hs, ps, ss, err := splitCompact(raw)
	if err != nil {
		return nil, err
	}
	hb, err := b64.DecodeString(hs)
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", errMalformedToken, err)
	}
	payload, err := b64.DecodeString(ps)
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %v", errMalformedToken, err)
	}
	sig, err := b64.DecodeString(ss)
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %v", errMalformedToken, err)
	}
	t := &jws{raw: raw, signingInput: raw[:len(hs)+1+len(ps)], payload: payload, signature: sig}
	if err := t.parseHeader(hb); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *jws) parseHeader(hb []byte) error {
	h, err := decodeObject(hb)
	if err != nil {
		return fmt.Errorf("%w: header: %v", errMalformedToken, err)
	}
	for name := range h {
		switch name {
		case "crit", "b64", "zip", "enc", "cty":
			return fmt.Errorf("%w: %q", errUnsupportedHeader, name)
		}
	}
	alg, ok := h["alg"].(string)
	if !ok {
		return fmt.Errorf("%w: alg missing or not a string", errMalformedToken)
	}
	t.alg = alg
	if v, ok := h["kid"]; ok {
		kid, isStr := v.(string)
		if !isStr || len(kid) > maxKidLen {
			return fmt.Errorf("%w: kid is not a string of at most %d bytes", errMalformedToken, maxKidLen)
		}
		t.kid, t.hasKid = kid, true
	}
	if v, ok := h["typ"]; ok {
		typ, isStr := v.(string)
		if !isStr {
			return fmt.Errorf("%w: typ is not a string", errMalformedToken)
		}
		t.typ, t.hasTyp = typ, true
	}
	return nil
}

// checkTyp applies the typ policy: strict accepts only at+jwt and
// application/at+jwt (RFC 9068 §4, case-insensitive media type); the
// default also accepts JWT and no typ (many SMART servers send those).
func (t *jws) checkTyp(strict bool) error {
	if !t.hasTyp {
		if strict {
			return fmt.Errorf("%w: typ missing (RFC 9068 requires at+jwt)", errTokenType)
		}
		return nil
	}
	switch strings.ToLower(t.typ) {
	case "at+jwt", "application/at+jwt":
		return nil
	case "jwt", "application/jwt":
		if !strict {
			return nil
		}
	}
	return fmt.Errorf("%w: %q", errTokenType, logTrunc(t.typ, 64))
}
