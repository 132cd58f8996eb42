package celpolicy_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"

	"github.com/fhirguard/fhirguard/celpolicy"
	"github.com/fhirguard/fhirguard/middleware"
	"github.com/fhirguard/fhirguard/scope"
)

// Rules built in Go; a policy file (Config.File) works the same way.
func ExampleNew() {
	p, err := celpolicy.New(celpolicy.Config{
		Rules: []celpolicy.Rule{{
			Name:    "tenant",
			Effect:  celpolicy.Require,
			Match:   "token.tenant != ''",
			When:    "'x-tenant' in request.headers && request.headers['x-tenant'] == token.tenant",
			Message: "The token is not valid for this tenant.",
		}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	tok := &middleware.Token{Subject: "u1", Tenant: "acme"}
	for _, tenant := range []string{"acme", "other"} {
		r := httptest.NewRequest("GET", "/fhir/Patient/123", nil)
		r.Header.Set("X-Tenant", tenant)
		err := p.AuthorizeRequest(r, tok, nil)
		var denial *middleware.PolicyDenial
		switch {
		case err == nil:
			fmt.Println(tenant, "allowed")
		case errors.As(err, &denial):
			fmt.Printf("%s denied by %s: %s\n", tenant, denial.Rule, denial.Message)
		}
	}
	// Output:
	// acme allowed
	// other denied by tenant: The token is not valid for this tenant.
}

// A broken rule is a start-up error naming the file or rule and position.
func ExampleNew_compileError() {
	_, err := celpolicy.New(celpolicy.Config{Rules: []celpolicy.Rule{
		{Name: "typo", Effect: celpolicy.Deny, When: "request.methd == 'DELETE'", Message: "no"},
	}})
	fmt.Println(err)
	// Output:
	// 1:8: rule "typo": when: undefined field 'methd'
}

// The server registers its own typed Go function, here a care-team look-up,
// and rules call it.
func ExampleConfig_envOptions() {
	careTeams := map[string][]string{"Practitioner/7": {"123"}}
	inCareTeam := cel.Function("inCareTeam",
		cel.Overload("in_care_team_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
			cel.BinaryBinding(func(user, patient ref.Val) ref.Val {
				for _, p := range careTeams[string(user.(types.String))] {
					if types.String(p) == patient {
						return types.True
					}
				}
				return types.False
			})))
	p, err := celpolicy.New(celpolicy.Config{
		EnvOptions: []cel.EnvOption{inCareTeam},
		Rules: []celpolicy.Rule{{
			Name: "care-team", Effect: celpolicy.Require,
			Match:   "request.context == 'user' && request.compartmentType == 'Patient'",
			When:    "inCareTeam(token.fhirUser, request.compartmentId)",
			Message: "Not in the patient's care team.",
		}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	tok := &middleware.Token{FHIRUser: "Practitioner/7"}
	for _, patient := range []string{"123", "456"} {
		d := &middleware.Decision{Context: scope.User, CompartmentType: "Patient", CompartmentID: patient}
		err := p.AuthorizeRequest(httptest.NewRequest("GET", "/fhir/Patient/"+patient+"/Observation", nil), tok, d)
		fmt.Println(patient, err == nil)
	}
	// Output:
	// 123 true
	// 456 false
}

// How an enforcement point uses a Policy: after scopes, before the handler.
// (a middleware.Guard does this and renders the OperationOutcome; this
// sketch only shows the calls.)
func Example_handler() {
	p, err := celpolicy.New(celpolicy.Config{
		File:   "../examples/policies/example.yaml",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:    func() time.Time { return time.Date(2026, 1, 5, 21, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	tok := &middleware.Token{Subject: "u1", Tenant: "acme",
		Scopes: scope.Compile(scope.ParseSet("user/Observation.rs"))}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var denial *middleware.PolicyDenial
		if err := p.AuthorizeRequest(r, tok, nil); errors.As(err, &denial) {
			http.Error(w, denial.Message, http.StatusForbidden)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	for _, tenant := range []string{"acme", "other"} {
		r := httptest.NewRequest("GET", "/fhir/Observation?patient=123", nil)
		r.Header.Set("X-Tenant", tenant)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Print(w.Code, " ", w.Body.String())
	}
	// Output:
	// 200 ok
	// 403 The token is not valid for this tenant.
}

// Reload the policy file on SIGHUP and when it changes; a file that does
// not compile keeps the rules in force. Close stops watching.
func ExampleConfig_watch() {
	dir, err := os.MkdirTemp("", "policies")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "policies.yaml")
	err = os.WriteFile(path, []byte(`rules:
  - name: no-deletes
    effect: deny
    when: request.method == 'DELETE'
    message: Deletes are disabled.
`), 0o600)
	if err != nil {
		log.Fatal(err)
	}
	reloaded := make(chan error, 1)
	p, err := celpolicy.New(celpolicy.Config{
		File: path,
		Watch: celpolicy.WatchConfig{
			Signals:  []os.Signal{syscall.SIGHUP},
			Interval: 10 * time.Millisecond,
			OnReload: func(err error) { reloaded <- err },
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		log.Fatal(err) // a broken rule: file, line, column and rule name
	}
	defer p.Close()

	del := httptest.NewRequest("DELETE", "/fhir/Observation/1", nil)
	fmt.Println("delete denied:", p.AuthorizeRequest(del, nil, nil) != nil)
	// An operator allows deletes again.
	if err := os.WriteFile(path, []byte("rules: []\n"), 0o600); err != nil {
		log.Fatal(err)
	}
	fmt.Println("reload error:", <-reloaded)
	fmt.Println("delete denied:", p.AuthorizeRequest(del, nil, nil) != nil)
	// Output:
	// delete denied: true
	// reload error: <nil>
	// delete denied: false
}

func ExampleParseFile() {
	rules, err := celpolicy.ParseFile([]byte(`
rules:
  - name: no-deletes
    effect: deny
    match: request.interaction == 'delete'
    when: "true"
    message: Deletes are disabled.
`), "policies.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range rules {
		fmt.Println(r.Name, r.Effect, r.When)
	}
	// Output:
	// no-deletes deny true
}
