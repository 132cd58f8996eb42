package searchparam

import (
	"reflect"
	"slices"
	"testing"
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
		v        Version
		rt, code string
		typ      Type
		paths    []Path
	}{
		// The parameters of the SMART and ONC / US Core granular scope examples.
		{"observation category", R4, "Observation", "category", Token, p("category")},
		{"observation code", R4, "Observation", "code", Token, p("code")},
		{"observation status", R4, "Observation", "status", Token, p("status")},
		{"observation value-concept", R4, "Observation", "value-concept", Token, p("valueCodeableConcept")},
		{"observation component-code", R4, "Observation", "component-code", Token, p("component.code")},
		{"observation combo-code", R4, "Observation", "combo-code", Token, p("code", "component.code")},
		{"observation date r4 (choice, no cast)", R4, "Observation", "date", Date, p("effective")},
		{"observation patient", R4, "Observation", "patient", Reference, patient},
		{"observation subject", R4, "Observation", "subject", Reference, p("subject")},
		{"condition category", R4, "Condition", "category", Token, p("category")},
		{"condition clinical-status", R4, "Condition", "clinical-status", Token, p("clinicalStatus")},
		{"condition code", R4, "Condition", "code", Token, p("code")},
		{"condition onset-date (as function)", R4, "Condition", "onset-date", Date, p("onsetDateTime", "onsetPeriod")},
		{"allergy clinical-status", R4, "AllergyIntolerance", "clinical-status", Token, p("clinicalStatus")},
		{"medicationrequest status", R4, "MedicationRequest", "status", Token, p("status")},
		{"medicationrequest intent", R4, "MedicationRequest", "intent", Token, p("intent")},
		{"medicationrequest code r4 (as cast)", R4, "MedicationRequest", "code", Token, p("medicationCodeableConcept")},
		{"medicationrequest medication r4", R4, "MedicationRequest", "medication", Reference, p("medicationReference")},
		{"diagnosticreport category", R4, "DiagnosticReport", "category", Token, p("category")},
		{"documentreference category", R4, "DocumentReference", "category", Token, p("category")},
		{"encounter class", R4, "Encounter", "class", Token, p("class")},
		{"encounter type", R4, "Encounter", "type", Token, p("type")},
		{"immunization status", R4, "Immunization", "status", Token, p("status")},
		{"procedure code", R4, "Procedure", "code", Token, p("code")},
		{"servicerequest category", R4, "ServiceRequest", "category", Token, p("category")},
		{"careplan category", R4, "CarePlan", "category", Token, p("category")},
		{"goal lifecycle-status", R4, "Goal", "lifecycle-status", Token, p("lifecycleStatus")},
		{"patient identifier", R4, "Patient", "identifier", Token, p("identifier")},
		{"patient name", R4, "Patient", "name", String, p("name")},
		{"observation value-string (cast then element)", R4, "Observation", "value-string", String, p("valueString", "valueCodeableConcept.text")},
		// Resource parameters apply to every type.
		{"_id", R4, "Observation", "_id", Token, p("id")},
		{"_tag", R4, "Condition", "_tag", Token, p("meta.tag")},
		{"_security", R4, "Patient", "_security", Token, p("meta.security")},
		{"_profile", R4, "Binary", "_profile", URI, p("meta.profile")},
		{"_lastUpdated", R4, "Bundle", "_lastUpdated", Date, p("meta.lastUpdated")},
		{"_source", R4, "Goal", "_source", URI, p("meta.source")},
		// R5.
		{"r5 observation category", R5, "Observation", "category", Token, p("category")},
		{"r5 observation value-concept (ofType)", R5, "Observation", "value-concept", Token, p("valueCodeableConcept")},
		{"r5 observation date", R5, "Observation", "date", Date, p("effectiveDateTime", "effectivePeriod", "effectiveTiming", "effectiveInstant")},
		{"r5 observation patient", R5, "Observation", "patient", Reference, patient},
		{"r5 condition clinical-status", R5, "Condition", "clinical-status", Token, p("clinicalStatus")},
		{"r5 medicationrequest code (CodeableReference)", R5, "MedicationRequest", "code", Token, p("medication.concept")},
		{"r5 medicationrequest medication", R5, "MedicationRequest", "medication", Reference, p("medication.reference")},
		{"r5 goal lifecycle-status", R5, "Goal", "lifecycle-status", Token, p("lifecycleStatus")},
		{"r5 encounter class", R5, "Encounter", "class", Token, p("class")},
		{"r5 _profile is a reference", R5, "Patient", "_profile", Reference, p("meta.profile")},
		{"r5 _language", R5, "Patient", "_language", Token, p("language")},
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
		v        Version
		rt, code string
	}{
		{"unknown version", Version(0), "Observation", "category"},
		{"version out of range", Version(9), "Observation", "category"},
		{"unknown type", R4, "Observations", "category"},
		{"lower-case type", R4, "observation", "category"},
		{"abstract Resource", R4, "Resource", "_id"},
		{"abstract DomainResource", R4, "DomainResource", "_text"},
		{"unknown param", R4, "Observation", "categories"},
		{"param of another type", R4, "Observation", "clinical-status"},
		{"empty code", R4, "Observation", ""},
		{"empty type", R4, "", "_id"},
		{"modifier is not part of the code", R4, "Observation", "category:not"},
		{"r5 only type in r4", R4, "NutritionIntake", "_id"},
		{"r4 only type in r5", R5, "MedicinalProduct", "_id"},
		{"DomainResource param on Bundle (r4)", R4, "Bundle", "_text"},
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
	for _, v := range []Version{R4, R5} {
		types := ResourceTypes(v)
		if len(types) < 140 {
			t.Fatalf("%v: %d resource types", v, len(types))
		}
		if !slices.IsSorted(types) {
			t.Errorf("%v: ResourceTypes not sorted", v)
		}
		for _, rt := range types {
			for _, code := range []string{"_id", "_lastUpdated", "_tag", "_security", "_profile", "_source"} {
				if p, ok := Lookup(v, rt, code); !ok || p.Unresolved || len(p.Paths) != 1 {
					t.Errorf("%v %s.%s = %+v, %v", v, rt, code, p, ok)
				}
			}
		}
	}
	if _, ok := Lookup(R4, "Observation", "_text"); !ok {
		t.Error("DomainResource parameter missing on Observation")
	}
}

