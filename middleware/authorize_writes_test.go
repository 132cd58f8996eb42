package middleware

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// lastBody returns the last request body the store received for method.
func lastBody(t *testing.T, h *harness, method string) string {
	t.Helper()
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	for i := len(h.store.requests) - 1; i >= 0; i-- {
		if strings.HasPrefix(h.store.requests[i], method+" ") {
			return h.store.bodies[i]
		}
	}
	t.Fatalf("the store received no %s (calls %v)", method, h.store.requests)
	return ""
}

// wantBody checks that the store received exactly the body that was sent.
func wantBody(method, body string) func(t *testing.T, h *harness, r resp) {
	return func(t *testing.T, h *harness, r resp) {
		t.Helper()
		if got := lastBody(t, h, method); got != body {
			t.Fatalf("the store received %q, want %q", got, body)
		}
	}
}

// noWrite fails when the store received a write.
func noWrite(t *testing.T, h *harness, _ resp) {
	t.Helper()
	for _, c := range h.store.calls() {
		if !strings.HasPrefix(c, "GET ") {
			t.Fatalf("the store received %s (calls %v)", c, h.store.calls())
		}
	}
}

// names checks that the refusal names the offending member.
func names(member string) func(t *testing.T, h *harness, r resp) {
	return func(t *testing.T, h *harness, r resp) {
		t.Helper()
		noWrite(t, h, r)
		if !strings.Contains(r.Body.String(), member) {
			t.Fatalf("the refusal does not name %s: %s", member, r.Body)
		}
	}
}

const (
	ownObs   = `{"resourceType":"Observation","status":"final","subject":{"reference":"Patient/123"}}`
	ownObsID = `{"resourceType":"Observation","id":"lab1","status":"final","subject":{"reference":"Patient/123"}}`
)

// TestAuthorizeStrictBodies: every body the guard judges is read strictly;
// what a case-insensitive server would read differently is refused, and
// the handler receives exactly the bytes that were read.
func TestAuthorizeStrictBodies(t *testing.T) {
	deep := func(n int) string { // a resource nesting n levels
		return `{"resourceType":"Observation","subject":{"reference":"Patient/123"},"extension":` +
			strings.Repeat(`[{"url":"x","extension":`, (n-2)/2) + `[]` + strings.Repeat(`}]`, (n-2)/2) + `}`
	}
	c := "patient/Observation.c"
	runVectors(t, []vector{
		{name: "legitimate create, bytes forwarded", scopes: c, patient: "123", method: "POST", target: "/Observation", body: ownObs, status: 201, check: wantBody("POST", ownObs)},
		{name: "Subject beside subject", scopes: c, patient: "123", method: "POST", target: "/Observation",
			body: `{"resourceType":"Observation","subject":{"reference":"Patient/123"},"Subject":{"reference":"Patient/456"}}`, status: 400, check: names(`Subject`)},
		{name: "lone sUbject", scopes: c, patient: "123", method: "POST", target: "/Observation",
			body: `{"resourceType":"Observation","performer":[{"reference":"Patient/123"}],"sUbject":{"reference":"Patient/456"}}`, status: 400, check: names(`sUbject`)},
		{name: "Reference inside focus", scopes: c, patient: "123", method: "POST", target: "/Observation",
			body: `{"resourceType":"Observation","subject":{"reference":"Patient/123"},"focus":[{"Reference":"Patient/456"}]}`, status: 400, check: names(`Reference`)},
		{name: "escaped case variant", scopes: c, patient: "123", method: "POST", target: "/Observation",
			body: `{"resourceType":"Observation","subject":{"reference":"Patient/123"},"focus":[{"r\u0045ference":"Patient/456"}]}`, status: 400, check: names(`rEference`)},
		{name: "duplicate subject", scopes: c, patient: "123", method: "POST", target: "/Observation",
			body: `{"resourceType":"Observation","subject":{"reference":"Patient/123"},"subject":{"reference":"Patient/456"}}`, status: 400, check: names(`subject`)},
		{name: "duplicate reference", scopes: c, patient: "123", method: "POST", target: "/Observation",
			body: `{"resourceType":"Observation","subject":{"reference":"Patient/123","reference":"Patient/456"}}`, status: 400, check: noWrite},
		{name: "unicode-folded name", scopes: c, patient: "123", method: "POST", target: "/Observation",
			body: `{"resourceType":"Observation","subject":{"reference":"Patient/123"},"focus":[{"\u017feference":"Patient/456"}]}`, status: 400, check: noWrite},
		{name: "byte order mark", scopes: c, patient: "123", method: "POST", target: "/Observation", body: "\xef\xbb\xbf" + ownObs, status: 400, check: noWrite},
		{name: "invalid UTF-8", scopes: c, patient: "123", method: "POST", target: "/Observation",
			body: "{\"resourceType\":\"Observation\",\"subject\":{\"reference\":\"Patient/123\"},\"note\":[{\"text\":\"\xff\"}]}", status: 400, check: noWrite},
		{name: "trailing data", scopes: c, patient: "123", method: "POST", target: "/Observation", body: ownObs + `{}`, status: 400, check: noWrite},
		{name: "depth 100 accepted", scopes: c, patient: "123", method: "POST", target: "/Observation", body: deep(100), status: 201},
		{name: "depth 102 refused", scopes: c, patient: "123", method: "POST", target: "/Observation", body: deep(102), status: 400, check: names("nesting deeper")},
		{name: "open token: depth 102 refused too", scopes: "system/Observation.c", method: "POST", target: "/Observation", body: deep(102), status: 400, check: noWrite},
		{name: "open token: case variant refused", scopes: "system/Observation.c", method: "POST", target: "/Observation",
			body: `{"resourceType":"Observation","Subject":{}}`, status: 400, check: noWrite},
		{name: "open token: XML passes", scopes: "system/Observation.c", method: "POST", target: "/Observation",
			body: `<Observation xmlns="http://hl7.org/fhir"/>`, hdr: []string{"Content-Type", "application/fhir+xml"}, status: 201},
		{name: "patient token: XML refused", scopes: c, patient: "123", method: "POST", target: "/Observation",
			body: `<Observation xmlns="http://hl7.org/fhir"/>`, hdr: []string{"Content-Type", "application/fhir+xml"}, status: 415, check: noWrite},
	}, nil)
}

