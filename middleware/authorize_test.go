package middleware

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

const (
	lab = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
)

// vector is one authorisation decision of the SMART notes (§9.2) or the
// threat model (§5), run against the leaky server.
type vector struct {
	name    string
	scopes  string
	patient string
	method  string
	target  string
	body    string
	hdr     []string
	status  int      // expected status
	ids     []string // expected resources in the response, when not nil
	handler *bool    // whether the handler must (true) or must not (false) see the request
	check   func(t *testing.T, h *harness, r resp)
	honest  bool // the server applies patient, subject and _id search parameters
}

var (
	yes = func() *bool { b := true; return &b }()
	no  = func() *bool { b := false; return &b }()
)

func runVectors(t *testing.T, vs []vector, mod func(*AuthorizeConfig)) {
	t.Helper()
	for _, v := range vs {
		t.Run(v.name, func(t *testing.T) {
			h := newHarness(t, mod)
			h.store.honest = v.honest
			method := v.method
			if method == "" {
				method = http.MethodGet
			}
			tok := token(v.scopes, v.patient)
			r := h.do(tok, method, v.target, v.body, v.hdr...)
			if r.Code != v.status {
				t.Fatalf("%s %s with %q: status %d, want %d; body %s", method, v.target, v.scopes, r.Code, v.status, r.Body)
			}
			if v.ids != nil {
				if got := r.ids(); !slices.Equal(got, v.ids) {
					t.Fatalf("resources %v, want %v", got, v.ids)
				}
			}
			if v.handler != nil {
				if called := len(h.store.calls()) > 0; called != *v.handler {
					t.Fatalf("handler called = %v, want %v (calls %v)", called, *v.handler, h.store.calls())
				}
			}
			if r.Code == http.StatusForbidden {
				if !strings.Contains(r.Header().Get("WWW-Authenticate"), `error="insufficient_scope"`) {
					t.Errorf("403 without insufficient_scope challenge: %q", r.Header().Get("WWW-Authenticate"))
				}
				if r.doc["resourceType"] != "OperationOutcome" {
					t.Errorf("403 body is not an OperationOutcome: %s", r.Body)
				}
			}
			if v.check != nil {
				v.check(t, h, r)
			}
		})
	}
}

func wantQuery(param, value string) func(t *testing.T, h *harness, r resp) {
	return func(t *testing.T, h *harness, r resp) {
		t.Helper()
		q := r.query(t, h.store)
		if !slices.Contains(q[param], value) {
			t.Fatalf("handler query %v lacks %s=%s", q, param, value)
		}
	}
}

