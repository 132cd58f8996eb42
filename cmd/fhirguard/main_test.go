package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHelp(t *testing.T) {
	for _, tc := range []struct {
		golden string
		args   [][]string
	}{
		{"help.txt", [][]string{{"-h"}, {"--help"}, {"-help"}, {"help"}}},
		{"help-discovery-lint.txt", [][]string{{"discovery", "lint", "-h"}, {"discovery", "lint", "--help"}, {"help", "discovery", "lint"}, {"discovery", "lint", "https://x.example", "-h"}}},
		{"help-discovery.txt", [][]string{{"discovery", "-h"}, {"help", "discovery"}}},
		{"help-proxy.txt", [][]string{{"proxy", "-h"}, {"help", "proxy"}}},
	} {
		for i, args := range tc.args {
			code, stdout, stderr := runCmd(t, args...)
			if code != exitOK || stderr != "" {
				t.Errorf("%q: exit code %d, stderr %q", args, code, stderr)
			}
			if i == 0 {
				checkGolden(t, tc.golden, stdout)
				continue
			}
			if want, _ := os.ReadFile(filepath.Join("testdata", tc.golden+".golden")); stdout != string(want) {
				t.Errorf("%q: output differs from %s:\n%s", args, tc.golden, stdout)
			}
		}
	}
}

func TestHelpListsEveryCommand(t *testing.T) {
	_, stdout, _ := runCmd(t, "help")
	for _, c := range commands() {
		if !strings.Contains(stdout, "  "+c.name+" ") {
			t.Errorf("help does not list %q", c.name)
		}
		if c.setup == nil && !strings.Contains(stdout, c.summary+" (not yet available)") {
			t.Errorf("help does not say %q is not yet available", c.name)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // in stderr
	}{
		{nil, "fhirguard: missing command"},
		{[]string{"nope"}, `fhirguard: unknown command "nope"`},
		{[]string{"--nope"}, "fhirguard: unknown flag --nope"},
		{[]string{"help", "nope"}, `fhirguard help: unknown command "nope"`},
		{[]string{"discovery"}, "fhirguard discovery: missing subcommand"},
		{[]string{"discovery", "nope"}, `fhirguard discovery: unknown subcommand "nope"`},
		{[]string{"discovery", "lint"}, "fhirguard discovery lint: expects one argument, <FHIR base URL>; got 0"},
		{[]string{"discovery", "lint", "https://a.example", "https://b.example"}, "expects one argument, <FHIR base URL>; got 2"},
		{[]string{"discovery", "lint", "--nope", "https://a.example"}, "fhirguard discovery lint: flag provided but not defined: -nope"},
		{[]string{"discovery", "lint", "--timeout", "soon", "https://a.example"}, `invalid value "soon" for flag -timeout`},
		{[]string{"discovery", "lint", "--timeout", "0s", "https://a.example"}, "--timeout must be positive"},
		{[]string{"discovery", "lint", "--ca-file", "/nonexistent/ca.pem", "https://a.example"}, "--ca-file: open /nonexistent/ca.pem"},
		{[]string{"discovery", "lint", "fhir.example.org"}, `"fhir.example.org" is not a FHIR base URL`},
		{[]string{"discovery", "lint", "ftp://fhir.example.org"}, "is not a FHIR base URL"},
		{[]string{"discovery", "lint", "https://fhir.example.org/r4?x=1"}, "is not a FHIR base URL"},
		{[]string{"discovery", "lint", "https://fhir.example.org/r4#"}, "is not a FHIR base URL"},
		{[]string{"discovery", "lint", "https:///r4"}, "is not a FHIR base URL"},
		{[]string{"proxy"}, "fhirguard proxy: --upstream is required"},
		{[]string{"scope", "explain"}, "fhirguard scope explain: "},
		{[]string{"token", "inspect"}, "fhirguard token inspect: not yet available"},
	} {
		code, stdout, stderr := runCmd(t, tc.args...)
		if code != exitUsage {
			t.Errorf("%q: exit code %d, want %d", tc.args, code, exitUsage)
		}
		if stdout != "" {
			t.Errorf("%q: stdout %q", tc.args, stdout)
		}
		if !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: stderr %q, want it to contain %q", tc.args, stderr, tc.want)
		}
	}
}

func TestUsageErrorPrintsUsage(t *testing.T) {
	_, _, stderr := runCmd(t, "nope")
	if !strings.Contains(stderr, "Usage:") || !strings.Contains(stderr, "discovery lint") {
		t.Errorf("no usage after the error:\n%s", stderr)
	}
	_, _, stderr = runCmd(t, "discovery", "lint", "--nope", "https://a.example")
	if !strings.Contains(stderr, "Usage: fhirguard discovery lint [flags] <FHIR base URL>") || !strings.Contains(stderr, "--timeout duration") {
		t.Errorf("no command usage after the error:\n%s", stderr)
	}
}

func TestCaFileWithoutCertificate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCmd(t, "discovery", "lint", "--ca-file", path, "https://a.example")
	if code != exitUsage || !strings.Contains(stderr, "no PEM certificate") {
		t.Errorf("exit code %d, stderr %q", code, stderr)
	}
}

func TestVersion(t *testing.T) {
	for _, arg := range []string{"--version", "-version"} {
		code, stdout, stderr := runCmd(t, arg)
		if code != exitOK || stderr != "" || !strings.HasPrefix(stdout, "fhirguard ") || !strings.Contains(stdout, "go1.") || strings.Count(stdout, "\n") != 1 {
			t.Errorf("%s: exit code %d, stdout %q, stderr %q", arg, code, stdout, stderr)
		}
	}
}

func TestScopeExplain(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string // in stdout
	}{
		{[]string{"scope", "explain", "patient/Observation.read"}, 0, "v2 form:      patient/Observation.rs"},
		{[]string{"scope", "explain", "patient/Observation.sr", "openid"}, 1, "did you mean: patient/Observation.rs"},
		{[]string{"scope", "explain", "--json", "user/*.cruds"}, 0, `"valid": true`},
		{[]string{"scope", "explain", "user/*.cruds", "--json"}, 0, `"valid": true`},
		{[]string{"scope", "explain", "--json", "user/Foo.rs"}, 1, `"valid": false`},
	} {
		var stdout, stderr strings.Builder
		if code := run(context.Background(), tc.args, &stdout, &stderr); code != tc.code {
			t.Errorf("%q: exit code %d, want %d (stderr %q)", tc.args, code, tc.code, stderr.String())
		}
		if !strings.Contains(stdout.String(), tc.want) {
			t.Errorf("%q: stdout %q lacks %q", tc.args, stdout.String(), tc.want)
		}
	}
}
