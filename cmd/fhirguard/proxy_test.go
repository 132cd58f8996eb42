package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/smarttest"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestProxyFlagErrors(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "proxy.yaml")
	if err := os.WriteFile(cfgFile, []byte("upstream: http://10.0.0.5:8080/fhir\nbase-url: https://ehr.example.org/fhir\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := []string{"--upstream", "http://10.0.0.5:8080/fhir", "--base-url", "https://ehr.example.org/fhir",
		"--issuer", "https://as.example.org", "--trusted-proxies", "10.0.0.0/8"}
	with := func(extra ...string) []string { return append(append([]string{"proxy"}, ok...), extra...) }
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"proxy"}, "--upstream is required"},
		{[]string{"proxy", "--upstream", "10.0.0.5/fhir"}, "--upstream:"},
		{[]string{"proxy", "--upstream", "http://up/fhir"}, "--base-url is required"},
		{[]string{"proxy", "--upstream", "http://up/fhir", "--base-url", "https://ehr.example.org/"}, "--base-url \"https://ehr.example.org/\" needs a path"},
		{[]string{"proxy", "--upstream", "http://up/fhir", "--base-url", "https://ehr.example.org/fhir?x"}, "--base-url:"},
		{[]string{"proxy", "--upstream", "http://up/fhir", "--base-url", "https://ehr.example.org/metrics"}, "--base-url"},
		{[]string{"proxy", "--upstream", "http://up/fhir", "--base-url", "https://ehr.example.org/fhir"}, "--issuer is required"},
		{[]string{"proxy", "--config", cfgFile}, "--issuer is required"},
		{with("--issuer", "http://as.example.org"), "--issuer \"http://as.example.org\": an https URL is required"},
		{with("--jwks-url", "http://127.0.0.1:9/jwks"), "--jwks-url"},
		{with("--introspection-url", "https://as.example.org/introspect"), "--introspection-client-id"},
		{with("--introspection-url", "https://as.example.org/introspect", "--introspection-client-id", "rs"), "--introspection-client-secret"},
		{with("--introspection-client-id", "rs"), "--introspection-client-id needs --introspection-url"},
		{with("--fhir-version", "R3"), "--fhir-version"},
		{with("--cors-origins", "https://app.example.org/path"), "--cors-origins"},
		{with("--trusted-proxies", "not-an-ip"), "--trusted-proxies"},
		{with("--tls-cert", "cert.pem"), "--tls-cert and --tls-key go together"},
		{with("--policy", filepath.Join(dir, "nope.yaml")), "--policy"},
		{with("--log-format", "xml"), "--log-format"},
		{with("--log-level", "loud"), "--log-level"},
		{with("--read-timeout", "0s"), "--read-timeout must be positive"},
		{with("--upstream-timeout", "-1s"), "--upstream-timeout must be positive"},
		{with("--max-header-bytes", "10"), "--max-header-bytes"},
		{with("--max-body-bytes", "10"), "--max-body-bytes"},
		{with("--listen", "nohost"), "--listen"},
		{with("--insecure-allow-http", "--listen", "10.1.2.3:8080"), "--insecure-allow-http is for local development: it needs a loopback --listen"},
		{with("--base-url", "http://ehr.example.org/fhir"), "--base-url \"http://ehr.example.org/fhir\": bearer tokens over plain HTTP are refused"},
		{[]string{"proxy", "--upstream", "http://up/fhir", "--base-url", "https://ehr.example.org/fhir", "--issuer", "https://as.example.org"}, "--tls-cert and --tls-key are required"},
		{[]string{"proxy", "--upstream", "http://up/fhir", "--base-url", "https://ehr.example.org/fhir", "--issuer", "https://as.example.org", "--listen", "0.0.0.0:8080", "--insecure-allow-http"}, "needs a loopback --listen"},
		{[]string{"proxy", "--upstream", "http://up/fhir", "--base-url", "https://ehr.example.org/fhir", "--issuer", "https://as.example.org", "--tls-cert", "c", "--tls-key", "k", "--base-url", "http://127.0.0.1:8080/fhir", "--insecure-allow-http"}, "is http but --tls-cert serves https"},
		{with("extra"), "expects no arguments"},
		{with("--nope"), "flag provided but not defined: -nope"},
	} {
		code, stdout, stderr := runCmd(t, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("%q: exit %d, stderr %q, want it to name %q", tc.args, code, stderr, tc.want)
		}
	}
}

