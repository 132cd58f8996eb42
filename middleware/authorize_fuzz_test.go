package middleware

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/internal/lenientfhir"
)

// FuzzAuthorizeNoLeak sends arbitrary requests through Authorize to the
// leaky server with a token held to Patient/123: whatever the request, no
// response may carry another patient's resources, and the handler must
// never receive a write for them.
func FuzzAuthorizeNoLeak(f *testing.F) {
	for _, seed := range []struct{ method, target, body, scopes string }{
		{"GET", "/Observation/o456", "", "patient/*.cruds"},
		{"GET", "/Observation?patient=456", "", "patient/Observation.rs"},
		{"GET", "/Patient/456/*", "", "patient/*.rs"},
		{"GET", "/Patient/123/$everything", "", "patient/*.rs"},
		{"GET", "/Observation?_include=*&_revinclude=*", "", "patient/*.rs"},
		{"HEAD", "/Condition/c456", "", "patient/*.rs"},
		{"POST", "/", `{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Observation/o456"}},{"request":{"method":"GET","url":"Observation?code=x"}}]}`, "patient/*.rs"},
		{"PUT", "/Observation/o456", `{"resourceType":"Observation","id":"o456","subject":{"reference":"Patient/123"}}`, "patient/*.cruds"},
		{"DELETE", "/Observation?patient=456", "", "patient/*.cruds"},
		{"GET", "/Observation?_summary=count", "", "user/*.rs"},
		{"GET", "/Observation?_elements=id", "", "patient/*.rs"},
		{"POST", "/Observation/_search", "patient=456", "patient/*.rs"},
	} {
		f.Add(seed.method, seed.target, seed.body, seed.scopes)
	}
	a, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, Logger: quietLogger()})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, target, body, scopes string) {
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \t\r\n#") {
			return
		}
		r, err := http.NewRequest(method, testBase+target, strings.NewReader(body))
		if err != nil {
			return
		}
		if strings.HasPrefix(body, "patient=") {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else if body != "" {
			r.Header.Set("Content-Type", "application/fhir+json")
		}
		store := newLeaky()
		tok := token(scopes, "123")
		tok.FHIRUser = "Patient/123" // user grants are held to the patient too
		rec := httptest.NewRecorder()
		withToken(tok, a.Handler(store)).ServeHTTP(rec, r)
		if rec.Code >= 200 && rec.Code < 300 {
			out := rec.Body.String()
			for _, other := range []string{`"o456"`, `"c456"`, `"Patient/456"`, `"456"`, `"prov456"`, `"evil123"`, `"grp"`} {
				if strings.Contains(out, other) {
					t.Fatalf("%s %s with %q leaked %s: %s", method, target, scopes, other, out)
				}
			}
		}
		for i, c := range store.calls() {
			if strings.HasPrefix(c, "PUT ") || strings.HasPrefix(c, "PATCH ") || strings.HasPrefix(c, "POST ") {
				if b := store.bodies[i]; strings.Contains(b, "Patient/456") {
					t.Fatalf("write for another patient reached the handler: %s %s", c, b)
				}
			}
			if strings.HasPrefix(c, "DELETE /fhir/Observation/o456") || strings.HasPrefix(c, "DELETE /fhir/Condition/c456") {
				t.Fatalf("delete of another patient's resource reached the handler: %s", c)
			}
		}
	})
}

