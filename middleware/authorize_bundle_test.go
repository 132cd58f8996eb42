package middleware

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/fhirrest"
	"github.com/fhirguard/fhirguard/scope"
)

func bundleOf(typ string, entries ...string) string {
	return `{"resourceType":"Bundle","type":"` + typ + `","entry":[` + strings.Join(entries, ",") + `]}`
}

func getEntry(url string) string {
	return `{"request":{"method":"GET","url":"` + url + `"}}`
}

func writeEntry(method, url, resource string) string {
	if resource == "" {
		return `{"request":{"method":"` + method + `","url":"` + url + `"}}`
	}
	return `{"resource":` + resource + `,"request":{"method":"` + method + `","url":"` + url + `"}}`
}

// entryIDs lists, per response entry, the resource ids it carries.
func entryIDs(t *testing.T, r resp) [][]string {
	t.Helper()
	var out [][]string
	entries, _ := r.doc["entry"].([]any)
	for _, e := range entries {
		res, _ := e.(map[string]any)["resource"].(map[string]any)
		var ids []string
		if res != nil {
			ids = resp{doc: res}.ids()
		}
		out = append(out, ids)
	}
	return out
}

// TestAuthorizeBundles covers vectors A63–A65 and the batch/transaction
// rows of threat-model §5.
func TestAuthorizeBundles(t *testing.T) {
	own := `{"resourceType":"Observation","subject":{"reference":"Patient/123"}}`
	other := `{"resourceType":"Observation","subject":{"reference":"Patient/456"}}`
	runVectors(t, []vector{
		{name: "A63 batch with a refused entry", scopes: "patient/Observation.rs", patient: "123", method: "POST",
			body: bundleOf("batch", getEntry("Observation/lab1"), writeEntry("DELETE", "Observation/lab1", "")), status: 403, handler: no,
			check: func(t *testing.T, h *harness, r resp) {
				if !strings.Contains(r.Body.String(), "entry 1") || strings.Contains(r.Body.String(), "entry 0") {
					t.Fatalf("outcome does not name the refused entry: %s", r.Body)
				}
			}},
		{name: "A64 transaction with a refused entry", scopes: "patient/Observation.rs", patient: "123", method: "POST",
			body: bundleOf("transaction", getEntry("Observation/lab1"), writeEntry("DELETE", "Observation/lab1", "")), status: 403, handler: no},
		{name: "A65 transaction create without c", scopes: "patient/Observation.rs", patient: "123", method: "POST",
			body: bundleOf("transaction", writeEntry("POST", "Observation", own)), status: 403, handler: no},
		{name: "transaction create for another patient", scopes: "patient/Observation.crus", patient: "123", method: "POST",
			body: bundleOf("transaction", writeEntry("POST", "Observation", own), writeEntry("POST", "Observation", other)), status: 403, handler: no},
		{name: "transaction of own writes", scopes: "patient/Observation.cruds", patient: "123", method: "POST",
			body: bundleOf("transaction", writeEntry("POST", "Observation", own), writeEntry("DELETE", "Observation/lab1", "")), status: 200},
		{name: "transaction taking over another patient's", scopes: "patient/Observation.cruds", patient: "123", method: "POST",
			body: bundleOf("transaction", writeEntry("PUT", "Observation/o456", `{"resourceType":"Observation","id":"o456","subject":{"reference":"Patient/123"}}`)), status: 403},
		{name: "batch GET of other Patient", scopes: "patient/Patient.rs", patient: "123", method: "POST",
			body: bundleOf("batch", getEntry("Patient/456")), status: 403, handler: no},
		{name: "nested Bundle", scopes: "patient/*.cruds", patient: "123", method: "POST",
			body: bundleOf("transaction", writeEntry("POST", "Bundle", `{"resourceType":"Bundle","type":"transaction"}`)), status: 400, handler: no},
		{name: "history Bundle", scopes: "patient/*.cruds", patient: "123", method: "POST", body: bundleOf("history"), status: 400, handler: no},
		{name: "message Bundle", scopes: "patient/*.cruds", patient: "123", method: "POST", body: bundleOf("message"), status: 400, handler: no},
		{name: "system token batch passes", scopes: "system/*.cruds", method: "POST",
			body: bundleOf("batch", getEntry("Observation/o456"), writeEntry("DELETE", "Observation/lab1", "")), status: 200,
			check: func(t *testing.T, h *harness, r resp) {
				if got := entryIDs(t, r); !slices.Equal(got[0], []string{"Observation/o456"}) {
					t.Fatalf("entries %v", got)
				}
			}},
	}, nil)

	t.Run("batch reads verified per entry", func(t *testing.T) {
		h := newHarness(t, nil)
		r := h.do(token("patient/Observation.rs", "123"), "POST", "", bundleOf("batch",
			getEntry("Observation/lab1"), getEntry("Observation/o456"), getEntry("Observation?code=x")))
		if r.Code != 200 {
			t.Fatalf("status %d %s", r.Code, r.Body)
		}
		got := entryIDs(t, r)
		if len(got) != 3 || !slices.Equal(got[0], []string{"Observation/lab1"}) || got[1] != nil || !slices.Equal(got[2], own3) {
			t.Fatalf("entries %v", got)
		}
		if !strings.Contains(r.Body.String(), "404 Not Found") {
			t.Fatal("hidden entry is not answered 404")
		}
		// The search entry was narrowed in the Bundle the handler received.
		var sent struct {
			Entry []struct{ Request struct{ URL string } } `json:"entry"`
		}
		if err := json.Unmarshal([]byte(h.store.bodies[len(h.store.bodies)-1]), &sent); err != nil {
			t.Fatal(err)
		}
		if u := sent.Entry[2].Request.URL; !strings.Contains(u, "patient=Patient%2F123") || !strings.HasPrefix(u, "Observation?") {
			t.Fatalf("entry url %q", u)
		}
	})
}

