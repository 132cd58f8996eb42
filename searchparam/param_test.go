package searchparam

import (
	"reflect"
	"slices"
	"testing"

	"github.com/fhirguard/fhirguard/fhir"
)

func TestLookup(t *testing.T) {
	p := func(elems ...string) []Path {
		out := make([]Path, len(elems))
		for i, e := range elems {
			out[i] = Path{Elements: e}
		}
		return out
	}
	patient := []Path{{Elements: "subject", Target: "Patient"}}
	tests := []struct {
		name     string
		v        fhir.Release
		rt, code string
		typ      Type
		paths    []Path
	}{
		// The parameters of the SMART and ONC / US Core granular scope examples.
		{"observation category", fhir.R4, "Observation", "category", Token, p("category")},
		{"observation code", fhir.R4, "Observation", "code", Token, p("code")},
		{"observation status", fhir.R4, "Observation", "status", Token, p("status")},
		{"observation value-concept", fhir.R4, "Observation", "value-concept", Token, p("valueCodeableConcept")},
		{"observation component-code", fhir.R4, "Observation", "component-code", Token, p("component.code")},
		{"observation combo-code", fhir.R4, "Observation", "combo-code", Token, p("code", "component.code")},
		{"observation date r4 (choice, no cast)", fhir.R4, "Observation", "date", Date, p("effective")},
		{"observation patient", fhir.R4, "Observation", "patient", Reference, patient},
		{"observation subject", fhir.R4, "Observation", "subject", Reference, p("subject")},
		{"condition category", fhir.R4, "Condition", "category", Token, p("category")},
		{"condition clinical-status", fhir.R4, "Condition", "clinical-status", Token, p("clinicalStatus")},
		{"condition code", fhir.R4, "Condition", "code", Token, p("code")},
		{"condition onset-date (as function)", fhir.R4, "Condition", "onset-date", Date, p("onsetDateTime", "onsetPeriod")},
		{"allergy clinical-status", fhir.R4, "AllergyIntolerance", "clinical-status", Token, p("clinicalStatus")},
		{"medicationrequest status", fhir.R4, "MedicationRequest", "status", Token, p("status")},
		{"medicationrequest intent", fhir.R4, "MedicationRequest", "intent", Token, p("intent")},
		{"medicationrequest code r4 (as cast)", fhir.R4, "MedicationRequest", "code", Token, p("medicationCodeableConcept")},
		{"medicationrequest medication r4", fhir.R4, "MedicationRequest", "medication", Reference, p("medicationReference")},
		{"diagnosticreport category", fhir.R4, "DiagnosticReport", "category", Token, p("category")},
		{"documentreference category", fhir.R4, "DocumentReference", "category", Token, p("category")},
		{"encounter class", fhir.R4, "Encounter", "class", Token, p("class")},
		{"encounter type", fhir.R4, "Encounter", "type", Token, p("type")},
		{"immunization status", fhir.R4, "Immunization", "status", Token, p("status")},
		{"procedure code", fhir.R4, "Procedure", "code", Token, p("code")},
		{"servicerequest category", fhir.R4, "ServiceRequest", "category", Token, p("category")},
		{"careplan category", fhir.R4, "CarePlan", "category", Token, p("category")},
		{"goal lifecycle-status", fhir.R4, "Goal", "lifecycle-status", Token, p("lifecycleStatus")},
		{"patient identifier", fhir.R4, "Patient", "identifier", Token, p("identifier")},
		{"patient name", fhir.R4, "Patient", "name", String, p("name")},
		{"observation value-string (cast then element)", fhir.R4, "Observation", "value-string", String, p("valueString", "valueCodeableConcept.text")},
		// Resource parameters apply to every type.
		{"_id", fhir.R4, "Observation", "_id", Token, p("id")},
		{"_tag", fhir.R4, "Condition", "_tag", Token, p("meta.tag")},
		{"_security", fhir.R4, "Patient", "_security", Token, p("meta.security")},
		{"_profile", fhir.R4, "Binary", "_profile", URI, p("meta.profile")},
		{"_lastUpdated", fhir.R4, "Bundle", "_lastUpdated", Date, p("meta.lastUpdated")},
		{"_source", fhir.R4, "Goal", "_source", URI, p("meta.source")},
		// R5.
		{"r5 observation category", fhir.R5, "Observation", "category", Token, p("category")},
		{"r5 observation value-concept (ofType)", fhir.R5, "Observation", "value-concept", Token, p("valueCodeableConcept")},
		{"r5 observation date", fhir.R5, "Observation", "date", Date, p("effectiveDateTime", "effectivePeriod", "effectiveTiming", "effectiveInstant")},
		{"r5 observation patient", fhir.R5, "Observation", "patient", Reference, patient},
		{"r5 condition clinical-status", fhir.R5, "Condition", "clinical-status", Token, p("clinicalStatus")},
		{"r5 medicationrequest code (CodeableReference)", fhir.R5, "MedicationRequest", "code", Token, p("medication.concept")},
		{"r5 medicationrequest medication", fhir.R5, "MedicationRequest", "medication", Reference, p("medication.reference")},
		{"r5 goal lifecycle-status", fhir.R5, "Goal", "lifecycle-status", Token, p("lifecycleStatus")},
		{"r5 encounter class", fhir.R5, "Encounter", "class", Token, p("class")},
		{"r5 _profile is a reference", fhir.R5, "Patient", "_profile", Reference, p("meta.profile")},
		{"r5 _language", fhir.R5, "Patient", "_language", Token, p("language")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Lookup(tt.v, tt.rt, tt.code)
			if !ok {
				t.Fatalf("Lookup(%v, %s, %s) not found", tt.v, tt.rt, tt.code)
			}
			if got.Name != tt.code || got.Type != tt.typ || got.Unresolved || !reflect.DeepEqual(got.Paths, tt.paths) {
				t.Errorf("Lookup(%v, %s, %s) = %+v; want type %v paths %v", tt.v, tt.rt, tt.code, got, tt.typ, tt.paths)
			}
			if got.Expression == "" {
				t.Error("no expression")
			}
		})
	}
}

