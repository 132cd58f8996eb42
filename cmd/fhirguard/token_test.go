package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/smarttest"
	"go.uber.org/goleak"
)

// The fixture of the token tests: tokens are minted at mintTime and
// inspected at inspectTime, 18 minutes later.
var (
	mintTime    = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	inspectTime = mintTime.Add(18 * time.Minute)
)

const (
	testBase   = "https://fhir.example.org/r4"
	testIssuer = "https://auth.example.org"
)

// authServer is a smarttest authorization server mounted at testIssuer
// (reached through handlerTransport), with a fixed clock and a client the
// FHIR server introspects with.
func authServer(t testing.TB) *smarttest.Server {
	t.Helper()
	srv, err := smarttest.New(smarttest.Config{FHIRBase: testBase, Issuer: testIssuer, Now: func() time.Time { return mintTime }})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.RegisterClient(smarttest.Client{ID: "fhir-server", Secret: "introspection-secret", Introspect: true}); err != nil {
		t.Fatal(err)
	}
	return srv
}

// patientToken is what a standalone patient launch of a growth chart app
// gets.
var patientToken = smarttest.TokenOptions{
	ClientID: "growth-chart",
	Scopes:   "launch/patient openid fhirUser patient/Observation.rs patient/Patient.r",
	Patient:  "123",
	FHIRUser: "Patient/123",
}

