package compartment

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/fhir"
)

// Issue "Enforcement hardening II" §6: rules of the package that no test
// defended. Each test was seen to fail with the rule it defends mutated
// away.

// TestRulesModifiersNeverBind: a search parameter with a modifier other
// than the compartment's type (:not, :missing, :identifier, :above,
// :below, :text, another type) never binds a search to a compartment, on
// any linking or narrowing parameter of any member type, so Narrow adds
// its own parameter in front.
func TestRulesModifiersNeverBind(t *testing.T) {
	for _, v := range []fhir.Release{fhir.R4, fhir.R5} {
		c := newChecker(t, Config{FHIRVersion: v})
		for _, typ := range Types() {
			d := c.Definition(typ)
			if d == nil {
				continue
			}
			ref := typ.String() + "/x-1"
			for _, rt := range d.ResourceTypes() {
				narrow, _ := d.NarrowParam(rt)
				params := append(d.params(rt), narrow)
				for _, p := range params {
					for _, mq := range []string{p + ":not=" + ref, p + ":missing=true", p + ":missing=false", p + ":identifier=x-1",
						p + ":above=" + ref, p + ":below=" + ref, p + ":text=x-1", p + ":Group=x-1", p + ":exact=x-1", p + ".name=x-1"} {
						q, _ := url.ParseQuery(mq)
						if c.Binds(rt, q, typ, "x-1") {
							t.Errorf("%v %v %s?%s binds", v, typ, rt, mq)
						}
						got, err := c.Narrow(rt, q, typ, "x-1")
						if err != nil {
							t.Fatalf("%v %v %s?%s: %v", v, typ, rt, mq, err)
						}
						value := ref
						if rt == typ.String() {
							value = "x-1"
						}
						if vs := got[narrow]; len(vs) == 0 || vs[0] != value {
							t.Errorf("%v %v %s?%s narrowed to %v", v, typ, rt, mq, got)
						}
					}
				}
			}
		}
	}
}

// TestRulesTypeModifierBindsOnlyItsType: "param:T=id" binds only when T is
// the compartment's own type and the parameter links the type to the
// compartment.
func TestRulesTypeModifierBindsOnlyItsType(t *testing.T) {
	c := newChecker(t, Config{FHIRVersion: fhir.R4, IncludeLinkedPatients: true})
	for _, tt := range []struct {
		rt, query string
		typ       Type
		want      bool
	}{
		{"Observation", "subject:Patient=123", Patient, true},
		{"Observation", "subject:Patient=124", Patient, false},
		{"Observation", "subject:Patient=123,124", Patient, false},
		{"Observation", "subject:Patient=123&subject:Patient=124", Patient, false},
		{"Observation", "subject:Encounter=123", Patient, false},
		{"Observation", "focus:Patient=123", Patient, false},
		{"Observation", "subject:Patient=123", Encounter, false},
		{"Observation", "encounter:Encounter=123", Encounter, true},
		{"Observation", "encounter:Patient=123", Encounter, false},
		{"Observation", "subject:patient=123", Patient, false},
		{"Patient", "_id:Patient=123", Patient, false},
		{"Patient", "link:Patient=123", Patient, true},
	} {
		q, _ := url.ParseQuery(tt.query)
		if got := c.Binds(tt.rt, q, tt.typ, "123"); got != tt.want {
			t.Errorf("Binds(%s?%s, %v) = %v, want %v", tt.rt, tt.query, tt.typ, got, tt.want)
		}
	}
}

// TestRulesLinkedPatientsOwnType: by default (no IncludeLinkedPatients), only _id binds a
// search of the compartment's own type.
func TestRulesLinkedPatientsOwnType(t *testing.T) {
	excl := newChecker(t, Config{FHIRVersion: fhir.R4})
	for _, q := range []string{"link=Patient/123", "link:Patient=123", "link=123"} {
		v, _ := url.ParseQuery(q)
		if excl.Binds("Patient", v, Patient, "123") {
			t.Errorf("default: Patient?%s binds", q)
		}
		got, _ := excl.Narrow("Patient", v, Patient, "123")
		if !slices.Equal(got["_id"], []string{"123"}) {
			t.Errorf("default: Patient?%s narrowed to %v", q, got)
		}
	}
}

