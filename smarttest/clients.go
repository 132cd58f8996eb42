package smarttest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fhirguard/fhirguard/scope"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// AssertionType is the client_assertion_type of a private_key_jwt client
// assertion (RFC 7523).
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Client is an OAuth client registration.
//
// A client with a Secret is confidential (client_secret_basic or
// client_secret_post); a client with PublicKeys or JWKS authenticates with
// private_key_jwt and may use client_credentials (SMART Backend Services);
// a client with neither is public and must send its client_id.
type Client struct {
	// ID is the client_id. Required.
	ID string
	// Secret makes the client confidential (symmetric).
	Secret string
	// RedirectURIs are the registered redirect URIs, matched exactly.
	// Required for the authorization code flow.
	RedirectURIs []string
	// PublicKeys are the client's assertion-verification keys by key id
	// (*rsa.PublicKey for RS384, *ecdsa.PublicKey on P-384 for ES384).
	PublicKeys map[string]crypto.PublicKey
	// JWKS is the client's JWK Set document; its keys are added to
	// PublicKeys. Every key needs a kid.
	JWKS []byte
	// AllowedScopes limits what the client may be granted. A requested
	// resource scope is granted when an allowed scope of the same context
	// covers its type and permissions (and, when the allowed scope is
	// granular, has the same constraints); other scopes must be listed
	// exactly. Empty allows every scope.
	AllowedScopes []string
	// Introspect lets the client call the introspection endpoint, with its
	// secret or with a bearer token issued to it.
	Introspect bool
}

type registeredClient struct {
	Client
	keys    map[string]crypto.PublicKey
	allowed []scope.Scope
}

// RegisterClient adds a client. It fails when the id is taken or the
// registration is invalid.
func (s *Server) RegisterClient(c Client) error {
	if c.ID == "" || strings.ContainsAny(c.ID, " \t\r\n") {
		return fmt.Errorf("%w: client ID must be non-empty and without white space", errConfig)
	}
	rc := &registeredClient{Client: c, keys: map[string]crypto.PublicKey{}}
	rc.RedirectURIs = append([]string(nil), c.RedirectURIs...)
	rc.AllowedScopes = append([]string(nil), c.AllowedScopes...)
	for _, u := range c.RedirectURIs {
		p, err := url.Parse(u)
		if err != nil || !p.IsAbs() || p.Fragment != "" {
			return fmt.Errorf("%w: redirect URI %q must be absolute without fragment", errConfig, u)
		}
	}
	for kid, k := range c.PublicKeys {
		if err := checkClientKey(kid, k); err != nil {
			return err
		}
		rc.keys[kid] = k
	}
	if len(c.JWKS) > 0 {
		set, err := jwk.Parse(c.JWKS)
		if err != nil {
			return fmt.Errorf("%w: client JWKS: %v", errConfig, err)
		}
		for i := 0; i < set.Len(); i++ {
			k, _ := set.Key(i)
			var raw any
			if err := k.Raw(&raw); err != nil {
				return fmt.Errorf("%w: client JWKS key %d: %v", errConfig, i, err)
			}
			if err := checkClientKey(k.KeyID(), raw); err != nil {
				return err
			}
			rc.keys[k.KeyID()] = raw
		}
	}
	for _, a := range c.AllowedScopes {
		sc, err := scope.Parse(a)
		if err != nil {
			return fmt.Errorf("%w: allowed scope %q: %v", errConfig, a, err)
		}
		rc.allowed = append(rc.allowed, sc)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.clients[c.ID]; dup {
		return fmt.Errorf("%w: %q", errDuplicateClient, c.ID)
	}
	s.clients[c.ID] = rc
	for _, u := range rc.RedirectURIs {
		if o := originOf(u); o != "" {
			s.origins[o] = true
		}
	}
	return nil
}

func checkClientKey(kid string, k any) error {
	if kid == "" {
		return fmt.Errorf("%w: client keys need a key id", errConfig)
	}
	switch k := k.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("%w: RSA key %q shorter than 2048 bits", errConfig, kid)
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P384() {
			return fmt.Errorf("%w: EC key %q is not on P-384", errConfig, kid)
		}
	default:
		return fmt.Errorf("%w: key %q is %T; want *rsa.PublicKey or *ecdsa.PublicKey", errConfig, kid, k)
	}
	return nil
}

func (s *Server) client(id string) *registeredClient {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clients[id]
}

