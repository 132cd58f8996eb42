package discovery_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/fhirguard/fhirguard/discovery"
)

func Example() {
	doc := &discovery.Document{
		AuthorizationEndpoint:         "https://auth.example.org/authorize",
		TokenEndpoint:                 "https://auth.example.org/token",
		GrantTypesSupported:           []string{"authorization_code"},
		CodeChallengeMethodsSupported: []string{"S256"},
		ScopesSupported:               []string{"launch/patient", "patient/*.rs", "offline_access"},
		ResponseTypesSupported:        []string{"code"},
		IntrospectionEndpoint:         "https://auth.example.org/introspect",
		RevocationEndpoint:            "https://auth.example.org/revoke",
		ManagementEndpoint:            "https://auth.example.org/manage",
		Capabilities: []string{
			"launch-standalone", "client-public", "context-standalone-patient",
			"permission-patient", "permission-v2", "permission-offline", "context-passthrough-banner",
		},
	}
	for _, p := range doc.Validate() {
		fmt.Println(p)
	}

	smart, err := discovery.NewHandler(doc, discovery.HandlerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	wk, err := discovery.NewWellKnown(discovery.WellKnownConfig{
		BaseURL: "https://fhir.example.org/r4",
		SMART:   smart,
	})
	if err != nil {
		log.Fatal(err)
	}
	fhir := http.NotFoundHandler() // the FHIR server, behind authentication
	srv := httptest.NewServer(wk.Wrap(fhir))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/r4/.well-known/smart-configuration")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Access-Control-Allow-Origin"))
	fmt.Println(smart.Document().Capabilities)
	// Output:
	// warning: capabilities[6]: "context-passthrough-banner" is not defined by SMART; it is served as "context-banner"
	// 200 application/json *
	// [launch-standalone client-public context-standalone-patient permission-patient permission-v2 permission-offline context-banner]
}

func ExampleNewRemote() {
	// In front of an existing OAuth server only its issuer is needed, plus
	// the SMART capabilities it offers.
	remote, err := discovery.NewRemote(context.Background(), discovery.RemoteConfig{
		Issuer:          "https://auth.example.org/realms/fhir",
		Local:           &discovery.Document{Capabilities: []string{"launch-ehr", "sso-openid-connect", "client-public", "permission-v2"}},
		Resource:        "https://fhir.example.org/r4",
		RefreshInterval: time.Hour,
		OnRefresh: func(err error) {
			if err != nil {
				log.Printf("SMART configuration not refreshed: %v", err)
			}
		},
	})
	if err != nil {
		log.Fatal(err) // a *FetchError or *ValidationError says why
	}
	defer remote.Stop()
	wk, err := discovery.NewWellKnown(discovery.WellKnownConfig{
		BaseURL:           "https://fhir.example.org/r4",
		SMART:             remote.Handler(),
		ProtectedResource: remote.ProtectedResourceHandler(),
	})
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.ListenAndServe(":8443", wk))
}

func ExamplePatchCapabilityStatement() {
	doc := &discovery.Document{
		AuthorizationEndpoint: "https://auth.example.org/authorize",
		TokenEndpoint:         "https://auth.example.org/token",
	}
	cs := []byte(`{"resourceType":"CapabilityStatement","status":"active","rest":[{"mode":"server"}]}`)
	sec := doc.Security()
	sec.CORS = true // this server's FHIR API answers browser apps (CORS configured)
	out, err := discovery.PatchCapabilityStatement(cs, sec)
	if err != nil {
		log.Fatal(err)
	}
	os.Stdout.Write(out)
	fmt.Println()
	// Output:
	// {"resourceType":"CapabilityStatement","status":"active","rest":[{"mode":"server","security":{"extension":[{"url":"http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris","extension":[{"url":"authorize","valueUri":"https://auth.example.org/authorize"},{"url":"token","valueUri":"https://auth.example.org/token"}]}],"cors":true,"service":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/restful-security-service","code":"SMART-on-FHIR","display":"SMART-on-FHIR"}],"text":"OAuth 2.0 with the SMART App Launch profile"}]}}]}
}

func ExampleDerive() {
	// The OpenID configuration of an authorization server with the
	// defaults of npm oidc-provider: hybrid response types, client
	// assertions without RS384 or ES384, no SMART scopes.
	oc, err := discovery.ParseOpenIDConfiguration([]byte(`{
		"issuer": "https://as.example.org",
		"authorization_endpoint": "https://as.example.org/auth",
		"token_endpoint": "https://as.example.org/token",
		"jwks_uri": "https://as.example.org/jwks",
		"grant_types_supported": ["implicit", "authorization_code", "refresh_token"],
		"response_types_supported": ["code id_token", "code", "id_token", "none"],
		"token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_jwt", "client_secret_post", "private_key_jwt", "none"],
		"token_endpoint_auth_signing_alg_values_supported": ["HS256", "RS256", "PS256", "ES256", "Ed25519", "EdDSA"],
		"code_challenge_methods_supported": ["S256"],
		"scopes_supported": ["openid", "offline_access", "launch/patient", "patient/*.rs"]
	}`))
	if err != nil {
		log.Fatal(err)
	}
	doc, warnings, err := discovery.Derive(oc, discovery.DeriveConfig{
		Local: &discovery.Document{ManagementEndpoint: "https://as.example.org/manage"},
	})
	if err != nil {
		log.Fatal(err) // with DeriveConfig.Strict, the findings below would be errors
	}
	fmt.Println(doc.Capabilities)
	fmt.Println(doc.ResponseTypesSupported, doc.TokenEndpointAuthMethodsSupported, doc.ScopesSupported)
	for _, w := range warnings {
		fmt.Println(w)
	}
	// Output:
	// [launch-standalone client-public client-confidential-symmetric context-standalone-patient permission-offline permission-patient permission-v2]
	// [code] [client_secret_basic client_secret_post none] [offline_access launch/patient patient/*.rs]
	// warning: token_endpoint_auth_signing_alg_values_supported: client-confidential-asymmetric not derived: private_key_jwt is offered, but token_endpoint_auth_signing_alg_values_supported lists neither RS384 nor ES384 (HS256, RS256, PS256, ES256, Ed25519, EdDSA); SMART needs one of them
	// warning: scopes_supported: sso-openid-connect not derived: openid is offered but scopes_supported lacks fhirUser
	// warning: introspection_endpoint: recommended by SMART 2.2
	// warning: revocation_endpoint: recommended by SMART 2.2
}

func ExampleMountProtectedResource() {
	doc := &discovery.Document{Issuer: "https://auth.example.org", ScopesSupported: []string{"patient/*.rs"}}
	prm, err := discovery.NewProtectedResourceHandler(doc.ProtectedResource("https://fhir.example.org/r4"), discovery.HandlerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	paths, err := discovery.MountProtectedResource(mux, "https://fhir.example.org/r4", prm)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(paths)
	// Output:
	// [/.well-known/oauth-protected-resource/r4 /r4/.well-known/oauth-protected-resource]
}
