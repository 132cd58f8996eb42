package fhirstore

import (
	"net/url"
	"strings"
	"testing"
)

const (
	labCat = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
	vsCat  = "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"
)

func TestSearch(t *testing.T) {
	s := newSeeded(t)
	pat123Obs := []string{"Observation/lab1", "Observation/lab2", "Observation/vs1"}
	allObs := []string{"Observation/lab1", "Observation/lab2", "Observation/o456", "Observation/o789", "Observation/vs1", "Observation/vs456"}
	tests := []struct {
		name     string
		target   string
		hdr      []string
		status   int
		match    []string
		includes []string // nil: not checked
	}{
		// references: the forms of the patient
		{name: "patient id", target: "/fhir/Observation?patient=123", status: 200, match: pat123Obs, includes: []string{}},
		{name: "patient relative", target: "/fhir/Observation?patient=Patient/123", status: 200, match: pat123Obs},
		{name: "patient absolute", target: "/fhir/Observation?patient=" + testBase + "/Patient/123", status: 200, match: pat123Obs},
		{name: "patient escaped", target: "/fhir/Observation?patient=Patient%2F123", status: 200, match: pat123Obs},
		{name: "patient versioned", target: "/fhir/Observation?patient=Patient/123/_history/1", status: 200, match: pat123Obs},
		{name: "patient other server", target: "/fhir/Observation?patient=http://other.example/fhir/Patient/123", status: 200, match: []string{}},
		{name: "patient wrong type", target: "/fhir/Observation?patient=Practitioner/123", status: 200, match: []string{}},
		{name: "patient unknown", target: "/fhir/Observation?patient=999", status: 200, match: []string{}},
		{name: "patient list", target: "/fhir/Observation?patient=123,456", status: 200, match: []string{"Observation/lab1", "Observation/lab2", "Observation/o456", "Observation/vs1", "Observation/vs456"}},
		{name: "patient repeated is AND", target: "/fhir/Observation?patient=123&patient=456", status: 200, match: []string{}},
		{name: "patient empty value ignored", target: "/fhir/Observation?patient=", status: 200, match: allObs},
		{name: "subject id", target: "/fhir/Observation?subject=456", status: 200, match: []string{"Observation/o456", "Observation/vs456"}},
		{name: "subject typed", target: "/fhir/Observation?subject=Patient/456", status: 200, match: []string{"Observation/o456", "Observation/vs456"}},
		{name: "subject type modifier", target: "/fhir/Observation?subject:Patient=456", status: 200, match: []string{"Observation/o456", "Observation/vs456"}},
		{name: "subject type modifier mismatch", target: "/fhir/Observation?subject:Group=456", status: 200, match: []string{}},
		{name: "subject bad modifier", target: "/fhir/Observation?subject:nope=456", status: 400},
		{name: "encounter", target: "/fhir/Observation?encounter=E1", status: 200, match: []string{"Observation/lab1", "Observation/vs1"}},
		{name: "performer", target: "/fhir/Observation?performer=Practitioner/9", status: 200, match: []string{"Observation/lab1"}},
		{name: "condition patient", target: "/fhir/Condition?patient=123", status: 200, match: []string{"Condition/c1", "Condition/c2"}},
		{name: "encounter patient", target: "/fhir/Encounter?patient=123", status: 200, match: []string{"Encounter/E1", "Encounter/E2"}},
		{name: "allergy patient", target: "/fhir/AllergyIntolerance?patient=456", status: 200, match: []string{"AllergyIntolerance/a456"}},
		{name: "medication request patient", target: "/fhir/MedicationRequest?patient=Patient/123", status: 200, match: []string{"MedicationRequest/mr1"}},
		{name: "diagnostic report subject", target: "/fhir/DiagnosticReport?subject=Patient/123", status: 200, match: []string{"DiagnosticReport/dr1"}},
		{name: "provenance target", target: "/fhir/Provenance?target=Observation/lab1", status: 200, match: []string{"Provenance/prov1"}},
		{name: "provenance patient is a Patient target", target: "/fhir/Provenance?patient=123", status: 200, match: []string{}},
		{name: "patient general practitioner", target: "/fhir/Patient?general-practitioner=9", status: 200, match: []string{"Patient/123"}},
		{name: "patient organization", target: "/fhir/Patient?organization=org1", status: 200, match: []string{"Patient/123", "Patient/456"}},

		// tokens
		{name: "category code", target: "/fhir/Observation?category=laboratory", status: 200, match: []string{"Observation/lab1", "Observation/lab2", "Observation/o456"}},
		{name: "category system and code", target: "/fhir/Observation?category=" + url.QueryEscape(labCat), status: 200, match: []string{"Observation/lab1", "Observation/lab2", "Observation/o456"}},
		{name: "category unescaped bar", target: "/fhir/Observation?category=" + labCat, status: 200, match: []string{"Observation/lab1", "Observation/lab2", "Observation/o456"}},
		{name: "category no system", target: "/fhir/Observation?category=|laboratory", status: 200, match: []string{}},
		{name: "category wrong system", target: "/fhir/Observation?category=http://example.org|laboratory", status: 200, match: []string{}},
		{name: "category system only", target: "/fhir/Observation?category=http://terminology.hl7.org/CodeSystem/observation-category|", status: 200, match: allObs},
		{name: "category list", target: "/fhir/Observation?category=" + labCat + "," + vsCat, status: 200, match: allObs},
		{name: "category AND", target: "/fhir/Observation?category=laboratory&category=vital-signs", status: 200, match: []string{}},
		{name: "category with patient", target: "/fhir/Observation?patient=123&category=" + vsCat, status: 200, match: []string{"Observation/vs1"}},
		{name: "category not", target: "/fhir/Observation?category:not=laboratory", status: 200, match: []string{"Observation/o789", "Observation/vs1", "Observation/vs456"}},
		{name: "category case sensitive", target: "/fhir/Observation?category=Laboratory", status: 200, match: []string{}},
		{name: "code", target: "/fhir/Observation?code=4548-4", status: 200, match: []string{"Observation/lab1", "Observation/o456"}},
		{name: "code loinc", target: "/fhir/Observation?code=http://loinc.org|2339-0", status: 200, match: []string{"Observation/lab2"}},
		{name: "code spec example", target: "/fhir/Observation?code=4548-4&_sort:desc=date&_count=10&patient=123", status: 200, match: []string{"Observation/lab1"}},
		{name: "code unsupported modifier", target: "/fhir/Observation?code:text=x", status: 400},
		{name: "condition category", target: "/fhir/Condition?category=problem-list-item", status: 200, match: []string{"Condition/c1", "Condition/c456"}},
		{name: "condition encounter diagnosis", target: "/fhir/Condition?category=encounter-diagnosis", status: 200, match: []string{"Condition/c2"}},
		{name: "condition snomed", target: "/fhir/Condition?code=http://snomed.info/sct|44054006", status: 200, match: []string{"Condition/c1"}},
		{name: "medication request code", target: "/fhir/MedicationRequest?code=745679", status: 200, match: []string{"MedicationRequest/mr456"}},
		{name: "identifier", target: "/fhir/Observation?identifier=http://my-lab-system|123", status: 200, match: []string{"Observation/lab1", "Observation/o456"}},
		{name: "identifier value only", target: "/fhir/Patient?identifier=MRN-456", status: 200, match: []string{"Patient/456"}},
		{name: "status", target: "/fhir/Observation?status=final&patient=123", status: 200, match: pat123Obs},
		{name: "boolean", target: "/fhir/Patient?active=true", status: 200, match: []string{"Patient/123", "Patient/456", "Patient/789"}},
		{name: "gender", target: "/fhir/Patient?gender=male", status: 200, match: []string{"Patient/456"}},
		{name: "id list", target: "/fhir/Observation?_id=lab1,vs1", status: 200, match: []string{"Observation/lab1", "Observation/vs1"}},
		{name: "id escaped comma", target: "/fhir/Observation?_id=lab1%5C,vs1", status: 200, match: []string{}},
		{name: "missing true", target: "/fhir/Observation?performer:missing=true&patient=123", status: 200, match: []string{"Observation/lab2", "Observation/vs1"}},
		{name: "missing false", target: "/fhir/Observation?performer:missing=false", status: 200, match: []string{"Observation/lab1"}},
		{name: "missing bad", target: "/fhir/Observation?performer:missing=maybe", status: 400},

		// strings and dates
		{name: "name prefix", target: "/fhir/Patient?name=smith", status: 200, match: []string{"Patient/123", "Patient/456"}},
		{name: "name given", target: "/fhir/Patient?name=jan", status: 200, match: []string{"Patient/123"}},
		{name: "name not infix", target: "/fhir/Patient?name=mith", status: 200, match: []string{}},
		{name: "name contains", target: "/fhir/Patient?name:contains=ARCI", status: 200, match: []string{"Patient/789"}},
		{name: "family exact", target: "/fhir/Patient?family:exact=Smith", status: 200, match: []string{"Patient/123", "Patient/456"}},
		{name: "family exact is case sensitive", target: "/fhir/Patient?family:exact=smith", status: 200, match: []string{}},
		{name: "string bad modifier", target: "/fhir/Patient?name:below=x", status: 400},
		{name: "birthdate year", target: "/fhir/Patient?birthdate=1970", status: 200, match: []string{"Patient/123"}},
		{name: "birthdate ge", target: "/fhir/Patient?birthdate=ge1985-11-02", status: 200, match: []string{"Patient/456", "Patient/789"}},
		{name: "birthdate lt", target: "/fhir/Patient?birthdate=lt1985", status: 200, match: []string{"Patient/123"}},
		{name: "date day", target: "/fhir/Observation?date=2024-01-10", status: 200, match: []string{"Observation/lab1", "Observation/vs1"}},
		{name: "date ge month", target: "/fhir/Observation?date=ge2024-03", status: 200, match: []string{"Observation/o456", "Observation/o789", "Observation/vs456"}},
		{name: "date range AND", target: "/fhir/Observation?date=gt2024-01-31&date=lt2024-04", status: 200, match: []string{"Observation/lab2", "Observation/o456", "Observation/vs456"}},
		{name: "date instant", target: "/fhir/Observation?date=2024-01-10T09:30:00Z", status: 200, match: []string{"Observation/lab1"}},
		{name: "date bad", target: "/fhir/Observation?date=yesterday", status: 400},
		{name: "encounter period", target: "/fhir/Encounter?date=2024-02-15", status: 200, match: []string{"Encounter/E2"}},
		{name: "last updated", target: "/fhir/Observation?_lastUpdated=ge2026-01-01T00:00:14Z", status: 200, match: []string{"Observation/o456", "Observation/o789", "Observation/vs456"}},

		// unknown, unsupported and control parameters
		{name: "unknown ignored", target: "/fhir/Observation?foo=bar&patient=123", status: 200, match: pat123Obs},
		{name: "unknown strict", target: "/fhir/Observation?foo=bar", hdr: []string{"Prefer", "handling=strict"}, status: 400},
		{name: "unknown underscore ignored", target: "/fhir/Observation?_foo=bar&patient=123", status: 200, match: pat123Obs},
		{name: "chain refused", target: "/fhir/Observation?subject.name=smith", status: 400},
		{name: "has refused", target: "/fhir/Patient?_has:Observation:patient:code=4548-4", status: 400},
		{name: "bad escape", target: "/fhir/Observation?patient=%zz", status: 400},
		{name: "count bad", target: "/fhir/Observation?_count=x", status: 400},
		{name: "count negative", target: "/fhir/Observation?_count=-1", status: 400},
		{name: "offset bad", target: "/fhir/Observation?_offset=-3", status: 400},
		{name: "summary bad", target: "/fhir/Observation?_summary=maybe", status: 400},

		// _include and _revinclude
		{name: "include patient", target: "/fhir/Observation?patient=123&_include=Observation:patient", status: 200, match: pat123Obs, includes: []string{"Patient/123"}},
		{name: "include subject typed", target: "/fhir/Observation?_id=o456&_include=Observation:subject:Patient", status: 200, match: []string{"Observation/o456"}, includes: []string{"Patient/456"}},
		{name: "include subject wrong target", target: "/fhir/Observation?_id=o456&_include=Observation:subject:Group", status: 200, match: []string{"Observation/o456"}, includes: []string{}},
		{name: "include encounter", target: "/fhir/Observation?patient=123&_include=Observation:encounter", status: 200, match: pat123Obs, includes: []string{"Encounter/E1", "Encounter/E2"}},
		{name: "include two", target: "/fhir/Observation?_id=lab1&_include=Observation:performer&_include=Observation:patient", status: 200, match: []string{"Observation/lab1"}, includes: []string{"Patient/123", "Practitioner/9"}},
		{name: "include wildcard", target: "/fhir/Observation?_id=lab1&_include=*", status: 200, match: []string{"Observation/lab1"}, includes: []string{"Encounter/E1", "Patient/123", "Practitioner/9"}},
		{name: "include other type ignored", target: "/fhir/Observation?_id=lab1&_include=Condition:patient", status: 200, match: []string{"Observation/lab1"}, includes: []string{}},
		{name: "include not repeated without iterate", target: "/fhir/DiagnosticReport?_id=dr1&_include=DiagnosticReport:result&_include=Observation:performer", status: 200, match: []string{"DiagnosticReport/dr1"}, includes: []string{"Observation/lab1"}},
		{name: "include iterate", target: "/fhir/DiagnosticReport?_id=dr1&_include=DiagnosticReport:result&_include:iterate=Observation:performer", status: 200, match: []string{"DiagnosticReport/dr1"}, includes: []string{"Observation/lab1", "Practitioner/9"}},
		{name: "include bad parameter", target: "/fhir/Observation?_include=Observation:nope", status: 400},
		{name: "include not a reference", target: "/fhir/Observation?_include=Observation:code", status: 400},
		{name: "include bad type", target: "/fhir/Observation?_include=Nope:patient", status: 400},
		{name: "include bad shape", target: "/fhir/Observation?_include=patient", status: 400},
		{name: "include bad modifier", target: "/fhir/Observation?_include:deep=Observation:patient", status: 400},
		{name: "revinclude provenance", target: "/fhir/Observation?patient=123&_revinclude=Provenance:target", status: 200, match: pat123Obs, includes: []string{"Provenance/prov1"}},
		{name: "revinclude observations", target: "/fhir/Patient?_id=456&_revinclude=Observation:subject", status: 200, match: []string{"Patient/456"}, includes: []string{"Observation/o456", "Observation/vs456"}},
		{name: "revinclude typed", target: "/fhir/Patient?_id=456&_revinclude=Observation:subject:Group", status: 200, match: []string{"Patient/456"}, includes: []string{}},
		{name: "revinclude wildcard refused", target: "/fhir/Patient?_revinclude=*", status: 400},
		{name: "include of a match not repeated", target: "/fhir/Patient?_id=123&_revinclude=Observation:subject&_include=Patient:link", status: 200, match: []string{"Patient/123"}, includes: []string{"Observation/lab1", "Observation/lab2", "Observation/vs1"}},

		// compartment searches
		{name: "compartment observations", target: "/fhir/Patient/123/Observation", status: 200, match: pat123Obs},
		{name: "compartment with params", target: "/fhir/Patient/456/Observation?category=laboratory", status: 200, match: []string{"Observation/o456"}},
		{name: "compartment conditions", target: "/fhir/Patient/123/Condition", status: 200, match: []string{"Condition/c1", "Condition/c2"}},
		{name: "compartment patient", target: "/fhir/Patient/123/Patient", status: 200, match: []string{"Patient/123"}},
		{name: "compartment unknown patient", target: "/fhir/Patient/999/Observation", status: 200, match: []string{}},
		{name: "compartment non-member type", target: "/fhir/Patient/123/Practitioner", status: 200, match: []string{}},
		{name: "compartment all types", target: "/fhir/Patient/456/*", status: 200, match: []string{"AllergyIntolerance/a456", "Condition/c456", "Encounter/e456", "MedicationRequest/mr456", "Observation/o456", "Observation/vs456", "Patient/456"}},
		{name: "compartment all types filtered", target: "/fhir/Patient/456/*?_id=o456", status: 200, match: []string{"Observation/o456"}},
		{name: "compartment AND patient param", target: "/fhir/Patient/123/Observation?patient=456", status: 200, match: []string{}},
		{name: "compartment with include", target: "/fhir/Patient/123/Observation?_include=Observation:performer", status: 200, match: pat123Obs, includes: []string{"Practitioner/9"}},
		{name: "compartment instance path", target: "/fhir/Patient/123/Observation/lab1", status: 404},
		{name: "compartment unknown type", target: "/fhir/Patient/123/Nope", status: 404},
		{name: "other compartments", target: "/fhir/Encounter/E1/Observation", status: 404},

		// system searches
		{name: "system by type", target: "/fhir?_type=Observation,Condition&patient=123", status: 200, match: []string{"Condition/c1", "Condition/c2", "Observation/lab1", "Observation/lab2", "Observation/vs1"}},
		{name: "system by repeated type", target: "/fhir?_type=Observation&_type=Condition&patient=123", status: 200, match: []string{"Condition/c1", "Condition/c2", "Observation/lab1", "Observation/lab2", "Observation/vs1"}},
		{name: "system id", target: "/fhir?_id=lab1,c1", status: 200, match: []string{"Condition/c1", "Observation/lab1"}},
		{name: "system trailing slash", target: "/fhir/?_id=lab1", status: 200, match: []string{"Observation/lab1"}},
		{name: "system param not common", target: "/fhir?patient=123", status: 400},
		{name: "system param not on every type", target: "/fhir?_type=Observation,Patient&patient=123", status: 400},
		{name: "system unknown type", target: "/fhir?_type=Nope", status: 400},
		{name: "system type not stored", target: "/fhir?_type=Device", status: 200, match: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := wantStatus(t, do(t, s, "GET", tt.target, "", tt.hdr...), tt.status)
			if tt.status != 200 {
				return
			}
			got := entries(t, b, "match")
			if !sameList(got, tt.match) {
				t.Fatalf("matches %v, want %v", got, tt.match)
			}
			if total(b) != len(tt.match) {
				t.Fatalf("total %d, want %d", total(b), len(tt.match))
			}
			if tt.includes != nil {
				if inc := entries(t, b, "include"); !sameList(inc, tt.includes) {
					t.Fatalf("includes %v, want %v", inc, tt.includes)
				}
			}
			self := link(b, "self")
			if !strings.HasPrefix(self, testBase) {
				t.Fatalf("self link %q", self)
			}
			// The self link repeats the search.
			u, _ := url.Parse(self)
			again := wantStatus(t, do(t, s, "GET", strings.TrimPrefix(u.String(), "http://fhir.test"), "", tt.hdr...), 200)
			if got2 := entries(t, again, "match"); !sameList(got2, got) {
				t.Fatalf("self link %s gives %v, want %v", self, got2, got)
			}
		})
	}
}

