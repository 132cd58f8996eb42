package middleware

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/fhirrest"
	"github.com/fhirguard/fhirguard/scope"
)

// encounterFixtures are added to the leaky server for the encounter tests:
// two encounters of Patient/123 and data recorded in each.
var encounterFixtures = []string{
	`{"resourceType":"Encounter","id":"e1","status":"finished","subject":{"reference":"Patient/123"}}`,
	`{"resourceType":"Encounter","id":"e2","status":"finished","subject":{"reference":"Patient/123"}}`,
	`{"resourceType":"Observation","id":"in-e1","status":"final","subject":{"reference":"Patient/123"},"encounter":{"reference":"Encounter/e1"}}`,
	`{"resourceType":"Observation","id":"in-e2","status":"final","subject":{"reference":"Patient/123"},"encounter":{"reference":"Encounter/e2"}}`,
	`{"resourceType":"Condition","id":"cond-e2","subject":{"reference":"Patient/123"},"encounter":{"reference":"https://ehr.example.org/fhir/Encounter/e2"}}`,
	`{"resourceType":"AllergyIntolerance","id":"allergy123","patient":{"reference":"Patient/123"}}`,
}

func encounterHarness(t *testing.T, mod func(*AuthorizeConfig)) *harness {
	t.Helper()
	h := newHarness(t, mod)
	for _, s := range encounterFixtures {
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		h.store.resources[m["resourceType"].(string)+"/"+m["id"].(string)] = m
	}
	return h
}

func encounterToken(scopes, encounter string) *Token {
	tok := token(scopes, "123")
	tok.Encounter = encounter
	return tok
}

