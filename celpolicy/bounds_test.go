package celpolicy

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/cel-go/common/types"

	"github.com/fhirguard/fhirguard/middleware"
	"github.com/fhirguard/fhirguard/scope"
)

func whenProgram(t *testing.T, p *Policy) *program {
	t.Helper()
	rs := p.cur.Load()
	if len(rs.request) > 0 {
		return rs.request[0].when
	}
	return rs.resource[0].when
}

// TestBoundedRules checks which rules are proven bounded (evaluated without
// cost tracking on requests within the bounds) and on which inputs.
func TestBoundedRules(t *testing.T) {
	cases := []struct {
		name    string
		expr    string
		bounded bool
		groups  inputGroup
	}{
		{"E1", typicalRules[0].expr, true, groupRequestStrings | groupScopes},
		{"E2", typicalRules[1].expr, true, groupRequestStrings | groupTokenStrings | groupQuery},
		{"E3", typicalRules[2].expr, true, 0},
		{"E4", typicalRules[3].expr, true, groupRequestStrings | groupScopes},
		{"headers", `request.headers['x-tenant'] == token.tenant`, true, groupHeaders | groupTokenStrings},
		{"hasScope", `token.hasScope('openid')`, true, groupScopes},
		{"refType", `refType(token.fhirUser) == 'Practitioner'`, true, 0},
		{"claims unbounded", `token.claims.exists(k, k.startsWith('x'))`, false, 0},
		{"claims string unbounded", `string(token.claims.tenant).contains('a')`, false, 0},
		{"fhirContext unbounded", `token.fhirContext.exists(c, c.reference.startsWith('Patient/'))`, false, 0},
		{"nested query over limit", `request.query.all(k, request.query[k].all(v, request.query.all(k2, request.query[k2].all(v2, v.contains(v2)))))`, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := requireRule(tc.expr)
			cfg.MaxEstimatedCost = 1 << 62 // only the bounds matter here
			prg := whenProgram(t, newTestPolicy(t, cfg))
			if got := prg.fast != nil; got != tc.bounded {
				t.Fatalf("bounded = %v, want %v", got, tc.bounded)
			}
			if tc.bounded && tc.groups != 0 && prg.groups&tc.groups != tc.groups {
				t.Errorf("groups %06b, want at least %06b", prg.groups, tc.groups)
			}
		})
	}
	t.Run("resource iteration unbounded", func(t *testing.T) {
		p := newTestPolicy(t, Config{Rules: []Rule{{Name: "r", Effect: Deny, On: OnResource, When: "resource.entry.exists(e, e == 'x')", Message: "m"}}})
		if whenProgram(t, p).fast != nil {
			t.Error("iteration over the resource proven bounded")
		}
	})
	t.Run("resource comparison with a constant bounded", func(t *testing.T) {
		// Comparing with a constant costs at most the constant's size.
		p := newTestPolicy(t, Config{Rules: []Rule{{Name: "r", Effect: Deny, On: OnResource, When: "resource.resourceType == 'Bundle'", Message: "m"}}})
		if whenProgram(t, p).fast == nil {
			t.Error("not bounded")
		}
	})
	t.Run("no cost limit, no fast program", func(t *testing.T) {
		cfg := requireRule(typicalRules[0].expr)
		cfg.InsecureNoCostLimit = true
		if whenProgram(t, newTestPolicy(t, cfg)).fast != nil {
			t.Error("fast program built without a cost limit")
		}
	})
}

// maxInputs returns a request, token and decision whose bounded inputs are
// all at their bounds.
func maxInputs() (*middleware.Token, *middleware.Decision) {
	long := strings.Repeat("p", boundStrings-16)
	tok := testToken()
	tok.Subject, tok.ClientID, tok.Tenant, tok.Patient = long, long, long, long
	var scopes []string
	for i := range boundEntries - 1 {
		scopes = append(scopes, fmt.Sprintf("patient/Observation.rs?code=%s%d", strings.Repeat("c", 200), i))
	}
	tok.Scopes = scope.Compile(scope.ParseSet(strings.Join(scopes, " ")))
	d := testDecision()
	d.Interaction.ResourceType = long
	d.Interaction.Query = map[string][]string{}
	for i := range boundEntries {
		vals := make([]string, 8)
		for j := range vals {
			vals[j] = strings.Repeat("v", 400)
		}
		d.Interaction.Query[fmt.Sprintf("k%03d", i)] = vals
	}
	d.Interaction.Query["patient"] = []string{long}
	delete(d.Interaction.Query, "k000")
	return tok, d
}

