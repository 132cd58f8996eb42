package middleware

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/fhirguard/fhirguard/fhirrest"
	"github.com/fhirguard/fhirguard/scope"
)

// Issue "Enforcement hardening II" §6: security rules that no test
// defended. Each test here was seen to fail with the rule it defends
// mutated away (see the mutation report).

// rulesPolicy is a ResourcePolicy that denies the resources it lists by
// "Type/id" and every resource tagged "secret", and records what it saw.
type rulesPolicy struct {
	deny map[string]bool

	mu   sync.Mutex
	seen []string // "read Type/id" or "written Type/id"
}

const secretTag = `"meta":{"tag":[{"system":"urn:test","code":"secret"}]}`

func newRulesPolicy(deny ...string) *rulesPolicy {
	p := &rulesPolicy{deny: map[string]bool{}}
	for _, d := range deny {
		p.deny[d] = true
	}
	return p
}

func (p *rulesPolicy) AuthorizeRequest(*http.Request, *Token, *Decision) error { return nil }

func (p *rulesPolicy) AuthorizeResource(_ *http.Request, _ *Token, _ *Decision, phase ResourcePhase, res map[string]any) error {
	rt, _ := res["resourceType"].(string)
	id, _ := res["id"].(string)
	p.mu.Lock()
	p.seen = append(p.seen, map[ResourcePhase]string{ResourceRead: "read", ResourceWritten: "written"}[phase]+" "+rt+"/"+id)
	p.mu.Unlock()
	if p.deny[rt+"/"+id] {
		return &PolicyDenial{Rule: "deny-listed", Message: "denied"}
	}
	meta, _ := res["meta"].(map[string]any)
	tags, _ := meta["tag"].([]any)
	for _, tg := range tags {
		if m, _ := tg.(map[string]any); m["code"] == "secret" {
			return &PolicyDenial{Rule: "secret-tag", Message: "denied"}
		}
	}
	return nil
}

func (p *rulesPolicy) saw(s string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Contains(p.seen, s)
}

