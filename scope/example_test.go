package scope_test

import (
	"fmt"

	"github.com/fhirguard/fhirguard/scope"
)

func Example() {
	set := scope.ParseSet("launch/patient openid fhirUser patient/Observation.rs?category=laboratory patient/Patient.read patient/Condition.dus")
	for _, bad := range set.Invalid() {
		fmt.Println("ignored:", bad.Raw)
	}

	m := scope.Compile(set) // once per distinct scope string; share it
	fmt.Println(m.Allows(scope.Patient, "Patient", scope.Read|scope.Search))
	fmt.Println(m.Allows(scope.Patient, "Condition", scope.Delete))

	obs, _ := scope.LookupType("Observation")
	g := m.Lookup(scope.Patient, obs, scope.Search)
	fmt.Println(g.Allowed, g.Unconstrained, g.Constraints)
	// Output:
	// ignored: patient/Condition.dus
	// true
	// false
	// true false [category=laboratory]
}

func ExampleParse() {
	sc, err := scope.Parse("patient/Observation.read")
	if err != nil {
		panic(err)
	}
	fmt.Println(sc.Kind, sc.Context, sc.ResourceType, sc.Permissions, sc.V1)
	fmt.Println(sc)

	_, err = scope.Parse("patient/Observation.dus")
	fmt.Println(err)
	// Output:
	// resource patient Observation rs true
	// patient/Observation.read
	// scope: permission letters out of order or repeated: "dus"
}
