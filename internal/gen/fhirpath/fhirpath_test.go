package fhirpath

import (
	"slices"
	"testing"

	"github.com/fhirguard/fhirguard/internal/fhirdata"
)

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		in          string
		union, dots []string
	}{
		{"Observation.subject", []string{"Observation.subject"}, []string{"Observation", "subject"}},
		{"A.b | (C.d as Reference) | E.f.where(resolve() is Patient)",
			[]string{"A.b", "(C.d as Reference)", "E.f.where(resolve() is Patient)"},
			[]string{"A", "b | (C.d as Reference) | E", "f", "where(resolve() is Patient)"}},
		{"X.telecom.where(system='a|b.c')", []string{"X.telecom.where(system='a|b.c')"}, []string{"X", "telecom", "where(system='a|b.c')"}},
	} {
		if got := SplitUnion(tc.in); !slices.Equal(got, tc.union) {
			t.Errorf("SplitUnion(%q) = %q, want %q", tc.in, got, tc.union)
		}
		if got := SplitDots(tc.in); !slices.Equal(got, tc.dots) {
			t.Errorf("SplitDots(%q) = %q, want %q", tc.in, got, tc.dots)
		}
	}
	for s, want := range map[string]bool{"subject": true, "value_x": true, "a1": true, "": false, "1a": false, "_a": false, "a-b": false, "a.b": false} {
		if IsIdent(s) != want {
			t.Errorf("IsIdent(%q) = %v", s, !want)
		}
	}
}

func TestResourceTypes(t *testing.T) {
	for dir, want := range map[string]int{"r4": 146, "r5": 158} {
		types, err := ResourceTypes(fhirdata.FS, dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(types) != want || !types["Observation"] || types["Resource"] || types["DomainResource"] {
			t.Errorf("%s: %d types", dir, len(types))
		}
	}
	if _, err := ResourceTypes(fhirdata.FS, "r3"); err == nil {
		t.Error("unknown release accepted")
	}
}
