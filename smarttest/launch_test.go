package smarttest

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// simulate calls the EHR launch simulator with a raw query and returns the
// status and the redirect target (nil without a redirect).
func (f *fixture) simulate(rawQuery string) (int, *url.URL) {
	f.t.Helper()
	resp, err := noRedirect.Get(f.srv.SMARTConfiguration().Issuer + "/launch" + "?" + rawQuery)
	must(f.t, err)
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusFound {
		return resp.StatusCode, nil
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		f.t.Errorf("launch redirect Cache-Control %q", cc)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	must(f.t, err)
	return resp.StatusCode, loc
}

// launchValue runs the simulator for launchURI and returns the launch
// value it hands to the app.
func (f *fixture) launchValue(launchURI, patient, encounter string) string {
	f.t.Helper()
	u := f.srv.EHRLaunchURL(launchURI, patient, encounter)
	st, loc := f.simulate(u[strings.IndexByte(u, '?')+1:])
	if st != http.StatusFound {
		f.t.Fatalf("launch simulator: status %d", st)
	}
	return loc.Query().Get("launch")
}

// TestEHRLaunchSimulator plays a whole EHR launch as a browser and an app
// do: the simulator's redirect to the app, the authorization request with
// the launch value, the code redemption by a public client with PKCE, and
// the token's launch context.
func TestEHRLaunchSimulator(t *testing.T) {
	f := newFixture(t, nil)
	launchURI := "https://app.example/smart/launch.html?mode=dark"
	st, loc := f.simulate(url.Values{"launch_uri": {launchURI}, "patient": {"p-7"}, "encounter": {"e-7"}}.Encode())
	if st != http.StatusFound {
		t.Fatalf("simulator: %d", st)
	}
	back := loc.Query()
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != "https://app.example/smart/launch.html" {
		t.Errorf("redirected to %s", got)
	}
	if back.Get("iss") != testFHIRBase || back.Get("mode") != "dark" || len(back) != 3 {
		t.Errorf("launch parameters %v", back)
	}
	launch := back.Get("launch")
	if len(launch) < 24 || strings.Contains(launch, "p-7") {
		t.Errorf("launch value %q is not opaque", launch)
	}

	// The app: authorization request with the launch value, as npm
	// fhirclient sends it for an app asking for launch/patient: no bare
	// launch scope.
	q := authParams("launch/patient openid fhirUser patient/*.rs offline_access")
	q.Set("launch", launch)
	q.Set("aud", back.Get("iss"))
	code := f.code(q)
	st, resp := f.redeem(code)
	if st != http.StatusOK {
		t.Fatalf("redeem: %d %v", st, resp)
	}
	if resp["patient"] != "p-7" || resp["encounter"] != "e-7" || resp["need_patient_banner"] != true || resp["id_token"] == nil {
		t.Errorf("token response context: %v", resp)
	}
	tok, err := f.verifyJWT(resp["access_token"].(string), testFHIRBase)
	must(t, err)
	if p, _ := tok.Get("patient"); p != "p-7" {
		t.Errorf("access token patient claim %v", p)
	}
	if id, _ := tok.Get("client_id"); id != appID {
		t.Errorf("access token client_id %v", id)
	}

	// The launch value is single-use.
	if st, red := f.authorize(q); st != http.StatusFound || red.Get("error") != "invalid_request" || red.Get("code") != "" {
		t.Errorf("reused launch value: %d %v", st, red)
	}
}

func TestEHRLaunchSimulatorDefaults(t *testing.T) {
	f := newFixture(t, nil)
	// No patient parameter: Config.Patient; patient= : no patient.
	for _, c := range []struct {
		name, query, want string
	}{
		{"default patient", url.Values{"launch_uri": {"https://app.example/launch"}}.Encode(), "123"},
		{"explicitly none", url.Values{"launch_uri": {"https://app.example/launch"}, "patient": {""}}.Encode(), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, loc := f.simulate(c.query)
			if st != http.StatusFound {
				t.Fatalf("simulator: %d", st)
			}
			tr, err := f.srv.LaunchApp(t.Context(), AppLaunch{ClientID: appID, Launch: loc.Query().Get("launch"), Scope: "launch user/*.rs"})
			must(t, err)
			if tr.Patient != c.want || tr.Encounter != "" {
				t.Errorf("patient %q encounter %q, want %q", tr.Patient, tr.Encounter, c.want)
			}
		})
	}
	// EHRLaunchURL builds what the simulator reads.
	u, err := url.Parse(f.srv.EHRLaunchURL("https://app.example/l?a=b", "p1", "e1"))
	must(t, err)
	if u.Scheme+"://"+u.Host+u.Path != f.srv.SMARTConfiguration().Issuer+"/launch" || u.Query().Get("launch_uri") != "https://app.example/l?a=b" ||
		u.Query().Get("patient") != "p1" || u.Query().Get("encounter") != "e1" {
		t.Errorf("EHRLaunchURL: %s", u)
	}
}

