package middleware_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/fhirguard/fhirguard/middleware"
	"github.com/fhirguard/fhirguard/smarttest"
)

// An authorization server's public keys verify its tokens. smarttest
// stands in for the authorization server; a real one publishes its keys at
// a JWKS URL (AuthConfig.JWKSURL), which follows key rotations.
func ExampleNewAuthenticator() {
	as, err := smarttest.New(smarttest.Config{FHIRBase: "https://fhir.example.org/r4"})
	if err != nil {
		log.Fatal(err)
	}
	defer as.Close()

	a, err := middleware.NewAuthenticator(middleware.AuthConfig{
		Audience:   "https://fhir.example.org/r4",
		Issuers:    []string{as.SMARTConfiguration().Issuer},
		PublicKeys: as.PublicKeys(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	// With chi: r.Use(a.Handler).
	handler := a.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, _ := middleware.TokenFromContext(r.Context())
		fmt.Fprintf(w, "patient %s, client %s, may read Observations: %v",
			t.Patient, t.ClientID, t.Scopes.Set().Contains("patient/Observation.rs"))
	}))

	tok, err := as.MintToken(smarttest.TokenOptions{
		ClientID: "growth-chart",
		Scopes:   "launch/patient patient/Observation.rs",
		Patient:  "123",
	})
	if err != nil {
		log.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "https://fhir.example.org/r4/Observation?patient=123", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Body)

	// Without a token: an RFC 6750 challenge.
	w = httptest.NewRecorder()
	handler.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "https://fhir.example.org/r4/Observation", nil))
	fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))

	// Over plain HTTP a token is refused before it is looked at.
	r = httptest.NewRequest(http.MethodGet, "http://fhir.example.org/r4/Observation", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	w = httptest.NewRecorder()
	handler.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))
	// Output:
	// 200 patient 123, client growth-chart, may read Observations: true
	// 401 Bearer realm="https://fhir.example.org/r4"
	// 400 Bearer realm="https://fhir.example.org/r4", error="invalid_request", error_description="bearer tokens are only accepted over https"
}

// JWTs verified with the authorization server's JWKS, fetched and
// refreshed in the background, and opaque tokens introspected; OnDecision
// feeds metrics.
func ExampleAuthConfig_introspection() {
	as, err := smarttest.New(smarttest.Config{FHIRBase: "https://fhir.example.org/r4"})
	if err != nil {
		log.Fatal(err)
	}
	defer as.Close()
	if err := as.RegisterClient(smarttest.Client{ID: "fhir-server", Secret: "from-a-secret-store", Introspect: true}); err != nil {
		log.Fatal(err)
	}

	a, err := middleware.NewAuthenticator(middleware.AuthConfig{
		Audience: "https://fhir.example.org/r4",
		Issuers:  []string{as.SMARTConfiguration().Issuer},
		JWKSURL:  as.SMARTConfiguration().JWKSURI,
		Introspection: &middleware.IntrospectionConfig{
			Endpoint:     as.SMARTConfiguration().IntrospectionEndpoint,
			ClientID:     "fhir-server",
			ClientSecret: "from-a-secret-store",
		},
		// smarttest serves plain HTTP; never in production.
		InsecureAllowHTTPKeyURLs: true,
		OnDecision: func(e middleware.AuthEvent) {
			if e.Err != nil {
				fmt.Println("refused:", e.Err.Status)
				return
			}
			fmt.Println("introspected:", e.Introspected, "cached:", e.Cached, "patient:", e.Token.Patient)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close() // stops the JWKS refresh
	handler := a.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))

	get := func(tok string) {
		r := httptest.NewRequest(http.MethodGet, "https://fhir.example.org/r4/Observation", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		handler.ServeHTTP(httptest.NewRecorder(), r)
	}
	jwt, _ := as.MintToken(smarttest.TokenOptions{Scopes: "patient/Observation.rs", Patient: "123"})
	opaque, _ := as.MintToken(smarttest.TokenOptions{Scopes: "patient/Observation.rs", Patient: "456", Opaque: true})
	get(jwt)
	get(jwt)
	get(opaque)
	get("a-token-the-server-never-issued")
	// Output:
	// introspected: false cached: false patient: 123
	// introspected: false cached: true patient: 123
	// introspected: true cached: false patient: 456
	// refused: 401
}