func TestSearchPost(t *testing.T) {
	s := newSeeded(t)
	form := "Content-Type"
	tests := []struct {
		name   string
		target string
		body   string
		hdr    []string
		status int
		match  []string
	}{
		{name: "form body", target: "/fhir/Observation/_search", body: "patient=123&category=laboratory", hdr: []string{form, "application/x-www-form-urlencoded"}, status: 200, match: []string{"Observation/lab1", "Observation/lab2"}},
		{name: "form and URL combine", target: "/fhir/Observation/_search?patient=123", body: "category=vital-signs", hdr: []string{form, "application/x-www-form-urlencoded"}, status: 200, match: []string{"Observation/vs1"}},
		{name: "repeated across URL and body is AND", target: "/fhir/Observation/_search?patient=123", body: "patient=456", hdr: []string{form, "application/x-www-form-urlencoded"}, status: 200, match: []string{}},
		{name: "form charset", target: "/fhir/Observation/_search", body: "_id=vs1", hdr: []string{form, "application/x-www-form-urlencoded; charset=utf-8"}, status: 200, match: []string{"Observation/vs1"}},
		{name: "empty body", target: "/fhir/Observation/_search?_id=lab2", status: 200, match: []string{"Observation/lab2"}},
		{name: "JSON body refused", target: "/fhir/Observation/_search", body: `{"patient":"123"}`, status: 415},
		{name: "system", target: "/fhir/_search", body: "_type=Condition&patient=456", hdr: []string{form, "application/x-www-form-urlencoded"}, status: 200, match: []string{"Condition/c456"}},
		{name: "compartment", target: "/fhir/Patient/123/Condition/_search", body: "category=problem-list-item", hdr: []string{form, "application/x-www-form-urlencoded"}, status: 200, match: []string{"Condition/c1"}},
		{name: "compartment all", target: "/fhir/Patient/789/*/_search", body: "", status: 200, match: []string{"Encounter/e789", "Observation/o789", "Patient/789"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := wantStatus(t, do(t, s, "POST", tt.target, tt.body, tt.hdr...), tt.status)
			if tt.status != 200 {
				return
			}
			if got := entries(t, b, "match"); !sameList(got, tt.match) {
				t.Fatalf("matches %v, want %v", got, tt.match)
			}
			if strings.Contains(link(b, "self"), "_search") {
				t.Fatalf("self link %q should be a GET search", link(b, "self"))
			}
		})
	}
}

