package middleware

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestInformationalAnswerVerified: a handler that sends an informational
// answer (103 Early Hints) before its real one gets the real one verified:
// the 1xx is not taken for the final status.
func TestInformationalAnswerVerified(t *testing.T) {
	a, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	store := newLeaky()
	hinting := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		store.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(withToken(token("patient/Observation.rs", "123"), a.Handler(hinting)))
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		res, err := http.Get(srv.URL + "/fhir" + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := get("/Observation/o456"); code != 404 || strings.Contains(body, "o456") {
		t.Fatalf("another patient's read after 103: %d %s", code, body)
	}
	code, body := get("/Observation")
	if code != 200 || strings.Contains(body, "o456") || !strings.Contains(body, "lab1") {
		t.Fatalf("search after 103: %d %s", code, body)
	}
	if code, body := get("/Observation/lab1"); code != 200 || !strings.Contains(body, "lab1") {
		t.Fatalf("own read after 103: %d %s", code, body)
	}
}

// TestCompartmentAllNeedsSearch: the matches of Patient/X/* (and of its
// count) need the search letter on their own type; a read grant shows
// nothing there, as Patient/X/Observation is refused with it.
func TestCompartmentAllNeedsSearch(t *testing.T) {
	runVectors(t, []vector{
		{name: "read grant only", scopes: "patient/Observation.r", patient: "123", target: "/Patient/123/*", status: 200, ids: []string{}},
		{name: "read grant only: count", scopes: "patient/Observation.r", patient: "123", target: "/Patient/123/*?_summary=count", status: 200,
			check: func(t *testing.T, _ *harness, r resp) {
				if r.total() != 0 {
					t.Fatalf("count %s", r.Body)
				}
			}},
		{name: "typed compartment search with a read grant", scopes: "patient/Observation.r", patient: "123", target: "/Patient/123/Observation", status: 403},
		{name: "search grant", scopes: "patient/Observation.s", patient: "123", target: "/Patient/123/*", status: 200,
			ids: []string{"Observation/abs123", "Observation/lab1", "Observation/vs1"}},
		{name: "read grant still reads", scopes: "patient/Observation.r", patient: "123", target: "/Observation/lab1", status: 200},
	}, nil)
}
