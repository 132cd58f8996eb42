package smarttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/fhirguard/fhirguard/scope"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// defaultClientID is the client_id of minted tokens that name none.
const defaultClientID = "smarttest-client"

// TokenOptions describes a token for MintToken. Values are taken as given
// (they are not checked against the scope grammar or FHIR id rules), so
// negative tests can mint odd tokens.
type TokenOptions struct {
	// ClientID is the client_id claim. Default "smarttest-client".
	ClientID string
	// Subject is sub. Default FHIRUser, else ClientID.
	Subject string
	// Scopes is the granted scope string, space-separated
	// ("patient/Observation.rs launch/patient").
	Scopes string

	// SMART launch context claims; empty values are left out.
	Patient   string
	Encounter string
	FHIRUser  string // "Practitioner/1"
	// FHIRContext is the fhirContext claim: each item is written as JSON,
	// so it may be a middleware.ContextItem (the type a resource server
	// reads the claim into), a map[string]any, or a string (SMART 2.0's
	// relative references).
	FHIRContext       []any
	NeedPatientBanner *bool
	SMARTStyleURL     string
	Intent            string
	Tenant            string

	// Audience is aud. Default the FHIR base. One value is written as a
	// string, several as an array.
	Audience []string
	// Issuer is iss. Default the server's issuer.
	Issuer string
	// Lifetime sets exp = now + Lifetime. Default Config.AccessTokenLifetime.
	// A negative Lifetime makes a token that has already expired.
	Lifetime time.Duration
	// NotBefore, when set, adds nbf.
	NotBefore time.Time
	// ExtraClaims are added to the claims, replacing any of the same name.
	ExtraClaims map[string]any
	// OmitClaims names claims to leave out ("exp", "jti", ...).
	OmitClaims []string
	// Opaque issues a random opaque token, resolvable only through the
	// introspection endpoint, instead of a JWT.
	Opaque bool
}

func scopeSet(scopes []string) scope.Set { return scope.ParseSet(strings.Join(scopes, " ")) }

// claims builds the claim set of a token.
func (s *Server) claims(o TokenOptions, now time.Time) map[string]any {
	if o.ClientID == "" {
		o.ClientID = defaultClientID
	}
	if o.Subject == "" {
		o.Subject = o.FHIRUser
	}
	if o.Subject == "" {
		o.Subject = o.ClientID
	}
	if o.Lifetime == 0 {
		o.Lifetime = s.cfg.AccessTokenLifetime
	}
	if o.Issuer == "" {
		o.Issuer = s.issuer
	}
	c := map[string]any{
		"iss":       o.Issuer,
		"sub":       o.Subject,
		"client_id": o.ClientID,
		"scope":     o.Scopes,
		"iat":       now.Unix(),
		"exp":       now.Add(o.Lifetime).Unix(),
		"jti":       randomString(16),
	}
	switch len(o.Audience) {
	case 0:
		c["aud"] = s.fhirBase
	case 1:
		c["aud"] = o.Audience[0]
	default:
		c["aud"] = o.Audience
	}
	if o.Lifetime < 0 {
		c["iat"] = now.Add(2 * o.Lifetime).Unix()
	}
	if !o.NotBefore.IsZero() {
		c["nbf"] = o.NotBefore.Unix()
	}
	for k, v := range map[string]string{"patient": o.Patient, "encounter": o.Encounter, "fhirUser": o.FHIRUser,
		"smart_style_url": o.SMARTStyleURL, "intent": o.Intent, "tenant": o.Tenant} {
		if v != "" {
			c[k] = v
		}
	}
	if len(o.FHIRContext) > 0 {
		c["fhirContext"] = o.FHIRContext
	}
	if o.NeedPatientBanner != nil {
		c["need_patient_banner"] = *o.NeedPatientBanner
	}
	for k, v := range o.ExtraClaims {
		c[k] = v
	}
	for _, k := range o.OmitClaims {
		delete(c, k)
	}
	return c
}

// mint issues and records a token.
func (s *Server) mint(o TokenOptions, grantID string) (string, map[string]any, error) {
	claims := s.claims(o, s.cfg.Now())
	var tok string
	var key string
	if o.Opaque {
		tok = randomString(32)
		key = "opaque:" + tok
	} else {
		var err error
		if tok, err = s.signJWT(claims, "at+jwt"); err != nil {
			return "", nil, err
		}
		jti, _ := claims["jti"].(string)
		key = "jwt:" + jti
	}
	s.record(key, claims, grantID)
	return tok, claims, nil
}