// TestAuthorizeOperations covers vectors A66, A67 and the operation rows of
// threat-model §5.
func TestAuthorizeOperations(t *testing.T) {
	runVectors(t, []vector{
		{name: "A66 $everything own patient", scopes: "patient/*.rs", patient: "123", target: "/Patient/123/$everything", status: 200,
			ids: []string{"Condition/c1", "DiagnosticReport/dr1", "Encounter/e1", "Medication/m1", "Observation/abs123", "Observation/lab1", "Observation/vs1", "Patient/123", "Practitioner/9"}},
		{name: "$everything filtered by scopes", scopes: "patient/Patient.r patient/Observation.rs", patient: "123", target: "/Patient/123/$everything", status: 200,
			ids: []string{"Observation/abs123", "Observation/lab1", "Observation/vs1", "Patient/123"}},
		{name: "$everything other patient", scopes: "patient/*.rs", patient: "123", target: "/Patient/456/$everything", status: 403, handler: no},
		{name: "$everything type level", scopes: "patient/*.rs", patient: "123", target: "/Patient/$everything", status: 403, handler: no},
		{name: "A67 $validate without write grant", scopes: "patient/Observation.rs", patient: "123", method: "POST", target: "/Observation/$validate",
			body: `{"resourceType":"Parameters"}`, status: 403, handler: no},
		{name: "$validate with create grant", scopes: "patient/Observation.c", patient: "123", method: "POST", target: "/Observation/$validate",
			body: `{"resourceType":"Parameters"}`, status: 200},
		{name: "$lastn narrowed", scopes: "patient/Observation.rs", patient: "123", target: "/Observation/$lastn?code=x", status: 200, ids: own3,
			check: wantQuery("patient", "Patient/123")},
		{name: "$meta of another patient's", scopes: "patient/Observation.rs", patient: "123", target: "/Observation/o456/$meta", status: 404},
		{name: "$meta of own", scopes: "patient/Observation.rs", patient: "123", target: "/Observation/lab1/$meta", status: 200},
		{name: "$graphql", scopes: "patient/*.cruds", patient: "123", method: "POST", target: "/$graphql", body: `{"resourceType":"Parameters"}`, status: 403, handler: no},
		{name: "instance $graphql", scopes: "system/*.cruds", target: "/Patient/123/$graphql", status: 403, handler: no},
		{name: "unknown operation", scopes: "system/*.cruds", target: "/Patient/$match", status: 403, handler: no},
		{name: "$export not listed", scopes: "system/*.rs", target: "/$export", status: 403, handler: no},
	}, nil)

	t.Run("custom operation", func(t *testing.T) {
		h := newHarness(t, func(c *AuthorizeConfig) {
			c.Operations = append(DefaultOperations(), Operation{Name: "export", Levels: []fhirrest.Level{fhirrest.LevelSystem}, Permission: scope.Read | scope.Search})
		})
		if r := h.do(token("system/*.rs", ""), "GET", "/$export", ""); r.Code != 200 {
			t.Fatalf("status %d %s", r.Code, r.Body)
		}
		if r := h.do(token("system/Observation.rs", ""), "GET", "/$export", ""); r.Code != 403 {
			t.Fatalf("status %d", r.Code)
		}
		if r := h.do(token("patient/*.rs", "123"), "GET", "/$export", ""); r.Code != 403 {
			t.Fatalf("status %d", r.Code)
		}
	})

	t.Run("system-level operation without a data permission", func(t *testing.T) {
		h := newHarness(t, func(c *AuthorizeConfig) {
			c.Operations = []Operation{{Name: "ping", Levels: []fhirrest.Level{fhirrest.LevelSystem}}}
		})
		if r := h.do(token("system/Observation.rs", ""), "GET", "/$ping", ""); r.Code != 200 {
			t.Fatalf("system token: %d", r.Code)
		}
		if r := h.do(token("patient/*.cruds", "123"), "GET", "/$ping", ""); r.Code != 403 {
			t.Fatalf("patient token: %d", r.Code)
		}
		if r := h.do(token("openid fhirUser launch", ""), "GET", "/$ping", ""); r.Code != 403 {
			t.Fatalf("token without resource scopes: %d", r.Code)
		}
	})

	t.Run("bad tables", func(t *testing.T) {
		for _, ops := range [][]Operation{
			{{Name: "$x", Levels: []fhirrest.Level{fhirrest.LevelSystem}}},
			{{Name: "x"}},
			{{Name: "graphql", Levels: []fhirrest.Level{fhirrest.LevelSystem}}},
			{{Name: "x", Levels: []fhirrest.Level{fhirrest.LevelSystem}}, {Name: "x", Levels: []fhirrest.Level{fhirrest.LevelSystem}}},
			{{Name: "x", Levels: []fhirrest.Level{fhirrest.LevelType}, Types: []string{"Nope"}}},
		} {
			if _, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, Operations: ops}); err == nil {
				t.Errorf("%+v accepted", ops)
			}
		}
	})
}

