package smarttest

import (
	"crypto"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/fhirguard/fhirguard/middleware"
)

func TestIntrospection(t *testing.T) {
	f := newFixture(t, nil)
	banner := true
	opts := TokenOptions{ClientID: appID, Scopes: "launch/patient openid fhirUser patient/*.rs", Patient: "123", Encounter: "e-1",
		FHIRUser: "Practitioner/7", FHIRContext: []any{middleware.ContextItem{Reference: "Appointment/a-1"}}, NeedPatientBanner: &banner,
		SMARTStyleURL: "https://ehr.example/s.json", Tenant: "t-9"}
	jwtTok, err := f.srv.MintToken(opts)
	must(t, err)
	opaqueOpts := opts
	opaqueOpts.Opaque = true
	opaqueTok, err := f.srv.MintToken(opaqueOpts)
	must(t, err)
	if strings.Count(opaqueTok, ".") != 0 || len(opaqueTok) < 32 {
		t.Fatalf("opaque token looks like %q", opaqueTok)
	}
	shortTok, err := f.srv.MintToken(TokenOptions{Scopes: "patient/*.rs", Lifetime: time.Minute})
	must(t, err)
	revokedTok, err := f.srv.MintToken(TokenOptions{ClientID: appID, Scopes: "patient/*.rs"})
	must(t, err)
	if st, _ := f.post(f.srv.SMARTConfiguration().RevocationEndpoint, url.Values{"token": {revokedTok}, "client_id": {appID}}, nil); st != 200 {
		t.Fatalf("revoke: %d", st)
	}
	revokedOpaque, err := f.srv.MintToken(TokenOptions{ClientID: appID, Scopes: "patient/*.rs", Opaque: true})
	must(t, err)
	if !f.srv.Revoke(revokedOpaque) {
		t.Fatal("Revoke did not know the opaque token")
	}
	f.clock.Advance(2 * time.Minute) // shortTok is now expired

	want := map[string]any{"active": true, "token_type": "Bearer", "client_id": appID, "scope": opts.Scopes, "patient": "123",
		"encounter": "e-1", "fhirUser": "Practitioner/7", "sub": "Practitioner/7", "iss": f.srv.SMARTConfiguration().Issuer, "aud": testFHIRBase,
		"need_patient_banner": true, "smart_style_url": opts.SMARTStyleURL, "tenant": "t-9",
		"fhirContext": []any{map[string]any{"reference": "Appointment/a-1"}}}
	for _, c := range []struct{ name, tok string }{{"jwt", jwtTok}, {"opaque", opaqueTok}} {
		t.Run("active "+c.name, func(t *testing.T) {
			got := f.introspect(c.tok)
			for k, v := range want {
				if !reflect.DeepEqual(got[k], v) {
					t.Errorf("%s = %#v, want %#v", k, got[k], v)
				}
			}
			for _, k := range []string{"exp", "iat", "jti"} {
				if _, ok := got[k].(float64); !ok && k != "jti" {
					t.Errorf("%s = %#v, want a number", k, got[k])
				}
			}
		})
	}
	inactive := map[string]string{
		"expired":        shortTok,
		"revoked jwt":    revokedTok,
		"revoked opaque": revokedOpaque,
		"unknown opaque": "not-a-token",
		"garbage jwt":    "a.b.c",
		"empty segments": "..",
	}
	for _, flaw := range Flaws() {
		tok, err := f.srv.MintFlawedToken(flaw, TokenOptions{Scopes: "patient/*.rs"})
		must(t, err)
		if flaw == FlawWrongAudience {
			continue // a valid token of this server, for another audience: active, with that aud
		}
		inactive["flaw "+flaw.String()] = tok
	}
	for name, tok := range inactive {
		t.Run("inactive "+name, func(t *testing.T) {
			got := f.introspect(tok)
			if !reflect.DeepEqual(got, map[string]any{"active": false}) {
				t.Errorf("got %v, want only active=false", got)
			}
		})
	}
	t.Run("wrong audience visible", func(t *testing.T) {
		tok, err := f.srv.MintFlawedToken(FlawWrongAudience, TokenOptions{Scopes: "patient/*.rs"})
		must(t, err)
		if got := f.introspect(tok); got["active"] != true || got["aud"] != wrongAudience {
			t.Errorf("got %v", got)
		}
	})
}

