package smarttest

import (
	"io"
	"net/http"
	"testing"

	"go.uber.org/goleak"
)

// TestCloseStopsServer checks that Close stops the goroutines of the
// httptest.Server New started, connections included, and that the Server
// still mints afterwards.
func TestCloseStopsServer(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv, err := New(Config{FHIRBase: "https://fhir.example.org/r4"})
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(srv.SMARTConfiguration().JWKSURI)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	srv.Close()
	srv.Close() // a second Close is harmless
	tr.CloseIdleConnections()
	if _, err := srv.MintToken(TokenOptions{Scopes: "system/*.rs"}); err != nil {
		t.Fatalf("a closed Server stopped minting: %v", err)
	}
	mounted, err := New(Config{FHIRBase: "https://fhir.example.org/r4", Issuer: "https://as.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	mounted.Close() // owns nothing
}
