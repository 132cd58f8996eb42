package compartment

import (
	"slices"
	"testing"

	"github.com/fhirguard/fhirguard/fhir"
)

// TestTypesIsACopy: changing the slice Types returns changes nothing in the
// package (issue 13 §4).
func TestTypesIsACopy(t *testing.T) {
	want := []Type{Patient, Encounter, RelatedPerson, Practitioner, Device}
	got := Types()
	if !slices.Equal(got, want) {
		t.Fatalf("Types() = %v, want %v", got, want)
	}
	for i := range got {
		got[i] = Device
	}
	if again := Types(); !slices.Equal(again, want) {
		t.Fatalf("after changing a returned slice, Types() = %v", again)
	}
	// A Checker still holds a patient to its own compartment.
	c, err := New(Config{FHIRVersion: fhir.R4})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Member([]byte(`{"resourceType":"Observation","id":"o","subject":{"reference":"Patient/456"}}`), Patient, "123"); err != nil || ok {
		t.Fatalf("Observation of Patient/456 in Patient/123's compartment: %v, %v", ok, err)
	}
	if ok, err := c.Member([]byte(`{"resourceType":"Observation","id":"o","subject":{"reference":"Patient/123"}}`), Patient, "123"); err != nil || !ok {
		t.Fatalf("Observation of Patient/123 not in its compartment: %v, %v", ok, err)
	}
}
