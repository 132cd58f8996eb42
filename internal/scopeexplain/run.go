package scopeexplain

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// Exit statuses of Run.
const (
	exitValid   = 0 // every scope is valid
	exitInvalid = 1 // some scope is invalid
	exitUsage   = 2 // usage error
)

// maxStdin bounds a scope string read from stdin.
const maxStdin = 1 << 20

const usage = `Usage: fhirguard scope explain [--json] <scope string>...
       fhirguard scope explain [--json] -

Explains a SMART on FHIR scope string: what each scope grants (context,
resource type, permission letters and the FHIR interactions they cover,
granular constraints, v1/v2 forms), what is invalid and why, and the
effective permissions of the whole string as the fhirguard middleware
enforces them.

Several arguments are joined with spaces into one scope string. With "-"
the scope string is read from stdin (one trailing line ending removed).
Only the ASCII space separates scopes, as on a resource server.

Flags may come before or after the scope string; "--" ends the flags.
  --json   print the report as one JSON object (stable lowerCamelCase
           fields; arrays are never null) instead of text
  -h       print this help

Exit status: 0 every scope is valid, 1 some scope is invalid, 2 usage error.
`

// Run runs `scope explain` with the arguments that follow it, reading the
// scope string from os.Stdin when the only argument is "-". It returns the
// exit status: 0 when every scope is valid, 1 when some scope is invalid,
// 2 for a usage error.
func Run(args []string, stdout, stderr io.Writer) int {
	return run(args, os.Stdin, stdout, stderr)
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fhirguard scope explain", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print a JSON report")

	// Parse flags anywhere among the arguments, as people write them
	// ("explain openid --json"), until "--".
	var positional []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				io.WriteString(stdout, usage)
				return exitValid
			}
			fmt.Fprintf(stderr, "fhirguard scope explain: %v\n\n%s", err, usage)
			return exitUsage
		}
		left := fs.Args()
		if consumed := len(rest) - len(left); consumed > 0 && rest[consumed-1] == "--" {
			positional = append(positional, left...)
			break
		}
		if len(left) == 0 {
			break
		}
		positional = append(positional, left[0])
		rest = left[1:]
	}

	if len(positional) == 0 {
		fmt.Fprintf(stderr, "fhirguard scope explain: no scope string\n\n%s", usage)
		return exitUsage
	}
	var input string
	if len(positional) == 1 && positional[0] == "-" {
		data, err := io.ReadAll(io.LimitReader(stdin, maxStdin+1))
		if err != nil {
			fmt.Fprintf(stderr, "fhirguard scope explain: reading stdin: %v\n", err)
			return exitUsage
		}
		if len(data) > maxStdin {
			fmt.Fprintf(stderr, "fhirguard scope explain: stdin holds more than %d bytes\n", maxStdin)
			return exitUsage
		}
		input = string(data)
		if s, ok := strings.CutSuffix(input, "\n"); ok {
			input = strings.TrimSuffix(s, "\r")
		}
	} else {
		for _, p := range positional {
			if p == "-" {
				fmt.Fprintf(stderr, "fhirguard scope explain: \"-\" (read stdin) must be the only argument\n\n%s", usage)
				return exitUsage
			}
		}
		input = strings.Join(positional, " ")
	}

	r := Explain(input)
	var err error
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		err = enc.Encode(r)
	} else {
		err = r.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "fhirguard scope explain: %v\n", err)
		return exitUsage
	}
	if !r.Valid {
		return exitInvalid
	}
	return exitValid
}