// rulesDo is harness.do against any handler.
func rulesDo(t *testing.T, a *authorizer, next http.Handler, tok *Token, method, target, body string, hdr ...string) resp {
	t.Helper()
	var rb io.Reader
	if body != "" {
		rb = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, testBase+target, rb)
	if body != "" {
		r.Header.Set("Content-Type", "application/fhir+json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	withToken(tok, a.Handler(next)).ServeHTTP(rec, r)
	out := resp{ResponseRecorder: rec}
	if strings.Contains(rec.Header().Get("Content-Type"), "json") && rec.Body.Len() > 0 {
		_ = json.Unmarshal(rec.Body.Bytes(), &out.doc)
	}
	return out
}

// handlerSaw reports whether the store received a request starting with prefix.
func handlerSaw(h *harness, prefix string) bool {
	for _, c := range h.store.calls() {
		if strings.HasPrefix(c, prefix) {
			return true
		}
	}
	return false
}

// allIDs lists "Type/id" of every entry of a Bundle response, outcome and
// include entries too, in order.
func allIDs(r resp) []string {
	var out []string
	entries, _ := r.doc["entry"].([]any)
	for _, e := range entries {
		res, _ := e.(map[string]any)["resource"].(map[string]any)
		rt, _ := res["resourceType"].(string)
		id, _ := res["id"].(string)
		out = append(out, rt+"/"+id)
	}
	return out
}

// TestRulesResourcePolicyEveryPath: a ResourcePolicy judges every resource
// the guard lets through, whatever the path: reads (also under open grants,
// which otherwise skip verification), searches, includes, _type and
// whole-system searches, compartment searches, counts, Bundles,
// operations and writes (body and stored version).
func TestRulesResourcePolicyEveryPath(t *testing.T) {
	type tc struct {
		name, scopes, patient, method, target, body string
		hdr                                         []string
		status                                      int
		has, hasNot                                 []string // resources that must (not) be in the answer
		total                                       int      // Bundle.total wanted, when > 0
		handler                                     string   // a request the handler must not have received
	}
	patch := []string{"Content-Type", "application/json-patch+json"}
	lab1, vs1 := "Observation/lab1", "Observation/vs1"
	cases := []tc{
		{name: "read, patient grant", scopes: "patient/Observation.rs", patient: "123", target: "/Observation/lab1", status: 404},
		{name: "read, patient grant, allowed", scopes: "patient/Observation.rs", patient: "123", target: "/Observation/vs1", status: 200, has: []string{vs1}},
		{name: "read, open grant", scopes: "system/Observation.rs", target: "/Observation/lab1", status: 404},
		{name: "read, open grant, allowed", scopes: "system/Observation.rs", target: "/Observation/o456", status: 200, has: []string{"Observation/o456"}},
		{name: "vread, open grant", scopes: "system/Observation.r", target: "/Observation/lab1/_history/1", status: 404},
		{name: "instance history, open grant", scopes: "system/Observation.r", target: "/Observation/lab1/_history", status: 404},
		{name: "instance history, open grant, allowed", scopes: "system/Observation.r", target: "/Observation/vs1/_history", status: 200, has: []string{vs1}},
		{name: "read of a Patient, user grant", scopes: "user/Patient.rs", target: "/Patient/456", status: 404},
		// The server's total (8 Observations) counts lab1: it is recomputed.
		{name: "search, patient grant", scopes: "patient/Observation.rs", patient: "123", target: "/Observation", status: 200, has: []string{vs1}, hasNot: []string{lab1}, total: 2},
		{name: "search, open grant", scopes: "system/Observation.rs", target: "/Observation", status: 200, has: []string{vs1, "Observation/o456"}, hasNot: []string{lab1}, total: 7},
		{name: "type history, open grant", scopes: "system/Observation.rs", target: "/Observation/_history", status: 200, has: []string{vs1}, hasNot: []string{lab1}},
		{name: "includes, open grant", scopes: "system/*.rs", target: "/Observation?_include=Observation:subject", status: 200,
			has: []string{vs1, "Patient/123"}, hasNot: []string{lab1, "Patient/456"}},
		{name: "_type search, open wildcard", scopes: "system/*.rs", target: "/?_type=Observation", status: 200, has: []string{vs1}, hasNot: []string{lab1}},
		{name: "_type search, open type grant", scopes: "system/Observation.rs", target: "/?_type=Observation", status: 200, has: []string{vs1}, hasNot: []string{lab1}},
		{name: "whole-system search, open wildcard", scopes: "system/*.rs", target: "/", status: 200, has: []string{vs1, "Patient/123"}, hasNot: []string{lab1, "Patient/456"}},
		{name: "system history, open wildcard", scopes: "system/*.rs", target: "/_history", status: 200, has: []string{vs1}, hasNot: []string{lab1, "Patient/456"}},
		{name: "whole-system search, user wildcard", scopes: "user/*.rs", target: "/", status: 200, has: []string{vs1}, hasNot: []string{lab1, "Patient/456"}},
		{name: "compartment of every type, open wildcard", scopes: "system/*.rs", target: "/Patient/123/*", status: 200, has: []string{vs1}, hasNot: []string{lab1, "Patient/456"}},
		{name: "compartment of every type, patient grant", scopes: "patient/*.rs", patient: "123", target: "/Patient/123/*", status: 200, has: []string{vs1}, hasNot: []string{lab1}},
		{name: "compartment search, patient grant", scopes: "patient/Observation.rs", patient: "123", target: "/Patient/123/Observation", status: 200, has: []string{vs1}, hasNot: []string{lab1}},
		{name: "compartment search, open grant", scopes: "system/Observation.rs", target: "/Patient/123/Observation", status: 200, has: []string{vs1}, hasNot: []string{lab1}, total: 7},
		// 8 Observations, lab1 denied; for Patient/123: lab1, vs1, abs123.
		{name: "count, open grant", scopes: "system/Observation.rs", target: "/Observation?_summary=count", status: 200, total: 7},
		{name: "count (_count=0), open grant", scopes: "system/Observation.rs", target: "/Observation?_count=0", status: 200, total: 7},
		{name: "count, patient grant", scopes: "patient/Observation.rs", patient: "123", target: "/Observation?_summary=count", status: 200, total: 2},
		{name: "$everything", scopes: "patient/*.rs", patient: "123", target: "/Patient/123/$everything", status: 200, has: []string{vs1}, hasNot: []string{lab1}},
		{name: "$lastn, open grant", scopes: "system/Observation.rs", target: "/Observation/$lastn", status: 200, has: []string{vs1}, hasNot: []string{lab1}},
		{name: "batch read, open grant", scopes: "system/Observation.rs", method: "POST", target: "",
			body: bundleOf("batch", getEntry("Observation/lab1"), getEntry("Observation/vs1")), status: 200, has: []string{vs1}, hasNot: []string{lab1}},
		{name: "batch search, open grant", scopes: "system/Observation.rs", method: "POST", target: "",
			body: bundleOf("batch", getEntry("Observation?code=x")), status: 200, has: []string{vs1}, hasNot: []string{lab1}},
		{name: "create, open grant", scopes: "system/Observation.c", method: "POST", target: "/Observation",
			body: `{"resourceType":"Observation","status":"final",` + secretTag + `}`, status: 403, handler: "POST"},
		{name: "create, open grant, allowed", scopes: "system/Observation.c", method: "POST", target: "/Observation",
			body: `{"resourceType":"Observation","status":"final"}`, status: 201},
		{name: "create, patient grant", scopes: "patient/Observation.c", patient: "123", method: "POST", target: "/Observation",
			body: `{"resourceType":"Observation","status":"final","subject":{"reference":"Patient/123"},` + secretTag + `}`, status: 403, handler: "POST"},
		{name: "update body, open grant", scopes: "system/Observation.u", method: "PUT", target: "/Observation/vs1",
			body: `{"resourceType":"Observation","id":"vs1","status":"final",` + secretTag + `}`, status: 403, handler: "PUT"},
		{name: "update of a denied stored version, open grant", scopes: "system/Observation.u", method: "PUT", target: "/Observation/lab1",
			body: `{"resourceType":"Observation","id":"lab1","status":"final"}`, status: 403, handler: "PUT"},
		{name: "update, open grant, allowed", scopes: "system/Observation.u", method: "PUT", target: "/Observation/vs1",
			body: `{"resourceType":"Observation","id":"vs1","status":"final"}`, status: 201},
		{name: "delete of a denied stored version, open grant", scopes: "system/Observation.d", method: "DELETE", target: "/Observation/lab1", status: 404, handler: "DELETE"},
		{name: "delete, open grant, allowed", scopes: "system/Observation.d", method: "DELETE", target: "/Observation/vs1", status: 204},
		{name: "patch adding the tag, open grant", scopes: "system/Observation.u", method: "PATCH", target: "/Observation/vs1",
			body: `[{"op":"add","path":"/meta","value":{"tag":[{"code":"secret"}]}}]`, hdr: patch, status: 403, handler: "PATCH"},
		{name: "patch of a denied stored version, open grant", scopes: "system/Observation.u", method: "PATCH", target: "/Observation/lab1",
			body: `[{"op":"replace","path":"/status","value":"amended"}]`, hdr: patch, status: 404, handler: "PATCH"},
		{name: "patch, open grant, allowed", scopes: "system/Observation.u", method: "PATCH", target: "/Observation/vs1",
			body: `[{"op":"replace","path":"/status","value":"amended"}]`, hdr: patch, status: 200},
		{name: "batch create, open grant", scopes: "system/Observation.c", method: "POST", target: "",
			body: bundleOf("batch", writeEntry("POST", "Observation", `{"resourceType":"Observation","status":"final",`+secretTag+`}`)), status: 403, handler: "POST /fhir "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pol := newRulesPolicy(lab1, "Patient/456")
			h := newHarness(t, func(cfg *AuthorizeConfig) { cfg.Policies = []Policy{pol} })
			method := c.method
			if method == "" {
				method = "GET"
			}
			r := h.do(token(c.scopes, c.patient), method, c.target, c.body, c.hdr...)
			if r.Code != c.status {
				t.Fatalf("status %d, want %d: %s", r.Code, c.status, r.Body)
			}
			got := allIDs(r)
			if r.doc["resourceType"] == "Bundle" && (r.doc["type"] == "batch-response" || r.doc["type"] == "transaction-response") {
				got = nil
				for _, e := range r.doc["entry"].([]any) {
					res, _ := e.(map[string]any)["resource"].(map[string]any)
					if res["resourceType"] == "Bundle" {
						got = append(got, allIDs(resp{doc: res})...)
					} else if res != nil {
						got = append(got, res["resourceType"].(string)+"/"+res["id"].(string))
					}
				}
			} else if r.doc["resourceType"] != "Bundle" && r.doc["id"] != nil {
				got = r.ids()
			}
			for _, id := range c.has {
				if !slices.Contains(got, id) {
					t.Errorf("%s missing from %v", id, got)
				}
			}
			for _, id := range c.hasNot {
				if slices.Contains(got, id) {
					t.Errorf("%s, denied by the policy, is in %v", id, got)
				}
			}
			if c.total > 0 && r.total() != c.total {
				t.Errorf("total %d, want %d: %s", r.total(), c.total, r.Body)
			}
			if c.handler != "" && handlerSaw(h, c.handler) {
				t.Errorf("the handler received %q (calls %v)", c.handler, h.store.calls())
			}
		})
	}

	t.Run("phases", func(t *testing.T) {
		pol := newRulesPolicy()
		h := newHarness(t, func(cfg *AuthorizeConfig) { cfg.Policies = []Policy{pol} })
		if r := h.do(token("system/Observation.rs", ""), "GET", "/Observation/vs1", ""); r.Code != 200 {
			t.Fatalf("read: %d %s", r.Code, r.Body)
		}
		if r := h.do(token("system/Observation.c", ""), "POST", "/Observation", `{"resourceType":"Observation","status":"final"}`); r.Code != 201 {
			t.Fatalf("create: %d %s", r.Code, r.Body)
		}
		// The body is written; the server's answer to the write is read.
		if !pol.saw("read Observation/vs1") || !pol.saw("written Observation/") || pol.saw("written Observation/vs1") || !pol.saw("read Observation/") {
			t.Fatalf("phases seen: %v", pol.seen)
		}
	})

	t.Run("the denying rule is recorded", func(t *testing.T) {
		pol := newRulesPolicy(lab1)
		var rule string
		h := newHarness(t, func(cfg *AuthorizeConfig) {
			cfg.Policies = []Policy{pol}
			cfg.OnDecision = func(_ *http.Request, d *Decision, _ error) {
				if d != nil {
					rule = d.Rule
				}
			}
		})
		if r := h.do(token("system/Observation.rs", ""), "GET", "/Observation/lab1", ""); r.Code != 404 || rule != "deny-listed" {
			t.Fatalf("status %d, rule %q", r.Code, rule)
		}
	})
}

// TestRulesFHIRUserPatientOnOpenPaths: a user/ wildcard grant of a user
// whose fhirUser is a Patient is held to that patient on the paths that
// an open wildcard would otherwise serve unverified: _type and
// whole-system searches, system history, and compartment searches of
// every type (only its own compartment, verified).
func TestRulesFHIRUserPatientOnOpenPaths(t *testing.T) {
	for _, fhirUser := range []string{"Patient/123", "https://other.example.org/fhir/Patient/123", "https://ehr.example.org/fhir/Patient/123"} {
		t.Run(fhirUser, func(t *testing.T) {
			tok := token("user/*.rs", "")
			tok.FHIRUser = fhirUser
			for _, target := range []string{"/?_type=Observation", "/?_type=Observation,Condition", "/", "/_history", "/Patient/456/*", "/Patient/456/Observation"} {
				h := newHarness(t, nil)
				if r := h.do(tok, "GET", target, ""); r.Code != http.StatusForbidden {
					t.Errorf("%s: status %d, want 403: %s", target, r.Code, r.Body)
				}
				if calls := h.store.calls(); len(calls) > 0 {
					t.Errorf("%s reached the handler: %v", target, calls)
				}
			}
			h := newHarness(t, nil)
			r := h.do(tok, "GET", "/Patient/123/*", "")
			if r.Code != 200 {
				t.Fatalf("own compartment: status %d: %s", r.Code, r.Body)
			}
			got := r.ids()
			for _, id := range []string{"Observation/lab1", "Patient/123", "Condition/c1"} {
				if !slices.Contains(got, id) {
					t.Errorf("own compartment lacks %s: %v", id, got)
				}
			}
			for _, id := range []string{"Observation/o456", "Patient/456", "Condition/c456", "Observation/mixed123", "Questionnaire/q1"} {
				if slices.Contains(got, id) {
					t.Errorf("own compartment shows %s: %v", id, got)
				}
			}
			if d := r.query(t, h.store); d.Has("_type") {
				t.Errorf("unexpected query %v", d)
			}
		})
	}
	t.Run("a practitioner's wildcard is open", func(t *testing.T) {
		tok := token("user/*.rs", "")
		tok.FHIRUser = "Practitioner/9"
		for _, target := range []string{"/?_type=Observation", "/", "/Patient/456/*"} {
			h := newHarness(t, nil)
			r := h.do(tok, "GET", target, "")
			if r.Code != 200 || !slices.Contains(r.ids(), "Observation/o456") {
				t.Errorf("%s: status %d, resources %v", target, r.Code, r.ids())
			}
		}
	})
	t.Run("a patient token's wildcard is refused", func(t *testing.T) {
		for _, target := range []string{"/?_type=Observation", "/", "/Patient/456/*"} {
			h := newHarness(t, nil)
			if r := h.do(token("patient/*.rs", "123"), "GET", target, ""); r.Code != http.StatusForbidden || len(h.store.calls()) > 0 {
				t.Errorf("%s: status %d, calls %v", target, r.Code, h.store.calls())
			}
		}
	})
	t.Run("user type grant of a patient in a _type search", func(t *testing.T) {
		tok := token("user/Observation.rs system/Condition.rs", "")
		tok.FHIRUser = "Patient/123"
		h := newHarness(t, nil)
		if r := h.do(tok, "GET", "/?_type=Observation,Condition", ""); r.Code != http.StatusForbidden || len(h.store.calls()) > 0 {
			t.Errorf("status %d, calls %v", r.Code, h.store.calls())
		}
		h = newHarness(t, nil)
		if r := h.do(tok, "GET", "/?_type=Condition", ""); r.Code != 200 || !slices.Contains(r.ids(), "Condition/c456") {
			t.Errorf("system grant: status %d, %v", r.Code, r.ids())
		}
	})
}

// outcomeServer answers every search with a Bundle that holds a match and
// entries in outcome mode.
type outcomeServer struct{}

func (outcomeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/fhir+json")
	_, _ = io.WriteString(w, `{"resourceType":"Bundle","type":"searchset","entry":[
		{"resource":{"resourceType":"Observation","id":"lab1","subject":{"reference":"Patient/123"}},"search":{"mode":"match"}},
		{"resource":{"resourceType":"OperationOutcome","id":"oo","issue":[{"severity":"warning","code":"informational"}]},"search":{"mode":"outcome"}},
		{"resource":{"resourceType":"Observation","id":"vs1","subject":{"reference":"Patient/123"}},"search":{"mode":"outcome"}},
		{"resource":{"resourceType":"Observation","id":"o456","subject":{"reference":"Patient/456"}},"search":{"mode":"outcome"}},
		{"resource":{"resourceType":"Patient","id":"456"},"search":{"mode":"outcome"}}]}`)
}

// TestRulesOutcomeEntriesAreOperationOutcomes: an entry in outcome mode is
// kept only when it is an OperationOutcome; any other resource in that
// mode is removed, even one the token may see.
func TestRulesOutcomeEntriesAreOperationOutcomes(t *testing.T) {
	a, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"/Observation", "/Patient/123/Observation", "/Patient/123/*"} {
		r := rulesDo(t, a, outcomeServer{}, token("patient/*.rs", "123"), "GET", target, "")
		if r.Code != 200 {
			t.Fatalf("%s: status %d: %s", target, r.Code, r.Body)
		}
		if got := allIDs(r); !slices.Equal(got, []string{"Observation/lab1", "OperationOutcome/oo"}) {
			t.Errorf("%s: entries %v, want the match and the OperationOutcome", target, got)
		}
	}
	// A count counts matches only.
	r := rulesDo(t, a, outcomeServer{}, token("patient/*.rs", "123"), "GET", "/Observation?_summary=count", "")
	if r.Code != 200 || r.total() != 1 {
		t.Errorf("count: status %d: %s", r.Code, r.Body)
	}
}

