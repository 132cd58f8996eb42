package scope

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/internal/resourcetypes"
)

func TestMatcherAllows(t *testing.T) {
	tests := []struct {
		name   string
		scopes string
		ctx    Context
		typ    string
		p      Permission
		want   bool
	}{
		{"exact rs read", "patient/Observation.rs", Patient, "Observation", Read, true},
		{"exact rs search", "patient/Observation.rs", Patient, "Observation", Search, true},
		{"rs both", "patient/Observation.rs", Patient, "Observation", Read | Search, true},
		{"rs no create", "patient/Observation.rs", Patient, "Observation", Create, false},
		{"r no s (A6)", "patient/Observation.r", Patient, "Observation", Search, false},
		{"s no r (A7)", "patient/Observation.s", Patient, "Observation", Read, false},
		{"union of letters", "patient/Observation.r patient/Observation.s", Patient, "Observation", Read | Search, true},
		{"other type", "patient/Observation.rs", Patient, "Condition", Read, false},
		{"other context", "patient/Observation.rs", User, "Observation", Read, false},
		{"system from patient", "patient/*.cruds", System, "Observation", Read, false},
		{"wildcard", "patient/*.rs", Patient, "AllergyIntolerance", Read, true},
		{"wildcard R5 type", "patient/*.rs", Patient, "Transport", Search, true},
		{"wildcard no write", "patient/*.rs", Patient, "Observation", Update, false},
		{"wildcard unknown type", "patient/*.cruds", Patient, "FooBar", Read, false},
		{"wildcard lowercase type", "patient/*.cruds", Patient, "observation", Read, false},
		{"wildcard empty type", "patient/*.cruds", Patient, "", Read, false},
		{"v1 read", "patient/Observation.read", Patient, "Observation", Read | Search, true},
		{"v1 read is not delete", "patient/Observation.read", Patient, "Observation", Delete, false},
		{"v1 write", "user/*.write", User, "Encounter", Create | Update | Delete, true},
		{"v1 write no read", "user/*.write", User, "Encounter", Read, false},
		{"v1 star", "system/*.*", System, "Patient", All, true},
		{"invalid dus grants nothing", "patient/Observation.dus", Patient, "Observation", Delete, false},
		{"invalid dus grants no search", "patient/Observation.dus", Patient, "Observation", Search, false},
		{"invalid sr", "patient/Observation.sr", Patient, "Observation", Read, false},
		{"invalid beside valid", "patient/Observation.dus patient/Condition.rs", Patient, "Condition", Read, true},
		{"v1 with query grants nothing", "patient/Observation.read?category=x", Patient, "Observation", Read, false},
		{"unknown type scope", "patient/observation.rs", Patient, "Observation", Read, false},
		{"uppercase context invalid", "Patient/Observation.rs", Patient, "Observation", Read, false},
		{"star context invalid", "*/Observation.rs", Patient, "Observation", Read, false},
		{"URI form grants nothing", "http://smarthealthit.org/fhir/scopes/patient/*.r", Patient, "Observation", Read, false},
		{"launch grants nothing", "launch launch/patient openid fhirUser offline_access", Patient, "Patient", Read, false},
		{"constrained still allows", "patient/Observation.rs?category=" + lab, Patient, "Observation", Read, true},
		{"constrained other letter", "patient/Observation.rs?category=" + lab, Patient, "Observation", Create, false},
		{"zero permission", "patient/*.cruds", Patient, "Observation", 0, false},
		{"bad context", "patient/*.cruds", Context(9), "Observation", Read, false},
		{"no context", "patient/*.cruds", Context(0), "Observation", Read, false},
		{"empty set", "", Patient, "Observation", Read, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := Compile(ParseSet(tc.scopes))
			if got := m.Allows(tc.ctx, tc.typ, tc.p); got != tc.want {
				t.Fatalf("Allows(%v, %q, %q) with %q = %v, want %v", tc.ctx, tc.typ, tc.p, tc.scopes, got, tc.want)
			}
		})
	}
}

func TestMatcherLookup(t *testing.T) {
	obs, _ := LookupType("Observation")
	cond, _ := LookupType("Condition")
	m := Compile(ParseSet("patient/Observation.rs?category=" + lab + " patient/Observation.s?category=" + vs +
		" patient/Observation.r?category=a&status=final patient/Condition.rs patient/Condition.r?category=x user/*.s?_security=x"))

	g := m.Lookup(Patient, obs, Read)
	if !g.Allowed || g.Unconstrained || len(g.Constraints) != 2 {
		t.Fatalf("Lookup read = %+v", g)
	}
	if g.Constraints[0].String() != "category="+lab || g.Constraints[1].String() != "category=a&status=final" {
		t.Fatalf("constraints = %v", g.Constraints)
	}
	g = m.Lookup(Patient, obs, Search)
	if !g.Allowed || len(g.Constraints) != 2 || g.Constraints[1].String() != "category="+vs {
		t.Fatalf("Lookup search = %+v", g)
	}
	if g := m.Lookup(Patient, obs, Create); g.Allowed {
		t.Fatalf("Lookup create = %+v", g)
	}
	// An unconstrained scope for the type wins over constrained ones.
	if g := m.Lookup(Patient, cond, Read); !g.Allowed || !g.Unconstrained || g.Constraints != nil {
		t.Fatalf("Lookup condition = %+v", g)
	}
	// Wildcard constraints apply to every type.
	if g := m.Lookup(User, cond, Search); !g.Allowed || g.Unconstrained || len(g.Constraints) != 1 {
		t.Fatalf("Lookup user wildcard = %+v", g)
	}
	if m.AllowsUnconstrained(User, cond, Search) || !m.AllowsUnconstrained(Patient, cond, Read) {
		t.Fatal("AllowsUnconstrained")
	}
	// Lookup takes exactly one letter.
	for _, p := range []Permission{0, Read | Search, All, 1 << 6} {
		if g := m.Lookup(Patient, cond, p); g.Allowed {
			t.Errorf("Lookup(%d) allowed", p)
		}
	}
	if g := m.Lookup(Context(7), cond, Read); g.Allowed {
		t.Error("bad context allowed")
	}
	if g := m.Lookup(Patient, TypeID(numTypes), Read); g.Allowed {
		t.Error("bad type allowed")
	}
}

