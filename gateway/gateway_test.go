package gateway

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"go.uber.org/goleak"
)

const public = "https://gw.example.org/api/fhir"

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newTestProxy(t *testing.T, f *fakeFHIR, edit func(*Config)) *Proxy {
	t.Helper()
	cfg := Config{Upstream: f.base, BaseURL: public, Logger: quiet()}
	if edit != nil {
		edit(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func do(t *testing.T, h http.Handler, method, target, body string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	var rb io.Reader
	if body != "" {
		rb = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rb)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

// noUpstream fails the test when the upstream's address, or its host and
// port, appear anywhere in the response.
func noUpstream(t *testing.T, f *fakeFHIR, rec *httptest.ResponseRecorder) {
	t.Helper()
	host := strings.TrimPrefix(f.srv.URL, "http://")
	for k, vs := range rec.Header() {
		for _, v := range vs {
			if strings.Contains(v, host) {
				t.Errorf("header %s: %s", k, v)
			}
		}
	}
	if b := rec.Body.String(); strings.Contains(b, host) || strings.Contains(b, strings.ReplaceAll(host, ".", `\u002e`)) {
		t.Errorf("body holds the upstream: %s", b)
	}
}

func TestProxyPaths(t *testing.T) {
	f := newFakeFHIR(t)
	p := newTestProxy(t, f, nil)
	for _, tc := range []struct{ target, upstream string }{
		{public + "/Patient/p1?_elements=name&x=%2F", "/up/r4/Patient/p1?_elements=name&x=%2F"},
		{public, "/up/r4"},
		{public + "/", "/up/r4/"},
		{public + "/Patient/a%20b", "/up/r4/Patient/a%20b"},
	} {
		do(t, p, http.MethodGet, tc.target, "")
		r, _ := f.last(t)
		if got := r.URL.RequestURI(); got != tc.upstream {
			t.Errorf("%s reached the upstream as %s, want %s", tc.target, got, tc.upstream)
		}
	}
	for _, target := range []string{"https://gw.example.org/api/fhirx/Patient/p1", "https://gw.example.org/api", "https://gw.example.org/other/Patient/p1"} {
		if rec := do(t, p, http.MethodGet, target, ""); rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "OperationOutcome") {
			t.Errorf("%s: %d %s", target, rec.Code, rec.Body)
		}
	}
}

// TestProxyRequestHeaders: the token stays at the gateway unless
// ForwardAuthorization; X-Forwarded-* name the public base and the client;
// hop-by-hop headers are removed; bodies are asked for unencoded.
func TestProxyRequestHeaders(t *testing.T) {
	f := newFakeFHIR(t)
	for _, forward := range []bool{false, true} {
		p := newTestProxy(t, f, func(c *Config) { c.ForwardAuthorization = forward })
		do(t, p, http.MethodGet, public+"/Patient/p1", "",
			"Authorization", "Bearer secret-token", "Connection", "X-Hop", "X-Hop", "1", "Keep-Alive", "timeout=5",
			"Accept-Encoding", "gzip, br", "X-Forwarded-Host", "evil.example", "X-Forwarded-For", "10.9.9.9", "X-Kept", "yes")
		r, _ := f.last(t)
		if got := r.Header.Get("Authorization"); (got != "") != forward {
			t.Errorf("ForwardAuthorization %v: the upstream got Authorization %q", forward, got)
		}
		for k, want := range map[string]string{
			"X-Forwarded-Host": "gw.example.org", "X-Forwarded-Proto": "https", "Accept-Encoding": "identity",
			"X-Hop": "", "Keep-Alive": "", "X-Kept": "yes",
		} {
			if got := r.Header.Get(k); got != want {
				t.Errorf("upstream header %s: %q, want %q", k, got, want)
			}
		}
		// The client's own X-Forwarded-For is not believed: the client's
		// address replaces it.
		if xff := r.Header.Get("X-Forwarded-For"); xff != "192.0.2.1" {
			t.Errorf("X-Forwarded-For %q", xff)
		}
		if r.Host != strings.TrimPrefix(f.srv.URL, "http://") {
			t.Errorf("Host %q", r.Host)
		}
	}
}

// TestProxyRewritesResponses: the upstream's address leaves no trace in
// what the client gets, and the body changes nowhere else.
func TestProxyRewritesResponses(t *testing.T) {
	f := newFakeFHIR(t)
	p := newTestProxy(t, f, nil)

	rec := do(t, p, http.MethodGet, public+"/Observation?patient=p1", "")
	noUpstream(t, f, rec)
	body := rec.Body.String()
	for _, want := range []string{
		`"fullUrl":"` + public + `/Observation/o1"`,
		`"url":"` + public + `/Observation?patient=p1\u0026_offset=100"`,
		`"reference":"` + public + `/Patient/p2"`,
		`{"system":"` + public + `","value":"` + public + `/Observation/o1"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %s:\n%s", want, body)
		}
	}
	if cl := rec.Header().Get("Content-Length"); cl != strconv.Itoa(rec.Body.Len()) {
		t.Errorf("Content-Length %s for %d bytes", cl, rec.Body.Len())
	}
	if l := rec.Header().Get("Link"); l != "<"+public+"/metadata>; rel=\"describedby\"" {
		t.Errorf("Link %q", l)
	}

	rec = do(t, p, http.MethodGet, public+"/Patient/p1", "")
	noUpstream(t, f, rec)
	if cl := rec.Header().Get("Content-Location"); cl != public+"/Patient/p1/_history/1" {
		t.Errorf("Content-Location %q", cl)
	}
	if !strings.Contains(rec.Body.String(), `\u003ca href=\"`+public+`/Patient/p1\"\u003eOne`) {
		t.Errorf("narrative not rewritten: %s", rec.Body)
	}

	rec = do(t, p, http.MethodPost, public+"/Observation", `{"resourceType":"Observation","status":"final"}`, "Content-Type", "application/fhir+json")
	noUpstream(t, f, rec)
	if rec.Code != http.StatusCreated || !strings.HasPrefix(rec.Header().Get("Location"), public+"/Observation/new") {
		t.Errorf("create: %d, Location %q", rec.Code, rec.Header().Get("Location"))
	}
	_, sent := f.last(t)
	if sent != `{"resourceType":"Observation","status":"final"}` {
		t.Errorf("the upstream got the body %q", sent)
	}
}

// TestProxyBodies: media types, encodings and sizes.
func TestProxyBodies(t *testing.T) {
	f := newFakeFHIR(t)
	up := f.base
	answer := func(ct, enc string, body []byte) {
		f.mu.Lock()
		f.override = func(w http.ResponseWriter, r *http.Request) {
			if ct != "" {
				w.Header().Set("Content-Type", ct)
			}
			if enc != "" {
				w.Header().Set("Content-Encoding", enc)
			}
			w.Header().Set("Location", "/up/r4/Patient/p1")
			_, _ = w.Write(body)
		}
		f.mu.Unlock()
	}
	gz := func(s string) []byte {
		var b bytes.Buffer
		z := gzip.NewWriter(&b)
		_, _ = z.Write([]byte(s))
		_ = z.Close()
		return b.Bytes()
	}
	p := newTestProxy(t, f, func(c *Config) { c.MaxResponseBytes = 4096 })
	png := append([]byte("\x89PNG\r\n\x1a\n\x00"), up...)
	for _, tc := range []struct {
		name, ct, enc string
		body          []byte
		status        int
		want          string // the body answered, when status is 200
	}{
		{"fhir json", "application/fhir+json", "", []byte(`{"a":"` + up + `/x"}`), 200, `{"a":"` + public + `/x"}`},
		{"json under text/plain", "text/plain", "", []byte(`["` + up + `"]`), 200, `["` + public + `"]`},
		{"no content type", "", "", []byte(`{"a" : "` + up + `"}`), 200, `{"a" : "` + public + `"}`},
		{"ndjson", "application/fhir+ndjson", "", []byte(`{"a":"` + up + `"}` + "\n" + `{"b":1}` + "\n"), 200, `{"a":"` + public + `"}` + "\n" + `{"b":1}` + "\n"},
		{"gzip", "application/fhir+json", "gzip", gz(`{"a":"` + up + `/x"}`), 200, `{"a":"` + public + `/x"}`},
		{"xml without the address", "application/fhir+xml", "", []byte(`<Patient xmlns="http://hl7.org/fhir"/>`), 200, `<Patient xmlns="http://hl7.org/fhir"/>`},
		{"binary with the address", "image/png", "", png, 200, string(png)},
		{"xml with the address", "application/fhir+xml", "", []byte(`<Patient><link value="` + up + `/Patient/p2"/></Patient>`), 502, ""},
		{"html with the address", "text/html", "", []byte(`<a href="` + up + `/Patient/p2">`), 502, ""},
		{"invalid json with the address", "application/fhir+json", "", []byte(`{"a":"` + up + `"`), 502, ""},
		{"text without type", "", "", []byte(`see ` + up), 502, ""},
		{"brotli", "application/fhir+json", "br", []byte(`{}`), 502, ""},
		{"broken gzip", "application/fhir+json", "gzip", []byte(`{}`), 502, ""},
		{"too large", "application/fhir+json", "", []byte(`{"a":"` + strings.Repeat("x", 4096) + `"}`), 502, ""},
		{"too large once gunzipped", "application/fhir+json", "gzip", gz(`{"a":"` + strings.Repeat("x", 4096) + `"}`), 502, ""},
		{"too large binary", "application/octet-stream", "", bytes.Repeat([]byte{0}, 4097), 502, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answer(tc.ct, tc.enc, tc.body)
			rec := do(t, p, http.MethodGet, public+"/Patient/p1", "")
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if tc.name != "binary with the address" {
				noUpstream(t, f, rec)
			}
			if loc := rec.Header().Get("Location"); tc.status == 200 && loc != "/api/fhir/Patient/p1" {
				t.Errorf("Location %q", loc)
			}
			if tc.status != 200 {
				if !strings.Contains(rec.Body.String(), `"resourceType":"OperationOutcome"`) || rec.Header().Get("Content-Type") != "application/fhir+json" {
					t.Errorf("%s %s", rec.Header().Get("Content-Type"), rec.Body)
				}
				return
			}
			if rec.Body.String() != tc.want {
				t.Errorf("body %q, want %q", rec.Body, tc.want)
			}
			if rec.Header().Get("Content-Encoding") != "" || rec.Header().Get("Content-Length") != strconv.Itoa(len(tc.want)) {
				t.Errorf("Content-Encoding %q, Content-Length %q", rec.Header().Get("Content-Encoding"), rec.Header().Get("Content-Length"))
			}
		})
	}
	t.Run("head", func(t *testing.T) {
		answer("application/fhir+json", "", []byte(`{"a":"`+up+`"}`))
		rec := do(t, p, http.MethodHead, public+"/Patient/p1", "")
		if rec.Code != 200 || rec.Body.Len() != 0 {
			t.Fatalf("%d %q", rec.Code, rec.Body)
		}
	})
}

// TestProxyUpstreamFailures: 502 when the upstream cannot be reached, 504
// when it does not answer in time; neither names the upstream.
func TestProxyUpstreamFailures(t *testing.T) {
	f := newFakeFHIR(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	f.override = func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 50 * time.Millisecond // the upstream never answers
	p := newTestProxy(t, f, func(c *Config) { c.Transport = tr })
	rec := do(t, p, http.MethodGet, public+"/Patient/p1", "")
	if rec.Code != http.StatusGatewayTimeout || !strings.Contains(rec.Body.String(), `"code":"timeout"`) {
		t.Errorf("timeout: %d %s", rec.Code, rec.Body)
	}
	noUpstream(t, f, rec)

	for name, err := range map[string]error{
		"deadline":         context.DeadlineExceeded,
		"net timeout":      &net.OpError{Op: "dial", Err: timeoutError{}},
		"connection reset": errors.New("connection reset by peer " + f.base),
	} {
		want := http.StatusGatewayTimeout
		if name == "connection reset" {
			want = http.StatusBadGateway
		}
		p := newTestProxy(t, f, func(c *Config) {
			c.Transport = roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, err })
		})
		rec := do(t, p, http.MethodGet, public+"/Patient/p1", "")
		if rec.Code != want {
			t.Errorf("%s: %d, want %d", name, rec.Code, want)
		}
		noUpstream(t, f, rec)
	}

	// A request body cut by an http.MaxBytesReader in front.
	p3 := newTestProxy(t, newFakeFHIR(t), nil)
	limited := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 10)
		p3.ServeHTTP(w, r)
	})
	rec = do(t, limited, http.MethodPost, public+"/Observation", `{"resourceType":"Observation"}`)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("body over the limit: %d %s", rec.Code, rec.Body)
	}

	// Nothing listens.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	p2, err := New(Config{Upstream: "http://" + addr + "/fhir", BaseURL: public, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	rec = do(t, p2, http.MethodGet, public+"/Patient/p1", "")
	if rec.Code != http.StatusBadGateway || strings.Contains(rec.Body.String(), addr) || !strings.Contains(rec.Body.String(), `"code":"transient"`) {
		t.Errorf("unreachable: %d %s", rec.Code, rec.Body)
	}
	if err := p2.Ready(context.Background()); err == nil {
		t.Error("Ready with nothing listening")
	}
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestReady(t *testing.T) {
	f := newFakeFHIR(t)
	p := newTestProxy(t, f, nil)
	if err := p.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.override = func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }
	if err := p.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("Ready: %v", err)
	}
	if r, _ := f.last(t); r.URL.Path != "/up/r4/metadata" {
		t.Fatalf("Ready asked %s", r.URL.Path)
	}
}

