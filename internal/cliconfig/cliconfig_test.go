package cliconfig

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testFlags is a flag set with one flag of each kind.
type testFlags struct {
	fs      *flag.FlagSet
	name    *string
	verbose *bool
	port    *int
	timeout *time.Duration
	origins List
}

func newTestFlags() *testFlags {
	t := &testFlags{fs: flag.NewFlagSet("test", flag.ContinueOnError)}
	t.fs.SetOutput(io.Discard)
	t.name = t.fs.String("name", "default", "a string")
	t.verbose = t.fs.Bool("verbose", false, "a bool")
	t.port = t.fs.Int("port", 80, "an int")
	t.timeout = t.fs.Duration("timeout", time.Second, "a duration")
	t.fs.Var(&t.origins, "origins", "a list")
	return t
}

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestParseFileSetsFlags(t *testing.T) {
	path := writeConfig(t, `# settings
name: from file
verbose: true
port: 8080
timeout: 30s
origins: [https://a.example, "https://b.example"]
`)
	f := newTestFlags()
	args, err := Parse(f.fs, []string{"--config", path, "arg1"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(args, []string{"arg1"}) {
		t.Errorf("args = %q", args)
	}
	if *f.name != "from file" || !*f.verbose || *f.port != 8080 || *f.timeout != 30*time.Second {
		t.Errorf("got name=%q verbose=%v port=%d timeout=%v", *f.name, *f.verbose, *f.port, *f.timeout)
	}
	if want := (List{"https://a.example", "https://b.example"}); !reflect.DeepEqual(f.origins, want) {
		t.Errorf("origins = %q, want %q", f.origins, want)
	}
}

func TestParseCommandLineWins(t *testing.T) {
	path := writeConfig(t, "name: from file\nport: 8080\norigins: [https://file.example]\nverbose: true\n")
	f := newTestFlags()
	_, err := Parse(f.fs, []string{"-name=cli", "--origins", "https://cli.example,https://cli2.example", "-verbose=false", "-config=" + path})
	if err != nil {
		t.Fatal(err)
	}
	if *f.name != "cli" || *f.port != 8080 || *f.verbose {
		t.Errorf("got name=%q port=%d verbose=%v", *f.name, *f.port, *f.verbose)
	}
	if want := (List{"https://cli.example", "https://cli2.example"}); !reflect.DeepEqual(f.origins, want) {
		t.Errorf("origins = %q, want %q", f.origins, want)
	}
}

func TestParseInterspersed(t *testing.T) {
	f := newTestFlags()
	args, err := Parse(f.fs, []string{"a", "--port", "1", "b", "-verbose", "--", "-c", "--name=x"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "-c", "--name=x"}; !reflect.DeepEqual(args, want) {
		t.Errorf("args = %q, want %q", args, want)
	}
	if *f.port != 1 || !*f.verbose || *f.name != "default" {
		t.Errorf("got port=%d verbose=%v name=%q", *f.port, *f.verbose, *f.name)
	}
}

func TestParseWithoutConfig(t *testing.T) {
	f := newTestFlags()
	args, err := Parse(f.fs, nil)
	if err != nil || len(args) != 0 {
		t.Fatalf("Parse = %q, %v", args, err)
	}
	if f.fs.Lookup("config") == nil {
		t.Error("no config flag defined")
	}
	if *f.name != "default" {
		t.Errorf("name = %q", *f.name)
	}
}

func TestParseHelpAndUnknownFlag(t *testing.T) {
	if _, err := Parse(newTestFlags().fs, []string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}
	if _, err := Parse(newTestFlags().fs, []string{"x", "--nope"}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("--nope: %v", err)
	}
}

func TestParseMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.yaml")
	_, err := Parse(newTestFlags().fs, []string{"--config", path})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want not exist", err)
	}
}

func TestApplyEmpty(t *testing.T) {
	for _, in := range []string{"", "# only a comment\n", "---\n", "~\n", "{}\n"} {
		f := newTestFlags()
		if err := apply(f.fs, "c.yaml", []byte(in)); err != nil {
			t.Errorf("%q: %v", in, err)
		}
		if *f.name != "default" {
			t.Errorf("%q: name = %q", in, *f.name)
		}
	}
}

func TestApplyErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"nmae: x\n", `c.yaml:1: unknown key "nmae": not a flag of this command`},
		{"name: a\nport: 1\nname: b\n", `c.yaml:3: duplicate key "name" (first on line 1)`},
		{"config: other.yaml\n", `c.yaml:1: key "config": the configuration file cannot name another one`},
		{"port: eighty\n", `c.yaml:1: key "port": invalid value "eighty"`},
		{"verbose: yes\n", `c.yaml:1: key "verbose": invalid value "yes"`},
		{"timeout: 30\n", `c.yaml:1: key "timeout": invalid value "30"`},
		{"name:\n", `c.yaml:1: key "name": no value (null)`},
		{"name: [a, b]\n", `c.yaml:1: key "name": a list is only accepted by list flags`},
		{"name: {a: b}\n", `c.yaml:1: key "name": a mapping is not a flag value`},
		{"origins: [[a]]\n", `c.yaml:1: key "origins": a list inside a list is not a flag value`},
		{"origins: [a, ~]\n", `c.yaml:1: key "origins": no value (null)`},
		{"name: &x a\nport: *x\n", `c.yaml:1: key "name": anchors and aliases are not supported`},
		{"name: !!binary aGVsbG8=\n", `c.yaml:1: key "name": unsupported tag "!!binary"`},
		{"[a]: b\n", `c.yaml:1: a key must be a flag name`},
		{"- name\n", `c.yaml:1: the file must be a mapping`},
		{"just a string\n", `c.yaml:1: the file must be a mapping`},
		{"name: a\n---\nname: b\n", `c.yaml:2: more than one YAML document`},
		{"name: [a\n", `c.yaml:1: did not find expected ',' or ']'`},
		{"name: \"a\n", `c.yaml:2: found unexpected end of stream`},
		{"<<: {name: a}\n", `unknown key "<<"`},
	} {
		f := newTestFlags()
		err := apply(f.fs, "c.yaml", []byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want it to contain %q", tc.in, err, tc.want)
		}
	}
}

