package scope

import (
	"strings"
	"testing"
)

var fuzzSeeds = []string{
	"patient/Observation.rs", "user/*.cruds", "system/Encounter.cud", "patient/Observation.read",
	"patient/*.write", "user/Appointment.*", "patient/Observation.dus", "patient/Observation.",
	"patient/Observation.rs?category=" + lab, "patient/Observation.rs?category=" + lab + "," + vs + "&code=http://loinc.org|2339-0",
	"patient/Observation.rs?code:in=http://valueset.example.org/ValueSet/diabetes-codes",
	"patient/Observation.rs?date=ge2020-01-01T00:00:00+05:00", "patient/Observation.rs?code=a%5C,b%26c",
	"launch", "launch/patient", "launch/list?role=https://example.org/med-list-at-home", "openid", "fhirUser",
	"offline_access", "__profilePhoto.manage", "https://ehr.example.org/scopes/profilePhoto.manage",
	"Patient/Observation.rs", "*/Observation.rs", "patient/observation.rs", "patient/Observation.read?x=1",
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		sc, err := Parse(in)
		if err != nil {
			return
		}
		canon := sc.String()
		again, err := Parse(canon)
		if err != nil {
			t.Fatalf("Parse(%q) ok, but its canonical form %q fails: %v", in, canon, err)
		}
		if !sameScope(sc, again) || again.String() != canon {
			t.Fatalf("canonical form of %q does not round-trip: %q -> %+v vs %+v", in, canon, again, sc)
		}
		if sc.Kind == KindResource {
			if sc.Permissions == 0 || sc.Permissions&^All != 0 {
				t.Fatalf("%q: permissions %d", in, sc.Permissions)
			}
			v2, err := Parse(sc.v2String())
			if err != nil || v2.Permissions != sc.Permissions || v2.V1 {
				t.Fatalf("%q: v2String %q reparsed to %+v, %v", in, sc.v2String(), v2, err)
			}
			// A resource scope always starts with its exact context.
			if !strings.HasPrefix(in, sc.Context.String()+"/") {
				t.Fatalf("%q parsed with context %v", in, sc.Context)
			}
			// The permissions never come from a longer word (".read" is never ".rd").
			if sc.V1 == false && strings.Contains(strings.SplitN(in, "?", 2)[0], ".read") {
				t.Fatalf("%q parsed as v2 letters %s", in, sc.Permissions)
			}
		}
	})
}

func FuzzParseSet(f *testing.F) {
	f.Add(strings.Join(fuzzSeeds, " "))
	f.Add("launch/patient patient/Observation.rs patient/Patient.rs offline_access")
	f.Add("  patient/*.read \t user/Observation.s?category=x  ")
	f.Fuzz(func(t *testing.T, in string) {
		set := ParseSet(in)
		canon := set.String()
		again := ParseSet(canon)
		if len(again.Invalid()) != 0 || again.String() != canon || again.Len() != set.Len() {
			t.Fatalf("ParseSet(%q).String() = %q does not round-trip (%q, %v)", in, canon, again.String(), again.Invalid())
		}
		tokens := 0
		for tok := range strings.SplitSeq(in, " ") {
			if tok != "" {
				tokens++
			}
		}
		if set.Len()+len(set.Invalid()) > tokens {
			t.Fatalf("more scopes than tokens in %q", in)
		}
		m := Compile(set)
		for _, typ := range []string{"Observation", "Patient", "Condition"} {
			for _, ctx := range []Context{Patient, User, System} {
				for p := Permission(1); p <= All; p++ {
					if got, want := m.Allows(ctx, typ, p), naiveAllows(set, ctx, typ, p); got != want {
						t.Fatalf("%q: Allows(%v, %s, %s) = %v, naive %v", in, ctx, typ, p, got, want)
					}
				}
			}
		}
	})
}