func TestEHRLaunchSimulatorRefused(t *testing.T) {
	f := newFixture(t, nil)
	lu := func(v string) string { return url.Values{"launch_uri": {v}}.Encode() }
	cases := []struct{ name, query string }{
		{"no launch_uri", "patient=123"},
		{"empty launch_uri", lu("")},
		{"relative", lu("/launch.html")},
		{"scheme-relative", lu("//app.example/launch.html")},
		{"not http", lu("javascript:alert(1)")},
		{"ftp", lu("ftp://app.example/launch")},
		{"opaque http", lu("https:app.example/launch")},
		{"foreign origin", lu("https://evil.example/launch.html")},
		{"registered host, other scheme", lu("http://app.example/launch.html")},
		{"registered host, other port", lu("https://app.example:8443/launch.html")},
		{"registered loopback host, other port", lu("http://127.0.0.1:9998/launch.html")},
		{"suffix of a registered host", lu("https://app.example.evil.example/launch.html")},
		{"user info", lu("https://app.example@evil.example/launch.html")},
		{"user info on a registered host", lu("https://user@app.example/launch.html")},
		{"fragment", lu("https://app.example/launch.html#x")},
		{"empty fragment", lu("https://app.example/launch.html#")},
		{"iss of its own", lu("https://app.example/launch.html?iss=https://evil.example/fhir")},
		{"launch of its own", lu("https://app.example/launch.html?launch=x")},
		{"malformed query", lu("https://app.example/launch.html?a=%zz")},
		{"too long", lu("https://app.example/" + strings.Repeat("a", maxLaunchURI))},
		{"repeated launch_uri", lu("https://app.example/a") + "&" + lu("https://app.example/b")},
		{"patient not an id", lu("https://app.example/launch") + "&patient=Patient/123"},
		{"patient too long", lu("https://app.example/launch") + "&patient=" + strings.Repeat("1", 65)},
		{"encounter not an id", lu("https://app.example/launch") + "&encounter=a%20b"},
		{"malformed query", "launch_uri=%zz"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if st, loc := f.simulate(c.query); st != http.StatusBadRequest {
				t.Errorf("status %d (to %v), want 400", st, loc)
			}
		})
	}
	// Only GET.
	resp, err := http.Post(f.srv.SMARTConfiguration().Issuer+"/launch", "application/x-www-form-urlencoded", strings.NewReader(lu("https://app.example/l")))
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", resp.StatusCode)
	}
	// A registered origin in another spelling is the same origin.
	for _, v := range []string{"HTTPS://APP.EXAMPLE/launch", "https://app.example:443/launch", "http://127.0.0.1:9999"} {
		if st, _ := f.simulate(lu(v)); st != http.StatusFound {
			t.Errorf("%s: %d, want 302", v, st)
		}
	}
}