func TestPaging(t *testing.T) {
	tests := []struct {
		name   string
		target string
		count  int
		want   int
	}{
		{"type search", "/fhir/Observation?_count=2", 2, 6},
		{"page of one", "/fhir/Observation?_count=1&category=laboratory", 1, 3},
		{"compartment", "/fhir/Patient/123/*?_count=4", 4, 11},
		{"everything", "/fhir/Patient/123/$everything?_count=5", 5, 11},
		{"system", "/fhir?_count=7", 7, 26},
		{"default count", "/fhir?_type=Observation,Condition,Encounter", DefaultCount, 13},
		{"type history", "/fhir/Observation/_history?_count=3", 3, 7},
		{"system history", "/fhir/_history?_count=10", 10, 27},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSeeded(t)
			seen := map[string]bool{}
			var all []string
			next := tt.target
			for pages := 0; next != ""; pages++ {
				if pages > 50 {
					t.Fatal("too many pages")
				}
				b := wantStatus(t, do(t, s, "GET", next, ""), 200)
				if total(b) != tt.want {
					t.Fatalf("total %d, want %d", total(b), tt.want)
				}
				page := entries(t, b, "")
				if strings.Contains(tt.target, "_history") {
					// history entries repeat ids; count them only
				} else {
					page = entries(t, b, "match")
				}
				if n := len(page); n > tt.count || (n < tt.count && link(b, "next") != "") {
					t.Fatalf("page of %d entries with count %d", n, tt.count)
				}
				if pages > 0 && link(b, "previous") == "" && !strings.Contains(tt.target, "_history") {
					t.Fatalf("page %d has no previous link", pages)
				}
				for _, e := range page {
					if seen[e] && !strings.Contains(tt.target, "_history") {
						t.Fatalf("%s on two pages", e)
					}
					seen[e] = true
				}
				all = append(all, page...)
				next = strings.TrimPrefix(link(b, "next"), "http://fhir.test")
			}
			if len(all) != tt.want {
				t.Fatalf("paged through %d entries, want %d", len(all), tt.want)
			}
		})
	}
	t.Run("count capped", func(t *testing.T) {
		s, _ := New(Config{BasePath: "/fhir", BaseURL: testBase, MaxCount: 3})
		_ = s.Seed()
		b := wantStatus(t, do(t, s, "GET", "/fhir/Observation?_count=100", ""), 200)
		if n := len(entries(t, b, "match")); n != 3 || !strings.Contains(link(b, "next"), "_count=3") {
			t.Fatalf("%d entries, next %q", n, link(b, "next"))
		}
	})
	t.Run("summary count", func(t *testing.T) {
		s := newSeeded(t)
		for _, target := range []string{"/fhir/Observation?_summary=count&patient=123", "/fhir/Observation?_count=0&patient=123"} {
			b := wantStatus(t, do(t, s, "GET", target, ""), 200)
			if total(b) != 3 || len(entries(t, b, "")) != 0 {
				t.Fatalf("%s: total %d, %d entries", target, total(b), len(entries(t, b, "")))
			}
		}
	})
	t.Run("elements in search", func(t *testing.T) {
		s := newSeeded(t)
		b := wantStatus(t, do(t, s, "GET", "/fhir/Observation?_id=vs1&_elements=code", ""), 200)
		res := field(b, "entry", "0", "resource").(map[string]any)
		if res["code"] == nil || res["subject"] != nil || field(res, "meta", "tag", "0", "code") != "SUBSETTED" {
			t.Fatalf("got %v", res)
		}
	})
	t.Run("offset past the end", func(t *testing.T) {
		s := newSeeded(t)
		b := wantStatus(t, do(t, s, "GET", "/fhir/Observation?_offset=100", ""), 200)
		if total(b) != 6 || len(entries(t, b, "")) != 0 || link(b, "next") != "" {
			t.Fatalf("got %v", b)
		}
	})
}

