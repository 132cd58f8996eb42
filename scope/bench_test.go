package scope

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/fhir"
)

// scopeString returns n distinct patient resource scopes; the checked type
// (Observation) comes last, the worst case for a linear scan.
func scopeString(n int) string {
	types := fhir.ResourceTypes(fhir.R4)
	var parts []string
	for i := 0; len(parts) < n-1; i++ {
		if t := types[i%len(types)]; t != "Observation" {
			parts = append(parts, fmt.Sprintf("patient/%s.%s", t, []string{"rs", "r", "cruds", "s"}[i/len(types)%4]))
		}
	}
	parts = append(parts, "patient/Observation.rs")
	return strings.Join(parts, " ")
}

// naiveCheck is the baseline: what the peers do on every request, parse the
// scope string and scan the list.
func naiveCheck(scopes, ctx, typ string, letter byte) bool {
	for _, s := range strings.Split(scopes, " ") {
		c, rest, ok := strings.Cut(s, "/")
		if !ok || c != ctx {
			continue
		}
		t, perms, ok := strings.Cut(rest, ".")
		if !ok || (t != typ && t != "*") {
			continue
		}
		perms, _, _ = strings.Cut(perms, "?")
		switch perms {
		case "read":
			perms = "rs"
		case "write":
			perms = "cud"
		case "*":
			perms = "cruds"
		}
		if strings.IndexByte(perms, letter) >= 0 {
			return true
		}
	}
	return false
}

var sink bool

func BenchmarkAllows(b *testing.B) {
	for _, n := range []int{1, 10, 20, 100} {
		m := Compile(ParseSet(scopeString(n)))
		b.Run(fmt.Sprintf("scopes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sink = m.Allows(Patient, "Observation", Read)
			}
		})
	}
}

func BenchmarkAllowsID(b *testing.B) {
	m := Compile(ParseSet(scopeString(100)))
	obs, _ := LookupType("Observation")
	b.ReportAllocs()
	for b.Loop() {
		sink = m.AllowsID(Patient, obs, Read)
	}
}

// BenchmarkNaive is the baseline for BenchmarkAllows: the same question
// answered by parsing and scanning the scope string on every check.
func BenchmarkNaive(b *testing.B) {
	for _, n := range []int{1, 10, 20, 100} {
		s := scopeString(n)
		if !naiveCheck(s, "patient", "Observation", 'r') {
			b.Fatal("naive baseline disagrees")
		}
		b.Run(fmt.Sprintf("scopes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sink = naiveCheck(s, "patient", "Observation", 'r')
			}
		})
	}
}

func BenchmarkLookupConstrained(b *testing.B) {
	m := Compile(ParseSet("patient/Observation.rs?category=" + lab + " patient/Condition.rs launch/patient openid fhirUser"))
	obs, _ := LookupType("Observation")
	b.ReportAllocs()
	for b.Loop() {
		sink = m.Lookup(Patient, obs, Read).Allowed
	}
}

// typical10 is a typical SMART app token's scope string: ten scopes.
const typical10 = "launch/patient openid fhirUser offline_access patient/Patient.rs patient/Observation.rs " +
	"patient/Condition.rs?category=http://terminology.hl7.org/CodeSystem/condition-category|problem-list-item " +
	"patient/MedicationRequest.rs patient/AllergyIntolerance.rs patient/Immunization.read"

func BenchmarkParseSetCompile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sink = Compile(ParseSet(typical10)).Empty()
	}
}

func TestBenchmarkFixtures(t *testing.T) {
	for _, n := range []int{1, 10, 20, 100} {
		set := ParseSet(scopeString(n))
		if set.Len() != n || len(set.Invalid()) != 0 {
			t.Fatalf("scopeString(%d) has %d scopes, %v invalid", n, set.Len(), set.Invalid())
		}
		if !Compile(set).Allows(Patient, "Observation", Read) {
			t.Fatalf("scopeString(%d) does not allow the checked type", n)
		}
	}
	if set := ParseSet(typical10); set.Len() != 10 || len(set.Invalid()) != 0 {
		t.Fatalf("typical10: %d scopes, %v", set.Len(), set.Invalid())
	}
	// The naive baseline agrees with the matcher on these fixtures.
	for _, typ := range []string{"Observation", "Patient", "Condition", "Encounter"} {
		for _, l := range []byte("cruds") {
			p, _ := ParsePermission(string(l))
			s := scopeString(20)
			if naiveCheck(s, "patient", typ, l) != Compile(ParseSet(s)).Allows(Patient, typ, p) {
				t.Errorf("naive and matcher disagree on %s.%c", typ, l)
			}
		}
	}
}
