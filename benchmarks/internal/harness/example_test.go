package harness_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"time"

	"github.com/fhirguard/fhirguard/benchmarks/internal/harness"
)

// Run drives a server on loopback; here the guarded benchmark server with a
// system token, for exactly 200 requests over 4 connections.
func ExampleRun() {
	iss, err := harness.NewIssuer()
	if err != nil {
		log.Fatal(err)
	}
	srv, err := harness.NewServer(harness.ServerConfig{Mode: harness.Guarded, Issuer: iss})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv)
	defer ts.Close()
	tok, err := iss.Sign(harness.TokenSpec{Alg: "ES256", Scopes: harness.SystemScopes})
	if err != nil {
		log.Fatal(err)
	}

	res, err := harness.Run(context.Background(), harness.LoadConfig{
		URL:         ts.URL + harness.BasePath + "/Observation/1",
		Token:       tok,
		Concurrency: 4,
		MaxRequests: 200,
		Duration:    time.Minute, // an upper bound; MaxRequests ends the run
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("answered:", res.Requests, "errors:", res.Errors, "p50 ≤ p99:", res.P50 <= res.P99)
	// Output: answered: 200 errors: 0 p50 ≤ p99: true
}

// Scale measures the token cache: 300 tokens over 30 scope strings share 30
// compiled matchers and are all found in the cache the second time.
func ExampleScale() {
	res, err := harness.Scale(harness.ScaleConfig{Tokens: 300, ScopeStrings: 30})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("matchers: %d, hit ratio: %.0f %%\n", res.Matchers, 100*res.HitRatio)
	// Output: matchers: 30, hit ratio: 100 %
}