// TestBoundsDifferential checks the proof the fast path rests on: for
// bounded rules, the cost CEL tracks at run time on inputs at the bounds
// never exceeds the bounds estimate.
func TestBoundsDifferential(t *testing.T) {
	exprs := []string{
		typicalRules[0].expr, typicalRules[1].expr, typicalRules[2].expr, typicalRules[3].expr,
		`token.scopes.all(s, s.startsWith('patient/') && s.contains('code=') && s.size() > 10)`,
		`request.query.all(k, k == 'patient' || request.query[k].all(v, v.startsWith('v') && v != token.patient))`,
		`token.scopes.exists(s, s == 'x' + request.resourceType + token.sub)`,
		`token.hasScope('openid') || token.allows('Observation', 'r') || request.headers.all(h, h.size() < 5000)`,
		`request.path.matches('^/fhir/[A-Z][a-z]+$') || token.scopes.map(s, s + token.sub).size() > 0`,
	}
	tok, d := maxInputs()
	r := testRequest()
	for i := range 200 {
		r.Header.Set(fmt.Sprintf("X-H%03d", i), strings.Repeat("h", 1000))
	}
	for _, expr := range exprs {
		t.Run(expr, func(t *testing.T) {
			cfg := requireRule(expr)
			cfg.MaxEstimatedCost, cfg.CostLimit = 1<<62, 1<<62
			p := newTestPolicy(t, cfg)
			prg := whenProgram(t, p)
			if prg.fast == nil {
				t.Fatal("not bounded")
			}
			s := newState(r, tok, d, fixedNow)
			defer s.release()
			if !s.withinBounds(prg.groups) {
				t.Fatal("test inputs are not within the bounds")
			}
			_, det, err := prg.prg.Eval(s)
			if err != nil && !strings.Contains(err.Error(), "no such key") {
				t.Fatal(err)
			}
			if det == nil || det.ActualCost() == nil {
				t.Fatal("no cost tracked")
			}
			env := p.reqEnv
			ast, iss := env.Compile(expr)
			if iss.Err() != nil {
				t.Fatal(iss.Err())
			}
			est, err := env.EstimateCost(ast, &boundsEstimator{})
			if err != nil {
				t.Fatal(err)
			}
			if *det.ActualCost() > est.Max {
				t.Errorf("actual cost %d over the bounds estimate %d", *det.ActualCost(), est.Max)
			}
			t.Logf("actual %d, estimate %d", *det.ActualCost(), est.Max)
		})
	}
}

// TestBoundsFallback checks that a request beyond the bounds is evaluated
// with cost tracking, so the runtime limit still holds, and that a request
// within them is allowed.
func TestBoundsFallback(t *testing.T) {
	cfg := requireRule(`request.headers.all(k, !request.headers[k].contains('zzz'))`)
	cfg.CostLimit = 200_000
	p := newTestPolicy(t, cfg)
	if whenProgram(t, p).fast == nil {
		t.Fatal("rule not bounded; the test needs a bounded rule")
	}
	if err := p.AuthorizeRequest(testRequest(), testToken(), testDecision()); err != nil {
		t.Fatalf("within bounds: %v", err)
	}
	big := testRequest()
	for i := range 1000 {
		big.Header.Set(fmt.Sprintf("X-H%04d", i), strings.Repeat("h", 4000))
	}
	s := newState(big, testToken(), testDecision(), fixedNow)
	if s.withinBounds(groupHeaders) {
		t.Fatal("1000 headers within the bounds")
	}
	s.release()
	err := p.AuthorizeRequest(big, testToken(), testDecision())
	if !errors.Is(err, errCostLimit) {
		t.Fatalf("beyond bounds: got %v, want errCostLimit", err)
	}
}