// fakeUpstream is a FHIR server without authorization that writes its own
// address into what it answers. Its /metadata answers 503 until up is
// set; hold, when set, makes reads wait until it is closed (entered gets
// a value first).
type fakeUpstream struct {
	srv     *httptest.Server
	base    string
	up      atomic.Bool
	hold    chan struct{}
	entered chan struct{}
	mu      sync.Mutex
	auth    []string // Authorization headers received
}

func newFakeUpstream(t testing.TB) *fakeUpstream {
	f := &fakeUpstream{entered: make(chan struct{}, 1)}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	f.base = f.srv.URL + "/baseR4"
	return f
}

func (f *fakeUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	hold := f.hold
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/fhir+json")
	path := strings.TrimPrefix(r.URL.Path, "/baseR4")
	switch {
	case path == "/metadata":
		if !f.up.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, `{"resourceType":"CapabilityStatement","status":"active","kind":"instance","fhirVersion":"4.0.1","format":["json"],"implementation":{"description":"fake","url":%q},"rest":[{"mode":"server"}]}`, f.base)
	case strings.HasPrefix(path, "/Patient/"):
		if hold != nil {
			f.entered <- struct{}{}
			<-hold
		}
		id := strings.TrimPrefix(path, "/Patient/")
		w.Header().Set("Content-Location", f.base+"/Patient/"+id+"/_history/1")
		fmt.Fprintf(w, `{"resourceType":"Patient","id":%q,"link":[{"other":{"reference":"%s/Patient/%s"},"type":"seealso"}]}`, id, f.base, id)
	case path == "/Observation":
		fmt.Fprintf(w, `{"resourceType":"Bundle","type":"searchset","link":[{"relation":"self","url":"%s/Observation?%s"}],"entry":[`+
			`{"fullUrl":"%s/Observation/o1","resource":{"resourceType":"Observation","id":"o1","status":"final","subject":{"reference":"%s/Patient/p1"}}},`+
			`{"fullUrl":"%s/Observation/o2","resource":{"resourceType":"Observation","id":"o2","status":"final","subject":{"reference":"Patient/p2"}}}]}`,
			f.base, r.URL.RawQuery, f.base, f.base, f.base)
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found"}]}`)
	}
}

// proxyRun is fhirguard proxy running in-process.
type proxyRun struct {
	srv    *proxyServer
	base   string // the public FHIR base
	url    string // scheme://host:port
	stdout *syncBuffer
	stderr *syncBuffer
	cancel context.CancelFunc
	done   chan int
}