// opServer is the leaky server, with $peek answering the instance it is
// invoked on (what an operation declared with ResponseResource returns).
type opServer struct{ *leakyFHIR }

func (s opServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	segs := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/fhir"), "/"), "/")
	if len(segs) == 3 && segs[2] == "$peek" {
		s.mu.Lock()
		s.requests = append(s.requests, r.Method+" "+r.URL.Path)
		s.mu.Unlock()
		if res, ok := s.resources[segs[0]+"/"+segs[1]]; ok {
			s.write(w, 200, res)
			return
		}
		s.write(w, 404, map[string]any{"resourceType": "OperationOutcome"})
		return
	}
	s.leakyFHIR.ServeHTTP(w, r)
}

// TestRulesOperationTable: an operation is refused at a level or on a type
// its entry does not list; a ResponseResource operation is verified like a
// read; a system-level operation needs an unconstrained system or user
// wildcard (or, without a permission, any system or user scope) not held
// to a patient.
func TestRulesOperationTable(t *testing.T) {
	ops := []Operation{
		{Name: "peek", Levels: []fhirrest.Level{fhirrest.LevelInstance}, Types: []string{"Observation"}, Permission: scope.Read, Response: ResponseResource},
		{Name: "ping", Levels: []fhirrest.Level{fhirrest.LevelType}, Types: []string{"Observation"}, Permission: scope.Read},
		{Name: "anytype", Levels: []fhirrest.Level{fhirrest.LevelType}, Permission: scope.Read},
		{Name: "sysread", Levels: []fhirrest.Level{fhirrest.LevelSystem}, Permission: scope.Read},
		{Name: "sysnone", Levels: []fhirrest.Level{fhirrest.LevelSystem}},
		{Name: "typenone", Levels: []fhirrest.Level{fhirrest.LevelType}},
	}
	a, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, Logger: quietLogger(), Operations: ops})
	if err != nil {
		t.Fatal(err)
	}
	type tc struct {
		scopes, patient, fhirUser, target string
		status                            int
		ids                               []string
	}
	cases := []tc{
		// Levels and types, under a grant that allows everything else.
		{scopes: "system/*.cruds", target: "/Observation/$ping", status: 200},
		{scopes: "system/*.cruds", target: "/Condition/$ping", status: 403},
		{scopes: "system/*.cruds", target: "/Observation/lab1/$ping", status: 403},
		{scopes: "system/*.cruds", target: "/$ping", status: 403},
		{scopes: "system/*.cruds", target: "/Condition/$anytype", status: 200},
		{scopes: "system/*.cruds", target: "/Condition/c1/$anytype", status: 403},
		{scopes: "system/*.cruds", target: "/Condition/c1/$peek", status: 403},
		{scopes: "system/*.cruds", target: "/Observation/$peek", status: 403},
		{scopes: "system/*.cruds", target: "/Observation/$sysread", status: 403},
		{scopes: "system/*.cruds", target: "/Observation/lab1/$sysnone", status: 403},
		{scopes: "system/*.cruds", target: "/$typenone", status: 403},
		{scopes: "system/*.cruds", target: "/$unlisted", status: 403},
		// ResponseResource: verified like a read.
		{scopes: "patient/Observation.rs", patient: "123", target: "/Observation/lab1/$peek", status: 200, ids: []string{"Observation/lab1"}},
		{scopes: "patient/Observation.rs", patient: "123", target: "/Observation/o456/$peek", status: 404},
		{scopes: "patient/Observation.rs", patient: "123", target: "/Observation/mixed123/$peek", status: 404},
		{scopes: "patient/Observation.rs?category=" + lab, patient: "123", target: "/Observation/vs1/$peek", status: 404},
		{scopes: "patient/Observation.rs?category=" + lab, patient: "123", target: "/Observation/lab1/$peek", status: 200, ids: []string{"Observation/lab1"}},
		{scopes: "user/Observation.rs", fhirUser: "Patient/123", target: "/Observation/o456/$peek", status: 404},
		{scopes: "patient/Observation.s", patient: "123", target: "/Observation/lab1/$peek", status: 403},
		// System level with a permission: an open wildcard not held to a patient.
		{scopes: "system/*.rs", target: "/$sysread", status: 200},
		{scopes: "user/*.rs", fhirUser: "Practitioner/9", target: "/$sysread", status: 200},
		{scopes: "user/*.rs", target: "/$sysread", status: 200},
		{scopes: "user/*.rs", fhirUser: "Patient/123", target: "/$sysread", status: 403},
		{scopes: "patient/*.rs", patient: "123", target: "/$sysread", status: 403},
		{scopes: "system/Observation.rs", target: "/$sysread", status: 403},
		{scopes: "system/*.rs?category=" + lab, target: "/$sysread", status: 403},
		{scopes: "system/*.cus", target: "/$sysread", status: 403},
		// System level without a permission: any system or user scope not
		// held to a patient.
		{scopes: "system/Observation.r", target: "/$sysnone", status: 200},
		{scopes: "user/Observation.r", fhirUser: "Practitioner/9", target: "/$sysnone", status: 200},
		{scopes: "user/Observation.r", fhirUser: "Patient/123", target: "/$sysnone", status: 403},
		{scopes: "user/Observation.r system/Condition.r", fhirUser: "Patient/123", target: "/$sysnone", status: 200},
		{scopes: "patient/*.cruds", patient: "123", target: "/$sysnone", status: 403},
		{scopes: "openid fhirUser", fhirUser: "Practitioner/9", target: "/$sysnone", status: 403},
		// Type level without a permission: a create or update grant.
		{scopes: "patient/Observation.c", patient: "123", target: "/Observation/$typenone", status: 200},
		{scopes: "patient/Observation.u", patient: "123", target: "/Observation/$typenone", status: 200},
		{scopes: "patient/Observation.rds", patient: "123", target: "/Observation/$typenone", status: 403},
		{scopes: "patient/Condition.cu", patient: "123", target: "/Observation/$typenone", status: 403},
		{scopes: "patient/Observation.c", target: "/Observation/$typenone", status: 403},
	}
	for _, c := range cases {
		t.Run(c.scopes+" "+c.fhirUser+" "+c.target, func(t *testing.T) {
			store := opServer{newLeaky()}
			tok := token(c.scopes, c.patient)
			tok.FHIRUser = c.fhirUser
			r := rulesDo(t, a, store, tok, "GET", c.target, "")
			if r.Code != c.status {
				t.Fatalf("status %d, want %d: %s", r.Code, c.status, r.Body)
			}
			if c.status == 403 && len(store.calls()) > 0 {
				t.Fatalf("a refused operation reached the handler: %v", store.calls())
			}
			if c.ids != nil && !slices.Equal(r.ids(), c.ids) {
				t.Fatalf("resources %v, want %v", r.ids(), c.ids)
			}
		})
	}
}