// TestWithinBounds checks each input group's bound, on both sides.
func TestWithinBounds(t *testing.T) {
	long := strings.Repeat("x", boundStrings+1)
	many := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "patient/Observation.rs?code=%d ", i)
		}
		return b.String()
	}
	cases := []struct {
		name  string
		group inputGroup
		mod   func(*evalState)
		want  bool
	}{
		{"request strings", groupRequestStrings, func(s *evalState) {}, true},
		{"long path", groupRequestStrings, func(s *evalState) { s.r.URL.Path = long }, false},
		{"long id", groupRequestStrings, func(s *evalState) { s.d.Interaction.ID = long }, false},
		{"token strings", groupTokenStrings, func(s *evalState) {}, true},
		{"long fhirUser", groupTokenStrings, func(s *evalState) { s.t.FHIRUser = long }, false},
		{"scopes", groupScopes, func(s *evalState) {}, true},
		{"too many scopes", groupScopes, func(s *evalState) { s.t.Scopes = scope.Compile(scope.ParseSet(many(boundEntries + 1))) }, false},
		{"scopes at bound", groupScopes, func(s *evalState) { s.t.Scopes = scope.Compile(scope.ParseSet(many(boundEntries))) }, true},
		{"audience", groupAudience, func(s *evalState) {}, true},
		{"long audience", groupAudience, func(s *evalState) { s.t.Audience = []string{long} }, false},
		{"query", groupQuery, func(s *evalState) {}, true},
		{"long query value", groupQuery, func(s *evalState) { s.d.Interaction.Query["code"] = []string{long} }, false},
		{"many query values", groupQuery, func(s *evalState) { s.d.Interaction.Query["code"] = make([]string, boundEntries+1) }, false},
		{"headers", groupHeaders, func(s *evalState) {}, true},
		{"long joined header", groupHeaders, func(s *evalState) {
			s.r.Header["X-A"] = []string{long[:boundStrings/2], long[:boundStrings/2]}
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := testToken()
			s := newState(testRequest(), tok, testDecision(), fixedNow)
			defer s.release()
			tc.mod(s)
			if got := s.withinBounds(tc.group); got != tc.want {
				t.Errorf("withinBounds = %v, want %v", got, tc.want)
			}
			if got := s.withinBounds(tc.group); got != tc.want {
				t.Errorf("second check = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestBoundsDifferentialResource checks a bounded resource rule against a
// resource with large values: comparing with a constant stays cheap.
func TestBoundsDifferentialResource(t *testing.T) {
	for _, expr := range []string{
		`resource.resourceType == 'Patient'`,
		`resource.id != 'x' && has(resource.meta)`,
		`refType(resource.subject.reference) == 'Patient' && refId(resource.subject.reference) == token.patient`,
	} {
		t.Run(expr, func(t *testing.T) {
			p := newTestPolicy(t, Config{Rules: []Rule{{Name: "r", Effect: Deny, On: OnResource, When: expr, Message: "m"}}})
			prg := whenProgram(t, p)
			if prg.fast == nil {
				t.Fatal("not bounded")
			}
			big := strings.Repeat("P", 1<<20)
			s := newState(testRequest(), testToken(), testDecision(), fixedNow)
			defer s.release()
			s.resource = types.NewStringInterfaceMap(types.DefaultTypeAdapter, map[string]any{
				"resourceType": big, "id": big, "meta": map[string]any{"x": big},
				"subject": map[string]any{"reference": "Patient/" + big}})
			s.phase = types.String("read")
			_, det, err := prg.prg.Eval(s)
			if err != nil {
				t.Fatal(err)
			}
			ast, _ := p.resEnv.Compile(expr)
			est, err := p.resEnv.EstimateCost(ast, &boundsEstimator{})
			if err != nil {
				t.Fatal(err)
			}
			if *det.ActualCost() > est.Max {
				t.Errorf("actual cost %d over the bounds estimate %d", *det.ActualCost(), est.Max)
			}
		})
	}
}
