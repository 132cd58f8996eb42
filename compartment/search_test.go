package compartment

import (
	"errors"
	"net/url"
	"reflect"
	"testing"

	"github.com/fhirguard/fhirguard/fhir"
)

func TestBinds(t *testing.T) {
	c := newChecker(t, Config{FHIRVersion: fhir.R4, BaseURLs: []string{testBase}, IncludeLinkedPatients: true})
	tests := []struct {
		name     string
		resource string
		query    string
		want     bool
	}{
		{"patient id", "Observation", "patient=123", true},
		{"patient typed", "Observation", "patient=Patient/123", true},
		{"patient own base", "Observation", "patient=" + url.QueryEscape(testBase+"/Patient/123"), true},
		{"subject typed", "Observation", "subject=Patient/123", true},
		{"subject type modifier", "Observation", "subject:Patient=123", true},
		{"performer typed", "Observation", "performer=Patient/123", true},
		{"with other params", "Observation", "code=1234-5&patient=123&_count=10", true},
		{"repeated same", "Observation", "patient=123&patient=Patient/123", true},
		{"other param binds", "Observation", "subject=Patient/999&patient=123", true},
		{"own type _id", "Patient", "_id=123", true},
		{"own type link", "Patient", "link=Patient/123", true},
		{"encounter patient", "Encounter", "patient=123", true},
		{"coverage beneficiary typed", "Coverage", "beneficiary=Patient/123", true},
		{"coverage patient id", "Coverage", "patient=123", true},
		{"empty", "Observation", "", false},
		{"other patient", "Observation", "patient=999", false},
		{"other patient typed", "Observation", "patient=Patient/999", false},
		{"longer id", "Observation", "patient=1234", false},
		{"list", "Observation", "patient=123,456", false},
		{"list escaped comma", "Observation", `patient=123\,456`, false},
		{"repeated other", "Observation", "patient=123&patient=456", false},
		{"missing", "Observation", "patient:missing=false", false},
		{"not", "Observation", "patient:not=123", false},
		{"identifier", "Observation", "patient:identifier=123", false},
		{"other type modifier", "Observation", "subject:Group=123", false},
		{"type modifier with typed value", "Observation", "subject:Patient=Patient/123", false},
		{"chain", "Observation", "patient.name=123", false},
		{"typed chain", "Observation", "subject:Patient.name=123", false},
		{"untyped multi-target", "Observation", "subject=123", false},
		{"untyped performer", "Observation", "performer=123", false},
		{"group", "Observation", "subject=Group/123", false},
		{"other server", "Observation", "patient=" + url.QueryEscape("https://evil.example/fhir/Patient/123"), false},
		{"versioned", "Observation", "patient=Patient/123/_history/1", false},
		{"padded", "Observation", "patient=%20123", false},
		{"lower-case type", "Observation", "patient=patient/123", false},
		{"not a link parameter", "Observation", "focus=Patient/123", false},
		{"encounter is not a link", "Observation", "encounter=Patient/123", false},
		{"empty value", "Observation", "patient=", false},
		{"_id on other type", "Observation", "_id=123", false},
		{"_id list", "Patient", "_id=123,456", false},
		{"_id other", "Patient", "_id=456", false},
		{"_id modifier", "Patient", "_id:not=123", false},
		{"not a member type", "Medication", "patient=123", false},
		{"has", "Patient", "_has:Observation:patient:_id=123", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Binds(tt.resource, q, Patient, "123"); got != tt.want {
				t.Errorf("Binds(%s?%s) = %v, want %v", tt.resource, tt.query, got, tt.want)
			}
		})
	}
}

