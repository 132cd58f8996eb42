package middleware

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
	a, err := NewAuthorizer(AuthorizeConfig{BaseURL: testBase, Logger: quietLogger()})
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
