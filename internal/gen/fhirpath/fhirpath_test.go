package fhirpath

import (
	"slices"
	"testing"
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
