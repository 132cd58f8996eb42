package demotest

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/examples/internal/demo"
	"github.com/fhirguard/fhirguard/smarttest"
)

// The default app of the demo: what -app-redirect-uris and -app-launch-url
// default to.
const (
	appOrigin   = "http://127.0.0.1:9000"
	appRedirect = appOrigin + "/"
	appLaunch   = appOrigin + "/launch.html"
)

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// testAppStandalone is a standalone launch of a patient app with the
// demo's default public client, as npm fhirclient does it: PKCE S256, aud
// the FHIR base, its usual scope, the default redirect URI; then FHIR
// calls, and a refresh without client_id.
func testAppStandalone(c *client, s *Started) {
	t := c.t
	as := s.AuthServer()
	ctx := context.Background()
	tr, err := as.LaunchApp(ctx, smarttest.AppLaunch{ClientID: demo.AppClientID, RedirectURI: appRedirect, Scope: demo.StandaloneScopes})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Patient != demo.DefaultPatient || tr.RefreshToken == "" || tr.IDToken == "" || !strings.Contains(tr.Scope, "offline_access") {
		t.Fatalf("standalone launch: %+v", tr)
	}
	own := []expect{
		{name: "own patient", path: "/Patient/123", status: 200},
		{name: "own observations", path: "/Observation?code=http://loinc.org|4548-4", status: 200, ids: []string{"Observation/lab1"}},
		{name: "other patient", path: "/Patient/456", status: 404},
	}
	c.check(tr.AccessToken, own)

	// SMART's refresh request: grant_type and refresh_token, no client_id.
	next, err := as.Refresh(ctx, "", "", tr.RefreshToken, "")
	if err != nil {
		t.Fatalf("public refresh without client_id: %v", err)
	}
	if next.RefreshToken == "" || next.RefreshToken == tr.RefreshToken || next.Patient != demo.DefaultPatient {
		t.Fatalf("refreshed: %+v", next)
	}
	c.check(next.AccessToken, own)
	var re *smarttest.ResponseError
	if _, err := as.Refresh(ctx, "", "", tr.RefreshToken, ""); !errors.As(err, &re) || re.Code != "invalid_grant" {
		t.Errorf("reused refresh token: %v", err)
	}
	// Another client's id with this client's refresh token.
	if err := as.RegisterClient(smarttest.Client{ID: "other-public-app", RedirectURIs: []string{"https://other.example.org/"}}); err != nil {
		t.Fatal(err)
	}
	tr2, err := as.LaunchApp(ctx, smarttest.AppLaunch{ClientID: demo.AppClientID, RedirectURI: appRedirect, Scope: demo.StandaloneScopes})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := as.Refresh(ctx, "other-public-app", "", tr2.RefreshToken, ""); !errors.As(err, &re) || re.Code != "invalid_grant" {
		t.Errorf("refresh token of %s with client_id other-public-app: %v", demo.AppClientID, err)
	}

	// Refusals at the authorization endpoint: a redirect URI that is not
	// registered (not even a near miss) gets no redirect at all.
	for _, bad := range []string{appOrigin, appOrigin + "/index.html", "http://localhost:9001/", "https://evil.example.org/"} {
		_, err := as.LaunchApp(ctx, smarttest.AppLaunch{ClientID: demo.AppClientID, RedirectURI: bad, Scope: demo.StandaloneScopes})
		if !errors.As(err, &re) || re.Status != http.StatusBadRequest {
			t.Errorf("redirect URI %s: %v", bad, err)
		}
	}
}