// TestAuthorizeWrittenState: writes are judged on the state they produce.
func TestAuthorizeWrittenState(t *testing.T) {
	u, c, d := "patient/Observation.u", "patient/*.c", "patient/Observation.d"
	runVectors(t, []vector{
		// The body id of a create decides nothing.
		{name: "create Patient with own id", scopes: c, patient: "123", method: "POST", target: "/Patient",
			body: `{"resourceType":"Patient","id":"123"}`, status: 403, check: noWrite},
		{name: "create Observation with a foreign id", scopes: c, patient: "123", method: "POST", target: "/Observation",
			body: `{"resourceType":"Observation","id":"o456","subject":{"reference":"Patient/123"}}`, status: 201},
		// Conditional update: the body id is what an upsert would write.
		{name: "conditional update onto another patient's id", honest: true, scopes: u, patient: "123", method: "PUT", target: "/Observation?identifier=none",
			body: `{"resourceType":"Observation","id":"o456","subject":{"reference":"Patient/123"}}`, status: 403, check: noWrite},
		{name: "conditional update with own id", honest: true, scopes: u, patient: "123", method: "PUT", target: "/Observation?identifier=none",
			body: ownObsID, status: 201, check: wantBody("PUT", ownObsID)},
		{name: "conditional update with a new id", honest: true, scopes: u, patient: "123", method: "PUT", target: "/Observation?identifier=none",
			body: `{"resourceType":"Observation","id":"new1","subject":{"reference":"Patient/123"}}`, status: 201},
		{name: "conditional update matching another patient's (server ignores narrowing)", scopes: u, patient: "123", method: "PUT", target: "/Observation?identifier=x",
			body: ownObs, status: 403, check: noWrite},
		// The stored version is held to the same rules as the new body.
		{name: "update of a resource linked to this patient only as performer", scopes: u, patient: "123", method: "PUT", target: "/Observation/perf123",
			body: `{"resourceType":"Observation","id":"perf123","subject":{"reference":"Patient/123"}}`, status: 403, check: noWrite},
		{name: "delete of a resource linked only as performer", scopes: d, patient: "123", method: "DELETE", target: "/Observation/perf123", status: 404, check: noWrite},
		{name: "delete of own resource that also names another patient", scopes: d, patient: "123", method: "DELETE", target: "/Observation/mixed123", status: 404, check: noWrite},
		{name: "conditional delete of own match", honest: true, scopes: d, patient: "123", method: "DELETE", target: "/Observation?_id=lab1", status: 204},
		{name: "conditional delete of a match that names another patient", honest: true, scopes: d, patient: "123", method: "DELETE", target: "/Observation?_id=mixed123", status: 403, check: noWrite},
		{name: "delete of own resource", scopes: d, patient: "123", method: "DELETE", target: "/Observation/lab1", status: 204},
		{name: "update of own resource", scopes: u, patient: "123", method: "PUT", target: "/Observation/lab1", body: ownObsID, status: 201, check: wantBody("PUT", ownObsID)},
		// Conditional criteria are narrowed on the primary link.
		{name: "conditional delete bound only by performer", honest: true, scopes: d, patient: "123", method: "DELETE", target: "/Observation?performer=Patient/123", status: 204,
			check: func(t *testing.T, h *harness, r resp) {
				q := r.query(t, h.store)
				if q.Get("patient") != "Patient/123" || q.Get("performer") != "Patient/123" {
					t.Fatalf("criteria %v", q)
				}
			}},
		{name: "conditional delete bound by patient needs no narrowing", honest: true, scopes: d, patient: "123", method: "DELETE", target: "/Observation?patient=Patient/123&code=x", status: 204,
			check: func(t *testing.T, h *harness, r resp) {
				if q := r.query(t, h.store); len(q["patient"]) != 1 {
					t.Fatalf("criteria %v", q)
				}
			}},
		{name: "conditional create bound only by performer", scopes: c, patient: "123", method: "POST", target: "/Observation",
			body: ownObs, hdr: []string{"If-None-Exist", "performer=Patient/123&code=x"}, status: 201,
			check: func(t *testing.T, h *harness, r resp) {
				if got := h.store.lastHeader().Get("If-None-Exist"); !strings.Contains(got, "patient=Patient%2F123") {
					t.Fatalf("If-None-Exist = %q", got)
				}
				wantBody("POST", ownObs)(t, h, r)
			}},
		{name: "conditional delete with an unknown parameter", honest: true, scopes: d, patient: "123", method: "DELETE", target: "/Observation?Identifier=urn:test|x", status: 400, check: noWrite},
		{name: "conditional create with a misspelt parameter", scopes: c, patient: "123", method: "POST", target: "/Observation",
			body: ownObs, hdr: []string{"If-None-Exist", "identifer=x"}, status: 400, check: noWrite},
		{name: "conditional create with a chained criterion", scopes: c, patient: "123", method: "POST", target: "/Observation",
			body: ownObs, hdr: []string{"If-None-Exist", "subject.name=x"}, status: 403, check: noWrite},
		{name: "conditional create with _has", scopes: c, patient: "123", method: "POST", target: "/Observation",
			body: ownObs, hdr: []string{"If-None-Exist", "_has:Observation:subject:code=x"}, status: 403, check: noWrite},
		{name: "conditional update narrowed keeps its body", honest: true, scopes: u, patient: "123", method: "PUT", target: "/Observation?code=x",
			body: ownObs, status: 201, check: wantBody("PUT", ownObs)},
	}, nil)
}

