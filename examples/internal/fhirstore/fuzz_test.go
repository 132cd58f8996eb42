package fhirstore

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// checkResponse holds for every response: no 5xx, a JSON object body (an
// OperationOutcome on errors) with the FHIR media type.
func checkResponse(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if rec.Code >= 500 || rec.Code < 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
	}
	if rec.Body.Len() == 0 {
		return nil
	}
	if !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("invalid JSON: %q", rec.Body.String())
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("not an object: %q", rec.Body.String())
	}
	if rec.Code >= 400 && m["resourceType"] != "OperationOutcome" {
		t.Fatalf("error %d without OperationOutcome: %s", rec.Code, rec.Body.String())
	}
	return m
}

func FuzzSearch(f *testing.F) {
	seeds := []struct{ path, query string }{
		{"Observation", "patient=123"},
		{"Observation", "patient=Patient/123&category=" + url.QueryEscape(labCat)},
		{"Observation", "subject:Patient=" + testBase + "/Patient/456&code=|4548-4,http://loinc.org|2339-0"},
		{"Observation", "_include=Observation:patient&_revinclude=Provenance:target&_count=1&_offset=1"},
		{"Observation", "_include:iterate=*&_summary=count&_elements=code,subject"},
		{"Observation", "date=ge2024-01&date=lt2024-03-01T00:00:00Z&category:not=vital-signs"},
		{"Observation", "performer:missing=true&_id=lab1%5C,vs1&_sort:desc=date"},
		{"Patient", "name:contains=SMI&birthdate=1970&_revinclude=Observation:subject"},
		{"", "_type=Observation,Condition&patient=123"},
		{"", "_id=lab1&_count=0"},
		{"Patient/123/*", "_count=2"},
		{"Patient/123/Observation", "category=laboratory"},
		{"Patient/123/$everything", "_type=Observation&_count=3"},
		{"_history", "_since=2026-01-01T00:00:05Z&_count=2"},
		{"Observation/lab1", "_elements=status&_summary=text"},
		{"Observation/lab1/_history/1", "_pretty=true"},
		{"Observation", "subject.name=x&_has:Observation:patient:code=1"},
		{"Observation", "%zz=1&a=%"},
	}
	for _, s := range seeds {
		f.Add(s.path, s.query)
	}
	s := newSeeded(f)
	n := s.Len()
	f.Fuzz(func(t *testing.T, path, query string) {
		r := httptest.NewRequest("GET", "http://fhir.test/fhir", nil)
		r.URL = &url.URL{Path: "/fhir/" + path, RawQuery: query}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, r)
		m := checkResponse(t, rec)
		if rec.Code == 200 && m == nil {
			t.Fatal("200 without a body")
		}
		if s.Len() != n {
			t.Fatal("a GET changed the store")
		}
	})
}

func FuzzPatch(f *testing.F) {
	f.Add(`{"a":[1,2],"b":{"c":"d"}}`, `[{"op":"add","path":"/a/-","value":3}]`)
	f.Add(`{"a":[1,2]}`, `[{"op":"move","from":"/a/0","path":"/a/1"},{"op":"copy","from":"/a","path":"/b"}]`)
	f.Add(`{"/":{"~":1}}`, `[{"op":"test","path":"/~1/~0","value":1},{"op":"remove","path":"/~1"}]`)
	f.Add(`{"a":1}`, `[{"op":"replace","path":"","value":[]}]`)
	f.Add(`{"a":{"b":{}}}`, `[{"op":"move","from":"/a","path":"/a/b/c"}]`)
	f.Fuzz(func(t *testing.T, doc, patch string) {
		obj, err := decodeObject([]byte(doc))
		if err != nil {
			return
		}
		before := string(mustEncode(obj))
		ops, err := parsePatch([]byte(patch))
		if err != nil {
			return
		}
		out, err := applyPatch(deepCopy(obj), ops)
		if err != nil {
			return
		}
		if !json.Valid(mustEncode(out)) {
			t.Fatal("patched document is not JSON")
		}
		if string(mustEncode(obj)) != before {
			t.Fatal("the input document was modified")
		}
	})
}

// FuzzBundle checks that a transaction either succeeds or leaves the store
// exactly as it was.
func FuzzBundle(f *testing.F) {
	f.Add(bundleOf("transaction", entry("PUT", "Observation/x", obsWith("x", "Patient/123")), entry("DELETE", "Observation/lab1", "")))
	f.Add(bundleOf("transaction", entry("DELETE", "Observation/lab1", ""), entry("GET", "Observation/nope", "")))
	f.Add(bundleOf("batch", entry("GET", "Observation?patient=123", ""), entry("POST", "Observation", newObs)))
	f.Add(bundleOf("transaction", `{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}}`,
		`{"resource":{"resourceType":"Observation","subject":{"reference":"urn:uuid:1"}},"request":{"method":"POST","url":"Observation","ifNoneExist":"patient=urn:uuid:1"}}`))
	f.Add(bundleOf("transaction", patchEntry("Observation/vs1", `[{"op":"test","path":"/status","value":"x"}]`)))
	f.Fuzz(func(t *testing.T, body string) {
		s := newSeeded(t)
		before := do(t, s, "GET", "/fhir/_history?_count=1000", "").Body.String()
		rec := do(t, s, http.MethodPost, "/fhir", body)
		checkResponse(t, rec)
		if rec.Code != 200 && strings.Contains(body, "transaction") {
			if after := do(t, s, "GET", "/fhir/_history?_count=1000", "").Body.String(); after != before {
				t.Fatal("a failed transaction changed the store")
			}
		}
	})
}

// FuzzRequest sends arbitrary requests: no panic, no 5xx, JSON bodies, and
// a failed request leaves the store as it was.
func FuzzRequest(f *testing.F) {
	f.Add("PUT", "Observation/lab1", "", obsWith("lab1", "Patient/456"), "application/fhir+json")
	f.Add("PATCH", "Observation/lab1", "", `[{"op":"move","from":"/subject","path":"/focus"}]`, "application/json-patch+json")
	f.Add("PATCH", "Observation", "_id=lab1", `[{"op":"copy","from":"/code","path":"/category/-"}]`, "application/json-patch+json")
	f.Add("POST", "Observation", "", newObs, "application/fhir+json")
	f.Add("PUT", "Observation", "identifier=urn:test|new-1", newObs, "application/json")
	f.Add("DELETE", "Observation", "identifier=http://my-lab-system|123", "", "")
	f.Add("POST", "Observation/_search", "", "patient=123&_include=*", "application/x-www-form-urlencoded")
	f.Add("POST", "", "", bundleOf("transaction", entry("DELETE", "Observation?patient=123", "")), "application/fhir+json")
	f.Fuzz(func(t *testing.T, method, path, query, body, contentType string) {
		switch method {
		case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE":
		default:
			return
		}
		s := newSeeded(t)
		before := do(t, s, "GET", "/fhir/_history?_count=1000", "").Body.String()
		r := httptest.NewRequest(method, "http://fhir.test/fhir", strings.NewReader(body))
		r.URL = &url.URL{Path: "/fhir/" + path, RawQuery: query}
		r.Header.Set("Content-Type", contentType)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, r)
		checkResponse(t, rec)
		if rec.Code >= 400 {
			if after := do(t, s, "GET", "/fhir/_history?_count=1000", "").Body.String(); after != before {
				t.Fatalf("a failed %s changed the store", method)
			}
		}
	})
}
