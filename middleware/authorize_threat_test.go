package middleware

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

var own3 = []string{"Observation/abs123", "Observation/lab1", "Observation/vs1"}

// TestAuthorizeThreatReads covers the read rows of threat-model §5: other
// patients by id, reference forms, existence oracles.
func TestAuthorizeThreatReads(t *testing.T) {
	runVectors(t, []vector{
		{name: "other Patient answered without the handler", scopes: "patient/Patient.rs", patient: "123", target: "/Patient/456", status: 404, handler: no},
		{name: "absent Patient answered without the handler", scopes: "patient/Patient.rs", patient: "123", target: "/Patient/999", status: 404, handler: no},
		{name: "linked Patient hidden by default", scopes: "patient/Patient.rs", patient: "123", target: "/Patient/789", status: 404, handler: no},
		{name: "absolute reference to this server", scopes: "patient/Observation.rs", patient: "123", target: "/Observation/abs123", status: 200},
		{name: "absolute reference to another server", scopes: "patient/Observation.rs", patient: "123", target: "/Observation/evil123", status: 404},
		{name: "Group with the patient's id", scopes: "patient/Observation.rs", patient: "123", target: "/Observation/grp", status: 404},
		{name: "patient claim in reference form", scopes: "patient/Observation.rs", patient: "123", target: "/Observation/o456", status: 404},
		{name: "shared type readable", scopes: "patient/*.rs", patient: "123", target: "/Medication/m1", status: 200, ids: []string{"Medication/m1"}},
		{name: "non-shared, non-compartment type refused", scopes: "patient/*.rs", patient: "123", target: "/Questionnaire/q1", status: 403, handler: no},
		{name: "HEAD of another patient's", scopes: "patient/Observation.rs", patient: "123", method: "HEAD", target: "/Observation/o456", status: 404},
		{name: "HEAD of own", scopes: "patient/Observation.rs", patient: "123", method: "HEAD", target: "/Observation/lab1", status: 200,
			check: func(t *testing.T, h *harness, r resp) {
				if r.Body.Len() != 0 {
					t.Fatalf("HEAD returned a body: %s", r.Body)
				}
				if calls := h.store.calls(); !strings.HasPrefix(calls[0], "GET ") {
					t.Fatalf("HEAD was not verified through a GET: %v", calls)
				}
			}},
		{name: "unknown type", scopes: "patient/*.rs", patient: "123", target: "/Foo/1", status: 404, handler: no},
		{name: "lower-case type", scopes: "patient/*.rs", patient: "123", target: "/observation/lab1", status: 404, handler: no},
		{name: "DiagnosticReport via fhirContext only", scopes: "patient/Observation.rs", patient: "123", target: "/DiagnosticReport/dr1", status: 403, handler: no},
	}, nil)

	t.Run("user grant with fhirUser Patient", func(t *testing.T) {
		h := newHarness(t, nil)
		tok := token("user/Observation.rs", "")
		tok.FHIRUser = "https://ehr.example.org/fhir/Patient/123"
		if r := h.do(tok, "GET", "/Observation/o456", ""); r.Code != 404 {
			t.Fatalf("status %d", r.Code)
		}
		if r := h.do(tok, "GET", "/Observation/lab1", ""); r.Code != 200 {
			t.Fatalf("status %d", r.Code)
		}
		r := h.do(tok, "GET", "/Observation", "")
		if !slices.Equal(r.ids(), own3) {
			t.Fatalf("search %v", r.ids())
		}
	})

	t.Run("404 identical for hidden and absent", func(t *testing.T) {
		h := newHarness(t, nil)
		tok := token("patient/Observation.rs", "123")
		hidden := h.do(tok, "GET", "/Observation/o456", "")
		absent := h.do(tok, "GET", "/Observation/nope", "")
		if hidden.Code != 404 || absent.Code != 404 || !bytes.Equal(hidden.Body.Bytes(), absent.Body.Bytes()) {
			t.Fatalf("hidden %d %s\nabsent %d %s", hidden.Code, hidden.Body, absent.Code, absent.Body)
		}
		if strings.Contains(absent.Body.String(), "in this server") {
			t.Fatal("the handler's own 404 leaked through")
		}
	})

	t.Run("DenyStatus 403", func(t *testing.T) {
		h := newHarness(t, func(c *AuthorizeConfig) { c.DenyStatus = 403 })
		if r := h.do(token("patient/Observation.rs", "123"), "GET", "/Observation/o456", ""); r.Code != 403 {
			t.Fatalf("status %d", r.Code)
		}
	})

	t.Run("linked patients when enabled", func(t *testing.T) {
		h := newHarness(t, func(c *AuthorizeConfig) { c.IncludeLinkedPatients = true })
		if r := h.do(token("patient/Patient.rs", "123"), "GET", "/Patient/789", ""); r.Code != 200 {
			t.Fatalf("status %d", r.Code)
		}
	})

	t.Run("decimal precision kept", func(t *testing.T) {
		h := newHarness(t, nil)
		r := h.do(token("patient/Observation.rs", "123"), "GET", "/Observation?_include=Observation:performer", "")
		if !strings.Contains(r.Body.String(), `"value":1.50`) {
			t.Fatalf("decimal rewritten: %s", r.Body)
		}
	})
}