// TestAuthorizeReferenceForms: one normaliser decides which references name
// another patient, in every write check.
func TestAuthorizeReferenceForms(t *testing.T) {
	obs := func(subject, focus string) string {
		return `{"resourceType":"Observation","subject":{"reference":"` + subject + `"},"focus":[{"reference":"` + focus + `"}]}`
	}
	var vs []vector
	for _, ref := range []string{
		"Patient/456", "Patient/456/_history/2", "https://ehr.example.org/fhir/Patient/456",
		"HTTPS://EHR.EXAMPLE.ORG/fhir/Patient/456", "https://ehr.example.org:443/fhir/Patient/456",
		"https://ehr.example.org/fhir/Patient/456/", "https://other.example/fhir/Patient/456",
		"patient/456", "PATIENT/456", "Patient?identifier=x|1", "/Patient/456", "./Patient/456",
		"Patient/456%2F", "Patient//456", "Patient/123/../456",
	} {
		vs = append(vs, vector{name: "refused " + ref, scopes: "patient/Observation.c", patient: "123", method: "POST", target: "/Observation",
			body: obs("Patient/123", ref), status: 403, check: noWrite})
	}
	for _, ref := range []string{
		"Patient/123", "Patient/123/_history/1", "https://ehr.example.org/fhir/Patient/123", "HTTPS://Ehr.Example.Org:443/fhir/Patient/123",
		"Observation/lab1", "#contained", "urn:uuid:8b9f5a40-0000-4000-8000-000000000000", "https://loinc.org/fhir/Observation/1",
	} {
		vs = append(vs, vector{name: "accepted " + ref, scopes: "patient/Observation.c", patient: "123", method: "POST", target: "/Observation",
			body: obs("Patient/123", ref), status: 201})
	}
	// Membership follows the same normaliser.
	vs = append(vs,
		vector{name: "member through an upper-case own base", scopes: "patient/Observation.c", patient: "123", method: "POST", target: "/Observation",
			body: `{"resourceType":"Observation","subject":{"reference":"HTTPS://EHR.example.org:443/fhir/Patient/123"}}`, status: 201},
		vector{name: "not a member through another server", scopes: "patient/Observation.c", patient: "123", method: "POST", target: "/Observation",
			body: `{"resourceType":"Observation","subject":{"reference":"https://evil.example.org/fhir/Patient/123"}}`, status: 403, check: noWrite},
	)
	runVectors(t, vs, nil)
}

