package celpolicy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	// Write and rename, as deployment tools replace files, so that a
	// watcher never sees a half-written file.
	path := filepath.Join(dir, name)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCompileErrorsInFile checks that a broken rule is a start-up error
// naming the file, the rule and the line and column of the problem.
func TestCompileErrorsInFile(t *testing.T) {
	cases := []struct {
		name     string
		yaml     string
		sentinel error
		rule     string
		line     int
		col      int
		contains string
	}{
		{
			name:     "undeclared variable plain",
			yaml:     "rules:\n  - name: a\n    effect: deny\n    when: tokn.sub == ''\n    message: m\n",
			sentinel: errCompile, rule: "a", line: 4, col: 11, contains: "undeclared reference",
		},
		{
			name:     "unknown field",
			yaml:     "rules:\n  - name: b\n    effect: deny\n    when: request.methd == 'GET'\n    message: m\n",
			sentinel: errCompile, rule: "b", line: 4, col: 18, contains: "methd",
		},
		{
			name:     "double quoted",
			yaml:     "rules:\n  - name: c\n    effect: deny\n    when: \"request.method == 1\"\n    message: m\n",
			sentinel: errCompile, rule: "c", line: 4, col: 27, contains: "no matching overload",
		},
		{
			name:     "literal block second line",
			yaml:     "rules:\n  - name: d\n    effect: deny\n    when: |\n      request.method == 'GET' &&\n        token.nope\n    message: m\n",
			sentinel: errCompile, rule: "d", line: 6, col: 14, contains: "nope",
		},
		{
			name:     "syntax error in match",
			yaml:     "rules:\n  - name: e\n    effect: deny\n    match: request.method ==\n    when: true\n    message: m\n",
			sentinel: errCompile, rule: "e", line: 4, contains: "match",
		},
		{
			name:     "not bool",
			yaml:     "rules:\n  - name: f\n    effect: require\n    when: token.claims.admin\n    message: m\n",
			sentinel: errCompile, rule: "f", line: 4, col: 11, contains: "bool",
		},
		{
			name:     "resource in request rule",
			yaml:     "rules:\n  - name: g\n    effect: deny\n    when: resource.resourceType == 'Patient'\n    message: m\n",
			sentinel: errCompile, rule: "g", line: 4, col: 11, contains: "resource",
		},
		{
			name:     "bad scope constant",
			yaml:     "rules:\n  - name: h\n    effect: require\n    when: token.hasScope('patient/Observation.xyz')\n    message: m\n",
			sentinel: errCompile, rule: "h", line: 4, col: 26, contains: "hasScope",
		},
		{
			name:     "bad letters constant",
			yaml:     "rules:\n  - name: i\n    effect: require\n    when: token.allows('Observation', 'sr')\n    message: m\n",
			sentinel: errCompile, rule: "i", line: 4, col: 39, contains: "order",
		},
		{
			name:     "unknown type constant",
			yaml:     "rules:\n  - name: j\n    effect: require\n    when: token.allows('Observaton', 'r')\n    message: m\n",
			sentinel: errCompile, rule: "j", line: 4, col: 24, contains: "Observaton",
		},
		{
			name:     "bad context constant",
			yaml:     "rules:\n  - name: k\n    effect: require\n    when: token.allows('admin', 'Observation', 'r')\n    message: m\n",
			sentinel: errCompile, rule: "k", line: 4, col: 24, contains: "context",
		},
		{
			name:     "unknown zone constant",
			yaml:     "rules:\n  - name: l\n    effect: require\n    when: now.getHours('Europe/Berln') > 1\n    message: m\n",
			sentinel: errCompile, rule: "l", line: 4, col: 24, contains: "Berln",
		},
		{
			name:     "cost too high",
			yaml:     "rules:\n  - name: m\n    effect: deny\n    on: resource\n    when: resource.entry.exists(a, resource.entry.exists(b, resource.entry.exists(c, a == c)))\n    message: m\n",
			sentinel: errCostTooHigh, rule: "m", line: 5, col: 11, contains: "cost",
		},
		{
			name:     "bad effect",
			yaml:     "rules:\n  - name: n\n    effect: allow\n    when: true\n    message: m\n",
			sentinel: errInvalidPolicy, rule: "n", line: 3, col: 13, contains: "effect",
		},
		{
			name:     "bad on",
			yaml:     "rules:\n  - name: o\n    effect: deny\n    on: response\n    when: true\n    message: m\n",
			sentinel: errInvalidPolicy, rule: "o", line: 4, col: 9, contains: "on",
		},
		{
			name:     "missing when",
			yaml:     "rules:\n  - name: p\n    effect: deny\n    message: m\n",
			sentinel: errInvalidPolicy, rule: "p", line: 2, col: 5, contains: "when",
		},
		{
			name:     "missing message",
			yaml:     "rules:\n  - name: q\n    effect: deny\n    when: 'true'\n",
			sentinel: errInvalidPolicy, rule: "q", line: 2, col: 5, contains: "message",
		},
		{
			name:     "duplicate name",
			yaml:     "rules:\n  - name: r\n    effect: deny\n    when: 'false'\n    message: m\n  - name: r\n    effect: deny\n    when: 'false'\n    message: m\n",
			sentinel: errInvalidPolicy, rule: "r", line: 6, col: 11, contains: "duplicate",
		},
		{
			name:     "bad name",
			yaml:     "rules:\n  - name: a rule\n    effect: deny\n    when: 'false'\n    message: m\n",
			sentinel: errInvalidPolicy, rule: "a rule", line: 2, col: 11, contains: "name",
		},
		{
			name:     "unknown key",
			yaml:     "rules:\n  - name: s\n    effect: deny\n    whenn: 'false'\n    message: m\n",
			sentinel: errInvalidPolicy, line: 4, col: 5, contains: "whenn",
		},
		{
			name:     "unknown top key",
			yaml:     "rule:\n  - name: s\n",
			sentinel: errInvalidPolicy, line: 1, col: 1, contains: "rule",
		},
		{
			name:     "bad version",
			yaml:     "version: 2\nrules: []\n",
			sentinel: errInvalidPolicy, line: 1, col: 10, contains: "version",
		},
		{
			name:     "empty file",
			yaml:     "",
			sentinel: errInvalidPolicy, contains: "empty",
		},
		{
			name:     "no rules key",
			yaml:     "version: 1\n",
			sentinel: errInvalidPolicy, line: 1, col: 1, contains: "missing rules",
		},
		{
			name:     "rules not a list",
			yaml:     "rules: {}\n",
			sentinel: errInvalidPolicy, line: 1, col: 8, contains: "list",
		},
		{
			name:     "not yaml",
			yaml:     "rules: [\n",
			sentinel: errInvalidPolicy, contains: "YAML",
		},
		{
			name:     "two documents",
			yaml:     "rules: []\n---\nrules: []\n",
			sentinel: errInvalidPolicy, line: 2, contains: "more than one",
		},
		{
			name:     "expression not a string",
			yaml:     "rules:\n  - name: t\n    effect: deny\n    when: [a]\n    message: m\n",
			sentinel: errInvalidPolicy, line: 4, col: 11, contains: "string",
		},
		{
			name:     "null value",
			yaml:     "rules:\n  - name: u\n    effect: deny\n    when:\n    message: m\n",
			sentinel: errInvalidPolicy, line: 4, contains: "string",
		},
	}
	dir := t.TempDir()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml", tc.yaml)
			_, err := New(Config{File: path})
			if err == nil {
				t.Fatal("New succeeded")
			}
			if !isKind(err, tc.sentinel) {
				t.Errorf("error %v does not wrap %v", err, tc.sentinel)
			}
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *CompileError: %v", err, err)
			}
			if ce.File != path {
				t.Errorf("File = %q, want %q", ce.File, path)
			}
			if tc.rule != "" && ce.Rule != tc.rule {
				t.Errorf("Rule = %q, want %q", ce.Rule, tc.rule)
			}
			if tc.line != 0 && ce.Line != tc.line {
				t.Errorf("Line = %d, want %d (%v)", ce.Line, tc.line, err)
			}
			if tc.col != 0 && ce.Column != tc.col {
				t.Errorf("Column = %d, want %d (%v)", ce.Column, tc.col, err)
			}
			if !strings.Contains(err.Error(), tc.contains) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q should name %q and the file", err, tc.contains)
			}
		})
	}
}

