package compartment

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

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

func TestCheckBundle(t *testing.T) {
	c := newChecker(t, Config{Version: R4, BaseURLs: []string{testBase}})
	doc := `{"resourceType":"Bundle","type":"searchset","total":3,"entry":[` +
		`{"resource":` + observation("a", "pat-1") + `,"search":{"mode":"match"}},` +
		`{"search":{"mode":"match"},"resource":` + observation("b", "pat-2") + `},` +
		`{"resource":{"resourceType":"Patient","id":"pat-1"},"search":{"mode":"include"}},` +
		`{"resource":{"resourceType":"Practitioner","id":"prac-1"},"search":{"mode":"include"}},` +
		`{"resource":{"resourceType":"OperationOutcome","issue":[]},"search":{"mode":"outcome"}},` +
		`{"fullUrl":"x"}],"link":[]}`
	b, err := c.CheckBundle([]byte(doc), Patient, "pat-1")
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{ResourceType: "Observation", ID: "a", Mode: "match", HasResource: true, Member: true},
		{ResourceType: "Observation", ID: "b", Mode: "match", HasResource: true, Member: false},
		{ResourceType: "Patient", ID: "pat-1", Mode: "include", HasResource: true, Member: true},
		{ResourceType: "Practitioner", ID: "prac-1", Mode: "include", HasResource: true, Member: false},
		{ResourceType: "OperationOutcome", Mode: "outcome", HasResource: true, Member: false},
		{},
	}
	if len(b.Entries) != len(want) {
		t.Fatalf("%d entries, want %d", len(b.Entries), len(want))
	}
	for i, e := range b.Entries {
		w := want[i]
		w.Start, w.End = e.Start, e.End
		if e != w {
			t.Errorf("entry %d = %+v, want %+v", i, e, w)
		}
		if !json.Valid([]byte(doc[e.Start:e.End])) || doc[e.Start] != '{' {
			t.Errorf("entry %d span %q", i, doc[e.Start:e.End])
		}
	}
	// The entry without a mode counts as a match: total 3 - 2.
	out := b.Without(func(e *Entry) bool { return !e.Member && e.Mode != "outcome" })
	var got struct {
		Total int
		Entry []struct{ Resource struct{ ID string } }
		Link  []any
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("rewritten bundle: %v\n%s", err, out)
	}
	if got.Total != 1 || len(got.Entry) != 3 || got.Entry[0].Resource.ID != "a" || got.Entry[1].Resource.ID != "pat-1" || got.Link == nil {
		t.Errorf("rewritten bundle %s", out)
	}
}

func TestBundleWithoutAll(t *testing.T) {
	c := newChecker(t, Config{Version: R4})
	tests := []struct {
		name, doc, want string
	}{
		{"entry last", `{"resourceType":"Bundle","total":1,"entry":[{"resource":` + observation("x", "pat-2") + `}]}`,
			`{"resourceType":"Bundle","total":0}`},
		{"entry first", `{"entry":[{"resource":` + observation("x", "pat-2") + `}],"total":1,"resourceType":"Bundle"}`,
			`{"total":0,"resourceType":"Bundle"}`},
		{"entry only", `{"entry":[{"resource":` + observation("x", "pat-2") + `}]}`, ``},
		{"no total", `{"resourceType":"Bundle", "entry" : [ {"resource":` + observation("x", "pat-2") + `} ] , "type":"searchset"}`,
			`{"resourceType":"Bundle" , "type":"searchset"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := c.CheckBundle([]byte(tt.doc), Patient, "pat-1")
			if tt.want == "" {
				if !errors.Is(err, ErrNotResource) {
					t.Fatalf("err = %v, want ErrNotResource", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			out := string(b.Without(func(e *Entry) bool { return !e.Member }))
			if out != tt.want {
				t.Errorf("Without = %s, want %s", out, tt.want)
			}
			if keep := string(b.Without(func(*Entry) bool { return false })); keep != tt.doc {
				t.Errorf("Without(nothing) changed the bundle")
			}
		})
	}
}

func TestCheckBundleErrors(t *testing.T) {
	c := newChecker(t, Config{Version: R4})
	tests := []struct {
		name, doc string
		err       error
	}{
		{"not a bundle", observation("a", "pat-1"), ErrNotBundle},
		{"array", `[]`, ErrNotResource},
		{"truncated", searchBundle(3, false)[:500], ErrMalformed},
		{"duplicate entry", `{"resourceType":"Bundle","entry":[],"entry":[]}`, ErrMalformed},
		{"duplicate resource", `{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"pat-1"},"resource":{"resourceType":"Patient","id":"pat-2"}}]}`, ErrMalformed},
		{"duplicate total", `{"resourceType":"Bundle","total":1,"total":2}`, ErrMalformed},
		{"duplicate mode", `{"resourceType":"Bundle","entry":[{"search":{"mode":"match","mode":"include"}}]}`, ErrMalformed},
		{"bad resource", `{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation","subject":{"reference":"Patient/pat-1","reference":"Patient/pat-2"}}}]}`, ErrMalformed},
		{"invalid id", `{"resourceType":"Bundle"}`, ErrInvalidID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "pat-1"
			if tt.err == ErrInvalidID {
				id = "pat 1"
			}
			if _, err := c.CheckBundle([]byte(tt.doc), Patient, id); !errors.Is(err, tt.err) {
				t.Errorf("err = %v, want %v", err, tt.err)
			}
		})
	}
}

func TestCheckBundleMatchesMember(t *testing.T) {
	c := newChecker(t, Config{Version: R4})
	doc := searchBundle(20, true)
	b, err := c.CheckBundle([]byte(doc), Patient, "pat-1")
	if err != nil {
		t.Fatal(err)
	}
	var bundle struct {
		Entry []struct{ Resource json.RawMessage }
	}
	if err := json.Unmarshal([]byte(doc), &bundle); err != nil {
		t.Fatal(err)
	}
	for i, e := range b.Entries {
		want, err := c.Member(bundle.Entry[i].Resource, Patient, "pat-1")
		if err != nil || e.Member != want || want != (i%2 == 0) {
			t.Errorf("entry %d: CheckBundle %v, Member %v, %v", i, e.Member, want, err)
		}
	}
}
