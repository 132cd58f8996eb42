package middleware_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/fhirguard/fhirguard/middleware"
)

func ExampleAuthenticate() {
	// The authorisation server's signing key (a real server publishes the
	// public half at its JWKS URL; set AuthConfig.JWKSURL instead of KeySet).
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	key, _ := jwk.FromRaw(priv)
	_ = key.Set(jwk.KeyIDKey, "as-key-1")
	_ = key.Set(jwk.AlgorithmKey, jwa.ES256)
	pub, _ := key.PublicKey()
	set := jwk.NewSet()
	_ = set.AddKey(pub)

	authenticate, err := middleware.Authenticate(middleware.AuthConfig{
		Audience: "https://fhir.example.org/r4",
		Issuers:  []string{"https://as.example.org"},
		KeySet:   set,
		// The example serves plain HTTP in-process; never in production.
		InsecureAllowHTTP: true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// With chi: r.Use(authenticate).
	handler := authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, _ := middleware.TokenFromContext(r.Context())
		fmt.Println("patient:", t.Patient, "client:", t.ClientID)
		fmt.Println("may read Observations:", t.Scopes.Set().Contains("patient/Observation.rs"))
	}))

	// An access token as the authorisation server would issue it.
	tok, _ := jwt.NewBuilder().
		Issuer("https://as.example.org").
		Audience([]string{"https://fhir.example.org/r4"}).
		IssuedAt(time.Now()).
		Expiration(time.Now().Add(5*time.Minute)).
		Claim("client_id", "growth-chart").
		Claim("scope", "launch/patient patient/Observation.rs").
		Claim("patient", "123").
		Build()
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.TypeKey, "at+jwt")
	signed, _ := jwt.Sign(tok, jwt.WithKey(jwa.ES256, key, jws.WithProtectedHeaders(hdr)))

	r := httptest.NewRequest(http.MethodGet, "/Observation?patient=123", nil)
	r.Header.Set("Authorization", "Bearer "+string(signed))
	handler.ServeHTTP(httptest.NewRecorder(), r)

	// A request without a token gets an RFC 6750 challenge.
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/Observation", nil))
	fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))
	// Output:
	// patient: 123 client: growth-chart
	// may read Observations: true
	// 401 Bearer realm="https://fhir.example.org/r4"
}

// A JWKS fetched from the authorisation server, with opaque tokens
// introspected, and a hook for metrics.
func ExampleNewAuthenticator() {
	a, err := middleware.NewAuthenticator(middleware.AuthConfig{
		Audience: "https://fhir.example.org/r4",
		Issuers:  []string{"https://as.example.org"},
		JWKSURL:  "https://as.example.org/.well-known/jwks.json",
		Introspection: &middleware.IntrospectionConfig{
			Endpoint:     "https://as.example.org/introspect",
			ClientID:     "fhir-server",
			ClientSecret: "from-a-secret-store",
		},
		// JWT-shaped tokens are verified locally, the others introspected.
		Mode:           middleware.AutoDetect,
		TrustedProxies: []string{"10.0.0.0/8"}, // the TLS-terminating load balancer
		OnDecision: func(e middleware.AuthEvent) {
			if e.Err != nil && e.Err.Status == http.StatusServiceUnavailable {
				// alert: the authorisation server is unreachable
			}
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer a.Close()
	mux := http.NewServeMux()
	_ = http.Handler(a.Handler(mux))
}