// TestEnforceEncounter: with EnforceEncounter a token launched for one
// encounter sees that encounter's compartment (and its patient's record),
// for reads, searches, includes, history, writes, Bundles and operations;
// without it, or for a token without an encounter, nothing changes.
func TestEnforceEncounter(t *testing.T) {
	enforce := func(c *AuthorizeConfig) { c.EnforceEncounter = true }
	require := func(c *AuthorizeConfig) { c.EnforceEncounter, c.RequireEncounter = true, true }
	all := "patient/*.cruds"
	type tc struct {
		name, scopes, encounter, method, target, body string
		mod                                           func(*AuthorizeConfig)
		status                                        int
		ids                                           []string
		handlerQuery                                  []string // parameters the handler must have seen
	}
	// Shared types (Medication, Practitioner) stay readable, as without
	// an encounter.
	withShared := []string{"Encounter/e1", "Medication/m1", "Observation/in-e1", "Patient/123", "Practitioner/9"}
	absent := encounterHarness(t, enforce).do(encounterToken(all, "e1"), "GET", "/Observation/nope", "")
	cases := []tc{
		{name: "read inside the encounter", scopes: all, encounter: "e1", target: "/Observation/in-e1", mod: enforce, status: 200},
		{name: "read in another encounter", scopes: all, encounter: "e1", target: "/Observation/in-e2", mod: enforce, status: absent.Code},
		{name: "read without an encounter link", scopes: all, encounter: "e1", target: "/Observation/lab1", mod: enforce, status: absent.Code},
		{name: "absolute encounter reference", scopes: all, encounter: "e2", target: "/Condition/cond-e2", mod: enforce, status: 200},
		{name: "absolute reference, other encounter", scopes: all, encounter: "e1", target: "/Condition/cond-e2", mod: enforce, status: absent.Code},
		{name: "the encounter itself", scopes: all, encounter: "e1", target: "/Encounter/e1", mod: enforce, status: 200},
		{name: "another encounter", scopes: all, encounter: "e1", target: "/Encounter/e2", mod: enforce, status: absent.Code},
		{name: "the patient's own record", scopes: all, encounter: "e1", target: "/Patient/123", mod: enforce, status: 200},
		{name: "a type outside the encounter compartment", scopes: all, encounter: "e1", target: "/AllergyIntolerance/allergy123", mod: enforce, status: absent.Code},
		{name: "another patient still refused", scopes: all, encounter: "e1", target: "/Observation/o456", mod: enforce, status: absent.Code},
		{name: "search narrowed on both", scopes: all, encounter: "e1", target: "/Observation", mod: enforce, status: 200,
			ids: []string{"Observation/in-e1"}, handlerQuery: []string{"patient=Patient%2F123", "encounter=Encounter%2Fe1"}},
		{name: "search of encounters", scopes: all, encounter: "e1", target: "/Encounter", mod: enforce, status: 200,
			ids: []string{"Encounter/e1"}, handlerQuery: []string{"_id=e1"}},
		{name: "search outside the encounter compartment", scopes: all, encounter: "e1", target: "/AllergyIntolerance", mod: enforce, status: 403},
		{name: "compartment search narrowed", scopes: all, encounter: "e1", target: "/Patient/123/Observation", mod: enforce, status: 200,
			ids: []string{"Observation/in-e1"}, handlerQuery: []string{"encounter=Encounter%2Fe1"}},
		{name: "every type of the compartment", scopes: all, encounter: "e1", target: "/Patient/123/*", mod: enforce, status: 200,
			ids: withShared},
		{name: "$everything", scopes: all, encounter: "e1", target: "/Patient/123/$everything", mod: enforce, status: 200,
			ids: withShared},
		{name: "includes held to the encounter", scopes: all, encounter: "e1", target: "/Observation?_include=Observation:encounter", mod: enforce, status: 200,
			ids: withShared},
		{name: "history of another encounter's data", scopes: all, encounter: "e1", target: "/Observation/in-e2/_history", mod: enforce, status: 404},
		{name: "count of the encounter's data", scopes: all, encounter: "e1", target: "/Observation?_summary=count", mod: enforce, status: 200},
		{name: "create inside the encounter", scopes: all, encounter: "e1", method: "POST", target: "/Observation", mod: enforce, status: 201,
			body: `{"resourceType":"Observation","status":"final","subject":{"reference":"Patient/123"},"encounter":{"reference":"Encounter/e1"}}`},
		{name: "create in another encounter", scopes: all, encounter: "e1", method: "POST", target: "/Observation", mod: enforce, status: 403,
			body: `{"resourceType":"Observation","status":"final","subject":{"reference":"Patient/123"},"encounter":{"reference":"Encounter/e2"}}`},
		{name: "create without an encounter", scopes: all, encounter: "e1", method: "POST", target: "/Observation", mod: enforce, status: 403,
			body: `{"resourceType":"Observation","status":"final","subject":{"reference":"Patient/123"}}`},
		{name: "update of another encounter's data", scopes: all, encounter: "e1", method: "PUT", target: "/Observation/in-e2", mod: enforce, status: 403,
			body: `{"resourceType":"Observation","id":"in-e2","status":"final","subject":{"reference":"Patient/123"},"encounter":{"reference":"Encounter/e1"}}`},
		{name: "delete of another encounter's data", scopes: all, encounter: "e1", method: "DELETE", target: "/Observation/in-e2", mod: enforce, status: absent.Code},
		{name: "batch read of another encounter's data", scopes: all, encounter: "e1", method: "POST", target: "/", mod: enforce, status: 200,
			body: `{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Observation/in-e2"}},{"request":{"method":"GET","url":"Observation/in-e1"}}]}`},
		{name: "token without an encounter: unaffected", scopes: all, target: "/Observation/lab1", mod: enforce, status: 200},
		{name: "token without an encounter: refused when required", scopes: all, target: "/Observation/lab1", mod: require, status: 403},
		{name: "malformed encounter id: refused", scopes: all, encounter: "e 1", target: "/Observation/in-e1", mod: enforce, status: 403},
		{name: "off by default (SMART: context, not restriction)", scopes: all, encounter: "e1", target: "/Observation/in-e2", status: 200},
		{name: "system token unaffected", scopes: "system/Observation.rs", encounter: "e1", target: "/Observation/in-e2", mod: enforce, status: 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := encounterHarness(t, c.mod)
			method := c.method
			if method == "" {
				method = "GET"
			}
			tok := encounterToken(c.scopes, c.encounter)
			if strings.HasPrefix(c.scopes, "system/") {
				tok.Patient = ""
			}
			r := h.do(tok, method, c.target, c.body)
			if r.Code != c.status {
				t.Fatalf("status %d, want %d: %s", r.Code, c.status, r.Body)
			}
			if c.status == absent.Code && c.status != 200 && r.Body.String() != absent.Body.String() {
				t.Fatalf("hidden answer %s differs from absent %s", r.Body, absent.Body)
			}
			if c.ids != nil {
				got := r.ids()
				if strings.Join(got, ",") != strings.Join(c.ids, ",") {
					t.Fatalf("ids %v, want %v", got, c.ids)
				}
			}
			if len(c.handlerQuery) > 0 {
				calls := h.store.calls()
				last := calls[len(calls)-1]
				for _, p := range c.handlerQuery {
					if !strings.Contains(last, p) {
						t.Fatalf("handler saw %s, missing %s", last, p)
					}
				}
			}
			out := r.Body.String()
			if r.Code < 300 && c.mod != nil && c.encounter == "e1" && !strings.HasPrefix(c.scopes, "system/") {
				for _, other := range []string{`"in-e2"`, `"cond-e2"`, `"allergy123"`, `"lab1"`} {
					if strings.Contains(out, other) {
						t.Fatalf("leaked %s: %s", other, out)
					}
				}
			}
		})
	}
	t.Run("count equals the visible matches", func(t *testing.T) {
		h := encounterHarness(t, enforce)
		r := h.do(encounterToken(all, "e1"), "GET", "/Observation?_summary=count", "")
		if r.total() != 1 {
			t.Fatalf("count %s", r.Body)
		}
	})
	t.Run("RequireEncounter needs EnforceEncounter", func(t *testing.T) {
		if _, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, RequireEncounter: true}); err == nil {
			t.Fatal("accepted")
		}
	})
	t.Run("the decision says which compartment withheld", func(t *testing.T) {
		var got *Decision
		h := encounterHarness(t, func(c *AuthorizeConfig) {
			c.EnforceEncounter = true
			c.OnDecision = func(_ *http.Request, d *Decision, _ error) { got = d }
		})
		if r := h.do(encounterToken(all, "e1"), "GET", "/Observation", ""); r.Code != 200 {
			t.Fatalf("status %d", r.Code)
		}
		if got == nil || !slices.Contains(got.Withheld, "Observation/in-e2: outside the compartment of Encounter/e1") {
			t.Fatalf("decision %+v", got)
		}
	})
}

