package middleware

// This is the only file of the package that imports jwx: moving to the next
// jwx major is a change to this file alone.
//
// jwx supplies the JWK parsing, the per-algorithm signature verifiers and
// the jwt.Token handed to jwtauth. A JWKS URL is fetched and scheduled by
// remoteKeys (authenticate_keys.go), not by jwk.Cache: its scheduler
// (httprc v1.0.6) looks for due refreshes only every 15 minutes, and runs
// on the wall clock. The compact JWS itself is parsed by parseJWS (strict base64url,
// duplicate names, crit, typ), because jwt.Parse accepts JSON serialisation
// and lenient input unless process-global settings are changed, and parsing
// twice would double the cost. RSASSA-PSS is verified here with the salt
// length RFC 7518 §3.5 fixes (the hash size): jwx v2 verifies PSS with salt
// auto-detection.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/go-chi/jwtauth/v5"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	jwxjws "github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// JWKSet is a JSON Web Key set, the type of AuthConfig.KeySet.
type JWKSet = jwk.Set

// algFamily is the kind of key an algorithm needs.
type algFamily uint8

const (
	famRSA algFamily = iota + 1
	famPSS
	famEC
	famEd
	famHMAC
)

type algInfo struct {
	family algFamily
	hash   crypto.Hash
	curve  elliptic.Curve // famEC
	crv    string         // famEC: the JWK crv name
}

// algorithms are the JWS algorithms the middleware knows. none is not
// among them and can never be configured.
var algorithms = map[string]algInfo{
	"RS256": {famRSA, crypto.SHA256, nil, ""},
	"RS384": {famRSA, crypto.SHA384, nil, ""},
	"RS512": {famRSA, crypto.SHA512, nil, ""},
	"PS256": {famPSS, crypto.SHA256, nil, ""},
	"PS384": {famPSS, crypto.SHA384, nil, ""},
	"PS512": {famPSS, crypto.SHA512, nil, ""},
	"ES256": {famEC, crypto.SHA256, elliptic.P256(), "P-256"},
	"ES384": {famEC, crypto.SHA384, elliptic.P384(), "P-384"},
	"ES512": {famEC, crypto.SHA512, elliptic.P521(), "P-521"},
	"EdDSA": {famEd, 0, nil, ""},
	"HS256": {famHMAC, crypto.SHA256, nil, ""},
	"HS384": {famHMAC, crypto.SHA384, nil, ""},
	"HS512": {famHMAC, crypto.SHA512, nil, ""},
}

// defaultAlgorithms is the default signature algorithm allow-list. It is
// never handed out, so no code outside the package can widen it.
var defaultAlgorithms = [...]string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// DefaultAlgorithms returns the default signature algorithm allow-list
// (AuthConfig.Algorithms): RS256, RS384, RS512, PS256, PS384, PS512, ES256,
// ES384, ES512 and EdDSA. Each call returns a new slice: changing it changes
// no default.
func DefaultAlgorithms() []string { return slices.Clone(defaultAlgorithms[:]) }

// jwxVerifiers holds one jwx verifier per algorithm (they are stateless).
var jwxVerifiers = func() map[string]jwxjws.Verifier {
	m := map[string]jwxjws.Verifier{}
	for name, info := range algorithms {
		if info.family == famPSS || info.family == famHMAC {
			continue
		}
		v, err := jwxjws.NewVerifier(jwa.SignatureAlgorithm(name))
		if err != nil {
			panic(err)
		}
		m[name] = v
	}
	return m
}()

// RSA modulus bounds for loaded keys (threat model A12).
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// boundKey is a verification key bound to exactly one algorithm (RFC 8725
// §3.1).
type boundKey struct {
	kid    string
	hasKid bool
	alg    string
	key    any              // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	ja     *jwtauth.JWTAuth // set for a jwtauth key source: verification through ja.Decode
}

func (k *boundKey) equal(o *boundKey) bool {
	if k.kid != o.kid || k.hasKid != o.hasKid || k.alg != o.alg || k.ja != o.ja {
		return false
	}
	type eq interface{ Equal(crypto.PublicKey) bool }
	a, ok := k.key.(eq)
	if !ok {
		return k.key == nil && o.key == nil
	}
	return a.Equal(o.key)
}

// keySet is an immutable set of bound keys.
type keySet struct {
	gen   uint64
	byKid map[string]*boundKey
	all   []*boundKey
}

var errNoSuchKid = errors.New("no key with this kid")

// lookup selects the key for t: by kid when the token has one; the only
// key of the set when it has none. The key's algorithm must be the token's.
func (ks *keySet) lookup(t *jws) (*boundKey, error) {
	var k *boundKey
	switch {
	case len(ks.all) == 1 && ks.all[0].ja != nil:
		k = ks.all[0] // a jwtauth key has no kid
	case t.hasKid:
		k = ks.byKid[t.kid]
		if k == nil {
			return nil, fmt.Errorf("%w: kid %q", errNoSuchKid, logTrunc(t.kid, 64))
		}
	case len(ks.all) == 1:
		k = ks.all[0]
	default:
		return nil, fmt.Errorf("%w: the token has no kid and the key set has %d keys", ErrUnknownKey, len(ks.all))
	}
	if k.alg != t.alg {
		return nil, fmt.Errorf("%w: key is bound to %s, token says %s", ErrAlgorithm, k.alg, t.alg)
	}
	return k, nil
}

