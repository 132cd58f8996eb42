package smarttest

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestAuthorizeRequestChecks(t *testing.T) {
	f := newFixture(t, nil)
	launch, err := f.srv.RegisterLaunch(LaunchContext{Patient: "p-9"})
	must(t, err)
	set := func(k, v string) func(url.Values) { return func(q url.Values) { q.Set(k, v) } }
	del := func(k string) func(url.Values) { return func(q url.Values) { q.Del(k) } }
	cases := []struct {
		name      string
		mod       func(url.Values)
		wantCode  bool   // a code comes back
		wantError string // error in the redirect ("" with status 400: no redirect)
		status    int
	}{
		{name: "valid", mod: func(url.Values) {}, wantCode: true, status: 302},
		{name: "aud with trailing slash", mod: set("aud", testFHIRBase+"/"), wantCode: true, status: 302},
		{name: "second registered redirect with query", mod: set("redirect_uri", "http://127.0.0.1:9999/cb?x=1"), wantCode: true, status: 302},
		{name: "PKCE missing", mod: func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, wantError: "invalid_request", status: 302},
		{name: "PKCE method missing", mod: del("code_challenge_method"), wantError: "invalid_request", status: 302},
		{name: "PKCE plain", mod: set("code_challenge_method", "plain"), wantError: "invalid_request", status: 302},
		{name: "PKCE plain with verifier as challenge", mod: func(q url.Values) {
			q.Set("code_challenge_method", "plain")
			q.Set("code_challenge", verifier)
		}, wantError: "invalid_request", status: 302},
		{name: "PKCE s256 lower case", mod: set("code_challenge_method", "s256"), wantError: "invalid_request", status: 302},
		{name: "PKCE challenge missing", mod: del("code_challenge"), wantError: "invalid_request", status: 302},
		{name: "PKCE challenge too short", mod: set("code_challenge", "abc"), wantError: "invalid_request", status: 302},
		{name: "PKCE challenge not base64url", mod: set("code_challenge", strings.Repeat("+", 43)), wantError: "invalid_request", status: 302},
		{name: "state missing", mod: del("state"), wantError: "invalid_request", status: 302},
		{name: "aud missing", mod: del("aud"), wantError: "invalid_request", status: 302},
		{name: "aud other server", mod: set("aud", "https://evil.example/r4"), wantError: "invalid_request", status: 302},
		{name: "aud other path", mod: set("aud", testFHIRBase+"/Patient"), wantError: "invalid_request", status: 302},
		{name: "aud prefix", mod: set("aud", "https://fhir.example.org/r"), wantError: "invalid_request", status: 302},
		{name: "aud http instead of https", mod: set("aud", "http://fhir.example.org/r4"), wantError: "invalid_request", status: 302},
		{name: "aud upper case host", mod: set("aud", "https://FHIR.example.org/r4"), wantError: "invalid_request", status: 302},
		{name: "aud double slash", mod: set("aud", testFHIRBase+"//"), wantError: "invalid_request", status: 302},
		{name: "aud default port", mod: set("aud", "https://fhir.example.org:443/r4"), wantError: "invalid_request", status: 302},
		{name: "aud with query", mod: set("aud", testFHIRBase+"?x=1"), wantError: "invalid_request", status: 302},
		{name: "aud with fragment", mod: set("aud", testFHIRBase+"#"), wantError: "invalid_request", status: 302},
		{name: "aud percent-encoded path", mod: set("aud", "https://fhir.example.org/%72%34"), wantError: "invalid_request", status: 302},
		{name: "aud with user info", mod: set("aud", "https://x@fhir.example.org/r4"), wantError: "invalid_request", status: 302},
		{name: "aud with white space", mod: set("aud", " "+testFHIRBase), wantError: "invalid_request", status: 302},
		{name: "response_type token", mod: set("response_type", "token"), wantError: "unsupported_response_type", status: 302},
		{name: "response_type missing", mod: del("response_type"), wantError: "unsupported_response_type", status: 302},
		{name: "no grantable scope", mod: set("scope", "system/*.rs"), wantError: "invalid_scope", status: 302},
		{name: "launch scope without launch", mod: set("scope", "launch patient/*.rs"), wantError: "invalid_request", status: 302},
		{name: "launch with launch/patient only (npm fhirclient)", mod: set("launch", launch), wantCode: true, status: 302},
		{name: "launch without any launch scope", mod: func(q url.Values) { q.Set("launch", launch); q.Set("scope", "patient/*.rs") }, wantError: "invalid_scope", status: 302},
		{name: "unknown launch", mod: func(q url.Values) { q.Set("launch", "nope"); q.Set("scope", "launch patient/*.rs") }, wantError: "invalid_request", status: 302},
		{name: "known launch", mod: func(q url.Values) { q.Set("launch", launch); q.Set("scope", "launch patient/*.rs") }, wantCode: true, status: 302},
		// Not redirected: the client or its redirect URI cannot be trusted.
		{name: "unknown client", mod: set("client_id", "evil"), status: 400},
		{name: "client missing", mod: del("client_id"), status: 400},
		{name: "redirect missing", mod: del("redirect_uri"), status: 400},
		{name: "redirect other host", mod: set("redirect_uri", "https://evil.example/callback"), status: 400},
		{name: "redirect extra path", mod: set("redirect_uri", appRedirect+"/x"), status: 400},
		{name: "redirect trailing slash", mod: set("redirect_uri", appRedirect+"/"), status: 400},
		{name: "redirect added query", mod: set("redirect_uri", appRedirect+"?next=https://evil.example"), status: 400},
		{name: "redirect upper case", mod: set("redirect_uri", strings.ToUpper(appRedirect)), status: 400},
		{name: "redirect encoded", mod: set("redirect_uri", "https://app.example/%63allback"), status: 400},
		{name: "redirect registered one without its query", mod: set("redirect_uri", "http://127.0.0.1:9999/cb"), status: 400},
		{name: "redirect userinfo", mod: set("redirect_uri", "https://app.example@evil.example/callback"), status: 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := authParams("launch/patient patient/*.rs")
			c.mod(q)
			st, red := f.authorize(q)
			if st != c.status {
				t.Fatalf("status %d, want %d", st, c.status)
			}
			if st != http.StatusFound {
				return
			}
			if got := red.Get("code") != ""; got != c.wantCode {
				t.Errorf("code present %v, want %v (redirect %v)", got, c.wantCode, red)
			}
			if red.Get("error") != c.wantError {
				t.Errorf("error %q, want %q (%s)", red.Get("error"), c.wantError, red.Get("error_description"))
			}
			if q.Get("state") != "" && red.Get("state") != q.Get("state") {
				t.Errorf("state %q, want %q", red.Get("state"), q.Get("state"))
			}
		})
	}
}