func TestApplyReportsEveryErrorAndSetsNothing(t *testing.T) {
	f := newTestFlags()
	err := apply(f.fs, "c.yaml", []byte("name: ok\nfoo: 1\nbar: 2\n"))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`"foo"`, `"bar"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if *f.name != "default" {
		t.Errorf("name set to %q despite the errors", *f.name)
	}
}

func TestApplyScalarForms(t *testing.T) {
	f := newTestFlags()
	err := apply(f.fs, "c.yaml", []byte("name: \"quoted: value\"\nport: 0x10\norigins: a, b\nverbose: True\n"))
	if err != nil {
		t.Fatal(err)
	}
	if *f.name != "quoted: value" || *f.port != 16 || !*f.verbose {
		t.Errorf("got name=%q port=%d verbose=%v", *f.name, *f.port, *f.verbose)
	}
	if want := (List{"a", "b"}); !reflect.DeepEqual(f.origins, want) {
		t.Errorf("origins = %q", f.origins)
	}
}

func TestList(t *testing.T) {
	var l List
	for _, s := range []string{"a", " b , ,c ", ""} {
		if err := l.Set(s); err != nil {
			t.Fatal(err)
		}
	}
	if want := (List{"a", "b", "c"}); !reflect.DeepEqual(l, want) {
		t.Errorf("l = %q", l)
	}
	if l.String() != "a,b,c" {
		t.Errorf("String = %q", l.String())
	}
	var nilList *List
	if nilList.String() != "" {
		t.Error("nil List String not empty")
	}
}

func FuzzApply(f *testing.F) {
	for _, seed := range []string{
		"name: a\nverbose: true\nport: 8080\ntimeout: 30s\norigins: [a, b]\n",
		"name: a\nname: b\n",
		"unknown: 1\n",
		"name: &a x\nport: *a\n",
		"- a\n- b\n",
		"a: {b: [c, {d: e}]}\n",
		"name: a\n---\n",
		"? [a]\n: b\n",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fl := newTestFlags()
		if err := fl.fs.Set("port", "1"); err != nil {
			t.Fatal(err)
		}
		err := apply(fl.fs, "f.yaml", data)
		if *fl.port != 1 {
			t.Fatalf("a flag set on the command line was changed to %d", *fl.port)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			if *fl.name != "default" || *fl.verbose || *fl.timeout != time.Second || len(fl.origins) > 0 {
				// Only a value refused by its flag's Set may leave
				// earlier settings applied.
				if !strings.Contains(err.Error(), "invalid value") {
					t.Fatalf("flags set despite error %v", err)
				}
			}
		}
	})
}
