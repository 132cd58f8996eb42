package fhir_test

import (
	"fmt"

	"github.com/fhirguard/fhirguard/fhir"
)

func Example() {
	fmt.Println(fhir.R4, len(fhir.ResourceTypes(fhir.R4)), "resource types;", fhir.R5, len(fhir.ResourceTypes(fhir.R5)))

	for _, name := range []string{"Observation", "Transport", "observation"} {
		fmt.Printf("%-12s any: %-5v R4: %v\n", name, fhir.IsResourceType(name), fhir.IsResourceType(name, fhir.R4))
	}

	for _, id := range []string{"123", "a-B.9", "..", "a_b", ""} {
		fmt.Printf("%q %v\n", id, fhir.ValidID(id))
	}
	// Output:
	// R4 146 resource types; R5 158
	// Observation  any: true  R4: true
	// Transport    any: true  R4: false
	// observation  any: false R4: false
	// "123" true
	// "a-B.9" true
	// ".." false
	// "a_b" false
	// "" false
}