// TestRulesUnresolvedParamsNeverExclusive: a linking parameter the
// generator could not read (R5 RequestOrchestration.participant) is not
// known to point to the compartment's type alone, so an untyped id in it
// binds nothing.
func TestRulesUnresolvedParamsNeverExclusive(t *testing.T) {
	c := newChecker(t, Config{FHIRVersion: fhir.R5})
	found := false
	for _, u := range unresolved {
		if u.Version != fhir.R5 {
			continue
		}
		found = true
		q := url.Values{u.Param: {"x-1"}}
		if c.Binds(u.Resource, q, u.Compartment, "x-1") {
			t.Errorf("%v %s?%s=x-1 binds", u.Compartment, u.Resource, u.Param)
		}
		if !exclusive(&Param{Name: u.Param, Targets: []string{u.Compartment.String()}, Paths: []Path{{Elements: "x"}}}, u.Compartment) {
			t.Error("a resolved single-target parameter is not exclusive")
		}
		if exclusive(&Param{Name: u.Param, Targets: []string{u.Compartment.String()}, Paths: []Path{{Elements: "x"}}, Unresolved: true}, u.Compartment) ||
			exclusive(&Param{Name: u.Param, Targets: []string{u.Compartment.String()}}, u.Compartment) || exclusive(nil, u.Compartment) {
			t.Error("an unresolved, pathless or absent parameter is exclusive")
		}
	}
	if !found {
		t.Skip("no unresolved R5 parameter")
	}
}

// TestRulesExclusiveLinkingParams: an untyped id binds on every linking
// parameter that can only point to the compartment's type, not only on the
// narrowing parameter; on one that can point elsewhere it never binds.
func TestRulesExclusiveLinkingParams(t *testing.T) {
	nonNarrow := 0
	for _, v := range []fhir.Release{fhir.R4, fhir.R5} {
		c := newChecker(t, Config{FHIRVersion: v})
		for _, typ := range Types() {
			d := c.Definition(typ)
			if d == nil {
				continue
			}
			for _, rt := range d.ResourceTypes() {
				if rt == typ.String() {
					continue
				}
				res, _ := d.Resource(rt)
				for _, p := range res.Params {
					q := url.Values{p.Name: {"x-1"}}
					want := exclusive(&p, typ)
					if got := c.Binds(rt, q, typ, "x-1"); got != want {
						t.Errorf("%v %v %s?%s=x-1: Binds %v, want %v", v, typ, rt, p.Name, got, want)
					}
					if want && p.Name != res.Narrow.Name {
						nonNarrow++
					}
				}
			}
		}
	}
	if nonNarrow == 0 {
		t.Fatal("no exclusive linking parameter other than a narrowing one")
	}
}

// TestRulesDefinitionLookups: NarrowParam and TouchesLink answer for
// member and non-member types alike, without panicking.
func TestRulesDefinitionLookups(t *testing.T) {
	d := Lookup(fhir.R4, Patient)
	if name, ok := d.NarrowParam("Observation"); !ok || name != "patient" {
		t.Errorf("NarrowParam(Observation) = %q, %v", name, ok)
	}
	if name, ok := d.NarrowParam("Patient"); !ok || name != "_id" {
		t.Errorf("NarrowParam(Patient) = %q, %v", name, ok)
	}
	if name, ok := d.NarrowParam("Medication"); ok || name != "" {
		t.Errorf("NarrowParam(Medication) = %q, %v", name, ok)
	}
	for _, v := range []fhir.Release{fhir.R4, fhir.R5} {
		for _, typ := range Types() {
			d := Lookup(v, typ)
			if d == nil {
				continue
			}
			for _, rt := range append(d.ResourceTypes(), "Medication", "Nothing") {
				if d.TouchesLink(rt, "/zz-not-an-element") {
					t.Errorf("%v %v %s: /zz-not-an-element touches a link", v, typ, rt)
				}
				if !d.TouchesLink(rt, "/id") {
					t.Errorf("%v %v %s: /id does not touch", v, typ, rt)
				}
			}
		}
	}
}

