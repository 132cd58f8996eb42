package searchparam_test

import (
	"encoding/json"
	"fmt"

	"github.com/fhirguard/fhirguard/fhir"
	"github.com/fhirguard/fhirguard/searchparam"
)

func ExampleLookup() {
	p, ok := searchparam.Lookup(fhir.R4, "Observation", "value-concept")
	fmt.Println(ok, p.Type, p.Paths[0].Elements)

	p, _ = searchparam.Lookup(fhir.R4, "Observation", "patient")
	fmt.Println(p.Type, p.Paths[0].Elements, p.Paths[0].Target)

	p, _ = searchparam.Lookup(fhir.R5, "Patient", "email")
	fmt.Println(p.Unresolved)
	// Output:
	// true token valueCodeableConcept
	// reference subject Patient
	// true
}

// A granular scope such as
// patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory
// grants a resource only when the resource matches the constraint.
func ExampleMatch() {
	var obs map[string]any
	_ = json.Unmarshal([]byte(`{
	  "resourceType": "Observation",
	  "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}]
	}`), &obs)

	p, _ := searchparam.Lookup(fhir.R4, "Observation", "category")
	for _, value := range []string{
		"http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
		"http://example.org/other-system|laboratory",
		"laboratory",
		"vital-signs,laboratory",
		"http://terminology.hl7.org/CodeSystem/observation-category|vital-signs",
	} {
		matched, ok := searchparam.Match(obs, p, value)
		fmt.Println(matched, ok)
	}
	// Output:
	// true true
	// false true
	// true true
	// true true
	// false true
}

func ExampleMatch_reference() {
	var obs map[string]any
	_ = json.Unmarshal([]byte(`{"resourceType": "Observation", "subject": {"reference": "Patient/123"}}`), &obs)
	p, _ := searchparam.Lookup(fhir.R4, "Observation", "patient")
	for _, value := range []string{"123", "Patient/123", "Patient/456"} {
		matched, _ := searchparam.Match(obs, p, value)
		fmt.Println(value, matched)
	}
	// Output:
	// 123 true
	// Patient/123 true
	// Patient/456 false
}

// The constraints of one granular scope all hold (AND); each is evaluated on
// the resource.
func ExampleMatchParam() {
	var cond map[string]any
	_ = json.Unmarshal([]byte(`{
	  "resourceType": "Condition",
	  "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "problem-list-item"}]}],
	  "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "resolved"}]}
	}`), &cond)

	// patient/Condition.rs?category=…|problem-list-item&clinical-status=…|active
	constraints := [][2]string{
		{"category", "http://terminology.hl7.org/CodeSystem/condition-category|problem-list-item"},
		{"clinical-status", "http://terminology.hl7.org/CodeSystem/condition-clinical|active"},
	}
	all := true
	for _, c := range constraints {
		matched, ok := searchparam.MatchParam(fhir.R4, cond, c[0], c[1])
		fmt.Println(c[0], matched, ok)
		all = all && ok && matched
	}
	fmt.Println("granted:", all)
	// Output:
	// category true true
	// clinical-status false true
	// granted: false
}