// TestAuthorizePatchAppliedThenJudged: a JSON Patch is applied to the
// stored version and the result judged like a PUT body.
func TestAuthorizePatchAppliedThenJudged(t *testing.T) {
	patch := []string{"Content-Type", "application/json-patch+json"}
	u := "patient/Observation.u"
	good := `[{"op":"replace","path":"/status","value":"amended"}]`
	runVectors(t, []vector{
		{name: "legitimate patch, original forwarded", scopes: u, patient: "123", method: "PATCH", target: "/Observation/lab1", body: good, hdr: patch, status: 200, check: wantBody("PATCH", good)},
		{name: "replace the subject", scopes: u, patient: "123", method: "PATCH", target: "/Observation/lab1",
			body: `[{"op":"replace","path":"/subject/reference","value":"Patient/456"}]`, hdr: patch, status: 403, check: noPatchSent},
		{name: "copy a foreign reference in", scopes: u, patient: "123", method: "PATCH", target: "/Observation/lab1",
			body: `[{"op":"add","path":"/focus","value":[{"reference":"Patient/456"}]},{"op":"copy","from":"/focus/0","path":"/hasMember/-"}]`, hdr: patch, status: 422, check: noPatchSent},
		{name: "remove the only link", scopes: u, patient: "123", method: "PATCH", target: "/Observation/lab1",
			body: `[{"op":"remove","path":"/subject"}]`, hdr: patch, status: 403, check: noPatchSent},
		{name: "change the id", scopes: u, patient: "123", method: "PATCH", target: "/Observation/lab1",
			body: `[{"op":"replace","path":"/id","value":"o456"}]`, hdr: patch, status: 403, check: noPatchSent},
		{name: "case-variant member", scopes: u, patient: "123", method: "PATCH", target: "/Observation/lab1",
			body: `[{"op":"replace","path":"/status","PATH":"/subject/reference","value":"Patient/456"}]`, hdr: patch, status: 400, check: noPatchSent},
		{name: "unknown member", scopes: u, patient: "123", method: "PATCH", target: "/Observation/lab1",
			body: `[{"op":"replace","path":"/status","value":"x","where":"/subject"}]`, hdr: patch, status: 400, check: noPatchSent},
		{name: "negative index", scopes: u, patient: "123", method: "PATCH", target: "/Observation/lab1",
			body: `[{"op":"replace","path":"/category/-1","value":{}}]`, hdr: patch, status: 422, check: noPatchSent},
		{name: "FHIRPath Patch refused", scopes: u, patient: "123", method: "PATCH", target: "/Observation/lab1",
			body: `{"resourceType":"Parameters","parameter":[]}`, hdr: []string{"Content-Type", "application/fhir+json"}, status: 415, check: noPatchSent},
		{name: "patch of a resource linked only as performer", scopes: u, patient: "123", method: "PATCH", target: "/Observation/perf123", body: good, hdr: patch, status: 404, check: noPatchSent},
		{name: "conditional patch, one own match", honest: true, scopes: u, patient: "123", method: "PATCH", target: "/Observation?_id=lab1", body: good, hdr: patch, status: 200,
			check: wantBody("PATCH", good)},
		{name: "conditional patch of a foreign match", scopes: u, patient: "123", method: "PATCH", target: "/Observation?_id=o456", body: good, hdr: patch, status: 403, check: noPatchSent},
	}, nil)
}

