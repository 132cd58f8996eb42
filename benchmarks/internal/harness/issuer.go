package harness

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// Names the harness uses for its tokens and servers.
const (
	// BaseURL is the FHIR base of the benchmark server and the audience of
	// its tokens. Requests reach it on a loopback address; only the path
	// (/fhir) has to match.
	BaseURL = "https://fhir.bench.example/fhir"
	// IssuerURL is the iss of the tokens an Issuer signs.
	IssuerURL = "https://as.bench.example"
	// BasePath is the path of BaseURL.
	BasePath = "/fhir"
)

// Algorithms are the signature algorithms an Issuer signs with.
var Algorithms = []string{"RS256", "ES256", "EdDSA"}

// ErrAlgorithm is returned for a signature algorithm an Issuer has no key
// for.
var ErrAlgorithm = errors.New("harness: unknown signature algorithm")

// Issuer signs access tokens with keys generated in memory (RSA 2048 for
// RS256, P-256 for ES256, Ed25519 for EdDSA). It stands in for an
// authorisation server without any network.
type Issuer struct {
	keys   map[string]crypto.Signer
	public map[string]crypto.PublicKey // by kid
	now    func() time.Time
}

// NewIssuer generates one key per algorithm in Algorithms.
func NewIssuer() (*Issuer, error) {
	iss := &Issuer{keys: map[string]crypto.Signer{}, public: map[string]crypto.PublicKey{}, now: time.Now}
	for _, alg := range Algorithms {
		var (
			priv crypto.Signer
			err  error
		)
		switch alg {
		case "RS256":
			priv, err = rsa.GenerateKey(rand.Reader, 2048)
		case "ES256":
			priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		case "EdDSA":
			_, priv, err = ed25519.GenerateKey(rand.Reader)
		}
		if err != nil {
			return nil, fmt.Errorf("harness: generating the %s key: %w", alg, err)
		}
		iss.public["k-"+alg] = priv.Public()
		iss.keys[alg] = priv
	}
	return iss, nil
}

// PublicKeys returns the public keys by kid (for middleware.AuthConfig's
// PublicKeys). Each call returns a new map.
func (i *Issuer) PublicKeys() map[string]crypto.PublicKey { return maps.Clone(i.public) }

// PublicKey returns the public key for alg.
func (i *Issuer) PublicKey(alg string) (crypto.PublicKey, error) {
	k, ok := i.keys[alg]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrAlgorithm, alg)
	}
	return k.Public(), nil
}

// TokenSpec describes an access token to sign.
type TokenSpec struct {
	// Alg is the signature algorithm (default RS256).
	Alg string
	// Scopes is the scope claim, space-separated.
	Scopes string
	// Patient is the patient launch context claim; empty leaves it out.
	Patient string
	// ID makes tokens with otherwise equal claims distinct (the jti claim).
	ID int
	// Padding, when not empty, is the value of an extra claim,
	// "bench_padding", that no check reads: it makes a token as long as
	// another (see SignAsLong).
	Padding string
	// Lifetime is exp − now (default 50 minutes, under the middleware's
	// one-hour maximum). A negative Lifetime makes an expired token, issued
	// ten minutes before it expired.
	Lifetime time.Duration
}

// Sign returns a compact JWS access token (header typ at+jwt) with the SMART
// claims of s: iss, sub, aud, exp, iat, jti, client_id, scope, and patient
// and fhirUser when s names a patient.
func (i *Issuer) Sign(s TokenSpec) (string, error) {
	alg := s.Alg
	if alg == "" {
		alg = "RS256"
	}
	priv, ok := i.keys[alg]
	if !ok {
		return "", fmt.Errorf("%w: %q", ErrAlgorithm, alg)
	}
	life := s.Lifetime
	if life == 0 {
		life = 50 * time.Minute
	}
	now := i.now().Truncate(time.Second)
	iat := now
	if life < 0 {
		iat = now.Add(life - 10*time.Minute)
	}
	t := jwt.New()
	claims := map[string]any{
		jwt.IssuerKey:     IssuerURL,
		jwt.SubjectKey:    "bench-user",
		jwt.AudienceKey:   []string{BaseURL},
		jwt.IssuedAtKey:   iat,
		jwt.ExpirationKey: now.Add(life),
		jwt.JwtIDKey:      "jti-" + strconv.Itoa(s.ID),
		"client_id":       "bench-app",
		"scope":           s.Scopes,
	}
	if s.Patient != "" {
		claims["patient"] = s.Patient
		claims["fhirUser"] = "Patient/" + s.Patient
	}
	if s.Padding != "" {
		claims["bench_padding"] = s.Padding
	}
	for k, v := range claims {
		if err := t.Set(k, v); err != nil {
			return "", err
		}
	}
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.KeyIDKey, "k-"+alg); err != nil {
		return "", err
	}
	if err := hdr.Set(jws.TypeKey, "at+jwt"); err != nil {
		return "", err
	}
	out, err := jwt.Sign(t, jwt.WithKey(jwa.SignatureAlgorithm(alg), priv, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", err
	}
	return string(out), nil
}

// SignAsLong signs s padded (TokenSpec.Padding) to be at least as long as
// other, and at most a few bytes longer: requests carrying the two tokens
// are then the same size, so that a comparison of two scenarios does not
// include the server's reading of a longer Authorization header (net/http
// spends about 20 instructions per header byte).
func (i *Issuer) SignAsLong(s TokenSpec, other string) (string, error) {
	for n := 0; ; n++ {
		s.Padding = strings.Repeat("p", n)
		tok, err := i.Sign(s)
		if err != nil || len(tok) >= len(other) || n > len(other) {
			return tok, err
		}
	}
}
