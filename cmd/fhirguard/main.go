package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/fhirguard/fhirguard/internal/cliconfig"
)

// Exit codes shared by every command.
const (
	exitOK    = 0 // success
	exitFail  = 1 // the command ran and found errors
	exitUsage = 2 // bad command line or configuration file
)

func main() {
	// The first SIGINT or SIGTERM cancels ctx (fhirguard proxy shuts down
	// gracefully); a second one ends the process at once.
	sigs := make(chan os.Signal, 2) // both are queued, whenever they come
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-sigs
		cancel()
		s := <-sigs
		fmt.Fprintf(os.Stderr, "fhirguard: %v again: exiting at once\n", s)
		os.Exit(exitFail)
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	signal.Stop(sigs)
	cancel()
	os.Exit(code)
}

// run runs the fhirguard command line args (without the program name)
// and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return dispatch(ctx, commands(), args, stdout, stderr)
}

// dispatch finds the command of args in cmds, parses its flags and runs
// it.
func dispatch(ctx context.Context, cmds []command, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "fhirguard: missing command")
		fmt.Fprintln(stderr)
		printMainUsage(stderr, cmds)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		printMainUsage(stdout, cmds)
		return exitOK
	case "-version", "--version":
		fmt.Fprintln(stdout, version())
		return exitOK
	case "help":
		if len(args) == 1 {
			printMainUsage(stdout, cmds)
			return exitOK
		}
		if c, rest := lookup(cmds, args[1:]); c != nil && len(rest) == 0 {
			fs, _ := commandFlags(c)
			printCommandUsage(stdout, c, fs)
			return exitOK
		}
		if group := groupOf(cmds, args[1]); group != nil && len(args) == 2 {
			printGroupUsage(stdout, args[1], group)
			return exitOK
		}
		return usageError(stderr, cmds, fmt.Sprintf("fhirguard help: unknown command %q", strings.Join(args[1:], " ")))
	}
	if strings.HasPrefix(args[0], "-") {
		return usageError(stderr, cmds, fmt.Sprintf("fhirguard: unknown flag %s (flags go after the command)", args[0]))
	}

	c, rest := lookup(cmds, args)
	if c == nil {
		group := groupOf(cmds, args[0])
		if group == nil {
			return usageError(stderr, cmds, fmt.Sprintf("fhirguard: unknown command %q", args[0]))
		}
		switch {
		case len(args) > 1 && isHelp(args[1]):
			printGroupUsage(stdout, args[0], group)
			return exitOK
		case len(args) == 1:
			fmt.Fprintf(stderr, "fhirguard %s: missing subcommand\n\n", args[0])
		default:
			fmt.Fprintf(stderr, "fhirguard %s: unknown subcommand %q\n\n", args[0], args[1])
		}
		printGroupUsage(stderr, args[0], group)
		return exitUsage
	}

	fs, runCmd := commandFlags(c)
	if runCmd == nil {
		for _, a := range rest {
			if isHelp(a) {
				printCommandUsage(stdout, c, fs)
				return exitOK
			}
		}
		fmt.Fprintf(stderr, "fhirguard %s: not yet available\n", c.name)
		return exitUsage
	}
	positional, err := cliconfig.Parse(fs, rest)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printCommandUsage(stdout, c, fs)
		return exitOK
	case err != nil:
		fmt.Fprintf(stderr, "fhirguard %s: %v\n\n", c.name, err)
		printCommandUsage(stderr, c, fs)
		return exitUsage
	case len(positional) < c.minArgs || (c.maxArgs >= 0 && len(positional) > c.maxArgs):
		fmt.Fprintf(stderr, "fhirguard %s: %s\n\n", c.name, argCountError(c, len(positional)))
		printCommandUsage(stderr, c, fs)
		return exitUsage
	}
	return runCmd(ctx, positional, stdout, stderr)
}

// lookup returns the command whose name is the longest prefix of args
// (in words), and the arguments after it.
func lookup(cmds []command, args []string) (*command, []string) {
	var best *command
	bestLen := 0
	for i := range cmds {
		words := strings.Fields(cmds[i].name)
		if len(words) > len(args) || len(words) <= bestLen {
			continue
		}
		match := true
		for j, w := range words {
			if args[j] != w {
				match = false
				break
			}
		}
		if match {
			best, bestLen = &cmds[i], len(words)
		}
	}
	if best == nil {
		return nil, nil
	}
	return best, args[bestLen:]
}

