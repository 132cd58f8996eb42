package scope

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// Issue "Enforcement hardening II" §6: rules of the package that no test
// defended. Each test was seen to fail with the rule it defends mutated
// away.

// TestRulesUnknownTypeGrantsNothing: a resource scope that names a type
// FHIR does not define (an unknown name, or a known one in another case)
// parses, but its TypeID is 0, the index of the first known type
// (Account): it must grant nothing on any type, in any context, and not
// count as a scope of its context.
func TestRulesUnknownTypeGrantsNothing(t *testing.T) {
	first := TypeID(0).String()
	if first == "" {
		t.Fatal("no type 0")
	}
	for _, s := range []string{"patient/Foo.cruds", "patient/observation.cruds", "user/account.cruds", "system/ACCOUNT.cruds",
		"system/Foo.rs?category=x", "patient/Foo.read", "user/Foo.*", "patient/Foo.c patient/Bar.s"} {
		t.Run(s, func(t *testing.T) {
			set := ParseSet(s)
			if len(set.resources()) == 0 {
				t.Fatalf("%q did not parse as a resource scope", s)
			}
			for _, sc := range set.resources() {
				if sc.KnownType || sc.Type != 0 {
					t.Fatalf("%q: KnownType %v, Type %d", s, sc.KnownType, sc.Type)
				}
			}
			m := Compile(set)
			if !m.Empty() {
				t.Error("Empty() = false")
			}
			for _, ctx := range []Context{Patient, User, System} {
				if m.HasContext(ctx) {
					t.Errorf("HasContext(%v)", ctx)
				}
				if m.AllowsAllTypes(ctx, Read) {
					t.Errorf("AllowsAllTypes(%v)", ctx)
				}
				for _, typ := range []string{first, "Observation", "Foo", "observation"} {
					for _, p := range []Permission{Create, Read, Update, Delete, Search} {
						if m.Allows(ctx, typ, p) {
							t.Errorf("Allows(%v, %s, %v)", ctx, typ, p)
						}
					}
				}
				for _, p := range []Permission{Create, Read, Update, Delete, Search} {
					if g := m.Lookup(ctx, 0, p); g.Allowed || g.Unconstrained || g.Constraints != nil {
						t.Errorf("Lookup(%v, %s, %v) = %+v", ctx, first, p, g)
					}
					if m.AllowsID(ctx, 0, p) || m.AllowsUnconstrained(ctx, 0, p) {
						t.Errorf("AllowsID/AllowsUnconstrained(%v, %s, %v)", ctx, first, p)
					}
				}
			}
			if sc, err := Parse(set.resources()[0].String()); err != nil || sc.KnownType {
				t.Error("the unknown type is known")
			}
		})
	}
	// Next to a known scope, the unknown one adds nothing.
	m := Compile(ParseSet("patient/Observation.rs patient/Foo.cud"))
	if !m.Allows(Patient, "Observation", Read|Search) || m.Allows(Patient, "Observation", Create) || m.Allows(Patient, first, Create) {
		t.Error("the unknown scope changed the grants of the known one")
	}
}

// TestRulesCompileIgnoresOutOfRangeContexts: newSet takes Scope values
// built by hand; a resource scope whose Context is not patient, user or
// system (0, 4) grants nothing and does not break Compile, constrained or
// not.
func TestRulesCompileIgnoresOutOfRangeContexts(t *testing.T) {
	obs, _ := LookupType("Observation")
	cs := ConstraintSet{{Name: "category", Value: "x", Values: []string{"x"}}}
	for _, ctx := range []Context{0, 4, 255} {
		for _, c := range []ConstraintSet{nil, cs} {
			for _, typ := range []string{"Observation", "*"} {
				sc := Scope{Kind: KindResource, Context: ctx, ResourceType: typ, Type: obs, KnownType: true, Permissions: All, Constraints: c}
				m := Compile(newSet(sc))
				if !m.Empty() {
					t.Errorf("context %d %s %v: not empty", ctx, typ, c)
				}
				for _, cc := range []Context{Patient, User, System} {
					if m.Allows(cc, "Observation", Read) || m.HasContext(cc) || m.AllowsAllTypes(cc, Read) || m.Lookup(cc, obs, Read).Allowed {
						t.Errorf("context %d %s %v grants in %v", ctx, typ, c, cc)
					}
				}
			}
		}
	}
}