// LaunchContext is the context an EHR launch binds to its launch value.
// Every field is returned in the token response and carried in the access
// token.
type LaunchContext struct {
	Patient   string // a FHIR id: the patient claim
	Encounter string // a FHIR id: the encounter claim
	// FHIRContext is the fhirContext claim (SMART App Launch 2.2): each
	// item is written as JSON and must be an object with a reference,
	// canonical or identifier, such as a middleware.ContextItem (the type a
	// resource server reads the claim into) or a map[string]any, or a
	// relative reference string (SMART 2.0).
	FHIRContext       []any
	NeedPatientBanner bool   // need_patient_banner (always sent in an EHR launch)
	SMARTStyleURL     string // smart_style_url
	Intent            string // intent
	Tenant            string // tenant
	// User overrides Config.User for this launch ("Practitioner/7").
	User string
}

// RegisterLaunch records an EHR launch context and returns the launch value
// to pass to the app (the launch parameter of the launch URL). A launch value
// from RegisterLaunch may be used any number of times, by any client (the
// launch simulator's values are single-use and bound to one app; see
// EHRLaunchURL). It fails when an id is not a FHIR id, User is not a user
// reference or a fhirContext item is not one.
func (s *Server) RegisterLaunch(lc LaunchContext) (string, error) {
	if lc.Patient != "" && !validID(lc.Patient) {
		return "", fmt.Errorf("%w: launch patient %q is not a FHIR id", errConfig, lc.Patient)
	}
	if lc.Encounter != "" && !validID(lc.Encounter) {
		return "", fmt.Errorf("%w: launch encounter %q is not a FHIR id", errConfig, lc.Encounter)
	}
	if lc.User != "" {
		if err := checkUser(lc.User); err != nil {
			return "", err
		}
	}
	items, err := contextItems(lc.FHIRContext)
	if err != nil {
		return "", err
	}
	lc.FHIRContext = items
	id := randomString(12)
	s.mu.Lock()
	s.launches[id] = &launchRecord{ctx: lc}
	s.mu.Unlock()
	return id, nil
}

// authMethod is how a client authenticated at an endpoint.
type authMethod int

const (
	authNone    authMethod = iota // public client, client_id only
	authSecret                    // client_secret_basic or client_secret_post
	authPrivKey                   // private_key_jwt
)

// authenticateClient identifies the client of a token, introspection or
// revocation request. Failures are invalid_client (401).
func (s *Server) authenticateClient(r *http.Request, form url.Values) (*registeredClient, authMethod, error) {
	bad := func(format string, args ...any) error {
		return errf(http.StatusUnauthorized, "invalid_client", format, args...)
	}
	formID := form.Get("client_id")
	if at := form.Get("client_assertion_type"); at != "" || form.Get("client_assertion") != "" {
		if at != AssertionType {
			return nil, 0, bad("client_assertion_type must be %s", AssertionType)
		}
		if _, _, ok := r.BasicAuth(); ok {
			return nil, 0, bad("more than one client authentication method")
		}
		c, err := s.verifyAssertion(form.Get("client_assertion"))
		if err != nil {
			return nil, 0, err
		}
		if formID != "" && formID != c.ID {
			return nil, 0, bad("client_id does not match the assertion")
		}
		return c, authPrivKey, nil
	}
	if id, secret, ok := r.BasicAuth(); ok {
		if form.Has("client_secret") {
			return nil, 0, bad("more than one client authentication method")
		}
		// RFC 6749 §2.3.1: the credentials are form-encoded before base64.
		uid, err1 := url.QueryUnescape(id)
		usecret, err2 := url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return nil, 0, bad("malformed basic credentials")
		}
		if formID != "" && formID != uid {
			return nil, 0, bad("client_id does not match the credentials")
		}
		return s.checkSecret(uid, usecret)
	}
	if form.Has("client_secret") {
		return s.checkSecret(formID, form.Get("client_secret"))
	}
	if formID == "" {
		return nil, 0, bad("client authentication required")
	}
	c := s.client(formID)
	if c == nil {
		return nil, 0, bad("unknown client")
	}
	if c.Secret != "" || len(c.keys) > 0 {
		return nil, 0, bad("confidential client must authenticate")
	}
	return c, authNone, nil
}

func (s *Server) checkSecret(id, secret string) (*registeredClient, authMethod, error) {
	c := s.client(id)
	if c == nil || c.Secret == "" || subtle.ConstantTimeCompare([]byte(c.Secret), []byte(secret)) != 1 {
		return nil, 0, errf(http.StatusUnauthorized, "invalid_client", "client authentication failed")
	}
	return c, authSecret, nil
}