// groupOf returns the commands whose name starts with the word group and
// has more words ("discovery" groups "discovery lint").
func groupOf(cmds []command, group string) []*command {
	var out []*command
	for i := range cmds {
		if words := strings.Fields(cmds[i].name); len(words) > 1 && words[0] == group {
			out = append(out, &cmds[i])
		}
	}
	return out
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help"
}

func argCountError(c *command, n int) string {
	switch {
	case c.minArgs == c.maxArgs && c.minArgs == 1:
		return fmt.Sprintf("expects one argument, %s; got %d", c.args, n)
	case c.maxArgs == 0:
		return fmt.Sprintf("expects no arguments; got %d", n)
	}
	return fmt.Sprintf("wrong number of arguments (%d): expects %s", n, c.args)
}

func usageError(stderr io.Writer, cmds []command, msg string) int {
	fmt.Fprintln(stderr, msg)
	fmt.Fprintln(stderr)
	printMainUsage(stderr, cmds)
	return exitUsage
}

// commandFlags returns the flag set of c, which reports errors to its
// caller without printing them, with c's flags and --config defined, and
// the function running c (nil when c is not yet available).
func commandFlags(c *command) (*flag.FlagSet, runFunc) {
	fs := flag.NewFlagSet("fhirguard "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if c.setup == nil {
		return fs, nil
	}
	runCmd := c.setup(fs)
	cliconfig.Define(fs)
	return fs, runCmd
}

func printMainUsage(w io.Writer, cmds []command) {
	fmt.Fprint(w, `fhirguard: SMART on FHIR authorization tools

Usage:
  fhirguard <command> [<subcommand>] [flags] [arguments]

Commands:
`)
	width := 0
	for _, c := range cmds {
		width = max(width, len(c.name))
	}
	for _, c := range cmds {
		summary := c.summary
		if c.setup == nil {
			summary += " (not yet available)"
		}
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, summary)
	}
	fmt.Fprint(w, `
Flags:
  -h, --help   print this help
  --version    print the version

Run "fhirguard <command> -h" for the flags of a command. Flags also
come from a YAML file given with --config whose keys are the flag names
(the command line wins). Exit code 2 means a usage error.
`)
}

func printGroupUsage(w io.Writer, group string, cmds []*command) {
	fmt.Fprintf(w, "Usage: fhirguard %s <subcommand> [flags] [arguments]\n\nSubcommands:\n", group)
	width := 0
	for _, c := range cmds {
		width = max(width, len(c.name)-len(group)-1)
	}
	for _, c := range cmds {
		summary := c.summary
		if c.setup == nil {
			summary += " (not yet available)"
		}
		fmt.Fprintf(w, "  %-*s  %s\n", width, strings.TrimPrefix(c.name, group+" "), summary)
	}
}

// printCommandUsage prints the synopsis, description and flags of c;
// fs holds its flags (defined by c.setup).
func printCommandUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	synopsis := "fhirguard " + c.name
	if c.setup != nil {
		synopsis += " [flags]"
	}
	if c.args != "" {
		synopsis += " " + c.args
	}
	fmt.Fprintf(w, "Usage: %s\n\n", synopsis)
	if c.setup == nil {
		fmt.Fprintf(w, "%s.\n\nNot yet available.\n", upperFirst(c.summary))
		return
	}
	fmt.Fprintf(w, "%s\n", strings.TrimSpace(c.help))
	fmt.Fprint(w, "\nFlags:\n")
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintln(w, line)
		switch f.DefValue {
		case "", "false", "0", "0s", "[]":
		default:
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "        %s\n", strings.ReplaceAll(usage, "\n", "\n        "))
	})
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// version describes the build: module version, VCS revision when known,
// Go version.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "fhirguard (unknown version)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	out := "fhirguard " + v
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if modified == "true" {
			rev += "+modified"
		}
		out += " " + rev
	}
	return out + " " + bi.GoVersion
}
