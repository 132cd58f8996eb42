package fhirstore

import (
	"encoding/base64"
	"strings"
	"testing"
)

func entryStatuses(t *testing.T, b map[string]any) []string {
	t.Helper()
	var out []string
	es, _ := b["entry"].([]any)
	for _, e := range es {
		st, _ := field(e, "response", "status").(string)
		out = append(out, st)
	}
	return out
}

func bundleOf(typ string, entries ...string) string {
	return `{"resourceType":"Bundle","type":"` + typ + `","entry":[` + strings.Join(entries, ",") + `]}`
}

func entry(method, url, resource string, extra ...string) string {
	e := `{"request":{"method":"` + method + `","url":"` + url + `"` + strings.Join(extra, "") + `}`
	if resource != "" {
		e += `,"resource":` + resource
	}
	return e + `}`
}

func patchEntry(url, patch string) string {
	bin := `{"resourceType":"Binary","contentType":"application/json-patch+json","data":"` + base64.StdEncoding.EncodeToString([]byte(patch)) + `"}`
	return entry("PATCH", url, bin)
}

func TestBatch(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		status   int
		statuses []string
		after    map[string]int // path → status of a GET afterwards
	}{
		{name: "read and delete", body: bundleOf("batch", entry("GET", "Observation/lab1", ""), entry("DELETE", "Observation/lab1", "")),
			status: 200, statuses: []string{"200 OK", "204 No Content"}, after: map[string]int{"Observation/lab1": 410}},
		{name: "failures stay in their entry", body: bundleOf("batch", entry("GET", "Observation/nope", ""), entry("PUT", "Observation/b1", obsWith("b1", "Patient/123")), entry("PUT", "Observation/b2", obsWith("other", "Patient/123"))),
			status: 200, statuses: []string{"404 Not Found", "201 Created", "400 Bad Request"}, after: map[string]int{"Observation/b1": 200, "Observation/b2": 404}},
		{name: "search entry", body: bundleOf("batch", entry("GET", "Observation?patient=456", "")), status: 200, statuses: []string{"200 OK"}},
		{name: "search with a URL in its query", body: bundleOf("batch", entry("GET", "Observation?code=http://loinc.org|2339-0", "")), status: 200, statuses: []string{"200 OK"}},
		{name: "absolute url", body: bundleOf("batch", entry("GET", testBase+"/Patient/123", "")), status: 200, statuses: []string{"200 OK"}},
		{name: "other server url", body: bundleOf("batch", entry("GET", "http://other.example/fhir/Patient/123", "")), status: 200, statuses: []string{"400 Bad Request"}},
		{name: "create and patch", body: bundleOf("batch", entry("POST", "Observation", newObs), patchEntry("Observation/vs1", `[{"op":"replace","path":"/status","value":"amended"}]`)),
			status: 200, statuses: []string{"201 Created", "200 OK"}},
		{name: "patch not binary", body: bundleOf("batch", entry("PATCH", "Observation/vs1", `{"resourceType":"Parameters"}`)), status: 200, statuses: []string{"400 Bad Request"}},
		{name: "nested batch refused", body: bundleOf("batch", entry("POST", "", bundleOf("batch"))), status: 200, statuses: []string{"400 Bad Request"}},
		{name: "nested batch with slash", body: bundleOf("batch", entry("POST", "/", bundleOf("batch"))), status: 200, statuses: []string{"400 Bad Request"}},
		{name: "bad method", body: bundleOf("batch", entry("TRACE", "Patient/123", "")), status: 200, statuses: []string{"400 Bad Request"}},
		{name: "no request", body: bundleOf("batch", `{"resource":{"resourceType":"Patient"}}`), status: 200, statuses: []string{"400 Bad Request"}},
		{name: "post without resource", body: bundleOf("batch", entry("POST", "Patient", "")), status: 200, statuses: []string{"400 Bad Request"}},
		{name: "empty", body: bundleOf("batch"), status: 200, statuses: nil},
		{name: "not a bundle", body: `{"resourceType":"Patient"}`, status: 400},
		{name: "wrong bundle type", body: bundleOf("collection"), status: 400},
		{name: "not JSON", body: `{`, status: 400},
		{name: "entry not an object", body: `{"resourceType":"Bundle","type":"batch","entry":[1]}`, status: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSeeded(t)
			b := wantStatus(t, do(t, s, "POST", "/fhir", tt.body), tt.status)
			if tt.status != 200 {
				return
			}
			if b["type"] != "batch-response" {
				t.Fatalf("type %v", b["type"])
			}
			if got := entryStatuses(t, b); strings.Join(got, ";") != strings.Join(tt.statuses, ";") {
				t.Fatalf("statuses %q, want %q", got, tt.statuses)
			}
			for p, st := range tt.after {
				wantStatus(t, do(t, s, "GET", "/fhir/"+p, ""), st)
			}
		})
	}
	t.Run("form content type refused", func(t *testing.T) {
		s := newSeeded(t)
		wantStatus(t, do(t, s, "POST", "/fhir", bundleOf("batch"), "Content-Type", "text/plain"), 415)
	})
}

