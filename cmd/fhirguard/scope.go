package main

import (
	"context"
	"flag"
	"io"

	"github.com/fhirguard/fhirguard/internal/scopeexplain"
)

// scopeExplainCommand returns the scope explain command, a thin wrapper
// around package scopeexplain.
func scopeExplainCommand() command {
	return command{
		name:    "scope explain",
		args:    "<scope string>... | -",
		minArgs: 1,
		maxArgs: -1,
		summary: "explain what SMART scopes grant",
		help: `
Explains a SMART on FHIR scope string: what each scope grants (context,
resource type, permission letters and the FHIR interactions they cover,
granular constraints, v1/v2 forms), what is invalid and why, and the
effective permissions of the whole string as the fhirguard middleware
enforces them. Several arguments are joined with spaces into one scope
string; "-" reads it from stdin. Only the ASCII space separates scopes, as
on a resource server.

Exit status: 0 every scope is valid, 1 some scope is invalid, 2 usage error.
`,
		setup: func(fs *flag.FlagSet) runFunc {
			asJSON := fs.Bool("json", false, "print the report as one JSON object (stable lowerCamelCase fields) instead of text")
			return func(_ context.Context, args []string, stdout, stderr io.Writer) int {
				argv := []string{"--"}
				if *asJSON {
					argv = []string{"--json", "--"}
				}
				return scopeexplain.Run(append(argv, args...), stdout, stderr)
			}
		},
	}
}
