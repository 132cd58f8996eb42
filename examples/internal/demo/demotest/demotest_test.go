package demotest

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestSplitShell(t *testing.T) {
	tests := []struct {
		name, line string
		want       []string
	}{
		{"plain words", "curl -sS http://x/fhir", []string{"curl", "-sS", "http://x/fhir"}},
		{"single quotes", `curl -H 'Authorization: Bearer a.b-c_d' 'http://x/fhir/Observation?code=a|b'`,
			[]string{"curl", "-H", "Authorization: Bearer a.b-c_d", "http://x/fhir/Observation?code=a|b"}},
		{"escaped single quote", `echo 'it'\''s'`, []string{"echo", "it's"}},
		{"double quotes", `echo "a \"b\" \\ c"`, []string{"echo", `a "b" \ c`}},
		{"backslash escape", `echo a\ b`, []string{"echo", "a b"}},
		{"adjacent quoting", `echo a'b'"c"`, []string{"echo", "abc"}},
		{"empty quoted word", `echo ''`, []string{"echo", ""}},
		{"extra spaces and tabs", " curl \t  x  ", []string{"curl", "x"}},
		{"hash inside a word", "echo a#b", []string{"echo", "a#b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SplitShell(tt.line)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSplitShellRefused(t *testing.T) {
	for _, line := range []string{
		"echo 'open", `echo "open`, `echo a\`, "echo $HOME", "echo `id`", "a; b", "a | b", "a && b", "a > f",
		"echo *", "echo ~", "# comment", `echo "$x"`, "echo a\nb", "echo (x)", "echo !x",
	} {
		if words, err := SplitShell(line); !errors.Is(err, ErrCurl) {
			t.Errorf("SplitShell(%q) = %q, %v; want ErrCurl", line, words, err)
		}
	}
}

func TestParseCurl(t *testing.T) {
	req, err := ParseCurl(`curl -sS -i -X DELETE -H 'Authorization: Bearer tok' 'http://127.0.0.1:1/fhir/Observation/lab1'`)
	if err != nil {
		t.Fatal(err)
	}
	if req.Method != "DELETE" || req.URL.String() != "http://127.0.0.1:1/fhir/Observation/lab1" ||
		req.Header.Get("Authorization") != "Bearer tok" {
		t.Fatalf("got %s %s %v", req.Method, req.URL, req.Header)
	}
	req, err = ParseCurl(`curl -sS 'http://127.0.0.1:1/fhir/Patient?name=smith'`)
	if err != nil || req.Method != "GET" || req.URL.Query().Get("name") != "smith" || len(req.Header) != 0 {
		t.Fatalf("GET: %v %v", req, err)
	}
	for _, line := range []string{
		"wget http://x/fhir", "curl", "curl -d x http://x/fhir", "curl -X", "curl -H", "curl -H 'nocolon' http://x/fhir",
		"curl http://x/a http://x/b", "curl ftp://x/fhir", "curl /relative", "curl 'http://x/fhir", "curl -o out.json http://x/fhir",
	} {
		if _, err := ParseCurl(line); !errors.Is(err, ErrCurl) {
			t.Errorf("ParseCurl(%q) = %v, want ErrCurl", line, err)
		}
	}
}

func TestBannerCommands(t *testing.T) {
	banner := "hello\n\n# First: HTTP 200\ncurl -sS 'http://x/fhir/metadata'\n\n# Second one: a: b: HTTP 404\ncurl -sS 'http://x/fhir/Patient/456'\n"
	cmds, err := BannerCommands(banner)
	if err != nil {
		t.Fatal(err)
	}
	want := []BannerCommand{
		{Title: "First", Status: 200, Command: "curl -sS 'http://x/fhir/metadata'"},
		{Title: "Second one: a: b", Status: 404, Command: "curl -sS 'http://x/fhir/Patient/456'"},
	}
	if !slices.Equal(cmds, want) {
		t.Fatalf("got %+v", cmds)
	}
	for _, bad := range []string{"curl -sS 'http://x'\n", "# no status\ncurl x\n", "# t: HTTP x\ncurl x\n"} {
		if _, err := BannerCommands(bad); err == nil {
			t.Errorf("BannerCommands(%q) accepted", bad)
		}
	}
}

func FuzzSplitShell(f *testing.F) {
	for _, s := range []string{
		`curl -sS -H 'Authorization: Bearer a.b.c' 'http://127.0.0.1:8080/fhir/Patient/123'`,
		`echo 'it'\''s'`, `echo "a \"b\""`, `a\ b`, "a; b", "'open",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		words, err := SplitShell(line)
		if err != nil {
			return
		}
		// Re-quoting every word and splitting again gives the same words.
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
		again, err := SplitShell(strings.Join(quoted, " "))
		if err != nil || !slices.Equal(again, words) {
			t.Fatalf("round trip of %q: %q, %v", words, again, err)
		}
		if req, err := ParseCurl(line); err == nil && req.URL.Host == "" {
			t.Fatalf("request without a host from %q", line)
		}
	})
}