// inspect runs token inspect with the clock at inspectTime and the
// network replaced by transport.
func inspect(transport http.RoundTripper, stdin string, args ...string) (code int, stdout, stderr string) {
	cmds := []command{tokenInspectCommand(strings.NewReader(stdin), func() time.Time { return inspectTime }, transport)}
	var out, errOut bytes.Buffer
	code = dispatch(context.Background(), cmds, append([]string{"token", "inspect"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// jwtCheck are the flags of a server check against srv's JWKS.
var jwtCheck = []string{"--base-url", testBase, "--issuer", testIssuer, "--jwks-url", testIssuer + "/jwks"}

// introspectionCheck are the flags of a server check that introspects.
var introspectionCheck = []string{"--base-url", testBase, "--introspection-url", testIssuer + "/introspect",
	"--introspection-client-id", "fhir-server", "--introspection-client-secret", "introspection-secret"}

// normalize replaces the random parts of srv's tokens (key ids, jti, the
// coordinates of an embedded key) in out, so that goldens are stable.
func normalize(out, tok string, srv *smarttest.Server) string {
	repl := map[string]string{srv.SigningKeyID(): "SIGNING-KID"}
	var header, payload []byte
	if strings.HasPrefix(tok, "{") {
		var doc struct{ Protected, Payload string }
		_ = json.Unmarshal([]byte(tok), &doc)
		header, _ = base64.RawURLEncoding.DecodeString(doc.Protected)
		payload, _ = base64.RawURLEncoding.DecodeString(doc.Payload)
	} else if parts := strings.Split(tok, "."); len(parts) == 3 {
		header, _ = base64.RawURLEncoding.DecodeString(parts[0])
		payload, _ = base64.RawURLEncoding.DecodeString(parts[1])
	}
	var h struct {
		Kid string
		JWK struct{ X, Y string }
	}
	var c struct{ Jti string }
	_ = json.Unmarshal(header, &h)
	_ = json.Unmarshal(payload, &c)
	if h.Kid != "" && h.Kid != srv.SigningKeyID() && h.Kid != "attacker" {
		repl[h.Kid] = "TOKEN-KID"
	}
	for v, name := range map[string]string{h.JWK.X: "JWK-X", h.JWK.Y: "JWK-Y", c.Jti: "JTI"} {
		if v != "" {
			repl[v] = name
		}
	}
	for from, to := range repl {
		out = strings.ReplaceAll(out, from, to)
	}
	return out
}

func TestTokenInspectGolden(t *testing.T) {
	srv := authServer(t)
	transport := handlerTransport{srv}
	mint := func(o smarttest.TokenOptions) string {
		tok, err := srv.MintToken(o)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	flawed := func(f smarttest.Flaw) string {
		tok, err := srv.MintFlawedToken(f, patientToken)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	opaque := patientToken
	opaque.Opaque = true
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

	for _, tc := range []struct {
		name  string
		token string
		args  []string
		code  int
	}{
		{"valid", mint(patientToken), append(jwtCheck, "--request", "GET /Observation?code=8302-2"), exitOK},
		{"decode-only", mint(patientToken), nil, exitOK},
		{"expired", flawed(smarttest.FlawExpired), jwtCheck, exitFail},
		{"wrong-audience", flawed(smarttest.FlawWrongAudience), jwtCheck, exitFail},
		{"wrong-issuer", flawed(smarttest.FlawWrongIssuer), jwtCheck, exitFail},
		{"unknown-key", flawed(smarttest.FlawUnknownKey), jwtCheck, exitFail},
		{"alg-none", flawed(smarttest.FlawAlgNone), jwtCheck, exitFail},
		{"embedded-jwk", flawed(smarttest.FlawEmbeddedJWK), jwtCheck, exitFail},
		{"json-serialization", flawed(smarttest.FlawJSONSerialization), jwtCheck, exitFail},
		{"opaque-introspection", mint(opaque), introspectionCheck, exitOK},
		{"opaque-no-check", mint(opaque), nil, exitToken},
		{"keys-unavailable", mint(patientToken), []string{"--base-url", testBase, "--issuer", testIssuer, "--jwks-url", testIssuer + "/no-such-jwks"}, exitToken},
		{"garbage", "not a token!", nil, exitToken},
		{"broken", b64(`{"alg":"RS256","alg":"none","jku":"https://evil.example/k","crit":["exp"]}`) + "." + b64(`{"iss":"x","exp":"tomorrow","patient":123,"scope":"patient/Observation.sr user/Foo.rs"}`), nil, exitToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, asJSON := range []bool{false, true} {
				args := append([]string{}, tc.args...)
				golden := "token-" + tc.name + ".txt"
				if asJSON {
					args = append(args, "--json")
					golden = "token-" + tc.name + ".json"
				}
				code, stdout, stderr := inspect(transport, "", append(args, "--", tc.token)...)
				if code != tc.code || stderr != "" {
					t.Errorf("exit code %d, want %d; stderr %q", code, tc.code, stderr)
				}
				checkNoSecrets(t, stdout, tc.token)
				if asJSON {
					var rep tokenReport
					if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
						t.Fatalf("--json output: %v", err)
					}
					if rep.ExitCode != code {
						t.Errorf("exitCode %d in the report, exit code %d", rep.ExitCode, code)
					}
				}
				checkGolden(t, golden, normalize(stdout, tc.token, srv))
			}
		})
	}
}

// checkNoSecrets fails when out shows the token's signature, or the
// whole of an opaque token.
func checkNoSecrets(t *testing.T, out, tok string) {
	t.Helper()
	secret := tok
	if parts := strings.Split(tok, "."); len(parts) == 3 {
		secret = parts[2]
	} else if strings.HasPrefix(tok, "{") {
		var doc struct{ Signature string }
		_ = json.Unmarshal([]byte(tok), &doc)
		secret = doc.Signature
	}
	if len(secret) >= 16 && strings.Contains(out, secret) {
		t.Errorf("the output shows the token's signature (or the opaque token)")
	}
}

func TestTokenInspectStdin(t *testing.T) {
	srv := authServer(t)
	tok, err := srv.MintToken(patientToken)
	if err != nil {
		t.Fatal(err)
	}
	_, want, _ := inspect(nil, "", "--json", tok)
	for _, in := range []string{tok, tok + "\n", tok + "\r\n", "Bearer " + tok + "\n"} {
		code, stdout, stderr := inspect(nil, in, "--json", "-")
		if code != exitOK || stderr != "" {
			t.Errorf("%q: exit code %d, stderr %q", in, code, stderr)
		}
		if strings.HasPrefix(in, "Bearer") {
			if !strings.Contains(stdout, `the \"Bearer \" prefix was removed`) {
				t.Errorf("no note about the Bearer prefix:\n%s", stdout)
			}
			continue
		}
		if stdout != want {
			t.Errorf("%q: the report differs from the argument's:\n%s", in, stdout)
		}
	}
	// Only one line ending is removed.
	code, stdout, _ := inspect(nil, tok+"\n\n", "-")
	if code != exitToken || !strings.Contains(stdout, "not a b64token character") {
		t.Errorf("two line endings: exit code %d\n%s", code, stdout)
	}
}

// jwksServer serves srv's JWK Set at /jwks over TLS (or plain HTTP) and
// counts the requests; it fails the test when a request carries a token.
func jwksServer(t *testing.T, srv *smarttest.Server, useTLS bool) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" || r.URL.RawQuery != "" {
			t.Errorf("the JWKS request carries credentials: %s %s", r.Header.Get("Authorization"), r.URL.RawQuery)
		}
		if r.URL.Path != "/jwks" {
			http.NotFound(w, r)
			return
		}
		n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(srv.JWKS())
	})
	var s *httptest.Server
	if useTLS {
		s = httptest.NewUnstartedServer(h)
		s.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshakes refused on purpose
		s.StartTLS()
	} else {
		s = httptest.NewServer(h)
	}
	t.Cleanup(s.Close)
	return s, &n
}

