package smarttest

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/middleware"
)

func TestStandaloneLaunch(t *testing.T) {
	f := newFixture(t, nil)
	code := f.code(authParams("launch/patient launch/encounter openid fhirUser offline_access patient/Observation.rs patient/Patient.read"))
	st, resp := f.redeem(code)
	if st != http.StatusOK {
		t.Fatalf("token: %d %v", st, resp)
	}
	want := map[string]any{
		"token_type": "Bearer",
		"scope":      "launch/patient launch/encounter openid fhirUser offline_access patient/Observation.rs patient/Patient.read",
		"patient":    "123",
		"encounter":  "enc-1",
		"expires_in": float64(3600),
	}
	for k, v := range want {
		if resp[k] != v {
			t.Errorf("response %s = %v, want %v", k, resp[k], v)
		}
	}
	if _, ok := resp["need_patient_banner"]; ok {
		t.Error("standalone launch sent need_patient_banner")
	}
	at, _ := resp["access_token"].(string)
	tok, err := f.verifyJWT(at, testFHIRBase)
	if err != nil {
		t.Fatalf("access token does not verify: %v", err)
	}
	claims := claimsOf(t, at)
	for k, v := range map[string]any{"patient": "123", "encounter": "enc-1", "fhirUser": "Practitioner/7", "client_id": appID,
		"sub": "Practitioner/7", "scope": want["scope"], "aud": testFHIRBase, "iss": f.srv.SMARTConfiguration().Issuer} {
		if claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, claims[k], v)
		}
	}
	if tok.JwtID() == "" || tok.IssuedAt().IsZero() {
		t.Error("access token lacks jti or iat")
	}
	// The id_token: RS256, aud the client, fhirUser.
	idt, _ := resp["id_token"].(string)
	if _, err := f.verifyJWT(idt, appID); err != nil {
		t.Fatalf("id_token does not verify: %v", err)
	}
	if c := claimsOf(t, idt); c["fhirUser"] != "Practitioner/7" || c["sub"] != "Practitioner/7" {
		t.Errorf("id_token claims %v", c)
	}
	if resp["refresh_token"] == nil || resp["refresh_token"] == "" {
		t.Error("offline_access gave no refresh token")
	}
}

func TestStandaloneWithoutExtras(t *testing.T) {
	f := newFixture(t, nil)
	st, resp := f.redeem(f.code(authParams("patient/Observation.rs")))
	if st != http.StatusOK {
		t.Fatal(st, resp)
	}
	for _, k := range []string{"refresh_token", "id_token", "patient", "encounter"} {
		if _, ok := resp[k]; ok {
			t.Errorf("response has %s without asking for it", k)
		}
	}
	// openid without fhirUser: an id_token without the fhirUser claim.
	_, resp = f.redeem(f.code(authParams("openid patient/Observation.rs")))
	idt, _ := resp["id_token"].(string)
	if idt == "" {
		t.Fatal("openid gave no id_token")
	}
	if c := claimsOf(t, idt); c["fhirUser"] != nil {
		t.Errorf("fhirUser claim without the fhirUser scope: %v", c)
	}
}

func TestStandalonePatientUser(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.User = "Patient/p-55"; c.Patient = "" })
	_, resp := f.redeem(f.code(authParams("launch/patient openid fhirUser patient/*.rs")))
	if resp["patient"] != "p-55" {
		t.Errorf("patient %v, want p-55 (from User)", resp["patient"])
	}
	if c := claimsOf(t, resp["id_token"].(string)); c["fhirUser"] != "Patient/p-55" {
		t.Errorf("fhirUser %v", c["fhirUser"])
	}
	g := newFixture(t, func(c *Config) { c.Patient = "" })
	if _, red := g.authorize(authParams("launch/patient patient/*.rs")); red.Get("error") != "invalid_request" {
		t.Errorf("launch/patient with no patient configured: %v", red)
	}
}