// TestEHRLaunchValueBinding checks the refusals at the authorization
// endpoint: unknown, reused, expired, and another app's launch values.
func TestEHRLaunchValueBinding(t *testing.T) {
	f := newFixture(t, nil)
	must(t, f.srv.RegisterClient(Client{ID: "other-app", RedirectURIs: []string{"https://other.example/cb"}}))
	request := func(client, redirect, launch string) url.Values {
		q := authParams("launch patient/*.rs")
		q.Set("client_id", client)
		q.Set("redirect_uri", redirect)
		q.Set("launch", launch)
		return q
	}
	refused := func(name string, q url.Values) {
		t.Helper()
		st, red := f.authorize(q)
		if st != http.StatusFound || red.Get("error") != "invalid_request" || red.Get("code") != "" {
			t.Errorf("%s: %d %v", name, st, red)
		}
	}
	refused("unknown launch value", request(appID, appRedirect, "no-such-launch"))

	// A launch made for the app at app.example, used by the app at
	// other.example: refused, and the value still works for its app.
	v := f.launchValue("https://app.example/launch", "p1", "")
	refused("launch value of another app", request("other-app", "https://other.example/cb", v))
	if st, red := f.authorize(request(appID, appRedirect, v)); st != http.StatusFound || red.Get("code") == "" {
		t.Errorf("own app after a foreign attempt: %d %v", st, red)
	}
	refused("reused launch value", request(appID, appRedirect, v))

	// Another client at the same origin may use it (the EHR launched the
	// app by its URL; origins are what the simulator can tell apart).
	v = f.launchValue("https://app.example/launch", "p1", "")
	q := request(confID, appRedirect, v)
	if st, red := f.authorize(q); st != http.StatusFound || red.Get("code") == "" {
		t.Errorf("same-origin client: %d %v", st, red)
	}

	// Expiry, on the server's clock.
	v = f.launchValue("https://app.example/launch", "p1", "")
	f.clock.Advance(simulatedLaunchLifetime - time.Second)
	w := f.launchValue("https://app.example/launch", "p1", "")
	f.clock.Advance(time.Second)
	refused("expired launch value", request(appID, appRedirect, v))
	if st, red := f.authorize(request(appID, appRedirect, w)); st != http.StatusFound || red.Get("code") == "" {
		t.Errorf("launch value just before expiry: %d %v", st, red)
	}

	// A failed request does not consume the value: no launch scope.
	v = f.launchValue("https://app.example/launch", "p1", "")
	q = request(appID, appRedirect, v)
	q.Set("scope", "patient/*.rs")
	if st, red := f.authorize(q); st != http.StatusFound || red.Get("error") != "invalid_scope" {
		t.Errorf("launch without the launch scope: %d %v", st, red)
	}
	if st, red := f.authorize(request(appID, appRedirect, v)); st != http.StatusFound || red.Get("code") == "" {
		t.Errorf("launch value after a refused request: %d %v", st, red)
	}

	// Values from RegisterLaunch keep their old rules: reusable, any client.
	r, err := f.srv.RegisterLaunch(LaunchContext{Patient: "p2"})
	must(t, err)
	for i := 0; i < 2; i++ {
		if st, red := f.authorize(request("other-app", "https://other.example/cb", r)); st != http.StatusFound || red.Get("code") == "" {
			t.Errorf("RegisterLaunch value, use %d: %d %v", i, st, red)
		}
	}
}

