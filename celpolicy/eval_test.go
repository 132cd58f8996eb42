package celpolicy

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/middleware"
)

// TestEffects checks deny and require rules, match, ordering and that the
// denial names the rule that decided.
func TestEffects(t *testing.T) {
	rules := []Rule{
		{Name: "tenant", Effect: Require, Match: "token.tenant != ''", When: "request.headers['x-tenant'] == token.tenant", Message: "wrong tenant"},
		{Name: "no-delete", Effect: Deny, Match: "request.interaction == 'delete'", When: "true", Message: "no deletes"},
		{Name: "late", Effect: Deny, When: "now.getHours() >= 22", Message: "too late"},
	}
	p := newTestPolicy(t, Config{Rules: rules})
	cases := []struct {
		name     string
		tenant   string
		token    string
		delete   bool
		wantRule string
	}{
		{name: "allowed", tenant: "acme", token: "acme"},
		{name: "tenant mismatch", tenant: "evil", token: "acme", wantRule: "tenant"},
		{name: "tenant case differs", tenant: "ACME", token: "acme", wantRule: "tenant"},
		{name: "tenant with space", tenant: "acme ", token: "acme", wantRule: "tenant"},
		{name: "no tenant in token: rule does not match", tenant: "", token: ""},
		{name: "delete denied", tenant: "acme", token: "acme", delete: true, wantRule: "no-delete"},
		{name: "first denial wins", tenant: "evil", token: "acme", delete: true, wantRule: "tenant"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, tok, d := testRequest(), testToken(), testDecision()
			r.Header.Set("X-Tenant", tc.tenant)
			if tc.tenant == "" {
				r.Header.Del("X-Tenant")
			}
			tok.Tenant = tc.token
			if tc.delete {
				d.Interaction.Kind = 5 // fhirrest.Delete
			}
			err := p.AuthorizeRequest(r, tok, d)
			if tc.wantRule == "" {
				if err != nil {
					t.Fatalf("denied: %v", err)
				}
				return
			}
			var pd *middleware.PolicyDenial
			if !errors.As(err, &pd) {
				t.Fatalf("got %v, want a denial", err)
			}
			if pd.Rule != tc.wantRule {
				t.Errorf("rule %q decided, want %q", pd.Rule, tc.wantRule)
			}
			for _, r := range rules {
				if r.Name == tc.wantRule && pd.Message != r.Message {
					t.Errorf("message %q, want %q", pd.Message, r.Message)
				}
			}
		})
	}
	t.Run("repeated header refused", func(t *testing.T) {
		r := testRequest()
		r.Header.Add("X-Tenant", "evil")
		if got := outcome(t, p, r, testToken(), testDecision()); got != "deny" {
			t.Errorf("got %s, want deny", got)
		}
	})
	t.Run("missing header denies (fail closed)", func(t *testing.T) {
		r := testRequest()
		r.Header.Del("X-Tenant")
		if got := outcome(t, p, r, testToken(), testDecision()); got != "error" {
			t.Errorf("got %s, want error", got)
		}
	})
	t.Run("clock", func(t *testing.T) {
		late := newTestPolicy(t, Config{Rules: rules, Now: func() time.Time { return fixedNow.Add(12 * time.Hour) }})
		if got := outcome(t, late, testRequest(), testToken(), testDecision()); got != "deny" {
			t.Errorf("at 22:30 got %s, want deny", got)
		}
	})
}

// TestFailClosed checks that evaluation errors deny, are logged and are
// readable as denials naming the rule.
func TestFailClosed(t *testing.T) {
	cases := []struct {
		name  string
		rule  Rule
		cause string
	}{
		{"missing map key in when", Rule{Name: "k", Effect: Deny, When: "token.claims.nope == 'x'", Message: "m"}, "no such key"},
		{"missing map key in match", Rule{Name: "k", Effect: Deny, Match: "token.claims.nope == 'x'", When: "false", Message: "m"}, "no such key"},
		{"missing query param", Rule{Name: "q", Effect: Require, When: "request.query['subject'][0] == 'x'", Message: "m"}, "no such key"},
		{"index out of range", Rule{Name: "i", Effect: Require, When: "request.query['patient'][3] == 'x'", Message: "m"}, "index"},
		{"dynamic type error", Rule{Name: "t", Effect: Require, When: "token.claims.level > 'x'", Message: "m"}, "no such overload"},
		{"division by zero", Rule{Name: "z", Effect: Require, When: "1 / (size(token.sub) - 6) == 1", Message: "m"}, "division by zero"},
		{"require rule errors deny too", Rule{Name: "r", Effect: Require, When: "token.claims.nope == true", Message: "m"}, "no such key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			log, buf := testLogger()
			p := newTestPolicy(t, Config{Rules: []Rule{tc.rule}, Logger: log})
			err := p.AuthorizeRequest(testRequest(), testToken(), testDecision())
			if !isEvalError(err) {
				t.Fatalf("got %v, want ErrEvaluation", err)
			}
			var ee *EvalError
			if !errors.As(err, &ee) || ee.Rule != tc.rule.Name {
				t.Fatalf("EvalError = %+v", ee)
			}
			var pd *middleware.PolicyDenial
			if !errors.As(err, &pd) || pd.Rule != tc.rule.Name || pd.Message != evalDenialMessage {
				t.Fatalf("PolicyDenial = %+v", pd)
			}
			if !strings.Contains(err.Error(), tc.cause) {
				t.Errorf("error %q should mention %q", err, tc.cause)
			}
			logged := buf.String()
			if !strings.Contains(logged, "level=ERROR") || !strings.Contains(logged, "rule="+tc.rule.Name) {
				t.Errorf("not logged: %q", logged)
			}
			if strings.Contains(pd.Message, "no such key") {
				t.Error("cause leaks into the client message")
			}
		})
	}
}