func TestTransaction(t *testing.T) {
	patientUUID := "urn:uuid:8c5e2d7a-1b1c-4c38-9d57-4b1f0a4a1a11"
	newPatient := `{"fullUrl":"` + patientUUID + `","resource":{"resourceType":"Patient","name":[{"family":"New"}]},"request":{"method":"POST","url":"Patient"}}`
	obsForNew := `{"fullUrl":"urn:uuid:0d9b7c2e-5a55-4bb1-8a8e-33c1ad7c3f22","resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"` + patientUUID + `"}},"request":{"method":"POST","url":"Observation"}}`

	t.Run("urn references resolved", func(t *testing.T) {
		s := newSeeded(t)
		b := wantStatus(t, do(t, s, "POST", "/fhir", bundleOf("transaction", obsForNew, newPatient)), 200)
		if b["type"] != "transaction-response" || strings.Join(entryStatuses(t, b), ";") != "201 Created;201 Created" {
			t.Fatalf("got %v", b)
		}
		obsLoc, _ := field(b, "entry", "0", "response", "location").(string)
		patLoc, _ := field(b, "entry", "1", "response", "location").(string)
		if !strings.HasPrefix(obsLoc, "Observation/") || !strings.HasPrefix(patLoc, "Patient/") {
			t.Fatalf("locations %q %q", obsLoc, patLoc)
		}
		patRef := strings.TrimSuffix(patLoc, "/_history/1")
		obs := wantStatus(t, do(t, s, "GET", "/fhir/"+strings.TrimSuffix(obsLoc, "/_history/1"), ""), 200)
		if field(obs, "subject", "reference") != patRef {
			t.Fatalf("subject %v, want %s", field(obs, "subject", "reference"), patRef)
		}
		// and the new patient's compartment finds it
		sb := wantStatus(t, do(t, s, "GET", "/fhir/"+patRef+"/Observation", ""), 200)
		if len(entries(t, sb, "match")) != 1 {
			t.Fatalf("compartment of %s: %v", patRef, entries(t, sb, "match"))
		}
	})

	t.Run("processing order", func(t *testing.T) {
		s := newSeeded(t)
		body := bundleOf("transaction",
			entry("GET", "Observation/vs1", ""),
			entry("PUT", "Observation/vs1", obsWith("vs1", "Patient/123")),
			entry("DELETE", "Observation/lab2", ""),
			entry("GET", "Observation?patient=123", ""),
		)
		b := wantStatus(t, do(t, s, "POST", "/fhir", body), 200)
		if got := strings.Join(entryStatuses(t, b), ";"); got != "200 OK;200 OK;204 No Content;200 OK" {
			t.Fatalf("statuses %s", got)
		}
		if v := field(b, "entry", "0", "resource", "meta", "versionId"); v != "2" {
			t.Fatalf("GET ran before the PUT: version %v", v)
		}
		if n := total(field(b, "entry", "3", "resource").(map[string]any)); n != 2 {
			t.Fatalf("search saw %d, want 2 after the delete", n)
		}
	})

	t.Run("conditional create", func(t *testing.T) {
		s := newSeeded(t)
		body := bundleOf("transaction",
			entry("POST", "Patient", `{"resourceType":"Patient"}`, `,"ifNoneExist":"identifier=MRN-456"`),
			`{"fullUrl":"urn:uuid:aaa","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=none"}}`,
		)
		b := wantStatus(t, do(t, s, "POST", "/fhir", body), 200)
		if got := strings.Join(entryStatuses(t, b), ";"); got != "200 OK;201 Created" {
			t.Fatalf("statuses %s", got)
		}
		if field(b, "entry", "0", "resource", "id") != "456" {
			t.Fatalf("existing patient not returned: %v", field(b, "entry", "0"))
		}
	})

	rollbackCases := []struct {
		name   string
		body   string
		status int
	}{
		{"invalid update", bundleOf("transaction", newPatient, obsForNew, entry("DELETE", "Observation/lab1", ""), entry("PUT", "Observation/x", obsWith("y", "Patient/123"))), 400},
		{"missing read", bundleOf("transaction", entry("DELETE", "Observation/lab1", ""), entry("GET", "Observation/nope", "")), 404},
		{"stale if-match", bundleOf("transaction", newPatient, entry("PUT", "Observation/lab1", obsWith("lab1", "Patient/123"), `,"ifMatch":"W/\"1\""`)), 412},
		{"patch conflict", bundleOf("transaction", newPatient, patchEntry("Observation/vs1", `[{"op":"test","path":"/status","value":"x"}]`)), 409},
		{"ambiguous conditional create", bundleOf("transaction", newPatient, entry("POST", "Observation", newObs, `,"ifNoneExist":"identifier=http://my-lab-system|123"`)), 412},
		{"duplicate target", bundleOf("transaction", entry("PUT", "Observation/lab1", obsWith("lab1", "Patient/123")), entry("DELETE", "Observation/lab1", "")), 400},
		{"nested bundle", bundleOf("transaction", newPatient, entry("POST", "", bundleOf("transaction"))), 400},
		{"unknown type", bundleOf("transaction", newPatient, entry("POST", "Nope", `{"resourceType":"Nope"}`)), 404},
		{"bad entry", bundleOf("transaction", newPatient, `{"request":{"method":"PUT"}}`), 400},
		{"delete of unknown", bundleOf("transaction", newPatient, entry("DELETE", "Observation/nope", "")), 404},
		{"conditional create of a resource the transaction deletes", bundleOf("transaction", entry("POST", "Patient", `{"resourceType":"Patient"}`, `,"ifNoneExist":"identifier=MRN-456"`), entry("DELETE", "Patient?identifier=MRN-456", "")), 409},
		{"new type rolled back", bundleOf("transaction", entry("PUT", "Basic/b1", `{"resourceType":"Basic","id":"b1"}`), entry("GET", "Observation/nope", "")), 404},
	}
	for _, tt := range rollbackCases {
		t.Run("all or nothing: "+tt.name, func(t *testing.T) {
			s := newSeeded(t)
			before := do(t, s, "GET", "/fhir/_history?_count=1000", "").Body.String()
			lenBefore := s.Len()
			m := wantStatus(t, do(t, s, "POST", "/fhir", tt.body), tt.status)
			if d, _ := field(m, "issue", "0", "diagnostics").(string); !strings.HasPrefix(d, "entry ") {
				t.Errorf("diagnostics %q do not name the entry", d)
			}
			if after := do(t, s, "GET", "/fhir/_history?_count=1000", "").Body.String(); after != before || s.Len() != lenBefore {
				t.Fatal("a failed transaction changed the store")
			}
			wantStatus(t, do(t, s, "GET", "/fhir/Observation/lab1", ""), 200)
			for typ, byID := range s.res {
				if len(byID) == 0 {
					t.Errorf("rollback left an empty %s table", typ)
				}
			}
			// server-assigned ids are reused after a rollback
			rec := do(t, s, "POST", "/fhir/Patient", `{"resourceType":"Patient"}`)
			wantStatus(t, rec, 201)
			if loc := rec.Header().Get("Location"); loc != testBase+"/Patient/1/_history/1" {
				t.Errorf("Location after rollback %q", loc)
			}
		})
	}
}
