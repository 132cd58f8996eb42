package searchparam

import (
	"encoding/json"
	"testing"

	"github.com/fhirguard/fhirguard/fhir"
)

const (
	obsCat   = "http://terminology.hl7.org/CodeSystem/observation-category"
	condCat  = "http://terminology.hl7.org/CodeSystem/condition-category"
	condClin = "http://terminology.hl7.org/CodeSystem/condition-clinical"
	loinc    = "http://loinc.org"
)

func decode(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func lookup(t testing.TB, v fhir.Release, rt, code string) Param {
	t.Helper()
	p, ok := Lookup(v, rt, code)
	if !ok {
		t.Fatalf("no parameter %s.%s", rt, code)
	}
	return p
}

const labObservation = `{
  "resourceType": "Observation",
  "id": "lab-1",
  "meta": {"tag": [{"system": "http://example.org/tags", "code": "reviewed"}, {"code": "untagged"}]},
  "status": "final",
  "category": [
    {"coding": [{"system": "http://example.org/local-category", "code": "chem"}]},
    {"coding": [{"system": "` + obsCat + `", "code": "laboratory", "display": "Laboratory"}], "text": "Lab"}
  ],
  "code": {"coding": [{"system": "` + loinc + `", "code": "2345-7"}, {"code": "GLU"}], "text": "Glucose"},
  "subject": {"reference": "Patient/p1"},
  "effectiveDateTime": "2024-01-02",
  "valueQuantity": {"value": 5.4, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
  "identifier": [{"system": "urn:oid:1.2.3", "value": "A,1|x"}, {"value": "no-system"}],
  "component": [
    {"code": {"coding": [{"system": "` + loinc + `", "code": "8480-6"}]}, "valueQuantity": {"value": 120}},
    {"code": {"coding": [{"system": "` + loinc + `", "code": "8462-4"}]}, "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "high"}]}}
  ],
  "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "H"}]}]
}`

const vitalObservation = `{
  "resourceType": "Observation",
  "id": "vs-1",
  "status": "amended",
  "category": [{"coding": [{"system": "` + obsCat + `", "code": "vital-signs"}]}],
  "code": {"coding": [{"system": "` + loinc + `", "code": "85354-9"}]},
  "subject": {"reference": "Patient/p2"},
  "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "normal"}]}
}`

func TestMatchTokenObservation(t *testing.T) {
	lab := decode(t, labObservation)
	vital := decode(t, vitalObservation)
	tests := []struct {
		name      string
		res       map[string]any
		code      string
		value     string
		wantMatch bool
	}{
		// system|code: exact system and code, in any coding of any category.
		{"category system|code", lab, "category", obsCat + "|laboratory", true},
		{"category second coding array item", lab, "category", "http://example.org/local-category|chem", true},
		{"category system|code other resource", vital, "category", obsCat + "|laboratory", false},
		{"category wrong system", lab, "category", "http://example.org/other|laboratory", false},
		{"category system prefix is not the system", lab, "category", "http://terminology.hl7.org/CodeSystem/observation|laboratory", false},
		{"category system with trailing slash", lab, "category", obsCat + "/|laboratory", false},
		{"category code of another coding's system", lab, "category", "http://example.org/local-category|laboratory", false},
		{"category code case differs", lab, "category", obsCat + "|Laboratory", false},
		{"category display is not a code", lab, "category", obsCat + "|Laboratory", false},
		{"category text is not a code", lab, "category", "Lab", false},
		{"category code prefix", lab, "category", obsCat + "|lab", false},
		{"category percent-encoded bar is literal", lab, "category", obsCat + "%7Claboratory", false},
		{"category leading space", lab, "category", " laboratory", false},
		{"category trailing space", lab, "category", obsCat + "|laboratory ", false},
		{"category escaped bar is not a separator", lab, "category", obsCat + `\|laboratory`, false},
		// code: any system.
		{"category code only", lab, "category", "laboratory", true},
		{"category code only vital", vital, "category", "vital-signs", true},
		{"category code only other", vital, "category", "laboratory", false},
		// |code: no system.
		{"|code with system present", lab, "category", "|laboratory", false},
		{"|code matches coding without system", lab, "code", "|GLU", true},
		{"code with no system matches code form", lab, "code", "GLU", true},
		{"system|code for system-less coding", lab, "code", loinc + "|GLU", false},
		// system|: any code in the system.
		{"system| present", lab, "category", obsCat + "|", true},
		{"system| absent", lab, "category", "http://snomed.info/sct|", false},
		{"system| vital", vital, "category", obsCat + "|", true},
		// OR.
		{"or first", lab, "category", obsCat + "|laboratory," + obsCat + "|vital-signs", true},
		{"or second", vital, "category", obsCat + "|laboratory," + obsCat + "|vital-signs", true},
		{"or none", vital, "category", obsCat + "|laboratory," + obsCat + "|survey", false},
		{"or mixed forms", vital, "category", "exam,|vital-signs," + obsCat + "|", true},
		// Other paths and element types.
		{"code loinc", lab, "code", loinc + "|2345-7", true},
		{"code component code is not code", lab, "code", loinc + "|8480-6", false},
		{"component-code array path", lab, "component-code", loinc + "|8480-6", true},
		{"component-code second item", lab, "component-code", loinc + "|8462-4", true},
		{"component-code not main code", lab, "component-code", loinc + "|2345-7", false},
		{"combo-code main", lab, "combo-code", loinc + "|2345-7", true},
		{"combo-code component", lab, "combo-code", "8480-6", true},
		{"status code primitive", lab, "status", "final", true},
		{"status other", lab, "status", "amended", false},
		{"status |code", lab, "status", "|final", true},
		{"status system|code", lab, "status", "http://hl7.org/fhir/observation-status|final", false},
		{"status system|", lab, "status", "http://hl7.org/fhir/observation-status|", false},
		{"status case", lab, "status", "Final", false},
		{"status prefix", lab, "status", "fin", false},
		{"value-concept", vital, "value-concept", "http://snomed.info/sct|normal", true},
		{"value-concept absent (quantity)", lab, "value-concept", "mmol/L", false},
		{"value-concept wrong code", vital, "value-concept", "http://snomed.info/sct|high", false},
		{"component-value-concept", lab, "component-value-concept", "high", true},
		{"identifier system|value", lab, "identifier", `urn:oid:1.2.3|A\,1\|x`, true},
		{"identifier value only", lab, "identifier", `A\,1\|x`, true},
		{"identifier unescaped comma is OR", lab, "identifier", `urn:oid:1.2.3|A,1`, false},
		{"identifier wrong system", lab, "identifier", `urn:oid:1.2.4|A\,1\|x`, false},
		{"identifier |value without system", lab, "identifier", "|no-system", true},
		{"identifier |value with system", lab, "identifier", `|A\,1\|x`, false},
		{"identifier system|", lab, "identifier", "urn:oid:1.2.3|", true},
		{"_id", lab, "_id", "lab-1", true},
		{"_id other", lab, "_id", "vs-1", false},
		{"_id system", lab, "_id", "x|lab-1", false},
		{"_tag", lab, "_tag", "http://example.org/tags|reviewed", true},
		{"_tag system-less", lab, "_tag", "|untagged", true},
		{"_tag wrong", lab, "_tag", "http://example.org/tags|untagged", false},
		{"_tag absent meta", vital, "_tag", "reviewed", false},
		{"_security absent", lab, "_security", "R", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, v := range []fhir.Release{fhir.R4, fhir.R5} {
				p := lookup(t, v, "Observation", tt.code)
				got, ok := matchToken(tt.res, p, tt.value)
				if !ok || got != tt.wantMatch {
					t.Errorf("%v matchToken(%s=%s) = %v, %v; want %v, true", v, tt.code, tt.value, got, ok, tt.wantMatch)
				}
			}
		})
	}
}

