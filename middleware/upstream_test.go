package middleware

import (
	"net/http"
	"strings"
	"testing"
)

// TestUpstreamBaseURL: behind a reverse proxy, the FHIR server writes its
// own address (another host and path) into references. With
// UpstreamBaseURL, the own patient referenced through that address is the
// own patient (reads and writes work); another patient referenced through
// it is still another patient; and without UpstreamBaseURL such a
// reference is foreign (refused, never allowed).
func TestUpstreamBaseURL(t *testing.T) {
	const up = "http://Upstream.internal:8080/r4"
	withUpstream := func(c *AuthorizeConfig) { c.UpstreamBaseURL = up + "/" }
	seed := func(h *harness) {
		h.store.resources["Observation/up123"] = map[string]any{"resourceType": "Observation", "id": "up123", "status": "final",
			"subject": map[string]any{"reference": "http://upstream.INTERNAL:8080/r4/Patient/123"}}
		h.store.resources["Observation/up456"] = map[string]any{"resourceType": "Observation", "id": "up456", "status": "final",
			"subject": map[string]any{"reference": up + "/Patient/456"}}
	}
	obs := func(ref string) string {
		return `{"resourceType":"Observation","status":"final","subject":{"reference":"` + ref + `"}}`
	}
	tok := token("patient/Observation.cruds", "123")
	for _, tc := range []struct {
		name         string
		mod          func(*AuthorizeConfig)
		method, path string
		body         string
		want         int
	}{
		{"read own through upstream", withUpstream, http.MethodGet, "/Observation/up123", "", http.StatusOK},
		{"read other through upstream", withUpstream, http.MethodGet, "/Observation/up456", "", http.StatusNotFound},
		{"create own through upstream", withUpstream, http.MethodPost, "/Observation", obs(up + "/Patient/123"), http.StatusCreated},
		{"create other through upstream", withUpstream, http.MethodPost, "/Observation", obs(up + "/Patient/456"), http.StatusForbidden},
		{"a longer path is not the upstream", withUpstream, http.MethodPost, "/Observation", obs(up + "2/Patient/123"), http.StatusForbidden},
		{"read own without UpstreamBaseURL", nil, http.MethodGet, "/Observation/up123", "", http.StatusNotFound},
		{"create own without UpstreamBaseURL", nil, http.MethodPost, "/Observation", obs(up + "/Patient/123"), http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.mod)
			seed(h)
			r := h.do(tok, tc.method, tc.path, tc.body)
			if r.Code != tc.want {
				t.Fatalf("status %d, want %d; body %s", r.Code, tc.want, r.Body)
			}
		})
	}
	t.Run("search keeps the own and removes the other", func(t *testing.T) {
		h := newHarness(t, withUpstream)
		seed(h)
		r := h.do(tok, http.MethodGet, "/Observation", "")
		ids := strings.Join(r.ids(), " ")
		if r.Code != http.StatusOK || !strings.Contains(ids, "Observation/up123") || strings.Contains(ids, "up456") || strings.Contains(ids, "o456") {
			t.Fatalf("status %d, resources %s", r.Code, ids)
		}
	})
	for _, bad := range []string{"upstream.internal/r4", "ftp://upstream.internal/r4", "http://upstream.internal/r4?x=1", "http://u:p@upstream.internal/r4"} {
		if _, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, UpstreamBaseURL: bad}); err == nil || !strings.Contains(err.Error(), "UpstreamBaseURL") {
			t.Errorf("UpstreamBaseURL %q: error %v", bad, err)
		}
	}
}