func (s *Server) record(key string, claims map[string]any, grantID string) {
	it := &issuedToken{claims: claims, grantID: grantID}
	it.clientID, _ = claims["client_id"].(string)
	if exp, ok := claims["exp"].(int64); ok {
		it.expires = time.Unix(exp, 0)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked()
	s.tokens[key] = it
	if g := s.grants[grantID]; g != nil {
		g.tokens = append(g.tokens, key)
	}
}

// MintToken issues an access token directly, without any flow: a JWT signed
// by the current key (header typ at+jwt) or, with Opaque, an opaque token.
// The token introspects and revokes like one from the token endpoint.
func (s *Server) MintToken(o TokenOptions) (string, error) {
	tok, _, err := s.mint(o, "")
	return tok, err
}

// Flaw names a defect MintFlawedToken builds into a token, for negative
// tests of a resource server. Every flawed token must be refused: a correct
// resource server answers each with 401 Unauthorized and
// WWW-Authenticate: Bearer error="invalid_token" (RFC 6750 §3.1), except
// FlawJSONSerialization, which is not a bearer token at all and gets 400
// Bad Request with error="invalid_request". None of them may reach the
// protected handler, and a server that introspects or fetches keys must not
// be led elsewhere by them (FlawEmbeddedJWK, FlawForeignJKU).
//
// The claims are those MintToken would write for the TokenOptions given;
// the flaw changes only what its description says.
type Flaw int

// Flaws. The claim flaws (FlawExpired to FlawNoExpiry, and FlawIDTokenType)
// carry a valid RS256 signature by the current key, so only the claim and
// header checks catch them; FlawJSONSerialization carries a valid signature
// in the wrong serialization; the others fail signature verification
// against the JWKS.
const (
	// FlawExpired: exp an hour ago (iat two hours ago). Refused as expired
	// (401 invalid_token) beyond any clock skew allowance.
	FlawExpired Flaw = iota + 1
	// FlawNotYetValid: nbf an hour ahead, exp two hours ahead. Refused as
	// not yet valid (401 invalid_token).
	FlawNotYetValid
	// FlawWrongAudience: aud "https://other-fhir-server.invalid/fhir", a
	// token for another FHIR server. Refused for its audience (401
	// invalid_token).
	FlawWrongAudience
	// FlawWrongIssuer: iss "https://other-issuer.invalid", signed by this
	// server's key (as if two issuers shared a key). Refused for its issuer
	// (401 invalid_token), even though the signature verifies.
	FlawWrongIssuer
	// FlawNoExpiry: no exp claim. Refused: an access token without an
	// expiry is never accepted (401 invalid_token).
	FlawNoExpiry
	// FlawAlgNone: header alg "none" with the current kid and an empty
	// signature. Refused: unsigned tokens are never accepted (401
	// invalid_token).
	FlawAlgNone
	// FlawUnknownKey: signed by a fresh RSA key under its own kid, which
	// the JWKS does not hold. Refused (401 invalid_token) after at most one
	// rate-limited refetch of the JWKS.
	FlawUnknownKey
	// FlawForeignKeySameKID: signed by a fresh RSA key but carrying the
	// current kid. Refused: the signature does not verify with the
	// published key (401 invalid_token).
	FlawForeignKeySameKID
	// FlawBadSignature: signed by the current key, one signature byte
	// changed. Refused (401 invalid_token).
	FlawBadSignature
	// FlawHMACConfusion: alg HS256, keyed with the DER bytes of the
	// current public key, current kid (the RS/HS algorithm confusion
	// attack). Refused: only the configured asymmetric algorithms are
	// accepted (401 invalid_token).
	FlawHMACConfusion
	// FlawEmbeddedJWK: ES256, signed by an attacker key published in the
	// token's own jwk header, current kid. Refused: keys come from the
	// configured key source, never from the token (401 invalid_token).
	FlawEmbeddedJWK
	// FlawForeignJKU: ES256, signed by an attacker key, kid "attacker" and
	// a jku header pointing at https://attacker.invalid/jwks.json. Refused
	// without fetching the jku (401 invalid_token).
	FlawForeignJKU
	// FlawJSONSerialization: a valid signature by the current key, in JWS
	// JSON serialization ({"protected":...,"payload":...,"signature":...})
	// instead of the compact form. Its braces and quotes are not b64token
	// characters, so it is not a bearer token: a correct server answers 400
	// invalid_request (RFC 6750 §3.1) and never parses it as JSON.
	FlawJSONSerialization
	// FlawIDTokenType: a valid signature by the current key, but header
	// typ "JWT" and aud the client_id: an id_token presented as an access
	// token. Refused for its audience (401 invalid_token); a server that
	// checks typ (RFC 9068 at+jwt) refuses it for that too.
	FlawIDTokenType
)

var flawNames = map[Flaw]string{
	FlawExpired: "expired", FlawNotYetValid: "not-yet-valid", FlawWrongAudience: "wrong-audience",
	FlawWrongIssuer: "wrong-issuer", FlawNoExpiry: "no-expiry", FlawAlgNone: "alg-none",
	FlawUnknownKey: "unknown-key", FlawForeignKeySameKID: "foreign-key-same-kid",
	FlawBadSignature: "bad-signature", FlawHMACConfusion: "hmac-confusion",
	FlawEmbeddedJWK: "embedded-jwk", FlawForeignJKU: "foreign-jku",
	FlawJSONSerialization: "json-serialization", FlawIDTokenType: "id-token-type",
}

// String names the flaw ("expired", "alg-none", ...).
func (f Flaw) String() string {
	if n, ok := flawNames[f]; ok {
		return n
	}
	return fmt.Sprintf("Flaw(%d)", int(f))
}

// Flaws returns every Flaw, for table tests.
func Flaws() []Flaw {
	out := make([]Flaw, 0, len(flawNames))
	for f := FlawExpired; f <= FlawIDTokenType; f++ {
		out = append(out, f)
	}
	return out
}

// The audience of FlawWrongAudience and the issuer of FlawWrongIssuer.
const (
	wrongAudience = "https://other-fhir-server.invalid/fhir"
	wrongIssuer   = "https://other-issuer.invalid"
)

// MintFlawedToken mints a JWT access token like MintToken and builds the
// flaw into it. With o.Opaque only the claim flaws (FlawExpired,
// FlawNotYetValid, FlawWrongAudience, FlawWrongIssuer, FlawNoExpiry) are
// possible; the others fail.
func (s *Server) MintFlawedToken(f Flaw, o TokenOptions) (string, error) {
	now := s.cfg.Now()
	switch f {
	case FlawExpired:
		o.Lifetime = -time.Hour
	case FlawNotYetValid:
		o.NotBefore = now.Add(time.Hour)
		if o.Lifetime < 2*time.Hour {
			o.Lifetime = 2 * time.Hour
		}
	case FlawWrongAudience:
		o.Audience = []string{wrongAudience}
	case FlawWrongIssuer:
		o.Issuer = wrongIssuer
	case FlawNoExpiry:
		o.OmitClaims = append(o.OmitClaims, "exp")
	default:
		if _, ok := flawNames[f]; !ok {
			return "", fmt.Errorf("%w: unknown flaw %d", errConfig, int(f))
		}
		if o.Opaque {
			return "", fmt.Errorf("%w: flaw %v needs a JWT", errConfig, f)
		}
		return s.signatureFlaw(f, s.claims(o, now))
	}
	tok, _, err := s.mint(o, "")
	return tok, err
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func b64JSON(v any) string {
	b, _ := json.Marshal(v)
	return b64(b)
}

// signatureFlaw builds the tokens whose signature or header is wrong. They
// are not recorded: nothing the server issued looks like them.
func (s *Server) signatureFlaw(f Flaw, claims map[string]any) (string, error) {
	active := s.keys.active()
	switch f {
	case FlawAlgNone:
		return b64JSON(map[string]any{"alg": "none", "typ": "at+jwt", "kid": active.kid}) + "." + b64JSON(claims) + ".", nil
	case FlawUnknownKey, FlawForeignKeySameKID:
		k, err := newSigningKey()
		if err != nil {
			return "", err
		}
		if f == FlawForeignKeySameKID {
			k.kid = active.kid
		}
		return signWith(k, claims, "at+jwt")
	case FlawBadSignature:
		tok, err := signWith(active, claims, "at+jwt")
		if err != nil {
			return "", err
		}
		i := strings.LastIndexByte(tok, '.') + 1
		sig, _ := base64.RawURLEncoding.DecodeString(tok[i:])
		sig[len(sig)/2] ^= 0x01
		return tok[:i] + b64(sig), nil
	case FlawHMACConfusion:
		der, err := x509.MarshalPKIXPublicKey(active.priv.Public())
		if err != nil {
			return "", err
		}
		in := b64JSON(map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": active.kid}) + "." + b64JSON(claims)
		m := hmac.New(sha256.New, der)
		m.Write([]byte(in))
		return in + "." + b64(m.Sum(nil)), nil
	case FlawEmbeddedJWK, FlawForeignJKU:
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return "", err
		}
		pub, err := jwk.FromRaw(priv.Public())
		if err != nil {
			return "", err
		}
		h := jws.NewHeaders()
		_ = h.Set(jws.TypeKey, "at+jwt")
		if f == FlawEmbeddedJWK {
			_ = h.Set(jws.KeyIDKey, active.kid)
			_ = h.Set(jws.JWKKey, pub)
		} else {
			_ = h.Set(jws.KeyIDKey, "attacker")
			_ = h.Set(jws.JWKSetURLKey, "https://attacker.invalid/jwks.json")
		}
		payload, _ := json.Marshal(claims)
		b, err := jws.Sign(payload, jws.WithKey(jwa.ES256, priv, jws.WithProtectedHeaders(h)))
		return string(b), err
	case FlawJSONSerialization:
		tok, err := s.signJWT(claims, "at+jwt")
		if err != nil {
			return "", err
		}
		p := strings.Split(tok, ".")
		b, err := json.Marshal(map[string]string{"protected": p[0], "payload": p[1], "signature": p[2]})
		return string(b), err
	case FlawIDTokenType:
		claims["aud"] = claims["client_id"]
		return s.signJWT(claims, "JWT")
	}
	return "", fmt.Errorf("%w: unknown flaw %d", errConfig, int(f))
}