// startProxy runs fhirguard proxy with args (and --listen on a loopback
// port of its own) until the test ends.
func startProxy(t testing.TB, hooks *proxyHooks, args ...string) *proxyRun {
	t.Helper()
	ready := make(chan *proxyServer, 1)
	hooks.ready = func(s *proxyServer) { ready <- s }
	hooks.noSignals = true
	ctx, cancel := context.WithCancel(context.Background())
	pr := &proxyRun{stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() {
		pr.done <- dispatch(ctx, []command{proxyCommand(hooks)}, append([]string{"proxy"}, args...), pr.stdout, pr.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		<-pr.done
	})
	select {
	case pr.srv = <-ready:
	case code := <-pr.done:
		pr.done <- code
		t.Fatalf("fhirguard proxy ended with %d: %s", code, pr.stderr)
	}
	pr.url = pr.srv.scheme + "://" + pr.srv.addr.String()
	pr.base = pr.srv.cfg.base.String()
	return pr
}

// accessLines returns the access lines logged, once there are at least
// want of them (the server logs a request after answering it, and buffers
// its log): it flushes the log until then, for at most a minute.
func (pr *proxyRun) accessLines(t *testing.T, want int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(time.Minute) // bounds a hang only
	for {
		pr.srv.logw.Flush()
		lines := pr.parseAccessLines(t)
		if len(lines) >= want || time.Now().After(deadline) {
			return lines
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (pr *proxyRun) parseAccessLines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(pr.stderr.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("a log line is not JSON: %s", sc.Text())
		}
		if m["msg"] == "access" {
			out = append(out, m)
		}
	}
	return out
}

func get(t *testing.T, target, token string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// metric returns the value of one sample of the metrics page, -1 when it
// is absent.
func metric(t *testing.T, page, sample string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`)
	m := re.FindStringSubmatch(page)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// newTestAS starts smarttest as the authorization server of the FHIR base
// base until the test ends; with introspect, client "gateway" (secret
// "s3cret") may introspect its tokens.
func newTestAS(t testing.TB, base string, introspect bool) *smarttest.Server {
	t.Helper()
	as, err := smarttest.New(smarttest.Config{FHIRBase: base})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(as.Close)
	if introspect {
		if err := as.RegisterClient(smarttest.Client{ID: "gateway", Secret: "s3cret", Introspect: true}); err != nil {
			t.Fatal(err)
		}
	}
	return as
}

// loopbackListener returns a listener on a free loopback port.
func loopbackListener(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// TestProxyRun runs fhirguard proxy in front of a fake FHIR server with
// smarttest as the authorization server: health and readiness, allowed
// and refused requests (JWT and introspected tokens), the rewriting, the
// access lines, the metrics, a policy reload.
func TestProxyRun(t *testing.T) {
	up := newFakeUpstream(t)
	ln := loopbackListener(t)
	base := "http://" + ln.Addr().String() + "/fhir"
	as := newTestAS(t, base, true)
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	denyObs := "version: 1\nrules:\n  - name: no-observations\n    effect: deny\n    match: request.resourceType == 'Observation'\n    when: 'true'\n    message: Observations are closed.\n"
	if err := os.WriteFile(policy, []byte(denyObs), 0o600); err != nil {
		t.Fatal(err)
	}
	pr := startProxy(t, &proxyHooks{listener: ln, getenv: func(k string) string {
		if k == introspectionSecretEnv {
			return "s3cret"
		}
		return ""
	}},
		"--upstream", up.base, "--base-url", base, "--issuer", as.SMARTConfiguration().Issuer,
		"--introspection-url", as.SMARTConfiguration().IntrospectionEndpoint, "--introspection-client-id", "gateway",
		"--insecure-allow-http", "--policy", policy, "--cors-origins", "https://app.example.org")

	banner := pr.stdout.String()
	for _, want := range []string{"public FHIR base   " + base, "upstream           " + up.base, "issuer             " + as.SMARTConfiguration().Issuer,
		"(the issuer's jwks_uri)", "derived from the issuer's metadata", "policy.yaml (1 rules", "stateless"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}
	if n := strings.Count(pr.stderr.String(), "INSECURE"); n != 1 {
		t.Errorf("%d INSECURE warnings:\n%s", n, pr.stderr)
	}

	if code, _, _ := get(t, pr.url+"/healthz", ""); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	code, _, body := get(t, pr.url+"/readyz", "")
	if code != 503 || !strings.Contains(body, "upstream") || strings.Contains(body, up.srv.URL) || strings.Contains(body, "keys") {
		t.Errorf("/readyz with the upstream down: %d %s", code, body)
	}
	up.up.Store(true)
	if code, _, body := get(t, pr.url+"/readyz", ""); code != 200 {
		t.Errorf("/readyz with the upstream up: %d %s", code, body)
	}

	patient, err := as.MintToken(smarttest.TokenOptions{ClientID: "app-1", Scopes: "patient/Patient.rs patient/Observation.rs", Patient: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	opaque, err := as.MintToken(smarttest.TokenOptions{ClientID: "app-2", Scopes: "patient/Patient.rs", Patient: "p1", Opaque: true})
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(up.srv.URL, "http://")
	noUpstream := func(what string, h http.Header, body string) {
		t.Helper()
		for k, vs := range h {
			if strings.Contains(strings.Join(vs, " "), host) {
				t.Errorf("%s: header %s holds the upstream: %v", what, k, vs)
			}
		}
		if strings.Contains(body, host) {
			t.Errorf("%s: body holds the upstream: %s", what, body)
		}
	}
	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{"/Patient/p1?_elements=name&_pretty=true", patient, 200},
		{"/Patient/p1", opaque, 200},
		{"/Patient/p1", opaque, 200}, // the introspection cache
		{"/Patient/p2", patient, 404},
		{"/Patient/p1", "", 401},
		{"/Observation?code=secret-value", patient, 403}, // the policy
		{"/metadata", "", 200},
		{"/.well-known/smart-configuration", "", 200},
	} {
		code, h, body := get(t, base+tc.path, tc.token)
		if code != tc.want {
			t.Errorf("GET %s: %d, want %d: %s", tc.path, code, tc.want, body)
		}
		noUpstream(tc.path, h, body)
		if tc.path == "/Patient/p1" && code == 200 && (!strings.Contains(body, base+"/Patient/p1") || h.Get("Content-Location") != base+"/Patient/p1/_history/1") {
			t.Errorf("not rewritten: %s %s", h.Get("Content-Location"), body)
		}
	}

	// The policy file changes, and is reloaded (SIGHUP calls the same).
	if err := os.WriteFile(policy, []byte("version: 1\nrules: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := pr.srv.reload(); err != nil {
		t.Fatal(err)
	}
	code, h, body := get(t, base+"/Observation?code=secret-value&_count=5", patient)
	if code != 200 || !strings.Contains(body, `"id":"o1"`) || strings.Contains(body, `"id":"o2"`) {
		t.Errorf("search after the reload: %d %s", code, body)
	}
	noUpstream("search", h, body)
	if err := os.WriteFile(policy, []byte("rules: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := pr.srv.reload(); err == nil {
		t.Error("a broken policy file reloaded")
	}
	if code, _, _ := get(t, base+"/Observation", patient); code != 200 {
		t.Errorf("the previous rules should stay in force: %d", code)
	}

	// Access lines: one per request, what was decided and why; no query
	// values; health, readiness and metrics not logged.
	lines := pr.accessLines(t, 10)
	if len(lines) != 10 {
		t.Errorf("%d access lines, want 10", len(lines))
	}
	if strings.Contains(pr.stderr.String(), "secret-value") {
		t.Error("a query value was logged")
	}
	find := func(path string, status float64) map[string]any {
		t.Helper()
		for _, l := range lines {
			if l["path"] == path && l["status"] == status {
				return l
			}
		}
		t.Fatalf("no access line for %s with %v", path, status)
		return nil
	}
	l := find("/fhir/Patient/p2", 404)
	if l["decision"] != "refused" || l["client_id"] != "app-1" || l["patient"] != "p1" || !strings.Contains(fmt.Sprint(l["interaction"]), "read") ||
		l["reason"] == nil || l["method"] != "GET" || l["duration_ms"] == nil || l["bytes"] == nil {
		t.Errorf("refused read: %v", l)
	}
	l = find("/fhir/Patient/p1", 200)
	if l["decision"] != "allowed" || l["upstream_ms"] == nil || l["upstream_calls"] != float64(1) {
		t.Errorf("allowed read: %v", l)
	}
	if l := find("/fhir/Observation", 403); l["rule"] != "no-observations" || fmt.Sprint(l["query_params"]) != "[code]" {
		t.Errorf("policy refusal: %v", l)
	}
	if l := find("/fhir/Observation", 200); fmt.Sprint(l["query_params"]) != "[_count code]" || l["withheld"] == nil {
		t.Errorf("search: %v", l)
	}
	if l := find("/fhir/Patient/p1", 401); l["decision"] != "unauthenticated" {
		t.Errorf("no token: %v", l)
	}

	_, _, page := get(t, pr.url+"/metrics", "")
	for sample, want := range map[string]float64{
		`fhirguard_requests_total{decision="allowed",status="200"}`:         5,
		`fhirguard_requests_total{decision="refused",status="404"}`:         1,
		`fhirguard_requests_total{decision="refused",status="403"}`:         1,
		`fhirguard_requests_total{decision="unauthenticated",status="401"}`: 1,
		`fhirguard_requests_total{decision="none",status="200"}`:            2,
		`fhirguard_policy_reloads_total{result="ok"}`:                       1,
		`fhirguard_policy_reloads_total{result="failed"}`:                   1,
	} {
		if got := metric(t, page, sample); got != want {
			t.Errorf("%s = %v, want %v", sample, got, want)
		}
	}
	if got := metric(t, page, "fhirguard_upstream_latency_seconds_count"); got < 5 {
		t.Errorf("upstream latency count %v", got)
	}
	// Two tokens, each verified (or introspected) once, then cached.
	if miss, hit := metric(t, page, `fhirguard_token_cache_total{result="miss"}`), metric(t, page, `fhirguard_token_cache_total{result="hit"}`); miss != 2 || hit < 1 {
		t.Errorf("token cache: %v misses, %v hits", miss, hit)
	}
	if up.auth[len(up.auth)-1] != "" || slicesContainsToken(up.auth, patient) {
		t.Error("the token reached the upstream")
	}
}

func slicesContainsToken(auth []string, tok string) bool {
	for _, a := range auth {
		if strings.Contains(a, tok) {
			return true
		}
	}
	return false
}

// TestProxyGracefulShutdown: a request in flight when the shutdown starts
// completes; the command then exits 0.
func TestProxyGracefulShutdown(t *testing.T) {
	up := newFakeUpstream(t)
	up.up.Store(true)
	up.hold = make(chan struct{})
	ln := loopbackListener(t)
	addr := ln.Addr().String()
	base := "http://" + addr + "/fhir"
	as := newTestAS(t, base, false)
	pr := startProxy(t, &proxyHooks{listener: ln}, "--upstream", up.base, "--base-url", base,
		"--issuer", as.SMARTConfiguration().Issuer, "--insecure-allow-http", "--log-format", "text", "--metrics=false")
	tok, err := as.MintToken(smarttest.TokenOptions{Scopes: "system/*.rs"})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		code int
		body string
	}
	inflight := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, base+"/Patient/p9", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			inflight <- result{0, err.Error()}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		inflight <- result{resp.StatusCode, string(b)}
	}()
	<-up.entered // the request is at the upstream
	pr.cancel()  // SIGTERM
	// The listener closes first: wait for it, so that the request is
	// really in flight during the shutdown.
	deadline := time.Now().Add(time.Minute) // bounds a hang only
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			break
		}
		_ = c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener is still open")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(up.hold)
	r := <-inflight
	if r.code != 200 || !strings.Contains(r.body, base+"/Patient/p9") {
		t.Fatalf("the request in flight: %d %s", r.code, r.body)
	}
	if code := <-pr.done; code != exitOK {
		t.Fatalf("exit %d: %s", code, pr.stderr)
	}
	pr.done <- exitOK // for the cleanup
	// The log is buffered: the request's access line, logged during the
	// shutdown, was written before the end.
	log := pr.stderr.String()
	access := strings.Index(log, "msg=access method=GET path=/fhir/Patient/p9 status=200")
	if access < 0 || !strings.HasSuffix(log, "msg=stopped\n") {
		t.Errorf("log:\n%s", log)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key into dir and
// returns their paths and a client trusting the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, client *http.Client) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "fhirguard test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return certFile, keyFile, &http.Client{Transport: tr}
}

// TestProxyTLS: with --tls-cert and --tls-key the proxy serves https (and
// HTTP/2) at an https base.
func TestProxyTLS(t *testing.T) {
	up := newFakeUpstream(t)
	up.up.Store(true)
	certFile, keyFile, client := selfSigned(t, t.TempDir())
	ln := loopbackListener(t)
	base := "https://" + ln.Addr().String() + "/fhir"
	as := newTestAS(t, base, false)
	pr := startProxy(t, &proxyHooks{listener: ln}, "--upstream", up.base, "--base-url", base, "--tls-cert", certFile, "--tls-key", keyFile,
		"--issuer", as.SMARTConfiguration().Issuer, "--insecure-allow-http") // the test issuer is http on loopback
	tok, err := as.MintToken(smarttest.TokenOptions{Scopes: "patient/Patient.rs", Patient: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/Patient/p1", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 || !strings.Contains(string(b), base+"/Patient/p1") {
		t.Fatalf("%s %d: %s", resp.Proto, resp.StatusCode, b)
	}
	if !strings.Contains(pr.stdout.String(), "listening on       https://") {
		t.Errorf("banner:\n%s", pr.stdout)
	}
}

// TestProxyKeysUnavailable: while the JWK Set cannot be fetched, /readyz
// says so and tokens get 503 (never 401, never allowed), counted as
// unavailable.
func TestProxyKeysUnavailable(t *testing.T) {
	up := newFakeUpstream(t)
	up.up.Store(true)
	dead := loopbackListener(t)
	deadURL := "http://" + dead.Addr().String() + "/jwks"
	_ = dead.Close()
	ln := loopbackListener(t)
	base := "http://" + ln.Addr().String() + "/fhir"
	as := newTestAS(t, base, false)
	pr := startProxy(t, &proxyHooks{listener: ln}, "--upstream", up.base, "--base-url", base,
		"--issuer", as.SMARTConfiguration().Issuer, "--jwks-url", deadURL, "--insecure-allow-http")
	code, _, body := get(t, pr.url+"/readyz", "")
	if code != 503 || !strings.Contains(body, "signing keys") || strings.Contains(body, "upstream") || strings.Contains(body, deadURL) {
		t.Errorf("/readyz: %d %s", code, body)
	}
	tok, err := as.MintToken(smarttest.TokenOptions{Scopes: "patient/Patient.rs", Patient: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	if code, h, body := get(t, base+"/Patient/p1", tok); code != 503 || h.Get("Retry-After") == "" {
		t.Errorf("with the keys unavailable: %d %s", code, body)
	}
	_, _, page := get(t, pr.url+"/metrics", "")
	if got := metric(t, page, `fhirguard_key_source_failures_total{source="jwks"}`); got != 1 {
		t.Errorf("jwks failures %v", got)
	}
	if got := metric(t, page, `fhirguard_requests_total{decision="unavailable",status="503"}`); got != 1 {
		t.Errorf("unavailable requests %v", got)
	}
}

// TestProxyReplicas: two processes behind a round-robin load balancer
// serve the same tokens alike (nothing is shared between them).
func TestProxyReplicas(t *testing.T) {
	up := newFakeUpstream(t)
	up.up.Store(true)
	lbLn := loopbackListener(t)
	base := "http://" + lbLn.Addr().String() + "/fhir"
	as := newTestAS(t, base, true)
	var replicas []*proxyRun
	var targets []*url.URL
	for range 2 {
		pr := startProxy(t, &proxyHooks{listener: loopbackListener(t)}, "--upstream", up.base, "--base-url", base,
			"--issuer", as.SMARTConfiguration().Issuer, "--insecure-allow-http", "--trusted-proxies", "127.0.0.1",
			"--introspection-url", as.SMARTConfiguration().IntrospectionEndpoint, "--introspection-client-id", "gateway",
			"--introspection-client-secret", "s3cret")
		replicas = append(replicas, pr)
		u, _ := url.Parse(pr.url)
		targets = append(targets, u)
	}
	var next atomic.Uint64
	lb := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(targets[next.Add(1)%2])
		r.Out.Host = r.In.Host
		r.SetXForwarded()
	}}
	lbSrv := &http.Server{Handler: lb, ReadHeaderTimeout: time.Minute}
	go func() { _ = lbSrv.Serve(lbLn) }()
	defer lbSrv.Close()

	jwt, err := as.MintToken(smarttest.TokenOptions{Scopes: "patient/Patient.rs", Patient: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	opaque, err := as.MintToken(smarttest.TokenOptions{Scopes: "patient/Patient.rs", Patient: "p1", Opaque: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		tok := jwt
		if i%4 >= 2 {
			tok = opaque
		}
		for _, tc := range []struct {
			id   string
			want int
		}{{"p1", 200}, {"p2", 404}} {
			code, _, body := get(t, base+"/Patient/"+tc.id, tok)
			if code != tc.want || (code == 200 && !strings.Contains(body, base+"/Patient/p1")) {
				t.Fatalf("request %d for %s: %d %s", i, tc.id, code, body)
			}
		}
	}
	for i, pr := range replicas {
		if n := len(pr.accessLines(t, 8)); n != 8 {
			t.Errorf("replica %d served %d requests, want 8", i, n)
		}
	}
}

// TestProxyUpstreamAuthorization: an upstream that needs a credential gets
// the one of --upstream-authorization-file (read again once it changes) or
// of $FHIRGUARD_UPSTREAM_AUTHORIZATION on every request, /metadata
// included, never the client's token; a malformed credential is refused
// at start.
func TestProxyUpstreamAuthorization(t *testing.T) {
	up := newFakeUpstream(t)
	up.up.Store(true)
	credFile := filepath.Join(t.TempDir(), "upstream-auth")
	if err := os.WriteFile(credFile, []byte("Bearer upstream-one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		env  string
		want string
	}{
		{"file", []string{"--upstream-authorization-file", credFile}, "", "Bearer upstream-one"},
		{"environment", nil, "Basic dXBzdHJlYW06c2VjcmV0", "Basic dXBzdHJlYW06c2VjcmV0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln := loopbackListener(t)
			base := "http://" + ln.Addr().String() + "/fhir"
			as := newTestAS(t, base, false)
			args := append([]string{"--upstream", up.base, "--base-url", base, "--issuer", as.SMARTConfiguration().Issuer, "--insecure-allow-http"}, tc.args...)
			pr := startProxy(t, &proxyHooks{listener: ln, getenv: func(k string) string {
				if k == upstreamAuthEnv {
					return tc.env
				}
				return ""
			}}, args...)
			tok, err := as.MintToken(smarttest.TokenOptions{Scopes: "system/Patient.rs"})
			if err != nil {
				t.Fatal(err)
			}
			up.mu.Lock()
			up.auth = nil
			up.mu.Unlock()
			if code, _, body := get(t, pr.base+"/Patient/p1", tok); code != http.StatusOK {
				t.Fatalf("read: %d %s", code, body)
			}
			if code, _, _ := get(t, pr.url+readyzPath, ""); code != http.StatusOK {
				t.Fatalf("readyz: %d", code)
			}
			up.mu.Lock()
			got := slices.Clone(up.auth)
			up.mu.Unlock()
			if len(got) < 2 {
				t.Fatalf("the upstream saw %d requests", len(got))
			}
			for _, a := range got {
				if a != tc.want {
					t.Fatalf("the upstream got Authorization %q, want %q", a, tc.want)
				}
			}
		})
	}

	// The file is read again once it changed (the recheck interval passed).
	var logs syncBuffer
	cred, err := newUpstreamAuth(credFile, "", slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cred.now = func() time.Time { return now }
	if got := cred.header(); got != "Bearer upstream-one" {
		t.Fatalf("header %q", got)
	}
	if err := os.WriteFile(credFile, []byte("Bearer upstream-two-renewed"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := cred.header(); got != "Bearer upstream-one" {
		t.Fatalf("read again before the interval: %q", got)
	}
	now = now.Add(upstreamAuthRecheck)
	if got := cred.header(); got != "Bearer upstream-two-renewed" {
		t.Fatalf("not read again after the interval: %q", got)
	}
	// A file that turns bad keeps the last good credential, and says so.
	if err := os.WriteFile(credFile, []byte("   "), 0o600); err != nil {
		t.Fatal(err)
	}
	now = now.Add(upstreamAuthRecheck)
	if got := cred.header(); got != "Bearer upstream-two-renewed" || !strings.Contains(logs.String(), "could not be read again") {
		t.Fatalf("bad file: header %q, log %q", got, logs.String())
	}

	// Refused at start: missing, empty, multi-line, schemeless.
	for _, tc := range []struct{ content, want string }{
		{"", "empty"}, {"Bearer a\nX-Other: b", "not a valid header value"}, {"token-without-scheme", "no scheme"},
	} {
		f := filepath.Join(t.TempDir(), "cred")
		if err := os.WriteFile(f, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := newUpstreamAuth(f, "", slog.Default()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.content, err, tc.want)
		}
	}
	if _, err := newUpstreamAuth("", "Bearer\x00x", slog.Default()); err == nil || !strings.Contains(err.Error(), upstreamAuthEnv) {
		t.Errorf("a bad $%s: %v", upstreamAuthEnv, err)
	}
	code, _, stderr := runCmd(t, "proxy", "--upstream", up.base, "--base-url", "https://ehr.example.org/fhir", "--issuer", "https://as.example.org",
		"--tls-cert", credFile, "--tls-key", credFile, "--upstream-authorization-file", filepath.Join(t.TempDir(), "missing"))
	if code != exitUsage || !strings.Contains(stderr, "--upstream-authorization-file") {
		t.Errorf("a missing file: exit %d, %s", code, stderr)
	}
}
