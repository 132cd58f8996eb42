package middleware

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

// TestVerifiedReadHeaders: the handler of a verified read sets its headers
// in the response's own map; a withheld answer leaves none of them (no
// ETag, Last-Modified or Location of a resource the token may not see) and
// the headers set before the handler ran come back as they were, changed
// or not; an answer let through carries the handler's headers.
func TestVerifiedReadHeaders(t *testing.T) {
	a := newHarness(t, nil).authz
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := idOf(r)
		h := w.Header()
		h.Set("Content-Type", "application/fhir+json")
		h.Set("ETag", `W/"7"`)
		h.Set("Last-Modified", "Tue, 01 Dec 2026 10:00:00 GMT")
		h.Set("Location", testBase+"/Observation/"+id+"/_history/7")
		h.Set("X-Outer", "changed by the handler")
		h.Add("Vary", "Accept")
		patient := "123"
		if id == "o456" {
			patient = "456"
		}
		_, _ = w.Write([]byte(`{"resourceType":"Observation","id":"` + id + `","subject":{"reference":"Patient/` + patient + `"}}`))
	})
	outer := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Outer", "set before the guard")
			w.Header().Add("Vary", "Origin")
			next.ServeHTTP(w, r)
		})
	}
	h := outer(withToken(token("patient/Observation.rs", "123"), a.Handler(handler)))
	for id, want := range map[string]int{"o456": http.StatusNotFound, "o123": http.StatusOK} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, testBase+"/Observation/"+id, nil))
		got := rec.Result().Header
		if rec.Code != want {
			t.Fatalf("%s: status %d, want %d", id, rec.Code, want)
		}
		if want == http.StatusOK {
			if got.Get("ETag") != `W/"7"` || got.Get("X-Outer") != "changed by the handler" || !slices.Equal(got.Values("Vary"), []string{"Origin", "Accept"}) {
				t.Errorf("%s: the answer let through lost the handler's headers: %v", id, got)
			}
			continue
		}
		for _, k := range []string{"ETag", "Last-Modified", "Location"} {
			if v := got.Get(k); v != "" {
				t.Errorf("%s: the withheld answer's %s reached the client: %q", id, k, v)
			}
		}
		if got.Get("X-Outer") != "set before the guard" || !slices.Contains(got.Values("Vary"), "Origin") || slices.Contains(got.Values("Vary"), "Accept") {
			t.Errorf("%s: the headers from before the handler were not put back: %v", id, got)
		}
	}
}