// TestRulesPatchFromPaths: move and copy take their value from another
// place of the resource: the patched result is judged, so a move out of
// the compartment link (or into it from somewhere a reference was placed)
// is refused, while a harmless copy passes.
func TestRulesPatchFromPaths(t *testing.T) {
	patch := []string{"Content-Type", "application/json-patch+json"}
	type tc struct {
		name, body string
		status     int
	}
	for _, c := range []tc{
		{"move the subject to focus", `[{"op":"move","from":"/subject","path":"/focus"}]`, 403},
		{"move the subject reference to its display", `[{"op":"move","from":"/subject/reference","path":"/subject/display"}]`, 403},
		{"move another patient into the subject", `[{"op":"add","path":"/extension","value":[{"url":"urn:x","valueReference":{"reference":"Patient/456"}}]},` +
			`{"op":"move","from":"/extension/0/valueReference","path":"/subject"},{"op":"remove","path":"/extension"}]`, 403},
		{"copy another patient into the performer", `[{"op":"add","path":"/note","value":[{"text":"x"}]},{"op":"add","path":"/focus","value":[{"reference":"Patient/456"}]},` +
			`{"op":"copy","from":"/focus/0","path":"/performer"},{"op":"remove","path":"/focus"}]`, 403},
		{"copy the subject to the performer", `[{"op":"add","path":"/performer","value":[]},{"op":"copy","from":"/subject","path":"/performer/0"}]`, 200},
		{"move within the resource", `[{"op":"move","from":"/code","path":"/valueCodeableConcept"}]`, 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil)
			r := h.do(token("patient/Observation.u", "123"), "PATCH", "/Observation/lab1", c.body, patch...)
			if r.Code != c.status {
				t.Fatalf("status %d, want %d: %s", r.Code, c.status, r.Body)
			}
			if sent := handlerSaw(h, "PATCH"); sent != (c.status == 200) {
				t.Fatalf("the handler received the patch: %v (calls %v)", sent, h.store.calls())
			}
		})
	}
}

// TestRulesNarrowingIgnoresModifiers: a compartment parameter with a
// modifier (:not, :identifier, :missing, :above …), a list, a chain's
// target or another patient never counts as binding the search: the guard
// adds its own narrowing parameter. A plain binding parameter needs none.
func TestRulesNarrowingIgnoresModifiers(t *testing.T) {
	type tc struct {
		target, param, value string
		added                bool
	}
	for _, c := range []tc{
		{"/Observation?patient:not=Patient/123", "patient", "Patient/123", true},
		{"/Observation?subject:not=Patient/123", "patient", "Patient/123", true},
		{"/Observation?subject:identifier=urn:x|123", "patient", "Patient/123", true},
		{"/Observation?patient:missing=true", "patient", "Patient/123", true},
		{"/Observation?patient:missing=false", "patient", "Patient/123", true},
		{"/Observation?patient:above=Patient/123", "patient", "Patient/123", true},
		{"/Observation?subject:Group=123", "patient", "Patient/123", true},
		{"/Observation?patient=123,456", "patient", "Patient/123", true},
		{"/Observation?patient=Patient/456", "patient", "Patient/123", true},
		{"/Observation?patient=Patient/123/_history/1", "patient", "Patient/123", true},
		{"/Patient?_id:not=123", "_id", "123", true},
		{"/Patient?_id=123,456", "_id", "123", true},
		{"/Condition?patient:not=Patient/123", "patient", "Patient/123", true},
		{"/Observation?patient=Patient/123", "patient", "Patient/123", false},
		{"/Observation?patient=123", "patient", "Patient/123", false},
		{"/Observation?subject:Patient=123", "patient", "Patient/123", false},
		{"/Observation?subject=Patient/123&patient:not=Patient/123", "patient", "Patient/123", false},
		{"/Patient?_id=123", "_id", "123", false},
	} {
		t.Run(c.target, func(t *testing.T) {
			h := newHarness(t, nil)
			var d *Decision
			h.authz.onDecision = func(_ *http.Request, dd *Decision, _ error) { d = dd }
			r := h.do(token("patient/*.rs", "123"), "GET", c.target, "")
			if r.Code != 200 {
				t.Fatalf("status %d: %s", r.Code, r.Body)
			}
			q := r.query(t, h.store)
			_, raw, _ := strings.Cut(c.target, "?")
			want, _ := url.ParseQuery(raw)
			if c.added {
				want[c.param] = append([]string{c.value}, want[c.param]...)
			}
			if !reflect.DeepEqual(q, want) {
				t.Fatalf("handler query %v, want %v", q, want)
			}
			if d == nil || d.Narrowed != c.added {
				t.Fatalf("Decision.Narrowed wrong: %+v", d)
			}
			for _, id := range r.ids() {
				if strings.Contains(id, "456") {
					t.Fatalf("another patient's resource shown: %v", r.ids())
				}
			}
		})
	}
	t.Run("encounter parameters with modifiers", func(t *testing.T) {
		for _, target := range []string{"/Observation?encounter:not=Encounter/e1", "/Observation?encounter:missing=true", "/Observation?context:identifier=x"} {
			h := encounterHarness(t, func(c *AuthorizeConfig) { c.EnforceEncounter = true })
			r := h.do(encounterToken("patient/*.rs", "e1"), "GET", target, "")
			if r.Code != 200 {
				t.Fatalf("%s: status %d: %s", target, r.Code, r.Body)
			}
			if q := r.query(t, h.store); !slices.Contains(q["encounter"], "Encounter/e1") {
				t.Fatalf("%s: handler query %v lacks the encounter", target, q)
			}
		}
	})
}

// TestRulesUnknownTypesGrantNothing: a scope naming a type FHIR does not
// define (or a type in the wrong case) grants nothing, neither on the
// first type of the table nor as a wildcard.
func TestRulesUnknownTypesGrantNothing(t *testing.T) {
	for _, scopes := range []string{"patient/Foo.cruds", "patient/observation.cruds", "system/Foo.cruds", "user/account.cruds", "system/OBSERVATION.cruds"} {
		for _, target := range []string{"/Account/a1", "/Account", "/Observation/lab1", "/Observation", "/Patient/123/*", "/?_type=Account", "/", "/$meta"} {
			h := newHarness(t, nil)
			tok := token(scopes, "123")
			if r := h.do(tok, "GET", target, ""); r.Code != http.StatusForbidden {
				t.Errorf("%s %s: status %d, want 403: %s", scopes, target, r.Code, r.Body)
			}
			if calls := h.store.calls(); len(calls) > 0 {
				t.Errorf("%s %s reached the handler: %v", scopes, target, calls)
			}
		}
		h := newHarness(t, nil)
		if r := h.do(token(scopes, "123"), "POST", "/Account", `{"resourceType":"Account","status":"active"}`); r.Code != http.StatusForbidden {
			t.Errorf("%s create Account: status %d", scopes, r.Code)
		}
	}
}