func TestTokenInspectNetwork(t *testing.T) {
	srv := authServer(t)
	good, err := srv.MintToken(patientToken)
	if err != nil {
		t.Fatal(err)
	}
	unknownKey, err := srv.MintFlawedToken(smarttest.FlawUnknownKey, patientToken)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("https JWKS with --ca-file", func(t *testing.T) {
		s, n := jwksServer(t, srv, true)
		args := []string{"--base-url", testBase, "--issuer", testIssuer, "--jwks-url", s.URL + "/jwks", "--ca-file", caFile(t, s)}
		code, stdout, stderr := inspect(nil, "", append(args, good)...)
		if code != exitOK || !strings.Contains(stdout, "ACCEPTED (verified as a JWT)") || !strings.Contains(stdout, "patient   123") {
			t.Errorf("exit code %d, stderr %q\n%s", code, stderr, stdout)
		}
		// An unknown kid makes the middleware fetch the JWKS again: the
		// command fetches it once.
		before := n.Load()
		code, stdout, _ = inspect(nil, "", append(args, unknownKey)...)
		if code != exitFail || !strings.Contains(stdout, "is not in the key set") {
			t.Errorf("unknown key: exit code %d\n%s", code, stdout)
		}
		if got := n.Load() - before; got != 1 {
			t.Errorf("the JWKS was fetched %d times, want once", got)
		}
	})

	t.Run("https JWKS without the CA", func(t *testing.T) {
		s, _ := jwksServer(t, srv, true)
		code, stdout, _ := inspect(nil, "", "--base-url", testBase, "--issuer", testIssuer, "--jwks-url", s.URL+"/jwks", good)
		if code != exitToken || !strings.Contains(stdout, "NO VERDICT: 503") || !strings.Contains(stdout, "certificate") {
			t.Errorf("exit code %d\n%s", code, stdout)
		}
	})

	t.Run("http JWKS on loopback", func(t *testing.T) {
		s, _ := jwksServer(t, srv, false)
		code, stdout, stderr := inspect(nil, "", "--base-url", testBase, "--issuer", testIssuer, "--jwks-url", s.URL+"/jwks", "--insecure-allow-http-key-urls", good)
		if code != exitOK || !strings.Contains(stdout, "ACCEPTED") {
			t.Errorf("exit code %d, stderr %q\n%s", code, stderr, stdout)
		}
		// Without the flag, http is refused.
		code, _, stderr = inspect(nil, "", "--base-url", testBase, "--issuer", testIssuer, "--jwks-url", s.URL+"/jwks", good)
		if code != exitUsage || !strings.Contains(stderr, "--insecure-allow-http-key-urls") {
			t.Errorf("exit code %d, stderr %q", code, stderr)
		}
	})

	t.Run("JWKS file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "jwks.json")
		if err := os.WriteFile(path, srv.JWKS(), 0o600); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := inspect(nil, "", "--base-url", testBase, "--issuer", testIssuer, "--jwks-file", path, good)
		if code != exitOK || !strings.Contains(stdout, "ACCEPTED") || !strings.Contains(stdout, "(kid "+srv.SigningKeyID()+")") {
			t.Errorf("exit code %d, stderr %q\n%s", code, stderr, stdout)
		}
		code, stdout, _ = inspect(nil, "", "--base-url", testBase+"/", "--issuer", testIssuer, "--jwks-file", path, good)
		if code != exitFail || !strings.Contains(stdout, "token aud [https://fhir.example.org/r4], this server is https://fhir.example.org/r4/") {
			t.Errorf("trailing slash: exit code %d\n%s", code, stdout)
		}
	})

	t.Run("config file", func(t *testing.T) {
		s, _ := jwksServer(t, srv, true)
		path := filepath.Join(t.TempDir(), "check.yaml")
		cfg := "base-url: " + testBase + "\nissuer: " + testIssuer + "\njwks-url: " + s.URL + "/jwks\nca-file: " + caFile(t, s) + "\njson: true\n"
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := inspect(nil, "", "--config", path, good)
		if code != exitOK || !strings.Contains(stdout, `"outcome": "accepted"`) {
			t.Errorf("exit code %d, stderr %q\n%s", code, stderr, stdout)
		}
	})
}