// TestMatchTokenGranularExamples runs the category and status constraints of
// the SMART, ONC (g)(10) and US Core granular scope examples on matching and
// non-matching resources.
func TestMatchTokenGranularExamples(t *testing.T) {
	res := func(rt, extra string) map[string]any {
		return decode(t, `{"resourceType": "`+rt+`", "id": "x"`+extra+`}`)
	}
	cc := func(member, system, code string) string {
		return `, "` + member + `": {"coding": [{"system": "` + system + `", "code": "` + code + `"}]}`
	}
	ccs := func(member, system, code string) string {
		return `, "` + member + `": [{"coding": [{"system": "` + system + `", "code": "` + code + `"}]}]`
	}
	tests := []struct {
		name      string
		res       map[string]any
		code      string
		value     string
		wantMatch bool
	}{
		{"condition problem list", res("Condition", ccs("category", condCat, "problem-list-item")), "category", condCat + "|problem-list-item", true},
		{"condition encounter diagnosis vs problem list", res("Condition", ccs("category", condCat, "encounter-diagnosis")), "category", condCat + "|problem-list-item", false},
		{"condition health concern (US Core system)", res("Condition", ccs("category", "http://hl7.org/fhir/us/core/CodeSystem/condition-category", "health-concern")), "category", "http://hl7.org/fhir/us/core/CodeSystem/condition-category|health-concern", true},
		{"condition health concern wrong system", res("Condition", ccs("category", condCat, "health-concern")), "category", "http://hl7.org/fhir/us/core/CodeSystem/condition-category|health-concern", false},
		{"condition clinical-status active", res("Condition", cc("clinicalStatus", condClin, "active")), "clinical-status", condClin + "|active", true},
		{"condition clinical-status resolved", res("Condition", cc("clinicalStatus", condClin, "resolved")), "clinical-status", condClin + "|active", false},
		{"allergy clinical-status", res("AllergyIntolerance", cc("clinicalStatus", "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active")), "clinical-status", "active", true},
		{"diagnosticreport LAB", res("DiagnosticReport", ccs("category", "http://terminology.hl7.org/CodeSystem/v2-0074", "LAB")), "category", "http://terminology.hl7.org/CodeSystem/v2-0074|LAB", true},
		{"diagnosticreport RAD vs LAB", res("DiagnosticReport", ccs("category", "http://terminology.hl7.org/CodeSystem/v2-0074", "RAD")), "category", "http://terminology.hl7.org/CodeSystem/v2-0074|LAB", false},
		{"documentreference clinical-note", res("DocumentReference", ccs("category", "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category", "clinical-note")), "category", "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category|clinical-note", true},
		{"medicationrequest status", res("MedicationRequest", `, "status": "active"`), "status", "active", true},
		{"medicationrequest intent order vs plan", res("MedicationRequest", `, "intent": "plan"`), "intent", "order", false},
		{"medicationrequest intent or", res("MedicationRequest", `, "intent": "plan"`), "intent", "order,plan", true},
		{"immunization status", res("Immunization", `, "status": "completed"`), "status", "completed", true},
		{"procedure code snomed", res("Procedure", cc("code", "http://snomed.info/sct", "80146002")), "code", "http://snomed.info/sct|80146002", true},
		{"servicerequest category", res("ServiceRequest", ccs("category", "http://snomed.info/sct", "386053000")), "category", "http://snomed.info/sct|386053000", true},
		{"careplan assess-plan", res("CarePlan", ccs("category", "http://hl7.org/fhir/us/core/CodeSystem/careplan-category", "assess-plan")), "category", "http://hl7.org/fhir/us/core/CodeSystem/careplan-category|assess-plan", true},
		{"goal lifecycle-status", res("Goal", `, "lifecycleStatus": "active"`), "lifecycle-status", "active", true},
		{"goal lifecycle-status other", res("Goal", `, "lifecycleStatus": "cancelled"`), "lifecycle-status", "active", false},
		{"encounter class Coding (R4)", res("Encounter", `, "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}`), "class", "http://terminology.hl7.org/CodeSystem/v3-ActCode|AMB", true},
		{"encounter class Coding wrong code", res("Encounter", `, "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"}`), "class", "http://terminology.hl7.org/CodeSystem/v3-ActCode|AMB", false},
		{"encounter class Coding |code", res("Encounter", `, "class": {"code": "AMB"}`), "class", "|AMB", true},
		{"encounter type", res("Encounter", ccs("type", "http://snomed.info/sct", "185349003")), "type", "185349003", true},
		{"patient telecom ContactPoint value", res("Patient", `, "telecom": [{"system": "phone", "value": "555-1234"}]`), "telecom", "555-1234", true},
		{"patient telecom ContactPoint kind is not a system", res("Patient", `, "telecom": [{"system": "phone", "value": "555-1234"}]`), "telecom", "phone|555-1234", false},
		{"patient telecom ContactPoint |value", res("Patient", `, "telecom": [{"system": "email", "value": "a@example.org"}]`), "telecom", "|a@example.org", false},
		{"patient telecom ContactPoint email", res("Patient", `, "telecom": [{"system": "email", "value": "a@example.org"}]`), "telecom", "a@example.org", true},
		{"patient telecom ContactPoint value not string", res("Patient", `, "telecom": [{"system": "email", "value": 5}]`), "telecom", "5", false},
		{"patient identifier with URI system", res("Patient", `, "identifier": [{"system": "http://hospital.example/mrn", "value": "123"}]`), "identifier", "http://hospital.example/mrn|123", true},
		{"patient identifier system named like a kind is a ContactPoint", res("Patient", `, "identifier": [{"system": "phone", "value": "123"}]`), "identifier", "phone|123", false},
		{"patient telecom ContactPoint other", res("Patient", `, "telecom": [{"system": "phone", "value": "555-1234"}]`), "telecom", "555-9999", false},
		{"patient active boolean true", res("Patient", `, "active": true`), "active", "true", true},
		{"patient active boolean false", res("Patient", `, "active": false`), "active", "true", false},
		{"patient active boolean false matches false", res("Patient", `, "active": false`), "active", "false", true},
		{"patient active boolean with system", res("Patient", `, "active": true`), "active", "x|true", false},
		{"patient gender", res("Patient", `, "gender": "female"`), "gender", "female", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := tt.res["resourceType"].(string)
			p := lookup(t, fhir.R4, rt, tt.code)
			got, ok := matchToken(tt.res, p, tt.value)
			if !ok || got != tt.wantMatch {
				t.Errorf("matchToken(%s.%s=%s) = %v, %v; want %v, true", rt, tt.code, tt.value, got, ok, tt.wantMatch)
			}
		})
	}
}