func TestIntrospectionCallerAuth(t *testing.T) {
	f := newFixture(t, nil)
	tok, err := f.srv.MintToken(TokenOptions{Scopes: "patient/*.rs"})
	must(t, err)
	rsBearer, err := f.srv.MintToken(TokenOptions{ClientID: rsID, Scopes: "system/*.rs"})
	must(t, err)
	appBearer, err := f.srv.MintToken(TokenOptions{ClientID: appID, Scopes: "system/*.rs"})
	must(t, err)
	expiredBearer, err := f.srv.MintFlawedToken(FlawExpired, TokenOptions{ClientID: rsID})
	must(t, err)
	cases := []struct {
		name   string
		form   url.Values
		hdr    map[string]string
		status int
	}{
		{"basic", url.Values{}, map[string]string{"Authorization": basicAuth(rsID, rsSecret)}, 200},
		{"post", url.Values{"client_id": {rsID}, "client_secret": {rsSecret}}, nil, 200},
		{"bearer of the resource server", url.Values{}, map[string]string{"Authorization": "Bearer " + rsBearer}, 200},
		{"bearer lower case scheme", url.Values{}, map[string]string{"Authorization": "bearer " + rsBearer}, 200},
		{"nobody", url.Values{}, nil, 401},
		{"wrong secret", url.Values{}, map[string]string{"Authorization": basicAuth(rsID, "x")}, 401},
		{"client without Introspect", url.Values{"client_id": {confID}, "client_secret": {confSecret}}, nil, 401},
		{"public client", url.Values{"client_id": {appID}}, nil, 401},
		{"public client naming the resource server", url.Values{"client_id": {rsID}}, nil, 401},
		{"bearer of an app", url.Values{}, map[string]string{"Authorization": "Bearer " + appBearer}, 403},
		{"expired bearer", url.Values{}, map[string]string{"Authorization": "Bearer " + expiredBearer}, 401},
		{"bearer garbage", url.Values{}, map[string]string{"Authorization": "Bearer xyz"}, 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.form.Set("token", tok)
			st, resp := f.post(f.srv.SMARTConfiguration().IntrospectionEndpoint, c.form, c.hdr)
			if st != c.status {
				t.Fatalf("status %d %v, want %d", st, resp, c.status)
			}
			if st == 200 && resp["active"] != true {
				t.Errorf("token not active: %v", resp)
			}
			if st != 200 && resp["active"] != nil {
				t.Errorf("refused call leaked an answer: %v", resp)
			}
		})
	}
	if st, resp := f.post(f.srv.SMARTConfiguration().IntrospectionEndpoint, url.Values{}, map[string]string{"Authorization": basicAuth(rsID, rsSecret)}); st != 400 || resp["error"] != "invalid_request" {
		t.Errorf("no token: %d %v", st, resp)
	}
}

func TestIntrospectRefreshToken(t *testing.T) {
	f := newFixture(t, nil)
	_, resp := f.redeem(f.code(authParams("offline_access patient/*.rs")))
	rt := resp["refresh_token"].(string)
	got := f.introspect(rt)
	if got["active"] != true || got["token_type"] != "refresh_token" || got["client_id"] != appID || got["scope"] != "offline_access patient/*.rs" {
		t.Errorf("refresh token introspection %v", got)
	}
	if st, _ := f.post(f.srv.SMARTConfiguration().RevocationEndpoint, url.Values{"token": {rt}, "client_id": {appID}}, nil); st != 200 {
		t.Fatal("revoke refresh token")
	}
	if got := f.introspect(rt); got["active"] != false {
		t.Errorf("revoked refresh token %v", got)
	}
	if got := f.introspect(resp["access_token"].(string)); got["active"] != false {
		t.Errorf("access token of a revoked grant %v", got)
	}
}

