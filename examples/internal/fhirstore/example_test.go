package fhirstore_test

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/fhirguard/fhirguard/examples/internal/fhirstore"
)

func Example() {
	store, err := fhirstore.New(fhirstore.Config{
		BasePath: "/fhir",
		BaseURL:  "https://ehr.example.org/fhir",
		// The examples put the SMART block of the CapabilityStatement here.
		Security: json.RawMessage(`{"service":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/restful-security-service","code":"SMART-on-FHIR"}]}]}`),
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Seed(); err != nil {
		log.Fatal(err)
	}
	// In the examples the store sits behind the fhirguard middleware.
	// Register the base itself too: batches are POSTed to /fhir, and the
	// ServeMux would otherwise redirect them to /fhir/.
	mux := http.NewServeMux()
	mux.Handle("/fhir", store)
	mux.Handle("/fhir/", store)

	get := func(target string) map[string]any {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		var m map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &m)
		fmt.Println(rec.Code, rec.Header().Get("ETag"), m["resourceType"])
		return m
	}

	obs := get("/fhir/Observation/lab1")
	fmt.Println(obs["id"], obs["status"], obs["subject"])

	bundle := get("/fhir/Observation?patient=123&category=laboratory&_include=Observation:patient")
	for _, e := range bundle["entry"].([]any) {
		e := e.(map[string]any)
		fmt.Println(e["fullUrl"], e["search"].(map[string]any)["mode"])
	}
	// Output:
	// 200 W/"2" Observation
	// lab1 final map[reference:Patient/123]
	// 200  Bundle
	// https://ehr.example.org/fhir/Observation/lab1 match
	// https://ehr.example.org/fhir/Observation/lab2 match
	// https://ehr.example.org/fhir/Patient/123 include
}