// TestRulesMemberErrorsAreNotMembers: whenever Member returns an error,
// the boolean is false.
func TestRulesMemberErrorsAreNotMembers(t *testing.T) {
	c := newChecker(t, Config{FHIRVersion: fhir.R4})
	own := `{"resourceType":"Observation","subject":{"reference":"Patient/1"}}`
	for _, tt := range []struct {
		doc string
		typ Type
		id  string
	}{
		{own, Patient, "1 2"},
		{own, Patient, ""},
		{own, Type(0), "1"},
		{own, Type(9), "1"},
		{`{"resourceType":"Patient","id":"1"}`, Patient, "1/2"},
		{`[]`, Patient, "1"},
		{`{"subject":{"reference":"Patient/1"}}`, Patient, "1"},
		{`{"resourceType":"Observation","subject":{"reference":"Patient/1"}`, Patient, "1"},
	} {
		ok, err := c.Member([]byte(tt.doc), tt.typ, tt.id)
		if err == nil || ok {
			t.Errorf("Member(%s, %v, %q) = %v, %v", tt.doc, tt.typ, tt.id, ok, err)
		}
		var m map[string]any
		if json.Unmarshal([]byte(tt.doc), &m) == nil {
			if ok, err := c.MemberMap(m, tt.typ, tt.id); err == nil || ok {
				t.Errorf("MemberMap(%s, %v, %q) = %v, %v", tt.doc, tt.typ, tt.id, ok, err)
			}
		}
	}
}

// TestRulesInvalidTypes: a Type outside the known ones names nothing:
// no reference refers to it, none to "another" of it.
func TestRulesInvalidTypes(t *testing.T) {
	c := newChecker(t, Config{FHIRVersion: fhir.R4, BaseURLs: []string{testBase}})
	for _, typ := range []Type{0, 6, 9, 255} {
		if typ.valid() {
			t.Errorf("Type(%d) is valid", typ)
		}
		for _, ref := range []string{"Patient/1", "x", "%", "Patient?x=1", testBase + "/Patient/1", "https://other.example/Patient/2", "#x"} {
			if c.RefersTo(ref, typ, "1") || c.RefersToOther(ref, typ, "1") {
				t.Errorf("Type(%d) matched %q", typ, ref)
			}
		}
		if _, err := c.Narrow("Observation", nil, typ, "1"); err == nil {
			t.Errorf("Narrow with Type(%d)", typ)
		}
		if c.Binds("Observation", url.Values{"patient": {"1"}}, typ, "1") {
			t.Errorf("Binds with Type(%d)", typ)
		}
	}
	for _, typ := range Types() {
		if !typ.valid() {
			t.Errorf("%v invalid", typ)
		}
	}
}