func TestMatcherAllTypesAndContexts(t *testing.T) {
	m := Compile(ParseSet("system/*.rs system/Observation.cud user/*.s?category=x patient/Observation.r"))
	if !m.AllowsAllTypes(System, Search) || !m.AllowsAllTypes(System, Read|Search) || m.AllowsAllTypes(System, Create) {
		t.Error("AllowsAllTypes system")
	}
	if m.AllowsAllTypes(User, Search) {
		t.Error("constrained wildcard is not all types")
	}
	if m.AllowsAllTypes(Patient, Read) || m.AllowsAllTypes(Context(0), Read) || m.AllowsAllTypes(System, 0) {
		t.Error("AllowsAllTypes patient")
	}
	if !m.HasContext(System) || !m.HasContext(User) || !m.HasContext(Patient) || m.HasContext(0) || m.HasContext(4) {
		t.Error("HasContext")
	}
	if m.Empty() {
		t.Error("Empty")
	}
	if Compile(ParseSet("patient/Observation.dus openid launch")).Empty() != true {
		t.Error("a set of nothing granting should be empty")
	}
	if got := m.Set().String(); !strings.HasPrefix(got, "system/*.rs") {
		t.Errorf("Set() = %q", got)
	}
}

// naiveAllows is an obviously correct reference: scan every scope.
func naiveAllows(set Set, ctx Context, typ string, p Permission) bool {
	var have Permission
	if _, ok := LookupType(typ); !ok || p == 0 {
		return false
	}
	for _, sc := range set.scopes {
		if sc.Kind == KindResource && sc.Context == ctx && sc.KnownType && (sc.ResourceType == "*" || sc.ResourceType == typ) {
			have |= sc.Permissions
		}
	}
	return have&p == p
}

// TestMatcherAgainstNaive compares the compiled matcher with the naive scan
// over random scope sets.
func TestMatcherAgainstNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	types := []string{"Observation", "Condition", "Patient", "*", "Encounter", "observation", "FooBar"}
	perms := []string{"r", "s", "rs", "cud", "cruds", "read", "write", "*", "dus", "c", "ud"}
	ctxs := []string{"patient", "user", "system", "Patient"}
	for i := 0; i < 2000; i++ {
		var parts []string
		for n := r.IntN(6); n >= 0; n-- {
			s := ctxs[r.IntN(len(ctxs))] + "/" + types[r.IntN(len(types))] + "." + perms[r.IntN(len(perms))]
			if r.IntN(4) == 0 {
				s += "?category=x"
			}
			parts = append(parts, s)
		}
		set := ParseSet(strings.Join(parts, " "))
		m := Compile(set)
		for _, ctx := range []Context{Patient, User, System} {
			for _, typ := range types {
				for p := Permission(1); p <= All; p++ {
					if got, want := m.Allows(ctx, typ, p), naiveAllows(set, ctx, typ, p); got != want {
						t.Fatalf("%q: Allows(%v, %s, %s) = %v, naive %v", set.String(), ctx, typ, p, got, want)
					}
				}
			}
		}
	}
}

func TestLookupType(t *testing.T) {
	all := resourcetypes.Names(resourcetypes.R4 | resourcetypes.R5)
	if len(all) != numTypes {
		t.Fatalf("%d names, numTypes = %d", len(all), numTypes)
	}
	for i, name := range all {
		id, ok := LookupType(name)
		if !ok || id.String() != name || int(id) != i {
			t.Fatalf("LookupType(%q) = %d, %v", name, id, ok)
		}
	}
	for _, name := range []string{"MedicinalProduct", "Transport"} {
		if _, ok := LookupType(name); !ok {
			t.Errorf("%s: an R4 or R5 type", name)
		}
	}
	for _, bad := range []string{"", "observation", "OBSERVATION", "Resource", "DomainResource", "Observation ", "Observatio", "Observationn", "*", "metadata", "_history", "$everything"} {
		if _, ok := LookupType(bad); ok {
			t.Errorf("LookupType(%q) found", bad)
		}
	}
	if TypeID(numTypes).String() != "" {
		t.Error("out of range TypeID")
	}
}