// TestPublicRefreshWithoutClientID follows SMART's refresh request: a
// public client sends grant_type, refresh_token and scope only.
func TestPublicRefreshWithoutClientID(t *testing.T) {
	f := newFixture(t, nil)
	must(t, f.srv.RegisterClient(Client{ID: "public-b", RedirectURIs: []string{"https://b.example/cb"}}))
	refresh := func(form url.Values, hdr map[string]string) (int, map[string]any) {
		t.Helper()
		form.Set("grant_type", "refresh_token")
		return f.token(form, hdr)
	}
	_, first := f.redeem(f.code(authParams("launch/patient openid fhirUser patient/*.rs offline_access")))
	rt1 := first["refresh_token"].(string)

	st, second := refresh(url.Values{"refresh_token": {rt1}}, nil)
	if st != http.StatusOK {
		t.Fatalf("public refresh without client_id: %d %v", st, second)
	}
	rt2, _ := second["refresh_token"].(string)
	if rt2 == "" || rt2 == rt1 || second["patient"] != "123" || second["scope"] != first["scope"] {
		t.Fatalf("refreshed: %v", second)
	}
	tok, err := f.verifyJWT(second["access_token"].(string), testFHIRBase)
	must(t, err)
	if id, _ := tok.Get("client_id"); id != appID {
		t.Errorf("refreshed token client_id %v", id)
	}
	// With scope, as the spec's request allows.
	st, third := refresh(url.Values{"refresh_token": {rt2}, "scope": {"patient/*.rs"}}, nil)
	if st != http.StatusOK || third["scope"] != "patient/*.rs" {
		t.Fatalf("public refresh with scope: %d %v", st, third)
	}
	rt3 := third["refresh_token"].(string)
	// With its own client_id: still fine.
	st, fourth := refresh(url.Values{"refresh_token": {rt3}, "client_id": {appID}}, nil)
	if st != http.StatusOK {
		t.Fatalf("public refresh with its client_id: %d %v", st, fourth)
	}
	rt4 := fourth["refresh_token"].(string)

	// Attacks.
	if st, resp := refresh(url.Values{"refresh_token": {rt4}, "client_id": {"public-b"}}, nil); st != 400 || resp["error"] != "invalid_grant" {
		t.Errorf("client A's refresh token with client_id B: %d %v", st, resp)
	}
	if st, resp := refresh(url.Values{"refresh_token": {rt4}}, map[string]string{"Authorization": basicAuth(confID, confSecret)}); st != 400 || resp["error"] != "invalid_grant" {
		t.Errorf("client A's refresh token with client B's credentials: %d %v", st, resp)
	}
	if st, resp := refresh(url.Values{"refresh_token": {rt4}, "client_id": {"nobody"}}, nil); st != 401 || resp["error"] != "invalid_client" {
		t.Errorf("unknown client_id: %d %v", st, resp)
	}
	if st, resp := refresh(url.Values{"refresh_token": {"no-such-token"}}, nil); st != 400 || resp["error"] != "invalid_grant" {
		t.Errorf("unknown refresh token: %d %v", st, resp)
	}
	if st, resp := refresh(url.Values{}, nil); st != 400 || resp["error"] != "invalid_request" {
		t.Errorf("no refresh token: %d %v", st, resp)
	}
	// The attempts above did not spend rt4.
	st, fifth := refresh(url.Values{"refresh_token": {rt4}}, nil)
	if st != http.StatusOK {
		t.Fatalf("refresh after refused attempts: %d %v", st, fifth)
	}
	// Reuse of a rotated token, without client_id, revokes the family.
	if st, resp := refresh(url.Values{"refresh_token": {rt1}}, nil); st != 400 || resp["error"] != "invalid_grant" {
		t.Errorf("reused refresh token: %d %v", st, resp)
	}
	if st, _ := refresh(url.Values{"refresh_token": {fifth["refresh_token"].(string)}}, nil); st != 400 {
		t.Error("newest refresh token still works after a reuse")
	}

	// The Refresh helper without a client id sends none.
	tr, err := f.srv.LaunchApp(t.Context(), AppLaunch{ClientID: appID, Scope: "launch/patient offline_access patient/*.rs"})
	must(t, err)
	if _, err := f.srv.Refresh(t.Context(), "", "", tr.RefreshToken, ""); err != nil {
		t.Errorf("Refresh helper without client id: %v", err)
	}
}

func TestConfidentialRefreshNeedsAuthentication(t *testing.T) {
	f := newFixture(t, nil)
	q := authParams("launch/patient offline_access patient/Observation.rs")
	q.Set("client_id", confID)
	code := f.code(q)
	st, first := f.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appRedirect},
		"code_verifier": {verifier}}, map[string]string{"Authorization": basicAuth(confID, confSecret)})
	if st != http.StatusOK {
		t.Fatalf("redeem: %d %v", st, first)
	}
	rt := first["refresh_token"].(string)
	for _, c := range []struct {
		name string
		form url.Values
		hdr  map[string]string
	}{
		{"no client at all", url.Values{}, nil},
		{"client_id only", url.Values{"client_id": {confID}}, nil},
		{"wrong secret", url.Values{"client_id": {confID}, "client_secret": {"nope"}}, nil},
		{"a public client's id", url.Values{"client_id": {appID}}, nil},
		{"a bearer header", url.Values{}, map[string]string{"Authorization": "Bearer " + rt}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.form.Set("grant_type", "refresh_token")
			c.form.Set("refresh_token", rt)
			st, resp := f.token(c.form, c.hdr)
			if c.name == "a public client's id" {
				// Authenticated as the public client: not its token.
				if st != 400 || resp["error"] != "invalid_grant" {
					t.Errorf("%d %v, want 400 invalid_grant", st, resp)
				}
				return
			}
			if st != 401 || resp["error"] != "invalid_client" {
				t.Errorf("%d %v, want 401 invalid_client", st, resp)
			}
		})
	}
	// Authenticated: works, and the refused attempts did not spend it.
	if st, resp := f.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}},
		map[string]string{"Authorization": basicAuth(confID, confSecret)}); st != http.StatusOK {
		t.Errorf("authenticated refresh: %d %v", st, resp)
	}
}

