package celpolicy

import (
	"context"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/google/cel-go/cel"

	"github.com/fhirguard/fhirguard/fhirrest"
	"github.com/fhirguard/fhirguard/middleware"
	"github.com/fhirguard/fhirguard/scope"
)

// The four typical rules measured in the project's research notes.
var typicalRules = []struct{ name, expr string }{
	{"E1-method-and-scope-prefix", `request.method == 'GET' && token.scopes.exists(s, s.startsWith('patient/'))`},
	{"E2-type-and-patient-param", `request.resourceType in ['Patient','Observation'] && token.patient == request.query['patient'][0]`},
	{"E3-hours", `now.getHours() >= 7 && now.getHours() < 19`},
	{"E4-scope-strings", `('patient/' + request.resourceType + '.rs') in token.scopes || ('patient/' + request.resourceType + '.read') in token.scopes`},
}

func benchInputs() (*middleware.Token, *middleware.Decision) {
	tok := &middleware.Token{
		Subject: "u1", ClientID: "app", Issuer: "https://as.example.org", Patient: "123",
		Scopes: scope.Compile(scope.ParseSet("launch/patient openid fhirUser patient/Observation.rs patient/Patient.read")),
		Expiry: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		Claims: map[string]any{"tenant": "t1"},
	}
	d := &middleware.Decision{
		Interaction: fhirrest.Interaction{Kind: fhirrest.SearchType, Method: "GET", ResourceType: "Observation",
			Query: url.Values{"patient": {"123"}, "code": {"1234-5"}}},
		Context: scope.Patient, CompartmentType: "Patient", CompartmentID: "123",
	}
	return tok, d
}

// BenchmarkTypicalRules evaluates each typical rule through AuthorizeRequest:
//
//   - costlimit: the default configuration, with the runtime cost limit. The
//     four rules are proven bounded, so requests within the input bounds run
//     without CEL's cost tracking;
//   - costlimit-tracked: the same with the bounded path disabled, as for a
//     rule that cannot be proven bounded or a request beyond the bounds
//     (CEL's runtime cost tracking);
//   - nolimit: InsecureNoCostLimit.
func BenchmarkTypicalRules(b *testing.B) {
	tok, d := benchInputs()
	noon := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	// A server's request context can be cancelled, which makes a context
	// derived from it cost more than one derived from Background.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := httptest.NewRequestWithContext(ctx, "GET", "/Observation?patient=123&code=1234-5", nil)
	for _, limit := range []struct {
		name     string
		insecure bool
		tracked  bool
	}{{"costlimit", false, false}, {"costlimit-tracked", false, true}, {"nolimit", true, false}} {
		for _, tr := range typicalRules {
			b.Run(tr.name+"/"+limit.name, func(b *testing.B) {
				p, err := New(Config{
					Rules:               []Rule{{Name: "r", Effect: Require, When: tr.expr, Message: "no"}},
					InsecureNoCostLimit: limit.insecure,
					Now:                 func() time.Time { return noon },
				})
				if err != nil {
					b.Fatal(err)
				}
				if when := p.cur.Load().request[0].when; limit.tracked {
					when.fast = nil
				} else if !limit.insecure && when.fast == nil {
					b.Fatal("typical rule not proven bounded")
				}
				if err := p.AuthorizeRequest(r, tok, d); err != nil {
					b.Fatalf("rule should allow: %v", err)
				}
				b.ReportAllocs()
				cpu := processCPU()
				for b.Loop() {
					if err := p.AuthorizeRequest(r, tok, d); err != nil {
						b.Fatal(err)
					}
				}
				reportCPU(b, cpu)
			})
		}
	}
}

// reportCPU reports the process CPU time per operation since start, a
// steadier measure than the wall time when other work shares the machine.
func reportCPU(b *testing.B, start time.Duration) {
	if end := processCPU(); end > start && b.N > 0 {
		b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkBaselineMapActivation is the baseline the policy activation is
// measured against: the same rules over map(string, dyn) variables built
// for every request, the plain way of feeding CEL.
func BenchmarkBaselineMapActivation(b *testing.B) {
	tok, d := benchInputs()
	noon := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	env, err := cel.NewEnv(
		cel.Variable("request", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("token", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("now", cel.TimestampType),
	)
	if err != nil {
		b.Fatal(err)
	}
	for _, tr := range typicalRules {
		for _, tracked := range []bool{false, true} {
			name := tr.name
			opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
			if tracked {
				name += "/tracked"
				opts = append(opts, cel.CostLimit(1_000_000))
			}
			b.Run(name, func(b *testing.B) {
				a, iss := env.Compile(tr.expr)
				if iss.Err() != nil {
					b.Fatal(iss.Err())
				}
				prg, err := env.Program(a, opts...)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					scopes := make([]string, 0, 5)
					for _, sc := range tok.Scopes.Set().Scopes() {
						scopes = append(scopes, sc.String())
					}
					vars := map[string]any{
						"request": map[string]any{
							"method":       d.Interaction.Method,
							"resourceType": d.Interaction.ResourceType,
							"query":        map[string][]string(d.Interaction.Query),
						},
						"token": map[string]any{
							"patient": tok.Patient,
							"scopes":  scopes,
						},
						"now": noon,
					}
					out, _, err := prg.Eval(vars)
					if err != nil || out != celTrue {
						b.Fatal(out, err)
					}
				}
			})
		}
	}
}

// BenchmarkCompile is the cost New pays once per rule, never per request.
func BenchmarkCompile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_, err := New(Config{Rules: []Rule{{Name: "r", Effect: Require, When: typicalRules[1].expr, Message: "no"}}})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// TestNoCompilePerRequest checks that a request does not compile or plan
// anything: a compilation costs thousands of allocations, an evaluation of
// a typical rule a handful.
func TestNoCompilePerRequest(t *testing.T) {
	tok, d := benchInputs()
	r := httptest.NewRequest("GET", "/Observation?patient=123", nil)
	for _, tr := range typicalRules {
		t.Run(tr.name, func(t *testing.T) {
			p := newTestPolicy(t, Config{Rules: []Rule{{Name: "r", Effect: Require, When: tr.expr, Message: "no"},
				{Name: "r2", Effect: Deny, When: "!(" + tr.expr + ")", Message: "no"}}})
			var err error
			allocs := testing.AllocsPerRun(100, func() { err = p.AuthorizeRequest(r, tok, d) })
			if err != nil {
				t.Fatal(err)
			}
			if allocs > 30 {
				t.Errorf("%v allocations per request", allocs)
			}
		})
	}
}

// BenchmarkExampleFile runs the request rules of the example policy file
// (four rules, some matching) and its resource rule on one resource.
func BenchmarkExampleFile(b *testing.B) {
	tok, d := benchInputs()
	tok.Tenant = "acme"
	r := httptest.NewRequest("GET", "/Observation?patient=123&code=1234-5", nil)
	r.Header.Set("X-Tenant", "acme")
	p, err := New(Config{File: exampleFile, Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("request", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := p.AuthorizeRequest(r, tok, d); err != nil {
				b.Fatal(err)
			}
		}
	})
	res := map[string]any{"resourceType": "Observation", "id": "o1",
		"meta":    map[string]any{"security": []any{map[string]any{"code": "N"}}},
		"subject": map[string]any{"reference": "Patient/123"}}
	b.Run("resource", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := p.AuthorizeResource(r, tok, d, middleware.ResourceRead, res); err != nil {
				b.Fatal(err)
			}
		}
	})
}
