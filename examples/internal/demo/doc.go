// Package demo is the demo FHIR server shared by the fhirguard examples
// (examples/stdlib and examples/chi). Each example's main only builds its
// router around the pieces demo hands it (an App); demo does the rest:
//
//   - flags (ParseFlags): -addr, -base-url, -issuer with -jwks-url,
//     the -introspection-* flags, -policy, -empty, -cors-origins,
//     -trusted-proxies, the app flags of the embedded server
//     (-app-redirect-uris, -app-launch-url, -app-confidential-secret,
//     -patient, -consent) and the HTTP server's limits
//     (-read-header-timeout, -read-timeout, -write-timeout, -idle-timeout,
//     -max-header-bytes);
//   - the in-memory FHIR store (package fhirstore), seeded unless -empty;
//   - without -issuer, an embedded SMART authorization server (package
//     smarttest, not for production) under /auth on the same listener,
//     which the discovery document points at, with a public SMART app
//     client (AppClientID, redirect URIs from -app-redirect-uris, which
//     must be https or loopback http), optionally a confidential one
//     (ConfidentialAppClientID), an EHR launch simulator and a standalone
//     patient (-patient); with -issuer, that external authorization
//     server's OpenID configuration instead;
//   - the fhirguard Guard (package middleware) with the discovery
//     documents, the patched /metadata, Authenticate, Authorize and, with
//     -policy, CEL policies (package celpolicy, reloaded on SIGHUP);
//   - CORS for browser apps: the FHIR API and the embedded token endpoint
//     both allow -cors-origins and the origins of -app-redirect-uris;
//   - request logging (log/slog), a start-up banner with the FHIR base,
//     the discovery URL, one INSECURE warning, ready-made tokens printed
//     once as shell assignments (PatientTokenVar, SystemTokenVar) and curl
//     commands that use them and work as printed in sh, bash and zsh, the
//     app client, its redirect URIs, a ready-to-open EHR launch URL and a
//     standalone launch call for npm fhirclient, and a clean shutdown on
//     SIGINT or SIGTERM.
//
// Bearer tokens normally require TLS. When the server listens on a loopback
// address and -base-url is http, the demo sets the middleware's
// InsecureAllowHTTP (and InsecureAllowHTTPKeyURLs when a key or
// introspection URL is http); on any other address an http base URL is a
// configuration error: put a TLS-terminating proxy in front and give an
// https -base-url. The banner's one INSECURE warning lists these, an http
// -issuer fetched on loopback and the embedded authorization server, each
// with the flags that turn it off; the Guard's own start-up warnings about
// them are held back so that it is said once.
//
// Run is the entry point for tests (it accepts a ready listener and reports
// the running Server); Main is the entry point for the examples' main
// functions.
package demo