// TestRulesConfigValidation: NewAuthorizer refuses a BaseURL that is not
// an absolute http(s) URL without query or fragment, and fills in the
// documented defaults.
func TestRulesConfigValidation(t *testing.T) {
	for _, base := range []string{"", "/fhir", "ftp://ehr.example.org/fhir", "https:///fhir", "https://ehr.example.org/fhir?x=1",
		"https://ehr.example.org/fhir#x", "ehr.example.org/fhir", "https://ehr.example.org/fhir?", "https://ehr.example.org/%zz"} {
		if _, err := newAuthorizer(AuthorizeConfig{BaseURL: base}); err == nil {
			t.Errorf("BaseURL %q accepted", base)
		}
	}
	for _, base := range []string{"https://ehr.example.org/fhir", "http://localhost:8080/fhir/", "https://ehr.example.org"} {
		if _, err := newAuthorizer(AuthorizeConfig{BaseURL: base}); err != nil {
			t.Errorf("BaseURL %q: %v", base, err)
		}
	}
	a, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase})
	if err != nil {
		t.Fatal(err)
	}
	if a.log == nil || a.maxResp != defaultMaxResponseBytes || a.maxBody != 16<<20 || a.denyStatus != http.StatusNotFound {
		t.Errorf("defaults: log %v, maxResp %d, maxBody %d, denyStatus %d", a.log, a.maxResp, a.maxBody, a.denyStatus)
	}
	a, err = newAuthorizer(AuthorizeConfig{BaseURL: testBase, MaxResponseBytes: 1 << 20})
	if err != nil || a.maxBody != 1<<19 {
		t.Errorf("MaxBodyBytes default under a small MaxResponseBytes: %v, %d", err, a.maxBody)
	}
	if _, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, MaxResponseBytes: 1 << 20, MaxBodyBytes: 1 << 20}); err == nil {
		t.Error("MaxBodyBytes equal to MaxResponseBytes accepted")
	}
	if _, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, MaxResponseBytes: 1 << 20, MaxBodyBytes: 1<<20 - 1}); err != nil {
		t.Errorf("MaxBodyBytes just below MaxResponseBytes: %v", err)
	}
}

// TestRulesChainedGuards: an Authorizer behind another one (the decision
// link of the token's context already taken) authorises on its own
// decision.
func TestRulesChainedGuards(t *testing.T) {
	outer, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	inner, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, Logger: quietLogger(), Policies: []Policy{newRulesPolicy("Observation/vs1")}})
	if err != nil {
		t.Fatal(err)
	}
	store := newLeaky()
	var seen *Decision
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ = DecisionFromContext(r.Context())
		store.ServeHTTP(w, r)
	})
	tok := token("patient/Observation.rs", "123")
	for target, want := range map[string]int{"/Observation/lab1": 200, "/Observation/o456": 404, "/Observation/vs1": 404} {
		r := rulesDo(t, outer, inner.Handler(handler), tok, "GET", target, "")
		if r.Code != want {
			t.Errorf("%s: status %d, want %d: %s", target, r.Code, want, r.Body)
		}
		if want == 200 && (seen == nil || seen.Interaction.Kind != fhirrest.Read || seen.Interaction.ID != "lab1" || seen.CompartmentID != "123") {
			t.Errorf("%s: the handler saw the decision %+v", target, seen)
		}
	}
	r := rulesDo(t, outer, inner.Handler(handler), tok, "GET", "/Observation", "")
	if got := r.ids(); r.Code != 200 || slices.Contains(got, "Observation/vs1") || slices.Contains(got, "Observation/o456") || !slices.Contains(got, "Observation/lab1") {
		t.Errorf("search: status %d, %v", r.Code, got)
	}
}

// TestRulesFHIRUserPatientWithInvalidID: a user/ grant whose fhirUser
// names a Patient by something that is not a FHIR id is held to no
// usable patient: refused, never freed from the patient.
func TestRulesFHIRUserPatientWithInvalidID(t *testing.T) {
	for _, fhirUser := range []string{"Patient/", "Patient/a b", "Patient/123/_history/1", "https://ehr.example.org/fhir/Patient/" + strings.Repeat("9", 65), "Patient/123,456"} {
		for _, target := range []string{"/Observation/o456", "/Observation", "/", "/Patient/123/*"} {
			h := newHarness(t, nil)
			tok := token("user/*.rs", "")
			tok.FHIRUser = fhirUser
			if r := h.do(tok, "GET", target, ""); r.Code != http.StatusForbidden || len(h.store.calls()) > 0 {
				t.Errorf("fhirUser %q, %s: status %d, calls %v", fhirUser, target, r.Code, h.store.calls())
			}
		}
	}
}

// TestRulesBundleVerifiedWhenAnyEntryIs: a batch answer is verified when
// any entry needs it, not only the last one.
func TestRulesBundleVerifiedWhenAnyEntryIs(t *testing.T) {
	tok := token("patient/Observation.rs system/Medication.rs", "123")
	for _, body := range []string{
		bundleOf("batch", getEntry("Observation/o456"), getEntry("Medication/m1")),
		bundleOf("batch", getEntry("Medication/m1"), getEntry("Observation/o456")),
		bundleOf("batch", getEntry("Observation?code=x"), getEntry("Medication/m1")),
	} {
		h := newHarness(t, nil)
		r := h.do(tok, "POST", "", body)
		if r.Code != 200 {
			t.Fatalf("status %d: %s", r.Code, r.Body)
		}
		for _, ids := range entryIDs(t, r) {
			for _, id := range ids {
				if id == "Observation/o456" || id == "Observation/mixed123" {
					t.Fatalf("another patient's resource in the batch answer: %v", entryIDs(t, r))
				}
			}
		}
		if !strings.Contains(r.Body.String(), `"Medication"`) {
			t.Fatalf("the open entry lost its answer: %s", r.Body)
		}
	}
}

// TestRulesBundleConditionalUpdateURN: a reference to the fullUrl of a
// conditional update entry is judged as the criteria the server resolves
// (which may name another patient), not as an unresolved urn.
func TestRulesBundleConditionalUpdateURN(t *testing.T) {
	tx := func(entries ...string) string { return bundleOf("transaction", entries...) }
	condPatient := `{"fullUrl":"urn:uuid:p3","resource":{"resourceType":"Patient","id":"123"},"request":{"method":"PUT","url":"Patient?identifier=urn:x|1"}}`
	obs := func(focus string) string {
		return `{"resource":{"resourceType":"Observation","status":"final","subject":{"reference":"Patient/123"},"focus":[{"reference":"` + focus + `"}]},"request":{"method":"POST","url":"Observation"}}`
	}
	runVectors(t, []vector{
		{name: "focus on a conditionally updated patient", scopes: "patient/*.cru", patient: "123", method: "POST", target: "", honest: true,
			body: tx(condPatient, obs("urn:uuid:p3")), status: 403, check: noWrite},
		{name: "the conditional update alone", scopes: "patient/*.cru", patient: "123", method: "POST", target: "", honest: true,
			body: tx(condPatient, obs("Observation/lab1")), status: 200},
	}, nil)
}

// TestRulesBundlePatchBinary: a batch carries a JSON Patch in a Binary of
// type application/json-patch+json; that patch is judged on its result,
// and a Binary of any other type is not read as a patch (415 for the entry,
// refusing the batch).
func TestRulesBundlePatchBinary(t *testing.T) {
	binary := func(ct, patch string) string {
		return `{"resourceType":"Binary","contentType":"` + ct + `","data":"` + base64.StdEncoding.EncodeToString([]byte(patch)) + `"}`
	}
	ok := `[{"op":"replace","path":"/status","value":"amended"}]`
	bad := `[{"op":"replace","path":"/subject/reference","value":"Patient/456"}]`
	for _, c := range []struct {
		name, ct, patch string
		status          int
	}{
		{"own resource", "application/json-patch+json", ok, 200},
		{"own resource, parameters", "application/json-patch+json; charset=utf-8", ok, 200},
		{"moved to another patient", "application/json-patch+json", bad, 403},
		{"not a JSON Patch", "text/plain", ok, 403},
		{"not a JSON Patch either", "application/json", ok, 403},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil)
			r := h.do(token("patient/Observation.u", "123"), "POST", "", bundleOf("batch", writeEntry("PATCH", "Observation/lab1", binary(c.ct, c.patch))))
			if r.Code != c.status {
				t.Fatalf("status %d, want %d: %s", r.Code, c.status, r.Body)
			}
			if sent := handlerSaw(h, "POST /fhir"); sent != (c.status == 200) {
				t.Fatalf("the batch reached the handler: %v", sent)
			}
		})
	}
}

// TestRulesBundleEmptyAnswer: a batch answered without a body (or with an
// error status) is passed on as it is, not judged as JSON.
func TestRulesBundleEmptyAnswer(t *testing.T) {
	a, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	for _, status := range []int{200, 202, 500} {
		next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) })
		r := rulesDo(t, a, next, token("patient/Observation.rs", "123"), "POST", "", bundleOf("batch", getEntry("Observation/lab1")))
		if r.Code != status || r.Body.Len() != 0 {
			t.Errorf("status %d answered %d: %s", status, r.Code, r.Body)
		}
	}
}

// batchServer answers every batch with the entries it is given.
type batchServer struct{ entries string }

func (s batchServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/fhir+json")
	_, _ = io.WriteString(w, `{"resourceType":"Bundle","type":"batch-response","entry":[`+s.entries+`]}`)
}

