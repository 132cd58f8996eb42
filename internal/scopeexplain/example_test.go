package scopeexplain_test

import (
	"fmt"
	"os"

	"github.com/fhirguard/fhirguard/internal/scopeexplain"
)

func ExampleRun() {
	code := scopeexplain.Run([]string{"launch/patient patient/Observation.read patient/Observation.sr"}, os.Stdout, os.Stderr)
	fmt.Println("exit status:", code)
	// Output:
	// Scope string: "launch/patient patient/Observation.read patient/Observation.sr"
	// 3 scopes: 2 valid, 1 invalid.
	//
	// #1 launch/patient
	//    kind:         launch
	//    meaning:      asks for a patient in context at launch (outside the EHR: a patient picker); the token then carries "patient"; grants no data access
	//
	// #2 patient/Observation.read
	//    kind:         resource
	//    meaning:      read and search Observation resources of the patient in context
	//    context:      patient: only the data of the patient in the launch context (the token's patient)
	//    type:         Observation (FHIR R4, R5)
	//    syntax:       v1
	//    permissions:  rs
	//      r  read    read, vread, history-instance
	//      s  search  search-type, search-system, search-compartment, history-type, history-system
	//    v2 form:      patient/Observation.rs
	//
	// #3 patient/Observation.sr  INVALID
	//    kind:         invalid
	//    error:        scope: permission letters out of order or repeated: "sr"
	//    meaning:      invalid: grants nothing (the other scopes still apply)
	//    did you mean: patient/Observation.rs
	//
	// Effective permissions (as the middleware enforces them):
	//   patient/Observation  rs
	//
	// Warnings:
	//   - 1 scope is invalid and grants nothing; the other scopes still apply
	// exit status: 1
}

func ExampleExplain() {
	r := scopeexplain.Explain("launch/patient patient/Observation.rs?category=laboratory,vital-signs patient/Patient.r")
	for _, e := range r.Effective {
		fmt.Printf("%s/%s: %s", e.Context, e.ResourceType, e.Permissions)
		for _, c := range e.Constrained {
			fmt.Printf(" (%s only where %v)", c.Letter, c.AnyOf)
		}
		fmt.Println()
	}
	fmt.Println(r.Scopes[1].Resource.Constraints[0].AnyOf)
	// Output:
	// patient/Observation: rs (r only where [category=laboratory,vital-signs]) (s only where [category=laboratory,vital-signs])
	// patient/Patient: r
	// [laboratory vital-signs]
}