func TestEverything(t *testing.T) {
	s := newSeeded(t)
	tests := []struct {
		name     string
		method   string
		target   string
		status   int
		match    []string
		includes []string
	}{
		{name: "patient 123", target: "/fhir/Patient/123/$everything", status: 200,
			match:    []string{"AllergyIntolerance/a1", "Condition/c1", "Condition/c2", "DiagnosticReport/dr1", "Encounter/E1", "Encounter/E2", "MedicationRequest/mr1", "Observation/lab1", "Observation/lab2", "Observation/vs1", "Patient/123"},
			includes: []string{"Medication/m1", "Organization/org1", "Practitioner/9"}},
		{name: "patient 789", target: "/fhir/Patient/789/$everything", status: 200,
			match:    []string{"Encounter/e789", "Observation/o789", "Patient/789"},
			includes: []string{"Organization/org1", "Practitioner/9"}},
		{name: "post", method: "POST", target: "/fhir/Patient/789/$everything", status: 200,
			match:    []string{"Encounter/e789", "Observation/o789", "Patient/789"},
			includes: []string{"Organization/org1", "Practitioner/9"}},
		{name: "type filter", target: "/fhir/Patient/123/$everything?_type=Observation", status: 200,
			match:    []string{"Observation/lab1", "Observation/lab2", "Observation/vs1"},
			includes: []string{"Encounter/E1", "Encounter/E2", "Patient/123", "Practitioner/9"}},
		{name: "unknown patient", target: "/fhir/Patient/999/$everything", status: 404},
		{name: "bad type", target: "/fhir/Patient/123/$everything?_type=Nope", status: 400},
		{name: "type level unsupported", target: "/fhir/Patient/$everything", status: 400},
		{name: "other operation", target: "/fhir/Observation/lab1/$validate", status: 400},
		{name: "system operation", target: "/fhir/$export", status: 400},
		{name: "put", method: "PUT", target: "/fhir/Patient/123/$everything", status: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "GET"
			}
			b := wantStatus(t, do(t, s, method, tt.target, ""), tt.status)
			if tt.status != 200 {
				return
			}
			if got := entries(t, b, "match"); !sameList(got, tt.match) {
				t.Fatalf("matches %v, want %v", got, tt.match)
			}
			if got := entries(t, b, "include"); !sameList(got, tt.includes) {
				t.Fatalf("includes %v, want %v", got, tt.includes)
			}
		})
	}
	t.Run("deleted patient", func(t *testing.T) {
		s := newSeeded(t)
		wantStatus(t, do(t, s, "DELETE", "/fhir/Patient/456", ""), 204)
		wantStatus(t, do(t, s, "GET", "/fhir/Patient/456/$everything", ""), 410)
	})
}
