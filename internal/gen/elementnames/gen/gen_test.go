package gen

import (
	"reflect"
	"testing"
	"testing/fstest"
)

func TestExpressionNames(t *testing.T) {
	rt := map[string]bool{"Composition": true, "Patient": true, "Observation": true}
	tests := []struct {
		expr string
		want []string
	}{
		{"Observation.subject", []string{"subject"}},
		{"Observation.subject.where(resolve() is Patient)", []string{"subject"}},
		{"Encounter.participant.individual", []string{"participant", "individual"}},
		{"(Observation.value as Quantity)", []string{"value", "valueQuantity"}},
		{"Observation.value.ofType(Quantity)", []string{"value", "valueQuantity"}},
		{"Observation.effective.ofType(dateTime)", []string{"effective", "effectiveDateTime"}},
		{"Condition.onset.as(Age) | Condition.onset.is(FHIR.string)", []string{"onset", "onsetAge", "onset", "onsetString"}},
		{"Observation.value is Quantity", []string{"value", "valueQuantity"}},
		{"Observation.value as FHIR.Quantity", []string{"value", "valueQuantity"}},
		{"(Observation.value as CodeableConcept).text", []string{"value", "valueCodeableConcept", "text"}},
		{"Patient.telecom.where(system='phone')", []string{"telecom", "system"}},
		{"Patient.deceased.exists() and Patient.deceased != false", []string{"deceased", "deceased"}},
		{"Bundle.entry[0].resource as Composition", []string{"entry", "resource"}},
		{"(start | requestedPeriod.start).first()", []string{"start", "requestedPeriod", "start"}},
		{"CareTeam.extension('http://x/y.z|a').value", []string{"value"}},
		{"QuestionnaireResponse.item.where(extension('u').exists()).answer.value.ofType(Reference)",
			[]string{"item", "answer", "value", "valueReference"}},
		{"%resource.referenceSeq.chromosome", []string{"referenceSeq", "chromosome"}},
		{"ValueSet.expansion.contains.code", []string{"expansion", "contains", "code"}},
		{"Task.for.where(resolve() is Patient)", []string{"for"}},
		{"X.a.where(b > 1.5 and c in %set).d.ofType(Reference)", []string{"a", "b", "c", "d", "dReference"}},
		{"(A.b | A.c) as Reference", []string{"b", "c"}},
		{"Observation", nil},
	}
	for _, tt := range tests {
		got, err := ExpressionNames(tt.expr, rt)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ExpressionNames(%q) = %q, %v; want %q", tt.expr, got, err, tt.want)
		}
	}
	for _, bad := range []string{"X.a.where(b='x", "X.a # b", "X.a.ofType()", "X.a_b", "X.`a-b`"} {
		if got, err := ExpressionNames(bad, rt); err == nil {
			t.Errorf("ExpressionNames(%q) = %q, want an error", bad, got)
		}
	}
}

func TestCollisions(t *testing.T) {
	got := Collisions([]string{"a", "bX", "bx", "c", "Bx", "d", "dD", "dd"})
	want := [][]string{{"Bx", "bX", "bx"}, {"dD", "dd"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Collisions = %q, want %q", got, want)
	}
	if got := Collisions([]string{"a", "b"}); len(got) != 0 {
		t.Errorf("Collisions = %q, want none", got)
	}
}

func TestGenerateRejectsBadInput(t *testing.T) {
	for name, fs := range map[string]fstest.MapFS{
		"empty":    {},
		"bad json": {"r4/search-parameters.json": {Data: []byte("{")}},
	} {
		if _, err := Generate(fs); err == nil {
			t.Errorf("%s: Generate accepted bad input", name)
		}
	}
}
