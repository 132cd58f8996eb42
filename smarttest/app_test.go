package smarttest

import (
	"errors"
	"net/http"
	"testing"
)

func TestLaunchApp(t *testing.T) {
	f := newFixture(t, nil)
	ctx := t.Context()
	launch, err := f.srv.RegisterLaunch(LaunchContext{Patient: "p-3", Encounter: "e-3", NeedPatientBanner: true})
	must(t, err)
	cases := []struct {
		name    string
		a       AppLaunch
		patient string
		errCode string
	}{
		{name: "standalone public", a: AppLaunch{ClientID: appID, Scope: "launch/patient patient/*.rs"}, patient: "123"},
		{name: "standalone confidential", a: AppLaunch{ClientID: confID, ClientSecret: confSecret, Scope: "launch/patient patient/Observation.rs"}, patient: "123"},
		{name: "EHR launch adds the launch scope", a: AppLaunch{ClientID: appID, Scope: "patient/*.rs", Launch: launch}, patient: "p-3"},
		{name: "wrong audience", a: AppLaunch{ClientID: appID, Scope: "patient/*.rs", Audience: "https://evil.example/fhir"}, errCode: "invalid_request"},
		{name: "wrong secret", a: AppLaunch{ClientID: confID, ClientSecret: "x", Scope: "patient/Observation.rs"}, errCode: "invalid_client"},
		{name: "unknown client", a: AppLaunch{ClientID: "nobody", Scope: "patient/*.rs"}, errCode: "invalid_request"},
		{name: "unknown launch", a: AppLaunch{ClientID: appID, Scope: "patient/*.rs", Launch: "nope"}, errCode: "invalid_request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, err := f.srv.LaunchApp(ctx, c.a)
			if c.errCode != "" {
				var re *ResponseError
				if !errors.As(err, &re) || re.Code != c.errCode {
					t.Fatalf("err %v, want %s", err, c.errCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tr.Patient != c.patient || tr.TokenType != "Bearer" || tr.AccessToken == "" {
				t.Errorf("response %+v", tr)
			}
			if got := f.introspect(tr.AccessToken); got["patient"] != c.patient || got["active"] != true {
				t.Errorf("introspection %v", got)
			}
			if c.a.Launch != "" && (tr.NeedPatientBanner == nil || !*tr.NeedPatientBanner || tr.Encounter != "e-3") {
				t.Errorf("EHR context %+v", tr)
			}
		})
	}
	if _, err := f.srv.LaunchApp(ctx, AppLaunch{}); !errors.Is(err, errConfig) {
		t.Errorf("empty AppLaunch: %v", err)
	}
}

func TestRefreshHelper(t *testing.T) {
	f := newFixture(t, nil)
	ctx := t.Context()
	tr, err := f.srv.LaunchApp(ctx, AppLaunch{ClientID: confID, ClientSecret: confSecret, Scope: "launch/patient offline_access patient/Observation.rs"})
	must(t, err)
	next, err := f.srv.Refresh(ctx, confID, confSecret, tr.RefreshToken, "patient/Observation.rs")
	must(t, err)
	if next.RefreshToken == "" || next.RefreshToken == tr.RefreshToken || next.Scope != "patient/Observation.rs" {
		t.Errorf("refreshed %+v", next)
	}
	_, err = f.srv.Refresh(ctx, confID, confSecret, tr.RefreshToken, "")
	var re *ResponseError
	if !errors.As(err, &re) || re.Code != "invalid_grant" || re.Status != http.StatusBadRequest {
		t.Errorf("reused refresh token: %v", err)
	}
}

func TestBackendTokenHelper(t *testing.T) {
	f := newFixture(t, nil)
	tr, err := f.srv.BackendToken(t.Context(), "backend", f.ec, "ec-1", "system/Observation.rs user/*.rs")
	must(t, err)
	if tr.Scope != "system/Observation.rs" || tr.ExpiresIn != 300 || tr.RefreshToken != "" {
		t.Errorf("response %+v", tr)
	}
	_, err = f.srv.BackendToken(t.Context(), "backend", f.ec, "rsa-1", "system/Observation.rs")
	var re *ResponseError
	if !errors.As(err, &re) || re.Code != "invalid_client" || re.Status != http.StatusUnauthorized {
		t.Errorf("wrong kid: %v", err)
	}
}

func TestOpaqueTokens(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.OpaqueTokens = true })
	ctx := t.Context()
	tr, err := f.srv.LaunchApp(ctx, AppLaunch{ClientID: appID, Scope: "launch/patient openid fhirUser patient/*.rs"})
	must(t, err)
	if looksCompact(tr.AccessToken) {
		t.Fatalf("access token is a JWT: %s", tr.AccessToken)
	}
	if _, err := f.verifyJWT(tr.IDToken, appID); err != nil {
		t.Errorf("id_token is still a JWT: %v", err)
	}
	got := f.introspect(tr.AccessToken)
	if got["active"] != true || got["patient"] != "123" || got["fhirUser"] != "Practitioner/7" || got["scope"] != tr.Scope {
		t.Errorf("introspection %v", got)
	}
	bt, err := f.srv.BackendToken(ctx, "backend", f.rsa, "rsa-1", "system/*.rs")
	must(t, err)
	if looksCompact(bt.AccessToken) || f.introspect(bt.AccessToken)["client_id"] != "backend" {
		t.Errorf("backend opaque token %+v", bt)
	}
}