func (ks *keySet) sameKeys(o *keySet) bool {
	if o == nil || len(ks.all) != len(o.all) {
		return false
	}
	for i := range ks.all {
		if !ks.all[i].equal(o.all[i]) {
			return false
		}
	}
	return true
}

// keyPolicy is how keys are bound and checked when a set is loaded.
type keyPolicy struct {
	allowed    map[string]bool // allowed algorithms
	defaultRSA string          // algorithm of RSA keys without alg
}

// buildKeySet validates every key of set and binds it to one algorithm.
// Refused keys are left out and reported; keys sharing a kid are all
// refused (the choice between them would be ambiguous).
func (p *keyPolicy) buildKeySet(set jwk.Set) (*keySet, []error) {
	var errs []error
	ks := &keySet{byKid: map[string]*boundKey{}}
	dup := map[string]bool{}
	for i := 0; i < set.Len(); i++ {
		key, _ := set.Key(i)
		bk, err := p.bind(key)
		if err != nil {
			errs = append(errs, fmt.Errorf("key %d (kid %q): %w", i, logTrunc(key.KeyID(), 64), err))
			continue
		}
		if bk.hasKid {
			if _, seen := ks.byKid[bk.kid]; seen || dup[bk.kid] {
				dup[bk.kid] = true
				delete(ks.byKid, bk.kid)
				errs = append(errs, fmt.Errorf("key %d: duplicate kid %q: every key with it is refused", i, logTrunc(bk.kid, 64)))
				continue
			}
			ks.byKid[bk.kid] = bk
		}
		ks.all = append(ks.all, bk)
	}
	if len(dup) > 0 {
		kept := ks.all[:0]
		for _, k := range ks.all {
			if !k.hasKid || !dup[k.kid] {
				kept = append(kept, k)
			}
		}
		ks.all = kept
	}
	return ks, errs
}

// bind checks one JWK (threat model A12) and binds it to its algorithm.
func (p *keyPolicy) bind(key jwk.Key) (*boundKey, error) {
	if key.KeyType() == jwa.OctetSeq {
		return nil, errors.New("symmetric (oct) keys are never loaded from a key set")
	}
	if priv, err := jwk.IsPrivateKey(key); err != nil || priv {
		return nil, errors.New("private key material in a verification key set")
	}
	if use := key.KeyUsage(); use != "" && use != "sig" {
		return nil, fmt.Errorf("use is %q, not sig", logTrunc(use, 16))
	}
	if ops := key.KeyOps(); len(ops) > 0 {
		ok := false
		for _, op := range ops {
			if op == jwk.KeyOpVerify {
				ok = true
			}
		}
		if !ok {
			return nil, errors.New("key_ops does not include verify")
		}
	}
	var raw any
	if err := key.Raw(&raw); err != nil {
		return nil, fmt.Errorf("unusable key: %w", err)
	}
	alg := key.Algorithm().String()
	bk := &boundKey{kid: key.KeyID()}
	_, bk.hasKid = key.Get(jwk.KeyIDKey)
	switch pub := raw.(type) {
	case *rsa.PublicKey:
		if alg == "" {
			alg = p.defaultRSA
		}
		if f := algorithms[alg].family; f != famRSA && f != famPSS {
			return nil, fmt.Errorf("RSA key with alg %q", logTrunc(alg, 16))
		}
		if n := pub.N.BitLen(); n < minRSABits || n > maxRSABits {
			return nil, fmt.Errorf("RSA modulus of %d bits (allowed %d to %d)", n, minRSABits, maxRSABits)
		}
		if pub.E < 3 || pub.E%2 == 0 {
			return nil, fmt.Errorf("RSA public exponent %d", pub.E)
		}
		if rocaVulnerable(pub.N) {
			return nil, errors.New("RSA key with the ROCA weakness (CVE-2017-15361)")
		}
		bk.key = pub
	case *ecdsa.PublicKey:
		name := pub.Curve.Params().Name
		want := ""
		for a, info := range algorithms {
			if info.family == famEC && info.curve == pub.Curve {
				want = a
			}
		}
		if want == "" {
			return nil, fmt.Errorf("EC curve %s not supported", name)
		}
		if alg == "" {
			alg = want
		}
		if alg != want {
			return nil, fmt.Errorf("EC key on %s with alg %q", name, logTrunc(alg, 16))
		}
		if _, err := pub.ECDH(); err != nil {
			return nil, fmt.Errorf("EC point not on the curve: %w", err)
		}
		bk.key = pub
	case ed25519.PublicKey:
		if alg == "" {
			alg = "EdDSA"
		}
		if alg != "EdDSA" || len(pub) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("Ed25519 key with alg %q", logTrunc(alg, 16))
		}
		bk.key = pub
	default:
		return nil, fmt.Errorf("key type %T not supported for signatures", raw)
	}
	if !p.allowed[alg] {
		return nil, fmt.Errorf("algorithm %s not in the allow-list", alg)
	}
	bk.alg = alg
	return bk, nil
}

