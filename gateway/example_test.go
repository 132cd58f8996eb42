package gateway_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/fhirguard/fhirguard/gateway"
	"github.com/fhirguard/fhirguard/middleware"
	"github.com/fhirguard/fhirguard/smarttest"
)

// A FHIR server that knows nothing of SMART, guarded: the Guard authorizes
// each request, the Proxy forwards it and rewrites the server's own
// address in the answer into the public base.
func ExampleNew() {
	const base = "https://ehr.example.org/fhir"

	// The FHIR server, with its own address in Location and references.
	var upstream string
	fhir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimPrefix(r.URL.Path, "/r4/Observation/")
		w.Header().Set("Content-Type", "application/fhir+json")
		w.Header().Set("Content-Location", upstream+"/Observation/"+id+"/_history/1")
		fmt.Fprintf(w, `{"resourceType":"Observation","id":%q,"status":"final","subject":{"reference":"%s/Patient/%s"}}`,
			id, upstream, strings.TrimPrefix(id, "obs-"))
	}))
	defer fhir.Close()
	upstream = fhir.URL + "/r4"

	proxy, err := gateway.New(gateway.Config{Upstream: upstream, BaseURL: base})
	if err != nil {
		panic(err)
	}
	defer proxy.Close()

	as, err := smarttest.New(smarttest.Config{FHIRBase: base})
	if err != nil {
		panic(err)
	}
	defer as.Close()
	guard, err := middleware.New(middleware.Config{
		Authorize: middleware.AuthorizeConfig{BaseURL: base, UpstreamBaseURL: upstream, Logger: slog.New(slog.DiscardHandler)},
		Auth:      middleware.AuthConfig{Issuers: []string{as.SMARTConfiguration().Issuer}, JWKS: as.JWKS()},
	})
	if err != nil {
		panic(err)
	}
	defer guard.Close()
	h := guard.Handler(proxy)

	tok, err := as.MintToken(smarttest.TokenOptions{Scopes: "patient/Observation.rs", Patient: "123"})
	if err != nil {
		panic(err)
	}
	for _, id := range []string{"obs-123", "obs-456"} {
		r := httptest.NewRequest(http.MethodGet, base+"/Observation/"+id, nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		body, _ := io.ReadAll(rec.Body)
		fmt.Println(strings.TrimSpace(fmt.Sprint(rec.Code, " ", rec.Header().Get("Content-Location"))))
		fmt.Println(string(body))
	}
	// Output:
	// 200 https://ehr.example.org/fhir/Observation/obs-123/_history/1
	// {"resourceType":"Observation","id":"obs-123","status":"final","subject":{"reference":"https://ehr.example.org/fhir/Patient/123"}}
	// 404
	// {"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found","diagnostics":"resource not found"}]}
}
