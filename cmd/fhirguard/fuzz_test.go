package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/smarttest"
)

// handlerTransport answers requests with a handler, in memory.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

// FuzzLint serves fuzzed bodies as the SMART configuration and
// /metadata: discovery lint never panics, exits with 0, 1 or 3, prints
// a JSON report with --json and one line a problem without it.
func FuzzLint(f *testing.F) {
	dirs, _ := filepath.Glob(filepath.Join("testdata", "lint", "*"))
	for _, dir := range dirs {
		read := func(stem string) []byte {
			matches, _ := filepath.Glob(filepath.Join(dir, stem+".*"))
			if len(matches) == 0 {
				return nil
			}
			b, _ := os.ReadFile(matches[0])
			return b
		}
		f.Add(read("smart-configuration"), read("metadata"), uint8(0))
	}
	f.Add([]byte(`{"token_endpoint":"\n\u2028x"}`), []byte(`{"resourceType":"CapabilityStatement","rest":[{"security":{"extension":[{"url":"http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris","extension":[{"url":"token","valueUri":"a\nb"}]}]}}]}`), uint8(0))
	f.Add([]byte(`{}`), []byte(`{"resourceType":1,"rest":"x"}`), uint8(7))
	f.Add([]byte(`[]`), []byte(`{"rest":[null,{"mode":null,"security":{"service":[{"coding":[{"code":"SMART-on-FHIR"}]}]}}]}`), uint8(3))

	f.Fuzz(func(t *testing.T, smart, meta []byte, mode uint8) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/fhir/.well-known/smart-configuration":
				if mode&1 == 0 {
					w.Header().Set("Access-Control-Allow-Origin", "*")
				}
				w.Header().Set("Content-Type", "application/json")
				if mode&2 != 0 {
					w.WriteHeader(http.StatusInternalServerError)
				}
				_, _ = w.Write(smart)
			case "/fhir/metadata":
				w.Header().Set("Content-Type", "application/fhir+json")
				if mode&4 != 0 {
					w.WriteHeader(http.StatusNotFound)
				}
				_, _ = w.Write(meta)
			default:
				http.NotFound(w, r)
			}
		})
		cmds := []command{discoveryLintCommand(handlerTransport{h})}
		for _, asJSON := range []bool{true, false} {
			args := []string{"discovery", "lint", "https://fhir.example.org/fhir"}
			if asJSON {
				args = append(args, "--json")
			}
			var stdout, stderr bytes.Buffer
			code := dispatch(context.Background(), cmds, args, &stdout, &stderr)
			if code != exitOK && code != exitFail && code != exitFetch {
				t.Fatalf("exit code %d; stderr %q", code, stderr.String())
			}
			if stderr.Len() != 0 {
				t.Fatalf("stderr %q", stderr.String())
			}
			if asJSON {
				var rep lintReport
				if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
					t.Fatalf("--json output is not a report: %v\n%s", err, stdout.String())
				}
				if rep.ExitCode != code || rep.Errors+rep.Warnings != len(rep.Problems) {
					t.Fatalf("inconsistent report (exit code %d): %+v", code, rep)
				}
				continue
			}
			lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
			for _, line := range lines[:len(lines)-1] {
				if !strings.HasPrefix(line, "error    ") && !strings.HasPrefix(line, "warning  ") && !strings.HasPrefix(line, "failed   ") {
					t.Fatalf("line %q is not a problem; output:\n%s", line, stdout.String())
				}
			}
			if last := lines[len(lines)-1]; !strings.HasPrefix(last, "https://fhir.example.org/fhir: ") {
				t.Fatalf("last line %q is not the summary", last)
			}
		}
	})
}

// FuzzInspect decodes arbitrary tokens, given as an argument or on
// stdin: token inspect never panics, exits with 0 or 3 without a server
// check, writes nothing to stderr, and --json always prints a report.
func FuzzInspect(f *testing.F) {
	srv := authServer(f)
	if tok, err := srv.MintToken(patientToken); err == nil {
		f.Add(tok, false)
	}
	for _, fl := range smarttest.Flaws() {
		if tok, err := srv.MintFlawedToken(fl, patientToken); err == nil {
			f.Add(tok, false)
		}
	}
	for _, s := range []string{
		"", "-", "a", "a.b", "a.b.c", "....", "{", "{}", `{"payload":"e30","signatures":[]}`, "Bearer x.y.z", "x==",
		"eyJhbGciOiJub25lIn0.e30.", "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjFlOTk5fQ.c2ln", "eyJlbmMiOiJBMjU2R0NNIn0.a.b.c.d",
		"eyJhbGciOiJSUzI1NiJ9.eyJzY29wZSI6WzFdLCJzY3AiOlsiYSJdLCJhdWQiOltdfQ.c2ln", "eyJ9.e30.c2ln", "e30\n.e30.c2ln",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, tok string, viaStdin bool) {
		for _, asJSON := range []bool{true, false} {
			args := []string{"--", tok}
			stdin := ""
			if viaStdin {
				args, stdin = []string{"-"}, tok
			}
			if asJSON {
				args = append([]string{"--json"}, args...)
			}
			code, stdout, stderr := inspect(nil, stdin, args...)
			if code != exitOK && code != exitToken {
				t.Fatalf("exit code %d; stderr %q", code, stderr)
			}
			if stderr != "" {
				t.Fatalf("stderr %q", stderr)
			}
			if !asJSON {
				if !strings.HasPrefix(stdout, "Token: ") {
					t.Fatalf("text output does not start with the token line:\n%s", stdout)
				}
				continue
			}
			if !json.Valid([]byte(stdout)) {
				t.Fatalf("--json output is not JSON:\n%s", stdout)
			}
			var rep tokenReport
			dec := json.NewDecoder(strings.NewReader(stdout))
			dec.UseNumber() // claims keep their numbers as written (1e999)
			if err := dec.Decode(&rep); err != nil {
				t.Fatalf("--json output is not a report: %v\n%s", err, stdout)
			}
			if rep.ExitCode != code || rep.Problems == nil || rep.Times == nil || (code == exitOK) != rep.Decoded {
				t.Fatalf("inconsistent report (exit code %d): %s", code, stdout)
			}
		}
	})
}
