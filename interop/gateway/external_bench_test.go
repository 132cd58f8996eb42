//go:build unix

package gateway

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/smarttest"
)

// The external engine of BenchmarkGatewayExternal.
const (
	// extUpstreamEnv is the engine's FHIR base URL, such as
	// http://127.0.0.1:8103/fhir/R4 (loopback: the benchmark sends it
	// thousands of requests).
	extUpstreamEnv = "FHIRGUARD_GATEWAY_BENCH_UPSTREAM"
	// extTokenEnv, optional, is a bearer token the direct and reverse-proxy
	// modes send to the engine. fhirguard proxy has no way to send the
	// engine a credential of its own (it removes the client's Authorization
	// header and adds none), so the engine must accept the gateway's
	// requests without one.
	extTokenEnv = "FHIRGUARD_GATEWAY_BENCH_UPSTREAM_TOKEN"
	// extReadEnv is the read target, relative to the base
	// ("Observation/<id>"), a resource in the patient's compartment.
	extReadEnv = "FHIRGUARD_GATEWAY_BENCH_READ"
	// extSearchEnv is the search target ("Observation?patient=<id>").
	extSearchEnv = "FHIRGUARD_GATEWAY_BENCH_SEARCH"
	// extPatientEnv is the id of the patient the patient token is held to.
	extPatientEnv = "FHIRGUARD_GATEWAY_BENCH_PATIENT"
)

// BenchmarkGatewayExternal is BenchmarkGateway against a FHIR engine that
// runs already, outside the suite (a database-backed server, see
// benchmarks/README.md, "Gateway vs direct"), given by the environment:
//
//	FHIRGUARD_GATEWAY_BENCH_UPSTREAM=http://127.0.0.1:8103/fhir/R4 \
//	FHIRGUARD_GATEWAY_BENCH_PATIENT=<id> \
//	FHIRGUARD_GATEWAY_BENCH_READ=Observation/<id> \
//	FHIRGUARD_GATEWAY_BENCH_SEARCH='Observation?patient=<id>' \
//	go test -run '^$' -bench GatewayExternal -benchtime 3000x ./interop/gateway
//
// It builds fhirguard and starts smarttest and `fhirguard proxy` in front
// of that engine, and a bare reverse proxy, as the suite does. Every mode
// asks for an identity-encoded response (the gateway asks the engine for
// one whatever the client accepts, so a client's gzip would make the
// engine compress for direct access only). Skipped without
// FHIRGUARD_GATEWAY_BENCH_UPSTREAM.
func BenchmarkGatewayExternal(b *testing.B) {
	upstream := strings.TrimRight(os.Getenv(extUpstreamEnv), "/")
	if upstream == "" {
		b.Skip(extUpstreamEnv + " is not set: no external engine to benchmark")
	}
	patient, read, search := os.Getenv(extPatientEnv), os.Getenv(extReadEnv), os.Getenv(extSearchEnv)
	if patient == "" || read == "" || search == "" {
		b.Fatalf("%s is set: %s, %s and %s are needed too", extUpstreamEnv, extPatientEnv, extReadEnv, extSearchEnv)
	}
	s, err := startExternalGateway(upstream, patient)
	if s != nil {
		defer s.close()
	}
	if err != nil {
		if s != nil {
			s.dumpLogs(os.Stderr)
		}
		b.Fatal(err)
	}
	hop, err := startPlainProxy(upstream)
	if err != nil {
		b.Fatal(err)
	}
	defer hop.stop()
	upstreamToken := os.Getenv(extTokenEnv)
	identity := http.Header{"Accept-Encoding": {"identity"}}
	for _, bc := range []struct{ name, target string }{
		{"read", strings.TrimLeft(read, "/")},
		{"search", strings.TrimLeft(search, "/")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			runBenchModes(b, []benchMode{
				{name: "direct", url: upstream + "/" + bc.target, token: upstreamToken, header: identity},
				{name: "reverse-proxy", url: hop.base + "/" + bc.target, token: upstreamToken, header: identity, pid: hop.pid()},
				{name: "gateway-system", url: s.publicBase + "/" + bc.target, token: s.tokens[holderSystem], header: identity, pid: s.proxy.pid()},
				{name: "gateway-patient", url: s.publicBase + "/" + bc.target, token: s.tokens[holderPatient], header: identity, pid: s.proxy.pid()},
			})
		})
	}
}

// startExternalGateway builds fhirguard and starts smarttest and the proxy
// in front of upstream, and mints a system token and a patient token held
// to patient. On error the returned suite (when not nil) holds what was
// started.
func startExternalGateway(upstream, patient string) (*suite, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "fhirguard-gwbench-")
	if err != nil {
		return nil, err
	}
	s := &suite{tmp: tmp, logDir: tmp, tokens: map[string]string{}, engineBase: upstream}
	s.a.ID = patient
	s.client = &http.Client{Timeout: time.Minute, Transport: &http.Transport{Proxy: nil}}
	s.bin = filepath.Join(tmp, "fhirguard")
	if err := buildCommand(root, s.bin); err != nil {
		return s, err
	}
	if err := s.startGateway(); err != nil {
		return s, err
	}
	for name, o := range map[string]smarttest.TokenOptions{
		holderPatient: {ClientID: "gwbench-app", Scopes: "launch/patient patient/*.cruds", Patient: patient},
		holderSystem:  {ClientID: "gwbench-backend", Scopes: "system/*.cruds"},
	} {
		if s.tokens[name], err = s.auth.MintToken(o); err != nil {
			return s, err
		}
	}
	return s, nil
}
