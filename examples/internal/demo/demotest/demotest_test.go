package demotest

import (
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

var testVars = map[string]string{"TOK": "a.b-c_d", "Q": `it's "x" $y \z`, "EMPTY": ""}

var splitTests = []struct {
	name, line string
	want       []string
}{
	{"plain words", "curl -sS http://x/fhir", []string{"curl", "-sS", "http://x/fhir"}},
	{"single quotes", `curl -H 'Authorization: Bearer a.b-c_d' 'http://x/fhir/Observation?code=a|b'`,
		[]string{"curl", "-H", "Authorization: Bearer a.b-c_d", "http://x/fhir/Observation?code=a|b"}},
	{"escaped single quote", `echo 'it'\''s'`, []string{"echo", "it's"}},
	{"double quotes", `echo "a \"b\" \\ c"`, []string{"echo", `a "b" \ c`}},
	{"escaped dollar and backquote in double quotes", "echo \"\\$x \\` \\n\"", []string{"echo", "$x ` \\n"}},
	{"backslash escape", `echo a\ b`, []string{"echo", "a b"}},
	{"adjacent quoting", `echo a'b'"c"`, []string{"echo", "abc"}},
	{"empty quoted word", `echo ''`, []string{"echo", ""}},
	{"extra spaces and tabs", " curl \t  x  ", []string{"curl", "x"}},
	{"hash inside a word", "echo a#b", []string{"echo", "a#b"}},
	{"equals inside a word", "echo a=b", []string{"echo", "a=b"}},
	{"variable in double quotes", `curl -H "Authorization: Bearer $TOK" x`, []string{"curl", "-H", "Authorization: Bearer a.b-c_d", "x"}},
	{"braced variable", `echo "${TOK}x"`, []string{"echo", "a.b-c_dx"}},
	{"variable ends at a non-name byte", `echo "$TOK-$TOK.x"`, []string{"echo", "a.b-c_d-a.b-c_d.x"}},
	{"value kept literally", `echo "<$Q>"`, []string{"echo", `<it's "x" $y \z>`}},
	{"empty variable", `echo "$EMPTY"`, []string{"echo", ""}},
	{"curl's -w newline", `curl -w '\n' x`, []string{"curl", "-w", `\n`, "x"}},
}

func TestSplitShell(t *testing.T) {
	for _, tt := range splitTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SplitShell(tt.line, testVars)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSplitShellLikeShells checks the cases of TestSplitShell against the
// shells installed: each hands a command exactly the words SplitShell
// computes.
func TestSplitShellLikeShells(t *testing.T) {
	var lines []string
	names := []string{"TOK", "Q", "EMPTY"}
	for _, n := range names {
		lines = append(lines, n+"="+quote(testVars[n]))
	}
	for _, tt := range splitTests {
		words, _ := SplitShell(tt.line, testVars)
		lines = append(lines, "curl "+strings.TrimPrefix(strings.TrimPrefix(strings.TrimLeft(tt.line, " \t"), words[0]), " "))
	}
	for _, name := range []string{"sh", "bash", "zsh"} {
		t.Run(name, func(t *testing.T) {
			path, err := exec.LookPath(name)
			if err != nil {
				t.Skipf("%s is not installed", name)
			}
			out, err := shellCommand(t, path, argvDumper+"\n"+strings.Join(lines, "\n")+"\n").Output()
			if err != nil {
				t.Fatalf("%v: %s", err, stderrOf(err))
			}
			got := splitArgvDump(out)
			if len(got) != len(splitTests) {
				t.Fatalf("%d calls, want %d", len(got), len(splitTests))
			}
			for i, tt := range splitTests {
				want := append([]string{"curl"}, tt.want[1:]...)
				if !slices.Equal(got[i], want) {
					t.Errorf("%s: %s passes %q, SplitShell says %q", tt.name, name, got[i], want)
				}
			}
		})
	}
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func TestSplitShellRefused(t *testing.T) {
	for _, line := range []string{
		"echo 'open", `echo "open`, `echo a\`, "echo $HOME", "echo `id`", "a; b", "a | b", "a && b", "a > f",
		"echo *", "echo ~", "# comment", `echo "$x"`, "echo a\nb", "echo (x)", "echo !x", `echo "!x"`, `echo "\!x"`,
		`echo $TOK`, `echo "$UNSET"`, `echo "${UNSET}"`, `echo "$1"`, `echo "$@"`, `echo "$(id)"`, `echo "${TOK:-x}"`,
		`echo "${TOK"`, `echo "$TOK[1]"`, `echo "$TOK:h"`, `echo "$"`, "echo =curl", "^a^b", "echo \"a\nb\"",
	} {
		if words, err := SplitShell(line, testVars); !errors.Is(err, ErrCurl) {
			t.Errorf("SplitShell(%q) = %q, %v; want ErrCurl", line, words, err)
		}
	}
}

func mustSplit(t *testing.T, line string) []string {
	t.Helper()
	words, err := SplitShell(line, testVars)
	if err != nil {
		t.Fatal(err)
	}
	return words
}

func TestParseCurl(t *testing.T) {
	call, err := ParseCurl(mustSplit(t, `curl -sS -i -w '\n' -X DELETE -H "Authorization: Bearer $TOK" 'http://127.0.0.1:1/fhir/Observation/lab1'`))
	if err != nil {
		t.Fatal(err)
	}
	req := call.Request
	if req.Method != "DELETE" || req.URL.String() != "http://127.0.0.1:1/fhir/Observation/lab1" ||
		req.Header.Get("Authorization") != "Bearer a.b-c_d" || !call.Include || call.WriteOut != "\n" {
		t.Fatalf("got %s %s %v %+v", req.Method, req.URL, req.Header, call)
	}
	call, err = ParseCurl(mustSplit(t, `curl -sS 'http://127.0.0.1:1/fhir/Patient?name=smith'`))
	if err != nil || call.Request.Method != "GET" || call.Request.URL.Query().Get("name") != "smith" || len(call.Request.Header) != 1 ||
		call.Request.Header.Get("Accept") != "*/*" ||
		call.Include || call.WriteOut != "" {
		t.Fatalf("GET: %+v %v", call, err)
	}
	if call, err := ParseCurl([]string{"curl", "-w", `a\tb\r\n`, "http://x/"}); err != nil || call.WriteOut != "a\tb\r\n" {
		t.Fatalf("-w escapes: %+v %v", call, err)
	}
	for _, line := range []string{
		"wget http://x/fhir", "curl", "curl -d x http://x/fhir", "curl -X", "curl -H", "curl -H 'nocolon' http://x/fhir",
		"curl http://x/a http://x/b", "curl ftp://x/fhir", "curl /relative", "curl -o out.json http://x/fhir",
		"curl -w", `curl -w '%{http_code}' http://x/`, "curl -w @fmt http://x/", `curl -w '\x' http://x/`, `curl -w 'a\' http://x/`,
	} {
		if _, err := ParseCurl(mustSplit(t, line)); !errors.Is(err, ErrCurl) {
			t.Errorf("ParseCurl(%q) = %v, want ErrCurl", line, err)
		}
	}
}

func TestReadBanner(t *testing.T) {
	banner := "hello\n  X=1 is prose\n\nTOK='a.b'\nEMPTY=\n\n# First: HTTP 200\ncurl -sS 'http://x/fhir/metadata'\n\n" +
		"# Second one: a: b: HTTP 404\ncurl -sS -H \"Authorization: Bearer $TOK\" 'http://x/fhir/Patient/456'\n"
	bs, err := ReadBanner(banner)
	if err != nil {
		t.Fatal(err)
	}
	want := []BannerCommand{
		{Title: "First", Status: 200, Command: "curl -sS 'http://x/fhir/metadata'",
			Args: []string{"curl", "-sS", "http://x/fhir/metadata"}},
		{Title: "Second one: a: b", Status: 404, Command: `curl -sS -H "Authorization: Bearer $TOK" 'http://x/fhir/Patient/456'`,
			Args: []string{"curl", "-sS", "-H", "Authorization: Bearer a.b", "http://x/fhir/Patient/456"}},
	}
	if len(bs.Commands) != len(want) {
		t.Fatalf("got %+v", bs.Commands)
	}
	for i, c := range bs.Commands {
		if c.Title != want[i].Title || c.Status != want[i].Status || c.Command != want[i].Command || !slices.Equal(c.Args, want[i].Args) {
			t.Errorf("command %d: got %+v, want %+v", i, c, want[i])
		}
	}
	if len(bs.Vars) != 2 || bs.Vars["TOK"] != "a.b" || bs.Vars["EMPTY"] != "" {
		t.Errorf("vars %q", bs.Vars)
	}
	if !slices.Equal(bs.Lines, []string{"TOK='a.b'", "EMPTY=", want[0].Command, want[1].Command}) {
		t.Errorf("lines %q", bs.Lines)
	}
	for _, bad := range []string{
		"curl -sS 'http://x'\n", "# no status\ncurl x\n", "# t: HTTP x\ncurl x\n",
		// A variable used before it is set, or not set at all.
		"# t: HTTP 200\ncurl -H \"A: $TOK\" http://x/\nTOK=a\n",
		// Not plain assignments: commands run with a variable in their environment.
		"TOK= curl http://x/\n", "TOK=a b\n", "TOK='a' 'b'\n", "TOK=$(id)\n", "TOK='open\n",
	} {
		if _, err := ReadBanner(bad); err == nil {
			t.Errorf("ReadBanner(%q) accepted", bad)
		}
	}
}

func FuzzSplitShell(f *testing.F) {
	for _, s := range []string{
		`curl -sS -H 'Authorization: Bearer a.b.c' 'http://127.0.0.1:8080/fhir/Patient/123'`,
		`curl -sS -w '\n' -H "Authorization: Bearer $TOK" 'http://127.0.0.1:8080/fhir/Patient/123'`,
		`echo 'it'\''s'`, `echo "a \"b\""`, `a\ b`, "a; b", "'open", `"${TOK}"`, `"$Q$EMPTY"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		words, err := SplitShell(line, testVars)
		if err != nil {
			return
		}
		// Re-quoting every word and splitting again gives the same words.
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = quote(w)
		}
		again, err := SplitShell(strings.Join(quoted, " "), nil)
		if err != nil || !slices.Equal(again, words) {
			t.Fatalf("round trip of %q: %q, %v", words, again, err)
		}
		if call, err := ParseCurl(words); err == nil && call.Request.URL.Host == "" {
			t.Fatalf("request without a host from %q", line)
		}
	})
}
