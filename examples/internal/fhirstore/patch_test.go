package fhirstore

import (
	"encoding/json"
	"errors"
	"testing"
)

// RFC 6902 appendix A examples, plus error cases.
func TestApplyPatch(t *testing.T) {
	tests := []struct {
		name  string
		doc   string
		patch string
		want  string // "" with err set
		err   error
	}{
		{"add member", `{"foo":"bar"}`, `[{"op":"add","path":"/baz","value":"qux"}]`, `{"baz":"qux","foo":"bar"}`, nil},
		{"add array element", `{"foo":["bar","baz"]}`, `[{"op":"add","path":"/foo/1","value":"qux"}]`, `{"foo":["bar","qux","baz"]}`, nil},
		{"remove member", `{"baz":"qux","foo":"bar"}`, `[{"op":"remove","path":"/baz"}]`, `{"foo":"bar"}`, nil},
		{"remove array element", `{"foo":["bar","qux","baz"]}`, `[{"op":"remove","path":"/foo/1"}]`, `{"foo":["bar","baz"]}`, nil},
		{"replace", `{"baz":"qux","foo":"bar"}`, `[{"op":"replace","path":"/baz","value":"boo"}]`, `{"baz":"boo","foo":"bar"}`, nil},
		{"move member", `{"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}}`, `[{"op":"move","from":"/foo/waldo","path":"/qux/thud"}]`, `{"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}}`, nil},
		{"move array element", `{"foo":["all","grass","cows","eat"]}`, `[{"op":"move","from":"/foo/1","path":"/foo/3"}]`, `{"foo":["all","cows","eat","grass"]}`, nil},
		{"test ok", `{"baz":"qux","foo":["a",2,"c"]}`, `[{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}]`, `{"baz":"qux","foo":["a",2,"c"]}`, nil},
		{"test number forms", `{"n":1.0}`, `[{"op":"test","path":"/n","value":1}]`, `{"n":1.0}`, nil},
		{"test fails", `{"baz":"qux"}`, `[{"op":"test","path":"/baz","value":"bar"}]`, "", ErrConflict},
		{"add nested object", `{"foo":"bar"}`, `[{"op":"add","path":"/child","value":{"grandchild":{}}}]`, `{"child":{"grandchild":{}},"foo":"bar"}`, nil},
		{"add to nonexistent target", `{"foo":"bar"}`, `[{"op":"add","path":"/baz/bat","value":"qux"}]`, "", ErrConflict},
		{"add array value", `{"foo":["bar"]}`, `[{"op":"add","path":"/foo/-","value":["abc","def"]}]`, `{"foo":["bar",["abc","def"]]}`, nil},
		{"escapes", `{"/":9,"~1":10}`, `[{"op":"test","path":"/~01","value":10},{"op":"remove","path":"/~1"}]`, `{"~1":10}`, nil},
		{"copy", `{"a":{"b":1}}`, `[{"op":"copy","from":"/a","path":"/c"},{"op":"replace","path":"/c/b","value":2}]`, `{"a":{"b":1},"c":{"b":2}}`, nil},
		{"replace root", `{"a":1}`, `[{"op":"replace","path":"","value":{"b":2}}]`, `{"b":2}`, nil},
		{"remove missing", `{"a":1}`, `[{"op":"remove","path":"/b"}]`, "", ErrConflict},
		{"replace missing", `{"a":1}`, `[{"op":"replace","path":"/b","value":1}]`, "", ErrConflict},
		{"index out of range", `{"a":[1]}`, `[{"op":"add","path":"/a/5","value":1}]`, "", ErrConflict},
		{"leading zero index", `{"a":[1,2]}`, `[{"op":"remove","path":"/a/01"}]`, "", ErrConflict},
		{"dash on remove", `{"a":[1,2]}`, `[{"op":"remove","path":"/a/-"}]`, "", ErrConflict},
		{"move into child", `{"a":{"b":{}}}`, `[{"op":"move","from":"/a","path":"/a/b/c"}]`, "", ErrConflict},
		{"descend primitive", `{"a":1}`, `[{"op":"add","path":"/a/b","value":1}]`, "", ErrConflict},
		{"unknown op", `{}`, `[{"op":"frob","path":"/a"}]`, "", ErrInvalid},
		{"missing value", `{}`, `[{"op":"add","path":"/a"}]`, "", ErrInvalid},
		{"missing from", `{}`, `[{"op":"move","path":"/a"}]`, "", ErrInvalid},
		{"missing path", `{}`, `[{"op":"remove"}]`, "", ErrInvalid},
		{"relative pointer", `{}`, `[{"op":"add","path":"a","value":1}]`, "", ErrInvalid},
		{"bad tilde", `{}`, `[{"op":"add","path":"/a~2","value":1}]`, "", ErrInvalid},
		{"not an array", `{}`, `{"op":"add"}`, "", ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := decodeObject([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			ops, err := parsePatch([]byte(tt.patch))
			var out any
			if err == nil {
				out, err = applyPatch(doc, ops)
			}
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("got %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := string(mustEncode(out)); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestPatch(t *testing.T) {
	const jp = "application/json-patch+json"
	tests := []struct {
		name       string
		target     string
		body       string
		hdr        []string
		status     int
		wantStatus string // Observation.status afterwards ("" to skip)
		version    string
	}{
		{name: "replace status", target: "/fhir/Observation/lab1", body: `[{"op":"replace","path":"/status","value":"amended"}]`, status: 200, wantStatus: "amended", version: "3"},
		{name: "test then replace", target: "/fhir/Observation/lab1", body: `[{"op":"test","path":"/status","value":"final"},{"op":"replace","path":"/status","value":"amended"}]`, status: 200, wantStatus: "amended", version: "3"},
		{name: "change subject", target: "/fhir/Observation/lab1", body: `[{"op":"replace","path":"/subject/reference","value":"Patient/456"}]`, status: 200, wantStatus: "final", version: "3"},
		{name: "test fails", target: "/fhir/Observation/lab1", body: `[{"op":"test","path":"/status","value":"preliminary"},{"op":"replace","path":"/status","value":"amended"}]`, status: 409, wantStatus: "final", version: "2"},
		{name: "missing path", target: "/fhir/Observation/lab1", body: `[{"op":"remove","path":"/note"}]`, status: 409, wantStatus: "final", version: "2"},
		{name: "malformed", target: "/fhir/Observation/lab1", body: `{"op":"replace"}`, status: 400, wantStatus: "final", version: "2"},
		{name: "change id", target: "/fhir/Observation/lab1", body: `[{"op":"replace","path":"/id","value":"other"}]`, status: 422, wantStatus: "final", version: "2"},
		{name: "change type", target: "/fhir/Observation/lab1", body: `[{"op":"replace","path":"/resourceType","value":"Condition"}]`, status: 422, wantStatus: "final", version: "2"},
		{name: "replace root with array", target: "/fhir/Observation/lab1", body: `[{"op":"replace","path":"","value":[]}]`, status: 422, wantStatus: "final", version: "2"},
		{name: "meta made invalid", target: "/fhir/Observation/lab1", body: `[{"op":"replace","path":"/meta","value":"x"}]`, status: 422, wantStatus: "final", version: "2"},
		{name: "json content type", target: "/fhir/Observation/lab1", body: `[]`, hdr: []string{"Content-Type", "application/json"}, status: 415, wantStatus: "final", version: "2"},
		{name: "fhirpath patch", target: "/fhir/Observation/lab1", body: `{"resourceType":"Parameters"}`, hdr: []string{"Content-Type", MediaType}, status: 415, wantStatus: "final", version: "2"},
		{name: "if-match ok", target: "/fhir/Observation/lab1", body: `[{"op":"replace","path":"/status","value":"amended"}]`, hdr: []string{"If-Match", `W/"2"`}, status: 200, wantStatus: "amended", version: "3"},
		{name: "if-match stale", target: "/fhir/Observation/lab1", body: `[{"op":"replace","path":"/status","value":"amended"}]`, hdr: []string{"If-Match", `W/"1"`}, status: 412, wantStatus: "final", version: "2"},
		{name: "unknown", target: "/fhir/Observation/nope", body: `[]`, status: 404},
		{name: "deleted", target: "/fhir/Condition/c2", body: `[]`, status: 410},
		{name: "conditional", target: "/fhir/Observation?_id=lab1", body: `[{"op":"replace","path":"/status","value":"amended"}]`, status: 200, wantStatus: "amended", version: "3"},
		{name: "conditional none", target: "/fhir/Observation?_id=nope", body: `[]`, status: 404},
		{name: "conditional many", target: "/fhir/Observation?identifier=http://my-lab-system|123", body: `[]`, status: 412, wantStatus: "final", version: "2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSeeded(t)
			wantStatus(t, do(t, s, "DELETE", "/fhir/Condition/c2", ""), 204)
			hdr := append([]string{"Content-Type", jp}, tt.hdr...)
			m := wantStatus(t, do(t, s, "PATCH", tt.target, tt.body, hdr...), tt.status)
			if tt.status == 200 && (m["id"] != "lab1" || field(m, "meta", "versionId") != tt.version) {
				t.Fatalf("response %v", m)
			}
			if tt.wantStatus != "" {
				got := wantStatus(t, do(t, s, "GET", "/fhir/Observation/lab1", ""), 200)
				if got["status"] != tt.wantStatus || field(got, "meta", "versionId") != tt.version {
					t.Fatalf("stored status %v version %v", got["status"], field(got, "meta", "versionId"))
				}
			}
		})
	}
	t.Run("stored versions are not mutated", func(t *testing.T) {
		s := newSeeded(t)
		before := do(t, s, "GET", "/fhir/Observation/lab1/_history/2", "").Body.String()
		wantStatus(t, do(t, s, "PATCH", "/fhir/Observation/lab1", `[{"op":"add","path":"/category/0/coding/-","value":{"code":"x"}}]`, "Content-Type", jp), 200)
		if after := do(t, s, "GET", "/fhir/Observation/lab1/_history/2", "").Body.String(); after != before {
			t.Fatalf("version 2 changed:\n%s\n%s", before, after)
		}
		var m map[string]any
		_ = json.Unmarshal(do(t, s, "GET", "/fhir/Observation/lab1", "").Body.Bytes(), &m)
		if field(m, "category", "0", "coding", "1", "code") != "x" {
			t.Fatalf("patch not applied: %v", m["category"])
		}
	})
}
