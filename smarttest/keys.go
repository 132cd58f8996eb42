package smarttest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// signingKey is one RS256 key of the server.
type signingKey struct {
	kid  string
	priv *rsa.PrivateKey
	pub  jwk.Key // public JWK with kid, alg, use
}

// keyring holds the server's signing keys; the last one signs.
type keyring struct {
	mu   sync.RWMutex
	keys []*signingKey
	set  jwk.Set // public keys, rebuilt on change
	json []byte  // the JWKS document
}

func newSigningKey() (*signingKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	kid := randomString(12)
	pub, err := jwk.FromRaw(priv.Public())
	if err != nil {
		return nil, err
	}
	for k, v := range map[string]any{jwk.KeyIDKey: kid, jwk.AlgorithmKey: jwa.RS256, jwk.KeyUsageKey: "sig"} {
		if err := pub.Set(k, v); err != nil {
			return nil, err
		}
	}
	return &signingKey{kid: kid, priv: priv, pub: pub}, nil
}

func (kr *keyring) rotate() (string, error) {
	k, err := newSigningKey()
	if err != nil {
		return "", fmt.Errorf("smarttest: generating a signing key: %w", err)
	}
	kr.mu.Lock()
	defer kr.mu.Unlock()
	kr.keys = append(kr.keys, k)
	return k.kid, kr.rebuild()
}

func (kr *keyring) remove(kid string) error {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	for i, k := range kr.keys {
		if k.kid == kid {
			if len(kr.keys) == 1 {
				return errLastKey
			}
			kr.keys = append(kr.keys[:i:i], kr.keys[i+1:]...)
			return kr.rebuild()
		}
	}
	return fmt.Errorf("%w: %q", errUnknownKey, kid)
}

// rebuild recomputes the public set; kr.mu is held.
func (kr *keyring) rebuild() error {
	set := jwk.NewSet()
	for _, k := range kr.keys {
		if err := set.AddKey(k.pub); err != nil {
			return err
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		return err
	}
	kr.set, kr.json = set, b
	return nil
}

func (kr *keyring) active() *signingKey {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	return kr.keys[len(kr.keys)-1]
}

func (kr *keyring) publicSet() jwk.Set {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	return kr.set
}

// RotateKey generates a new signing key, publishes it in the JWKS next to
// the old ones and signs every later token with it. It returns the new
// key's id.
func (s *Server) RotateKey() (kid string, err error) { return s.keys.rotate() }

// RemoveKey withdraws a key from the JWKS. Tokens it signed no longer
// introspect as active. When it was the signing key, the newest remaining
// key takes over. Removing an unknown key or the last key fails.
func (s *Server) RemoveKey(kid string) error { return s.keys.remove(kid) }

// keyIDs returns the ids of the published keys, oldest first; the last one
// signs.
func (s *Server) keyIDs() []string {
	s.keys.mu.RLock()
	defer s.keys.mu.RUnlock()
	ids := make([]string, len(s.keys.keys))
	for i, k := range s.keys.keys {
		ids[i] = k.kid
	}
	return ids
}

// SigningKeyID returns the id of the key that signs new tokens.
func (s *Server) SigningKeyID() string { return s.keys.active().kid }

// PublicKeys returns the published public keys by key id (each an
// *rsa.PublicKey), for resource servers configured with static keys: it
// fits middleware.AuthConfig.PublicKeys as it is. The map is a snapshot: a
// key added later by RotateKey is not in it (a resource server that must
// follow rotations fetches JWKSURL).
func (s *Server) PublicKeys() map[string]crypto.PublicKey {
	s.keys.mu.RLock()
	defer s.keys.mu.RUnlock()
	m := make(map[string]crypto.PublicKey, len(s.keys.keys))
	for _, k := range s.keys.keys {
		m[k.kid] = k.priv.Public()
	}
	return m
}

// JWKS returns the JWK Set document served at SMARTConfiguration().JWKSURI.
func (s *Server) JWKS() []byte {
	s.keys.mu.RLock()
	defer s.keys.mu.RUnlock()
	return append([]byte(nil), s.keys.json...)
}

// signJWT signs claims with the active key (RS256) and the given typ.
func (s *Server) signJWT(claims map[string]any, typ string) (string, error) {
	return signWith(s.keys.active(), claims, typ)
}

func signWith(k *signingKey, claims map[string]any, typ string) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("%w: claims do not encode as JSON: %v", errConfig, err)
	}
	h := jws.NewHeaders()
	if err := h.Set(jws.KeyIDKey, k.kid); err != nil {
		return "", err
	}
	if typ != "" {
		if err := h.Set(jws.TypeKey, typ); err != nil {
			return "", err
		}
	}
	b, err := jws.Sign(payload, jws.WithKey(jwa.RS256, k.priv, jws.WithProtectedHeaders(h)))
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// verifyOwn verifies a compact JWS signed by one of the published keys and
// returns its payload.
func (s *Server) verifyOwn(tok string) ([]byte, error) {
	if !looksCompact(tok) {
		return nil, fmt.Errorf("not a compact JWS")
	}
	return jws.Verify([]byte(tok), jws.WithKeySet(s.keys.publicSet()))
}

// looksCompact reports whether s has the shape of a compact JWS: three
// non-empty base64url segments.
func looksCompact(s string) bool {
	parts := 0
	seg := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if seg == 0 {
				return false
			}
			parts++
			seg = 0
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			seg++
		default:
			return false
		}
	}
	return parts == 2 && seg > 0
}

// randomString returns n random bytes, base64url-encoded.
func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("smarttest: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