// TestRulesBatchAnswersVerified: in a batch answer, a search entry whose
// resource is not a searchset Bundle cannot be verified (502), and the
// outcome of a write entry must be an OperationOutcome.
func TestRulesBatchAnswersVerified(t *testing.T) {
	a, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	o456 := `{"resourceType":"Observation","id":"o456","status":"final","subject":{"reference":"Patient/456"}}`
	tok := token("patient/Observation.crus", "123")
	search := bundleOf("batch", getEntry("Observation?code=x"))
	for _, answer := range []string{
		`{"resource":` + o456 + `,"response":{"status":"200 OK"}}`,
		`{"resource":{"resourceType":"Bundle","type":"searchset","entry":{"resource":` + o456 + `}},"response":{"status":"200 OK"}}`,
	} {
		r := rulesDo(t, a, batchServer{answer}, tok, "POST", "", search)
		if r.Code != http.StatusBadGateway || strings.Contains(r.Body.String(), "o456") {
			t.Errorf("search entry answered %s: status %d: %s", answer, r.Code, r.Body)
		}
	}
	write := bundleOf("batch", writeEntry("POST", "Observation", `{"resourceType":"Observation","status":"final","subject":{"reference":"Patient/123"}}`))
	for answer, leaks := range map[string]bool{
		`{"response":{"status":"201 Created","outcome":` + o456 + `}}`:                                                                                    true,
		`{"response":{"status":"201 Created","outcome":{"resourceType":"OperationOutcome","issue":[{"severity":"information","code":"informational"}]}}}`: false,
		`{"response":{"status":"201 Created","outcome":"x"}}`:                                                                                             true,
		`{"response":{"status":"201 Created"}}`:                                                                                                           false,
	} {
		r := rulesDo(t, a, batchServer{answer}, tok, "POST", "", write)
		if r.Code != 200 {
			t.Fatalf("write entry answered %s: status %d: %s", answer, r.Code, r.Body)
		}
		entry := r.doc["entry"].([]any)[0].(map[string]any)
		status := entry["response"].(map[string]any)["status"]
		if withheld := status == "403 Forbidden"; withheld != leaks || strings.Contains(r.Body.String(), "o456") {
			t.Errorf("write entry answered %s: passed on as %s", answer, r.Body)
		}
	}
}

// conditionalServer is the leaky server that answers 304 Not Modified to
// any conditional GET, whatever the resource: an existence oracle unless
// the guard strips the conditional headers of verified requests.
type conditionalServer struct{ *leakyFHIR }

func (s conditionalServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && (r.Header.Get("If-Modified-Since") != "" || r.Header.Get("If-None-Match") != "") {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	s.leakyFHIR.ServeHTTP(w, r)
}

// TestRulesConditionalReadsVerified: a verified read never reaches the
// handler with If-Modified-Since or If-None-Match, so a 304 cannot tell
// that a hidden resource exists; open tokens keep them.
func TestRulesConditionalReadsVerified(t *testing.T) {
	a, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	for _, hdr := range [][]string{{"If-Modified-Since", "Sat, 01 Jan 2000 00:00:00 GMT"}, {"If-None-Match", `W/"1"`}} {
		store := conditionalServer{newLeaky()}
		if r := rulesDo(t, a, store, token("patient/Observation.rs", "123"), "GET", "/Observation/o456", "", hdr...); r.Code != 404 {
			t.Errorf("%s: hidden resource answered %d", hdr[0], r.Code)
		}
		if r := rulesDo(t, a, store, token("patient/Observation.rs", "123"), "GET", "/Observation/lab1", "", hdr...); r.Code != 200 {
			t.Errorf("%s: own resource answered %d", hdr[0], r.Code)
		}
		if r := rulesDo(t, a, store, token("system/Observation.rs", ""), "GET", "/Observation/o456", "", hdr...); r.Code != 304 {
			t.Errorf("%s: open token answered %d", hdr[0], r.Code)
		}
	}
}

// TestRulesIncludeModifiers: _include and _revinclude take :iterate and
// :recurse only, on searches and reads alike.
func TestRulesIncludeModifiers(t *testing.T) {
	for target, want := range map[string]int{
		"/Observation?_include:recurse=Observation:subject":       200,
		"/Observation?_revinclude:iterate=Provenance:target":      200,
		"/Observation?_include:foo=Observation:subject":           400,
		"/Observation?_revinclude:foo=Provenance:target":          400,
		"/Observation/lab1?_include:foo=Observation:subject":      400,
		"/Observation/lab1?_revinclude:foo=Provenance:target":     400,
		"/Observation/lab1?_revinclude:recurse=Provenance:target": 200,
	} {
		h := newHarness(t, nil)
		if r := h.do(token("patient/*.rs", "123"), "GET", target, ""); r.Code != want {
			t.Errorf("%s: status %d, want %d: %s", target, r.Code, want, r.Body)
		}
	}
}

// TestRulesRefusalsNameTheCause: a patient grant without a usable patient
// is refused as such, not as a missing grant.
func TestRulesRefusalsNameTheCause(t *testing.T) {
	h := newHarness(t, nil)
	r := h.do(token("patient/Observation.rs", ""), "GET", "/Observation/lab1", "")
	if r.Code != 403 || !strings.Contains(r.Header().Get("WWW-Authenticate"), "no valid patient context") {
		t.Errorf("no patient: %d %q", r.Code, r.Header().Get("WWW-Authenticate"))
	}
	r = h.do(token("patient/Condition.rs", "123"), "GET", "/Observation/lab1", "")
	if r.Code != 403 || !strings.Contains(r.Header().Get("WWW-Authenticate"), "does not grant") {
		t.Errorf("no grant: %d %q", r.Code, r.Header().Get("WWW-Authenticate"))
	}
}

// TestRulesPagingWithTwoPatients: a token held to two patients (a patient
// grant and a user grant of another Patient fhirUser) gets no paging
// links, even when the server states that it applied one patient.
func TestRulesPagingWithTwoPatients(t *testing.T) {
	tok := token("patient/Observation.rs user/Observation.rs", "123")
	tok.FHIRUser = "Patient/456"
	h := newHarness(t, nil)
	h.store.pageSize = 1
	h.store.honest = true
	r := h.do(tok, "GET", "/Observation?patient=Patient/123", "")
	if r.Code != 200 {
		t.Fatalf("status %d: %s", r.Code, r.Body)
	}
	if hasLink(r, "next") {
		t.Fatalf("paging links passed on: %v", r.links())
	}
	h = newHarness(t, nil)
	h.store.pageSize = 1
	h.store.honest = true
	if r := h.do(token("patient/Observation.rs", "123"), "GET", "/Observation?patient=Patient/123", ""); !hasLink(r, "next") {
		t.Fatalf("a token of one patient lost the confirmed paging links: %v", r.links())
	}
}

// TestRulesEncounterSearchesOfPatientAndSharedTypes: under
// EnforceEncounter the patient's own Patient resource and the shared types
// stay searchable (they are not narrowed on the encounter), while a
// compartment search of a type outside the Encounter compartment is
// refused before the handler.
func TestRulesEncounterSearchesOfPatientAndSharedTypes(t *testing.T) {
	enforce := func(c *AuthorizeConfig) { c.EnforceEncounter = true }
	for target, want := range map[string]string{"/Patient?name=x": "Patient/123", "/Medication": "Medication/m1", "/Patient/123/Medication": "Medication/m1"} {
		h := encounterHarness(t, enforce)
		r := h.do(encounterToken("patient/*.rs", "e1"), "GET", target, "")
		if r.Code != 200 || !slices.Contains(r.ids(), want) {
			t.Errorf("%s: status %d, %v: %s", target, r.Code, r.ids(), r.Body)
		}
		if q := r.query(t, h.store); q.Has("encounter") || q.Has("context") {
			t.Errorf("%s narrowed on the encounter: %v", target, q)
		}
	}
	h := encounterHarness(t, enforce)
	outside := ""
	for _, rt := range h.authz.patientDef.ResourceTypes() {
		if _, ok := h.authz.encounterDef.NarrowParam(rt); !ok && rt != "Patient" && rt != "Encounter" {
			outside = rt
			break
		}
	}
	if outside == "" {
		t.Fatal("every Patient compartment type is in the Encounter compartment")
	}
	for _, target := range []string{"/Patient/123/" + outside, "/" + outside} {
		h := encounterHarness(t, enforce)
		r := h.do(encounterToken("patient/*.rs", "e1"), "GET", target, "")
		if r.Code != http.StatusForbidden || len(h.store.calls()) > 0 {
			t.Errorf("%s: status %d, calls %v", target, r.Code, h.store.calls())
		}
	}
}

// TestRulesIncludesAreNotMatches: included resources are neither counted
// as matches in the recomputed total nor reported as withheld when they
// are outcomes.
func TestRulesIncludesAreNotMatches(t *testing.T) {
	h := newHarness(t, nil)
	r := h.do(token("patient/*.rs", "123"), "GET", "/Observation?_include=Observation:subject", "")
	if r.Code != 200 {
		t.Fatalf("status %d: %s", r.Code, r.Body)
	}
	matches := 0
	for _, e := range r.doc["entry"].([]any) {
		if entryMode(e.(map[string]any)) == "match" {
			matches++
		}
	}
	if matches != 3 || r.total() != matches {
		t.Fatalf("total %d, matches %d: %s", r.total(), matches, r.Body)
	}
	var d *Decision
	a, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, Logger: quietLogger(), OnDecision: func(_ *http.Request, dd *Decision, _ error) { d = dd }})
	if err != nil {
		t.Fatal(err)
	}
	rulesDo(t, a, outcomeServer{}, token("patient/*.rs", "123"), "GET", "/Observation", "")
	if d == nil || len(d.Withheld) != 3 || slices.ContainsFunc(d.Withheld, func(s string) bool { return strings.HasPrefix(s, "OperationOutcome/") }) {
		t.Fatalf("withheld %+v", d)
	}
}

