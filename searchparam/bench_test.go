package searchparam

import (
	"testing"

	"github.com/fhirguard/fhirguard/fhir"
)

// handCategory is the baseline: the same category check written by hand for
// this one parameter and value.
func handCategory(res map[string]any, system, code string) bool {
	cats, _ := res["category"].([]any)
	for _, c := range cats {
		cc, _ := c.(map[string]any)
		codings, _ := cc["coding"].([]any)
		for _, x := range codings {
			m, _ := x.(map[string]any)
			if s, _ := m["system"].(string); s == system {
				if k, _ := m["code"].(string); k == code {
					return true
				}
			}
		}
	}
	return false
}

// BenchmarkMatchToken evaluates granular-scope style constraints on a
// typical laboratory Observation, next to a hand-written check.
func BenchmarkMatchToken(b *testing.B) {
	lab := decode(b, labObservation)
	cat := lookup(b, fhir.R4, "Observation", "category")
	comp := lookup(b, fhir.R4, "Observation", "component-code")
	b.Run("baseline/hand-written-category", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !handCategory(lab, obsCat, "laboratory") {
				b.Fatal("no match")
			}
		}
	})
	cases := []struct {
		name  string
		p     Param
		value string
		want  bool
	}{
		{"category/system|code", cat, obsCat + "|laboratory", true},
		{"category/no-match", cat, obsCat + "|vital-signs", false},
		{"category/or-3", cat, obsCat + "|survey," + obsCat + "|exam," + obsCat + "|laboratory", true},
		{"component-code/system|code", comp, "http://loinc.org|8462-4", true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if m, _ := matchToken(lab, c.p, c.value); m != c.want {
					b.Fatal("wrong result")
				}
			}
		})
	}
}

func BenchmarkLookup(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := Lookup(fhir.R4, "Observation", "category"); !ok {
			b.Fatal("not found")
		}
	}
}

func BenchmarkMatchReference(b *testing.B) {
	lab := decode(b, labObservation)
	p := lookup(b, fhir.R4, "Observation", "patient")
	b.ReportAllocs()
	for b.Loop() {
		if m, _ := matchReference(lab, p, "Patient/p1"); !m {
			b.Fatal("no match")
		}
	}
}