func TestMatchTokenR5CodeableReference(t *testing.T) {
	mr := decode(t, `{"resourceType": "MedicationRequest", "medication": {"concept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1049502"}]}}}`)
	p := lookup(t, fhir.R5, "MedicationRequest", "code")
	if got, ok := matchToken(mr, p, "http://www.nlm.nih.gov/research/umls/rxnorm|1049502"); !got || !ok {
		t.Errorf("CodeableReference concept: %v, %v", got, ok)
	}
	if got, ok := matchToken(mr, p, "http://www.nlm.nih.gov/research/umls/rxnorm|1"); got || !ok {
		t.Errorf("CodeableReference wrong code: %v, %v", got, ok)
	}
}

func TestMatchTokenNotEvaluable(t *testing.T) {
	lab := decode(t, labObservation)
	cat := lookup(t, fhir.R4, "Observation", "category")
	tests := []struct {
		name  string
		p     Param
		value string
	}{
		{"empty value", cat, ""},
		{"bare bar", cat, "|"},
		{"empty alternative", cat, "laboratory,"},
		{"leading comma", cat, ",laboratory"},
		{"two bars", cat, "a|b|laboratory"},
		{"bar in alternative", cat, obsCat + "|laboratory,x|y|z"},
		{"bad escape", cat, `lab\oratory`},
		{"trailing backslash", cat, `laboratory\`},
		{"reference parameter", lookup(t, fhir.R4, "Observation", "subject"), "p1"},
		{"date parameter", lookup(t, fhir.R4, "Observation", "date"), "2024"},
		{"composite parameter", lookup(t, fhir.R4, "Observation", "code-value-concept"), "a$b"},
		{"unresolved token parameter", lookup(t, fhir.R4, "Patient", "email"), "a@b"},
		{"zero param", Param{}, "laboratory"},
		{"unresolved with paths", Param{Name: "x", Type: Token, Unresolved: true, Paths: []Path{{Elements: "category"}}}, "laboratory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, ok := matchToken(lab, tt.p, tt.value); ok || got {
				t.Errorf("matchToken(%q) = %v, %v; want false, false", tt.value, got, ok)
			}
			if tt.p.Type == Reference {
				return // Match evaluates it as a reference
			}
			if got, ok := Match(lab, tt.p, tt.value); ok && got {
				t.Errorf("Match(%q) = %v, %v; want no match", tt.value, got, ok)
			}
		})
	}
}

// TestMatchTokenEscapes covers the escaped characters of a token value.
func TestMatchTokenEscapes(t *testing.T) {
	res := decode(t, `{"resourceType": "Observation", "code": {"coding": [
		{"system": "http://x/a|b", "code": "c,d"},
		{"system": "s", "code": "e\\f"},
		{"system": "s", "code": "$g"}]}}`)
	p := lookup(t, fhir.R4, "Observation", "code")
	tests := []struct {
		name  string
		value string
		want  bool
	}{
		{"escaped bar in system and comma in code", `http://x/a\|b|c\,d`, true},
		{"escaped comma code only", `c\,d`, true},
		{"unescaped comma splits", `c,d`, false},
		{"escaped backslash", `s|e\\f`, true},
		{"escaped dollar", `s|\$g`, true},
		{"plain dollar", `s|$g`, true},
		{"unescaped bar in system splits", `http://x/a|b|c\,d`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := matchToken(res, p, tt.value)
			if tt.name == "unescaped bar in system splits" {
				if ok {
					t.Errorf("matchToken(%q) ok, want malformed", tt.value)
				}
				return
			}
			if !ok || got != tt.want {
				t.Errorf("matchToken(%q) = %v, %v; want %v", tt.value, got, ok, tt.want)
			}
		})
	}
}