// TestAuthorizeThreatSearch covers the search rows of threat-model §5.
func TestAuthorizeThreatSearch(t *testing.T) {
	narrowed := wantQuery("patient", "Patient/123")
	runVectors(t, []vector{
		{name: "no patient", scopes: "patient/Observation.rs", patient: "123", target: "/Observation?code=x", status: 200, ids: own3, check: narrowed},
		{name: "list of patients", scopes: "patient/Observation.rs", patient: "123", target: "/Observation?patient=123,456", status: 200, ids: own3, check: narrowed},
		{name: "repeated patients", scopes: "patient/Observation.rs", patient: "123", target: "/Observation?patient=123&patient=456", status: 200, ids: own3, check: narrowed},
		{name: "untyped subject", scopes: "patient/Observation.rs", patient: "123", target: "/Observation?subject=123", status: 200, ids: own3, check: narrowed},
		{name: "Group subject", scopes: "patient/Observation.rs", patient: "123", target: "/Observation?subject=Group/123", status: 200, ids: own3, check: narrowed},
		{name: "other server", scopes: "patient/Observation.rs", patient: "123", target: "/Observation?patient=https://evil.example.org/fhir/Patient/123", status: 200, ids: own3, check: narrowed},
		{name: "missing modifier", scopes: "patient/Observation.rs", patient: "123", target: "/Observation?patient:missing=true", status: 200, ids: own3, check: narrowed},
		{name: "not modifier", scopes: "patient/Observation.rs", patient: "123", target: "/Observation?patient:not=123", status: 200, ids: own3, check: narrowed},
		{name: "_id of another patient's", scopes: "patient/Observation.rs", patient: "123", target: "/Observation?_id=o456", status: 200, ids: own3, check: narrowed},
		{name: "Patient _id list", scopes: "patient/Patient.rs", patient: "123", target: "/Patient?_id=123,456", status: 200, ids: []string{"Patient/123"}, check: wantQuery("_id", "123")},
		{name: "exact binding kept as is", scopes: "patient/Observation.rs", patient: "123", target: "/Observation?patient=Patient/123", status: 200, ids: own3,
			check: func(t *testing.T, h *harness, r resp) {
				if q := r.query(t, h.store); len(q["patient"]) != 1 {
					t.Fatalf("bound query was narrowed again: %v", q)
				}
			}},
		{name: "chain", scopes: "patient/Observation.rs", patient: "123", target: "/Observation?patient.name=Smith", status: 403, handler: no},
		{name: "typed chain", scopes: "patient/Observation.rs", patient: "123", target: "/Observation?subject:Patient.name=Smith", status: 403, handler: no},
		{name: "_has", scopes: "patient/Patient.rs", patient: "123", target: "/Patient?_has:Observation:patient:code=1234", status: 403, handler: no},
		{name: "_filter", scopes: "patient/Observation.rs", patient: "123", target: "/Observation?patient=123&_filter=patient%20eq%20456", status: 403, handler: no},
		{name: "_query", scopes: "patient/Observation.rs", patient: "123", target: "/Observation?_query=everything", status: 403, handler: no},
		{name: "_summary=count narrowed", scopes: "patient/Observation.rs", patient: "123", target: "/Observation?_summary=count", status: 200, check: narrowed},
		{name: "_summary=true refused", scopes: "patient/Observation.rs", patient: "123", target: "/Observation?_summary=true", status: 403, handler: no},
		{name: "_summary=text refused", scopes: "patient/Observation.rs", patient: "123", target: "/Observation?_summary=text", status: 403, handler: no},
		{name: "_elements restored", scopes: "patient/Observation.rs", patient: "123", target: "/Observation?_elements=code", status: 200, ids: own3,
			check: func(t *testing.T, h *harness, r resp) {
				q := r.query(t, h.store)
				all := strings.Join(q["_elements"], ",")
				if !strings.Contains(all, "subject") || !strings.Contains(all, "performer") || !strings.Contains(all, "code") {
					t.Fatalf("_elements = %v", q["_elements"])
				}
			}},
		{name: "_format=xml refused", scopes: "patient/Observation.rs", patient: "123", target: "/Observation?_format=xml", status: 406, handler: no},
		{name: "_format=html refused", scopes: "patient/Observation.rs", patient: "123", target: "/Observation/lab1?_format=html", status: 406, handler: no},
		{name: "_format=json allowed", scopes: "patient/Observation.rs", patient: "123", target: "/Observation/lab1?_format=json", status: 200},
		{name: "includes filtered", scopes: "patient/Observation.rs", patient: "123", target: "/Observation?_include=Observation:performer", status: 200, ids: own3},
		{name: "A73 revinclude of an ungranted type", scopes: "patient/Observation.rs", patient: "123", target: "/Observation?patient=123&_revinclude=Provenance:target", status: 200, ids: own3},
		{name: "include with iterate", scopes: "patient/*.rs", patient: "123", target: "/Observation?_include:iterate=Observation:subject", status: 200,
			ids: []string{"Condition/c1", "DiagnosticReport/dr1", "Encounter/e1", "Medication/m1", "Observation/abs123", "Observation/lab1", "Observation/vs1", "Patient/123", "Practitioner/9"}},
		{name: "malformed include", scopes: "patient/Observation.rs", patient: "123", target: "/Observation?_include=Observation", status: 400, handler: no},
		{name: "unknown include modifier", scopes: "patient/Observation.rs", patient: "123", target: "/Observation?_include:foo=Observation:subject", status: 400, handler: no},
		{name: "revinclude filtered", scopes: "patient/Observation.rs patient/Provenance.rs", patient: "123", target: "/Observation?_revinclude=Provenance:target", status: 200, ids: own3},
		{name: "compartment * filters types", scopes: "patient/Observation.rs patient/Condition.rs", patient: "123", target: "/Patient/123/*", status: 200,
			ids: []string{"Condition/c1", "Observation/abs123", "Observation/lab1", "Observation/vs1"}},
		{name: "compartment * of another patient", scopes: "patient/*.rs", patient: "123", target: "/Patient/456/*", status: 403, handler: no},
		{name: "Encounter compartment under patient grant", scopes: "patient/Observation.rs", patient: "123", target: "/Encounter/e1/Observation", status: 403, handler: no},
		{name: "system search under patient grant", scopes: "patient/*.rs", patient: "123", target: "/?_type=Observation", status: 403, handler: no},
		{name: "system search with system wildcard", scopes: "system/*.rs", target: "/?_type=Observation,Condition", status: 200, handler: yes},
		{name: "system search without _type needs wildcard", scopes: "system/Observation.rs", target: "/", status: 403, handler: no},
		{name: "system search _type each granted", scopes: "system/Observation.rs system/Condition.rs", target: "/?_type=Observation,Condition", status: 200, handler: yes},
		{name: "system search _type one ungranted", scopes: "system/Observation.rs", target: "/?_type=Observation,Condition", status: 403, handler: no},
	}, nil)

	t.Run("total corrected", func(t *testing.T) {
		h := newHarness(t, nil)
		r := h.do(token("patient/Observation.rs", "123"), "GET", "/Observation", "")
		if total := r.doc["total"]; total != float64(3) {
			t.Fatalf("total = %v", total)
		}
	})

	t.Run("POST _search narrowed", func(t *testing.T) {
		h := newHarness(t, nil)
		req := httptest.NewRequest("POST", "https://ehr.example.org/fhir/Observation/_search", strings.NewReader("patient=456"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		withToken(token("patient/Observation.rs", "123"), h.authz.Handler(h.store)).ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("status %d %s", rec.Code, rec.Body)
		}
		calls := h.store.calls()
		if len(calls) != 1 || !strings.Contains(calls[0], "patient=Patient%2F123") || h.store.bodies[0] != "patient=456" {
			t.Fatalf("calls %v bodies %v", calls, h.store.bodies)
		}
		if strings.Contains(rec.Body.String(), "o456") {
			t.Fatal("another patient's Observation leaked")
		}
	})

	t.Run("gzip response verified", func(t *testing.T) {
		h := newHarness(t, nil)
		h.store.gzip = true
		r := h.do(token("patient/Observation.rs", "123"), "GET", "/Observation", "", "Accept-Encoding", "gzip")
		if r.Code != 200 || !slices.Equal(r.ids(), own3) || r.Header().Get("Content-Encoding") != "" {
			t.Fatalf("status %d ids %v encoding %q", r.Code, r.ids(), r.Header().Get("Content-Encoding"))
		}
		if h.store.lastHeader().Get("Accept-Encoding") != "" {
			t.Fatal("Accept-Encoding reached the handler")
		}
	})

	t.Run("XML response refused", func(t *testing.T) {
		h := newHarness(t, nil)
		h.store.format = "xml"
		r := h.do(token("patient/Observation.rs", "123"), "GET", "/Observation/lab1", "", "Accept", "application/fhir+xml")
		if r.Code != 406 || strings.Contains(r.Body.String(), "<Bundle") {
			t.Fatalf("status %d %s", r.Code, r.Body)
		}
		if h.store.lastHeader().Get("Accept") != "application/fhir+json" {
			t.Fatal("the handler was not asked for JSON")
		}
	})

	t.Run("conditional read headers dropped", func(t *testing.T) {
		h := newHarness(t, nil)
		r := h.do(token("patient/Observation.rs", "123"), "GET", "/Observation/o456", "", "If-None-Match", `W/"1"`)
		if r.Code != 404 || h.store.lastHeader().Get("If-None-Match") != "" {
			t.Fatalf("status %d", r.Code)
		}
	})
}

// TestAuthorizeThreatWrites covers the write rows of threat-model §5.
func TestAuthorizeThreatWrites(t *testing.T) {
	patch := []string{"Content-Type", "application/json-patch+json"}
	runVectors(t, []vector{
		{name: "take over another patient's", scopes: "patient/Observation.u", patient: "123", method: "PUT", target: "/Observation/o456",
			body: `{"resourceType":"Observation","id":"o456","subject":{"reference":"Patient/123"}}`, status: 403,
			check: func(t *testing.T, h *harness, r resp) {
				if calls := h.store.calls(); len(calls) != 1 || !strings.HasPrefix(calls[0], "GET ") {
					t.Fatalf("handler calls %v", calls)
				}
			}},
		{name: "update own", scopes: "patient/Observation.u", patient: "123", method: "PUT", target: "/Observation/lab1",
			body: `{"resourceType":"Observation","id":"lab1","subject":{"reference":"Patient/123"}}`, status: 201},
		{name: "update id mismatch", scopes: "patient/Observation.u", patient: "123", method: "PUT", target: "/Observation/lab1",
			body: `{"resourceType":"Observation","id":"o456","subject":{"reference":"Patient/123"}}`, status: 400},
		{name: "body type mismatch", scopes: "patient/*.c", patient: "123", method: "POST", target: "/Observation",
			body: `{"resourceType":"Condition","subject":{"reference":"Patient/123"}}`, status: 400, handler: no},
		{name: "body not JSON", scopes: "patient/Observation.c", patient: "123", method: "POST", target: "/Observation", body: `<Observation/>`, status: 400, handler: no},
		{name: "reference to another patient", scopes: "patient/Observation.c", patient: "123", method: "POST", target: "/Observation",
			body: `{"resourceType":"Observation","subject":{"reference":"Patient/123"},"hasMember":[{"reference":"Patient/456"}]}`, status: 403, handler: no},
		{name: "absolute reference to another patient", scopes: "patient/Observation.c", patient: "123", method: "POST", target: "/Observation",
			body: `{"resourceType":"Observation","subject":{"reference":"Patient/123"},"focus":[{"reference":"https://ehr.example.org/fhir/Patient/456"}]}`, status: 403, handler: no},
		{name: "contained resource referring to another patient", scopes: "patient/Observation.c", patient: "123", method: "POST", target: "/Observation",
			body: `{"resourceType":"Observation","subject":{"reference":"Patient/123"},"contained":[{"resourceType":"Provenance","id":"p","target":[{"reference":"Patient/456"}]}]}`, status: 403, handler: no},
		{name: "contained resource referring to the own patient", scopes: "patient/Observation.c", patient: "123", method: "POST", target: "/Observation",
			body: `{"resourceType":"Observation","subject":{"reference":"Patient/123"},"contained":[{"resourceType":"Provenance","id":"p","target":[{"reference":"Patient/123"}]}]}`, status: 201},
		{name: "extension referring to another patient", scopes: "patient/Observation.c", patient: "123", method: "POST", target: "/Observation",
			body: `{"resourceType":"Observation","subject":{"reference":"Patient/123"},"extension":[{"url":"http://example.org/x","valueReference":{"reference":"Patient/456"}}]}`, status: 403, handler: no},
		{name: "create without compartment link", scopes: "patient/Observation.c", patient: "123", method: "POST", target: "/Observation",
			body: `{"resourceType":"Observation","status":"final"}`, status: 403, handler: no},
		{name: "create shared type refused", scopes: "patient/*.cruds", patient: "123", method: "POST", target: "/Medication",
			body: `{"resourceType":"Medication"}`, status: 403, handler: no},
		{name: "system create not checked", scopes: "system/Observation.c", method: "POST", target: "/Observation",
			body: `{"resourceType":"Observation","subject":{"reference":"Patient/456"}}`, status: 201},
		{name: "patch compartment reference", scopes: "patient/Observation.u", patient: "123", method: "PATCH", target: "/Observation/lab1",
			body: `[{"op":"replace","path":"/subject/reference","value":"Patient/456"}]`, hdr: patch, status: 403},
		{name: "patch whole subject", scopes: "patient/Observation.u", patient: "123", method: "PATCH", target: "/Observation/lab1",
			body: `[{"op":"replace","path":"/subject","value":{"reference":"Patient/456"}}]`, hdr: patch, status: 403},
		{name: "patch move into subject", scopes: "patient/Observation.u", patient: "123", method: "PATCH", target: "/Observation/lab1",
			body: `[{"op":"add","path":"/focus","value":[{"reference":"Patient/456"}]},{"op":"move","from":"/focus/0","path":"/subject"},{"op":"remove","path":"/focus"}]`, hdr: patch, status: 403},
		{name: "patch builds a reference piece by piece", scopes: "patient/Observation.u", patient: "123", method: "PATCH", target: "/Observation/lab1",
			body: `[{"op":"add","path":"/focus","value":[{}]},{"op":"add","path":"/focus/0/reference","value":"Patient/456"}]`, hdr: patch, status: 403},
		{name: "patch escaped pointer", scopes: "patient/Observation.u", patient: "123", method: "PATCH", target: "/Observation/lab1",
			body: `[{"op":"add","path":"/sub~1ject","value":1},{"op":"replace","path":"/subject/reference","value":"Patient/456"}]`, hdr: patch, status: 422, check: noPatchSent},
		{name: "patch that cannot apply", scopes: "patient/Observation.u", patient: "123", method: "PATCH", target: "/Observation/lab1",
			body: `[{"op":"remove","path":"/performer/0"}]`, hdr: patch, status: 422, check: noPatchSent},
		{name: "patch root", scopes: "patient/Observation.u", patient: "123", method: "PATCH", target: "/Observation/lab1",
			body: `[{"op":"replace","path":"","value":{}}]`, hdr: patch, status: 403},
		{name: "patch adding another patient reference", scopes: "patient/Observation.u", patient: "123", method: "PATCH", target: "/Observation/lab1",
			body: `[{"op":"add","path":"/hasMember","value":[{"reference":"Patient/456"}]}]`, hdr: patch, status: 403},
		{name: "patch of another patient's", scopes: "patient/Observation.u", patient: "123", method: "PATCH", target: "/Observation/o456",
			body: `[{"op":"replace","path":"/status","value":"amended"}]`, hdr: patch, status: 404},
		{name: "FHIRPath patch refused", scopes: "patient/Observation.u", patient: "123", method: "PATCH", target: "/Observation/lab1",
			body: `{"resourceType":"Parameters"}`, hdr: []string{"Content-Type", "application/fhir+json"}, status: 415},
		{name: "delete another patient's", scopes: "patient/Observation.d", patient: "123", method: "DELETE", target: "/Observation/o456", status: 404,
			check: func(t *testing.T, h *harness, r resp) {
				for _, c := range h.store.calls() {
					if strings.HasPrefix(c, "DELETE") {
						t.Fatalf("the handler deleted: %v", h.store.calls())
					}
				}
			}},
		{name: "conditional delete, server ignores the narrowing", scopes: "patient/Observation.d", patient: "123", method: "DELETE", target: "/Observation?identifier=http://my-lab-system|123", status: 403},
		{name: "A22 conditional delete by identifier", honest: true, scopes: "patient/Observation.d", patient: "123", method: "DELETE", target: "/Observation?identifier=http://my-lab-system|123", status: 204,
			check: func(t *testing.T, h *harness, r resp) {
				q := r.query(t, h.store)
				if q.Get("identifier") != "http://my-lab-system|123" || q.Get("patient") != "Patient/123" {
					t.Fatalf("criteria %v", q)
				}
			}},
		{name: "conditional delete narrowed", honest: true, scopes: "patient/Observation.d", patient: "123", method: "DELETE", target: "/Observation?code=x", status: 204,
			check: wantQuery("patient", "Patient/123")},
		{name: "conditional update narrowed", honest: true, scopes: "patient/Observation.u", patient: "123", method: "PUT", target: "/Observation?patient=456&code=x",
			body: `{"resourceType":"Observation","subject":{"reference":"Patient/123"}}`, status: 201, check: wantQuery("patient", "Patient/123")},
		{name: "conditional create narrowed", scopes: "patient/Observation.c", patient: "123", method: "POST", target: "/Observation",
			body: `{"resourceType":"Observation","subject":{"reference":"Patient/123"}}`, hdr: []string{"If-None-Exist", "patient=456&code=x"}, status: 201,
			check: func(t *testing.T, h *harness, r resp) {
				if got := h.store.lastHeader().Get("If-None-Exist"); !strings.Contains(got, "patient=Patient%2F123") {
					t.Fatalf("If-None-Exist = %q", got)
				}
			}},
		{name: "conditional delete with chain", scopes: "patient/Observation.d", patient: "123", method: "DELETE", target: "/Observation?patient.name=x", status: 403, handler: no},
	}, nil)
}

// TestAuthorizeThreatProtocol covers paths, methods, OPTIONS and tokens.
func TestAuthorizeThreatProtocol(t *testing.T) {
	tok := "patient/*.cruds"
	runVectors(t, []vector{
		{name: "dot segments", scopes: tok, patient: "123", target: "/Observation/lab1/../o456", status: 400, handler: no},
		{name: "encoded slash", scopes: tok, patient: "123", target: "/Observation%2Fo456", status: 400, handler: no},
		{name: "lower encoded slash", scopes: tok, patient: "123", target: "/Observation%2fo456", status: 400, handler: no},
		{name: "double encoding", scopes: tok, patient: "123", target: "/Observation%252Fo456", status: 400, handler: no},
		{name: "double slash", scopes: tok, patient: "123", target: "//Observation/o456", status: 400, handler: no},
		{name: "backslash", scopes: tok, patient: "123", target: "/Observation%5Co456", status: 400, handler: no},
		{name: "semicolon", scopes: tok, patient: "123", target: "/Observation/lab1;x=y", status: 400, handler: no},
		{name: "NUL", scopes: tok, patient: "123", target: "/Observation/lab1%00", status: 400, handler: no},
		{name: "override header", scopes: tok, patient: "123", method: "POST", target: "/Observation/lab1", hdr: []string{"X-HTTP-Method-Override", "DELETE"}, status: 400, handler: no},
		{name: "X-HTTP-Method", scopes: tok, patient: "123", target: "/Observation/lab1", hdr: []string{"X-HTTP-Method", "DELETE"}, status: 400, handler: no},
		{name: "_method", scopes: tok, patient: "123", target: "/Observation/lab1?_method=DELETE", status: 400, handler: no},
		{name: "OPTIONS never reaches the handler", scopes: tok, patient: "123", method: "OPTIONS", target: "/Observation/o456", status: 204, handler: no},
		{name: "unknown method", scopes: tok, patient: "123", method: "TRACE", target: "/Observation/lab1", status: 405, handler: no},
		{name: "metadata is public", scopes: "", target: "/metadata", status: 200, handler: yes},
	}, nil)

	t.Run("no token", func(t *testing.T) {
		h := newHarness(t, nil)
		r := h.do(nil, "GET", "/Observation/lab1", "")
		if r.Code != 401 || len(h.store.calls()) != 0 {
			t.Fatalf("status %d", r.Code)
		}
	})

	t.Run("decision in context", func(t *testing.T) {
		a, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		var got *Decision
		h := withToken(token("patient/Observation.rs", "123"), a.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got, _ = DecisionFromContext(r.Context())
			w.Header().Set("Content-Type", "application/fhir+json")
			_, _ = w.Write([]byte(`{"resourceType":"Bundle","type":"searchset"}`))
		})))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", testBase+"/Observation?code=x", nil))
		if got == nil || got.CompartmentType != "Patient" || got.CompartmentID != "123" || !got.Narrowed ||
			got.Interaction.ResourceType != "Observation" || !got.Grant.Unconstrained {
			t.Fatalf("decision %+v", got)
		}
	})
}

