package fhirrest_test

import (
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/fhirguard/fhirguard/fhirrest"
)

func ExampleClassify() {
	for _, target := range []string{
		"/fhir/Observation/lab1",
		"/fhir/Observation?patient=123&code=4548-4",
		"/fhir/Patient/123/Condition",
		"/fhir/Patient/123/$everything",
		"/fhir/Patient/pat-1/..%2Fpat-2",
		"/fhir/patient/123",
	} {
		r := httptest.NewRequest("GET", target, nil)
		it, err := fhirrest.Classify(r, "/fhir")
		if err != nil {
			fmt.Printf("%-45s refused (%d): %v\n", target, fhirrest.StatusCode(err), err)
			continue
		}
		fmt.Printf("%-45s %s %s needs %q\n", target, it.Kind, it.ResourceType, it.Permission())
	}
	// Output:
	// /fhir/Observation/lab1                        read Observation needs "r"
	// /fhir/Observation?patient=123&code=4548-4     search-type Observation needs "s"
	// /fhir/Patient/123/Condition                   search-compartment Condition needs "s"
	// /fhir/Patient/123/$everything                 operation Patient needs ""
	// /fhir/Patient/pat-1/..%2Fpat-2                refused (400): fhirrest: non-canonical path: encoded slash (%2F)
	// /fhir/patient/123                             refused (404): fhirrest: unknown resource type: not a FHIR R4 or R5 resource type
}

func ExampleClassifier_Classify() {
	c, err := fhirrest.New(fhirrest.Config{Base: "/fhir", BaseURL: "https://ehr.example.org/fhir"})
	if err != nil {
		panic(err)
	}
	body := `{"resourceType":"Bundle","type":"transaction","entry":[
	  {"request":{"method":"GET","url":"Observation/lab1"}},
	  {"request":{"method":"DELETE","url":"https://ehr.example.org/fhir/Observation/lab1"}}]}`
	r := httptest.NewRequest("POST", "/fhir", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/fhir+json")
	it, err := c.Classify(r)
	if err != nil {
		panic(err)
	}
	fmt.Println(it.Kind)
	for _, e := range it.Bundle.Entries {
		fmt.Println(e.Interaction.Kind, e.Interaction.ResourceType, e.Interaction.ID)
	}

	r = httptest.NewRequest("POST", "/fhir/Observation/obs-2", nil)
	r.Header.Set("X-HTTP-Method-Override", "DELETE")
	_, err = c.Classify(r)
	fmt.Println(fhirrest.StatusCode(err), err)
	// Output:
	// transaction
	// read Observation lab1
	// delete Observation lab1
	// 400 fhirrest: method override refused: method-override header or _method parameter
}

func ExampleParseBundle() {
	b, err := fhirrest.ParseBundle([]byte(`{"resourceType":"Bundle","type":"batch","entry":[
	  {"request":{"method":"GET","url":"Patient/123/Observation?code=4548-4"}},
	  {"request":{"method":"PUT","url":"Observation?identifier=lab|1"},"resource":{"resourceType":"Observation"}},
	  {"request":{"method":"GET","url":"Patient/123/../456"}}]}`))
	if err != nil {
		panic(err)
	}
	for i, e := range b.Entries {
		if e.Err != nil {
			fmt.Println(i, "denied:", fhirrest.StatusCode(e.Err), e.Err)
			continue
		}
		fmt.Println(i, e.Interaction, "needs", e.Interaction.Permission())
	}
	// Output:
	// 0 search-compartment GET Patient/123/Observation needs s
	// 1 update PUT Observation (conditional) needs u
	// 2 denied: 400 fhirrest: non-canonical path: dot segment
}