// TestCompileErrorsInGo checks errors of rules built in Go: positions are
// within the expression, and every broken rule is reported.
func TestCompileErrorsInGo(t *testing.T) {
	_, err := New(Config{Rules: []Rule{
		{Name: "ok", Effect: Deny, When: "false", Message: "m"},
		{Name: "bad1", Effect: Deny, When: "request.nope", Message: "m"},
		{Name: "bad2", Effect: Require, When: "true", Match: "1 + ", Message: "m"},
	}})
	if err == nil {
		t.Fatal("New succeeded")
	}
	msg := err.Error()
	for _, want := range []string{`rule "bad1": when`, `1:8:`, `rule "bad2": match`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if strings.Contains(msg, `"ok"`) {
		t.Errorf("error names the good rule: %q", msg)
	}
	if _, err := New(Config{}); !isKind(err, errInvalidPolicy) {
		t.Errorf("New(Config{}) = %v, want ErrInvalidPolicy", err)
	}
	if _, err := New(Config{File: filepath.Join(t.TempDir(), "missing.yaml")}); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// TestCostEstimateLimit checks the compile-time limit and that raising it
// admits the rule.
func TestCostEstimateLimit(t *testing.T) {
	expr := `resource.entry.exists(a, resource.entry.exists(b, a == b))`
	rule := Rule{Name: "nested", Effect: Deny, On: OnResource, When: expr, Message: "m"}
	if _, err := New(Config{Rules: []Rule{rule}, MaxEstimatedCost: 10_000}); !isKind(err, errCostTooHigh) {
		t.Fatalf("small limit: %v, want ErrCostTooHigh", err)
	}
	if _, err := New(Config{Rules: []Rule{rule}, MaxEstimatedCost: 1_000_000_000}); err != nil {
		t.Fatalf("large limit: %v", err)
	}
	if _, err := New(Config{Rules: []Rule{rule}, AssumedMaxSize: 10, MaxEstimatedCost: 10_000}); err != nil {
		t.Fatalf("small assumed size: %v", err)
	}
}

// TestConstantArguments checks every place where a constant names a scope
// or a resource type: a bad constant is a compile error that names the
// function or field, the constant and its column; good ones compile.
func TestConstantArguments(t *testing.T) {
	cases := []struct {
		expr     string
		resource bool   // an on: resource rule
		want     string // "" compiles; else the error names this and the constant
		col      int
	}{
		// hasScope: the SMART scope grammar, with known resource types.
		{expr: `token.hasScope('patient/Observation.rs')`},
		{expr: `token.hasScope('patient/Patient.read') || token.hasScope('user/*.cruds')`},
		{expr: `token.hasScope('user/Encounter.rs?status=finished')`},
		{expr: `token.hasScope('launch/patient') && token.hasScope('openid') && token.hasScope('offline_access')`},
		{expr: `token.hasScope('https://example.org/custom-scope')`}, // an extension scope
		{expr: `token.hasScope('patient/Obs.rs')`, want: `hasScope: scope: unknown resource type: "Obs"`, col: 16},
		{expr: `token.hasScope('patient/Observation.xyz')`, want: "hasScope", col: 16},
		{expr: `token.hasScope('patient/Observation')`, want: "hasScope", col: 16},
		{expr: `token.hasScope('Patient/Observation.rs')`, want: "hasScope", col: 16},
		{expr: `token.hasScope('patient/Observation.read?code=x')`, want: "hasScope", col: 16},
		{expr: `token.hasScope('')`, want: "hasScope", col: 16},
		// allows: context, type and letters.
		{expr: `token.allows('Observation', 'rs') && token.allows('system', 'Patient', 'cruds')`},
		{expr: `token.allows('Obs', 'r')`, want: `allows: unknown resource type "Obs"`, col: 14},
		{expr: `token.allows('Observation', 'x')`, want: "allows", col: 29},
		{expr: `token.allows('patients', 'Observation', 'r')`, want: `allows: celpolicy: scope context must be patient, user or system, not "patients"`, col: 14},
		{expr: `token.allows('user', 'Encountre', 'r')`, want: `allows: unknown resource type "Encountre"`, col: 22},
		// Values that hold a resource type, compared with ==, != or in.
		{expr: `request.resourceType == 'Observation' || request.resourceType == ''`},
		{expr: `request.resourceType in ['Patient', 'Observation'] && request.compartmentType != 'Encounter'`},
		{expr: `refType(token.fhirUser) in ['Practitioner', 'PractitionerRole']`},
		{expr: `token.fhirContext.exists(c, c.type == 'Questionnaire')`},
		{expr: `request.path != 'Foo' && request.query.exists(k, k == 'Obs')`}, // not closed sets
		// Interaction codes and methods, compared with == , != or in.
		{expr: `request.interaction in ['read', 'vread', 'search-type', 'history-instance'] || request.interaction == ''`},
		{expr: `request.interaction == 'operation' && request.method in ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']`},
		{expr: `request.interaction == 'reed'`, want: `request.interaction: unknown interaction "reed"`, col: 24},
		{expr: `request.interaction in ['read', 'search']`, want: `request.interaction: unknown interaction "search"`, col: 33},
		{expr: `'Read' != request.interaction`, want: `request.interaction: unknown interaction "Read"`, col: 1},
		{expr: `request.method == 'get'`, want: `request.method: unknown method`, col: 19},
		{expr: `request.method in ['GET', 'HEAD']`, want: `request.method: unknown method`, col: 27},
		{expr: `request.resourceType == 'Obs'`, want: `request.resourceType: unknown resource type "Obs"`, col: 25},
		{expr: `'Obs' != request.resourceType`, want: `request.resourceType: unknown resource type "Obs"`, col: 1},
		{expr: `request.resourceType in ['Patient', 'Observaton']`, want: `request.resourceType: unknown resource type "Observaton"`, col: 37},
		{expr: `request.compartmentType == 'patient'`, want: `request.compartmentType: unknown resource type "patient"`, col: 28},
		{expr: `refType(token.fhirUser) == 'Practioner'`, want: `refType(): unknown resource type "Practioner"`, col: 28},
		{expr: `token.fhirContext.exists(c, c.type == 'Questionaire')`, want: `fhirContext type: unknown resource type "Questionaire"`, col: 39},
		{expr: `resource.resourceType == 'Patient'`, resource: true},
		{expr: `resource.resourceType in ['Bundle', 'Obs']`, resource: true, want: `resource.resourceType: unknown resource type "Obs"`, col: 37},
	}
	for _, tc := range cases {
		t.Run(tc.expr, func(t *testing.T) {
			r := Rule{Name: "r", Effect: Require, When: tc.expr, Message: "m"}
			if tc.resource {
				r.On = OnResource
			}
			_, err := New(Config{Rules: []Rule{r}})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("does not compile: %v", err)
				}
				return
			}
			var ce *CompileError
			if !errors.As(err, &ce) || ce.kind != errCompile {
				t.Fatalf("got %v, want a compile error", err)
			}
			if !strings.Contains(ce.Message, tc.want) {
				t.Errorf("message %q does not contain %q", ce.Message, tc.want)
			}
			if ce.Line != 1 || ce.Column != tc.col {
				t.Errorf("position %d:%d, want 1:%d", ce.Line, ce.Column, tc.col)
			}
		})
	}
}
