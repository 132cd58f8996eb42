package middleware_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"

	"github.com/fhirguard/fhirguard/fhirrest"
	"github.com/fhirguard/fhirguard/middleware"
	"github.com/fhirguard/fhirguard/scope"
	"github.com/fhirguard/fhirguard/smarttest"
)

// A handler can read the decision to filter in its own storage: here a
// patient token's search was narrowed to its patient's compartment.
func ExampleDecisionFromContext() {
	const base = "https://ehr.example.org/fhir"
	as, err := smarttest.New(smarttest.Config{FHIRBase: base, Issuer: "https://as.example.org"})
	if err != nil {
		panic(err)
	}
	g, err := middleware.New(middleware.Config{
		Authorize: middleware.AuthorizeConfig{BaseURL: base, Logger: slog.New(slog.DiscardHandler)},
		Auth:      middleware.AuthConfig{Issuers: []string{as.SMARTConfiguration().Issuer}, JWKS: as.JWKS()},
	})
	if err != nil {
		panic(err)
	}
	defer g.Close()
	fhir := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, _ := middleware.DecisionFromContext(r.Context())
		fmt.Println(d.Interaction.Kind, d.Interaction.ResourceType, d.CompartmentType, d.CompartmentID, d.Narrowed)
		fmt.Println(r.URL.RawQuery)
		w.Header().Set("Content-Type", "application/fhir+json")
		io.WriteString(w, `{"resourceType":"Bundle","type":"searchset"}`)
	})
	tok, err := as.MintToken(smarttest.TokenOptions{Scopes: "patient/Observation.rs", Patient: "123"})
	if err != nil {
		panic(err)
	}
	r := httptest.NewRequest("GET", base+"/Observation?code=http://loinc.org|2339-0", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	g.Handler(fhir).ServeHTTP(httptest.NewRecorder(), r)
	// Output:
	// search-type Observation Patient 123 true
	// code=http%3A%2F%2Floinc.org%7C2339-0&patient=Patient%2F123
}

// The defaults are functions returning fresh copies: to permit another
// operation, change a copy and pass it in the config. SharedTypes replaces
// its default list: name the defaults to keep them.
func ExampleDefaultOperations() {
	const base = "https://ehr.example.org/fhir"
	as, err := smarttest.New(smarttest.Config{FHIRBase: base, Issuer: "https://as.example.org"})
	if err != nil {
		panic(err)
	}
	ops := append(middleware.DefaultOperations(), middleware.Operation{
		Name: "export", Levels: []fhirrest.Level{fhirrest.LevelSystem}, Permission: scope.Read | scope.Search,
	})
	g, err := middleware.New(middleware.Config{
		Authorize: middleware.AuthorizeConfig{
			BaseURL:    base,
			Operations: ops,
			SharedTypes: []string{"Medication", "Organization", "Location", "Practitioner", "PractitionerRole", "Substance",
				"Questionnaire"},
			Logger: slog.New(slog.DiscardHandler),
		},
		Auth: middleware.AuthConfig{Issuers: []string{as.SMARTConfiguration().Issuer}, JWKS: as.JWKS()},
	})
	if err != nil {
		panic(err)
	}
	defer g.Close()
	fmt.Println(len(middleware.DefaultOperations()), len(ops))

	fhir := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		io.WriteString(w, `{"resourceType":"Questionnaire","id":"q1"}`)
	})
	h := g.Handler(fhir)
	for _, c := range []smarttest.TokenOptions{
		{Scopes: "system/*.rs"},
		{Scopes: "patient/*.rs", Patient: "123"},
	} {
		tok, err := as.MintToken(c)
		if err != nil {
			panic(err)
		}
		for _, path := range []string{"/$export", "/Questionnaire/q1"} {
			r := httptest.NewRequest("GET", base+path, nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			fmt.Println(c.Scopes, path, rec.Code)
		}
	}
	// Output:
	// 4 5
	// system/*.rs /$export 200
	// system/*.rs /Questionnaire/q1 200
	// patient/*.rs /$export 403
	// patient/*.rs /Questionnaire/q1 200
}

// ParseOrigins reads the origins allowed to call the API from a flag, and
// says which entry is not an origin as browsers send it.
func ExampleParseOrigins() {
	origins, err := middleware.ParseOrigins("https://app.example.org, http://localhost:9000")
	fmt.Printf("%q %v\n", origins, err)
	_, err = middleware.ParseOrigins("https://app.example.org/")
	fmt.Println(err)
	// Output:
	// ["https://app.example.org" "http://localhost:9000"] <nil>
	// middleware: invalid CORS origin "https://app.example.org/": has a trailing slash; an origin has no path: write https://app.example.org
}
