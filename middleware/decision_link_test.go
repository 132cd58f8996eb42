package middleware

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/fhirguard/fhirguard/fhirrest"
	"github.com/fhirguard/fhirguard/scope"
)

// decisionSays reports whether d is the Decision of a read of
// Observation/id: a kept Decision must still say so after other requests.
func decisionSays(d *Decision, id string) error {
	if d == nil {
		return fmt.Errorf("no decision")
	}
	if d.Interaction.Kind != fhirrest.Read || d.Interaction.ResourceType != "Observation" || d.Interaction.ID != id {
		return fmt.Errorf("decision of %s/%s (%v), want Observation/%s", d.Interaction.ResourceType, d.Interaction.ID, d.Interaction.Kind, id)
	}
	return nil
}

// linkStacks are the two ways a request context gets a decision link: the
// Authenticator's context, and newContextWithToken's (Authorize alone).
// Each returns a function serving a system read of Observation/id through
// Authorize configured by mod, in front of next.
func linkStacks(t *testing.T) map[string]func(mod func(*AuthorizeConfig), next http.Handler) func(id string) int {
	t.Helper()
	mk := func(mod func(*AuthorizeConfig)) *authorizer { return newHarness(t, mod).authz }
	return map[string]func(func(*AuthorizeConfig), http.Handler) func(string) int{
		"newContextWithToken": func(mod func(*AuthorizeConfig), next http.Handler) func(string) int {
			h := withToken(token("system/*.rs", ""), mk(mod).Handler(next))
			return func(id string) int {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, testBase+"/Observation/"+id, nil))
				return rec.Code
			}
		},
		"Authenticate": func(mod func(*AuthorizeConfig), next http.Handler) func(string) int {
			claims := validClaims()
			claims["scope"] = "system/*.rs"
			delete(claims, "patient")
			tok := keyRS.token(claims, nil)
			h := newAuth(t, baseConfig(t)).Handler(mk(mod).Handler(next))
			return func(id string) int {
				r := httptest.NewRequest(http.MethodGet, testBase+"/Observation/"+id, nil)
				r.Header.Set("Authorization", "Bearer "+tok)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				return rec.Code
			}
		},
	}
}

// otherReads are reads run after the one under test, so that recycled
// Decisions are overwritten.
var otherReads = []string{"vs1", "lab1", "mixed123", "vs1", "b2"}

func idOf(r *http.Request) string {
	return strings.TrimPrefix(r.URL.Path, "/fhir/Observation/")
}

// TestDecisionKeptAfterTheRequest: a Decision the handler, a policy or an
// OnDecision hook obtained stays its request's, whatever runs after, and
// the context the handler kept still answers with it.
func TestDecisionKeptAfterTheRequest(t *testing.T) {
	for name, stack := range linkStacks(t) {
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			kept := map[string]*Decision{}
			keep := func(who string, d *Decision) {
				mu.Lock()
				defer mu.Unlock()
				if _, ok := kept[who]; !ok {
					kept[who] = d
				}
			}
			var ctx context.Context
			serve := stack(func(c *AuthorizeConfig) {
				c.Policies = []Policy{policyFunc(func(_ *http.Request, _ *Token, d *Decision) error {
					keep("policy", d)
					return nil
				})}
				c.OnDecision = func(_ *http.Request, d *Decision, _ error) { keep("hook", d) }
			}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if ctx == nil {
					ctx = r.Context()
					d, _ := DecisionFromContext(ctx)
					keep("handler", d)
				}
			}))
			if code := serve("a1"); code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			for _, id := range otherReads {
				serve(id)
			}
			for _, who := range []string{"handler", "policy", "hook"} {
				if err := decisionSays(kept[who], "a1"); err != nil {
					t.Errorf("%s: %v", who, err)
				}
			}
			later, _ := DecisionFromContext(ctx)
			if err := decisionSays(later, "a1"); err != nil || later != kept["handler"] {
				t.Errorf("the kept context, after the request: %v (the same Decision: %v)", err, later == kept["handler"])
			}
		})
	}
}

