package resourcetypes

import (
	"bytes"
	"os"
	"testing"

	"github.com/fhirguard/fhirguard/internal/fhirdata"
	"github.com/fhirguard/fhirguard/internal/gen/resourcetypes/gen"
)

// TestGeneratedUpToDate fails when table_gen.go differs from what the
// generator makes of the FHIR definitions: run
// `go generate ./internal/resourcetypes`.
func TestGeneratedUpToDate(t *testing.T) {
	want, err := gen.Generate(fhirdata.FS)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("table_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("table_gen.go is stale: run go generate ./internal/resourcetypes")
	}
}