func TestNewAuthorizerValidation(t *testing.T) {
	for name, cfg := range map[string]AuthorizeConfig{
		"no base":                      {},
		"relative base":                {BaseURL: "/fhir"},
		"bad deny status":              {BaseURL: testBase, DenyStatus: 401},
		"shared patient":               {BaseURL: testBase, SharedTypes: []string{"Observation"}},
		"shared unknown":               {BaseURL: testBase, SharedTypes: []string{"Foo"}},
		"nil policy":                   {BaseURL: testBase, Policies: []Policy{nil}},
		"body limit at response limit": {BaseURL: testBase, MaxBodyBytes: 1 << 20, MaxResponseBytes: 1 << 20},
		"body limit over default":      {BaseURL: testBase, MaxBodyBytes: defaultMaxResponseBytes},
	} {
		if _, err := newAuthorizer(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	a, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, MaxResponseBytes: 1 << 20})
	if err != nil || a.maxBody != 1<<19 {
		t.Errorf("default body limit under a 1 MiB response limit = %d, %v; want 512 KiB", a.maxBody, err)
	}
}

// noPatchSent fails when the handler received a PATCH.
func noPatchSent(t *testing.T, h *harness, _ resp) {
	t.Helper()
	for _, c := range h.store.calls() {
		if strings.HasPrefix(c, "PATCH ") {
			t.Fatalf("the handler received %s", c)
		}
	}
}
