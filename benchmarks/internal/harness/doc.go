// Package harness is the machinery of fhirguard's performance story: a
// loopback load generator (Run), a benchmark FHIR server with and without
// the middleware (NewServer), a token issuer with keys generated in memory
// (NewIssuer), a cache scale test (Scale) and the server-side statistics
// endpoint (WithStats).
//
// It is internal: its API exists so that the micro-benchmarks in package
// benchmarks and the command in benchmarks/cmd/fhirguard-bench can share it.
// Signing keys are generated in memory at start-up; none are committed.
// Everything listens on and talks to loopback only.
package harness