// TestAuthorizeBundleURNs: references to other entries of a transaction are
// judged as what the server will make of them.
func TestAuthorizeBundleURNs(t *testing.T) {
	tx := func(entries ...string) string { return bundleOf("transaction", entries...) }
	put123 := `{"fullUrl":"urn:uuid:p1","resource":{"resourceType":"Patient","id":"123"},"request":{"method":"PUT","url":"Patient/123"}}`
	postPatient := `{"fullUrl":"urn:uuid:p2","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}}`
	obsFor := func(ref string) string {
		return `{"fullUrl":"urn:uuid:o1","resource":{"resourceType":"Observation","subject":{"reference":"` + ref + `"}},"request":{"method":"POST","url":"Observation"}}`
	}
	runVectors(t, []vector{
		{name: "own patient through its entry", scopes: "patient/*.cru", patient: "123", method: "POST", target: "/", body: tx(put123, obsFor("urn:uuid:p1")), status: 200},
		{name: "a created patient", scopes: "patient/*.cru", patient: "123", method: "POST", target: "/", body: tx(postPatient, obsFor("urn:uuid:p2")), status: 403, check: noWrite},
		{name: "a created patient referenced as focus", scopes: "patient/*.cru", patient: "123", method: "POST", target: "/",
			body: tx(postPatient, `{"resource":{"resourceType":"Observation","subject":{"reference":"Patient/123"},"focus":[{"reference":"urn:uuid:p2"}]},"request":{"method":"POST","url":"Observation"}}`), status: 403, check: noWrite},
		{name: "unresolved urn", scopes: "patient/*.cru", patient: "123", method: "POST", target: "/", body: tx(obsFor("urn:uuid:nowhere")), status: 403, check: noWrite},
	}, nil)
}

// TestAuthorizeWriteAnswers: a resource in the answer to a write must be
// one the token may see, in plain writes and in Bundle entries.
func TestAuthorizeWriteAnswers(t *testing.T) {
	foreign := `{"resourceType":"Observation","id":"o456","subject":{"reference":"Patient/456"}}`
	own := `{"resourceType":"Observation","id":"n1","subject":{"reference":"Patient/123"}}`
	answer := ""
	server := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		switch {
		case r.Method == http.MethodGet:
			w.WriteHeader(http.StatusNotFound)
		case r.URL.Path == "/fhir" || r.URL.Path == "/fhir/":
			_, _ = w.Write([]byte(`{"resourceType":"Bundle","type":"batch-response","entry":[{"resource":` + answer + `,"response":{"status":"200 OK"}}]}`))
		default:
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(answer))
		}
	})
	a, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	tok := token("patient/Observation.c", "123")
	send := func(target, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, testBase+target, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/fhir+json")
		r.Header.Set("If-None-Exist", "identifier=x")
		r.Header.Set("Prefer", "return=representation")
		rec := httptest.NewRecorder()
		withToken(tok, a.Handler(server)).ServeHTTP(rec, r)
		return rec
	}
	for _, c := range []struct {
		name, answer string
		status       int
		leak         bool
	}{
		{"own resource", own, 200, false},
		{"outcome", `{"resourceType":"OperationOutcome","issue":[]}`, 200, false},
		{"another patient's match", foreign, 403, true},
		{"another type", `{"resourceType":"Patient","id":"456"}`, 403, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			answer = c.answer
			rec := send("/Observation", ownObs)
			if rec.Code != c.status {
				t.Fatalf("status %d body %s", rec.Code, rec.Body)
			}
			if c.leak && strings.Contains(rec.Body.String(), "456") {
				t.Fatalf("leaked: %s", rec.Body)
			}
			batch := bundleOf("batch", `{"resource":`+ownObs+`,"request":{"method":"POST","url":"Observation","ifNoneExist":"identifier=x"}}`)
			rec = send("/", batch)
			if rec.Code != 200 || strings.Contains(rec.Body.String(), "456") {
				t.Fatalf("batch: status %d body %s", rec.Code, rec.Body)
			}
			if c.leak != strings.Contains(rec.Body.String(), "403 Forbidden") {
				t.Fatalf("batch: entry refused = %v, want %v: %s", !c.leak, c.leak, rec.Body)
			}
		})
	}
}

