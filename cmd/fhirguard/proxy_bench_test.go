package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/fhirguard/fhirguard/smarttest"
)

// BenchmarkProxyHandler runs reads with a system token through the
// handler of fhirguard proxy (access line, metrics, Guard, gateway, the
// fake upstream over loopback HTTP), without the client's connection:
// the allocations and time of the proxy's own work per request.
func BenchmarkProxyHandler(b *testing.B) {
	up := newFakeUpstream(b)
	up.up.Store(true)
	ln := loopbackListener(b)
	base := "http://" + ln.Addr().String() + "/fhir"
	as := newTestAS(b, base, false)
	pr := startProxy(b, &proxyHooks{listener: ln}, "--upstream", up.base, "--base-url", base,
		"--issuer", as.SMARTConfiguration().Issuer, "--insecure-allow-http")
	tok, err := as.MintToken(smarttest.TokenOptions{Scopes: "system/*.rs"})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, base+"/Patient/p1", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.RemoteAddr = "127.0.0.1:40000"
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		pr.srv.handler.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}