// TestRuntimeCostLimit checks that an evaluation over the runtime cost
// limit denies, and that the same rule passes under a higher limit.
func TestRuntimeCostLimit(t *testing.T) {
	rule := Rule{Name: "loop", Effect: Deny, On: OnResource,
		When:    "resource.entry.exists(a, resource.entry.exists(b, a == b && a == 'never'))",
		Message: "m"}
	entries := make([]any, 100)
	for i := range entries {
		entries[i] = strings.Repeat("x", i%7)
	}
	res := map[string]any{"resourceType": "Bundle", "entry": entries}
	r := testRequest()
	low := newTestPolicy(t, Config{Rules: []Rule{rule}, CostLimit: 1000, MaxEstimatedCost: 1 << 40})
	err := low.AuthorizeResource(r, testToken(), testDecision(), middleware.ResourceRead, res)
	if !errors.Is(err, errCostLimit) || !isEvalError(err) {
		t.Fatalf("low limit: got %v, want errCostLimit", err)
	}
	high := newTestPolicy(t, Config{Rules: []Rule{rule}, CostLimit: 100_000_000, MaxEstimatedCost: 1 << 40})
	if err := high.AuthorizeResource(r, testToken(), testDecision(), middleware.ResourceRead, res); err != nil {
		t.Fatalf("high limit: %v", err)
	}
	none := newTestPolicy(t, Config{Rules: []Rule{rule}, InsecureNoCostLimit: true, MaxEstimatedCost: 1 << 40})
	if err := none.AuthorizeResource(r, testToken(), testDecision(), middleware.ResourceRead, res); err != nil {
		t.Fatalf("no limit: %v", err)
	}
}

// TestCancelledRequest checks that a cancelled request context stops a
// long evaluation and denies.
func TestCancelledRequest(t *testing.T) {
	rule := Rule{Name: "loop", Effect: Deny, On: OnResource,
		When:    "resource.entry.exists(a, resource.entry.exists(b, a == b && a == 'never'))",
		Message: "m"}
	entries := make([]any, 300)
	for i := range entries {
		entries[i] = "e"
	}
	p := newTestPolicy(t, Config{Rules: []Rule{rule}, CostLimit: 1 << 40, MaxEstimatedCost: 1 << 40})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequestWithContext(ctx, "GET", "/Bundle/1", nil)
	err := p.AuthorizeResource(r, testToken(), testDecision(), middleware.ResourceRead, map[string]any{"entry": entries})
	if !isEvalError(err) || !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want a cancelled evaluation", err)
	}
}

// TestBadInputsDeny checks inputs the enforcement point should never pass.
func TestBadInputsDeny(t *testing.T) {
	p := newTestPolicy(t, Config{Rules: []Rule{
		{Name: "req", Effect: Deny, When: "false", Message: "m"},
		{Name: "res", Effect: Deny, On: OnResource, When: "false", Message: "m"},
	}})
	if err := p.AuthorizeRequest(nil, testToken(), nil); !isEvalError(err) {
		t.Errorf("nil request: %v", err)
	}
	r := testRequest()
	if err := p.AuthorizeResource(r, testToken(), nil, middleware.ResourcePhase(9), map[string]any{}); !isEvalError(err) {
		t.Errorf("bad phase: %v", err)
	}
	if err := p.AuthorizeResource(r, testToken(), nil, middleware.ResourceRead, nil); !isEvalError(err) {
		t.Errorf("nil resource: %v", err)
	}
	if err := p.AuthorizeResource(r, testToken(), nil, middleware.ResourceRead, map[string]any{}); err != nil {
		t.Errorf("good resource: %v", err)
	}
}