func TestAuthorizeRepeatedParameterRefused(t *testing.T) {
	f := newFixture(t, nil)
	for _, p := range []string{"client_id", "redirect_uri", "scope", "aud", "code_challenge", "state"} {
		t.Run(p, func(t *testing.T) {
			q := authParams("patient/*.rs")
			q.Add(p, q.Get(p))
			if st, _ := f.authorize(q); st != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", st)
			}
		})
	}
}

func TestStateReturnedVerbatim(t *testing.T) {
	f := newFixture(t, nil)
	for _, state := range []string{"abc", "a b&c=d", "ünïcode", "https://x.example/?q=1#f", strings.Repeat("s", 500)} {
		q := authParams("patient/*.rs")
		q.Set("state", state)
		_, red := f.authorize(q)
		if red.Get("state") != state || red.Get("code") == "" {
			t.Errorf("state %q came back as %q (code %q)", state, red.Get("state"), red.Get("code"))
		}
	}
}

func TestAuthorizePOST(t *testing.T) {
	f := newFixture(t, nil)
	req, _ := http.NewRequest(http.MethodPost, f.srv.SMARTConfiguration().AuthorizationEndpoint, strings.NewReader(authParams("patient/*.rs").Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := noRedirect.Do(req)
	must(t, err)
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Query().Get("code") == "" {
		t.Fatalf("POST authorize: %d %v", resp.StatusCode, loc)
	}
	// Only GET and POST.
	req, _ = http.NewRequest(http.MethodPut, f.srv.SMARTConfiguration().AuthorizationEndpoint, nil)
	resp, err = noRedirect.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT authorize: %d", resp.StatusCode)
	}
}

func TestScopeFiltering(t *testing.T) {
	f := newFixture(t, nil)
	cases := []struct {
		name, client, requested, want string
	}{
		{"public client gets all but system", appID, "patient/*.rs system/*.rs user/Observation.read openid", "patient/*.rs user/Observation.read openid"},
		{"invalid scopes dropped", appID, "patient/Observation.dus patient/Patient.rs", "patient/Patient.rs"},
		{"duplicates once", appID, "patient/Patient.rs patient/Patient.rs", "patient/Patient.rs"},
		{"allowed list: subset of letters", confID, "patient/Observation.r", "patient/Observation.r"},
		{"allowed list: more letters refused", confID, "patient/Observation.rs patient/Observation.cruds", "patient/Observation.rs"},
		{"allowed list: other type refused", confID, "patient/Condition.rs patient/Patient.rs", "patient/Patient.rs"},
		{"allowed list: v1 read covers v2 rs", confID, "patient/Patient.rs", "patient/Patient.rs"},
		{"allowed list: wildcard covers type", confID, "user/Observation.rs user/Observation.cud", "user/Observation.rs"},
		{"allowed list: granular covered by plain", confID, "patient/Observation.rs?category=laboratory", "patient/Observation.rs?category=laboratory"},
		{"allowed list: context must match", confID, "user/Patient.rs patient/Patient.c", "user/Patient.rs"},
		{"allowed list: identity must be listed", confID, "openid profile fhirUser", "openid fhirUser"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := strings.Join(f.srv.grantScopes(f.srv.client(c.client), c.requested, false), " ")
			if got != c.want {
				t.Errorf("granted %q, want %q", got, c.want)
			}
		})
	}
}

