// Package middleware is fhirguard's net/http glue. It turns a FHIR server
// into a SMART on FHIR resource server: New builds a Guard from a Config,
// and Guard.Handler wraps the FHIR handler (see ExampleNew).
//
//   - The Authenticator (NewAuthenticator; Close stops its background
//     work) reads the bearer token (Authorization header only, by
//     default), verifies a JWT against the authorization server's keys
//     (strict compact JWS, an algorithm allow-list, keys bound to their
//     algorithm, iss, aud, exp, nbf, iat and a maximum lifetime checked) or
//     introspects an opaque token (RFC 7662), caches what it learned
//     (found by a seeded hash of the token, the token itself compared in
//     full on every hit), and puts a *Token in the request context
//     (TokenFromContext; jwtauth.FromContext works too for JWTs). Failures
//     follow RFC 6750 with a FHIR OperationOutcome body; an unreachable JWKS
//     or introspection endpoint is a 503, never a 401 and never an allow.
//   - Authorize, the enforcement point (Config.Authorize), classifies each
//     request (package fhirrest), refuses non-canonical paths and method overrides,
//     checks the token's scopes with the compiled matcher (package scope),
//     holds patient grants to their patient's compartment (package
//     compartment), narrows searches, authorises batch and transaction
//     entries one by one, applies the operation table, and verifies every
//     resource the wrapped handler returns: it never trusts the handler to
//     filter. It judges exactly what the server will execute: every body
//     is read by one strict JSON reader (case-variant, duplicate or unknown
//     members in the parts it interprets are a 400) and forwarded as read,
//     and writes are judged on the state they produce (the new body, the
//     stored version really overwritten, conditional matches, a JSON Patch
//     applied to the stored version). A resource that names another
//     patient is withheld from a patient-held token (LiteralCompartments
//     relaxes this for reads). The Decision is in the request context
//     (DecisionFromContext) for handlers that can filter in their own
//     storage.
//   - Policy lets extra rules (such as package celpolicy) deny what scopes
//     would allow, never widen it.
//   - The Guard wires CORS (Config.CORS; preflights are answered without a
//     token), the discovery documents (any other well-known path is a 404),
//     /metadata, Authenticate and Authorize in one handler.
//
// Refusals: 401 without a token (no error parameter) or with a bad one
// (invalid_token); 403 insufficient_scope with the scope needed; 404 (or
// 403, configurable) for an instance outside the token's compartment or
// constraints, identical to an absent one; 400 for malformed requests and
// bodies (naming the offending member); 406 when a response under
// verification is not JSON; 415 for a write body a patient-held token sends
// in a format the guard cannot judge; 422 for a JSON Patch that cannot be
// applied to the stored version.
package middleware
