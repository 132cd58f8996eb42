package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files testdata/*.golden")

// fixtureServer serves the files of testdata/lint/<name> under the FHIR
// base <URL>/fhir: smart-configuration.* at the well-known path and
// metadata.* at /metadata, with a Content-Type from the file extension
// (.json, .txt, .html, .xml); a missing file is a 404. The SMART
// configuration allows any origin.
func fixtureServer(t *testing.T, name string, useTLS bool) *httptest.Server {
	t.Helper()
	dir := filepath.Join("testdata", "lint", name)
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
	serve := func(w http.ResponseWriter, stem, jsonType string) {
		types := map[string]string{".json": jsonType, ".txt": "text/plain; charset=utf-8", ".html": "text/html; charset=utf-8", ".xml": "application/fhir+xml"}
		for ext, ct := range types {
			body, err := os.ReadFile(filepath.Join(dir, stem+ext))
			if err != nil {
				continue
			}
			w.Header().Set("Content-Type", ct)
			_, _ = w.Write(body)
			return
		}
		http.NotFound(w, nil)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fhir/.well-known/smart-configuration":
			w.Header().Set("Access-Control-Allow-Origin", "*")
			serve(w, "smart-configuration", "application/json")
		case "/fhir/metadata":
			serve(w, "metadata", "application/fhir+json")
		default:
			http.NotFound(w, r)
		}
	})
	var srv *httptest.Server
	if useTLS {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	return srv
}

// caFile writes the certificate of the TLS server srv to a PEM file.
func caFile(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runCmd runs the fhirguard command line args.
func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// checkGolden compares got with testdata/name.golden, or rewrites it
// with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run go test -update and review the diff):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestLintGolden(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tls      bool
		wantCode int
	}{
		{"valid", true, exitOK},
		{"problems", false, exitFail},
		{"smart-404", true, exitFetch},
		{"smart-not-json", true, exitFetch},
		{"metadata-mismatch", true, exitFail},
		{"metadata-not-capabilitystatement", true, exitFail},
		{"metadata-xml", true, exitFetch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := fixtureServer(t, tc.name, tc.tls)
			base := srv.URL + "/fhir"
			args := []string{"discovery", "lint", base}
			if tc.tls {
				args = append(args, "--ca-file", caFile(t, srv))
			}
			// Placeholders keep the goldens independent of the port.
			placeholder := strings.Replace(srv.URL, "127.0.0.1", "SERVER", 1)
			placeholder = placeholder[:strings.LastIndex(placeholder, ":")]
			for _, format := range []string{"txt", "json"} {
				a := args
				if format == "json" {
					a = append([]string{"discovery", "lint", "--json"}, args[2:]...)
				}
				code, stdout, stderr := runCmd(t, a...)
				if code != tc.wantCode {
					t.Errorf("%s: exit code %d, want %d; stderr %q", format, code, tc.wantCode, stderr)
				}
				if stderr != "" {
					t.Errorf("%s: stderr %q", format, stderr)
				}
				if format == "json" {
					var rep lintReport
					if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
						t.Fatalf("--json output is not a report: %v", err)
					}
					if rep.ExitCode != code {
						t.Errorf("exit_code %d, exit code %d", rep.ExitCode, code)
					}
				}
				checkGolden(t, "lint-"+tc.name+"."+format, strings.ReplaceAll(stdout, srv.URL, placeholder))
			}
		})
	}
}

func TestLintTLSWithoutCAFile(t *testing.T) {
	srv := fixtureServer(t, "valid", true)
	code, stdout, _ := runCmd(t, "discovery", "lint", srv.URL+"/fhir")
	if code != exitFetch {
		t.Errorf("exit code %d, want %d", code, exitFetch)
	}
	if !strings.Contains(stdout, "certificate") || !strings.Contains(stdout, "could not fetch smart-configuration and metadata") {
		t.Errorf("output does not say the certificate is not trusted:\n%s", stdout)
	}
}

func TestLintUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL + "/fhir"
	srv.Close() // nothing listens there any more
	code, stdout, _ := runCmd(t, "discovery", "lint", "--json", base)
	if code != exitFetch {
		t.Errorf("exit code %d, want %d", code, exitFetch)
	}
	var rep lintReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	for _, d := range rep.Documents {
		if d.Fetched || d.Status != 0 || d.Error == "" {
			t.Errorf("document %+v", d)
		}
	}
}

func TestLintTimeout(t *testing.T) {
	// The server never answers: the lint gives up whatever the speed
	// of the machine.
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	code, stdout, _ := runCmd(t, "discovery", "lint", "--timeout", "50ms", srv.URL)
	if code != exitFetch {
		t.Errorf("exit code %d, want %d", code, exitFetch)
	}
	if !strings.Contains(stdout, "no answer within the timeout") {
		t.Errorf("output:\n%s", stdout)
	}
}

func TestLintFlagsAfterURLAndConfigFile(t *testing.T) {
	srv := fixtureServer(t, "valid", true)
	config := filepath.Join(t.TempDir(), "lint.yaml")
	if err := os.WriteFile(config, []byte("json: true\nca-file: "+caFile(t, srv)+"\ntimeout: 1m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCmd(t, "discovery", "lint", srv.URL+"/fhir", "--config", config)
	if code != exitOK || stderr != "" {
		t.Fatalf("exit code %d, stderr %q", code, stderr)
	}
	if !json.Valid([]byte(stdout)) {
		t.Errorf("not JSON: %s", stdout)
	}
	// The command line wins over the file.
	code, stdout, _ = runCmd(t, "discovery", "lint", "--json=false", "--config", config, srv.URL+"/fhir")
	if code != exitOK || json.Valid([]byte(stdout)) {
		t.Errorf("exit code %d, output %q", code, stdout)
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("json: true\njsonn: true\njson: false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCmd(t, "discovery", "lint", "--config", bad, srv.URL+"/fhir")
	if code != exitUsage || stdout != "" {
		t.Errorf("exit code %d, stdout %q", code, stdout)
	}
	for _, want := range []string{`bad.yaml:2: unknown key "jsonn"`, `bad.yaml:3: duplicate key "json" (first on line 1)`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q does not contain %q", stderr, want)
		}
	}
}

func TestLintCORSAndRedirect(t *testing.T) {
	valid, err := os.ReadFile(filepath.Join("testdata", "lint", "valid", "smart-configuration.json"))
	if err != nil {
		t.Fatal(err)
	}
	meta, err := os.ReadFile(filepath.Join("testdata", "lint", "valid", "metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/old/.well-known/smart-configuration":
			http.Redirect(w, r, "/fhir/.well-known/smart-configuration", http.StatusMovedPermanently)
		case "/fhir/.well-known/smart-configuration":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(valid) // no Access-Control-Allow-Origin
		case "/old/metadata":
			w.Header().Set("Content-Type", "application/fhir+json")
			_, _ = w.Write(meta)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	code, stdout, _ := runCmd(t, "discovery", "lint", srv.URL+"/old/")
	if code != exitFail {
		t.Errorf("exit code %d, want %d", code, exitFail)
	}
	if !strings.Contains(stdout, "error    smart-configuration  Access-Control-Allow-Origin: ") {
		t.Errorf("missing CORS not reported:\n%s", stdout)
	}
}

func TestNaturalCompare(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"capabilities[2]", "capabilities[10]", -1},
		{"capabilities[10]", "capabilities[2]", 1},
		{"a1b", "a1b", 0},
		{"a01", "a1", 1},
		{"a", "a1", -1},
		{"rest[1].x", "rest[1].security", 1},
	} {
		got := naturalCompare(tc.a, tc.b)
		if (got < 0) != (tc.want < 0) || (got > 0) != (tc.want > 0) {
			t.Errorf("naturalCompare(%q, %q) = %d, want sign of %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestOneLine(t *testing.T) {
	if got := oneLine("a\nerror  forged\r\u2028"); strings.ContainsAny(got, "\n\r\u2028") {
		t.Errorf("oneLine kept a line break: %q", got)
	}
	if got := oneLine(`plain "quoted" é`); got != `plain "quoted" é` {
		t.Errorf("oneLine changed %q", got)
	}
}