// TestBrowserAppFlow replays, request by request, what npm fhirclient
// sends from a page at another origin in a standalone launch: the
// authorization request it builds, the code redemption and the refresh
// (no client_id), each with an Origin header, plus the CORS preflight.
func TestBrowserAppFlow(t *testing.T) {
	const appOrigin = "http://127.0.0.1:9000"
	f := newFixture(t, func(c *Config) { c.CORSOrigins = []string{"https://extra.example"} })
	redirect := appOrigin + "/app/"
	must(t, f.srv.RegisterClient(Client{ID: "demo-app", RedirectURIs: []string{redirect}}))
	scope := "launch/patient openid fhirUser patient/*.rs offline_access"
	state := "fhirclient-state-key"
	authURL := f.srv.SMARTConfiguration().AuthorizationEndpoint + "?response_type=code&client_id=demo-app&scope=" + url.QueryEscape(scope) +
		"&redirect_uri=" + url.QueryEscape(redirect) + "&aud=" + url.QueryEscape(testFHIRBase) + "&state=" + state +
		"&code_challenge=" + S256Challenge(verifier) + "&code_challenge_method=S256"
	resp, err := noRedirect.Get(authURL)
	must(t, err)
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	must(t, err)
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), redirect+"?") || loc.Query().Get("state") != state {
		t.Fatalf("authorize: %d %s", resp.StatusCode, loc)
	}

	post := func(form string, origin string) (*http.Response, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, f.srv.SMARTConfiguration().TokenEndpoint, strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", origin)
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		defer resp.Body.Close()
		var m map[string]any
		body, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(body, &m)
		return resp, m
	}
	preflight := func(origin string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodOptions, f.srv.SMARTConfiguration().TokenEndpoint, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		resp.Body.Close()
		return resp
	}
	if p := preflight(appOrigin); p.StatusCode != http.StatusNoContent || p.Header.Get("Access-Control-Allow-Origin") != appOrigin ||
		!strings.Contains(p.Header.Get("Access-Control-Allow-Methods"), "POST") || !strings.Contains(p.Header.Get("Access-Control-Allow-Headers"), "Content-Type") {
		t.Errorf("preflight: %d %v", p.StatusCode, p.Header)
	}
	tokResp, tr := post("code="+loc.Query().Get("code")+"&grant_type=authorization_code&redirect_uri="+url.QueryEscape(redirect)+
		"&client_id=demo-app&code_verifier="+verifier, appOrigin)
	if tokResp.StatusCode != http.StatusOK || tokResp.Header.Get("Access-Control-Allow-Origin") != appOrigin {
		t.Fatalf("token: %d %v %v", tokResp.StatusCode, tokResp.Header, tr)
	}
	if tr["patient"] != "123" || tr["id_token"] == nil || !strings.Contains(tr["scope"].(string), "offline_access") {
		t.Errorf("token response: %v", tr)
	}
	refResp, rr := post("grant_type=refresh_token&refresh_token="+url.QueryEscape(tr["refresh_token"].(string)), appOrigin)
	if refResp.StatusCode != http.StatusOK || refResp.Header.Get("Access-Control-Allow-Origin") != appOrigin || rr["patient"] != "123" {
		t.Errorf("refresh: %d %v %v", refResp.StatusCode, refResp.Header, rr)
	}
	// Errors carry CORS headers too, so that the app can read them.
	if e, m := post("grant_type=refresh_token&refresh_token=spent", appOrigin); e.StatusCode != 400 || e.Header.Get("Access-Control-Allow-Origin") != appOrigin {
		t.Errorf("error answer: %d %v %v", e.StatusCode, e.Header, m)
	}
	// Config.CORSOrigins adds origins; others get no CORS headers.
	for origin, want := range map[string]string{
		"https://extra.example":        "https://extra.example",
		"https://evil.example":         "",
		"null":                         "",
		"http://127.0.0.1:9000/":       "",
		"http://127.0.0.1:9000.evil.x": "",
	} {
		if got := preflight(origin).Header.Get("Access-Control-Allow-Origin"); got != want {
			t.Errorf("preflight from %q: allow %q, want %q", origin, got, want)
		}
	}
}

