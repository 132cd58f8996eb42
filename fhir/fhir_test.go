package fhir

import (
	"slices"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/internal/resourcetypes"
)

func TestValidID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"123", true}, {"a-B.9", true}, {strings.Repeat("x", 64), true}, {"..a", true}, {"a..", true}, {"...", true}, {"-", true},
		{"", false}, {strings.Repeat("x", 65), false}, {"a_b", false}, {"a/b", false}, {"..", false}, {".", false},
		{"a b", false}, {" a", false}, {"é", false}, {"a%2F", false}, {"a\x00", false}, {"a:b", false},
	} {
		if ValidID(tc.id) != tc.ok {
			t.Errorf("ValidID(%q) = %v", tc.id, !tc.ok)
		}
	}
}

func TestResourceTypes(t *testing.T) {
	r4, r5 := ResourceTypes(R4), ResourceTypes(R5)
	// R4 4.0.1 lists 146 concrete resource types; the R5 5.0.0 fhir-types
	// CodeSystem lists 158 (DeviceAssociation included).
	if len(r4) != 146 || len(r5) != 158 {
		t.Errorf("R4 %d types, R5 %d types", len(r4), len(r5))
	}
	if !slices.IsSorted(r4) || !slices.IsSorted(r5) {
		t.Error("not sorted")
	}
	if ResourceTypes(0) != nil || ResourceTypes(3) != nil {
		t.Error("types of an unknown release")
	}
	r4[0] = "Changed"
	if ResourceTypes(R4)[0] != "Account" {
		t.Error("ResourceTypes hands out its table")
	}
	union := map[string]bool{}
	for _, r := range []Release{R4, R5} {
		for _, name := range ResourceTypes(r) {
			union[name] = true
			if !IsResourceType(name) || !IsResourceType(name, r) || !IsResourceType(name, 0, r) {
				t.Errorf("IsResourceType(%q, %v) = false", name, r)
			}
		}
	}
	if len(union) != resourcetypes.Count {
		t.Errorf("%d types in R4 and R5, table of %d", len(union), resourcetypes.Count)
	}
	for i := range resourcetypes.Count {
		id := resourcetypes.ID(i)
		got, ok := resourcetypes.Lookup(id.Name())
		if !ok || got != id {
			t.Fatalf("Lookup(%q) = %d, %v; want %d", id.Name(), got, ok, i)
		}
	}
	if resourcetypes.ID(resourcetypes.Count).Name() != "" || resourcetypes.ID(resourcetypes.Count).Releases() != 0 {
		t.Error("out of range ID")
	}
}

func TestIsResourceType(t *testing.T) {
	for _, name := range []string{"Observation", "Patient", "Bundle", "Binary", "Parameters"} {
		if !IsResourceType(name, R4) || !IsResourceType(name, R5) {
			t.Errorf("%s is in R4 and R5", name)
		}
	}
	if !IsResourceType("MedicinalProduct", R4) || IsResourceType("MedicinalProduct", R5) || !IsResourceType("MedicinalProduct") {
		t.Error("MedicinalProduct is R4 only")
	}
	if IsResourceType("Transport", R4) || !IsResourceType("Transport", R5) || !IsResourceType("Transport", R4, R5) {
		t.Error("Transport is R5 only")
	}
	if IsResourceType("Observation", 0) || IsResourceType("Observation", 7) {
		t.Error("a type of an unknown release")
	}
	for _, bad := range []string{"", "observation", "OBSERVATION", "Resource", "DomainResource", "Observation ", "Observatio", "Observationn", "*", "metadata", "_history", "$everything"} {
		if IsResourceType(bad) {
			t.Errorf("IsResourceType(%q) = true", bad)
		}
	}
}

func TestReleaseString(t *testing.T) {
	if R4.String() != "R4" || R5.String() != "R5" || Release(0).String() != "Release(0)" || Release(9).String() != "Release(9)" {
		t.Error(R4, R5, Release(0), Release(9))
	}
}

func BenchmarkIsResourceType(b *testing.B) {
	for range b.N {
		if !IsResourceType("Observation") || !IsResourceType("Observation", R4) {
			b.Fatal("Observation")
		}
	}
}