// TestAuthorizeMultiPatient: a resource that names another patient is
// withheld from a patient-held token like one outside its compartment,
// unless LiteralCompartments is set.
func TestAuthorizeMultiPatient(t *testing.T) {
	rs := "patient/Observation.rs"
	runVectors(t, []vector{
		{name: "read, performer only", scopes: rs, patient: "123", target: "/Observation/perf123", status: 404},
		{name: "read, own subject and a foreign focus", scopes: rs, patient: "123", target: "/Observation/mixed123", status: 404},
		{name: "read, own", scopes: rs, patient: "123", target: "/Observation/lab1", status: 200},
		{name: "search", scopes: rs, patient: "123", target: "/Observation", status: 200, ids: []string{"Observation/abs123", "Observation/lab1", "Observation/vs1"}},
		{name: "system token sees everything", scopes: "system/Observation.rs", target: "/Observation/mixed123", status: 200},
	}, nil)
	runVectors(t, []vector{
		{name: "literal: read, performer only", scopes: rs, patient: "123", target: "/Observation/perf123", status: 200},
		{name: "literal: read, foreign focus", scopes: rs, patient: "123", target: "/Observation/mixed123", status: 200},
		{name: "literal: update of a stored version naming another patient", scopes: "patient/Observation.u", patient: "123", method: "PUT", target: "/Observation/perf123",
			body: `{"resourceType":"Observation","id":"perf123","subject":{"reference":"Patient/123"}}`, status: 403, check: noWrite},
		{name: "literal: delete of a stored version naming another patient", scopes: "patient/Observation.d", patient: "123", method: "DELETE", target: "/Observation/mixed123", status: 404, check: noWrite},
		{name: "literal: delete of own", scopes: "patient/Observation.d", patient: "123", method: "DELETE", target: "/Observation/lab1", status: 204},
		{name: "literal: writes still refused", scopes: "patient/Observation.c", patient: "123", method: "POST", target: "/Observation",
			body: `{"resourceType":"Observation","subject":{"reference":"Patient/123"},"focus":[{"reference":"Patient/456"}]}`, status: 403, check: noWrite},
	}, func(c *AuthorizeConfig) { c.LiteralCompartments = true })
}

// TestDecisionWithheld: the decision says which resource was withheld and
// which rule withheld it, while the client sees a plain 404.
func TestDecisionWithheld(t *testing.T) {
	var got *Decision
	h := newHarness(t, func(c *AuthorizeConfig) {
		c.OnDecision = func(_ *http.Request, d *Decision, _ error) { got = d }
	})
	r := h.do(token("patient/Observation.rs", "123"), "GET", "/Observation/mixed123", "")
	if r.Code != 404 || strings.Contains(r.Body.String(), "456") {
		t.Fatalf("status %d body %s", r.Code, r.Body)
	}
	if got == nil || len(got.Withheld) != 1 || got.Withheld[0] != "Observation/mixed123: references Patient/456" {
		t.Fatalf("decision %+v", got)
	}
	got = nil
	r = h.do(token("patient/Observation.rs", "123"), "GET", "/Observation?code=x", "")
	if r.Code != 200 || got == nil || !slices.Contains(got.Withheld, "Observation/o456: outside the compartment of Patient/123") ||
		!slices.Contains(got.Withheld, "Observation/perf123: references Patient/456") {
		t.Fatalf("status %d decision %+v", r.Code, got)
	}
}

