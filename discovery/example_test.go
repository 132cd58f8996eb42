package discovery_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/fhirguard/fhirguard/discovery"
)

// A FHIR server with a static SMART configuration: validate the document,
// then serve it and its RFC 9728 metadata. With middleware.Guard, give the
// two handlers to middleware.Config.SMARTConfiguration and
// middleware.Config.ProtectedResource; the Guard serves them at
// <base>/.well-known/smart-configuration and at the RFC 9728 locations,
// without a token.
func Example() {
	const base = "https://fhir.example.org/r4"
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
		log.Fatal(err) // a *ValidationError lists the errors
	}
	prm, err := discovery.NewProtectedResourceHandler(doc.ProtectedResource(base, "https://auth.example.org"), discovery.HandlerConfig{})
	if err != nil {
		log.Fatal(err)
	}

	rec := httptest.NewRecorder()
	smart.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, base+"/.well-known/smart-configuration", nil))
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"), rec.Header().Get("Access-Control-Allow-Origin"))
	fmt.Println(smart.Document().Capabilities)
	fmt.Println(prm.Metadata().Resource, prm.Metadata().AuthorizationServers)
	// Output:
	// warning: capabilities[6]: "context-passthrough-banner" is not defined by SMART; it is served as "context-banner"
	// 200 application/json *
	// [launch-standalone client-public context-standalone-patient permission-patient permission-v2 permission-offline context-banner]
	// https://fhir.example.org/r4 [https://auth.example.org]
}

// In front of an existing OAuth server only its issuer and the FHIR base
// are needed: the SMART configuration is derived from the server's OpenID
// configuration, and refreshed in the background until Close.
func ExampleNewRemote() {
	// A stand-in for the authorization server.
	var issuer string
	as := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                issuer,
			"authorization_endpoint":                issuer + "/authorize",
			"token_endpoint":                        issuer + "/token",
			"jwks_uri":                              issuer + "/jwks",
			"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
			"response_types_supported":              []string{"code"},
			"token_endpoint_auth_methods_supported": []string{"none"},
			"code_challenge_methods_supported":      []string{"S256"},
			"scopes_supported":                      []string{"openid", "fhirUser", "launch/patient", "patient/*.rs", "offline_access"},
		})
	}))
	defer as.Close()
	issuer = as.URL

	remote, err := discovery.NewRemote(context.Background(), discovery.RemoteConfig{
		Issuer:   issuer,
		Resource: "https://fhir.example.org/r4",
		Fetch:    discovery.FetchConfig{Client: as.Client()},
		OnWarnings: func(ps discovery.Problems) {
			for _, p := range ps {
				fmt.Println(p) // log them: what in the server's metadata is imperfect for SMART
			}
		},
		// RefreshInterval: time.Hour, refetches in the background until Close.
	})
	if err != nil {
		log.Fatal(err) // a *FetchError or *ValidationError says why
	}
	defer remote.Close()

	// middleware.Config{SMARTConfiguration: remote.Handler(),
	// ProtectedResource: remote.ProtectedResourceHandler(), ...}
	fmt.Println(remote.Handler().Document().Capabilities)
	fmt.Println(remote.ProtectedResourceHandler().Metadata().Resource)
	// Output:
	// warning: management_endpoint: recommended by SMART 2.2
	// warning: introspection_endpoint: recommended by SMART 2.2
	// warning: revocation_endpoint: recommended by SMART 2.2
	// [launch-standalone client-public sso-openid-connect context-standalone-patient permission-offline permission-patient permission-v2]
	// https://fhir.example.org/r4
}

// Checking a server's SMART configuration as Inferno would, for example
// in a command-line linter: every problem, with its severity.
func ExampleFetchDocument() {
	fhir := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Access-Control-Allow-Origin", "*")
		fmt.Fprint(w, `{
			"authorization_endpoint": "https://auth.example.org/authorize",
			"token_endpoint": "https://auth.example.org/token",
			"grant_types_supported": ["authorization_code"],
			"code_challenge_methods_supported": ["S256", "plain"],
			"scopes_supported": ["launch/patient", "patient/*.rs"],
			"response_types_supported": ["code"],
			"introspection_endpoint": "https://auth.example.org/introspect",
			"revocation_endpoint": "https://auth.example.org/revoke",
			"management_endpoint": "https://auth.example.org/manage",
			"capabilities": ["launch-standalone", "client-public", "context-standalone-patient",
				"permission-patient", "permission_v2"]
		}`)
	}))
	defer fhir.Close()

	_, problems, err := discovery.FetchDocument(context.Background(), fhir.URL+"/r4", discovery.FetchConfig{Client: fhir.Client()})
	if err != nil {
		log.Fatal(err) // a *FetchError: no document to check
	}
	for _, p := range problems {
		fmt.Printf("%-7s %s: %s\n", p.Severity, p.Field, p.Detail)
	}
	// Output:
	// warning scopes_supported[1]: "patient/*.rs" is offered but capability permission-v2 is not advertised
	// warning capabilities[4]: "permission_v2" is not a SMART capability; simple names are reserved to SMART, use a full URI; did you mean "permission-v2"?
	// error   code_challenge_methods_supported[1]: "plain" must not be listed
}

// Merging the SMART security block into a server's CapabilityStatement,
// so that /metadata and the well-known document agree
// (middleware.Config.PatchCapabilities does it for you).
func ExamplePatchCapabilityStatement() {
	doc := &discovery.Document{
		AuthorizationEndpoint: "https://auth.example.org/authorize",
		TokenEndpoint:         "https://auth.example.org/token",
	}
	cs := []byte(`{"resourceType":"CapabilityStatement","status":"active","rest":[{"mode":"server"}]}`)
	// cors: this server's FHIR API answers browser apps (CORS configured).
	out, err := discovery.PatchCapabilityStatement(cs, doc, true)
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
	// (FetchOpenIDConfiguration fetches it.)
	var oc discovery.OpenIDConfiguration
	err := json.Unmarshal([]byte(`{
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
	}`), &oc)
	if err != nil {
		log.Fatal(err)
	}
	doc, warnings, err := discovery.Derive(&oc, discovery.DeriveConfig{
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