func TestCORSOriginsConfig(t *testing.T) {
	for _, c := range []struct {
		name    string
		origins []string
		ok      bool
	}{
		{"origins", []string{"https://a.example", "http://127.0.0.1:9000", "HTTPS://B.EXAMPLE:443"}, true},
		{"any", []string{"*"}, true},
		{"path", []string{"https://a.example/app"}, false},
		{"trailing slash", []string{"https://a.example/"}, false},
		{"query", []string{"https://a.example?x"}, false},
		{"fragment", []string{"https://a.example#"}, false},
		{"user info", []string{"https://u@a.example"}, false},
		{"no scheme", []string{"a.example"}, false},
		{"other scheme", []string{"ftp://a.example"}, false},
		{"null", []string{"null"}, false},
		{"empty", []string{""}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := New(Config{FHIRBase: testFHIRBase, Issuer: "https://as.example", CORSOrigins: c.origins})
			if c.ok != (err == nil) {
				t.Fatalf("New: %v, want ok %t", err, c.ok)
			}
			if err != nil && !errors.Is(err, errConfig) {
				t.Errorf("error %v does not wrap ErrConfig", err)
			}
			if s == nil {
				return
			}
			for _, o := range []string{"https://b.example", "https://anyone.example"} {
				req := httptest.NewRequest(http.MethodOptions, "/token", nil)
				req.Header.Set("Origin", o)
				req.Header.Set("Access-Control-Request-Method", "POST")
				rec := httptest.NewRecorder()
				s.ServeHTTP(rec, req)
				want := ""
				if c.name == "any" || (c.name == "origins" && o == "https://b.example") {
					want = o
				}
				if got := rec.Header().Get("Access-Control-Allow-Origin"); got != want {
					t.Errorf("%s: allow %q, want %q", o, got, want)
				}
			}
		})
	}
}

// TestConsentPatientPicker: with Consent, a standalone launch asking for
// launch/patient lets the user type the patient.
func TestConsentPatientPicker(t *testing.T) {
	for _, c := range []struct {
		name          string
		configPatient string
		form          url.Values // without request and decision
		want          string     // patient in the token; "" for a refused pick
	}{
		{"picked", "123", url.Values{"patient": {"456"}}, "456"},
		{"field left out: the default", "123", url.Values{}, "123"},
		{"no default, picked", "", url.Values{"patient": {"p-1"}}, "p-1"},
		{"no default, nothing picked", "", url.Values{}, ""},
		{"not an id", "123", url.Values{"patient": {"Patient/456"}}, ""},
		{"empty", "123", url.Values{"patient": {""}}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, func(cfg *Config) { cfg.Consent = true; cfg.Patient = c.configPatient })
			resp, err := noRedirect.Get(f.srv.SMARTConfiguration().AuthorizationEndpoint + "?" + authParams("launch/patient patient/*.rs").Encode())
			must(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			html := string(b)
			if resp.StatusCode != http.StatusOK || !strings.Contains(html, `name="patient" value="`+c.configPatient+`"`) {
				t.Fatalf("consent page %d without the patient picker: %s", resp.StatusCode, html)
			}
			i := strings.Index(html, `name="request" value="`)
			rest := html[i+len(`name="request" value="`):]
			form := url.Values{"request": {rest[:strings.IndexByte(rest, '"')]}, "decision": {"approve"}}
			for k, v := range c.form {
				form[k] = v
			}
			req, _ := http.NewRequest(http.MethodPost, f.srv.endpoint(pathConsent), strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err = noRedirect.Do(req)
			must(t, err)
			resp.Body.Close()
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("decision: %d", resp.StatusCode)
			}
			if c.want == "" {
				if loc.Query().Get("error") != "invalid_request" || loc.Query().Get("code") != "" {
					t.Errorf("refused pick: %v", loc.Query())
				}
				return
			}
			st, tr := f.redeem(loc.Query().Get("code"))
			if st != http.StatusOK || tr["patient"] != c.want {
				t.Errorf("token: %d %v, want patient %s", st, tr, c.want)
			}
		})
	}
	// An EHR launch fixes the patient: no picker.
	f := newFixture(t, func(cfg *Config) { cfg.Consent = true })
	v := f.launchValue("https://app.example/launch", "p-9", "")
	q := authParams("launch launch/patient patient/*.rs")
	q.Set("launch", v)
	resp, err := noRedirect.Get(f.srv.SMARTConfiguration().AuthorizationEndpoint + "?" + q.Encode())
	must(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(b), `name="patient"`) || !strings.Contains(string(b), "p-9") {
		t.Errorf("EHR launch consent page: %s", b)
	}
}

