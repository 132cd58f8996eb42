package compartment

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/fhir"
)

// The baselines (Unmarshal…) run in the same benchmark run as the checks:
// the target for response verification is at most twice a plain
// json.Unmarshal of the same document.

func BenchmarkObservationUnmarshal(b *testing.B) {
	doc := []byte(observation("obs-1", "pat-1"))
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		var m map[string]any
		if err := json.Unmarshal(doc, &m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkObservationMember(b *testing.B) {
	c := newChecker(b, Config{FHIRVersion: fhir.R4, BaseURLs: []string{testBase}})
	doc := []byte(observation("obs-1", "pat-1"))
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if ok, err := c.Member(doc, Patient, "pat-1"); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkObservationMemberMap(b *testing.B) {
	c := newChecker(b, Config{FHIRVersion: fhir.R4})
	var m map[string]any
	if err := json.Unmarshal([]byte(observation("obs-1", "pat-1")), &m); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := c.MemberMap(m, Patient, "pat-1"); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkBundle100Unmarshal(b *testing.B) {
	doc := []byte(searchBundle(100, true))
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		var m map[string]any
		if err := json.Unmarshal(doc, &m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBundle100UnmarshalMemberMap is the decode-once alternative:
// Unmarshal, then MemberMap on every entry.
func BenchmarkBundle100UnmarshalMemberMap(b *testing.B) {
	c := newChecker(b, Config{FHIRVersion: fhir.R4})
	doc := []byte(searchBundle(100, true))
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		var m map[string]any
		if err := json.Unmarshal(doc, &m); err != nil {
			b.Fatal(err)
		}
		n := 0
		for _, e := range m["entry"].([]any) {
			r := e.(map[string]any)["resource"].(map[string]any)
			if ok, _ := c.MemberMap(r, Patient, "pat-1"); ok {
				n++
			}
		}
		if n != 50 {
			b.Fatal(n)
		}
	}
}

func BenchmarkBinds(b *testing.B) {
	c := newChecker(b, Config{FHIRVersion: fhir.R4})
	q := url.Values{"patient": {"Patient/pat-1"}, "code": {"1234-5"}}
	b.ReportAllocs()
	for b.Loop() {
		if !c.Binds("Observation", q, Patient, "pat-1") {
			b.Fatal("not bound")
		}
	}
}

// observation returns a typical laboratory Observation of patient pid.
func observation(id, pid string) string {
	return fmt.Sprintf(`{"resourceType":"Observation","id":%q,"meta":{"versionId":"1","lastUpdated":"2024-05-01T10:00:00Z"},`+
		`"status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory","display":"Laboratory"}]}],`+
		`"code":{"coding":[{"system":"http://loinc.org","code":"2339-0","display":"Glucose [Mass/volume] in Blood"}],"text":"Glucose"},`+
		`"subject":{"reference":"Patient/%s","display":"Jane Doe"},"encounter":{"reference":"Encounter/enc-7"},`+
		`"effectiveDateTime":"2024-05-01T09:30:00Z","issued":"2024-05-01T10:00:00.000Z",`+
		`"performer":[{"reference":"Practitioner/prac-1"},{"reference":"Organization/org-1"}],`+
		`"valueQuantity":{"value":95.5,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"},`+
		`"interpretation":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation","code":"N"}]}],`+
		`"referenceRange":[{"low":{"value":70,"unit":"mg/dL"},"high":{"value":110,"unit":"mg/dL"}}]}`, id, pid)
}

// searchBundle returns a searchset of n Observations; every other one
// (when mixed) belongs to pat-2.
func searchBundle(n int, mixed bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"resourceType":"Bundle","id":"s1","type":"searchset","total":%d,"link":[{"relation":"self","url":"https://fhir.example.org/r4/Observation?patient=pat-1"}],"entry":[`, n)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(",\n")
		}
		pid := "pat-1"
		if mixed && i%2 == 1 {
			pid = "pat-2"
		}
		id := fmt.Sprintf("obs-%d", i)
		fmt.Fprintf(&b, `{"fullUrl":"https://fhir.example.org/r4/Observation/%s","resource":%s,"search":{"mode":"match"}}`, id, observation(id, pid))
	}
	b.WriteString("]}")
	return b.String()
}
