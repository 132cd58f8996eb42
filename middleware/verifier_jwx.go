package middleware

// This is the only file of the package that imports jwx: moving to the next
// jwx major is a change to this file alone. No jwx type leaves it: JWKs are
// read into keyEntry values holding standard crypto keys.
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
	"crypto/rsa"
	"errors"
	"fmt"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	jwxjws "github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// jwxVerifiers holds one jwx verifier per algorithm (they are stateless).
var jwxVerifiers = func() map[string]jwxjws.Verifier {
	m := map[string]jwxjws.Verifier{}
	for name, info := range algorithms {
		if info.family == famPSS || info.family == famHMAC {
			continue
		}
		v, err := jwxjws.NewVerifier(jwa.SignatureAlgorithm(name))
		if err != nil {
			panic(err) // a known algorithm: unreachable
		}
		m[name] = v
	}
	return m
}()

// verifySignature checks t's signature with k.
func verifySignature(t *jws, k *boundKey) error {
	if k.ja != nil {
		if _, err := k.ja.Decode(t.raw); err != nil {
			return fmt.Errorf("%w: %v", errSignature, err)
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
		return fmt.Errorf("%w: %v", errSignature, err)
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

// parseJWKS reads a JWK Set document into key entries. With lenient (a
// fetched set), keys that do not parse are left out and the others stay
// usable; otherwise (AuthConfig.JWKS) they fail the document.
func parseJWKS(doc []byte, lenient bool) ([]keyEntry, error) {
	set, err := jwk.Parse(doc, jwk.WithIgnoreParseError(lenient))
	if err != nil {
		return nil, err
	}
	out := make([]keyEntry, 0, set.Len())
	for i := 0; i < set.Len(); i++ {
		key, _ := set.Key(i)
		e := keyEntry{
			name: fmt.Sprintf("key %d (kid %q)", i, logTrunc(key.KeyID(), 64)),
			kid:  key.KeyID(),
			alg:  key.Algorithm().String(),
		}
		_, e.hasKid = key.Get(jwk.KeyIDKey)
		if e.err = checkJWK(key); e.err == nil {
			if err := key.Raw(&e.key); err != nil {
				e.err = fmt.Errorf("unusable key: %w", err)
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// checkJWK refuses the JWKs that are never verification keys (threat model
// A12): symmetric keys, private keys, keys for another use.
func checkJWK(key jwk.Key) error {
	if key.KeyType() == jwa.OctetSeq {
		return errors.New("symmetric (oct) keys are never loaded from a key set")
	}
	if priv, err := jwk.IsPrivateKey(key); err != nil || priv {
		return errors.New("private key material in a verification key set")
	}
	if use := key.KeyUsage(); use != "" && use != "sig" {
		return fmt.Errorf("use is %q, not sig", logTrunc(use, 16))
	}
	if ops := key.KeyOps(); len(ops) > 0 {
		ok := false
		for _, op := range ops {
			if op == jwk.KeyOpVerify {
				ok = true
			}
		}
		if !ok {
			return errors.New("key_ops does not include verify")
		}
	}
	return nil
}
