package gateway

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/middleware"
	"github.com/fhirguard/fhirguard/smarttest"
)

// TestGuardedUpstream: middleware.New in front of gateway.New in front of
// an upstream that writes its own address everywhere. No upstream address
// reaches the client; a patient token reads and searches its own patient's
// data (references written with the upstream's absolute address
// included), writes with such references, and is refused another
// patient's.
func TestGuardedUpstream(t *testing.T) {
	f := newFakeFHIR(t)
	as, err := smarttest.New(smarttest.Config{FHIRBase: public})
	if err != nil {
		t.Fatal(err)
	}
	defer as.Close()
	guardFor := func(upstreamBase string) http.Handler {
		g, err := middleware.New(middleware.Config{
			Authorize: middleware.AuthorizeConfig{BaseURL: public, UpstreamBaseURL: upstreamBase, Logger: quiet()},
			Auth:      middleware.AuthConfig{Issuers: []string{as.SMARTConfiguration().Issuer}, JWKS: as.JWKS(), Logger: quiet()},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(g.Close)
		return g.Handler(newTestProxy(t, f, nil))
	}
	h := guardFor(f.base)
	tok, err := as.MintToken(smarttest.TokenOptions{Scopes: "patient/Patient.rs patient/Observation.cruds", Patient: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	get := func(h http.Handler, target string) (int, map[string]any, string) {
		t.Helper()
		rec := do(t, h, http.MethodGet, public+target, "", "Authorization", "Bearer "+tok)
		noUpstream(t, f, rec)
		var doc map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &doc)
		return rec.Code, doc, rec.Body.String()
	}

	for target, want := range map[string]int{
		"/Patient/p1":        200,
		"/Observation/o1":    200, // subject: the upstream's absolute address of p1
		"/Observation/o1rel": 200,
		"/Patient/p2":        404,
		"/Observation/o2":    404,
		"/Observation/o2rel": 404,
	} {
		if code, _, body := get(h, target); code != want {
			t.Errorf("GET %s: %d, want %d: %s", target, code, want, body)
		}
	}

	code, doc, body := get(h, "/Observation")
	if code != 200 {
		t.Fatalf("search: %d %s", code, body)
	}
	var ids []string
	entries, _ := doc["entry"].([]any)
	for _, e := range entries {
		res := e.(map[string]any)["resource"].(map[string]any)
		ids = append(ids, res["id"].(string))
		if fu := e.(map[string]any)["fullUrl"]; !strings.HasPrefix(fu.(string), public+"/Observation/") {
			t.Errorf("fullUrl %v", fu)
		}
	}
	sort.Strings(ids)
	if !slices.Equal(ids, []string{"o1", "o1rel"}) {
		t.Errorf("search found %v", ids)
	}
	r, _ := f.last(t)
	if q := r.URL.Query(); q.Get("patient") == "" && q.Get("subject") == "" {
		t.Errorf("the search reached the upstream without narrowing: %s", r.URL.RawQuery)
	}

	// Writes whose references use the upstream's address.
	obs := func(ref string) string {
		return `{"resourceType":"Observation","status":"final","subject":{"reference":"` + ref + `"}}`
	}
	for _, tc := range []struct {
		h    http.Handler
		body string
		want int
	}{
		{h, obs(f.base + "/Patient/p1"), http.StatusCreated},
		{h, obs(f.base + "/Patient/p2"), http.StatusForbidden},
		{h, obs(public + "/Patient/p2"), http.StatusForbidden},
		{guardFor(""), obs(f.base + "/Patient/p1"), http.StatusForbidden}, // without UpstreamBaseURL: a foreign reference
	} {
		rec := do(t, tc.h, http.MethodPost, public+"/Observation", tc.body, "Authorization", "Bearer "+tok, "Content-Type", "application/fhir+json")
		if rec.Code != tc.want {
			t.Errorf("POST %s: %d, want %d: %s", tc.body, rec.Code, tc.want, rec.Body)
		}
		noUpstream(t, f, rec)
		if rec.Code == http.StatusCreated && !strings.HasPrefix(rec.Header().Get("Location"), public+"/Observation/") {
			t.Errorf("Location %q", rec.Header().Get("Location"))
		}
	}

	// The token never reaches the upstream.
	for _, req := range f.requests {
		if req.Header.Get("Authorization") != "" {
			t.Fatalf("the upstream got the token: %s %s", req.Method, req.URL)
		}
	}
}