func TestRevocation(t *testing.T) {
	f := newFixture(t, nil)
	mint := func(client string) string {
		tok, err := f.srv.MintToken(TokenOptions{ClientID: client, Scopes: "patient/*.rs"})
		must(t, err)
		return tok
	}
	cases := []struct {
		name       string
		tok        string
		form       url.Values
		hdr        map[string]string
		status     int
		stillAlive bool
	}{
		{name: "public client own token", tok: mint(appID), form: url.Values{"client_id": {appID}}, status: 200},
		{name: "confidential own token", tok: mint(confID), hdr: map[string]string{"Authorization": basicAuth(confID, confSecret)}, status: 200},
		{name: "with type hint", tok: mint(appID), form: url.Values{"client_id": {appID}, "token_type_hint": {"access_token"}}, status: 200},
		{name: "other client's token", tok: mint(confID), form: url.Values{"client_id": {appID}}, status: 400, stillAlive: true},
		{name: "confidential without secret", tok: mint(confID), form: url.Values{"client_id": {confID}}, status: 401, stillAlive: true},
		{name: "no client", tok: mint(appID), status: 401, stillAlive: true},
		{name: "unknown token", tok: "nope", form: url.Values{"client_id": {appID}}, status: 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			form := url.Values{"token": {c.tok}}
			for k, v := range c.form {
				form[k] = v
			}
			st, resp := f.post(f.srv.SMARTConfiguration().RevocationEndpoint, form, c.hdr)
			if st != c.status {
				t.Fatalf("status %d %v, want %d", st, resp, c.status)
			}
			if c.tok == "nope" {
				return
			}
			if got := f.introspect(c.tok)["active"] == true; got != c.stillAlive {
				t.Errorf("active after revocation attempt: %v, want %v", got, c.stillAlive)
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	f := newFixture(t, nil)
	fetch := func() jwk.Set {
		set, err := jwk.Fetch(t.Context(), f.srv.SMARTConfiguration().JWKSURI)
		must(t, err)
		return set
	}
	kids := func(set jwk.Set) []string {
		var out []string
		for i := 0; i < set.Len(); i++ {
			k, _ := set.Key(i)
			if k.KeyType() != "RSA" || k.Algorithm().String() != "RS256" || k.KeyUsage() != "sig" {
				t.Errorf("JWK %v", k)
			}
			if _, ok := k.(jwk.RSAPrivateKey); ok {
				t.Error("JWKS publishes a private key")
			}
			out = append(out, k.KeyID())
		}
		return out
	}
	old := f.srv.SigningKeyID()
	oldTok, err := f.srv.MintToken(TokenOptions{Scopes: "patient/*.rs"})
	must(t, err)
	if got := kids(fetch()); !reflect.DeepEqual(got, []string{old}) {
		t.Fatalf("JWKS %v, want [%s]", got, old)
	}
	kid, err := f.srv.RotateKey()
	must(t, err)
	if kid == old || f.srv.SigningKeyID() != kid {
		t.Fatalf("rotated kid %q, signing %q, old %q", kid, f.srv.SigningKeyID(), old)
	}
	if got := kids(fetch()); !reflect.DeepEqual(got, []string{old, kid}) || !reflect.DeepEqual(f.srv.keyIDs(), got) {
		t.Fatalf("JWKS after rotation %v", got)
	}
	newTok, err := f.srv.MintToken(TokenOptions{Scopes: "patient/*.rs"})
	must(t, err)
	if h := headerOf(t, newTok); h["kid"] != kid || h["typ"] != "at+jwt" || h["alg"] != "RS256" {
		t.Errorf("new token header %v", h)
	}
	for _, tok := range []string{oldTok, newTok} {
		if _, err := f.verifyJWT(tok, testFHIRBase); err != nil {
			t.Errorf("token does not verify during rotation: %v", err)
		}
	}
	must(t, f.srv.RemoveKey(old))
	if got := kids(fetch()); !reflect.DeepEqual(got, []string{kid}) {
		t.Fatalf("JWKS after removal %v", got)
	}
	if f.introspect(oldTok)["active"] != false || f.introspect(newTok)["active"] != true {
		t.Error("introspection after removal: old token must be inactive, new one active")
	}
	if len(f.srv.PublicKeys()) != 1 {
		t.Errorf("PublicKeys %v", f.srv.PublicKeys())
	}
	if err := f.srv.RemoveKey(kid); !errors.Is(err, errLastKey) {
		t.Errorf("removing the last key: %v", err)
	}
	if err := f.srv.RemoveKey("nope"); !errors.Is(err, errUnknownKey) {
		t.Errorf("removing an unknown key: %v", err)
	}
	// Removing the signing key hands over to the newest remaining one.
	k3, err := f.srv.RotateKey()
	must(t, err)
	must(t, f.srv.RemoveKey(k3))
	if f.srv.SigningKeyID() != kid {
		t.Errorf("signing key %q, want %q", f.srv.SigningKeyID(), kid)
	}
}

func headerOf(t *testing.T, tok string) map[string]any {
	t.Helper()
	b, err := b64decode(strings.Split(tok, ".")[0])
	must(t, err)
	var m map[string]any
	must(t, json.Unmarshal(b, &m))
	return m
}

func TestDiscovery(t *testing.T) {
	f := newFixture(t, nil)
	resp, err := http.Get(f.srv.SMARTConfiguration().Issuer + "/.well-known/openid-configuration")
	must(t, err)
	defer resp.Body.Close()
	var doc map[string]any
	must(t, json.NewDecoder(resp.Body).Decode(&doc))
	if resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("content type %q", resp.Header.Get("Content-Type"))
	}
	for k, v := range map[string]any{"issuer": f.srv.SMARTConfiguration().Issuer, "jwks_uri": f.srv.SMARTConfiguration().JWKSURI, "token_endpoint": f.srv.SMARTConfiguration().TokenEndpoint,
		"authorization_endpoint": f.srv.SMARTConfiguration().AuthorizationEndpoint, "introspection_endpoint": f.srv.SMARTConfiguration().IntrospectionEndpoint,
		"revocation_endpoint": f.srv.SMARTConfiguration().RevocationEndpoint, "code_challenge_methods_supported": []any{"S256"}} {
		if !reflect.DeepEqual(doc[k], v) {
			t.Errorf("%s = %v, want %v", k, doc[k], v)
		}
	}
	sc := f.srv.SMARTConfiguration()
	for _, m := range sc.CodeChallengeMethodsSupported {
		if m == "plain" {
			t.Error("plain advertised")
		}
	}
	for _, u := range []string{sc.Issuer, sc.JWKSURI, sc.AuthorizationEndpoint, sc.TokenEndpoint, sc.IntrospectionEndpoint, sc.RevocationEndpoint} {
		if p, err := url.Parse(u); err != nil || !p.IsAbs() {
			t.Errorf("endpoint %q not absolute", u)
		}
	}
	has := func(list []string, v string) bool {
		for _, x := range list {
			if x == v {
				return true
			}
		}
		return false
	}
	for _, c := range []string{"launch-ehr", "launch-standalone", "client-confidential-asymmetric", "sso-openid-connect", "permission-v2", "context-ehr-patient"} {
		if !has(sc.Capabilities, c) {
			t.Errorf("capability %s missing", c)
		}
	}
	if !has(sc.GrantTypesSupported, "client_credentials") || !has(sc.TokenEndpointAuthSigningAlgValuesSupported, "ES384") {
		t.Errorf("backend services not advertised: %+v", sc)
	}
	sc.Capabilities[0] = "changed"
	if f.srv.SMARTConfiguration().Capabilities[0] == "changed" {
		t.Error("SMARTConfiguration shares its slices")
	}
	for _, p := range []string{"/nope", "/.well-known/smart-configuration", "/token/x"} {
		r, err := http.Get(f.srv.SMARTConfiguration().Issuer + p)
		must(t, err)
		r.Body.Close()
		if r.StatusCode != 404 {
			t.Errorf("%s: %d, want 404", p, r.StatusCode)
		}
	}
}

func TestMounted(t *testing.T) {
	testKeys(t)
	for _, strip := range []bool{false, true} {
		name := "full path"
		if strip {
			name = "StripPrefix"
		}
		t.Run(name, func(t *testing.T) {
			ts := httptest.NewUnstartedServer(nil)
			base := "http://" + ts.Listener.Addr().String()
			srv, err := New(Config{Issuer: base + "/auth", FHIRBase: base + "/fhir", User: "Patient/p1"})
			must(t, err)
			defer srv.Close()
			mux := http.NewServeMux()
			if strip {
				mux.Handle("/auth/", http.StripPrefix("/auth", srv))
			} else {
				mux.Handle("/auth/", srv)
			}
			mux.HandleFunc("/fhir/", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("fhir")) })
			ts.Config.Handler = mux
			ts.Start()
			defer ts.Close()
			if srv.SMARTConfiguration().TokenEndpoint != base+"/auth/token" || srv.fhirBase != base+"/fhir" {
				t.Fatalf("URLs %s %s", srv.SMARTConfiguration().TokenEndpoint, srv.fhirBase)
			}
			f := &fixture{t: t, srv: srv, clock: &fakeClock{t: time.Now()}, rsa: rsaKey, ec: ecKey}
			must(t, srv.RegisterClient(Client{ID: appID, RedirectURIs: []string{appRedirect}}))
			must(t, srv.RegisterClient(Client{ID: "backend", PublicKeys: map[string]crypto.PublicKey{"rsa-1": rsaKey.Public()}}))
			must(t, srv.RegisterClient(Client{ID: rsID, Secret: rsSecret, Introspect: true}))
			q := authParams("launch/patient patient/*.rs")
			q.Set("aud", srv.fhirBase)
			st, resp := f.redeem(f.code(q))
			if st != 200 || resp["patient"] != "p1" {
				t.Fatalf("auth code flow: %d %v", st, resp)
			}
			if got := f.introspect(resp["access_token"].(string)); got["active"] != true || got["iss"] != base+"/auth" {
				t.Errorf("introspection %v", got)
			}
			if st, resp := f.token(backendForm(f.assertion(rsaKey, "rsa-1", nil), "system/*.rs"), nil); st != 200 {
				t.Errorf("backend: %d %v", st, resp)
			}
			if _, err := jwk.Fetch(t.Context(), srv.SMARTConfiguration().JWKSURI); err != nil {
				t.Errorf("JWKS: %v", err)
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"minimal", Config{FHIRBase: "http://localhost/fhir", Issuer: "http://localhost/auth"}, true},
		{"all set", Config{FHIRBase: "https://f.example/r4", Issuer: "https://a.example", User: "RelatedPerson/r", Patient: "p", Encounter: "e",
			AccessTokenLifetime: time.Minute, BackendTokenLifetime: time.Minute, RefreshTokenLifetime: time.Hour}, true},
		{"no FHIR base", Config{Issuer: "http://localhost/auth"}, false},
		{"relative FHIR base", Config{FHIRBase: "/fhir", Issuer: "http://localhost/auth"}, false},
		{"FHIR base with query", Config{FHIRBase: "http://localhost/fhir?x=1", Issuer: "http://localhost/auth"}, false},
		{"FHIR base ftp", Config{FHIRBase: "ftp://localhost/fhir", Issuer: "http://localhost/auth"}, false},
		{"issuer with fragment", Config{FHIRBase: "http://localhost/fhir", Issuer: "http://localhost/auth#x"}, false},
		{"issuer with user info", Config{FHIRBase: "http://localhost/fhir", Issuer: "http://u:p@localhost/auth"}, false},
		{"user not a user type", Config{FHIRBase: "http://localhost/fhir", Issuer: "http://localhost/a", User: "Organization/1"}, false},
		{"user without id", Config{FHIRBase: "http://localhost/fhir", Issuer: "http://localhost/a", User: "Practitioner/"}, false},
		{"user absolute", Config{FHIRBase: "http://localhost/fhir", Issuer: "http://localhost/a", User: "http://x/Practitioner/1"}, false},
		{"patient a reference", Config{FHIRBase: "http://localhost/fhir", Issuer: "http://localhost/a", Patient: "Patient/1"}, false},
		{"encounter bad", Config{FHIRBase: "http://localhost/fhir", Issuer: "http://localhost/a", Encounter: "a b"}, false},
		{"negative lifetime", Config{FHIRBase: "http://localhost/fhir", Issuer: "http://localhost/a", AccessTokenLifetime: -1}, false},
		{"backend lifetime too long", Config{FHIRBase: "http://localhost/fhir", Issuer: "http://localhost/a", BackendTokenLifetime: time.Hour}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := New(c.cfg)
			if c.ok != (err == nil) {
				t.Fatalf("err %v, want ok=%v", err, c.ok)
			}
			if err != nil && !errors.Is(err, errConfig) {
				t.Errorf("error %v is not ErrConfig", err)
			}
			if s != nil {
				s.Close()
			}
		})
	}
}

func TestCORS(t *testing.T) {
	f := newFixture(t, nil)
	cases := []struct {
		name, method, path, origin string
		status                     int
		allow                      string
	}{
		{"discovery any origin", http.MethodGet, pathDiscovery, "https://anyone.example", 200, "*"},
		{"JWKS any origin", http.MethodGet, pathJWKS, "https://anyone.example", 200, "*"},
		{"discovery preflight", http.MethodOptions, pathDiscovery, "https://anyone.example", 204, "*"},
		{"token preflight registered origin", http.MethodOptions, pathToken, "https://app.example", 204, "https://app.example"},
		{"token preflight registered origin with port", http.MethodOptions, pathToken, "http://127.0.0.1:9999", 204, "http://127.0.0.1:9999"},
		{"token preflight other origin", http.MethodOptions, pathToken, "https://evil.example", 204, ""},
		{"token preflight origin with path tricks", http.MethodOptions, pathToken, "https://app.example.evil.example", 204, ""},
		{"introspection never", http.MethodOptions, pathIntrospect, "https://app.example", 204, ""},
		{"authorize never", http.MethodOptions, pathAuthorize, "https://app.example", 204, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, f.srv.SMARTConfiguration().Issuer+c.path, nil)
			req.Header.Set("Origin", c.origin)
			if c.method == http.MethodOptions {
				req.Header.Set("Access-Control-Request-Method", "POST")
			}
			resp, err := http.DefaultClient.Do(req)
			must(t, err)
			resp.Body.Close()
			if resp.StatusCode != c.status || resp.Header.Get("Access-Control-Allow-Origin") != c.allow {
				t.Errorf("status %d allow %q, want %d %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), c.status, c.allow)
			}
		})
	}
}