func TestBindsOtherCompartments(t *testing.T) {
	c := newChecker(t, Config{FHIRVersion: fhir.R4})
	excl := newChecker(t, Config{FHIRVersion: fhir.R4})
	tests := []struct {
		name     string
		c        *Checker
		resource string
		query    string
		typ      Type
		id       string
		want     bool
	}{
		{"untyped encounter (may be EpisodeOfCare)", c, "Observation", "encounter=e1", Encounter, "e1", false},
		{"untyped single-target encounter", c, "CarePlan", "encounter=e1", Encounter, "e1", true},
		{"encounter typed", c, "Observation", "encounter=Encounter/e1", Encounter, "e1", true},
		{"R4 device focal", c, "Device", "_id=d1", Device, "d1", true},
		{"practitioner", c, "Observation", "performer=Practitioner/p1", Practitioner, "p1", true},
		{"invalid id", c, "Observation", "patient=a b", Patient, "a b", false},
		{"unknown type", c, "Observation", "patient=1", Type(0), "1", false},
		{"linked excluded: link", excl, "Patient", "link=Patient/123", Patient, "123", false},
		{"linked excluded: _id", excl, "Patient", "_id=123", Patient, "123", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, _ := url.ParseQuery(tt.query)
			if got := tt.c.Binds(tt.resource, q, tt.typ, tt.id); got != tt.want {
				t.Errorf("Binds = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNarrow(t *testing.T) {
	c := newChecker(t, Config{FHIRVersion: fhir.R4})
	tests := []struct {
		name     string
		resource string
		typ      Type
		query    string
		want     url.Values
		err      error
	}{
		{"observation", "Observation", Patient, "code=x", url.Values{"code": {"x"}, "patient": {"Patient/123"}}, nil},
		{"already bound", "Observation", Patient, "subject=Patient/123", url.Values{"subject": {"Patient/123"}}, nil},
		{"other patient kept after ours", "Observation", Patient, "patient=999", url.Values{"patient": {"Patient/123", "999"}}, nil},
		{"list", "Observation", Patient, "patient=123,999", url.Values{"patient": {"Patient/123", "123,999"}}, nil},
		{"modifier kept", "Observation", Patient, "patient:missing=true", url.Values{"patient:missing": {"true"}, "patient": {"Patient/123"}}, nil},
		{"own type", "Patient", Patient, "name=x", url.Values{"name": {"x"}, "_id": {"123"}}, nil},
		{"own type other id", "Patient", Patient, "_id=999", url.Values{"_id": {"123", "999"}}, nil},
		{"first param", "AdverseEvent", Patient, "", url.Values{"subject": {"Patient/123"}}, nil},
		{"group member", "Group", Patient, "", url.Values{"member": {"Patient/123"}}, nil},
		{"encounter", "Observation", Encounter, "", url.Values{"encounter": {"Encounter/123"}}, nil},
		{"not a member type", "Medication", Patient, "", nil, errNotMemberType},
		{"unknown type", "Observation", Type(9), "", nil, errUnknownType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, _ := url.ParseQuery(tt.query)
			orig := url.Values{}
			for k, v := range q {
				orig[k] = append([]string(nil), v...)
			}
			got, err := c.Narrow(tt.resource, q, tt.typ, "123")
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err == nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Narrow = %v, want %v", got, tt.want)
			}
			if err == nil && !c.Binds(tt.resource, got, tt.typ, "123") && tt.name != "list" && tt.name != "other patient kept after ours" && tt.name != "own type other id" {
				t.Errorf("narrowed query %v does not bind", got)
			}
			if !reflect.DeepEqual(q, orig) {
				t.Errorf("Narrow modified its input: %v", q)
			}
		})
	}
	if _, err := c.Narrow("Observation", nil, Patient, "1/2"); !errors.Is(err, errInvalidID) {
		t.Errorf("invalid id: %v", err)
	}
}

// TestNarrowEveryType narrows a search of every member type of every
// compartment and checks that the result binds.
func TestNarrowEveryType(t *testing.T) {
	for _, v := range []fhir.Release{fhir.R4, fhir.R5} {
		c := newChecker(t, Config{FHIRVersion: v})
		for _, typ := range Types() {
			for _, rt := range c.Definition(typ).ResourceTypes() {
				q, err := c.Narrow(rt, url.Values{"_count": {"5"}}, typ, "x-1")
				if err != nil {
					t.Fatalf("%v %v %s: %v", v, typ, rt, err)
				}
				if !c.Binds(rt, q, typ, "x-1") {
					t.Errorf("%v %v %s: narrowed %v does not bind", v, typ, rt, q)
				}
				if c.Binds(rt, url.Values{"_count": {"5"}}, typ, "x-1") {
					t.Errorf("%v %v %s: unbound query binds", v, typ, rt)
				}
			}
		}
	}
}
