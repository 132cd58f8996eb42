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
	out, err := discovery.PatchCapabilityStatement(cs, doc.Security())
	if err != nil {
		log.Fatal(err)
	}
	os.Stdout.Write(out)
	fmt.Println()
	// Output:
	// {"resourceType":"CapabilityStatement","status":"active","rest":[{"mode":"server","security":{"extension":[{"url":"http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris","extension":[{"url":"authorize","valueUri":"https://auth.example.org/authorize"},{"url":"token","valueUri":"https://auth.example.org/token"}]}],"cors":true,"service":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/restful-security-service","code":"SMART-on-FHIR","display":"SMART-on-FHIR"}],"text":"OAuth 2.0 with the SMART App Launch profile"}]}}]}
}