// FuzzAuthorizeNoLeakWrites runs a short script of requests (up to four,
// separated by blank lines: a request line "METHOD /path", an optional
// "Content-Type: …" line, then the body) with a token held to Patient/123
// through Authorize to the lenient server (internal/lenientfhir, which
// decodes bodies case-insensitively like a typical Go server). Afterwards
// the store, read directly as a system token would, must show that no
// resource linked to another patient was created, changed or deleted.
func FuzzAuthorizeNoLeakWrites(f *testing.F) {
	for _, seed := range []struct{ script, scopes string }{
		{"POST /Observation\n" + `{"resourceType":"Observation","subject":{"reference":"Patient/123"}}`, "patient/*.cruds"},
		{"PUT /Observation/o456\n" + `{"resourceType":"Observation","id":"o456","subject":{"reference":"Patient/123"}}`, "patient/*.cruds"},
		{"PUT /Observation?identifier=urn:test|none\n" + `{"resourceType":"Observation","id":"o456","subject":{"reference":"Patient/123"}}`, "patient/*.cruds"},
		{"DELETE /Observation?performer=Patient/123", "patient/*.cruds"},
		{"DELETE /Observation?identifier=urn:test|shared", "patient/*.cruds"},
		{"PUT /Observation/m456\n" + `{"resourceType":"Observation","id":"m456","subject":{"reference":"Patient/123"}}`, "patient/*.cruds"},
		{"PATCH /Observation/o123\nContent-Type: application/json-patch+json\n" + `[{"op":"add","path":"/focus","value":[{}]},{"op":"add","path":"/focus/0/reference","value":"Patient/456"}]`, "patient/*.cruds"},
		{"PATCH /Observation?identifier=urn:test|mixed\nContent-Type: application/json-patch+json\n" + `[{"op":"replace","path":"/status","value":"amended"}]`, "patient/*.cruds"},
		{"POST /\n" + `{"resourceType":"Bundle","type":"transaction","Entry":[{"request":{"method":"DELETE","url":"Observation/o456"}}]}`, "patient/*.cruds"},
		{"POST /\n" + `{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}},{"resource":{"resourceType":"Observation","subject":{"reference":"urn:uuid:1"}},"request":{"method":"POST","url":"Observation"}}]}`, "patient/*.cruds"},
		{"POST /Observation\n" + `{"resourceType":"Observation","subject":{"reference":"Patient/123"},"focus":[{"Reference":"Patient/456"}]}` + "\n\nDELETE /Observation/o123", "patient/*.cruds"},
		{"PUT /Patient/123\n" + `{"resourceType":"Patient","id":"123","link":[{"other":{"reference":"HTTPS://EHR.EXAMPLE.ORG/fhir/Patient/456"}}]}`, "patient/*.cruds"},
		{"POST /Patient\n" + `{"resourceType":"Patient","id":"123"}`, "user/*.cruds"},
	} {
		f.Add(seed.script, seed.scopes)
	}
	a, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, Logger: quietLogger()})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, script, scopes string) {
		srv := lenientfhir.New(testBase)
		before := srv.Snapshot()
		tok := token(scopes, "123")
		tok.FHIRUser = "Patient/123"
		for i, part := range strings.SplitN(script, "\n\n", 5) {
			if i == 4 {
				break
			}
			head, body, _ := strings.Cut(part, "\n")
			method, target, ok := strings.Cut(head, " ")
			if !ok || !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \t\r#") {
				continue
			}
			ct := "application/fhir+json"
			if v, ok := strings.CutPrefix(body, "Content-Type: "); ok {
				ct, body, _ = strings.Cut(v, "\n")
			}
			r, err := http.NewRequest(method, testBase+target, strings.NewReader(body))
			if err != nil {
				continue
			}
			if body != "" {
				r.Header.Set("Content-Type", ct)
			}
			withToken(tok, a.Handler(srv)).ServeHTTP(httptest.NewRecorder(), r)
		}
		after := srv.Snapshot()
		for key, res := range after {
			prev, existed := before[key]
			if existed && reflect.DeepEqual(prev, res) {
				continue
			}
			if ref := foreignPatient(&res); ref != "" {
				t.Fatalf("after %q (%s): %s was written and names %s", script, scopes, key, ref)
			}
			if existed {
				if ref := foreignPatient(&prev); ref != "" {
					t.Fatalf("after %q (%s): %s, linked to %s, was changed", script, scopes, key, ref)
				}
			}
		}
		for key, prev := range before {
			if _, kept := after[key]; !kept {
				if ref := foreignPatient(&prev); ref != "" {
					t.Fatalf("after %q (%s): %s, linked to %s, was deleted", script, scopes, key, ref)
				}
			}
		}
	})
}

// foreignPatient returns what links res, as a lenient server reads it, to a
// patient other than 123 ("" when nothing does): it is another Patient, or
// one of its references names another patient in any spelling, or a
// conditional reference to a Patient.
func foreignPatient(res *lenientfhir.Resource) string {
	if res.ResourceType == "Patient" && res.ID != "123" {
		return "Patient/" + res.ID
	}
	for _, ref := range res.References() {
		lower := strings.ToLower(ref)
		i := strings.LastIndex(lower, "patient")
		if i < 0 {
			continue
		}
		rest := lower[i+len("patient"):]
		if strings.HasPrefix(rest, "?") {
			return ref
		}
		if id, ok := strings.CutPrefix(rest, "/"); ok {
			id, _, _ = strings.Cut(id, "/")
			if id != "123" {
				return ref
			}
		}
	}
	return ""
}