func TestConsentPage(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Consent = true })
	page := func() string {
		resp, err := noRedirect.Get(f.srv.SMARTConfiguration().AuthorizationEndpoint + "?" + authParams("launch/patient patient/*.rs").Encode())
		must(t, err)
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("consent page: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	requestID := func(html string) string {
		i := strings.Index(html, `name="request" value="`)
		if i < 0 {
			t.Fatalf("no request id in %s", html)
		}
		rest := html[i+len(`name="request" value="`):]
		return rest[:strings.IndexByte(rest, '"')]
	}
	decide := func(id, decision string) (int, url.Values) {
		req, _ := http.NewRequest(http.MethodPost, f.srv.endpoint(pathConsent), strings.NewReader(url.Values{"request": {id}, "decision": {decision}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := noRedirect.Do(req)
		must(t, err)
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		return resp.StatusCode, loc.Query()
	}
	html := page()
	if !strings.Contains(html, "patient/*.rs") || !strings.Contains(html, "Not for production") {
		t.Errorf("consent page lacks scopes or warning: %s", html)
	}
	id := requestID(html)
	st, q := decide(id, "approve")
	if st != http.StatusFound || q.Get("code") == "" || q.Get("state") != "st-1" {
		t.Fatalf("approve: %d %v", st, q)
	}
	if st, q := f.redeem(q.Get("code")); st != 200 || q["patient"] != "123" {
		t.Errorf("redeem approved code: %d %v", st, q)
	}
	if st, _ := decide(id, "approve"); st != http.StatusBadRequest {
		t.Errorf("second approval of one request: %d, want 400", st)
	}
	st, q = decide(requestID(page()), "deny")
	if st != http.StatusFound || q.Get("error") != "access_denied" || q.Get("code") != "" {
		t.Errorf("deny: %d %v", st, q)
	}
	if st, _ := decide("forged", "approve"); st != http.StatusBadRequest {
		t.Errorf("forged request id: %d, want 400", st)
	}
}
