package celpolicy

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// FuzzParseFile feeds the policy-file parser arbitrary YAML: it must never
// panic, and every rule it returns must either compile or fail with an
// error, never a partial policy.
func FuzzParseFile(f *testing.F) {
	if data, err := os.ReadFile(exampleFile); err == nil {
		f.Add(data)
	}
	for _, seed := range []string{policyA, policyB, broken, "", "rules: []", "version: 1\nrules: []\n",
		"rules:\n  - name: x\n    effect: deny\n    when: |\n      true\n    message: m\n",
		"rules:\n  - name: x\n    effect: deny\n    when: \"a\\n b\"\n    message: m\n",
		"rules: [{name: a, effect: require, when: 'token.allows(\"Patient\", \"r\")', message: m}]",
		"rules:\n  - &a {name: a}\n  - *a\n", "rules: !!map {}", "---\n...\n"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, err := ParseFile(data, "fuzz.yaml")
		if err != nil {
			if rules != nil {
				t.Fatal("rules returned with an error")
			}
			return
		}
		p, err := New(Config{Rules: rules, Logger: discardLogger()})
		if err != nil {
			if p != nil {
				t.Fatal("policy returned with an error")
			}
			var ce *CompileError
			if !errors.As(err, &ce) || ce.File != "fuzz.yaml" || ce.Line == 0 {
				t.Fatalf("compile error without file and position: %v", err)
			}
			return
		}
		_ = p.AuthorizeRequest(testRequest(), testToken(), testDecision())
	})
}

// FuzzParseReference checks that references parse without panics and that
// what they return is a known type and a valid id, or nothing.
func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"Patient/1", "Patient/1/_history/2", "https://x/fhir/Observation/o", "#c", "urn:uuid:1",
		"Patient?x=1", "Patient/../1", "/Patient/1", "Patient/1/", "a/b/c/d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		typ, id := parseReference(ref)
		if (typ == "") != (id == "") {
			t.Fatalf("%q: half a result %q %q", ref, typ, id)
		}
		if typ == "" {
			return
		}
		if !validID(id) || !strings.Contains(ref, typ+"/"+id) {
			t.Fatalf("%q: bad result %q %q", ref, typ, id)
		}
		if strings.HasPrefix(ref, "/") || strings.ContainsAny(ref, "?# ") {
			t.Fatalf("%q accepted", ref)
		}
	})
}
