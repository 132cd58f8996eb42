package middleware_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/fhirguard/fhirguard/middleware"
	"github.com/fhirguard/fhirguard/smarttest"
)

// The whole stack in front of a FHIR server that would return any Patient
// it is asked for. smarttest stands in for the authorization server: it
// mints a token for an app launched for patient 123, which may read its
// own Patient resource and not another patient's (404, as for an absent
// one). The FHIR handler never sees the refused request.
func ExampleNew() {
	const base = "https://ehr.example.org/fhir"
	as, err := smarttest.New(smarttest.Config{FHIRBase: base, Issuer: "https://as.example.org"})
	if err != nil {
		panic(err)
	}
	g, err := middleware.New(middleware.Config{
		Authorize: middleware.AuthorizeConfig{BaseURL: base, Logger: slog.New(slog.DiscardHandler)},
		Auth: middleware.AuthConfig{
			Issuers: []string{as.SMARTConfiguration().Issuer},
			JWKS:    as.JWKS(), // in production: JWKSURL, the server's jwks_uri
			Logger:  slog.New(slog.DiscardHandler),
		},
	})
	if err != nil {
		panic(err)
	}
	defer g.Close()

	fhir := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("the FHIR server got", r.Method, r.URL.Path)
		id := strings.TrimPrefix(r.URL.Path, "/fhir/Patient/")
		w.Header().Set("Content-Type", "application/fhir+json")
		fmt.Fprintf(w, `{"resourceType":"Patient","id":%q}`, id)
	})
	h := g.Handler(fhir)

	tok, err := as.MintToken(smarttest.TokenOptions{Scopes: "launch/patient patient/Patient.r", Patient: "123"})
	if err != nil {
		panic(err)
	}
	for _, id := range []string{"123", "456"} {
		r := httptest.NewRequest(http.MethodGet, base+"/Patient/"+id, nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		fmt.Println("GET Patient/"+id, rec.Code, rec.Body)
	}
	// Output:
	// the FHIR server got GET /fhir/Patient/123
	// GET Patient/123 200 {"resourceType":"Patient","id":"123"}
	// GET Patient/456 404 {"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found","diagnostics":"resource not found"}]}
}