// TestRulesUnknownTypeConstraintsStayApart: the constraints of a scope of
// an unknown type never join the constraint sets of type 0 (Account), the
// type its TypeID names.
func TestRulesUnknownTypeConstraintsStayApart(t *testing.T) {
	first := TypeID(0).String()
	for _, s := range []string{
		"patient/" + first + ".rs?status=active patient/Foo.rs?status=inactive",
		"patient/Foo.rs?status=inactive patient/" + first + ".rs?status=active",
	} {
		m := Compile(ParseSet(s))
		g := m.Lookup(Patient, 0, Read)
		if !g.Allowed || g.Unconstrained || len(g.Constraints) != 1 || g.Constraints[0].String() != "status=active" {
			t.Errorf("%s: Lookup = %+v", s, g)
		}
		if g := m.Lookup(Patient, 0, Create); g.Allowed {
			t.Errorf("%s: create %+v", s, g)
		}
	}
	// A non-resource scope never reaches the constraint table either.
	m := Compile(newSet(Scope{Kind: KindExtension, Name: "x", Context: Patient, KnownType: false, Permissions: Read,
		Constraints: ConstraintSet{{Name: "status", Value: "x", Values: []string{"x"}}}}))
	if !m.Empty() || m.Lookup(Patient, 0, Read).Allowed {
		t.Error("an extension scope grants")
	}
	m = Compile(newSet(Scope{Kind: KindLaunch, Context: Patient, ResourceType: first, KnownType: true, Permissions: Read,
		Constraints: ConstraintSet{{Name: "status", Value: "x", Values: []string{"x"}}}},
		Scope{Kind: KindResource, Context: Patient, ResourceType: first, KnownType: true, Permissions: Read,
			Constraints: ConstraintSet{{Name: "status", Value: "y", Values: []string{"y"}}}}))
	if g := m.Lookup(Patient, 0, Read); len(g.Constraints) != 1 || g.Constraints[0].String() != "status=y" {
		t.Errorf("a launch scope's constraints joined: %+v", g)
	}
}

// TestRulesMatcherBounds: out-of-range contexts, types and permissions
// are refused without panicking.
func TestRulesMatcherBounds(t *testing.T) {
	m := Compile(ParseSet("patient/*.cruds user/*.cruds system/*.cruds"))
	for _, ctx := range []Context{0, 4, 255} {
		for _, p := range []Permission{Read, All} {
			if m.AllowsID(ctx, 0, p) || m.AllowsUnconstrained(ctx, 0, p) || m.AllowsAllTypes(ctx, p) || m.Lookup(ctx, 0, p).Allowed || m.HasContext(ctx) {
				t.Errorf("context %d allows %v", ctx, p)
			}
		}
	}
	for _, typ := range []TypeID{TypeID(numTypes), TypeID(numTypes + 1), 65535} {
		if m.AllowsID(Patient, typ, Read) || m.AllowsUnconstrained(Patient, typ, Read) || m.Lookup(Patient, typ, Read).Allowed {
			t.Errorf("type %d allowed", typ)
		}
	}
	if !m.AllowsID(Patient, TypeID(numTypes-1), All) || !m.AllowsUnconstrained(System, TypeID(numTypes-1), All) || !m.Lookup(User, TypeID(numTypes-1), Search).Allowed {
		t.Error("the last type is not allowed")
	}
	for _, p := range []Permission{0, Read | Search, 1 << 5, 1 << 7} {
		if m.AllowsID(Patient, 0, p) && p == 0 || m.AllowsUnconstrained(Patient, 0, p) && p == 0 || m.AllowsAllTypes(Patient, p) && p == 0 || m.Lookup(Patient, 0, p).Allowed {
			t.Errorf("permission %b allowed", p)
		}
	}
}