// TestBundleMalformedEntry: a batch with an entry the client must fix (an
// invalid FHIR request, a body the strict reader refuses) is refused with
// 400 invalid_request, as that entry alone would be, even beside an entry
// the token may not make; a batch of well-formed entries one of which the
// token may not make stays 403, and a well-formed batch passes.
func TestBundleMalformedEntry(t *testing.T) {
	own := `{"resourceType":"Observation","subject":{"reference":"Patient/123"}}`
	dup := `{"resourceType":"Observation","subject":{"reference":"Patient/123"},"Subject":{"reference":"Patient/456"}}`
	runVectors(t, []vector{
		{name: "invalid request in a batch", scopes: "patient/Observation.crs", patient: "123", method: "POST",
			body: bundleOf("batch", getEntry("Observation/lab1"), getEntry("Observation/lab1/_history/1/extra/segments")), status: 400, handler: no,
			check: func(t *testing.T, h *harness, r resp) {
				if !strings.Contains(r.Body.String(), "entry 1") || !strings.Contains(r.Header().Get("WWW-Authenticate"), `error="invalid_request"`) {
					t.Fatalf("%s %s", r.Header().Get("WWW-Authenticate"), r.Body)
				}
			}},
		{name: "body the strict reader refuses, beside a forbidden entry", scopes: "patient/Observation.crs", patient: "123", method: "POST",
			body: bundleOf("batch", writeEntry("DELETE", "Observation/lab1", ""), writeEntry("POST", "Observation", dup)), status: 400, handler: no},
		{name: "forbidden entry only", scopes: "patient/Observation.crs", patient: "123", method: "POST",
			body: bundleOf("batch", getEntry("Observation/lab1"), writeEntry("DELETE", "Observation/lab1", "")), status: 403, handler: no},
		{name: "well-formed and allowed", scopes: "patient/Observation.crs", patient: "123", method: "POST",
			body: bundleOf("batch", getEntry("Observation/lab1"), writeEntry("POST", "Observation", own)), status: 200},
	}, nil)
}
