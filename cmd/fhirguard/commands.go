package main

import (
	"context"
	"flag"
	"io"
)

// A command is one fhirguard command ("discovery lint"). To add one,
// write its setup function (define the flags on fs, return the function
// that runs the command with their values) and add an entry to the table
// in commands. Parsing (command line and --config file), -h and the
// argument count are handled for every command by dispatch.
type command struct {
	// name is the command as typed, words separated by one space:
	// "proxy", "discovery lint". Commands sharing a first word form a
	// group ("fhirguard discovery -h" lists them).
	name string
	// args is the synopsis of the positional arguments, for the usage
	// line: "<FHIR base URL>".
	args string
	// minArgs and maxArgs bound the number of positional arguments;
	// maxArgs -1 means no limit.
	minArgs, maxArgs int
	// summary is one line for the list of commands (lower case, no
	// final period).
	summary string
	// help is the description printed by -h after the usage line.
	help string
	// setup defines the command's flags on fs and returns the function
	// running it; nil marks a command that is not yet available.
	setup func(fs *flag.FlagSet) runFunc
}

// runFunc runs a command with its positional arguments (flags are parsed
// by then) and returns the exit code. It writes its results to stdout and
// its diagnostics to stderr.
type runFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// commands returns the table of fhirguard commands, in the order of the
// help.
func commands() []command {
	return []command{
		discoveryLintCommand(nil),
		proxyCommand(nil),
		scopeExplainCommand(),
		{
			name:    "token inspect",
			args:    "<JWT>",
			summary: "decode an access token and say whether this server would accept it",
		},
	}
}
