package demotest

import (
	"net/url"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/smarttest"
)

// testTokenEdges checks end to end how the demo reads granted scopes and
// where it accepts a token: a scope string splits on the ASCII space only,
// and a token travels in the Authorization header alone.
func (h *hardening) testTokenEdges(t *testing.T, s *Started) {
	mint := func(t *testing.T, o smarttest.TokenOptions) string {
		t.Helper()
		tok, err := s.AuthServer().MintToken(o)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	t.Run("scopes split on the ASCII space only", func(t *testing.T) {
		for _, sep := range []string{"\t", "\n", "\u00a0", "\u2003", "\r\n", "\v", "\f"} {
			tok := mint(t, smarttest.TokenOptions{Scopes: "patient/Observation.rs" + sep + "patient/Condition.rs", Patient: "123"})
			for _, path := range []string{"/Observation?code=x", "/Condition?code=x"} {
				if a := h.send(t, "GET", path, tok, "", ""); a.code != 403 {
					t.Errorf("separator %q, %s: %d %.200s", sep, path, a.code, a.body)
				}
			}
		}
		for _, scopes := range []string{"patient/Observation.rs patient/Condition.rs", "  patient/Observation.rs   patient/Condition.rs "} {
			tok := mint(t, smarttest.TokenOptions{Scopes: scopes, Patient: "123"})
			for _, path := range []string{"/Observation?code=x", "/Condition?code=x"} {
				if a := h.send(t, "GET", path, tok, "", ""); a.code != 200 {
					t.Errorf("scopes %q, %s: %d %.200s", scopes, path, a.code, a.body)
				}
			}
		}
	})
	t.Run("one token method per request", func(t *testing.T) {
		for _, q := range []string{"access_token=", "ACCESS_TOKEN=", "Access%5FToken="} {
			a := h.send(t, "GET", "/Observation?code=x&"+q+url.QueryEscape(h.patient), h.patient, "", "")
			if a.code != 400 || strings.Contains(string(a.body), h.patient) {
				t.Errorf("header and %s: %d %.200s", q, a.code, a.body)
			}
			a = h.send(t, "GET", "/Observation?code=x&"+q+url.QueryEscape(h.patient), "", "", "")
			if a.code != 401 {
				t.Errorf("%s alone: %d %.200s", q, a.code, a.body)
			}
		}
		a := h.send(t, "POST", "/Observation/_search", h.patient, "application/x-www-form-urlencoded", "code=x&access_token="+url.QueryEscape(h.patient))
		if a.code != 400 {
			t.Errorf("header and form access_token: %d %.200s", a.code, a.body)
		}
		if a := h.send(t, "POST", "/Observation/_search", h.patient, "application/x-www-form-urlencoded", "code=x"); a.code != 200 {
			t.Errorf("a form search with the header: %d %.200s", a.code, a.body)
		}
	})
}