func TestParams(t *testing.T) {
	got := Params(R4, "Observation")
	for _, want := range []string{"_id", "_lastUpdated", "_tag", "_text", "category", "code", "patient", "value-concept"} {
		if !slices.Contains(got, want) {
			t.Errorf("Params(R4, Observation) lacks %q", want)
		}
	}
	if !slices.IsSorted(got) {
		t.Error("Params not sorted")
	}
	for _, name := range got {
		if _, ok := Lookup(R4, "Observation", name); !ok {
			t.Errorf("Params lists %q, Lookup does not find it", name)
		}
	}
	if slices.Contains(Params(R4, "Bundle"), "_text") {
		t.Error("Bundle has no DomainResource parameters")
	}
	if Params(R4, "Nope") != nil || Params(Version(0), "Observation") != nil {
		t.Error("Params of unknown type or version not nil")
	}
	if ResourceTypes(Version(3)) != nil {
		t.Error("ResourceTypes of unknown version not nil")
	}
}

func TestTablesSorted(t *testing.T) {
	for _, v := range []Version{R4, R5} {
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
		if _, ok := Lookup(R4, "Observation", "category"); !ok {
			t.Fatal("not found")
		}
		if _, ok := Lookup(R5, "Patient", "_id"); !ok {
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
		{"R4", R4.String(), "R4"},
		{"R5", R5.String(), "R5"},
		{"bad version", Version(7).String(), "Version(7)"},
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