func TestEHRLaunch(t *testing.T) {
	f := newFixture(t, nil)
	lc := LaunchContext{
		Patient:   "p-1",
		Encounter: "e-1",
		FHIRContext: []any{middleware.ContextItem{Reference: "DiagnosticReport/dr-1"},
			map[string]any{"reference": "List/l-1", "role": "https://example.org/med-list-at-home"}},
		NeedPatientBanner: true,
		SMARTStyleURL:     "https://ehr.example/style.json",
		Intent:            "reconcile-medications",
		Tenant:            "t-1",
		User:              "Practitioner/99",
	}
	launch, err := f.srv.RegisterLaunch(lc)
	must(t, err)
	q := authParams("launch openid fhirUser online_access patient/*.rs")
	q.Set("launch", launch)
	st, resp := f.redeem(f.code(q))
	if st != http.StatusOK {
		t.Fatal(st, resp)
	}
	wantCtx := []any{map[string]any{"reference": "DiagnosticReport/dr-1"}, map[string]any{"reference": "List/l-1", "role": "https://example.org/med-list-at-home"}}
	for k, v := range map[string]any{"patient": "p-1", "encounter": "e-1", "need_patient_banner": true, "smart_style_url": lc.SMARTStyleURL,
		"intent": lc.Intent, "tenant": "t-1", "fhirContext": wantCtx} {
		if !reflect.DeepEqual(resp[k], v) {
			t.Errorf("response %s = %#v, want %#v", k, resp[k], v)
		}
	}
	claims := claimsOf(t, resp["access_token"].(string))
	for k, v := range map[string]any{"patient": "p-1", "encounter": "e-1", "need_patient_banner": true, "fhirUser": "Practitioner/99", "fhirContext": wantCtx} {
		if !reflect.DeepEqual(claims[k], v) {
			t.Errorf("claim %s = %#v, want %#v", k, claims[k], v)
		}
	}
	if resp["refresh_token"] == nil {
		t.Error("online_access gave no refresh token")
	}
	// need_patient_banner false is still sent in an EHR launch.
	launch2, err := f.srv.RegisterLaunch(LaunchContext{Patient: "p-2"})
	must(t, err)
	q.Set("launch", launch2)
	_, resp = f.redeem(f.code(q))
	if resp["need_patient_banner"] != false || resp["patient"] != "p-2" {
		t.Errorf("second launch: %v", resp)
	}
}

