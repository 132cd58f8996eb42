package scope

import (
	"bytes"
	"os"
	"testing"

	"github.com/fhirguard/fhirguard/internal/fhirdata"
	"github.com/fhirguard/fhirguard/internal/gen/resourcetypes/gen"
)

// TestGeneratedTypesUpToDate fails when resourcetypes_gen.go differs from what
// the generator makes of the FHIR definitions: run `go generate ./scope`.
func TestGeneratedTypesUpToDate(t *testing.T) {
	want, err := gen.Generate(fhirdata.FS)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("resourcetypes_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("resourcetypes_gen.go is stale: run go generate ./scope")
	}
}
