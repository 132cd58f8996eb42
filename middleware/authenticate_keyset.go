package middleware

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"

	"github.com/go-chi/jwtauth/v5"
)

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
}

// algorithms are the JWS algorithms the middleware knows. none is not
// among them and can never be configured.
var algorithms = map[string]algInfo{
	"RS256": {famRSA, crypto.SHA256, nil},
	"RS384": {famRSA, crypto.SHA384, nil},
	"RS512": {famRSA, crypto.SHA512, nil},
	"PS256": {famPSS, crypto.SHA256, nil},
	"PS384": {famPSS, crypto.SHA384, nil},
	"PS512": {famPSS, crypto.SHA512, nil},
	"ES256": {famEC, crypto.SHA256, elliptic.P256()},
	"ES384": {famEC, crypto.SHA384, elliptic.P384()},
	"ES512": {famEC, crypto.SHA512, elliptic.P521()},
	"EdDSA": {famEd, 0, nil},
	"HS256": {famHMAC, crypto.SHA256, nil},
	"HS384": {famHMAC, crypto.SHA384, nil},
	"HS512": {famHMAC, crypto.SHA512, nil},
}

// defaultAlgorithms is the default signature algorithm allow-list
// (AuthConfig.Algorithms). It is never handed out, so no code can widen it.
var defaultAlgorithms = [...]string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

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
		return nil, fmt.Errorf("%w: the token has no kid and the key set has %d keys", errUnknownKey, len(ks.all))
	}
	if k.alg != t.alg {
		return nil, fmt.Errorf("%w: key is bound to %s, token says %s", errAlgorithm, k.alg, t.alg)
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

// keyEntry is one key of a key source before it is checked and bound: a
// JWK read into standard types (parseJWKS), or an entry of
// AuthConfig.PublicKeys.
type keyEntry struct {
	name   string // for messages: "key 2 (kid \"a\")", "PublicKeys[\"a\"]"
	kid    string
	hasKid bool
	alg    string // the JWK's alg; "" binds the key by its type
	key    any    // the public key
	err    error  // the entry is unusable whatever its key (a JWK of the wrong kind)
}

// keyPolicy is how keys are bound and checked when a set is loaded.
type keyPolicy struct {
	allowed    map[string]bool // allowed algorithms
	defaultRSA string          // algorithm of RSA keys without alg
}

// buildKeySet validates every entry and binds its key to one algorithm.
// Refused keys are left out and reported; keys sharing a kid are all
// refused (the choice between them would be ambiguous).
func (p *keyPolicy) buildKeySet(entries []keyEntry) (*keySet, []error) {
	var errs []error
	ks := &keySet{byKid: map[string]*boundKey{}}
	dup := map[string]bool{}
	for _, e := range entries {
		bk, err := p.bind(e)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", e.name, err))
			continue
		}
		if bk.hasKid {
			if _, seen := ks.byKid[bk.kid]; seen || dup[bk.kid] {
				dup[bk.kid] = true
				delete(ks.byKid, bk.kid)
				errs = append(errs, fmt.Errorf("%s: duplicate kid: every key with it is refused", e.name))
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

// bind checks one key (threat model A12) and binds it to its algorithm:
// the entry's alg when it has one, else the key type's (RSA:
// DefaultRSAAlgorithm; EC: the curve's; Ed25519: EdDSA).
func (p *keyPolicy) bind(e keyEntry) (*boundKey, error) {
	if e.err != nil {
		return nil, e.err
	}
	alg := e.alg
	bk := &boundKey{kid: e.kid, hasKid: e.hasKid}
	switch pub := e.key.(type) {
	case *rsa.PublicKey:
		if pub == nil || pub.N == nil {
			return nil, errors.New("empty RSA key")
		}
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
		if pub == nil || pub.Curve == nil || pub.X == nil || pub.Y == nil {
			return nil, errors.New("empty EC key")
		}
		name := pub.Curve.Params().Name
		want := ""
		for a, info := range algorithms {
			if info.family == famEC && info.curve == pub.Curve {
				want = a
			}
		}
		if want == "" {
			return nil, fmt.Errorf("EC curve %s not supported (P-256, P-384 and P-521 are)", name)
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
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey, *ed25519.PrivateKey:
		return nil, errors.New("a private key: give its public key")
	case nil:
		return nil, errors.New("no key")
	default:
		return nil, fmt.Errorf("key type %T not supported for signatures (*rsa.PublicKey, *ecdsa.PublicKey and ed25519.PublicKey are)", e.key)
	}
	if !p.allowed[alg] {
		return nil, fmt.Errorf("algorithm %s not in Algorithms", alg)
	}
	bk.alg = alg
	return bk, nil
}

// publicKeyEntries lists AuthConfig.PublicKeys in kid order.
func publicKeyEntries(m map[string]crypto.PublicKey) []keyEntry {
	out := make([]keyEntry, 0, len(m))
	for _, kid := range slices.Sorted(maps.Keys(m)) {
		out = append(out, keyEntry{name: fmt.Sprintf("PublicKeys[%q]", logTrunc(kid, 64)), kid: kid, hasKid: kid != "", key: m[kid]})
	}
	return out
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
	// close stops the source's goroutines and waits for them.
	close()
}

type staticKeys struct{ ks *keySet }

func (s staticKeys) keys(context.Context) (*keySet, error) { return s.ks, nil }
func (staticKeys) generation(int64) uint64                 { return 0 }
func (s staticKeys) refetch(context.Context, func(*keySet) bool) (*keySet, error) {
	return s.ks, nil
}
func (staticKeys) close() {}

// newStaticKeys loads a static key set (field names the AuthConfig field);
// any refused key is an error.
func newStaticKeys(p *keyPolicy, field string, entries []keyEntry) (staticKeys, error) {
	ks, errs := p.buildKeySet(entries)
	if len(errs) > 0 {
		return staticKeys{}, fmt.Errorf("middleware: %s: %w", field, errors.Join(errs...))
	}
	if len(ks.all) == 0 {
		return staticKeys{}, fmt.Errorf("middleware: %s has no key", field)
	}
	return staticKeys{ks}, nil
}

// newJWTAuthKeys wraps a *jwtauth.JWTAuth: its one key, bound to its
// algorithm. jwtauth keeps both unexported, so they are read by reflection;
// an HMAC secret shorter than the hash is refused (threat model A22).
func newJWTAuthKeys(p *keyPolicy, ja *jwtauth.JWTAuth) (staticKeys, error) {
	v := reflect.ValueOf(ja).Elem()
	f := v.FieldByName("alg")
	if !f.IsValid() || f.Kind() != reflect.String {
		return staticKeys{}, errors.New("middleware: JWTAuth: cannot read its algorithm")
	}
	alg := f.String()
	info, known := algorithms[alg]
	if !known || !p.allowed[alg] {
		return staticKeys{}, fmt.Errorf("middleware: JWTAuth: algorithm %q is not in Algorithms", alg)
	}
	if info.family == famHMAC {
		key := v.FieldByName("verifyKey")
		if !key.IsValid() || key.IsNil() {
			key = v.FieldByName("signKey")
		}
		if !key.IsValid() || key.IsNil() || key.Elem().Kind() != reflect.Slice || key.Elem().Len() < info.hash.Size() {
			return staticKeys{}, fmt.Errorf("middleware: JWTAuth: %s secret must be at least %d bytes", alg, info.hash.Size())
		}
	}
	bk := &boundKey{alg: alg, ja: ja}
	return staticKeys{&keySet{byKid: map[string]*boundKey{}, all: []*boundKey{bk}}}, nil
}