// TestRulesReferenceEdges: reference forms at the edges of the
// normaliser's rules.
func TestRulesReferenceEdges(t *testing.T) {
	c := newChecker(t, Config{FHIRVersion: fhir.R4, BaseURLs: []string{testBase}})
	id65 := strings.Repeat("a", 65)
	for _, tt := range []struct {
		ref  string
		want Ref
	}{
		{"Zz/1", Ref{Kind: RefLocal, Type: "Zz", ID: "1"}},
		{"Zz/1/_history/2", Ref{Kind: RefLocal, Type: "Zz", ID: "1", Version: "2"}},
		{testBase + "/Zz/1", Ref{Kind: RefLocal, Type: "Zz", ID: "1"}},
		{testBase + "/1/2", Ref{Kind: RefInvalid}},
		{testBase + "/-Patient/2", Ref{Kind: RefInvalid}},
		{testBase + "/Patient-2", Ref{Kind: RefInvalid}},
		{testBase + "/Patient.2", Ref{Kind: RefInvalid}},
		{testBase + "/Patient_2", Ref{Kind: RefInvalid}},
		{"https://fhir.example.org/r", Ref{Kind: RefExternal}},
		{"https://fhir.example.org/r/Patient/1", Ref{Kind: RefExternal, Type: "Patient", ID: "1"}},
		{"https://fhir.example.org", Ref{Kind: RefExternal}},
		{"https://h.example:8080", Ref{Kind: RefExternal}},
		{"http://h.example:99", Ref{Kind: RefExternal}},
		{"https://h.example:65535/Patient/1", Ref{Kind: RefExternal, Type: "Patient", ID: "1"}},
		{"https://h.example:65536/Patient/1", Ref{Kind: RefInvalid}},
		{"https://[::1", Ref{Kind: RefInvalid}},
		{"https://[::1//Patient/1", Ref{Kind: RefInvalid}},
		{"https://[::1]/Patient/1", Ref{Kind: RefExternal, Type: "Patient", ID: "1"}},
		{"https://[::ffff:1.2.3.4]/Patient/1", Ref{Kind: RefExternal, Type: "Patient", ID: "1"}},
		{"https://[1:2:3:4:5:6:1.2.3.4]/Patient/1", Ref{Kind: RefExternal, Type: "Patient", ID: "1"}},
		{"https://[::1.2.3.999]/Patient/1", Ref{Kind: RefInvalid}},
		{"https://[::ffff:1.2.3.04]/Patient/1", Ref{Kind: RefInvalid}},
		{"https://[::ffff:1.2.3.a]/Patient/1", Ref{Kind: RefInvalid}},
		{"https://[::ffff:1.2.3]/Patient/1", Ref{Kind: RefInvalid}},
		{"https://[1::2:3:4:5:6:7:1.2.3.4]/Patient/1", Ref{Kind: RefInvalid}},
		{"https://[1:2:3:4:5:6:7:1.2.3.4]/Patient/1", Ref{Kind: RefInvalid}},
		{"https://evil.example/Patient/" + id65, Ref{Kind: RefExternal}},
		{"urn:oid:", Ref{Kind: RefInvalid}},
		{"urn:uuid:", Ref{Kind: RefInvalid}},
		{"urn:isbn1.2", Ref{Kind: RefInvalid}},
		{"urn:oid:1.2", Ref{Kind: RefURN}},
		{"urn:OID:1.2", Ref{Kind: RefURN}},
	} {
		if got := c.ParseReference(tt.ref); got != tt.want {
			t.Errorf("ParseReference(%q) = %+v, want %+v", tt.ref, got, tt.want)
		}
	}
	for _, tt := range []struct {
		ref  string
		want bool
	}{
		{testBase + "/-Patient/2", true},
		{testBase + "/Patient-2", true},
		{testBase + "/Patient.2", true},
		{"Account/9", false},
		{"Consent/9", false},
		{"PATIENT/9", true},
		{"pAtient/9", true},
		{"xPati", false},
		{"Pat", false},
		{"x Patien", false},
		{"Patie%4Et/9", true},
		{"Patie%6et/9", true},
		{"P%41TIENT/9", true},
		{"Pati%65nt%2F9", true},
		{"Pati%6", false},
	} {
		if got := c.RefersToOther(tt.ref, Patient, "123"); got != tt.want {
			t.Errorf("RefersToOther(%q) = %v, want %v", tt.ref, got, tt.want)
		}
	}
	if c.RefersTo(testBase+"/Patient-123", Patient, "123") || c.RefersTo(testBase+"/Patient.123", Patient, "123") {
		t.Error("a malformed local reference refers to the patient")
	}
}

// TestRulesSeveralBases: a reference below one base that is not T/id there
// may still be T/id below a longer base.
func TestRulesSeveralBases(t *testing.T) {
	short := "https://h.example"
	for _, long := range []string{
		short + "/X/" + strings.Repeat("a", 65),
		short + "/X/1/_history/1/fhir",
		short + "/X/1/_history/" + strings.Repeat("a", 65),
		short + "/X-y",
		short + "/X.y/fhir",
		short + "/Xy_z",
	} {
		c := newChecker(t, Config{FHIRVersion: fhir.R4, BaseURLs: []string{short, long}})
		want := Ref{Kind: RefLocal, Type: "Patient", ID: "123"}
		if got := c.ParseReference(long + "/Patient/123"); got != want {
			t.Errorf("bases %s and %s: %+v", short, long, got)
		}
		if !c.RefersTo(long+"/Patient/123", Patient, "123") {
			t.Errorf("bases %s and %s: RefersTo false", short, long)
		}
	}
}