// assertionClaims are the claims of a client assertion. Numeric dates are
// json.Number so that non-numbers are refused.
type assertionClaims struct {
	Iss string          `json:"iss"`
	Sub string          `json:"sub"`
	Aud json.RawMessage `json:"aud"`
	Exp *json.Number    `json:"exp"`
	Nbf *json.Number    `json:"nbf"`
	Iat *json.Number    `json:"iat"`
	Jti string          `json:"jti"`
}

// verifyAssertion checks a private_key_jwt client assertion (SMART Backend
// Services, RFC 7523 §3) and records its jti. Errors are invalid_client.
func (s *Server) verifyAssertion(assertion string) (*registeredClient, error) {
	bad := func(format string, args ...any) error {
		return errf(http.StatusUnauthorized, "invalid_client", format, args...)
	}
	if len(assertion) > 16<<10 || !looksCompact(assertion) {
		return nil, bad("client assertion must be a compact JWS")
	}
	msg, err := jws.ParseString(assertion)
	if err != nil || len(msg.Signatures()) != 1 {
		return nil, bad("client assertion does not parse")
	}
	hdr := msg.Signatures()[0].ProtectedHeaders()
	alg := hdr.Algorithm()
	if alg != jwa.RS384 && alg != jwa.ES384 {
		return nil, bad("client assertion alg must be RS384 or ES384")
	}
	if typ := hdr.Type(); typ != "" && !strings.EqualFold(typ, "JWT") {
		return nil, bad("client assertion typ must be JWT")
	}
	if hdr.JWKSetURL() != "" || hdr.JWK() != nil || hdr.X509URL() != "" || (hdr.X509CertChain() != nil && hdr.X509CertChain().Len() > 0) {
		return nil, bad("client assertion may not carry or point at keys")
	}
	kid := hdr.KeyID()
	if kid == "" {
		return nil, bad("client assertion needs a kid")
	}
	// Read iss before verifying, only to find the client's keys.
	var peek assertionClaims
	if err := json.Unmarshal(msg.Payload(), &peek); err != nil {
		return nil, bad("client assertion claims do not parse")
	}
	c := s.client(peek.Iss)
	if c == nil {
		return nil, bad("unknown client")
	}
	key, ok := c.keys[kid]
	if !ok {
		return nil, bad("no registered key with this kid")
	}
	switch key.(type) {
	case *rsa.PublicKey:
		if alg != jwa.RS384 {
			return nil, bad("alg does not fit the key type")
		}
	case *ecdsa.PublicKey:
		if alg != jwa.ES384 {
			return nil, bad("alg does not fit the key type")
		}
	}
	payload, err := jws.Verify([]byte(assertion), jws.WithKey(alg, key))
	if err != nil {
		return nil, bad("client assertion signature invalid")
	}
	var cl assertionClaims
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	dec.UseNumber()
	if err := dec.Decode(&cl); err != nil {
		return nil, bad("client assertion claims do not parse")
	}
	if cl.Iss != c.ID || cl.Sub != c.ID {
		return nil, bad("client assertion iss and sub must both be the client_id")
	}
	if !audienceHas(cl.Aud, s.endpoint(pathToken)) {
		return nil, bad("client assertion aud must be the token URL")
	}
	now := s.cfg.Now()
	exp, ok := numericDate(cl.Exp)
	if !ok {
		return nil, bad("client assertion needs a numeric exp")
	}
	if !now.Before(exp.Add(clockSkew)) {
		return nil, bad("client assertion expired")
	}
	if exp.After(now.Add(maxAssertionLifetime + clockSkew)) {
		return nil, bad("client assertion exp more than five minutes ahead")
	}
	if cl.Nbf != nil {
		nbf, ok := numericDate(cl.Nbf)
		if !ok || nbf.After(now.Add(clockSkew)) {
			return nil, bad("client assertion not yet valid")
		}
	}
	if cl.Iat != nil {
		if _, ok := numericDate(cl.Iat); !ok {
			return nil, bad("client assertion iat is not a number")
		}
	}
	if cl.Jti == "" || len(cl.Jti) > 512 {
		return nil, bad("client assertion needs a jti")
	}
	key2 := c.ID + "\x00" + cl.Jti
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, until := range s.usedJTIs {
		if now.After(until.Add(clockSkew)) {
			delete(s.usedJTIs, k)
		}
	}
	if _, seen := s.usedJTIs[key2]; seen {
		return nil, bad("client assertion jti already used")
	}
	s.usedJTIs[key2] = exp
	return c, nil
}