// TestDecisionUnaskedContext: a context kept after its request without
// asking for the Decision during it answers no Decision afterwards (never
// that of a later request, whose recycled memory it would be), and still
// its token.
func TestDecisionUnaskedContext(t *testing.T) {
	for name, stack := range linkStacks(t) {
		t.Run(name, func(t *testing.T) {
			var ctxs []context.Context
			serve := stack(nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctxs = append(ctxs, r.Context())
			}))
			serve("a1")
			for _, id := range otherReads {
				serve(id)
			}
			if len(ctxs) != 1+len(otherReads) {
				t.Fatalf("%d requests reached the handler, want %d", len(ctxs), 1+len(otherReads))
			}
			for i, ctx := range ctxs {
				if d, ok := DecisionFromContext(ctx); ok || d != nil {
					t.Errorf("kept context %d: decision %+v", i, d)
				}
				if tk, ok := TokenFromContext(ctx); !ok || !tk.Scopes.HasContext(scope.System) {
					t.Errorf("kept context %d lost its token", i)
				}
			}
		})
	}
}

// TestDecisionAskedFromAnotherGoroutine: a goroutine the handler starts
// asks for the Decision while the request ends: it gets the request's own
// Decision or, once the request has ended without publishing it, nothing;
// never another's. Under -race this is also the link's race test.
func TestDecisionAskedFromAnotherGoroutine(t *testing.T) {
	for name, stack := range linkStacks(t) {
		t.Run(name, func(t *testing.T) {
			var wg sync.WaitGroup
			errs := make(chan error, 100)
			serve := stack(nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctx, id := r.Context(), idOf(r)
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 20 {
						if d, ok := DecisionFromContext(ctx); ok {
							if err := decisionSays(d, id); err != nil {
								errs <- err
								return
							}
						}
					}
				}()
			}))
			for range 20 {
				for _, id := range otherReads {
					serve(id)
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// TestDecisionReusedContext: a token context used for a second request
// (its link already took the first one's Decision) still gets that
// request's own Decision.
func TestDecisionReusedContext(t *testing.T) {
	a := newHarness(t, nil).authz
	ctx := newContextWithToken(context.Background(), token("system/*.rs", ""))
	var got []*Decision
	h := a.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, _ := DecisionFromContext(r.Context())
		got = append(got, d)
	}))
	for _, id := range []string{"a1", "b2"} {
		r := httptest.NewRequest(http.MethodGet, testBase+"/Observation/"+id, nil).WithContext(ctx)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	if len(got) != 2 {
		t.Fatalf("%d requests reached the handler", len(got))
	}
	for i, id := range []string{"a1", "b2"} {
		if err := decisionSays(got[i], id); err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
}

type policyFunc func(*http.Request, *Token, *Decision) error

func (f policyFunc) AuthorizeRequest(r *http.Request, t *Token, d *Decision) error { return f(r, t, d) }

// TestDecisionLinkPublishOrRecycle: whichever of a publish and the end of
// the request comes first, a Decision handed out is never recycled (detach
// reports it published), and a recycled one is never handed out afterwards.
func TestDecisionLinkPublishOrRecycle(t *testing.T) {
	for i := range 2000 {
		var l decisionLink
		d := &Decision{Rule: "mine"}
		if !l.attach(d) {
			t.Fatal("a fresh link refused its Decision")
		}
		start := make(chan struct{})
		got := make(chan *Decision, 1)
		go func() {
			<-start
			got <- l.publish()
		}()
		close(start)
		kept := l.detach(d)
		g := <-got
		if g != nil && (g != d || !kept) {
			t.Fatalf("round %d: handed out %p (the Decision %p), detach reported published %v", i, g, d, kept)
		}
		if after := l.publish(); (after != nil) != kept {
			t.Fatalf("round %d: after the request the link answers %p, published %v", i, after, kept)
		}
		if l.attach(&Decision{}) {
			t.Fatalf("round %d: an ended link took another Decision", i)
		}
	}
}