func TestOriginOf(t *testing.T) {
	for in, want := range map[string]string{
		"https://app.example/cb":          "https://app.example",
		"HTTPS://App.Example:443/cb?x=1":  "https://app.example",
		"http://app.example:80":           "http://app.example",
		"http://app.example:443":          "http://app.example:443",
		"http://127.0.0.1:9000/app/":      "http://127.0.0.1:9000",
		"http://[::1]:9000/":              "http://[::1]:9000",
		"http://[::1]:80/":                "http://[::1]",
		"https://u@app.example/":          "",
		"com.example.app:/callback":       "",
		"/relative":                       "",
		"ftp://app.example/":              "",
		"https:opaque":                    "",
		"":                                "",
		"https://app.example%2fevil.com/": "",
	} {
		if got := originOf(in); got != want {
			t.Errorf("originOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzLaunchSimulator(f *testing.F) {
	srv, clock := fuzzServer(f)
	for _, q := range []string{
		"launch_uri=https%3A%2F%2Fapp.example%2Flaunch&patient=123",
		"launch_uri=https%3A%2F%2Fapp.example%2Flaunch%3Fa%3Db&patient=&encounter=e1",
		"launch_uri=https%3A%2F%2Fevil.example%2F",
		"launch_uri=https%3A%2F%2Fapp.example%40evil.example%2F",
		"launch_uri=%2F%2Fapp.example%2F",
		"launch_uri=a&launch_uri=b",
		"%zz",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		req := httptest.NewRequest(http.MethodGet, "/launch", nil)
		req.URL.RawQuery = rawQuery
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code == http.StatusBadRequest {
			return
		}
		if rec.Code != http.StatusFound {
			t.Fatalf("status %d for %q", rec.Code, rawQuery)
		}
		loc, err := url.Parse(rec.Header().Get("Location"))
		if err != nil {
			t.Fatalf("Location %q: %v", rec.Header().Get("Location"), err)
		}
		// Never anywhere but the registered app's origin.
		if originOf(loc.String()) != "https://app.example" || loc.User != nil || !strings.EqualFold(loc.Hostname(), "app.example") {
			t.Fatalf("redirect to %q for %q", loc, rawQuery)
		}
		q := loc.Query()
		if q.Get("iss") != testFHIRBase || q.Get("launch") == "" || len(q["iss"]) != 1 || len(q["launch"]) != 1 {
			t.Fatalf("launch parameters %v", q)
		}
		in, _ := url.ParseQuery(rawQuery)
		srv.mu.Lock()
		rec2 := srv.launches[q.Get("launch")]
		srv.mu.Unlock()
		if rec2 == nil || !rec2.once || !rec2.expires.After(clock.Now()) || rec2.origin != "https://app.example" {
			t.Fatalf("launch record %+v", rec2)
		}
		if in.Has("patient") && rec2.ctx.Patient != in.Get("patient") {
			t.Fatalf("patient %q, asked %q", rec2.ctx.Patient, in.Get("patient"))
		}
		if rec2.ctx.Patient != "" && !validID(rec2.ctx.Patient) || rec2.ctx.Encounter != "" && !validID(rec2.ctx.Encounter) {
			t.Fatalf("context %+v", rec2.ctx)
		}
	})
}

func FuzzOrigin(f *testing.F) {
	for _, s := range []string{"https://app.example", "http://127.0.0.1:9000", "HTTPS://A.EXAMPLE:443", "https://a.example/", "null", "*", "http://[::1]:80", "https://u@a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, ok := parseOrigin(s)
		if !ok {
			if o != "" {
				t.Fatalf("refused %q with origin %q", s, o)
			}
			return
		}
		// An origin is its own origin, and parses back to itself.
		if o2, ok := parseOrigin(o); !ok || o2 != o {
			t.Fatalf("origin %q of %q parses to %q, %t", o, s, o2, ok)
		}
		if originOf(o+"/x?y") != o {
			t.Fatalf("origin of %q/x?y is %q", o, originOf(o+"/x?y"))
		}
		if !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") || strings.ContainsAny(o[8:], "/?#@") || o != strings.ToLower(o) {
			t.Fatalf("origin %q of %q", o, s)
		}
	})
}