func TestRegisterLaunchValidates(t *testing.T) {
	f := newFixture(t, nil)
	for name, lc := range map[string]LaunchContext{
		"bad patient":           {Patient: "Patient/1"},
		"bad encounter":         {Encounter: "a b"},
		"bad user":              {User: "Organization/1"},
		"empty fhirContext":     {FHIRContext: []any{middleware.ContextItem{Role: "x"}}},
		"number in fhirContext": {FHIRContext: []any{42}},
		"bad 2.0 reference":     {FHIRContext: []any{"DiagnosticReport"}},
		"unencodable":           {FHIRContext: []any{func() {}}},
	} {
		if _, err := f.srv.RegisterLaunch(lc); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestCodeRedemption(t *testing.T) {
	f := newFixture(t, nil)
	base := func(code string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appRedirect}, "client_id": {appID}, "code_verifier": {verifier}}
	}
	cases := []struct {
		name    string
		mod     func(url.Values)
		hdr     map[string]string
		status  int
		errCode string
	}{
		{name: "valid", mod: func(url.Values) {}, status: 200},
		{name: "wrong verifier", mod: func(q url.Values) { q.Set("code_verifier", strings.Repeat("a", 43)) }, status: 400, errCode: "invalid_grant"},
		{name: "verifier missing", mod: func(q url.Values) { q.Del("code_verifier") }, status: 400, errCode: "invalid_grant"},
		{name: "verifier is the challenge (plain)", mod: func(q url.Values) { q.Set("code_verifier", S256Challenge(verifier)) }, status: 400, errCode: "invalid_grant"},
		{name: "verifier too short", mod: func(q url.Values) { q.Set("code_verifier", verifier[:42]) }, status: 400, errCode: "invalid_grant"},
		{name: "verifier bad characters", mod: func(q url.Values) { q.Set("code_verifier", verifier[:42]+"+") }, status: 400, errCode: "invalid_grant"},
		{name: "redirect differs", mod: func(q url.Values) { q.Set("redirect_uri", appRedirect+"/") }, status: 400, errCode: "invalid_grant"},
		{name: "redirect missing", mod: func(q url.Values) { q.Del("redirect_uri") }, status: 400, errCode: "invalid_grant"},
		{name: "other client", mod: func(q url.Values) { q.Set("client_id", confID); q.Set("client_secret", confSecret) }, status: 400, errCode: "invalid_grant"},
		{name: "unknown client", mod: func(q url.Values) { q.Set("client_id", "nobody") }, status: 401, errCode: "invalid_client"},
		{name: "no client", mod: func(q url.Values) { q.Del("client_id") }, status: 401, errCode: "invalid_client"},
		{name: "unknown code", mod: func(q url.Values) { q.Set("code", "nope") }, status: 400, errCode: "invalid_grant"},
		{name: "code missing", mod: func(q url.Values) { q.Del("code") }, status: 400, errCode: "invalid_request"},
		{name: "grant type missing", mod: func(q url.Values) { q.Del("grant_type") }, status: 400, errCode: "invalid_request"},
		{name: "grant type unknown", mod: func(q url.Values) { q.Set("grant_type", "password") }, status: 400, errCode: "unsupported_grant_type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			form := base(f.code(authParams("patient/*.rs")))
			c.mod(form)
			st, resp := f.token(form, c.hdr)
			if st != c.status || (c.errCode != "" && resp["error"] != c.errCode) {
				t.Fatalf("status %d %v, want %d %s", st, resp, c.status, c.errCode)
			}
			if c.status == 200 {
				return
			}
			// A refused attempt does not burn the code for its owner.
			if form.Get("code") != "nope" && form.Has("code") {
				if st, resp := f.token(base(form.Get("code")), nil); st != 200 {
					t.Errorf("legitimate redemption after a refused one: %d %v", st, resp)
				}
			}
		})
	}
}

func TestCodeReuseRevokes(t *testing.T) {
	f := newFixture(t, nil)
	code := f.code(authParams("offline_access patient/*.rs"))
	st, first := f.redeem(code)
	if st != 200 {
		t.Fatal(st, first)
	}
	at := first["access_token"].(string)
	if f.introspect(at)["active"] != true {
		t.Fatal("fresh token inactive")
	}
	if st, resp := f.redeem(code); st != 400 || resp["error"] != "invalid_grant" {
		t.Fatalf("reuse: %d %v", st, resp)
	}
	if f.introspect(at)["active"] != false {
		t.Error("token from a reused code still active")
	}
	if st, _ := f.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first["refresh_token"].(string)}, "client_id": {appID}}, nil); st != 400 {
		t.Error("refresh token from a reused code still works")
	}
}

func TestCodeExpires(t *testing.T) {
	f := newFixture(t, nil)
	code := f.code(authParams("patient/*.rs"))
	f.clock.Advance(codeLifetime + time.Second)
	if st, resp := f.redeem(code); st != 400 || resp["error"] != "invalid_grant" {
		t.Fatalf("expired code: %d %v", st, resp)
	}
	code = f.code(authParams("patient/*.rs"))
	f.clock.Advance(codeLifetime - time.Second)
	if st, _ := f.redeem(code); st != 200 {
		t.Fatalf("code just before expiry: %d", st)
	}
}

func TestConfidentialClientAuth(t *testing.T) {
	f := newFixture(t, nil)
	params := func() url.Values {
		q := authParams("launch/patient patient/Observation.rs")
		q.Set("client_id", confID)
		return q
	}
	form := func(code string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appRedirect}, "code_verifier": {verifier}}
	}
	cases := []struct {
		name   string
		mod    func(url.Values)
		hdr    map[string]string
		status int
	}{
		{name: "basic", mod: func(url.Values) {}, hdr: map[string]string{"Authorization": basicAuth(confID, confSecret)}, status: 200},
		{name: "basic with matching client_id", mod: func(q url.Values) { q.Set("client_id", confID) }, hdr: map[string]string{"Authorization": basicAuth(confID, confSecret)}, status: 200},
		{name: "post", mod: func(q url.Values) { q.Set("client_id", confID); q.Set("client_secret", confSecret) }, status: 200},
		{name: "basic wrong secret", hdr: map[string]string{"Authorization": basicAuth(confID, "nope")}, status: 401},
		{name: "basic unknown client", hdr: map[string]string{"Authorization": basicAuth("nobody", confSecret)}, status: 401},
		{name: "basic malformed", hdr: map[string]string{"Authorization": "Basic " + b64([]byte(confID+":%zz"))}, status: 401},
		{name: "post wrong secret", mod: func(q url.Values) { q.Set("client_id", confID); q.Set("client_secret", confSecret+"x") }, status: 401},
		{name: "post empty secret", mod: func(q url.Values) { q.Set("client_id", confID); q.Set("client_secret", "") }, status: 401},
		{name: "no secret (as public)", mod: func(q url.Values) { q.Set("client_id", confID) }, status: 401},
		{name: "basic and post", mod: func(q url.Values) { q.Set("client_secret", confSecret) }, hdr: map[string]string{"Authorization": basicAuth(confID, confSecret)}, status: 401},
		{name: "basic with other client_id", mod: func(q url.Values) { q.Set("client_id", appID) }, hdr: map[string]string{"Authorization": basicAuth(confID, confSecret)}, status: 401},
		{name: "public client with a secret", mod: func(q url.Values) { q.Set("client_id", appID); q.Set("client_secret", "x") }, status: 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := form(f.code(params()))
			if c.mod != nil {
				c.mod(q)
			}
			st, resp := f.token(q, c.hdr)
			if st != c.status {
				t.Fatalf("status %d %v, want %d", st, resp, c.status)
			}
			if st == 401 && resp["error"] != "invalid_client" {
				t.Errorf("error %v, want invalid_client", resp["error"])
			}
		})
	}
}

func TestRefreshRotation(t *testing.T) {
	f := newFixture(t, nil)
	refresh := func(rt string, extra url.Values) (int, map[string]any) {
		q := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {appID}}
		for k, v := range extra {
			q[k] = v
		}
		return f.token(q, nil)
	}
	_, first := f.redeem(f.code(authParams("launch/patient offline_access patient/Observation.rs patient/Patient.rs")))
	rt1 := first["refresh_token"].(string)

	st, second := refresh(rt1, nil)
	if st != 200 {
		t.Fatalf("refresh: %d %v", st, second)
	}
	rt2, _ := second["refresh_token"].(string)
	if rt2 == "" || rt2 == rt1 {
		t.Fatalf("refresh token not rotated: %q", rt2)
	}
	if second["patient"] != "123" || second["scope"] != first["scope"] {
		t.Errorf("refreshed context %v", second)
	}
	if _, ok := second["id_token"]; ok {
		t.Error("id_token on refresh without openid")
	}

	// Narrowing works; widening does not.
	st, narrow := refresh(rt2, url.Values{"scope": {"patient/Observation.rs"}})
	if st != 200 || narrow["scope"] != "patient/Observation.rs" {
		t.Fatalf("narrow: %d %v", st, narrow)
	}
	rt3 := narrow["refresh_token"].(string)
	if st, resp := refresh(rt3, url.Values{"scope": {"patient/Observation.rs patient/Condition.rs"}}); st != 400 || resp["error"] != "invalid_scope" {
		t.Errorf("widen: %d %v", st, resp)
	}
	if st, resp := refresh(rt3, url.Values{"scope": {"patient/Observation.rs"}, "client_id": {confID}, "client_secret": {confSecret}}); st != 400 || resp["error"] != "invalid_grant" {
		t.Errorf("other client: %d %v", st, resp)
	}
	// The full scope set is still there after narrowing.
	st, full := refresh(rt3, nil)
	if st != 200 || full["scope"] != first["scope"] {
		t.Fatalf("refresh after narrowing: %d %v", st, full)
	}
	rt4 := full["refresh_token"].(string)
	at4 := full["access_token"].(string)

	// Reusing a rotated token is refused and kills the family.
	if st, resp := refresh(rt1, nil); st != 400 || resp["error"] != "invalid_grant" {
		t.Fatalf("reuse of rotated token: %d %v", st, resp)
	}
	if st, _ := refresh(rt4, nil); st != 400 {
		t.Error("newest refresh token still works after a reuse")
	}
	if f.introspect(at4)["active"] != false {
		t.Error("access token of a revoked family still active")
	}
}

func TestRefreshExpires(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.RefreshTokenLifetime = time.Hour })
	_, resp := f.redeem(f.code(authParams("offline_access patient/*.rs")))
	f.clock.Advance(time.Hour)
	if st, r := f.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {resp["refresh_token"].(string)}, "client_id": {appID}}, nil); st != 400 {
		t.Errorf("expired refresh token: %d %v", st, r)
	}
}

func TestTokenEndpointRequestShape(t *testing.T) {
	f := newFixture(t, nil)
	cases := []struct {
		name   string
		method string
		ctype  string
		body   string
		status int
	}{
		{"GET", http.MethodGet, "", "", 405},
		{"JSON body", http.MethodPost, "application/json", `{"grant_type":"client_credentials"}`, 400},
		{"repeated parameter", http.MethodPost, "application/x-www-form-urlencoded", "grant_type=authorization_code&grant_type=client_credentials&client_id=app", 400},
		{"malformed form", http.MethodPost, "application/x-www-form-urlencoded", "a=%zz", 400},
		{"too large", http.MethodPost, "application/x-www-form-urlencoded", "x=" + strings.Repeat("a", maxFormBytes), 413},
		{"form with charset", http.MethodPost, "application/x-www-form-urlencoded; charset=utf-8", "grant_type=password&client_id=app", 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, f.srv.SMARTConfiguration().TokenEndpoint, strings.NewReader(c.body))
			if c.ctype != "" {
				req.Header.Set("Content-Type", c.ctype)
			}
			resp, err := http.DefaultClient.Do(req)
			must(t, err)
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Errorf("status %d, want %d", resp.StatusCode, c.status)
			}
		})
	}
}
