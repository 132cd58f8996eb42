package harness

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"
)

var (
	issuerOnce sync.Once
	issuerVal  *Issuer
	issuerErr  error
)

// testIssuer returns one Issuer per test binary: RSA key generation is slow.
func testIssuer(tb testing.TB) *Issuer {
	tb.Helper()
	issuerOnce.Do(func() { issuerVal, issuerErr = NewIssuer() })
	if issuerErr != nil {
		tb.Fatal(issuerErr)
	}
	return issuerVal
}

func sign(tb testing.TB, s TokenSpec) string {
	tb.Helper()
	tok, err := testIssuer(tb).Sign(s)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func newServer(tb testing.TB, m Mode) *Server {
	tb.Helper()
	s, err := NewServer(ServerConfig{Mode: m, Issuer: testIssuer(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// TestGuardedServerEnforces proves the load-test server really runs the
// middleware: the same requests that the bare server answers are refused
// or allowed by the Guard as SMART requires.
func TestGuardedServerEnforces(t *testing.T) {
	system := sign(t, TokenSpec{Scopes: SystemScopes})
	patient := sign(t, TokenSpec{Alg: "ES256", Scopes: PatientScopes, Patient: "123"})
	other := sign(t, TokenSpec{Alg: "EdDSA", Scopes: PatientScopes, Patient: "456"})
	noObs := sign(t, TokenSpec{Scopes: "system/Patient.rs"})
	expired := sign(t, TokenSpec{Scopes: SystemScopes, Lifetime: -time.Minute})
	padded, err := testIssuer(t).SignAsLong(TokenSpec{Alg: "ES256", Scopes: SystemScopes}, patient)
	if err != nil {
		t.Fatal(err)
	}
	if len(padded) < len(patient) || len(padded) > len(patient)+2 {
		t.Fatalf("padded system token of %d bytes, the patient token %d", len(padded), len(patient))
	}
	bare, guard := newServer(t, Bare), newServer(t, Guarded)
	for _, tc := range []struct {
		name, path, token string
		bare, guard       int
	}{
		{"system token reads", "/Observation/1", system, 200, 200},
		{"padded system token reads", "/Observation/1", padded, 200, 200},
		{"system token searches", "/Observation?code=2339-0", system, 200, 200},
		{"patient token reads own observation", "/Observation/1", patient, 200, 200},
		{"other patient gets 404", "/Observation/1", other, 200, 404},
		{"no token", "/Observation/1", "", 200, 401},
		{"garbage token", "/Observation/1", "not-a-token", 200, 401},
		{"expired token", "/Observation/1", expired, 200, 401},
		{"type not granted", "/Observation/1", noObs, 200, 403},
		{"metadata is public", "/metadata", "", 200, 200},
		{"non-canonical path", "/Observation/%2e%2e/1", system, 404, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, s := range []struct {
				h    http.Handler
				want int
			}{{bare, tc.bare}, {guard, tc.guard}} {
				r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1"+BasePath+tc.path, nil)
				if tc.token != "" {
					r.Header.Set("Authorization", "Bearer "+tc.token)
				}
				w := httptest.NewRecorder()
				s.h.ServeHTTP(w, r)
				if w.Code != s.want {
					t.Errorf("status %d, want %d (body %s)", w.Code, s.want, w.Body.String())
				}
			}
		})
	}
}

func TestNewServerValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ServerConfig
	}{
		{"no mode", ServerConfig{}},
		{"unknown mode", ServerConfig{Mode: 9}},
		{"guard without issuer", ServerConfig{Mode: Guarded}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewServer(tc.cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	for _, name := range []string{"bare", "guard"} {
		m, err := ParseMode(name)
		if err != nil || m.String() != name {
			t.Errorf("ParseMode(%q) = %v, %v", name, m, err)
		}
	}
	if _, err := ParseMode("naked"); err == nil {
		t.Error("ParseMode accepted an unknown mode")
	}
}

func TestIssuerUnknownAlgorithm(t *testing.T) {
	if _, err := testIssuer(t).Sign(TokenSpec{Alg: "HS256"}); !errors.Is(err, ErrAlgorithm) {
		t.Fatalf("Sign: %v, want ErrAlgorithm", err)
	}
	if _, err := testIssuer(t).PublicKey("none"); !errors.Is(err, ErrAlgorithm) {
		t.Fatalf("PublicKey: %v, want ErrAlgorithm", err)
	}
}

// TestLoadSmoke runs the load generator briefly against both servers on
// loopback: it must see answers, no errors and ordered percentiles.
func TestLoadSmoke(t *testing.T) {
	tok := sign(t, TokenSpec{Scopes: SystemScopes})
	for _, tc := range []struct {
		name  string
		mode  Mode
		token string
	}{{"bare", Bare, ""}, {"guard", Guarded, tok}} {
		t.Run(tc.name, func(t *testing.T) {
			ts := httptest.NewServer(newServer(t, tc.mode))
			defer ts.Close()
			res, err := Run(context.Background(), LoadConfig{
				URL: ts.URL + BasePath + "/Observation/1", Token: tc.token,
				Concurrency: 4, Duration: 300 * time.Millisecond, Warmup: 50 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests == 0 || res.Errors != 0 || res.Throughput <= 0 {
				t.Fatalf("requests %d, errors %d (%s), throughput %.0f", res.Requests, res.Errors, res.FirstError, res.Throughput)
			}
			if res.P50 <= 0 || res.P50 > res.P99 || res.P99 > res.Max {
				t.Fatalf("percentiles out of order: p50 %v p99 %v max %v", res.P50, res.P99, res.Max)
			}
		})
	}
}

// TestLoadCountsErrors: refusals are errors, not throughput.
func TestLoadCountsErrors(t *testing.T) {
	ts := httptest.NewServer(newServer(t, Guarded))
	defer ts.Close()
	res, err := Run(context.Background(), LoadConfig{URL: ts.URL + BasePath + "/Observation/1", MaxRequests: 20, Duration: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 0 || res.Errors != 20 || res.FirstError == "" {
		t.Fatalf("requests %d, errors %d, first %q; want 0, 20 and a reason", res.Requests, res.Errors, res.FirstError)
	}
}

func TestLoadRefusesBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      LoadConfig
		loopback bool
	}{
		{"public host", LoadConfig{URL: "http://example.org/fhir/metadata"}, true},
		{"private address", LoadConfig{URL: "http://10.0.0.1:8080/fhir/metadata"}, true},
		{"unspecified address", LoadConfig{URL: "http://0.0.0.0:8080/"}, true},
		{"loopback lookalike", LoadConfig{URL: "http://127.0.0.1.nip.io/"}, true},
		{"scheme", LoadConfig{URL: "ftp://127.0.0.1/"}, false},
		{"concurrency", LoadConfig{URL: "http://127.0.0.1/", Concurrency: MaxConcurrency + 1}, false},
		{"negative duration", LoadConfig{URL: "http://127.0.0.1/", Duration: -time.Second}, false},
		{"long duration", LoadConfig{URL: "http://127.0.0.1/", Duration: MaxDuration + 1}, false},
		{"negative max", LoadConfig{URL: "http://[::1]/", MaxRequests: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(context.Background(), tc.cfg)
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.loopback != errors.Is(err, ErrNotLoopback) {
				t.Fatalf("err %v; ErrNotLoopback expected: %v", err, tc.loopback)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	s := make([]time.Duration, 100)
	for i := range s {
		s[i] = time.Duration(i + 1)
	}
	for _, tc := range []struct {
		name string
		in   []time.Duration
		p    int
		want time.Duration
	}{
		{"p50 of 100", s, 50, 50},
		{"p99 of 100", s, 99, 99},
		{"p100 of 100", s, 100, 100},
		{"p99 of 1", s[:1], 99, 1},
		{"p50 of 3", s[:3], 50, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.in, tc.p); got != tc.want {
				t.Fatalf("got %d, want %d", got, tc.want)
			}
		})
	}
}

// TestScaleSmall runs the scale test with few tokens: every second-pass
// request must hit the cache and the tokens must share one matcher per
// scope string.
func TestScaleSmall(t *testing.T) {
	for _, tc := range []struct {
		name           string
		tokens, scopes int
		cacheSize      int
		wantHit        float64
	}{
		{"all cached", 200, 10, 0, 1},
		{"cache too small", 200, 10, 20, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Scale(ScaleConfig{Tokens: tc.tokens, ScopeStrings: tc.scopes, CacheSize: tc.cacheSize, Issuer: testIssuer(t)})
			if err != nil {
				t.Fatal(err)
			}
			if res.Matchers != tc.scopes {
				t.Errorf("%d matchers, want %d", res.Matchers, tc.scopes)
			}
			if tc.wantHit == 1 && res.HitRatio != 1 || tc.wantHit == 0 && res.HitRatio > 0.5 {
				t.Errorf("hit ratio %.2f, want about %.0f", res.HitRatio, tc.wantHit)
			}
			if tc.wantHit == 1 && res.BytesPerToken <= 0 {
				t.Errorf("bytes per token %.0f", res.BytesPerToken)
			}
			if res.FirstPass <= 0 || res.SecondPass <= 0 {
				t.Errorf("pass times %v %v", res.FirstPass, res.SecondPass)
			}
		})
	}
	if _, err := Scale(ScaleConfig{Tokens: 5, ScopeStrings: 6}); err == nil {
		t.Error("Scale accepted more scope strings than tokens")
	}
}

func TestWithStats(t *testing.T) {
	h := WithStats(http.NotFoundHandler())
	for _, tc := range []struct {
		name, path string
		want       int
	}{{"stats", StatsPath, 200}, {"other path", "/fhir/metadata", 404}} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", tc.path, nil))
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d", w.Code, tc.want)
			}
			if tc.want != 200 {
				return
			}
			var s ProcessStats
			if err := json.Unmarshal(w.Body.Bytes(), &s); err != nil || s.Mallocs == 0 || s.RSS == 0 || s.HeapAlloc == 0 || runtime.GOOS == "linux" && s.CPU <= 0 {
				t.Fatalf("stats %+v, %v", s, err)
			}
		})
	}
}
