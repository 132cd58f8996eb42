// Package demo is the demo FHIR server shared by the fhirguard examples
// (examples/stdlib and examples/chi). Each example's main only builds its
// router around the pieces demo hands it (an App); demo does the rest:
//
//   - flags (ParseFlags): -addr, -base-url, -issuer with -jwks-url,
//     the -introspection-* flags, -policy, -empty, -cors-origins,
//     -trusted-proxies;
//   - the in-memory FHIR store (package fhirstore), seeded unless -empty;
//   - without -issuer, an embedded SMART authorization server (package
//     smarttest, not for production) under /auth on the same listener,
//     which the discovery document points at; with -issuer, that external
//     authorization server's OpenID configuration instead;
//   - the fhirguard Guard (package middleware) with the discovery
//     documents, the patched /metadata, Authenticate, Authorize and, with
//     -policy, CEL policies (package celpolicy, reloaded on SIGHUP);
//   - request logging (log/slog), a start-up banner with the FHIR base,
//     the discovery URL, ready-made tokens and curl commands that work as
//     printed, and a clean shutdown on SIGINT or SIGTERM.
//
// Bearer tokens normally require TLS. When the server listens on a loopback
// address and -base-url is http, the demo sets the middleware's
// InsecureAllowHTTP and InsecureAllowHTTPKeyURLs and says so at start-up;
// on any other address an http base URL is a configuration error: put a
// TLS-terminating proxy in front and give an https -base-url.
//
// Run is the entry point for tests (it accepts a ready listener and reports
// the running Server); Main is the entry point for the examples' main
// functions.
package demo