func TestTokenInspectRequestPreview(t *testing.T) {
	srv := authServer(t)
	tok, err := srv.MintToken(patientToken)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		request string
		want    []string
	}{
		{"GET /Observation?code=8302-2", []string{"ALLOWED: the FHIR server receives GET /r4/Observation?code=8302-2&patient=Patient%2F123", "held to      Patient/123"}},
		{"GET Patient/123", []string{"ALLOWED: the FHIR server receives GET /r4/Patient/123"}},
		{"GET /Condition?patient=123", []string{"REFUSED: 403 insufficient_scope", "scope needed  patient/Condition.s"}},
		{"GET /Observation?patient=456", []string{"GET /r4/Observation?patient=Patient%2F123&patient=456"}},
		{"GET /Observation/_history", []string{"REFUSED: 403"}},
		{"GET /metadata", []string{"a public document"}},
	} {
		code, stdout, stderr := inspect(handlerTransport{srv}, "", append(append([]string{}, jwtCheck...), "--request", tc.request, tok)...)
		if code != exitOK || stderr != "" {
			t.Errorf("%s: exit code %d, stderr %q", tc.request, code, stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(stdout, w) {
				t.Errorf("%s: output lacks %q:\n%s", tc.request, w, stdout)
			}
		}
	}
}

func TestTokenInspectUsageErrors(t *testing.T) {
	const tok = "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--issuer", testIssuer, tok}, "needs --base-url"},
		{[]string{"--ca-file", "ca.pem", tok}, "needs --base-url"},
		{[]string{"--base-url", "fhir.example.org", "--jwks-file", "x", "--issuer", "i", tok}, "is not a FHIR base URL"},
		{[]string{"--base-url", testBase, tok}, "needs the authorization server's keys"},
		{[]string{"--base-url", testBase, "--jwks-url", testIssuer + "/jwks", tok}, "needs --issuer"},
		{[]string{"--base-url", testBase, "--issuer", "i", "--jwks-url", "https://a/jwks", "--jwks-file", "f", tok}, "not both"},
		{[]string{"--base-url", testBase, "--issuer", "i", "--jwks-url", "http://auth.example.org/jwks", tok}, "only fetched over https"},
		{[]string{"--base-url", testBase, "--issuer", "i", "--jwks-url", "http://auth.example.org/jwks", "--insecure-allow-http-key-urls", tok}, "only allows http on loopback"},
		{[]string{"--base-url", testBase, "--issuer", "i", "--jwks-url", "ftp://a/jwks", tok}, "is not an absolute https URL"},
		{[]string{"--base-url", testBase, "--introspection-url", "https://a/introspect", tok}, "needs --introspection-client-id"},
		{[]string{"--base-url", testBase, "--introspection-client-id", "x", "--jwks-file", "f", "--issuer", "i", tok}, "need --introspection-url"},
		{[]string{"--base-url", testBase, "--issuer", "i", "--jwks-file", "/nonexistent/jwks.json", tok}, "--jwks-file: open /nonexistent/jwks.json"},
		{[]string{"--base-url", testBase, "--issuer", "i", "--jwks-file", "/nonexistent", "--timeout", "0s", tok}, "--timeout must be positive"},
		{[]string{"--base-url", testBase, "--issuer", "i", "--jwks-file", "/nonexistent", "--request", "POST /Observation", tok}, "only GET and HEAD"},
		{[]string{"--base-url", testBase, "--issuer", "i", "--jwks-file", "/nonexistent", "--request", "GET https://evil.example/x", tok}, "is not a path below the FHIR base"},
		{[]string{"--base-url", testBase, "--issuer", "i", "--jwks-file", "/nonexistent", "--request", "/Observation", tok}, "write it as"},
		{[]string{}, "expects one argument"},
		{[]string{tok, tok}, "expects one argument"},
	} {
		code, stdout, stderr := inspect(nil, "", tc.args...)
		if code != exitUsage || stdout != "" || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit code %d, stdout %q, stderr %q; want it to contain %q", tc.args, code, stdout, stderr, tc.want)
		}
	}

	// A JWKS the middleware refuses.
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := inspect(nil, "", "--base-url", testBase, "--issuer", "i", "--jwks-file", path, tok)
	if code != exitUsage || !strings.Contains(stderr, "the middleware refuses this configuration") {
		t.Errorf("bad JWKS: exit code %d, stderr %q", code, stderr)
	}
}

