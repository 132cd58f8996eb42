package compartment_test

import (
	"fmt"
	"net/url"

	"github.com/fhirguard/fhirguard/compartment"
	"github.com/fhirguard/fhirguard/fhir"
)

func ExampleChecker_Member() {
	c, err := compartment.New(compartment.Config{
		FHIRVersion: fhir.R4,
		BaseURLs:    []string{"https://fhir.example.org/r4"},
	})
	if err != nil {
		panic(err)
	}
	for _, ref := range []string{
		"Patient/123",
		"Patient/123/_history/2",
		"https://fhir.example.org/r4/Patient/123",
		"https://elsewhere.example/fhir/Patient/123",
		"Patient/1234",
	} {
		doc := `{"resourceType":"Observation","subject":{"reference":"` + ref + `"}}`
		ok, err := c.Member([]byte(doc), compartment.Patient, "123")
		fmt.Println(ref, ok, err)
	}
	// Output:
	// Patient/123 true <nil>
	// Patient/123/_history/2 true <nil>
	// https://fhir.example.org/r4/Patient/123 true <nil>
	// https://elsewhere.example/fhir/Patient/123 false <nil>
	// Patient/1234 false <nil>
}

func ExampleChecker_ParseReference() {
	c, err := compartment.New(compartment.Config{
		FHIRVersion: fhir.R4,
		BaseURLs:    []string{"https://fhir.example.org/r4"},
	})
	if err != nil {
		panic(err)
	}
	for _, ref := range []string{
		"Patient/123/_history/2",
		"HTTPS://FHIR.Example.org:443/r4/Patient/123",
		"https://elsewhere.example/fhir/Patient/9",
		"Patient/%31%32%33",
		"Patient?identifier=http://acme.org/mrn|77",
		"urn:uuid:c757873d-ec9a-4326-a141-556f43239520",
		"#p1",
	} {
		r := c.ParseReference(ref)
		fmt.Printf("%v %q %q %q other:%v\n", r.Kind, r.Type, r.ID, r.Version, c.RefersToOther(ref, compartment.Patient, "123"))
	}
	// Output:
	// RefLocal "Patient" "123" "2" other:false
	// RefLocal "Patient" "123" "" other:false
	// RefExternal "Patient" "9" "" other:true
	// RefInvalid "" "" "" other:true
	// RefConditional "Patient" "" "" other:true
	// RefURN "" "" "" other:false
	// RefContained "" "" "" other:false
}

func ExampleChecker_Narrow() {
	c, err := compartment.New(compartment.Config{FHIRVersion: fhir.R4})
	if err != nil {
		panic(err)
	}
	q, _ := url.ParseQuery("code=http://loinc.org|1234-5")
	fmt.Println(c.Binds("Observation", q, compartment.Patient, "123"))
	narrowed, err := c.Narrow("Observation", q, compartment.Patient, "123")
	fmt.Println(narrowed.Encode(), err)
	fmt.Println(c.Binds("Observation", narrowed, compartment.Patient, "123"))
	// Output:
	// false
	// code=http%3A%2F%2Floinc.org%7C1234-5&patient=Patient%2F123 <nil>
	// true
}

func ExampleLookup() {
	d := compartment.Lookup(fhir.R4, compartment.Patient)
	fmt.Println(len(d.ResourceTypes()), "member types")
	r, _ := d.Resource("Communication")
	for _, p := range r.Params {
		fmt.Println(p.Name, p.Paths)
	}
	fmt.Println("narrowed by", r.Narrow.Name)
	// Output:
	// 66 member types
	// subject [{subject }]
	// sender [{sender }]
	// recipient [{recipient }]
	// narrowed by patient
}
