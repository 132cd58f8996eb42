// Package benchmarks holds fhirguard's performance story: micro-benchmarks of
// the hot paths next to their baselines (micro_test.go, run with go test
// -bench), a loopback load generator (Run), a benchmark FHIR server with and
// without the middleware (NewServer), and a cache scale test (Scale).
//
// The package is a harness, not a library to build on: its API exists so that
// the command in cmd/fhirguard-bench and the package's own tests can share it.
// Signing keys are generated in memory at start-up (NewIssuer); none are
// committed. Everything listens on and talks to loopback only.
//
// run.sh runs the whole suite (micro-benchmarks with -count for benchstat, the
// load test at concurrency 1, 16 and 64, the scale test) and regenerates the
// results in README.md. Plain go test ./benchmarks runs short smoke tests of
// the harness and no benchmarks.
package benchmarks
