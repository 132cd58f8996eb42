package smarttest_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/fhirguard/fhirguard/middleware"
	"github.com/fhirguard/fhirguard/smarttest"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// A unit test mints a token and verifies it the way a resource server does:
// against the JWKS, for its own audience.
func Example() {
	const fhirBase = "https://fhir.example.org/r4"
	srv, err := smarttest.New(smarttest.Config{FHIRBase: fhirBase})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	// The URLs a resource server is configured with.
	as := srv.SMARTConfiguration()

	tok, err := srv.MintToken(smarttest.TokenOptions{
		Scopes:   "launch/patient patient/Observation.rs",
		Patient:  "123",
		FHIRUser: "Patient/123",
	})
	if err != nil {
		log.Fatal(err)
	}

	keys, err := jwk.Fetch(context.Background(), as.JWKSURI)
	if err != nil {
		log.Fatal(err)
	}
	t, err := jwt.Parse([]byte(tok), jwt.WithKeySet(keys), jwt.WithIssuer(as.Issuer), jwt.WithAudience(fhirBase))
	if err != nil {
		log.Fatal(err)
	}
	patient, _ := t.Get("patient")
	scope, _ := t.Get("scope")
	fmt.Println(t.Subject(), patient, scope)
	// Output: Patient/123 123 launch/patient patient/Observation.rs
}