// TestAuthorizeSpecVectors runs vectors A1–A21, A23–A28, A36–A44, A49,
// A58–A62 and A74 of the SMART notes §9.2 (token: patient 123).
func TestAuthorizeSpecVectors(t *testing.T) {
	obs123 := `{"resourceType":"Observation","subject":{"reference":"Patient/123"},"status":"final"}`
	obs456 := `{"resourceType":"Observation","subject":{"reference":"Patient/456"},"status":"final"}`
	runVectors(t, []vector{
		{name: "A1 read own", scopes: "patient/Observation.rs", patient: "123", target: "/Observation/lab1", status: 200, ids: []string{"Observation/lab1"}},
		{name: "A2 read other patient's", scopes: "patient/Observation.rs", patient: "123", target: "/Observation/o456", status: 404},
		{name: "A3 spec example search", scopes: "patient/Observation.rs", patient: "123", target: "/Observation?code=4548-4&_sort:desc=date&_count=10&patient=123", status: 200,
			ids: []string{"Observation/abs123", "Observation/lab1", "Observation/vs1"}},
		{name: "A4 search other patient", scopes: "patient/Observation.rs", patient: "123", target: "/Observation?patient=456", status: 200,
			ids: []string{"Observation/abs123", "Observation/lab1", "Observation/vs1"}, check: wantQuery("patient", "Patient/123")},
		{name: "A5 search without patient is narrowed", scopes: "patient/Observation.rs", patient: "123", target: "/Observation", status: 200,
			ids: []string{"Observation/abs123", "Observation/lab1", "Observation/vs1"}, check: wantQuery("patient", "Patient/123")},
		{name: "A6 r without s", scopes: "patient/Observation.r", patient: "123", target: "/Observation?patient=123", status: 403, handler: no},
		{name: "A7 s without r", scopes: "patient/Observation.s", patient: "123", target: "/Observation/lab1", status: 403, handler: no},
		{name: "A8 vread", scopes: "patient/Observation.r", patient: "123", target: "/Observation/lab1/_history/2", status: 200, ids: []string{"Observation/lab1"}},
		{name: "A9 instance history", scopes: "patient/Observation.r", patient: "123", target: "/Observation/lab1/_history", status: 200, ids: []string{"Observation/lab1"}},
		{name: "A9 instance history of another patient's", scopes: "patient/Observation.r", patient: "123", target: "/Observation/o456/_history", status: 404},
		{name: "A10 type history needs s", scopes: "patient/Observation.r", patient: "123", target: "/Observation/_history", status: 403, handler: no},
		{name: "A11 type history under patient grant", scopes: "patient/Observation.s", patient: "123", target: "/Observation/_history", status: 403, handler: no},
		{name: "A12 system history under patient grant", scopes: "patient/*.rs", patient: "123", target: "/_history", status: 403, handler: no},
		{name: "A13 system history with type scope", scopes: "patient/Observation.rs", patient: "123", target: "/_history", status: 403, handler: no},
		{name: "A14 create own", scopes: "patient/Observation.c", patient: "123", method: "POST", target: "/Observation", body: obs123, status: 201, handler: yes},
		{name: "A15 create for other patient", scopes: "patient/Observation.c", patient: "123", method: "POST", target: "/Observation", body: obs456, status: 403, handler: no},
		{name: "A16 c is not r", scopes: "patient/Observation.c", patient: "123", target: "/Observation/lab1", status: 403, handler: no},
		{name: "A17 update-as-create", scopes: "patient/Observation.u", patient: "123", method: "PUT", target: "/Observation/new1",
			body: `{"resourceType":"Observation","id":"new1","subject":{"reference":"Patient/123"}}`, status: 201},
		{name: "A18 patch own", scopes: "patient/Observation.u", patient: "123", method: "PATCH", target: "/Observation/lab1",
			body: `[{"op":"replace","path":"/status","value":"amended"}]`, hdr: []string{"Content-Type", "application/json-patch+json"}, status: 200},
		{name: "A19 update moving to other patient", scopes: "patient/Observation.u", patient: "123", method: "PUT", target: "/Observation/lab1",
			body: `{"resourceType":"Observation","id":"lab1","subject":{"reference":"Patient/456"}}`, status: 403},
		{name: "A20 cu is not d", scopes: "patient/Observation.cu", patient: "123", method: "DELETE", target: "/Observation/lab1", status: 403, handler: no},
		{name: "A21 delete own", scopes: "patient/Observation.d", patient: "123", method: "DELETE", target: "/Observation/lab1", status: 204},
		{name: "A23 wildcard read", scopes: "patient/*.rs", patient: "123", target: "/Condition/c1", status: 200, ids: []string{"Condition/c1"}},
		{name: "A24 wildcard rs is not u", scopes: "patient/*.rs", patient: "123", method: "PUT", target: "/Condition/c1",
			body: `{"resourceType":"Condition","id":"c1","subject":{"reference":"Patient/123"}}`, status: 403, handler: no},
		{name: "A25 v1 read searches", scopes: "patient/Observation.read", patient: "123", target: "/Observation?patient=123", status: 200,
			ids: []string{"Observation/abs123", "Observation/lab1", "Observation/vs1"}},
		{name: "A26 v1 write is not read", scopes: "patient/Observation.write", patient: "123", target: "/Observation/lab1", status: 403, handler: no},
		{name: "A27 v1 write creates", scopes: "patient/Observation.write", patient: "123", method: "POST", target: "/Observation", body: obs123, status: 201},
		{name: "A28 invalid dus grants nothing", scopes: "patient/Observation.dus", patient: "123", method: "DELETE", target: "/Observation/lab1", status: 403, handler: no},
		{name: "A36 launch/patient alone", scopes: "launch/patient", patient: "123", target: "/Patient/123", status: 403, handler: no},
		{name: "A37 own Patient", scopes: "patient/Patient.r", patient: "123", target: "/Patient/123", status: 200, ids: []string{"Patient/123"}},
		{name: "A38 other Patient", scopes: "patient/Patient.r", patient: "123", target: "/Patient/456", status: 404},
		{name: "A39 Patient search narrowed by _id", scopes: "patient/Patient.rs", patient: "123", target: "/Patient?name=smith", status: 200,
			ids: []string{"Patient/123"}, check: wantQuery("_id", "123")},
		{name: "A40 compartment search", scopes: "patient/Observation.rs", patient: "123", target: "/Patient/123/Observation", status: 200,
			ids: []string{"Observation/abs123", "Observation/lab1", "Observation/vs1"}},
		{name: "A41 other patient's compartment", scopes: "patient/Observation.rs", patient: "123", target: "/Patient/456/Observation", status: 403, handler: no},
		{name: "A42 compartment search of an ungranted type", scopes: "patient/Observation.rs", patient: "123", target: "/Patient/123/Condition", status: 403, handler: no},
		{name: "A43 compartment search of every type", scopes: "patient/Observation.rs", patient: "123", target: "/Patient/123/*", status: 200,
			ids: []string{"Observation/abs123", "Observation/lab1", "Observation/vs1"}},
		{name: "A44 Patient scope is not Observation", scopes: "patient/Patient.r", patient: "123", target: "/Patient/123/Observation", status: 403, handler: no},
		{name: "A49 ungranted type", scopes: "patient/Condition.rs", patient: "123", target: "/Observation/lab1", status: 403, handler: no,
			check: func(t *testing.T, h *harness, r resp) {
				if !strings.Contains(r.Header().Get("WWW-Authenticate"), `scope="patient/Observation.r"`) {
					t.Errorf("challenge %q does not name the needed scope", r.Header().Get("WWW-Authenticate"))
				}
			}},
		{name: "A58 patient scopes without patient", scopes: "patient/Observation.rs", target: "/Observation?patient=123", status: 403, handler: no},
		{name: "A58 patient claim not a FHIR id", scopes: "patient/Observation.rs", patient: "123&_id=456", target: "/Observation", status: 403, handler: no},
		{name: "A58 patient claim is a list", scopes: "patient/Observation.rs", patient: "123,456", target: "/Observation", status: 403, handler: no},
		{name: "A59 system search not narrowed", scopes: "system/Observation.rs", target: "/Observation?code=4548-4&_sort:desc=date&_count=10", status: 200,
			check: func(t *testing.T, h *harness, r resp) {
				if len(r.ids()) != 8 {
					t.Fatalf("system search returned %v", r.ids())
				}
				if q := r.query(t, h.store); q.Has("patient") {
					t.Fatalf("system search was narrowed: %v", q)
				}
			}},
		{name: "A60 system rs is not c", scopes: "system/Observation.rs", method: "POST", target: "/Observation", body: obs456, status: 403, handler: no},
		{name: "A61 user grant reads by scope", scopes: "user/Observation.rs", target: "/Observation/o456", status: 200, ids: []string{"Observation/o456"}},
		{name: "A74 read below a compartment path", scopes: "patient/Observation.rs", patient: "123", target: "/Patient/123/Observation/lab1", status: 400, handler: no},
	}, nil)
}