// TestRulesBodyLimit: a body one byte over MaxBodyBytes is refused with
// 413, one at the limit is read.
func TestRulesBodyLimit(t *testing.T) {
	const limit = 200
	pad := func(n int) string {
		body := `{"resourceType":"Observation","status":"final","subject":{"reference":"Patient/123"},"note":[{"text":""}]}`
		return strings.Replace(body, `"text":""`, `"text":"`+strings.Repeat("x", n-len(body))+`"`, 1)
	}
	for _, scopes := range []string{"patient/Observation.c", "system/Observation.c"} {
		for n, want := range map[int]int{limit: 201, limit + 1: 413, limit + 2: 413} {
			h := newHarness(t, func(c *AuthorizeConfig) { c.MaxBodyBytes = limit })
			body := pad(n)
			if len(body) != n {
				t.Fatalf("body of %d bytes", len(body))
			}
			if r := h.do(token(scopes, "123"), "POST", "/Observation", body); r.Code != want {
				t.Errorf("%s, %d bytes: status %d, want %d: %s", scopes, n, r.Code, want, r.Body)
			}
		}
	}
}

// TestRulesUnresolvedConstraints: a granular constraint on a search
// parameter the kit cannot evaluate (R4 PlanDefinition depends-on is
// Unresolved) grants nothing: a search under it alone is refused, and
// _elements cannot be restored for it.
func TestRulesUnresolvedConstraints(t *testing.T) {
	h := newHarness(t, nil)
	if r := h.do(token("system/PlanDefinition.rs?depends-on=Library/1", ""), "GET", "/PlanDefinition", ""); r.Code != http.StatusForbidden || len(h.store.calls()) > 0 {
		t.Errorf("search: status %d, calls %v", r.Code, h.store.calls())
	}
	h = newHarness(t, nil)
	if r := h.do(token("system/PlanDefinition.rs?depends-on=Library/1 system/PlanDefinition.rs?status=active", ""), "GET", "/PlanDefinition?_elements=id", ""); r.Code != http.StatusForbidden {
		t.Errorf("_elements: status %d", r.Code)
	}
	h = newHarness(t, nil)
	if r := h.do(token("system/PlanDefinition.rs?status=active", ""), "GET", "/PlanDefinition?_elements=id", ""); r.Code == http.StatusForbidden {
		t.Errorf("_elements under a resolved constraint: status %d: %s", r.Code, r.Body)
	}
}

// TestRulesGranularOrListNarrows: several constraint sets on one parameter
// narrow the search with one OR list, and the decision says so.
func TestRulesGranularOrListNarrows(t *testing.T) {
	var d *Decision
	h := newHarness(t, func(c *AuthorizeConfig) {
		c.OnDecision = func(_ *http.Request, dd *Decision, _ error) { d = dd }
	})
	vital := "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"
	r := h.do(token("system/Observation.rs?category="+lab+" system/Observation.rs?category="+vital, ""), "GET", "/Observation", "")
	if r.Code != 200 {
		t.Fatalf("status %d: %s", r.Code, r.Body)
	}
	if q := r.query(t, h.store); !slices.Contains(q["category"], lab+","+vital) || d == nil || !d.Narrowed {
		t.Fatalf("query %v, decision %+v", q, d)
	}
	// One set: its constraint is added, and the decision says so; a query
	// that already holds it is not changed.
	for target, narrowed := range map[string]bool{"/Observation": true, "/Observation?category=" + url.QueryEscape(lab): false} {
		d = nil
		r = h.do(token("system/Observation.rs?category="+lab, ""), "GET", target, "")
		if q := r.query(t, h.store); r.Code != 200 || !slices.Contains(q["category"], lab) || len(q["category"]) != 1 || d == nil || d.Narrowed != narrowed {
			t.Fatalf("%s: status %d, query %v, decision %+v", target, r.Code, q, d)
		}
	}
}

// TestRulesTypeSearchParamsChecked: a _type search that is verified (a
// constrained grant) refuses the parameters it cannot verify, as a type
// search does.
func TestRulesTypeSearchParamsChecked(t *testing.T) {
	for _, q := range []string{"&_filter=x", "&_has:Observation:patient:code=x", "&subject.name=x", "&_include:foo=Observation:subject"} {
		h := newHarness(t, nil)
		r := h.do(token("system/Observation.rs?category="+lab, ""), "GET", "/?_type=Observation"+q, "")
		if r.Code != http.StatusForbidden && r.Code != http.StatusBadRequest || len(h.store.calls()) > 0 {
			t.Errorf("%s: status %d, calls %v", q, r.Code, h.store.calls())
		}
	}
}

// TestRulesOperationsReachTheHandler: a permitted operation is answered by
// the handler, at every level.
func TestRulesOperationsReachTheHandler(t *testing.T) {
	ops := append(DefaultOperations(), Operation{Name: "sysnone", Levels: []fhirrest.Level{fhirrest.LevelSystem}},
		Operation{Name: "sysread", Levels: []fhirrest.Level{fhirrest.LevelSystem}, Permission: scope.Read})
	for _, c := range []struct{ scopes, target string }{
		{"system/Observation.r", "/$sysnone"}, {"user/Observation.r", "/$sysnone"}, {"system/*.rs", "/$sysread"},
		{"patient/Observation.c", "/Observation/$validate"}, {"system/Observation.c", "/Observation/$validate"},
		{"patient/Observation.r", "/Observation/lab1/$meta"},
	} {
		h := newHarness(t, func(cfg *AuthorizeConfig) { cfg.Operations = ops })
		r := h.do(token(c.scopes, "123"), "GET", c.target, "")
		if r.Code != 200 || r.doc == nil || !handlerSaw(h, "GET /fhir"+strings.Split(c.target, "?")[0]) {
			t.Errorf("%s %s: status %d, calls %v: %s", c.scopes, c.target, r.Code, h.store.calls(), r.Body)
		}
	}
}

// TestRulesOwnPatientOnlyHoldsPatientTokens: OwnPatient ($everything)
// limits tokens held to a patient; a verified token that is not (a
// constrained system grant) may run it on any Patient, its answer
// verified.
func TestRulesOwnPatientOnlyHoldsPatientTokens(t *testing.T) {
	h := newHarness(t, nil)
	r := h.do(token("system/Patient.r?gender=female system/Observation.rs?category="+lab, ""), "GET", "/Patient/456/$everything", "")
	if r.Code != 200 {
		t.Fatalf("status %d: %s", r.Code, r.Body)
	}
	if got := r.ids(); slices.Contains(got, "Observation/vs1") || !slices.Contains(got, "Observation/o456") || slices.Contains(got, "Patient/456") {
		t.Fatalf("resources %v", got)
	}
}

// recorderServer answers every request with the given function, the
// leaky server behind it.
type recorderServer struct {
	*leakyFHIR
	answer func(s *leakyFHIR, w http.ResponseWriter, r *http.Request)
}

func (s recorderServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.answer(s.leakyFHIR, w, r)
}

// TestRulesRecordedStatus: the guard records the status as net/http sends
// it: 200 when the handler writes without WriteHeader (also when it writes
// nothing), a WriteHeader after the body ignored; a gzip body that is not
// gzip cannot be verified.
func TestRulesRecordedStatus(t *testing.T) {
	a, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	tok := token("patient/Observation.rs", "123")
	late := recorderServer{newLeaky(), func(s *leakyFHIR, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		b, _ := json.Marshal(s.resources["Observation/lab1"])
		_, _ = w.Write(b)
		w.WriteHeader(http.StatusNotFound) // superfluous: net/http ignores it
	}}
	if r := rulesDo(t, a, late, tok, "GET", "/Observation/lab1", ""); r.Code != 200 || !slices.Equal(r.ids(), []string{"Observation/lab1"}) {
		t.Errorf("late WriteHeader: status %d: %s", r.Code, r.Body)
	}
	silent := recorderServer{newLeaky(), func(*leakyFHIR, http.ResponseWriter, *http.Request) {}}
	if r := rulesDo(t, a, silent, tok, "GET", "/Observation/lab1", ""); r.Code != 200 || r.Body.Len() != 0 {
		t.Errorf("silent handler: status %d: %s", r.Code, r.Body)
	}
	badGzip := recorderServer{newLeaky(), func(_ *leakyFHIR, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		w.Header().Set("Content-Encoding", "gzip")
		_, _ = io.WriteString(w, `{"resourceType":"Observation","id":"o456","subject":{"reference":"Patient/456"}}`)
	}}
	if r := rulesDo(t, a, badGzip, tok, "GET", "/Observation/o456", ""); r.Code != http.StatusBadGateway || strings.Contains(r.Body.String(), "o456") {
		t.Errorf("bad gzip: status %d: %s", r.Code, r.Body)
	}
}

