package searchparam

import (
	"bytes"
	"os"
	"testing"

	"github.com/fhirguard/fhirguard/fhir"
	"github.com/fhirguard/fhirguard/internal/fhirdata"
	"github.com/fhirguard/fhirguard/internal/gen/searchparams/gen"
)

// TestGeneratedUpToDate fails when params_gen.go differs from what the
// generator makes of the FHIR definitions: run `go generate ./searchparam`.
func TestGeneratedUpToDate(t *testing.T) {
	want, err := gen.Generate(fhirdata.FS)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("params_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("params_gen.go is stale: run go generate ./searchparam")
	}
}

// TestUnresolved checks the list of unevaluable parameters against the
// table, and pins the terms that are not composite or special. A new entry
// needs a decision: teach the generator, or accept that a constraint on the
// parameter grants nothing.
func TestUnresolved(t *testing.T) {
	list := unresolved[:]
	if len(list) == 0 {
		t.Fatal("no unresolved expressions: the list is not generated")
	}
	listed := map[[3]string]bool{}
	reasons := map[string]int{}
	for _, u := range list {
		listed[[3]string{u.Version.String(), u.Resource, u.Param}] = true
		switch {
		case u.Reason == "composite parameters are not evaluated":
			reasons["composite"]++
		case u.Reason == "special parameters are not evaluated":
			reasons["special"]++
		default:
			reasons["other"]++
		}
		rt := u.Resource
		if rt == "Resource" || rt == "DomainResource" {
			rt = "Patient"
		}
		p, ok := Lookup(u.Version, rt, u.Param)
		if !ok {
			t.Errorf("%+v: Lookup finds no parameter", u)
			continue
		}
		if !p.Unresolved {
			t.Errorf("%+v: parameter not flagged Unresolved", u)
		}
	}
	// Every Unresolved parameter of the table is listed.
	for _, v := range []fhir.Release{fhir.R4, fhir.R5} {
		tb := tableOf(v)
		check := func(rt string, ps []Param) {
			for _, p := range ps {
				if p.Unresolved && !listed[[3]string{v.String(), rt, p.Name}] {
					t.Errorf("%v %s.%s is Unresolved but not listed", v, rt, p.Name)
				}
				if !p.Unresolved && len(p.Paths) == 0 {
					t.Errorf("%v %s.%s is resolved without paths", v, rt, p.Name)
				}
			}
		}
		check("Resource", tb.resource)
		check("DomainResource", tb.domain)
		for _, tp := range tb.types {
			check(tp.name, tp.params)
		}
	}
	// Pinned counts: a change in the definitions or the generator shows here.
	want := map[string]int{"composite": 156, "special": 4, "other": 138}
	for k, n := range want {
		if reasons[k] != n {
			t.Errorf("%s unresolved entries = %d, want %d", k, reasons[k], n)
		}
	}
	// Entries that matter for granular scopes or show each kind of reason.
	for _, u := range []unresolvedExpression{
		{fhir.R4, "Patient", "email", "Patient.telecom.where(system='email')", "unsupported FHIRPath where(system='email')"},
		{fhir.R4, "Patient", "deceased", "Patient.deceased.exists() and Patient.deceased != false", "unsupported operator in exists() and Patient"},
		{fhir.R4, "Bundle", "composition", "Bundle.entry[0].resource", "unsupported FHIRPath entry[0]"},
		{fhir.R4, "Resource", "_query", "", "no expression"},
		{fhir.R4, "InsurancePlan", "name", "name | alias", "no term of the expression starts with InsurancePlan"},
		{fhir.R4, "Observation", "code-value-concept", "Observation", "composite parameters are not evaluated"},
		{fhir.R5, "Device", "serial-number", "Device.identifier.where(type='SNO')", "unsupported FHIRPath where(type='SNO')"},
		{fhir.R5, "CareTeam", "name", "CareTeam.extension('http://hl7.org/fhir/StructureDefinition/careteam-alias').value", "unsupported FHIRPath extension('http://hl7.org/fhir/StructureDefinition/careteam-alias')"},
	} {
		found := false
		for _, g := range list {
			found = found || g == u
		}
		if !found {
			t.Errorf("missing unresolved entry %+v", u)
		}
	}
}
