// Package gateway is the integration suite of the fhirguard proxy behind a
// real third-party FHIR engine. It has no code of its own: everything is in
// its tests.
//
// TestMain builds the fhirguard command from this work tree, starts the engine
// (Medplum's in-memory fhir-router behind interop/engine/server.js, seeded
// with two linked patients A and B), starts an in-process smarttest
// authorization server over TLS, and puts `fhirguard proxy` in front of the
// engine, every server on a loopback port the kernel picks. The tests then
// talk to the gateway with patient, user and system tokens minted by
// smarttest and check that:
//
//   - patient A's own reads, vreads, searches (with _include and _revinclude),
//     history, batch and writes (create, update, conditional update, JSON
//     Patch, conditional create) work for tokens held to A;
//   - every probe for patient B (reads, searches by patient, subject, _id,
//     chains and _has, the Group listing both patients, the Observation
//     linking them, includes, history, batch entries, writes that target or
//     reference B, conditional writes whose criteria match B, PATCH) is
//     refused or filtered: no 2xx response to a token held to A carries any
//     of B's ids or B-only values;
//   - no response of any kind (patient, user, system, unauthenticated) names
//     the engine's address, in a header or in the body;
//   - conditional writes and PATCH reach the engine with their body (read
//     back from the engine directly).
//
// A probe for A's data that the guard refuses by a documented rule (chained
// parameters and _has for patient-held tokens, a batch that also reads B)
// passes and is listed in the summary with the guard's reason. TestDetectors
// checks the checks: the engine's own answers fail them.
//
// The fhirguard binary is built with the test binary's -race setting (CI
// runs the suite with -race; a data race the proxy reports fails it).
// BenchmarkGateway compares direct engine access with access through the
// gateway and through a bare Go reverse proxy, interleaved in the same run
// (figures in benchmarks/README.md, "Gateway vs direct");
// BenchmarkGatewayExternal does the same against a FHIR engine that runs
// outside the suite (such as a database-backed server), given by the
// FHIRGUARD_GATEWAY_BENCH_* environment variables, and is skipped without
// them.
//
// Requirements: Go, Node.js 20 or newer and the engine's packages
// (cd interop/engine && npm ci --omit=optional --omit=peer). Without node or
// interop/engine/node_modules every test is skipped with the reason, unless
// FHIRGUARD_GATEWAY_SUITE=require (as CI sets it), which makes that a
// failure.
//
//	go test -count=1 ./interop/gateway
//	go test -count=1 -v ./interop/gateway                         # one line per probe
//	go test -run '^$' -bench Gateway -benchtime 3000x ./interop/gateway
//
// FHIRGUARD_GATEWAY_LOG_DIR=<dir> keeps the engine's and the proxy's logs
// there (by default the last lines are printed when the suite fails);
// FHIRGUARD_GATEWAY_PROXY_FLAGS adds flags to `fhirguard proxy` (such as
// "--log-level warn" to compare a benchmark without the access lines).
package gateway
