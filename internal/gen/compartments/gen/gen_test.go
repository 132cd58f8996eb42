package gen

import (
	"reflect"
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
		{"plain", "Observation", "Observation.subject", []Path{{Elements: "subject"}}, true, false},
		{"nested", "Encounter", "Encounter.participant.individual", []Path{{Elements: "participant.individual"}}, true, false},
		{"where", "Account", "Account.subject.where(resolve() is Patient)", []Path{{Elements: "subject", Target: "Patient"}}, true, false},
		{"spaces", "MedicationAdministration", " MedicationAdministration.encounter ", []Path{{Elements: "encounter"}}, true, false},
		{"as cast", "DeviceRequest", "(DeviceRequest.code as Reference)", []Path{{Elements: "codeReference"}, {Elements: "code"}}, true, false},
		{"ofType", "RequestOrchestration", "RequestOrchestration.action.participant.actor.ofType(Reference)",
			[]Path{{Elements: "action.participant.actorReference"}, {Elements: "action.participant.actor"}}, true, false},
		{"as function", "X", "X.value.as(Reference)", []Path{{Elements: "valueReference"}, {Elements: "value"}}, true, false},
		{"other type", "Observation", "Condition.subject", nil, false, false},
		{"type prefix", "Observation", "ObservationDefinition.subject", nil, false, false},
		{"canonical", "RequestOrchestration", "RequestOrchestration.action.participant.actor.ofType(canonical)", nil, true, true},
		{"extension", "Patient", "Patient.extension('http://x').value", nil, true, true},
		{"resolve in middle", "Patient", "Patient.link.other.resolve().name", nil, true, true},
		{"index", "Observation", "Observation.performer[0]", nil, true, true},
		{"type only", "Observation", "Observation", nil, true, true},
		{"where not last", "Observation", "Observation.subject.where(resolve() is Patient).reference", nil, true, true},
		{"other where", "Observation", "Observation.subject.where(reference.startsWith('Patient'))", nil, true, true},
		{"bad cast", "Observation", "Observation.value as Reference.x", nil, true, true},
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

func TestConvertSharedExpression(t *testing.T) {
	sp := searchParam{Code: "patient", Type: "reference", Target: []string{"Patient", "Group"},
		Expression: "AllergyIntolerance.patient | CarePlan.subject.where(resolve() is Patient) | Observation.subject.where(resolve() is Patient) | Observation.focus.resolve()"}
	p, bad := convert("Observation", sp)
	want := []Path{{Elements: "subject", Target: "Patient"}}
	if !reflect.DeepEqual(p.Paths, want) || !p.Unresolved || len(bad) != 1 || bad[0].Expression != "Observation.focus.resolve()" {
		t.Errorf("convert = %+v, %+v", p, bad)
	}
	if p.Expression != "Observation.subject.where(resolve() is Patient) | Observation.focus.resolve()" {
		t.Errorf("Expression = %q", p.Expression)
	}
	if p, bad := convert("Basic", sp); !p.Unresolved || len(bad) != 1 || len(p.Paths) != 0 {
		t.Errorf("no term for the type: %+v %+v", p, bad)
	}
}

func TestGenerateRejectsBadInput(t *testing.T) {
	tests := []struct {
		name string
		fs   fstest.MapFS
	}{
		{"empty", fstest.MapFS{}},
		{"bad json", fstest.MapFS{"r4/search-parameters.json": {Data: []byte("{")}}},
		{"too few parameters", fstest.MapFS{"r4/search-parameters.json": {Data: []byte(`{"entry":[]}`)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Generate(tt.fs); err == nil {
				t.Error("Generate accepted bad input")
			}
		})
	}
}
