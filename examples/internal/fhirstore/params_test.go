package fhirstore

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/internal/fhirdata"
)

// TestParamTables checks the hand-written tables against the official R4
// definitions in internal/fhirdata: every parameter exists for its type with
// the same kind and an expression naming the element path, and the Patient
// compartment parameters are exactly the official ones.
func TestParamTables(t *testing.T) {
	raw, err := fhirdata.FS.ReadFile("r4/search-parameters.json")
	if err != nil {
		t.Fatal(err)
	}
	var sp struct {
		Entry []struct {
			Resource struct {
				Code       string   `json:"code"`
				Base       []string `json:"base"`
				Type       string   `json:"type"`
				Expression string   `json:"expression"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(raw, &sp); err != nil {
		t.Fatal(err)
	}
	type key struct{ typ, name string }
	official := map[key][2]string{}
	for _, e := range sp.Entry {
		for _, b := range e.Resource.Base {
			official[key{b, e.Resource.Code}] = [2]string{e.Resource.Type, e.Resource.Expression}
		}
	}
	for _, typ := range sortedKeys(searchParams) {
		for _, name := range sortedKeys(searchParams[typ]) {
			t.Run(typ+"."+name, func(t *testing.T) {
				d := searchParams[typ][name]
				o, ok := official[key{typ, name}]
				if !ok {
					o, ok = official[key{"Resource", name}]
				}
				if !ok {
					t.Fatalf("%s has no R4 search parameter %q", typ, name)
				}
				if kindNames[d.kind] != o[0] {
					t.Fatalf("kind %s, R4 says %s", kindNames[d.kind], o[0])
				}
				expr := strings.ReplaceAll(o[1], " ", "")
				for _, path := range d.paths {
					elem := path[0]
					// choice elements: effectiveDateTime is written effective in FHIRPath
					for _, suffix := range []string{"DateTime", "Period", "Instant", "CodeableConcept", "Reference"} {
						if s, ok := strings.CutSuffix(elem, suffix); ok && !strings.Contains(expr, typ+"."+elem) {
							elem = s
						}
					}
					if want := typ + "." + strings.Join(append([]string{elem}, path[1:]...), "."); !strings.Contains(expr, want) {
						t.Errorf("path %v not in the R4 expression %q", path, o[1])
					}
				}
			})
		}
	}

	raw, err = fhirdata.FS.ReadFile("r4/compartmentdefinition-patient.json")
	if err != nil {
		t.Fatal(err)
	}
	var cd struct {
		Resource []struct {
			Code  string   `json:"code"`
			Param []string `json:"param"`
		} `json:"resource"`
	}
	if err := json.Unmarshal(raw, &cd); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	for _, r := range cd.Resource {
		want[r.Code] = r.Param
	}
	for typ, params := range patientCompartment {
		t.Run("compartment "+typ, func(t *testing.T) {
			w := slices.Clone(want[typ])
			got := slices.Clone(params)
			slices.Sort(w)
			slices.Sort(got)
			if !slices.Equal(got, w) {
				t.Fatalf("params %v, R4 says %v", got, w)
			}
			for _, p := range params {
				if d, ok := lookupParam(typ, p); !ok || d.kind != referenceParam {
					t.Fatalf("%s is not a reference parameter of %s", p, typ)
				}
			}
		})
	}
	// every type with search parameters that R4 puts in the compartment is listed
	for typ := range searchParams {
		if len(want[typ]) > 0 && patientCompartment[typ] == nil {
			t.Errorf("%s is in the R4 Patient compartment but not in patientCompartment", typ)
		}
	}
}

func TestMoreTypes(t *testing.T) {
	s := newSeeded(t)
	resources := []string{
		`{"resourceType":"Procedure","id":"p1","status":"completed","code":{"coding":[{"system":"http://snomed.info/sct","code":"80146002"}]},"subject":{"reference":"Patient/123"},"performedDateTime":"2024-05-01","performer":[{"actor":{"reference":"Practitioner/9"}}]}`,
		`{"resourceType":"Immunization","id":"i1","status":"completed","vaccineCode":{"coding":[{"system":"http://hl7.org/fhir/sid/cvx","code":"140"}]},"patient":{"reference":"Patient/456"},"occurrenceDateTime":"2023-10-01"}`,
		`{"resourceType":"DocumentReference","id":"d1","status":"current","subject":{"reference":"Patient/789"},"author":[{"reference":"Patient/123"}],"date":"2024-06-01T00:00:00Z"}`,
		`{"resourceType":"Goal","id":"g1","lifecycleStatus":"active","subject":{"reference":"Patient/123"}}`,
		`{"resourceType":"Device","id":"dev1","patient":{"reference":"Patient/123"}}`,
		`{"resourceType":"Group","id":"grp1","type":"person","actual":true}`,
		`{"resourceType":"Observation","id":"og","status":"final","code":{"text":"x"},"subject":{"reference":"Group/grp1"}}`,
		`{"resourceType":"Provenance","id":"pp","target":[{"reference":"Patient/456"},{"reference":"Group/grp1"}],"recorded":"2024-01-01T00:00:00Z","agent":[]}`,
	}
	for _, r := range resources {
		var head struct{ ResourceType, ID string }
		_ = json.Unmarshal([]byte(r), &head)
		wantStatus(t, do(t, s, "PUT", "/fhir/"+head.ResourceType+"/"+head.ID, r), 201)
	}
	tests := []struct {
		name, target string
		match        []string
	}{
		{"procedure patient", "/fhir/Procedure?patient=123", []string{"Procedure/p1"}},
		{"procedure date", "/fhir/Procedure?date=2024-05", []string{"Procedure/p1"}},
		{"immunization code", "/fhir/Immunization?vaccine-code=http://hl7.org/fhir/sid/cvx|140", []string{"Immunization/i1"}},
		{"document author in compartment", "/fhir/Patient/123/DocumentReference", []string{"DocumentReference/d1"}},
		{"document subject in compartment", "/fhir/Patient/789/DocumentReference", []string{"DocumentReference/d1"}},
		{"goal compartment", "/fhir/Patient/123/Goal", []string{"Goal/g1"}},
		{"device is in no compartment", "/fhir/Patient/123/Device", []string{}},
		{"device by id", "/fhir/Device?_id=dev1", []string{"Device/dev1"}},
		{"device unknown parameter ignored", "/fhir/Device?patient=456", []string{"Device/dev1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := wantStatus(t, do(t, s, "GET", tt.target, ""), 200)
			if got := entries(t, b, "match"); !sameList(got, tt.match) {
				t.Fatalf("matches %v, want %v", got, tt.match)
			}
		})
	}
	includes := []struct {
		name, target string
		includes     []string
	}{
		{"patient include skips a Group subject", "/fhir/Observation?_id=og&_include=Observation:patient", []string{}},
		{"subject include takes it", "/fhir/Observation?_id=og&_include=Observation:subject", []string{"Group/grp1"}},
		{"revinclude by patient only counts Patient targets", "/fhir/Group?_id=grp1&_revinclude=Provenance:patient", []string{}},
		{"revinclude by target", "/fhir/Group?_id=grp1&_revinclude=Provenance:target", []string{"Provenance/pp"}},
		{"provenance patient", "/fhir/Patient?_id=456&_revinclude=Provenance:patient", []string{"Provenance/pp"}},
	}
	for _, tt := range includes {
		t.Run(tt.name, func(t *testing.T) {
			b := wantStatus(t, do(t, s, "GET", tt.target, ""), 200)
			if got := entries(t, b, "include"); !sameList(got, tt.includes) {
				t.Fatalf("includes %v, want %v", got, tt.includes)
			}
		})
	}
	t.Run("device strict", func(t *testing.T) {
		wantStatus(t, do(t, s, "GET", "/fhir/Device?patient=456", "", "Prefer", "handling=strict"), 400)
	})
	t.Run("everything includes the new types", func(t *testing.T) {
		b := wantStatus(t, do(t, s, "GET", "/fhir/Patient/123/$everything?_count=100", ""), 200)
		got := entries(t, b, "match")
		for _, want := range []string{"Procedure/p1", "Goal/g1", "DocumentReference/d1"} {
			if !slices.Contains(got, want) {
				t.Errorf("%s missing from %v", want, got)
			}
		}
	})
}
