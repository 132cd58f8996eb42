package gen

import (
	"github.com/fhirguard/fhirguard/internal/gen/fhirpath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

func TestParseTerm(t *testing.T) {
	tests := []struct {
		name    string
		rt      string
		term    string
		paths   []Path
		applies bool
		bad     bool
	}{
		{"plain", "Observation", "Observation.category", []Path{{Elements: "category"}}, true, false},
		{"nested", "Observation", "Observation.component.code", []Path{{Elements: "component.code"}}, true, false},
		{"base", "Resource", "Resource.meta.tag", []Path{{Elements: "meta.tag"}}, true, false},
		{"where resolve", "Observation", "Observation.subject.where(resolve() is Patient)", []Path{{Elements: "subject", Target: "Patient"}}, true, false},
		{"spaces", "Observation", "  Observation.code ", []Path{{Elements: "code"}}, true, false},
		{"as cast in parens", "Observation", "(Observation.value as CodeableConcept)", []Path{{Elements: "valueCodeableConcept"}}, true, false},
		{"as cast primitive", "Observation", "(Observation.effective as dateTime)", []Path{{Elements: "effectiveDateTime"}}, true, false},
		{"ofType", "Observation", "Observation.effective.ofType(Period)", []Path{{Elements: "effectivePeriod"}}, true, false},
		{"as function", "Condition", "Condition.onset.as(Age)", []Path{{Elements: "onsetAge"}}, true, false},
		{"ofType nested parens", "DocumentReference", "(DocumentReference.content.profile.value.ofType(Coding))", []Path{{Elements: "content.profile.valueCoding"}}, true, false},
		{"cast then element", "Observation", "(Observation.value as CodeableConcept).text", []Path{{Elements: "valueCodeableConcept.text"}}, true, false},
		{"ofType then element", "Observation", "Observation.value.ofType(CodeableConcept).text", []Path{{Elements: "valueCodeableConcept.text"}}, true, false},
		{"inner union", "Group", "(Group.a | Group.b)", []Path{{Elements: "a"}, {Elements: "b"}}, true, false},
		{"inner union other type", "Group", "(Other.a | Group.b)", []Path{{Elements: "b"}}, true, false},
		{"other type", "Observation", "Condition.category", nil, false, false},
		{"type prefix", "Observation", "ObservationDefinition.category", nil, false, false},
		{"no type", "Appointment", "(start | requestedPeriod.start).first()", nil, false, false},
		{"where other", "Patient", "Patient.telecom.where(system='email')", nil, true, true},
		{"extension", "CareTeam", "CareTeam.extension('http://x').value", nil, true, true},
		{"index", "Bundle", "Bundle.entry[0].resource", nil, true, true},
		{"operator", "Patient", "Patient.deceased.exists() and Patient.deceased != false", nil, true, true},
		{"type only", "Observation", "Observation", nil, true, true},
		{"element after where", "Observation", "Observation.subject.where(resolve() is Patient).reference", nil, true, true},
		{"two type selections", "Observation", "(Observation.value.ofType(Quantity) as Quantity)", nil, true, true},
		{"bad cast", "Observation", "Observation.value as Reference.x", nil, true, true},
		{"where resolve on type", "Observation", "Observation.where(resolve() is Patient)", nil, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			paths, applies, reason := parseTerm(tt.rt, tt.term)
			if applies != tt.applies || (reason != "") != tt.bad || !reflect.DeepEqual(paths, tt.paths) {
				t.Errorf("parseTerm = %v, %v, %q; want %v, %v, bad=%v", paths, applies, reason, tt.paths, tt.applies, tt.bad)
			}
		})
	}
}

func TestConvert(t *testing.T) {
	tests := []struct {
		name       string
		rt         string
		sp         searchParam
		paths      []Path
		unresolved bool
		bad        int
		expr       string
	}{
		{"shared expression", "Observation",
			searchParam{Code: "patient", Type: "reference", Expression: "AllergyIntolerance.patient | Observation.subject.where(resolve() is Patient) | Observation.focus.resolve()"},
			[]Path{{Elements: "subject", Target: "Patient"}}, true, 1,
			"Observation.subject.where(resolve() is Patient) | Observation.focus.resolve()"},
		{"no term for type", "Basic", searchParam{Code: "patient", Type: "reference", Expression: "Observation.subject"}, nil, true, 1, ""},
		{"no expression", "Resource", searchParam{Code: "_query", Type: "token"}, nil, true, 1, ""},
		{"composite", "Observation", searchParam{Code: "code-value", Type: "composite", Expression: "Observation"}, nil, true, 1, "Observation"},
		{"special", "Location", searchParam{Code: "near", Type: "special", Expression: "Location.position"}, nil, true, 1, "Location.position"},
		{"duplicate paths", "Observation", searchParam{Code: "x", Type: "token", Expression: "Observation.code | Observation.code"},
			[]Path{{Elements: "code"}}, false, 0, "Observation.code | Observation.code"},
		{"choice union", "Condition", searchParam{Code: "onset-date", Type: "date", Expression: "Condition.onset.as(dateTime) | Condition.onset.as(Period)"},
			[]Path{{Elements: "onsetDateTime"}, {Elements: "onsetPeriod"}}, false, 0, "Condition.onset.as(dateTime) | Condition.onset.as(Period)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, bad := convert(tt.rt, tt.sp)
			if !reflect.DeepEqual(p.Paths, tt.paths) || p.Unresolved != tt.unresolved || len(bad) != tt.bad {
				t.Errorf("convert = %+v, %+v", p, bad)
			}
			if tt.expr != "" && p.Expression != tt.expr {
				t.Errorf("Expression = %q, want %q", p.Expression, tt.expr)
			}
		})
	}
}

func TestGenerateRejectsBadInput(t *testing.T) {
	if _, err := Generate(fstest.MapFS{}); err == nil {
		t.Error("empty file system accepted")
	}
	bad := fstest.MapFS{
		"r4/codesystem-resource-types.json": {Data: []byte(`{"concept": [{"code": "Patient"}]}`)},
	}
	if _, err := Generate(bad); err == nil || !strings.Contains(err.Error(), "implausible") {
		t.Errorf("tiny type list: %v", err)
	}
}

// FuzzParseTerm checks that no expression panics the generator's reader and
// that what it reads is a dotted path of names.
func FuzzParseTerm(f *testing.F) {
	for _, s := range []string{"Observation.category", "(Observation.value as CodeableConcept).text",
		"Observation.subject.where(resolve() is Patient)", "Observation.effective.ofType(Period)",
		"(Observation.a | Observation.b)", "Bundle.entry[0].resource", "((Observation.x", "Observation.)",
		"Observation.value.as(", "(start | requestedPeriod.start).first()", "Observation.a.where(x='|')"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, term string) {
		paths, applies, reason := parseTerm("Observation", term)
		if !applies && (reason != "" || paths != nil) {
			t.Fatalf("not applying but %v %q", paths, reason)
		}
		if reason != "" {
			return
		}
		for _, p := range paths {
			for _, e := range strings.Split(p.Elements, ".") {
				if !fhirpath.IsIdent(e) {
					t.Fatalf("path %q has a bad element", p.Elements)
				}
			}
			if p.Target != "" && !fhirpath.IsIdent(p.Target) {
				t.Fatalf("bad target %q", p.Target)
			}
		}
	})
}
