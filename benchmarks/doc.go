// Package benchmarks holds fhirguard's performance story: micro-benchmarks of
// the hot paths next to their baselines (micro_test.go, run with go test
// -bench), the load and scale tests (command cmd/fhirguard-bench) and their
// results (README.md, results/).
//
// The package exports nothing: the harness the benchmarks and the command
// share (load generator, benchmark server, token issuer, scale test) is in
// benchmarks/internal/harness.
//
// run.sh runs the whole suite (micro-benchmarks with -count for benchstat, the
// load test at concurrency 1, 16 and 64, the scale test) and regenerates the
// results in README.md. Plain go test ./benchmarks/... runs short smoke tests
// of the harness and no benchmarks.
package benchmarks