// FuzzAuthorizeNoLeakEncounter sends arbitrary requests with a token held
// to Patient/123 and Encounter/e1 through Authorize with EnforceEncounter:
// no answer carries data of another encounter or of no encounter, and no
// write for them reaches the handler.
func FuzzAuthorizeNoLeakEncounter(f *testing.F) {
	for _, seed := range []struct{ method, target, body, scopes string }{
		{"GET", "/Observation/in-e2", "", "patient/*.rs"},
		{"GET", "/Observation?encounter=Encounter/e2", "", "patient/*.rs"},
		{"GET", "/Patient/123/*", "", "patient/*.rs"},
		{"GET", "/Patient/123/$everything", "", "patient/*.rs"},
		{"GET", "/Observation?_include=*&_revinclude=*", "", "patient/*.rs"},
		{"GET", "/Condition?_summary=count", "", "patient/*.rs"},
		{"POST", "/", `{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Observation/in-e2"}},{"request":{"method":"GET","url":"Condition?code=x"}}]}`, "patient/*.rs"},
		{"PUT", "/Observation/in-e2", `{"resourceType":"Observation","id":"in-e2","subject":{"reference":"Patient/123"},"encounter":{"reference":"Encounter/e1"}}`, "patient/*.cruds"},
		{"DELETE", "/Observation?encounter=Encounter/e2", "", "patient/*.cruds"},
		{"GET", "/AllergyIntolerance?_count=0", "", "user/*.rs"},
	} {
		f.Add(seed.method, seed.target, seed.body, seed.scopes)
	}
	f.Fuzz(func(t *testing.T, method, target, body, scopes string) {
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \t\r\n#") {
			return
		}
		h := encounterHarness(t, func(c *AuthorizeConfig) { c.EnforceEncounter = true })
		r, err := http.NewRequest(method, testBase+target, strings.NewReader(body))
		if err != nil {
			return
		}
		if body != "" {
			r.Header.Set("Content-Type", "application/fhir+json")
		}
		tok := encounterToken(scopes, "e1")
		tok.FHIRUser = "Patient/123"
		rec := httptest.NewRecorder()
		withToken(tok, h.authz.Handler(h.store)).ServeHTTP(rec, r)
		if rec.Code >= 200 && rec.Code < 300 {
			out := rec.Body.String()
			for _, other := range []string{`"in-e2"`, `"cond-e2"`, `"allergy123"`, `"lab1"`, `"vs1"`, `"e2"`, `"o456"`, `"456"`} {
				if strings.Contains(out, other) {
					t.Fatalf("%s %s with %q leaked %s: %s", method, target, scopes, other, out)
				}
			}
		}
		for i, c := range h.store.calls() {
			if strings.HasPrefix(c, "PUT ") || strings.HasPrefix(c, "PATCH ") || strings.HasPrefix(c, "POST ") {
				if b := h.store.bodies[i]; strings.Contains(b, "Encounter/e2") || strings.Contains(b, "Patient/456") {
					t.Fatalf("write outside the encounter reached the handler: %s %s", c, b)
				}
			}
			if strings.HasPrefix(c, "DELETE /fhir/Observation/in-e2") || strings.HasPrefix(c, "DELETE /fhir/Condition/cond-e2") {
				t.Fatalf("delete outside the encounter reached the handler: %s", c)
			}
		}
	})
}