// TestMatchTokenMalformedResources checks that odd JSON shapes never match
// and never panic.
func TestMatchTokenMalformedResources(t *testing.T) {
	p := lookup(t, fhir.R4, "Observation", "category")
	tests := []struct {
		name string
		json string
	}{
		{"category string", `{"category": "laboratory"}`},
		{"coding not array", `{"category": [{"coding": {"system": "` + obsCat + `", "code": "laboratory"}}]}`},
		{"coding item not object", `{"category": [{"coding": ["laboratory"]}]}`},
		{"system not string", `{"category": [{"coding": [{"system": 1, "code": "laboratory"}]}]}`},
		{"code not string", `{"category": [{"coding": [{"system": "` + obsCat + `", "code": 5}]}]}`},
		{"null category", `{"category": null}`},
		{"nested arrays", `{"category": [[{"coding": [{"system": "x", "code": "laboratory"}]}]]}`},
		{"number", `{"category": 12}`},
		{"typed name is not the element", `{"categoryCodeableConcept": [{"coding": [{"system": "` + obsCat + `", "code": "laboratory"}]}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := decode(t, tt.json)
			got, ok := matchToken(res, p, obsCat+"|laboratory")
			if !ok || got {
				t.Errorf("got %v, %v; want false, true", got, ok)
			}
		})
	}
	// A string category still matches a plain code: it has no system.
	if got, _ := matchToken(decode(t, `{"category": "laboratory"}`), p, "laboratory"); !got {
		t.Error("string element with code form")
	}
	if got, ok := matchToken(nil, p, "laboratory"); got || !ok {
		t.Error("nil resource")
	}
}

// TestWalkExactNames checks that property names match exactly: no prefix,
// case or choice-type guessing.
func TestWalkExactNames(t *testing.T) {
	tests := []struct {
		name string
		json string
		want bool
	}{
		{"exact", `{"effective": "laboratory"}`, true},
		{"typed name not guessed", `{"effectiveCode": "laboratory"}`, false},
		{"longer name", `{"effectiveness": "laboratory"}`, false},
		{"case", `{"Effective": "laboratory"}`, false},
		{"nested exact", `{"a": [{"b": {"c": "laboratory"}}]}`, false},
	}
	p := Param{Name: "x", Type: Token, Paths: []Path{{Elements: "effective"}}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := matchToken(decode(t, tt.json), p, "laboratory")
			if !ok || got != tt.want {
				t.Errorf("got %v, %v; want %v", got, ok, tt.want)
			}
		})
	}
	nested := Param{Name: "x", Type: Token, Paths: []Path{{Elements: "a.b.c"}}}
	if got, _ := matchToken(decode(t, `{"a": [{"b": {"c": "x"}}, {"b": [{"c": "laboratory"}]}]}`), nested, "laboratory"); !got {
		t.Error("arrays at two steps")
	}
	if got, _ := matchToken(decode(t, `{"a": {"b": "laboratory"}}`), nested, "laboratory"); got {
		t.Error("path ending early matched")
	}
}

func TestMatchReference(t *testing.T) {
	obs := decode(t, `{"resourceType": "Observation", "subject": {"reference": "Patient/p1"},
		"performer": [{"reference": "Practitioner/d1/_history/3"}, {"reference": "https://other.example/fhir/Organization/o1"}],
		"focus": [{"reference": "#contained"}, {"identifier": {"value": "p1"}}],
		"derivedFrom": [{"reference": "urn:uuid:0b5c2f1e-8a7d-4d2e-9f54-3a8b7c6d5e4f"}]}`)
	grp := decode(t, `{"resourceType": "Observation", "subject": {"reference": "Group/p1"}}`)
	tests := []struct {
		name  string
		res   map[string]any
		code  string
		value string
		want  bool
	}{
		{"patient id", obs, "patient", "p1", true},
		{"patient relative", obs, "patient", "Patient/p1", true},
		{"patient versioned value", obs, "patient", "Patient/p1/_history/2", true},
		{"patient other id", obs, "patient", "p2", false},
		{"patient id prefix", obs, "patient", "p", false},
		{"patient wrong type", obs, "patient", "Group/p1", false},
		{"patient target excludes group subject", grp, "patient", "p1", false},
		{"patient target excludes group subject relative", grp, "patient", "Group/p1", false},
		{"subject any type id", grp, "subject", "p1", true},
		{"subject relative group", grp, "subject", "Group/p1", true},
		{"subject relative patient vs group", grp, "subject", "Patient/p1", false},
		{"patient absolute value, relative reference", obs, "patient", "https://fhir.example/Patient/p1", false},
		{"or", obs, "patient", "p9,Patient/p1", true},
		{"performer versioned reference", obs, "performer", "Practitioner/d1", true},
		{"performer id", obs, "performer", "d1", true},
		{"performer absolute exact", obs, "performer", "https://other.example/fhir/Organization/o1", true},
		{"performer absolute not by id", obs, "performer", "o1", false},
		{"performer absolute not by relative", obs, "performer", "Organization/o1", false},
		{"performer absolute other base", obs, "performer", "https://evil.example/fhir/Organization/o1", false},
		{"contained never", obs, "focus", "contained", false},
		{"identifier-only reference never", obs, "focus", "p1", false},
		{"urn uuid exact", obs, "derived-from", "urn:uuid:0b5c2f1e-8a7d-4d2e-9f54-3a8b7c6d5e4f", true},
		{"urn uuid other", obs, "derived-from", "urn:uuid:00000000-8a7d-4d2e-9f54-3a8b7c6d5e4f", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := lookup(t, fhir.R4, "Observation", tt.code)
			got, ok := matchReference(tt.res, p, tt.value)
			if !ok || got != tt.want {
				t.Errorf("matchReference(%s=%s) = %v, %v; want %v, true", tt.code, tt.value, got, ok, tt.want)
			}
			if g2, ok2 := Match(tt.res, p, tt.value); g2 != got || ok2 != ok {
				t.Errorf("Match differs: %v, %v", g2, ok2)
			}
		})
	}
	// Absolute reference with a target: the type comes from the URL.
	abs := decode(t, `{"resourceType": "Observation", "subject": {"reference": "https://fhir.example/Patient/p1"}}`)
	if got, ok := matchReference(abs, lookup(t, fhir.R4, "Observation", "patient"), "https://fhir.example/Patient/p1"); !got || !ok {
		t.Error("absolute reference to a Patient")
	}
	absGroup := decode(t, `{"resourceType": "Observation", "subject": {"reference": "https://fhir.example/Group/p1"}}`)
	if got, _ := matchReference(absGroup, lookup(t, fhir.R4, "Observation", "patient"), "https://fhir.example/Group/p1"); got {
		t.Error("absolute reference to a Group matched patient")
	}
	// R5 CodeableReference.reference.
	mr := decode(t, `{"resourceType": "MedicationRequest", "medication": {"reference": {"reference": "Medication/m1"}}}`)
	if got, ok := matchReference(mr, lookup(t, fhir.R5, "MedicationRequest", "medication"), "Medication/m1"); !got || !ok {
		t.Error("R5 medication reference")
	}
	// Canonical: R5 _profile is a reference parameter on meta.profile.
	prof := decode(t, `{"resourceType": "Patient", "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient|6.1.0"]}}`)
	pp := lookup(t, fhir.R5, "Patient", "_profile")
	for value, want := range map[string]bool{
		"http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient":       true,
		"http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient|6.1.0": true,
		"http://hl7.org/fhir/us/core/StructureDefinition/us-core":               false,
	} {
		if got, ok := matchReference(prof, pp, value); got != want || !ok {
			t.Errorf("canonical %s = %v, %v", value, got, ok)
		}
	}
}

func TestMatchReferenceNotEvaluable(t *testing.T) {
	obs := decode(t, `{"resourceType": "Observation", "subject": {"reference": "Patient/p1"}}`)
	p := lookup(t, fhir.R4, "Observation", "patient")
	for _, value := range []string{"", ",", "p1,", "Patient/", "/p1", "patient/p1", "Patient/p 1", "Patient/p1/x",
		`p\,1`, "Patient/" + string(make([]byte, 65)), "a/b/c", "Patient%2Fp1", " p1", "Patient/p1 "} {
		if got, ok := matchReference(obs, p, value); ok || got {
			t.Errorf("matchReference(%q) = %v, %v; want not evaluable", value, got, ok)
		}
	}
	if _, ok := matchReference(obs, lookup(t, fhir.R4, "Observation", "category"), "p1"); ok {
		t.Error("token parameter evaluated as reference")
	}
}

func TestMatchString(t *testing.T) {
	pat := decode(t, `{"resourceType": "Patient",
		"name": [{"family": "Müller-Lüdenscheidt", "given": ["Zoë", "Anne"], "text": "Dr. Zoë Müller"}],
		"address": [{"line": ["12 Rue de l'Église"], "city": "Besançon", "postalCode": "25000", "country": "FR"}]}`)
	tests := []struct {
		name  string
		code  string
		value string
		want  bool
	}{
		{"family prefix", "family", "Mül", true},
		{"family case", "family", "müller", true},
		{"family accent-insensitive", "family", "muller", true},
		{"family whole", "family", "Müller-Lüdenscheidt", true},
		{"family not infix", "family", "ller", false},
		{"family longer than element", "family", "Müller-Lüdenscheidtx", false},
		{"given second", "given", "ann", true},
		{"given accent", "given", "zoe", true},
		{"name any part", "name", "dr", true},
		{"name given", "name", "ZOE", true},
		{"name no", "name", "Smith", false},
		{"name or", "name", "Smith,Anne", true},
		{"address city accent", "address", "besancon", true},
		{"address line", "address", "12 rue de l'eglise", true},
		{"address-city", "address-city", "BESAN", true},
		{"address-postalcode", "address-postalcode", "250", true},
		{"address-postalcode no", "address-postalcode", "251", false},
		{"decomposed accent in value", "family", "Mu\u0308ller", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := lookup(t, fhir.R4, "Patient", tt.code)
			got, ok := matchString(pat, p, tt.value)
			if !ok || got != tt.want {
				t.Errorf("matchString(%s=%s) = %v, %v; want %v, true", tt.code, tt.value, got, ok, tt.want)
			}
		})
	}
	for _, value := range []string{"", ",", "a,", `a\b`} {
		if got, ok := matchString(pat, lookup(t, fhir.R4, "Patient", "family"), value); ok || got {
			t.Errorf("matchString(%q) = %v, %v; want not evaluable", value, got, ok)
		}
	}
	if _, ok := matchString(pat, lookup(t, fhir.R4, "Patient", "gender"), "f"); ok {
		t.Error("token parameter evaluated as string")
	}
	if _, ok := Match(pat, lookup(t, fhir.R4, "Patient", "birthdate"), "2000"); ok {
		t.Error("date parameter evaluated")
	}
}

func TestMatchAllocs(t *testing.T) {
	lab := decode(t, labObservation)
	cat := lookup(t, fhir.R4, "Observation", "category")
	subj := lookup(t, fhir.R4, "Observation", "patient")
	n := testing.AllocsPerRun(100, func() {
		matchToken(lab, cat, "exam,"+obsCat+"|laboratory")
		matchReference(lab, subj, "Patient/p1")
		matchToken(lab, lookup(t, fhir.R4, "Observation", "_tag"), "x")
	})
	if n != 0 {
		t.Errorf("Match allocates %v times", n)
	}
}

// TestMatchTokenManyAlternatives covers values with more alternatives than
// one parsing round holds.
func TestMatchTokenManyAlternatives(t *testing.T) {
	lab := decode(t, labObservation)
	p := lookup(t, fhir.R4, "Observation", "category")
	many := func(n int, last string) string {
		var s string
		for i := range n {
			s += obsCat + "|other-" + string(rune('a'+i)) + ","
		}
		return s + last
	}
	tests := []struct {
		name      string
		value     string
		wantMatch bool
		wantOK    bool
	}{
		{"match in first round", many(3, obsCat+"|laboratory"), true, true},
		{"match at the eighth", many(7, obsCat+"|laboratory"), true, true},
		{"match at the ninth", many(8, obsCat+"|laboratory"), true, true},
		{"match in the third round", many(20, obsCat+"|laboratory"), true, true},
		{"no match in three rounds", many(20, obsCat+"|exam"), false, true},
		{"malformed in a later round", many(20, "a|b|c"), false, false},
		{"malformed after a match", obsCat + "|laboratory," + many(20, ""), false, false},
		{"escaped in a later round", many(12, `x\,y,laboratory`), true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := matchToken(lab, p, tt.value)
			if got != tt.wantMatch || ok != tt.wantOK {
				t.Errorf("MatchToken = %v, %v; want %v, %v", got, ok, tt.wantMatch, tt.wantOK)
			}
		})
	}
}

func TestMatchParam(t *testing.T) {
	lab := decode(t, labObservation)
	cond := decode(t, `{"resourceType": "Condition", "category": [{"coding": [{"system": "`+condCat+`", "code": "problem-list-item"}]}],
		"clinicalStatus": {"coding": [{"system": "`+condClin+`", "code": "active"}]}, "subject": {"reference": "Patient/p1"}}`)
	tests := []struct {
		name      string
		v         fhir.Release
		res       map[string]any
		param     string
		value     string
		wantMatch bool
		wantOK    bool
	}{
		{"token", fhir.R4, lab, "category", obsCat + "|laboratory", true, true},
		{"token no match", fhir.R4, lab, "category", obsCat + "|vital-signs", false, true},
		{"token r5", fhir.R5, lab, "category", "laboratory", true, true},
		{"reference", fhir.R4, lab, "patient", "Patient/p1", true, true},
		{"string on condition has no such param", fhir.R4, cond, "family", "x", false, false},
		{"condition category", fhir.R4, cond, "category", condCat + "|problem-list-item", true, true},
		{"condition clinical-status", fhir.R4, cond, "clinical-status", condClin + "|active", true, true},
		{"observation param on a condition", fhir.R4, cond, "value-concept", "active", false, false},
		{"base param", fhir.R4, cond, "_id", "x", false, true},
		{"modifier", fhir.R4, lab, "category:not", "laboratory", false, false},
		{"chain", fhir.R4, lab, "patient.name", "x", false, false},
		{"date not evaluated", fhir.R4, lab, "date", "2024", false, false},
		{"unknown param", fhir.R4, lab, "nope", "x", false, false},
		{"no resourceType", fhir.R4, decode(t, `{"category": [{"coding": [{"code": "laboratory"}]}]}`), "category", "laboratory", false, false},
		{"unknown resourceType", fhir.R4, decode(t, `{"resourceType": "Observations", "category": [{"coding": [{"code": "laboratory"}]}]}`), "category", "laboratory", false, false},
		{"resourceType not a string", fhir.R4, decode(t, `{"resourceType": 1}`), "_id", "x", false, false},
		{"unknown version", fhir.Release(0), lab, "category", "laboratory", false, false},
		{"malformed", fhir.R4, lab, "category", "a|b|c", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := MatchParam(tt.v, tt.res, tt.param, tt.value)
			if got != tt.wantMatch || ok != tt.wantOK {
				t.Errorf("MatchParam(%s=%s) = %v, %v; want %v, %v", tt.param, tt.value, got, ok, tt.wantMatch, tt.wantOK)
			}
		})
	}
	if n := testing.AllocsPerRun(50, func() { MatchParam(fhir.R4, lab, "category", obsCat+"|laboratory") }); n != 0 {
		t.Errorf("MatchParam allocates %v times", n)
	}
}
