package demotest

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/fhirguard/fhirguard/examples/internal/demo"
	"github.com/fhirguard/fhirguard/smarttest"
)

// testEncounter checks -enforce-encounter end to end: a patient token
// launched for encounter E1 sees E1's compartment and its patient's record,
// nothing recorded in E2 or outside any encounter; a token without an
// encounter, and every token of a demo without the flag, see the whole
// patient compartment as SMART specifies.
func testEncounter(t *testing.T, router demo.Router) {
	enforced := Start(t, router, "-enforce-encounter")
	plain := Start(t, router)
	required := Start(t, router, "-enforce-encounter", "-require-encounter")
	token := func(t *testing.T, s *Started, encounter string) string {
		t.Helper()
		tok, err := s.AuthServer().MintToken(smarttest.TokenOptions{Scopes: "launch/patient patient/*.cruds", Patient: "123", Encounter: encounter})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	ids := func(t *testing.T, a answer) []string {
		t.Helper()
		var b struct {
			Entry []struct {
				Resource struct{ ResourceType, ID string }
				Search   struct{ Mode string }
			}
		}
		if a.code != 200 || json.Unmarshal(a.body, &b) != nil {
			t.Fatalf("search: %d %.300s", a.code, a.body)
		}
		var out []string
		for _, e := range b.Entry {
			if e.Search.Mode != "include" {
				out = append(out, e.Resource.ResourceType+"/"+e.Resource.ID)
			}
		}
		slices.Sort(out)
		return out
	}
	t.Run("held to the encounter", func(t *testing.T) {
		h := newHardening(t, enforced)
		tok := token(t, enforced, "E1")
		for path, want := range map[string]int{
			"/Observation/lab1": 200, "/Observation/vs1": 200, "/Condition/c2": 200, "/Encounter/E1": 200, "/Patient/123": 200,
			"/Practitioner/9":   200, // a shared type
			"/Observation/lab2": 404, "/Encounter/E2": 404, "/Condition/c1": 404, "/AllergyIntolerance/a1": 404,
			"/Observation/o456": 404, "/Observation/lab2/_history": 404, "/Observation/lab2/_history?_count=0": 404,
		} {
			if a := h.send(t, "GET", path, tok, "", ""); a.code != want {
				t.Errorf("%s: %d, want %d: %.200s", path, a.code, want, a.body)
			}
		}
		if got := ids(t, h.send(t, "GET", "/Observation", tok, "", "")); !slices.Equal(got, []string{"Observation/lab1", "Observation/vs1"}) {
			t.Errorf("search: %v", got)
		}
		if got := ids(t, h.send(t, "GET", "/Encounter", tok, "", "")); !slices.Equal(got, []string{"Encounter/E1"}) {
			t.Errorf("encounters: %v", got)
		}
		for _, id := range ids(t, h.send(t, "GET", "/Patient/123/$everything?_count=1000", tok, "", "")) {
			if slices.Contains([]string{"Observation/lab2", "Encounter/E2", "Condition/c1", "AllergyIntolerance/a1"}, id) {
				t.Errorf("$everything holds %s", id)
			}
		}
		var c struct{ Total int }
		if a := h.send(t, "GET", "/Observation?_summary=count", tok, "", ""); a.code != 200 || json.Unmarshal(a.body, &c) != nil || c.Total != 2 {
			t.Errorf("count: %d %.200s", a.code, a.body)
		}
		if a := h.send(t, "GET", "/AllergyIntolerance", tok, "", ""); a.code != 403 {
			t.Errorf("search outside the encounter compartment: %d", a.code)
		}
		before := h.state(t, "Observation/lab2")
		body := obs("", "Patient/123", `,"encounter":{"reference":"Encounter/E2"}`)
		if a := h.send(t, "POST", "/Observation", tok, fhirJSON, body); a.code != 403 {
			t.Errorf("create in another encounter: %d %.200s", a.code, a.body)
		}
		if a := h.send(t, "DELETE", "/Observation/lab2", tok, "", ""); a.code != 404 && a.code != 403 {
			t.Errorf("delete in another encounter: %d %.200s", a.code, a.body)
		}
		h.unchanged(t, before)
		body = obs("", "Patient/123", `,"encounter":{"reference":"Encounter/E1"}`)
		if a := h.send(t, "POST", "/Observation", tok, fhirJSON, body); a.code != 201 {
			t.Errorf("create in the encounter: %d %.200s", a.code, a.body)
		}
	})
	t.Run("token without an encounter", func(t *testing.T) {
		h := newHardening(t, enforced)
		if a := h.send(t, "GET", "/Observation/lab2", token(t, enforced, ""), "", ""); a.code != 200 {
			t.Errorf("unaffected: %d", a.code)
		}
		hr := newHardening(t, required)
		if a := hr.send(t, "GET", "/Observation/lab1", token(t, required, ""), "", ""); a.code != 403 {
			t.Errorf("-require-encounter: %d", a.code)
		}
		if a := hr.send(t, "GET", "/Observation/lab1", token(t, required, "E1"), "", ""); a.code != 200 {
			t.Errorf("-require-encounter with an encounter: %d", a.code)
		}
	})
	t.Run("off by default", func(t *testing.T) {
		h := newHardening(t, plain)
		if a := h.send(t, "GET", "/Observation/lab2", token(t, plain, "E1"), "", ""); a.code != 200 {
			t.Errorf("encounter context restricted without the flag: %d", a.code)
		}
	})
}
