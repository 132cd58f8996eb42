package benchmarks

import (
	"sync"
	"testing"

	"github.com/fhirguard/fhirguard/benchmarks/internal/harness"
)

var (
	issuerOnce sync.Once
	issuerVal  *harness.Issuer
	issuerErr  error
)

// testIssuer returns one Issuer per test binary: RSA key generation is slow.
func testIssuer(tb testing.TB) *harness.Issuer {
	tb.Helper()
	issuerOnce.Do(func() { issuerVal, issuerErr = harness.NewIssuer() })
	if issuerErr != nil {
		tb.Fatal(issuerErr)
	}
	return issuerVal
}

func sign(tb testing.TB, s harness.TokenSpec) string {
	tb.Helper()
	tok, err := testIssuer(tb).Sign(s)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func newServer(tb testing.TB, m harness.Mode) *harness.Server {
	tb.Helper()
	s, err := harness.NewServer(harness.ServerConfig{Mode: m, Issuer: testIssuer(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}
