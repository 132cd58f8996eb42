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
)

// A FHIR handler that returns whatever it is asked for, wrapped with
// Authorize: the patient-scoped token only ever sees its own patient's data.
func ExampleAuthorize() {
	fhir := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		switch r.URL.Path {
		case "/fhir/Observation/mine":
			io.WriteString(w, `{"resourceType":"Observation","id":"mine","subject":{"reference":"Patient/123"}}`)
		default:
			io.WriteString(w, `{"resourceType":"Observation","id":"theirs","subject":{"reference":"Patient/456"}}`)
		}
	})
	authorize, err := middleware.Authorize(middleware.AuthorizeConfig{
		BaseURL: "https://ehr.example.org/fhir",
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		panic(err)
	}
	// Authenticate would put the token in the context; here it is made by hand.
	tok := &middleware.Token{Patient: "123", Scopes: scope.Compile(scope.ParseSet("launch/patient patient/Observation.rs"))}
	h := authorize(fhir)

	for _, path := range []string{"/fhir/Observation/mine", "/fhir/Observation/theirs", "/fhir/Condition/1"} {
		r := httptest.NewRequest("GET", "https://ehr.example.org"+path, nil)
		r = r.WithContext(middleware.NewContextWithToken(r.Context(), tok))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		fmt.Println(path, rec.Code)
	}
	// Output:
	// /fhir/Observation/mine 200
	// /fhir/Observation/theirs 404
	// /fhir/Condition/1 403
}

// A handler can read the decision to filter in its own storage.
func ExampleDecisionFromContext() {
	fhir := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, _ := middleware.DecisionFromContext(r.Context())
		fmt.Println(d.Interaction.Kind, d.Interaction.ResourceType, d.CompartmentType, d.CompartmentID, d.Narrowed)
		w.Header().Set("Content-Type", "application/fhir+json")
		io.WriteString(w, `{"resourceType":"Bundle","type":"searchset"}`)
	})
	authorize, _ := middleware.Authorize(middleware.AuthorizeConfig{BaseURL: "https://ehr.example.org/fhir"})
	tok := &middleware.Token{Patient: "123", Scopes: scope.Compile(scope.ParseSet("patient/Observation.rs"))}
	r := httptest.NewRequest("GET", "https://ehr.example.org/fhir/Observation?code=http://loinc.org|2339-0", nil)
	r = r.WithContext(middleware.NewContextWithToken(r.Context(), tok))
	authorize(fhir).ServeHTTP(httptest.NewRecorder(), r)
	// Output:
	// search-type Observation Patient 123 true
}

// The defaults are functions returning fresh copies: to permit another
// operation or share another type, change a copy and pass it in the
// config. The defaults themselves cannot be changed.
func ExampleDefaultOperations() {
	ops := append(middleware.DefaultOperations(), middleware.Operation{
		Name: "export", Levels: []fhirrest.Level{fhirrest.LevelSystem}, Permission: scope.Read | scope.Search,
	})
	shared := append(middleware.DefaultSharedTypes(), "Questionnaire")
	authorize, err := middleware.Authorize(middleware.AuthorizeConfig{
		BaseURL:     "https://ehr.example.org/fhir",
		Operations:  ops,
		SharedTypes: shared,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(len(middleware.DefaultOperations()), len(ops), middleware.DefaultSharedTypes())

	fhir := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		io.WriteString(w, `{"resourceType":"Questionnaire","id":"q1"}`)
	})
	h := authorize(fhir)
	for _, c := range []struct{ path, scopes, patient string }{
		{"/fhir/$export", "system/*.rs", ""},
		{"/fhir/Questionnaire/q1", "patient/*.rs", "123"},
	} {
		tok := &middleware.Token{Patient: c.patient, Scopes: scope.Compile(scope.ParseSet(c.scopes))}
		r := httptest.NewRequest("GET", "https://ehr.example.org"+c.path, nil)
		r = r.WithContext(middleware.NewContextWithToken(r.Context(), tok))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		fmt.Println(c.path, rec.Code)
	}
	// Output:
	// 4 5 [Medication Organization Location Practitioner PractitionerRole Substance]
	// /fhir/$export 200
	// /fhir/Questionnaire/q1 200
}
