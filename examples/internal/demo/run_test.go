package demo_test

import (
	"context"
	"errors"
	"flag"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/examples/internal/demo"
	"github.com/fhirguard/fhirguard/examples/internal/demo/demotest"
)

// routes is the smallest router: the stdlib example's.
func routes(app *demo.App) http.Handler {
	mux := http.NewServeMux()
	h := app.Guard.Handler(app.FHIR)
	mux.Handle(app.BasePath, h)
	mux.Handle(app.BasePath+"/", h)
	if app.Auth != nil {
		mux.Handle(demo.AuthPath+"/", app.Auth)
	}
	return mux
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := res.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return res.StatusCode, b.String()
}

// TestBannerEmpty checks that the banner's statuses hold without seed data.
func TestBannerEmpty(t *testing.T) {
	s := demotest.Start(t, routes, "-empty")
	bs, err := demotest.ReadBanner(s.Banner)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs.Commands) != 7 {
		t.Fatalf("%d commands", len(bs.Commands))
	}
	if s.Store().Len() != 0 {
		t.Fatalf("-empty store holds %d resources", s.Store().Len())
	}
	for _, c := range bs.Commands {
		call, err := demotest.ParseCurl(c.Args)
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.DefaultClient.Do(call.Request)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != c.Status {
			t.Errorf("%s: %d, banner says %d", c.Title, res.StatusCode, c.Status)
		}
	}
	if !strings.Contains(s.Banner, "INSECURE") || !s.Insecure() {
		t.Error("plain HTTP on loopback is not announced")
	}
}

// TestPolicy runs the example policy file: its rule that Observation
// searches must name a patient refuses an unbounded search and lets a
// bounded one through.
func TestPolicy(t *testing.T) {
	s := demotest.Start(t, routes, "-policy", filepath.Join("..", "..", "policies", "example.yaml"))
	tests := []struct {
		name, path string
		want       int
	}{
		{"unbounded search refused by the policy", "/Observation?category=laboratory", 403},
		{"search naming a patient", "/Observation?patient=123", 200},
		{"read, untouched by the policy", "/Observation/o456", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, body := get(t, s.BaseURL()+tt.path, s.SystemToken()); code != tt.want {
				t.Errorf("%s: %d, want %d: %.300s", tt.path, code, tt.want, body)
			}
		})
	}
	if !strings.Contains(s.Banner, "assume the policies") {
		t.Error("the banner does not warn that policies may change the statuses")
	}
}

func TestRunRefused(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: 1\nrules:\n  - name: x\n    effect: deny\n    match: 'nope('\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name     string
		args     []string
		isConfig bool
	}{
		{"http base off loopback", []string{"-addr", "0.0.0.0:0"}, true},
		{"base path under the embedded server", []string{"-base-url", "http://127.0.0.1:8080/auth/fhir"}, true},
		{"bad flag", []string{"-addr"}, true},
		{"policy that does not compile", []string{"-addr", "127.0.0.1:0", "-policy", bad}, false},
		{"missing policy file", []string{"-addr", "127.0.0.1:0", "-policy", filepath.Join(t.TempDir(), "none.yaml")}, false},
		{"address in use", []string{"-addr", busy.Addr().String()}, false},
		{"unreachable issuer", []string{"-addr", "127.0.0.1:0", "-issuer", "http://127.0.0.1:1"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			err := demo.Run(ctx, tt.args, routes, demo.Options{Ready: func(*demo.Server) {
				t.Error("server started")
				cancel()
			}})
			if err == nil || errors.Is(err, ErrConfigFor(tt.isConfig)) != tt.isConfig {
				t.Fatalf("Run(%q) = %v (want configuration error: %t)", tt.args, err, tt.isConfig)
			}
		})
	}
	if err := demo.Run(context.Background(), []string{"-h"}, routes, demo.Options{}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
	if err := demo.Run(context.Background(), nil, nil, demo.Options{}); !errors.Is(err, demo.ErrConfig) {
		t.Errorf("no router: %v", err)
	}
}

// ErrConfigFor returns demo.ErrConfig, or a sentinel nothing wraps.
func ErrConfigFor(isConfig bool) error {
	if isConfig {
		return demo.ErrConfig
	}
	return errNever
}

var errNever = errors.New("never")

// TestRequestLog checks the request log: one line per request, without the
// query or the token.
func TestRequestLog(t *testing.T) {
	s := demotest.Start(t, routes)
	if code, _ := get(t, s.BaseURL()+"/Patient?name=SecretName", s.SystemToken()); code != 200 {
		t.Fatalf("search: %d", code)
	}
	logs := s.Logs()
	if !strings.Contains(logs, "method=GET path=/fhir/Patient status=200") {
		t.Errorf("request not logged:\n%s", logs)
	}
	for _, secret := range []string{"SecretName", s.SystemToken(), s.PatientToken()} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds %.20q", secret)
		}
	}
}

// TestCORSOrigins checks -cors-origins: a preflight from a listed origin is
// answered, one from another origin refused, and neither needs a token.
func TestCORSOrigins(t *testing.T) {
	s := demotest.Start(t, routes, "-cors-origins", "https://app.example.org")
	tests := []struct {
		name, origin string
		status       int
		allow        string
	}{
		{"listed origin", "https://app.example.org", 204, "https://app.example.org"},
		{"other origin", "https://evil.example.org", 403, ""},
		{"scheme differs", "http://app.example.org", 403, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("OPTIONS", s.BaseURL()+"/Patient/123", nil)
			req.Header.Set("Origin", tt.origin)
			req.Header.Set("Access-Control-Request-Method", "GET")
			req.Header.Set("Access-Control-Request-Headers", "authorization")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tt.status || res.Header.Get("Access-Control-Allow-Origin") != tt.allow {
				t.Errorf("preflight from %s: %d, allow-origin %q", tt.origin, res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
			}
		})
	}
}

// TestREADMEBanner checks that the banner excerpt the README quotes in its
// Quickstart is what the banner prints, up to the address (the default
// 127.0.0.1:8080 there) and the tokens (their first ten characters and an
// ellipsis there).
func TestREADMEBanner(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, quick, _ := strings.Cut(string(readme), "## Quickstart")
	quick, _, _ = strings.Cut(quick, "\n## ")
	// The first plain ``` block (no language) holding a curl command.
	var excerpt string
	var block []string
	fence := "" // the opening fence while inside a block
	for _, l := range strings.Split(quick, "\n") {
		switch {
		case fence == "" && strings.HasPrefix(l, "```"):
			fence, block = l, nil
		case fence != "" && strings.HasPrefix(l, "```"):
			if text := strings.Join(block, "\n"); fence == "```" && excerpt == "" && strings.Contains(text, "curl ") {
				excerpt = text
			}
			fence = ""
		case fence != "":
			block = append(block, l)
		}
	}
	if excerpt == "" {
		t.Fatal("no banner excerpt (a ``` block with a curl command) in the README's Quickstart")
	}
	s := demotest.Start(t, routes)
	banner := s.Banner
	for _, tok := range []string{s.PatientToken(), s.SystemToken()} {
		banner = strings.ReplaceAll(banner, tok, tok[:10]+"…")
	}
	u, err := url.Parse(s.BaseURL())
	if err != nil {
		t.Fatal(err)
	}
	banner = strings.ReplaceAll(banner, u.Host, "127.0.0.1:8080")
	lines := strings.Split(banner, "\n")
	for _, l := range strings.Split(excerpt, "\n") {
		if l != "" && !slices.Contains(lines, l) {
			t.Errorf("the README quotes a line the banner does not print:\n%s\nbanner:\n%s", l, banner)
		}
	}
}
