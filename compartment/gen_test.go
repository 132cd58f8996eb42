package compartment

import (
	"bytes"
	"os"
	"slices"
	"testing"

	"github.com/fhirguard/fhirguard/fhir"
	"github.com/fhirguard/fhirguard/internal/fhirdata"
	"github.com/fhirguard/fhirguard/internal/gen/compartments/gen"
)

// TestGeneratedUpToDate fails when compartments_gen.go differs from what the
// generator makes of the FHIR definitions: run `go generate ./compartment`.
func TestGeneratedUpToDate(t *testing.T) {
	want, err := gen.Generate(fhirdata.FS)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("compartments_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("compartments_gen.go is stale: run go generate ./compartment")
	}
}

// TestUnresolved pins the expression terms the generator cannot turn into
// paths. A new entry needs a decision: teach the generator, or accept that
// the term links nothing.
func TestUnresolved(t *testing.T) {
	want := []unresolvedExpression{
		{fhir.R5, Patient, "RequestOrchestration", "participant", "RequestOrchestration.action.participant.actor.ofType(canonical)", "type canonical is not a Reference"},
		{fhir.R5, RelatedPerson, "RequestOrchestration", "participant", "RequestOrchestration.action.participant.actor.ofType(canonical)", "type canonical is not a Reference"},
		{fhir.R5, Practitioner, "RequestOrchestration", "participant", "RequestOrchestration.action.participant.actor.ofType(canonical)", "type canonical is not a Reference"},
	}
	got := unresolved[:]
	if len(got) != len(want) {
		t.Fatalf("unresolved has %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("unresolved[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	// Every unresolved term belongs to a parameter flagged Unresolved.
	for _, u := range got {
		r, ok := Lookup(u.Version, u.Compartment).Resource(u.Resource)
		if !ok {
			t.Fatalf("%+v: resource not in the definition", u)
		}
		found := false
		for _, p := range r.Params {
			if p.Name == u.Param {
				found = p.Unresolved
			}
		}
		if !found {
			t.Errorf("%+v: parameter not flagged Unresolved", u)
		}
		// The narrowing helpers still know the parameter.
		if !slices.Contains(Lookup(u.Version, u.Compartment).params(u.Resource), u.Param) {
			t.Errorf("%+v: Params does not list the parameter", u)
		}
	}
}