func TestRelativeTimes(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	for _, tc := range []struct {
		claim string
		delta float64
		want  string
	}{
		{"exp", 42 * 60, "expires in 42m"},
		{"exp", -3 * 3600, "expired 3h ago"},
		{"exp", 59, "expires in 59s"},
		{"exp", -(26*3600 + 60), "expired 1d2h ago"},
		{"iat", -(3600 + 5*60), "issued 1h5m ago"},
		{"iat", 120, "issued in the future (in 2m)"},
		{"nbf", 300, "not valid for another 5m"},
		{"nbf", -7 * 86400, "valid since 7d ago"},
	} {
		if got := relative(tc.claim, float64(now.Unix())+tc.delta, now); got != tc.want {
			t.Errorf("%s %+v: %q, want %q", tc.claim, tc.delta, got, tc.want)
		}
	}
}

// TestTokenInspectStopsEverything: the server check closes what the
// middleware started (JWKS schedule, introspection).
func TestTokenInspectStopsEverything(t *testing.T) {
	srv := authServer(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	tok, err := srv.MintToken(patientToken)
	if err != nil {
		t.Fatal(err)
	}
	opaque := patientToken
	opaque.Opaque = true
	otok, err := srv.MintToken(opaque)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		append(append([]string{}, jwtCheck...), "--request", "GET /Observation", tok),
		append(append([]string{}, introspectionCheck...), "--", otok), // an opaque token may start with "-"
		{"--base-url", testBase, "--issuer", testIssuer, "--jwks-url", testIssuer + "/nope", tok},
	} {
		if code, _, stderr := inspect(handlerTransport{srv}, "", args...); code == exitUsage {
			t.Fatalf("%q: %s", args, stderr)
		}
	}
}

func TestTokenInspectRefusedNotPreviewed(t *testing.T) {
	srv := authServer(t)
	tok, err := srv.MintFlawedToken(smarttest.FlawExpired, patientToken)
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, _ := inspect(handlerTransport{srv}, "", append(append([]string{}, jwtCheck...), "--request", "GET /Observation", tok)...)
	if code != exitFail || !strings.Contains(stdout, "--request was not previewed: the token is not accepted") || strings.Contains(stdout, "Request preview") {
		t.Errorf("exit code %d\n%s", code, stdout)
	}
}

// TestTokenInspectEscapes: claims and header values cannot write control
// characters (terminal escapes, line breaks) to the terminal.
func TestTokenInspectEscapes(t *testing.T) {
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	tok := b64(`{"alg":"RS256","kid":"\u001b[2J","x\u001b":1}`) + "." + b64(`{"sub":"a\nb","iss":"\u001b]0;title\u0007","scope":"patient/Observation.rs?code=\u001b","x\r":"\u2028"}`) + ".c2ln"
	code, stdout, _ := inspect(nil, "", tok)
	if code != exitOK {
		t.Errorf("exit code %d", code)
	}
	if strings.ContainsAny(stdout, "\x1b\r\a\u2028") || strings.Contains(stdout, "a\nb") {
		t.Errorf("control characters reach the output:\n%q", stdout)
	}
	if !strings.Contains(stdout, `\x1b[2J`) || !strings.Contains(stdout, `a\nb`) {
		t.Errorf("escaped values missing:\n%s", stdout)
	}
}

// countingTransport counts the requests per path.
type countingTransport struct {
	base  http.RoundTripper
	mu    sync.Mutex
	paths map[string]int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.paths[r.URL.Path]++
	c.mu.Unlock()
	return c.base.RoundTrip(r)
}

// TestTokenInspectSendsOnce: with the request preview, the token still
// goes to the introspection endpoint once, and the JWKS is fetched once.
func TestTokenInspectSendsOnce(t *testing.T) {
	srv := authServer(t)
	opaque := patientToken
	opaque.Opaque = true
	otok, err := srv.MintToken(opaque)
	if err != nil {
		t.Fatal(err)
	}
	ct := &countingTransport{base: handlerTransport{srv}, paths: map[string]int{}}
	args := append(append([]string{}, introspectionCheck...), "--jwks-url", testIssuer+"/jwks", "--issuer", testIssuer, "--request", "GET /Observation", "--", otok)
	code, stdout, stderr := inspect(ct, "", args...)
	if code != exitOK || !strings.Contains(stdout, "ALLOWED") || !strings.Contains(stdout, "ACCEPTED (introspected)") {
		t.Fatalf("exit code %d, stderr %q\n%s", code, stderr, stdout)
	}
	if ct.paths["/introspect"] != 1 || ct.paths["/jwks"] != 1 {
		t.Errorf("requests: %v; want one introspection and one JWKS fetch", ct.paths)
	}
}
