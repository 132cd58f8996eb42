// Command fhirguard is the command-line face of the fhirguard kit: SMART
// on FHIR tools for teams whose FHIR server may not be written in Go.
//
// Usage:
//
//	fhirguard <command> [<subcommand>] [flags] [arguments]
//
// The commands:
//
//	discovery lint <FHIR base URL>   check a server's SMART configuration and /metadata
//	proxy                            guard a FHIR server: reverse proxy with the full Guard (gateway)
//	scope explain <scope string>     explain SMART scopes: grants, errors, v1/v2 forms (--json)
//	token inspect <JWT> | -          decode an access token; would a server accept it, and why not (--json)
//
// "fhirguard -h" (or "fhirguard help") lists them, "fhirguard <command> -h"
// (or "fhirguard help <command>") prints a command's flags; both print to
// standard output and exit with 0. "fhirguard --version" prints the
// version, VCS revision and Go version of the build.
//
// # Flags and configuration files
//
// Flags are written -flag or --flag, with their value as the next
// argument or after "=", and may come before or after the positional
// arguments ("--" ends them). Every flag of a command can also be set in
// a YAML file named by --config, whose keys are the flag names:
//
//	# lint.yaml
//	timeout: 1m
//	ca-file: /etc/ssl/private-ca.pem
//	json: true
//
// A flag given on the command line wins over the file. An unknown key, a
// key given twice or a value the flag refuses is an error naming the file
// and line. Paths in the file are used as given (relative ones to the
// working directory).
//
// # discovery lint
//
// "fhirguard discovery lint <FHIR base URL>" fetches
// <base>/.well-known/smart-configuration and checks it with package
// discovery (the SMART App Launch 2.2 rules and the discovery checks of
// Inferno's test kit: required members, PKCE, absolute endpoint URLs,
// members the capabilities need, misspelt values; the response must be
// application/json and allow any origin). It also fetches <base>/metadata,
// which must be a JSON CapabilityStatement, and, when a server rest entry
// has the SMART security block (the SMART-on-FHIR service coding and the
// oauth-uris extension), checks that its endpoints agree with the SMART
// configuration's: a different authorize or token endpoint is an error,
// another one (register, manage, introspect, revoke) a warning. An http
// base URL is fetched and reported as a warning, as package discovery
// reports http endpoints.
//
// The output has one line per problem, "severity source field: detail",
// errors first, then by source (base-url, smart-configuration, metadata)
// and field, then a summary line. A document that could not be fetched
// comes first, on a line starting with "failed". --json prints instead a
// report for tools: base_url, documents (name, url, status, fetched,
// error), problems (severity, source, field, detail), errors, warnings
// and exit_code.
//
// Flags: --json, --timeout (for both fetches together, 30s by default),
// --ca-file (a PEM file of CA certificates trusted besides the system's,
// for a server with a private CA), --config.
//
// # token inspect
//
// "fhirguard token inspect <JWT>" ("-" reads the token from stdin, less
// one trailing line ending; a "Bearer " prefix is removed) decodes an
// access token without trusting it. It prints the JOSE header (alg, typ,
// kid, other members), the claims (iss, sub, aud; exp, iat and nbf in
// RFC 3339 with the time relative to now, "expires in 42m" or "expired 3h
// ago"; client_id; scope, with the effective permissions "scope explain"
// computes; patient, encounter, fhirUser, fhirContext; then the other
// claims) and the problems found, most serious first: "danger" for
// header members a lax verifier can be tricked by (jwk, jku, x5u, x5c,
// crit, b64 false, alg none, HMAC), "error" for what fhirguard refuses
// (not three parts, bad base64url, JSON that its strict reader refuses,
// a missing exp or aud, a JWS in JSON serialization, an encrypted JWT),
// "warning" and "info". An opaque token is said to be one: only
// introspection can resolve it. The signature is never printed, and the
// token goes nowhere unless a server check names an introspection
// endpoint.
//
// With --base-url (the FHIR base, the audience) and the authorization
// server's keys (--issuer with --jwks-url or --jwks-file) and/or its
// introspection endpoint (--introspection-url, --introspection-client-id,
// --introspection-client-secret), the token is also run, in memory, over
// a simulated TLS request, through the middleware's Authenticator built
// with that configuration (the JWKS is fetched once; --ca-file trusts a
// private CA; --insecure-allow-http-key-urls allows http key URLs on
// loopback only; --timeout bounds the check, 30s by default). The
// verdict is "accepted", with what the middleware learned (subject,
// client, patient, scopes), or "refused" with the HTTP status, the RFC
// 6750 error code and description a client would get, the middleware's
// precise cause and an explanation setting the token's values beside the
// server's ("audience not accepted: token aud [x], this server is y").
// With --request "GET /Observation?code=x" and an accepted token, the
// request also goes through a Guard in front of a stub FHIR server that
// holds no data: the preview says whether it is allowed (and the request
// the FHIR server receives, narrowed searches included) or refused and
// why.
//
// --json prints a report for tools instead, with stable lowerCamelCase
// members: format (jwt, jwsJson, jwe, opaque, malformed), description,
// length, parts, decoded, header, signatureBytes, claims, times (claim,
// unix, time, relative), scope (claim, value, valid, effective,
// invalid), problems (severity, field, message), check (null without a
// server check; baseUrl, issuer, keys, keyIds, introspection, outcome,
// status, error, description, cause, explanation, introspected, token,
// request, notes), now and exitCode.
//
// # Exit codes
//
//	0  success; for discovery lint, no errors (warnings allowed); for
//	   token inspect, the token was decoded and, with a server check,
//	   accepted
//	1  discovery lint found errors; the token inspect server check
//	   refused the token
//	2  usage error: unknown command or flag, bad argument, bad
//	   configuration file
//	3  discovery lint could not fetch a document: network or TLS failure,
//	   HTTP status other than 200, or a body that is not a JSON object;
//	   token inspect could not decode the token (malformed, or encrypted
//	   or opaque without a server check to judge it), or its server check
//	   could not get the keys or an introspection answer
//
// # Adding a command
//
// Each command is an entry of the table in commands.go: its name (words
// separated by a space; commands sharing a first word form a group), the
// synopsis and number of its positional arguments, a one-line summary,
// its help text, and a setup function that defines its flags on a
// flag.FlagSet and returns the function running it with
// (ctx, args, stdout, stderr), which returns the exit code. Parsing the
// command line and the --config file, -h and the argument count are
// common to all commands.
package main