// TestResourceRules checks resource rules see the resource and the phase,
// and that request and resource rules run only in their own method.
func TestResourceRules(t *testing.T) {
	p := newTestPolicy(t, Config{Rules: []Rule{
		{Name: "req-deny-all", Effect: Deny, Match: "request.method == 'DELETE'", When: "true", Message: "no"},
		{Name: "restricted", Effect: Deny, On: OnResource, Match: "phase == 'read'",
			When: "resource.?meta.security.orValue([]).exists(s, s.?code.orValue('') == 'R') && !(token.claims.?break_glass.orValue(false) == true)", Message: "restricted"},
		{Name: "own-patient-writes", Effect: Require, On: OnResource, Match: "phase == 'write' && resource.resourceType == 'Observation'",
			When: "refId(resource.subject.reference) == token.patient && refType(resource.subject.reference) == 'Patient'", Message: "not your patient"},
	}})
	restricted := map[string]any{"resourceType": "Observation", "meta": map[string]any{"security": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}}}}
	normal := map[string]any{"resourceType": "Observation", "meta": map[string]any{"security": []any{map[string]any{"code": "N"}}}}
	bare := map[string]any{"resourceType": "Observation"}
	obs := func(ref string) map[string]any {
		return map[string]any{"resourceType": "Observation", "subject": map[string]any{"reference": ref}}
	}
	noGlass := testToken()
	noGlass.Claims = map[string]any{}
	cases := []struct {
		name     string
		tok      *middleware.Token
		phase    middleware.ResourcePhase
		res      map[string]any
		wantRule string
	}{
		{"restricted refused", noGlass, middleware.ResourceRead, restricted, "restricted"},
		{"restricted with break glass", testToken(), middleware.ResourceRead, restricted, ""},
		{"normal", noGlass, middleware.ResourceRead, normal, ""},
		{"no meta", noGlass, middleware.ResourceRead, bare, ""},
		{"restricted write is not a read", noGlass, middleware.ResourceWritten, map[string]any{"resourceType": "Patient", "meta": restricted["meta"]}, ""},
		{"write own patient", testToken(), middleware.ResourceWritten, obs("Patient/123"), ""},
		{"write own patient absolute", testToken(), middleware.ResourceWritten, obs("https://fhir.example.org/Patient/123"), ""},
		{"write own patient versioned", testToken(), middleware.ResourceWritten, obs("Patient/123/_history/1"), ""},
		{"write other patient", testToken(), middleware.ResourceWritten, obs("Patient/456"), "own-patient-writes"},
		{"write group with same id", testToken(), middleware.ResourceWritten, obs("Group/123"), "own-patient-writes"},
		{"write contained", testToken(), middleware.ResourceWritten, obs("#p"), "own-patient-writes"},
		{"write conditional", testToken(), middleware.ResourceWritten, obs("Patient?identifier=123"), "own-patient-writes"},
		{"write dot segments", testToken(), middleware.ResourceWritten, obs("Patient/456/../123"), "own-patient-writes"},
		{"write without subject fails closed", testToken(), middleware.ResourceWritten, bare, "own-patient-writes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := p.AuthorizeResource(testRequest(), tc.tok, testDecision(), tc.phase, tc.res)
			if tc.wantRule == "" {
				if err != nil {
					t.Fatalf("denied: %v", err)
				}
				return
			}
			var pd *middleware.PolicyDenial
			if !errors.As(err, &pd) || pd.Rule != tc.wantRule {
				t.Fatalf("got %v, want denial by %q", err, tc.wantRule)
			}
		})
	}
	// Request rules do not run in AuthorizeResource, nor resource rules in
	// AuthorizeRequest.
	del := testRequest()
	del.Method = "DELETE"
	if err := p.AuthorizeResource(del, testToken(), nil, middleware.ResourceRead, bare); err != nil {
		t.Errorf("request rule ran on a resource: %v", err)
	}
	if err := p.AuthorizeRequest(del, testToken(), nil); err == nil {
		t.Error("request rule did not run on the request")
	}
	if err := p.AuthorizeRequest(testRequest(), noGlass, testDecision()); err != nil {
		t.Errorf("resource rule ran on the request: %v", err)
	}
}

// TestStateNotShared checks that pooled evaluation state does not carry
// one request's data into the next.
func TestStateNotShared(t *testing.T) {
	p := newTestPolicy(t, requireRule("request.query['v'][0] == request.headers['x-v'] && token.sub == request.headers['x-v']"))
	for _, v := range []string{"a", "b", "c", "a"} {
		r := httptest.NewRequest("GET", "/Patient?v="+v, nil)
		r.Header.Set("X-V", v)
		tok := testToken()
		tok.Subject = v
		if err := p.AuthorizeRequest(r, tok, nil); err != nil {
			t.Fatalf("%s: %v", v, err)
		}
	}
}

// TestDenialLogged checks that a denial is logged (debug) with the rule,
// and that changing the caller's rule slice after New changes nothing.
func TestDenialLogged(t *testing.T) {
	log, buf := testLogger()
	rules := []Rule{{Name: "never", Effect: Require, When: "false", Message: "no"}}
	p := newTestPolicy(t, Config{Rules: rules, Logger: log})
	rules[0].When = "true"
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := outcome(t, p, testRequest(), testToken(), nil); got != "deny" {
		t.Fatalf("got %s, want deny", got)
	}
	if out := buf.String(); !strings.Contains(out, "level=DEBUG") || !strings.Contains(out, "rule=never") {
		t.Errorf("denial not logged: %q", out)
	}
	if got := p.Rules(); len(got) != 1 || got[0].When != "false" {
		t.Errorf("Rules() = %+v", got)
	}
}