// TestEnforceEncounterUnreadableClaim: an encounter claim that could not
// be read (the claim parser dropped it) is not "no encounter": under
// EnforceEncounter the token's patient-held grants are refused, instead of
// seeing every encounter.
func TestEnforceEncounterUnreadableClaim(t *testing.T) {
	unreadable := func(scopes string) *Token {
		tok := encounterToken(scopes, "")
		tok.badEncounter = true
		tok.unreadable = []string{"encounter: a number, not a string"}
		return tok
	}
	h := encounterHarness(t, func(c *AuthorizeConfig) { c.EnforceEncounter = true })
	if r := h.do(unreadable("patient/*.rs"), "GET", "/Observation/in-e2", ""); r.Code != 403 || !strings.Contains(r.Body.String(), "encounter: a number") {
		t.Fatalf("unreadable encounter: %d %s", r.Code, r.Body)
	}
	if calls := h.store.calls(); len(calls) != 0 {
		t.Fatalf("the handler was asked: %v", calls)
	}
	if r := h.do(encounterToken("patient/*.rs", ""), "GET", "/Observation/in-e2", ""); r.Code != 200 {
		t.Fatalf("no encounter claim at all: %d", r.Code)
	}
	if r := encounterHarness(t, nil).do(unreadable("patient/*.rs"), "GET", "/Observation/in-e2", ""); r.Code != 200 {
		t.Fatalf("without EnforceEncounter: %d", r.Code)
	}
}

// TestEnforceEncounterSearchOperation: an operation run as a search is
// narrowed on the encounter like a search, and refused on a type outside
// the Encounter compartment.
func TestEnforceEncounterSearchOperation(t *testing.T) {
	ops := append(DefaultOperations(), Operation{Name: "find", Levels: []fhirrest.Level{fhirrest.LevelType},
		Types: []string{"AllergyIntolerance", "Observation"}, Permission: scope.Search, Search: true, Response: ResponseBundle})
	h := encounterHarness(t, func(c *AuthorizeConfig) { c.EnforceEncounter, c.Operations = true, ops })
	tok := encounterToken("patient/*.rs", "e1")
	if r := h.do(tok, "GET", "/AllergyIntolerance/$find", ""); r.Code != 403 {
		t.Fatalf("operation on a type outside the encounter: %d %s", r.Code, r.Body)
	}
	r := h.do(tok, "GET", "/Observation/$lastn", "")
	calls := h.store.calls()
	if r.Code != 200 || !strings.Contains(calls[len(calls)-1], "encounter=Encounter%2Fe1") {
		t.Fatalf("$lastn: %d, handler saw %v", r.Code, calls)
	}
}
