package fhirjson

import (
	"bytes"
	"os"
	"regexp"
	"slices"
	"testing"

	"github.com/fhirguard/fhirguard/internal/fhirdata"
	"github.com/fhirguard/fhirguard/internal/gen/elementnames/gen"
)

// TestGeneratedUpToDate fails when names_gen.go differs from what the
// generator makes of the FHIR definitions: run `go generate ./internal/fhirjson`.
func TestGeneratedUpToDate(t *testing.T) {
	want, err := gen.Generate(fhirdata.FS)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("names_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("names_gen.go is stale: run go generate ./internal/fhirjson")
	}
}

func TestGeneratedNames(t *testing.T) {
	for _, n := range []string{
		"subject", "patient", "performer", "hasMember", "focus", "valueQuantity",
		"effectiveDateTime", "participant", "individual", "beneficiary", "member",
		"entity", "requester", "recorder", "asserter",
	} {
		if !slices.Contains(generatedNames, n) {
			t.Errorf("generatedNames lacks %q", n)
		}
	}
	grammar := regexp.MustCompile(`^[a-z][A-Za-z0-9]*$`)
	for i, n := range generatedNames {
		if !grammar.MatchString(n) {
			t.Errorf("generated name %q does not match %s", n, grammar)
		}
		if i > 0 && generatedNames[i-1] >= n {
			t.Errorf("generatedNames not sorted and unique at %q, %q", generatedNames[i-1], n)
		}
	}
	// Function names, literals and type names are not element names.
	for _, n := range []string{"where", "resolve", "ofType", "exists", "first", "false", "string", "canonical", "Patient", "resourceComposition"} {
		if slices.Contains(generatedNames, n) {
			t.Errorf("generatedNames holds %q", n)
		}
	}
}

// TestGeneratedCollisions pins the known names that differ only in case:
// the reader accepts each of them as written and refuses none of their
// variants. A new entry needs a look.
func TestGeneratedCollisions(t *testing.T) {
	if c := gen.Collisions(generatedNames); len(c) != 0 {
		t.Errorf("generated names differing only in case: %q", c)
	}
	if c := gen.Collisions(slices.Concat(baseNames, generatedNames)); len(c) != 0 {
		t.Errorf("known names differing only in case: %q", c)
	}
}

func TestGeneratedNamesCaseVariantsRefused(t *testing.T) {
	// These start with a lower-case letter: only the known names refuse them.
	for _, key := range []string{"sUbject", "hasmember", "valuequantity", "effectivedatetime", "indiviDual", "_hasmember"} {
		if err := Valid([]byte(`{"`+key+`":1}`), Options{Mode: FHIR}); err == nil {
			t.Errorf("%q accepted", key)
		}
	}
	for _, key := range []string{"subject", "hasMember", "valueQuantity", "effectiveDateTime", "individual"} {
		if err := Valid([]byte(`{"`+key+`":1}`), Options{Mode: FHIR}); err != nil {
			t.Errorf("%q: %v", key, err)
		}
	}
}