// The standalone launch, as an app does it: authorize with PKCE, then
// redeem the code. Approval is automatic.
func Example_standaloneLaunch() {
	srv, err := smarttest.New(smarttest.Config{
		FHIRBase: "https://fhir.example.org/r4",
		User:     "Practitioner/1",
		Patient:  "123",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	const redirect = "https://app.example/callback"
	if err := srv.RegisterClient(smarttest.Client{ID: "my-app", RedirectURIs: []string{redirect}}); err != nil {
		log.Fatal(err)
	}

	verifier := "a-fresh-random-verifier-of-at-least-43-characters"
	sum := sha256.Sum256([]byte(verifier))
	authURL := srv.SMARTConfiguration().AuthorizationEndpoint + "?" + url.Values{
		"response_type":         {"code"},
		"client_id":             {"my-app"},
		"redirect_uri":          {redirect},
		"scope":                 {"launch/patient openid fhirUser offline_access patient/*.rs"},
		"state":                 {"af0ifjsldkj"},
		"aud":                   {"https://fhir.example.org/r4"},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}.Encode()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(authURL)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	back, _ := url.Parse(resp.Header.Get("Location"))
	fmt.Println("state:", back.Query().Get("state"))

	resp, err = http.PostForm(srv.SMARTConfiguration().TokenEndpoint, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {back.Query().Get("code")},
		"redirect_uri":  {redirect},
		"client_id":     {"my-app"},
		"code_verifier": {verifier},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct {
		Scope        string `json:"scope"`
		Patient      string `json:"patient"`
		RefreshToken string `json:"refresh_token"`
		IDToken      string `json:"id_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
		log.Fatal(err)
	}
	fmt.Println("patient:", tr.Patient)
	fmt.Println("scope:", tr.Scope)
	fmt.Println("refresh token:", tr.RefreshToken != "", "id_token:", tr.IDToken != "")
	// Output:
	// state: af0ifjsldkj
	// patient: 123
	// scope: launch/patient openid fhirUser offline_access patient/*.rs
	// refresh token: true id_token: true
}

// An EHR launch: the test registers the context, the app passes the launch
// value on to the authorization request.
func ExampleServer_RegisterLaunch() {
	srv, err := smarttest.New(smarttest.Config{FHIRBase: "https://fhir.example.org/r4"})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	launch, err := srv.RegisterLaunch(smarttest.LaunchContext{
		Patient:           "123",
		Encounter:         "456",
		FHIRContext:       []any{middleware.ContextItem{Reference: "DiagnosticReport/789"}},
		NeedPatientBanner: true,
		SMARTStyleURL:     "https://ehr.example/smart-style.json",
	})
	if err != nil {
		log.Fatal(err)
	}
	// The app is launched with ...?iss=<FHIR base>&launch=<launch> and sends
	// scope "launch ..." and launch=<launch> to the authorization endpoint.
	fmt.Println(launch != "")
	// Output: true
}

// An EHR launch driven by the launch simulator, as a browser goes through
// it: the simulator redirects to the app's launch URL with iss and a
// single-use launch value; the app (here LaunchApp) sends that value to the
// authorization endpoint and gets the launch's patient.
func ExampleServer_EHRLaunchURL() {
	srv, err := smarttest.New(smarttest.Config{FHIRBase: "https://fhir.example.org/r4"})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	// The simulator redirects only to the origins of registered redirect
	// URIs.
	if err := srv.RegisterClient(smarttest.Client{ID: "my-app", RedirectURIs: []string{"http://127.0.0.1:9000/"}}); err != nil {
		log.Fatal(err)
	}
	browser := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := browser.Get(srv.EHRLaunchURL("http://127.0.0.1:9000/launch.html", "123", ""))
	if err != nil {
		log.Fatal(err)
	}
	res.Body.Close()
	app, _ := url.Parse(res.Header.Get("Location"))
	fmt.Println(res.StatusCode, app.Path, app.Query().Get("iss"))

	tr, err := srv.LaunchApp(context.Background(), smarttest.AppLaunch{
		ClientID: "my-app",
		Launch:   app.Query().Get("launch"),
		Scope:    "launch/patient patient/*.rs",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("patient:", tr.Patient)
	// Output:
	// 302 /launch.html https://fhir.example.org/r4
	// patient: 123
}

// SMART Backend Services: the client signs an ES384 assertion and gets a
// five-minute system token.
func Example_backendServices() {
	srv, err := smarttest.New(smarttest.Config{FHIRBase: "https://fhir.example.org/r4"})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	err = srv.RegisterClient(smarttest.Client{
		ID:         "bulk-exporter",
		PublicKeys: map[string]crypto.PublicKey{"key-1": key.Public()},
	})
	if err != nil {
		log.Fatal(err)
	}
	assertion, err := smarttest.SignClientAssertion(smarttest.Assertion{
		ClientID: "bulk-exporter",
		Audience: srv.SMARTConfiguration().TokenEndpoint,
		Key:      key,
		KeyID:    "key-1",
	})
	if err != nil {
		log.Fatal(err)
	}
	resp, err := http.PostForm(srv.SMARTConfiguration().TokenEndpoint, url.Values{
		"grant_type":            {"client_credentials"},
		"scope":                 {"system/Observation.rs patient/Patient.rs"},
		"client_assertion_type": {smarttest.AssertionType},
		"client_assertion":      {assertion},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct {
		Scope     string `json:"scope"`
		ExpiresIn int    `json:"expires_in"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.StatusCode, tr.Scope, tr.ExpiresIn)
	// Output: 200 system/Observation.rs 300
}

// Negative tests for a resource server: every flawed token must be refused.
func ExampleServer_MintFlawedToken() {
	srv, err := smarttest.New(smarttest.Config{FHIRBase: "https://fhir.example.org/r4"})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	for _, flaw := range []smarttest.Flaw{smarttest.FlawExpired, smarttest.FlawAlgNone, smarttest.FlawUnknownKey} {
		tok, err := srv.MintFlawedToken(flaw, smarttest.TokenOptions{Scopes: "patient/*.rs", Patient: "123"})
		if err != nil {
			log.Fatal(err)
		}
		// Hand tok to the resource server under test and expect a 401.
		fmt.Println(flaw, srv.Introspect(tok)["active"])
	}
	// Output:
	// expired false
	// alg-none false
	// unknown-key false
}

// Mounted under /auth on the FHIR server's own listener, as the examples
// do: set Issuer, and nothing else is started.
func Example_mounted() {
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	srv, err := smarttest.New(smarttest.Config{Issuer: base + "/auth", FHIRBase: base + "/fhir"})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/auth/", srv)
	// mux.Handle("/fhir/", fhirguardProtectedHandler)
	ts.Config.Handler = mux
	ts.Start()
	defer ts.Close()

	resp, err := http.Get(srv.SMARTConfiguration().Issuer + "/.well-known/openid-configuration")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.TrimPrefix(doc["token_endpoint"].(string), base))
	fmt.Println(strings.TrimPrefix(srv.SMARTConfiguration().JWKSURI, base))
	// Output:
	// /auth/token
	// /auth/jwks
}