// verifySignature checks t's signature with k.
func verifySignature(t *jws, k *boundKey) error {
	if k.ja != nil {
		if _, err := k.ja.Decode(t.raw); err != nil {
			return fmt.Errorf("%w: %v", ErrSignature, err)
		}
		return nil
	}
	info := algorithms[k.alg]
	var err error
	if info.family == famPSS {
		pub, _ := k.key.(*rsa.PublicKey)
		h := info.hash.New()
		h.Write([]byte(t.signingInput))
		err = rsa.VerifyPSS(pub, info.hash, h.Sum(nil), t.signature, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	} else if v := jwxVerifiers[k.alg]; v != nil {
		err = v.Verify([]byte(t.signingInput), t.signature, k.key)
	} else {
		err = fmt.Errorf("no verifier for %s", k.alg)
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSignature, err)
	}
	return nil
}

// newJWTToken builds the jwx token jwtauth.FromContext returns.
func newJWTToken(claims map[string]any) any {
	t := jwt.New()
	for name, v := range claims {
		_ = t.Set(name, v)
	}
	return t
}

// keySource supplies the current key set.
type keySource interface {
	// keys returns the current key set, or a 503 *AuthError when none is
	// usable.
	keys(ctx context.Context) (*keySet, error)
	// generation returns the generation of the current set at now (Unix
	// nanoseconds); a remote source starts a due refresh.
	generation(now int64) uint64
	// refetch fetches the set again for a token whose key is missing or
	// whose signature failed; found reports whether a set resolves that.
	// It returns the current set and, when the latest fetch failed, a 503
	// *AuthError. Static sources return their set.
	refetch(ctx context.Context, found func(*keySet) bool) (*keySet, error)
	close()
}

type staticKeys struct{ ks *keySet }

func (s staticKeys) keys(context.Context) (*keySet, error) { return s.ks, nil }
func (staticKeys) generation(int64) uint64                 { return 0 }
func (s staticKeys) refetch(context.Context, func(*keySet) bool) (*keySet, error) {
	return s.ks, nil
}
func (staticKeys) close() {}

// newStaticKeys loads a static key set; any refused key is an error.
func newStaticKeys(p *keyPolicy, set jwk.Set) (staticKeys, error) {
	ks, errs := p.buildKeySet(set)
	if len(errs) > 0 {
		return staticKeys{}, fmt.Errorf("middleware: key set: %w", errors.Join(errs...))
	}
	if len(ks.all) == 0 {
		return staticKeys{}, errors.New("middleware: key set has no key")
	}
	return staticKeys{ks}, nil
}

// parseJWKS parses a JWKS document.
func parseJWKS(doc []byte) (jwk.Set, error) {
	return jwk.Parse(doc)
}

// parseFetchedJWKS parses a fetched JWKS document, leaving out the keys
// that do not parse (the others stay usable).
func parseFetchedJWKS(doc []byte) (jwk.Set, error) {
	return jwk.Parse(doc, jwk.WithIgnoreParseError(true))
}

// newJWTAuthKeys wraps a *jwtauth.JWTAuth: its one key, bound to its
// algorithm. jwtauth keeps both unexported, so they are read by reflection;
// an HMAC secret shorter than the hash is refused (threat model A22).
func newJWTAuthKeys(p *keyPolicy, ja *jwtauth.JWTAuth) (staticKeys, error) {
	v := reflect.ValueOf(ja).Elem()
	f := v.FieldByName("alg")
	if !f.IsValid() || f.Kind() != reflect.String {
		return staticKeys{}, errors.New("middleware: cannot read the algorithm of the jwtauth.JWTAuth")
	}
	alg := f.String()
	info, known := algorithms[alg]
	if !known || !p.allowed[alg] {
		return staticKeys{}, fmt.Errorf("middleware: jwtauth algorithm %q is not in the allow-list", alg)
	}
	if info.family == famHMAC {
		key := v.FieldByName("verifyKey")
		if !key.IsValid() || key.IsNil() {
			key = v.FieldByName("signKey")
		}
		if !key.IsValid() || key.IsNil() || key.Elem().Kind() != reflect.Slice || key.Elem().Len() < info.hash.Size() {
			return staticKeys{}, fmt.Errorf("middleware: %s secret must be at least %d bytes", alg, info.hash.Size())
		}
	}
	bk := &boundKey{alg: alg, ja: ja}
	return staticKeys{&keySet{byKid: map[string]*boundKey{}, all: []*boundKey{bk}}}, nil
}