// TestAuthorizeHistoryOracle: the instance history of a resource the token
// may not see answers like an absent id, whatever the page asks for.
func TestAuthorizeHistoryOracle(t *testing.T) {
	rs := "patient/Observation.rs"
	absent := newHarness(t, nil).do(token(rs, "123"), "GET", "/Observation/nope/_history", "")
	runVectors(t, []vector{
		{name: "own history", scopes: rs, patient: "123", target: "/Observation/lab1/_history", status: 200, ids: []string{"Observation/lab1"}},
		{name: "another patient's history", scopes: rs, patient: "123", target: "/Observation/o456/_history", status: absent.Code,
			check: func(t *testing.T, _ *harness, r resp) {
				if r.Body.String() != absent.Body.String() {
					t.Fatalf("hidden %s, absent %s", r.Body, absent.Body)
				}
			}},
		{name: "history naming another patient", scopes: rs, patient: "123", target: "/Observation/mixed123/_history", status: 404},
		{name: "_count=0 on a history", scopes: rs, patient: "123", target: "/Observation/lab1/_history?_count=0", status: 200,
			check: func(t *testing.T, _ *harness, r resp) {
				if r.total() != 1 || r.doc["entry"] != nil {
					t.Fatalf("count of the own history: %s", r.Body)
				}
			}},
		{name: "_count=x on a history", scopes: rs, patient: "123", target: "/Observation/o456/_history?_count=x", status: 404},
		{name: "_summary=count on a history", scopes: rs, patient: "123", target: "/Observation/o456/_history?_summary=count", status: 404},
		{name: "_count=1 on own history", scopes: rs, patient: "123", target: "/Observation/lab1/_history?_count=1", status: 200},
		{name: "system token unaffected", scopes: "system/Observation.rs", target: "/Observation/o456/_history?_count=0", status: 200},
	}, nil)
	if absent.Code != 404 {
		t.Fatalf("absent history: %d", absent.Code)
	}
}

// TestAuthorizeResultParamModifiers: a result parameter with a modifier is
// refused before the server can read it as the plain parameter.
func TestAuthorizeResultParamModifiers(t *testing.T) {
	rs := "patient/Observation.rs"
	var vs []vector
	for _, q := range []string{"_summary:x=count", "_count:x=0", "_summary:exact=count", "_elements:x=id", "_format:x=xml", "_total:x=accurate", "_include:x=Observation:subject", "_revinclude:foo=*"} {
		vs = append(vs, vector{name: q, scopes: rs, patient: "123", target: "/Observation?" + q, status: 400, handler: no})
	}
	vs = append(vs,
		vector{name: "_include:iterate", scopes: rs, patient: "123", target: "/Observation?_include:iterate=Observation:subject", status: 200},
		vector{name: "_summary=count on a narrowed search", scopes: rs, patient: "123", target: "/Observation?_summary=count", status: 200},
		vector{name: "read with a modified _format", scopes: rs, patient: "123", target: "/Observation/lab1?_format:x=xml", status: 400, handler: no},
	)
	runVectors(t, vs, nil)
}

// TestInternalReadsCarryTheirDecision: the guard's own read of the stored
// version and search of conditional matches reach the handler as a read
// and a search, with the decision saying so.
func TestInternalReadsCarryTheirDecision(t *testing.T) {
	var seen []string
	stored := `{"resourceType":"Observation","id":"o1","subject":{"reference":"Patient/123"}}`
	server := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d, ok := DecisionFromContext(r.Context()); ok && r.Method == http.MethodGet {
			seen = append(seen, d.Interaction.Kind.String()+" "+d.Interaction.ID+" "+d.Interaction.Query.Encode()+" "+d.CompartmentID)
		}
		w.Header().Set("Content-Type", "application/fhir+json")
		switch {
		case r.Method == http.MethodGet && r.URL.RawQuery != "":
			_, _ = w.Write([]byte(`{"resourceType":"Bundle","type":"searchset","entry":[{"resource":` + stored + `}]}`))
		case r.Method == http.MethodGet:
			_, _ = w.Write([]byte(stored))
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	a, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	tok := token("patient/Observation.d", "123")
	for _, target := range []string{"/Observation/o1", "/Observation?code=x"} {
		rec := httptest.NewRecorder()
		withToken(tok, a.Handler(server)).ServeHTTP(rec, httptest.NewRequest(http.MethodDelete, testBase+target, nil))
		if rec.Code != http.StatusNoContent {
			t.Fatalf("DELETE %s: %d %s", target, rec.Code, rec.Body)
		}
	}
	want := []string{"read o1  123", "search-type  code=x&patient=Patient%2F123 123"}
	if !slices.Equal(seen, want) {
		t.Fatalf("internal reads %q, want %q", seen, want)
	}
}