// TestRulesWriteRefusals: conditional update criteria that cannot be
// confined are refused before any write; a JSON Patch whose operations are
// not objects is 400; a stored version that cannot be read is 502; the
// answer to a write must be of the written type.
func TestRulesWriteRefusals(t *testing.T) {
	own := `{"resourceType":"Observation","status":"final","subject":{"reference":"Patient/123"}}`
	patch := []string{"Content-Type", "application/json-patch+json"}
	for _, c := range []struct {
		method, target, body string
		hdr                  []string
		status               int
	}{
		// _id=none: the criteria match nothing, so only the refusal of the
		// criteria themselves stops the update-as-create.
		{"PUT", "/Observation?subject.name=x&_id=none", own, nil, 403},
		{"PUT", "/Observation?_filter=x&_id=none", own, nil, 403},
		{"PUT", "/Observation?identifer=x&_id=none", own, nil, 400},
		{"PATCH", "/Observation?subject.name=x&_id=none", `[{"op":"replace","path":"/status","value":"amended"}]`, patch, 403},
		{"PATCH", "/Observation?identifer=x&_id=none", `[{"op":"replace","path":"/status","value":"amended"}]`, patch, 400},
		{"DELETE", "/Observation?_filter=x&_id=none", "", nil, 403},
		{"PATCH", "/Observation/lab1", `[1]`, patch, 400},
		{"PATCH", "/Observation/lab1", `["x"]`, patch, 400},
		{"PATCH", "/Observation/lab1", `[{"op":"replace","path":"/status","value":"amended"},[]]`, patch, 400},
	} {
		h := newHarness(t, nil)
		h.store.honest = true
		r := h.do(token("patient/Observation.ud", "123"), c.method, c.target, c.body, c.hdr...)
		if r.Code != c.status {
			t.Errorf("%s %s: status %d, want %d: %s", c.method, c.target, r.Code, c.status, r.Body)
		}
		noWrite(t, h, r)
	}
	a, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	for _, status := range []int{http.StatusInternalServerError, http.StatusForbidden, http.StatusNotModified} {
		broken := recorderServer{newLeaky(), func(s *leakyFHIR, w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet {
				w.Header().Set("Content-Type", "application/fhir+json")
				w.WriteHeader(status)
				_, _ = io.WriteString(w, `{"resourceType":"OperationOutcome","issue":[]}`)
				return
			}
			s.ServeHTTP(w, r)
		}}
		r := rulesDo(t, a, broken, token("patient/Observation.ud", "123"), "DELETE", "/Observation/lab1", "")
		if r.Code != http.StatusBadGateway || len(broken.calls()) > 0 && handlerSaw(&harness{store: broken.leakyFHIR}, "DELETE") {
			t.Errorf("stored version answered %d: status %d", status, r.Code)
		}
	}
	otherType := recorderServer{newLeaky(), func(_ *leakyFHIR, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"resourceType":"Patient","id":"123"}`)
	}}
	if r := rulesDo(t, a, otherType, token("patient/Observation.c patient/Patient.r", "123"), "POST", "/Observation", own); r.Code != http.StatusForbidden {
		t.Errorf("an answer of another type: status %d: %s", r.Code, r.Body)
	}
}

// TestRulesOpenPatchBodies: under an open grant a JSON Patch is passed on
// whatever its media type; only resource bodies are held to the reader.
func TestRulesOpenPatchBodies(t *testing.T) {
	for _, ct := range []string{"application/json-patch+json", "application/json", ""} {
		h := newHarness(t, nil)
		hdr := []string{"Content-Type", ct}
		r := h.do(token("system/Observation.u", ""), "PATCH", "/Observation/lab1", `[{"op":"replace","path":"/status","value":"amended"}]`, hdr...)
		if r.Code != 200 || !handlerSaw(h, "PATCH") {
			t.Errorf("Content-Type %q: status %d: %s", ct, r.Code, r.Body)
		}
	}
}

// TestRulesWithheldAndLogged: a refused stored version is in
// Decision.Withheld, and a write naming another patient (refused even
// under LiteralCompartments) is logged with the reference.
func TestRulesWithheldAndLogged(t *testing.T) {
	var d *Decision
	var logs strings.Builder
	h := newHarness(t, func(c *AuthorizeConfig) {
		c.OnDecision = func(_ *http.Request, dd *Decision, _ error) { d = dd }
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		c.LiteralCompartments = true // the compartment admits it; the write rule refuses it
	})
	r := h.do(token("patient/Observation.u", "123"), "PUT", "/Observation/o456", `{"resourceType":"Observation","id":"o456","status":"final","subject":{"reference":"Patient/123"}}`)
	if r.Code != http.StatusForbidden || d == nil || !slices.Contains(d.Withheld, "Observation/o456: outside the compartment of Patient/123") {
		t.Errorf("status %d, decision %+v", r.Code, d)
	}
	r = h.do(token("patient/Observation.c", "123"), "POST", "/Observation", `{"resourceType":"Observation","status":"final","subject":{"reference":"Patient/123"},"performer":[{"reference":"Patient/456"}]}`)
	if r.Code != http.StatusForbidden || !strings.Contains(logs.String(), "write refers to another patient") || !strings.Contains(logs.String(), "Patient/456") {
		t.Errorf("status %d, log %s", r.Code, logs.String())
	}
}

// TestRulesIfNoneExistNarrowing: If-None-Exist criteria already bound to
// the patient reach the handler as sent; unbound ones are narrowed and
// the decision says so.
func TestRulesIfNoneExistNarrowing(t *testing.T) {
	own := `{"resourceType":"Observation","status":"final","subject":{"reference":"Patient/123"}}`
	for crit, narrowed := range map[string]bool{"patient=Patient%2F123&code=x": false, "code=x": true} {
		var d *Decision
		h := newHarness(t, func(c *AuthorizeConfig) { c.OnDecision = func(_ *http.Request, dd *Decision, _ error) { d = dd } })
		r := h.do(token("patient/Observation.c", "123"), "POST", "/Observation", own, "If-None-Exist", crit)
		if r.Code != 201 || d == nil || d.Narrowed != narrowed {
			t.Fatalf("%s: status %d, decision %+v", crit, r.Code, d)
		}
		got := h.store.lastHeader().Get("If-None-Exist")
		if want := "code=x&patient=Patient%2F123"; got != want && !(got == crit && !narrowed) {
			t.Fatalf("%s: the handler got If-None-Exist %q", crit, got)
		}
	}
}

// TestRulesURLCriteriaNarrowing: conditional criteria in the URL already
// bound to the patient reach the handler as sent; unbound ones are
// narrowed and the decision says so; a criteria search the server fails
// stops the write (412).
func TestRulesURLCriteriaNarrowing(t *testing.T) {
	for target, narrowed := range map[string]bool{"/Observation?patient=Patient/123&identifier=x": false, "/Observation?identifier=x": true} {
		var d *Decision
		h := newHarness(t, func(c *AuthorizeConfig) { c.OnDecision = func(_ *http.Request, dd *Decision, _ error) { d = dd } })
		h.store.honest = true
		r := h.do(token("patient/Observation.d", "123"), "DELETE", target, "")
		if r.Code != 204 || d == nil || d.Narrowed != narrowed {
			t.Fatalf("%s: status %d, decision %+v", target, r.Code, d)
		}
		q := r.query(t, h.store)
		if _, raw, _ := strings.Cut(h.store.calls()[len(h.store.calls())-1], "?"); !strings.HasPrefix(h.store.calls()[len(h.store.calls())-1], "DELETE ") ||
			q.Has("") || len(q["patient"]) != 1 || q.Get("patient") != "Patient/123" || strings.Contains(raw, "&&") {
			t.Fatalf("%s: the handler got %v", target, h.store.calls())
		}
	}
	a, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	failing := recorderServer{newLeaky(), func(s *leakyFHIR, w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "application/fhir+json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `{"resourceType":"Bundle","type":"searchset"}`)
			return
		}
		s.ServeHTTP(w, r)
	}}
	if r := rulesDo(t, a, failing, token("patient/Observation.d", "123"), "DELETE", "/Observation?identifier=x", ""); r.Code != http.StatusPreconditionFailed || handlerSaw(&harness{store: failing.leakyFHIR}, "DELETE") {
		t.Fatalf("failed criteria search: status %d, calls %v", r.Code, failing.calls())
	}
}