// TestProxyDropsEarlyHints: a 103 Early Hints response's headers are not
// rewritten, so they do not reach the client.
func TestProxyDropsEarlyHints(t *testing.T) {
	f := newFakeFHIR(t)
	f.override = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "<"+f.base+"/Patient/p2>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Header().Set("Content-Type", "application/fhir+json")
		_, _ = io.WriteString(w, `{"resourceType":"Patient","id":"p1"}`)
	}
	p := newTestProxy(t, f, nil)
	gw := httptest.NewServer(p)
	defer gw.Close()
	req, _ := http.NewRequest(http.MethodGet, gw.URL+"/api/fhir/Patient/p1", nil)
	var early []textproto.MIMEHeader
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error { early = append(early, h); return nil },
	}))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || len(early) != 0 {
		t.Fatalf("status %d, 1xx headers %v", resp.StatusCode, early)
	}
}

func TestCloseLeavesNothingRunning(t *testing.T) {
	f := newFakeFHIR(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p, err := New(Config{Upstream: f.base, BaseURL: public, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if rec := do(t, p, http.MethodGet, public+"/Patient/p1", ""); rec.Code != 200 {
			t.Fatal(rec.Code)
		}
	}
	p.Close()
	f.srv.CloseClientConnections()
}

// errAfter returns its data, then err.
type errAfter struct {
	data []byte
	err  error
}

func (e *errAfter) Read(p []byte) (int, error) {
	if len(e.data) == 0 {
		return 0, e.err
	}
	n := copy(p, e.data)
	e.data = e.data[n:]
	return n, nil
}

// TestReadAll: the body is read whole, up to the limit, whatever the size
// hint (the Content-Length) says, in small reads or large.
func TestReadAll(t *testing.T) {
	const limit = 101
	for _, size := range []int{0, 1, 50, 99, 100, 101, 102, 500} {
		body := bytes.Repeat([]byte("abcdefg"), size/7+1)[:size]
		want := body[:min(size, limit)]
		for _, hint := range []int64{-1, 0, 1, int64(size) - 1, int64(size), int64(size) + 1, limit - 1, limit, 1000} {
			for _, r := range []io.Reader{bytes.NewReader(body), iotest.OneByteReader(bytes.NewReader(body)), iotest.DataErrReader(bytes.NewReader(body))} {
				got, err := readAll(r, hint, limit)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("size %d, hint %d: %d bytes, %v", size, hint, len(got), err)
				}
			}
		}
		// A large announced size is not allocated before the bytes come.
		if got, err := readAll(bytes.NewReader(body), maxHint+1, maxHint+10); err != nil || !bytes.Equal(got, body) || cap(got) > maxHint {
			t.Fatalf("size %d, hint %d: %d bytes (capacity %d), %v", size, maxHint+1, len(got), cap(got), err)
		}
		boom := errors.New("boom")
		for _, hint := range []int64{-1, int64(size), int64(size) + 10} {
			if _, err := readAll(&errAfter{slices.Clone(body), boom}, hint, 1000); !errors.Is(err, boom) {
				t.Fatalf("size %d, hint %d: error %v", size, hint, err)
			}
		}
	}
}