func TestLookupMisses(t *testing.T) {
	tests := []struct {
		name     string
		v        fhir.Release
		rt, code string
	}{
		{"unknown version", fhir.Release(0), "Observation", "category"},
		{"version out of range", fhir.Release(9), "Observation", "category"},
		{"unknown type", fhir.R4, "Observations", "category"},
		{"lower-case type", fhir.R4, "observation", "category"},
		{"abstract Resource", fhir.R4, "Resource", "_id"},
		{"abstract DomainResource", fhir.R4, "DomainResource", "_text"},
		{"unknown param", fhir.R4, "Observation", "categories"},
		{"param of another type", fhir.R4, "Observation", "clinical-status"},
		{"empty code", fhir.R4, "Observation", ""},
		{"empty type", fhir.R4, "", "_id"},
		{"modifier is not part of the code", fhir.R4, "Observation", "category:not"},
		{"r5 only type in r4", fhir.R4, "NutritionIntake", "_id"},
		{"r4 only type in r5", fhir.R5, "MedicinalProduct", "_id"},
		{"DomainResource param on Bundle (r4)", fhir.R4, "Bundle", "_text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if p, ok := Lookup(tt.v, tt.rt, tt.code); ok {
				t.Errorf("Lookup(%v, %q, %q) = %+v, want not found", tt.v, tt.rt, tt.code, p)
			}
		})
	}
}

func TestLookupBaseParamsOnEveryType(t *testing.T) {
	for _, v := range []fhir.Release{fhir.R4, fhir.R5} {
		// The table holds every resource type of the release, and no other.
		types := fhir.ResourceTypes(v)
		tb := tableOf(v)
		if len(tb.types) != len(types) {
			t.Fatalf("%v: %d types in the table, %d resource types", v, len(tb.types), len(types))
		}
		for i, rt := range types {
			if tb.types[i].name != rt {
				t.Fatalf("%v: table type %d is %q, want %q", v, i, tb.types[i].name, rt)
			}
		}
		for _, rt := range types {
			for _, code := range []string{"_id", "_lastUpdated", "_tag", "_security", "_profile", "_source"} {
				if p, ok := Lookup(v, rt, code); !ok || p.Unresolved || len(p.Paths) != 1 {
					t.Errorf("%v %s.%s = %+v, %v", v, rt, code, p, ok)
				}
			}
		}
	}
	if _, ok := Lookup(fhir.R4, "Observation", "_text"); !ok {
		t.Error("DomainResource parameter missing on Observation")
	}
}

func TestParams(t *testing.T) {
	got := Params(fhir.R4, "Observation")
	for _, want := range []string{"_id", "_lastUpdated", "_tag", "_text", "category", "code", "patient", "value-concept"} {
		if !slices.Contains(got, want) {
			t.Errorf("Params(R4, Observation) lacks %q", want)
		}
	}
	if !slices.IsSorted(got) {
		t.Error("Params not sorted")
	}
	for _, name := range got {
		if _, ok := Lookup(fhir.R4, "Observation", name); !ok {
			t.Errorf("Params lists %q, Lookup does not find it", name)
		}
	}
	if slices.Contains(Params(fhir.R4, "Bundle"), "_text") {
		t.Error("Bundle has no DomainResource parameters")
	}
	if Params(fhir.R4, "Nope") != nil || Params(fhir.Release(0), "Observation") != nil {
		t.Error("Params of unknown type or version not nil")
	}
}

func TestTablesSorted(t *testing.T) {
	for _, v := range []fhir.Release{fhir.R4, fhir.R5} {
		tb := tableOf(v)
		sorted := func(ps []Param) bool {
			return slices.IsSortedFunc(ps, func(a, b Param) int {
				if a.Name < b.Name {
					return -1
				}
				if a.Name > b.Name {
					return 1
				}
				return 0
			})
		}
		if !sorted(tb.resource) || !sorted(tb.domain) {
			t.Errorf("%v: base parameters not sorted", v)
		}
		for i, tp := range tb.types {
			if i > 0 && tb.types[i-1].name >= tp.name {
				t.Errorf("%v: types not sorted at %s", v, tp.name)
			}
			if !sorted(tp.params) {
				t.Errorf("%v %s: parameters not sorted", v, tp.name)
			}
			for j := 1; j < len(tp.params); j++ {
				if tp.params[j-1].Name == tp.params[j].Name {
					t.Errorf("%v %s: duplicate %s", v, tp.name, tp.params[j].Name)
				}
			}
		}
	}
}

func TestLookupAllocs(t *testing.T) {
	n := testing.AllocsPerRun(100, func() {
		if _, ok := Lookup(fhir.R4, "Observation", "category"); !ok {
			t.Fatal("not found")
		}
		if _, ok := Lookup(fhir.R5, "Patient", "_id"); !ok {
			t.Fatal("not found")
		}
	})
	if n != 0 {
		t.Errorf("Lookup allocates %v times", n)
	}
}

func TestStrings(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"token", Token.String(), "token"},
		{"uri", URI.String(), "uri"},
		{"number", Number.String(), "number"},
		{"special", Special.String(), "special"},
		{"zero type", Type(0).String(), "Type(0)"},
		{"bad type", Type(42).String(), "Type(42)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}