// testAppEHRLaunch is an EHR launch through the banner's launch URL: the
// simulator's redirect to the app, the code flow with the launch value,
// and a token for the launch's patient.
func testAppEHRLaunch(c *client, s *Started) {
	t := c.t
	as := s.AuthServer()
	ctx := context.Background()
	if s.EHRLaunchURL() == "" || !strings.Contains(s.Banner, s.EHRLaunchURL()) {
		t.Fatalf("banner does not show the EHR launch URL %q", s.EHRLaunchURL())
	}
	launch := func(u string) (int, *url.URL) {
		t.Helper()
		res, err := noRedirect.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		loc, _ := url.Parse(res.Header.Get("Location"))
		return res.StatusCode, loc
	}
	st, loc := launch(s.EHRLaunchURL())
	if st != http.StatusFound || loc.Scheme+"://"+loc.Host+loc.Path != appLaunch {
		t.Fatalf("EHR launch: %d to %v", st, loc)
	}
	iss, value := loc.Query().Get("iss"), loc.Query().Get("launch")
	if iss != s.BaseURL() || value == "" {
		t.Fatalf("launch parameters %v", loc.Query())
	}
	// The app, like fhirclient, asks for launch (added by LaunchApp) with
	// launch/patient as a hint; aud is iss.
	tr, err := as.LaunchApp(ctx, smarttest.AppLaunch{ClientID: demo.AppClientID, RedirectURI: appRedirect, Launch: value,
		Audience: iss, Scope: "launch/patient openid fhirUser patient/*.rs"})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Patient != demo.DefaultPatient {
		t.Fatalf("EHR launch token response: %+v", tr)
	}
	c.check(tr.AccessToken, []expect{
		{name: "launch patient", path: "/Patient/123", status: 200},
		{name: "other patient's observation", path: "/Observation/o456", status: 404},
	})
	var re *smarttest.ResponseError
	if _, err := as.LaunchApp(ctx, smarttest.AppLaunch{ClientID: demo.AppClientID, RedirectURI: appRedirect, Launch: value,
		Scope: "patient/*.rs"}); !errors.As(err, &re) || re.Code != "invalid_request" {
		t.Errorf("reused launch value: %v", err)
	}
	if _, err := as.LaunchApp(ctx, smarttest.AppLaunch{ClientID: demo.AppClientID, RedirectURI: appRedirect, Launch: "made-up",
		Scope: "patient/*.rs"}); !errors.As(err, &re) || re.Code != "invalid_request" {
		t.Errorf("unknown launch value: %v", err)
	}

	// Another patient and an encounter, through the simulator's own
	// parameters, for the app at the other default origin. The launch
	// value is bound to that origin.
	st, loc = launch(as.EHRLaunchURL("http://localhost:9000/launch.html", "456", "enc-9"))
	if st != http.StatusFound {
		t.Fatalf("EHR launch for 456: %d", st)
	}
	if _, err := as.LaunchApp(ctx, smarttest.AppLaunch{ClientID: demo.AppClientID, RedirectURI: appRedirect,
		Launch: loc.Query().Get("launch"), Scope: "patient/*.rs"}); !errors.As(err, &re) || re.Code != "invalid_request" {
		t.Errorf("launch value used from another origin: %v", err)
	}
	tr, err = as.LaunchApp(ctx, smarttest.AppLaunch{ClientID: demo.AppClientID, RedirectURI: "http://localhost:9000/",
		Launch: loc.Query().Get("launch"), Scope: "patient/*.rs"})
	if err != nil || tr.Patient != "456" || tr.Encounter != "enc-9" {
		t.Fatalf("EHR launch for 456: %+v %v", tr, err)
	}
	c.check(tr.AccessToken, []expect{{name: "launch patient 456", path: "/Patient/456", status: 200},
		{name: "not patient 123", path: "/Patient/123", status: 404}})

	// The simulator redirects only to registered apps' origins.
	for _, bad := range []string{"https://evil.example.org/launch.html", "http://127.0.0.1:9001/launch.html", "//127.0.0.1:9000/x", "javascript:alert(1)"} {
		if st, loc := launch(as.EHRLaunchURL(bad, "123", "")); st != http.StatusBadRequest {
			t.Errorf("launch_uri %s: %d to %v", bad, st, loc)
		}
	}
}

// testAppCORS checks that a browser app at the default app origin may call
// the token endpoint and the FHIR API, and that other origins may not.
func testAppCORS(t *testing.T, s *Started) {
	preflight := func(u, origin string) http.Header {
		t.Helper()
		req, _ := http.NewRequest(http.MethodOptions, u, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.Header
	}
	for _, u := range []string{s.AuthServer().SMARTConfiguration().TokenEndpoint, s.BaseURL() + "/Patient/123"} {
		for origin, want := range map[string]string{
			appOrigin:                  appOrigin,
			"http://localhost:9000":    "http://localhost:9000",
			"https://evil.example.org": "",
		} {
			if got := preflight(u, origin).Get("Access-Control-Allow-Origin"); got != want {
				t.Errorf("preflight %s from %s: allow %q, want %q", u, origin, got, want)
			}
		}
	}
}