// audienceHas reports whether a JSON aud (string or array of strings)
// contains want.
func audienceHas(raw json.RawMessage, want string) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == want
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		for _, a := range many {
			if a == want {
				return true
			}
		}
	}
	return false
}

func numericDate(n *json.Number) (time.Time, bool) {
	if n == nil {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f > 1e11 {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

// Assertion describes a client assertion for SignClientAssertion.
type Assertion struct {
	// ClientID is iss and sub. Required.
	ClientID string
	// Subject overrides sub (for negative tests). Default ClientID.
	Subject string
	// Audience is aud, the token URL. Required.
	Audience string
	// Key signs the assertion: an *rsa.PrivateKey (RS384) or an
	// *ecdsa.PrivateKey on P-384 (ES384). Required.
	Key crypto.Signer
	// KeyID is the kid header. Required.
	KeyID string
	// Lifetime sets exp = IssuedAt + Lifetime. Default four minutes.
	// Negative values make an expired assertion.
	Lifetime time.Duration
	// JTI is the jti. Default a random value.
	JTI string
	// IssuedAt is iat. Default time.Now().
	IssuedAt time.Time
}

// SignClientAssertion signs a private_key_jwt client assertion as SMART
// Backend Services clients do. The algorithm follows the key: RS384 for
// RSA, ES384 for ECDSA P-384.
func SignClientAssertion(a Assertion) (string, error) {
	if a.ClientID == "" || a.Audience == "" || a.Key == nil || a.KeyID == "" {
		return "", fmt.Errorf("%w: an assertion needs ClientID, Audience, Key and KeyID", errConfig)
	}
	var alg jwa.SignatureAlgorithm
	switch k := a.Key.(type) {
	case *rsa.PrivateKey:
		alg = jwa.RS384
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P384() {
			return "", fmt.Errorf("%w: EC assertion keys must be on P-384", errConfig)
		}
		alg = jwa.ES384
	default:
		return "", fmt.Errorf("%w: assertion key is %T; want *rsa.PrivateKey or *ecdsa.PrivateKey", errConfig, a.Key)
	}
	if a.Subject == "" {
		a.Subject = a.ClientID
	}
	if a.Lifetime == 0 {
		a.Lifetime = 4 * time.Minute
	}
	if a.JTI == "" {
		a.JTI = randomString(16)
	}
	if a.IssuedAt.IsZero() {
		a.IssuedAt = time.Now()
	}
	payload, err := json.Marshal(map[string]any{
		"iss": a.ClientID,
		"sub": a.Subject,
		"aud": a.Audience,
		"exp": a.IssuedAt.Add(a.Lifetime).Unix(),
		"iat": a.IssuedAt.Unix(),
		"jti": a.JTI,
	})
	if err != nil {
		return "", err
	}
	h := jws.NewHeaders()
	_ = h.Set(jws.KeyIDKey, a.KeyID)
	_ = h.Set(jws.TypeKey, "JWT")
	b, err := jws.Sign(payload, jws.WithKey(alg, a.Key, jws.WithProtectedHeaders(h)))
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// contextItems checks the fhirContext items of a launch and returns them as
// JSON values (a string or a map[string]any each), so that later changes to
// the caller's values do not reach the launch.
func contextItems(items []any) ([]any, error) {
	if len(items) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(items)
	if err != nil {
		return nil, fmt.Errorf("%w: fhirContext does not encode as JSON: %v", errConfig, err)
	}
	var out []any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("%w: fhirContext: %v", errConfig, err)
	}
	for i, it := range out {
		switch it := it.(type) {
		case string:
			typ, id, ok := strings.Cut(it, "/")
			if !ok || typ == "" || !validID(id) {
				return nil, fmt.Errorf("%w: fhirContext item %d: %q is not a relative reference", errConfig, i, it)
			}
		case map[string]any:
			ref, _ := it["reference"].(string)
			canonical, _ := it["canonical"].(string)
			if ref == "" && canonical == "" && it["identifier"] == nil {
				return nil, fmt.Errorf("%w: fhirContext item %d needs a reference, canonical or identifier", errConfig, i)
			}
		default:
			return nil, fmt.Errorf("%w: fhirContext item %d is neither an object nor a reference string", errConfig, i)
		}
	}
	return out, nil
}
