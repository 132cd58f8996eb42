package celpolicy

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/cel-go/common/types"

	"github.com/fhirguard/fhirguard/fhirrest"
	"github.com/fhirguard/fhirguard/middleware"
	"github.com/fhirguard/fhirguard/scope"
)

var celTrue = types.True

// fixedNow is the `now` of the tests: a Thursday, 10:30 UTC.
var fixedNow = time.Date(2026, 3, 12, 10, 30, 0, 0, time.UTC)

// syncBuffer is a log sink safe for concurrent writers.
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

func testLogger() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

func newTestPolicy(t testing.TB, cfg Config) *Policy {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return fixedNow }
	}
	if cfg.Logger == nil {
		cfg.Logger, _ = testLogger()
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func testToken() *middleware.Token {
	return &middleware.Token{
		Subject:   "user-1",
		ClientID:  "app-1",
		Issuer:    "https://as.example.org",
		Audience:  []string{"https://fhir.example.org"},
		Expiry:    time.Date(2026, 3, 12, 11, 0, 0, 0, time.UTC),
		Scopes:    scope.Compile(scope.ParseSet("launch/patient openid fhirUser patient/Observation.rs patient/Patient.read user/Encounter.cruds?status=finished")),
		Patient:   "123",
		Encounter: "enc-9",
		FHIRUser:  "https://fhir.example.org/Practitioner/77",
		FHIRContext: []middleware.ContextItem{
			{Reference: "Encounter/enc-9", Role: "launch"},
			{Canonical: "http://example.org/Questionnaire/q1", Type: "Questionnaire", Identifier: map[string]any{"system": "urn:sys", "value": "v1"}},
		},
		Tenant: "acme",
		Claims: map[string]any{"sub": "user-1", "tenant": "acme", "roles": []any{"nurse", "admin"}, "level": float64(3), "break_glass": true},
	}
}

func testDecision() *middleware.Decision {
	return &middleware.Decision{
		Interaction: fhirrest.Interaction{
			Kind: fhirrest.SearchType, Method: "GET", ResourceType: "Observation",
			Query: url.Values{"patient": {"123"}, "code": {"a", "b"}},
		},
		Context:         scope.Patient,
		CompartmentType: "Patient",
		CompartmentID:   "123",
	}
}

func testRequest() *http.Request {
	r := httptest.NewRequest("GET", "/fhir/Observation?patient=123&code=a&code=b", nil)
	r.Header.Set("X-Tenant", "acme")
	r.Header.Add("Accept", "application/fhir+json")
	r.Header.Add("X-Multi", "one")
	r.Header.Add("X-Multi", "two")
	r.RemoteAddr = "192.0.2.7:5050"
	return r
}

// outcome runs a one-rule require policy: "allow" when the expression is
// true, "deny" when false, "error" when it fails to evaluate.
func outcome(t testing.TB, p *Policy, r *http.Request, tok *middleware.Token, d *middleware.Decision) string {
	t.Helper()
	err := p.AuthorizeRequest(r, tok, d)
	var ee *EvalError
	var pd *middleware.PolicyDenial
	switch {
	case err == nil:
		return "allow"
	case errors.As(err, &ee):
		return "error"
	case errors.As(err, &pd):
		return "deny"
	}
	t.Fatalf("unexpected error type %T: %v", err, err)
	return ""
}

func requireRule(expr string) Config {
	return Config{Rules: []Rule{{Name: "r", Effect: Require, When: expr, Message: "denied"}}}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// isKind reports whether err is (or joins) a *CompileError of the kind, or
// is a plain error wrapping it.
func isKind(err, kind error) bool {
	var ce *CompileError
	if errors.As(err, &ce) {
		return ce.kind == kind
	}
	return errors.Is(err, kind)
}

// isEvalError reports whether err is an *EvalError.
func isEvalError(err error) bool {
	var ee *EvalError
	return errors.As(err, &ee)
}
