package middleware

import (
	"strings"
	"testing"
)

const vsCat = "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"

// TestAuthorizeGranular runs vectors A29–A35 of the SMART notes §9.2 and the
// granular-scope assertions of the ONC and US Core kits (threat model §4.3).
func TestAuthorizeGranular(t *testing.T) {
	labScope := "patient/Observation.rs?category=" + lab
	runVectors(t, []vector{
		{name: "A29 read inside the constraint", scopes: labScope, patient: "123", target: "/Observation/lab1", status: 200, ids: []string{"Observation/lab1"}},
		{name: "A30 read outside the constraint", scopes: labScope, patient: "123", target: "/Observation/vs1", status: 404},
		{name: "A30 read of another patient's lab", scopes: labScope, patient: "123", target: "/Observation/o456", status: 404},
		{name: "A31 search filtered and narrowed", scopes: labScope, patient: "123", target: "/Observation?patient=123", status: 200, ids: []string{"Observation/lab1"},
			check: wantQuery("category", lab)},
		// A32: the granted category is ANDed to the query, so a server answers
		// nothing; the leaky server ignores the query, and verification still
		// keeps every vital sign out.
		{name: "A32 search for another category", scopes: labScope, patient: "123", target: "/Observation?patient=123&category=" + vsCat, status: 200,
			ids: []string{"Observation/lab1"}, check: wantQuery("category", lab)},
		{name: "A33 union of constraints", scopes: labScope + " patient/Observation.rs?category=" + vsCat, patient: "123", target: "/Observation/vs1", status: 200},
		{name: "A33 union search narrowed as an OR list", scopes: labScope + " patient/Observation.rs?category=" + vsCat, patient: "123", target: "/Observation", status: 200,
			ids: []string{"Observation/lab1", "Observation/vs1"}, check: wantQuery("category", lab+","+vsCat)},
		{name: "A34 unconstrained scope wins", scopes: labScope + " patient/Observation.rs", patient: "123", target: "/Observation/vs1", status: 200},
		{name: "A34 unconstrained search not narrowed", scopes: labScope + " patient/Observation.rs", patient: "123", target: "/Observation", status: 200,
			ids: own3, check: func(t *testing.T, h *harness, r resp) {
				if q := r.query(t, h.store); q.Has("category") {
					t.Fatalf("narrowed by category: %v", q)
				}
			}},
		{name: "A35 search letter unconstrained", scopes: "patient/Observation.r?category=" + lab + " patient/Observation.s", patient: "123", target: "/Observation?patient=123", status: 200, ids: own3},
		{name: "A35 read letter constrained", scopes: "patient/Observation.r?category=" + lab + " patient/Observation.s", patient: "123", target: "/Observation/vs1", status: 404},
		{name: "code system only", scopes: "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|", patient: "123", target: "/Observation/vs1", status: 200},
		{name: "code without system", scopes: "patient/Observation.rs?category=laboratory", patient: "123", target: "/Observation/lab1", status: 200},
		{name: "wrong system", scopes: "patient/Observation.rs?category=http://example.org/other|laboratory", patient: "123", target: "/Observation/lab1", status: 404},
		{name: "no-system form does not match a coded system", scopes: "patient/Observation.rs?category=|laboratory", patient: "123", target: "/Observation/lab1", status: 404},
		{name: "AND inside one scope", scopes: "patient/Observation.rs?category=" + lab + "&code=http://loinc.org|2339-0", patient: "123", target: "/Observation/lab1", status: 200},
		{name: "AND inside one scope, one fails", scopes: "patient/Observation.rs?category=" + lab + "&code=http://loinc.org|9999-9", patient: "123", target: "/Observation/lab1", status: 404},
		{name: "comma list as OR", scopes: "patient/Observation.rs?category=" + lab + "," + vsCat, patient: "123", target: "/Observation/vs1", status: 200},
		{name: "status constraint", scopes: "patient/Observation.rs?status=final", patient: "123", target: "/Observation/lab1", status: 200},
		{name: "modifier grants nothing", scopes: "patient/Observation.rs?code:in=http://valueset.example.org/ValueSet/diabetes-codes", patient: "123", target: "/Observation/lab1", status: 404},
		{name: "modifier search refused", scopes: "patient/Observation.rs?code:in=http://valueset.example.org/ValueSet/diabetes-codes", patient: "123", target: "/Observation", status: 403, handler: no},
		{name: "chain grants nothing", scopes: "patient/Observation.rs?patient.birthdate=1990", patient: "123", target: "/Observation/lab1", status: 404},
		{name: "unknown parameter grants nothing", scopes: "patient/Observation.rs?nonsense=1", patient: "123", target: "/Observation/lab1", status: 404},
		{name: "granular create inside", scopes: "patient/Observation.c?category=" + lab, patient: "123", method: "POST", target: "/Observation",
			body: `{"resourceType":"Observation","subject":{"reference":"Patient/123"},"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}]}`, status: 201},
		{name: "granular create outside", scopes: "patient/Observation.c?category=" + lab, patient: "123", method: "POST", target: "/Observation",
			body: `{"resourceType":"Observation","subject":{"reference":"Patient/123"},"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}]}`, status: 403, handler: no},
		{name: "granular update cannot change the category", scopes: "patient/Observation.u?category=" + lab, patient: "123", method: "PATCH", target: "/Observation/lab1",
			body: `[{"op":"replace","path":"/category/0/coding/0/code","value":"vital-signs"}]`, hdr: []string{"Content-Type", "application/json-patch+json"}, status: 403},
		{name: "granular conditional delete refused", scopes: "patient/Observation.d?category=" + lab, patient: "123", method: "DELETE", target: "/Observation?code=x", status: 403, handler: no},
		{name: "granular _summary=count counts the granted category", scopes: labScope, patient: "123", target: "/Observation?_summary=count", status: 200,
			check: func(t *testing.T, _ *harness, r resp) {
				if r.total() != 1 {
					t.Fatalf("count %s", r.Body)
				}
			}},
		{name: "granular _elements keeps category", scopes: labScope, patient: "123", target: "/Observation?_elements=code", status: 200, ids: []string{"Observation/lab1"},
			check: func(t *testing.T, h *harness, r resp) {
				if q := r.query(t, h.store); !strings.Contains(strings.Join(q["_elements"], ","), "category") {
					t.Fatalf("_elements = %v", q["_elements"])
				}
			}},
		{name: "system granular", scopes: "system/Observation.rs?category=" + lab, target: "/Observation", status: 200,
			ids: []string{"Observation/lab1", "Observation/o456"}},
		{name: "user granular read outside", scopes: "user/Observation.rs?category=" + lab, target: "/Observation/vs1", status: 404},
		{name: "ONC Condition problem list", scopes: "patient/Condition.rs?category=http://terminology.hl7.org/CodeSystem/condition-category|problem-list-item", patient: "123",
			target: "/Condition/c1", status: 404},
		{name: "wildcard with constraint", scopes: "patient/*.rs?_security=http://terminology.hl7.org/CodeSystem/v3-Confidentiality|N", patient: "123", target: "/Condition/c1", status: 404},
	}, nil)

	t.Run("StrictGranularSearch", func(t *testing.T) {
		h := newHarness(t, func(c *AuthorizeConfig) { c.StrictGranularSearch = true })
		tok := token(labScope, "123")
		if r := h.do(tok, "GET", "/Observation?patient=123", ""); r.Code != 403 {
			t.Fatalf("search outside the constraint: %d", r.Code)
		}
		if r := h.do(tok, "GET", "/Observation?patient=123&category="+lab, ""); r.Code != 200 || len(r.ids()) != 1 {
			t.Fatalf("search inside the constraint: %d %v", r.Code, r.ids())
		}
	})
}
