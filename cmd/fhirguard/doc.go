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
//	proxy                            guard a FHIR server (not yet available)
//	scope explain <scope string>     explain SMART scopes: grants, errors, v1/v2 forms (--json)
//	token inspect <JWT>              decode and check an access token (not yet available)
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
// # Exit codes
//
//	0  success; for discovery lint, no errors (warnings allowed)
//	1  discovery lint found errors
//	2  usage error: unknown command or flag, bad argument, bad
//	   configuration file; also a command not yet available
//	3  discovery lint could not fetch a document: network or TLS failure,
//	   HTTP status other than 200, or a body that is not a JSON object
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