// TestRulesScopeTokenCharacters: every byte RFC 6749 allows in a scope
// token ('!' and '~' at the ends of the range included) parses; type,
// launch and parameter names hold letters and digits only.
func TestRulesScopeTokenCharacters(t *testing.T) {
	for _, s := range []string{"!", "~", "a!b~c", "x/!~"} {
		if sc, err := Parse(s); err != nil || sc.Kind != KindExtension {
			t.Errorf("Parse(%q) = %+v, %v", s, sc, err)
		}
	}
	for _, s := range []string{"a\"b", "a\\b", "a\x7fb", "a b", "a\x20"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) accepted", s)
		}
	}
	for _, s := range []string{"patient/Obs_ervation.rs", "patient/Obs[ervation.rs", "patient/Obs|ervation.rs", "patient/Obs~ervation.rs", "patient/Obs^ervation.rs", "patient/_Observation.rs", "patient/1Observation.rs"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) accepted", s)
		}
	}
	if sc, err := Parse("patient/Observation2.rs"); err != nil || sc.KnownType {
		t.Errorf("a type name with a digit: %+v, %v", sc, err)
	}
	if sc, err := Parse("launch/ctx1"); err != nil || sc.Kind != KindLaunch || sc.LaunchContext != "ctx1" {
		t.Errorf("launch/ctx1: %+v, %v", sc, err)
	}
	if sc, err := Parse("launch/ctx_1"); err != nil || sc.Kind != KindExtension {
		t.Errorf("launch/ctx_1: %+v, %v", sc, err)
	}
	for _, q := range []string{"x1=a", "a-b_c.d=x"} {
		if _, err := parseConstraints(q); err != nil {
			t.Errorf("ParseConstraints(%q): %v", q, err)
		}
	}
	for _, q := range []string{"category.=x", ".category=x", "cat%20egory=x", "cat$egory=x", "cat{egory=x", "cat|egory=x", "cat~egory=x", "cat^egory=x"} {
		if _, err := parseConstraints(q); err == nil {
			t.Errorf("ParseConstraints(%q) accepted", q)
		}
	}
}

// TestRulesPercentEscapes: constraint values are percent-decoded with
// both cases of hex digits, bad escapes are refused (naming the escape),
// and String re-encodes what the grammar cannot hold, so that the
// canonical form parses back to the same constraint.
func TestRulesPercentEscapes(t *testing.T) {
	for q, want := range map[string]string{"code=a%2fb": "a/b", "code=a%2Fb": "a/b", "code=%41%61%30%39": "Aa09", "code=%7e": "~"} {
		cs, err := parseConstraints(q)
		if err != nil || len(cs) != 1 || cs[0].Value != want {
			t.Errorf("ParseConstraints(%q) = %v, %v; want value %q", q, cs, err, want)
		}
	}
	for _, q := range []string{"code=%zz", "code=%:0", "code=%0:", "code=%g0", "code=%G0", "code=%0g", "code=%@0", "code=%`0", "code=%2", "code=%", "co%zzde=x", "co%:0de=x"} {
		_, err := parseConstraints(q)
		if !errors.Is(err, errConstraint) || !strings.Contains(err.Error(), "percent escape") {
			t.Errorf("ParseConstraints(%q) = %v, want a percent-escape error", q, err)
		}
	}
	for _, q := range []string{"code=a%20b", "code:a%3Db=x", "code:a%3Ab=x", "code=a%25b", "code=a%26b", "code=%22", "code=%5C", "code=%23", "code=%C3%A9", "code=a%09b"} {
		cs, err := parseConstraints(q)
		if err != nil {
			t.Fatalf("ParseConstraints(%q): %v", q, err)
		}
		s := cs.String()
		for i := 0; i < len(s); i++ {
			if c := s[i]; c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '#' {
				t.Errorf("String of %q holds byte 0x%02x: %q", q, c, s)
			}
		}
		back, err := parseConstraints(s)
		if err != nil || !reflect.DeepEqual(back, cs) {
			t.Errorf("%q → %q → %+v, %v; want %+v", q, s, back, err, cs)
		}
	}
}
