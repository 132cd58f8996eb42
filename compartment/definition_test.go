package compartment

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/fhir"
)

// TestMemberCounts checks the member resource type counts of every
// definition against the published tables.
func TestMemberCounts(t *testing.T) {
	tests := []struct {
		v    fhir.Release
		typ  Type
		want int
	}{
		{fhir.R4, Patient, 66}, {fhir.R4, Encounter, 25}, {fhir.R4, RelatedPerson, 32}, {fhir.R4, Practitioner, 59}, {fhir.R4, Device, 32},
		{fhir.R5, Patient, 73}, {fhir.R5, Encounter, 26}, {fhir.R5, RelatedPerson, 30}, {fhir.R5, Practitioner, 57}, {fhir.R5, Device, 30},
	}
	for _, tt := range tests {
		t.Run(tt.v.String()+"/"+tt.typ.String(), func(t *testing.T) {
			d := Lookup(tt.v, tt.typ)
			if d == nil {
				t.Fatal("no definition")
			}
			if got := len(d.ResourceTypes()); got != tt.want {
				t.Errorf("%d member types, want %d", got, tt.want)
			}
			if d.version != tt.v || d.Type() != tt.typ || !strings.EqualFold(d.url, "http://hl7.org/fhir/CompartmentDefinition/"+tt.typ.String()) {
				t.Errorf("definition %v %v %s", d.version, d.Type(), d.url)
			}
		})
	}
}

// r4Patient is the R4 Patient compartment table of the specification.
var r4Patient = map[string]string{
	"Account": "subject", "AdverseEvent": "subject", "AllergyIntolerance": "patient recorder asserter",
	"Appointment": "actor", "AppointmentResponse": "actor", "AuditEvent": "patient", "Basic": "patient author",
	"BodyStructure": "patient", "CarePlan": "patient performer", "CareTeam": "patient participant",
	"ChargeItem": "subject", "Claim": "patient payee", "ClaimResponse": "patient", "ClinicalImpression": "subject",
	"Communication": "subject sender recipient", "CommunicationRequest": "subject sender recipient requester",
	"Composition": "subject author attester", "Condition": "patient asserter", "Consent": "patient",
	"Coverage": "policy-holder subscriber beneficiary payor", "CoverageEligibilityRequest": "patient",
	"CoverageEligibilityResponse": "patient", "DetectedIssue": "patient", "DeviceRequest": "subject performer",
	"DeviceUseStatement": "subject", "DiagnosticReport": "subject", "DocumentManifest": "subject author recipient",
	"DocumentReference": "subject author", "Encounter": "patient", "EnrollmentRequest": "subject",
	"EpisodeOfCare": "patient", "ExplanationOfBenefit": "patient payee", "FamilyMemberHistory": "patient",
	"Flag": "patient", "Goal": "patient", "Group": "member", "ImagingStudy": "patient", "Immunization": "patient",
	"ImmunizationEvaluation": "patient", "ImmunizationRecommendation": "patient", "Invoice": "subject patient recipient",
	"List": "subject source", "MeasureReport": "patient", "Media": "subject",
	"MedicationAdministration": "patient performer subject", "MedicationDispense": "subject patient receiver",
	"MedicationRequest": "subject", "MedicationStatement": "subject", "MolecularSequence": "patient",
	"NutritionOrder": "patient", "Observation": "subject performer", "Patient": "link", "Person": "patient",
	"Procedure": "patient performer", "Provenance": "patient", "QuestionnaireResponse": "subject author",
	"RelatedPerson": "patient", "RequestGroup": "subject participant", "ResearchSubject": "individual",
	"RiskAssessment": "subject", "Schedule": "actor", "ServiceRequest": "subject performer", "Specimen": "subject",
	"SupplyDelivery": "patient", "SupplyRequest": "subject", "VisionPrescription": "patient",
}

func TestR4PatientTable(t *testing.T) {
	d := Lookup(fhir.R4, Patient)
	if got := d.ResourceTypes(); len(got) != len(r4Patient) {
		t.Fatalf("%d types, want %d", len(got), len(r4Patient))
	}
	for rt, params := range r4Patient {
		if got := strings.Join(d.params(rt), " "); got != params {
			t.Errorf("%s: params %q, want %q", rt, got, params)
		}
	}
	for _, rt := range []string{"Medication", "Practitioner", "Organization", "Location", "Task", "Device", "Bundle"} {
		if d.params(rt) != nil {
			t.Errorf("%s is a member", rt)
		}
	}
}

// TestR4R5Differences samples the R4 → R5 differences table.
func TestR4R5Differences(t *testing.T) {
	tests := []struct {
		typ      Type
		resource string
		r4, r5   string // "-" = not a member type
	}{
		{Patient, "AllergyIntolerance", "patient recorder asserter", "patient participant"},
		{Patient, "Patient", "link", "link"},
		{Patient, "Task", "-", "patient focus"},
		{Patient, "Contract", "-", "patient"},
		{Patient, "ResearchSubject", "individual", "subject"},
		{Patient, "Media", "subject", "-"},
		{Encounter, "CareTeam", "encounter", "-"},
		{Encounter, "ChargeItem", "context", "encounter"},
		{Encounter, "DocumentManifest", "related-ref", "-"},
		{RelatedPerson, "CommunicationRequest", "sender recipient requester", "information-provider recipient requester"},
		{Practitioner, "PaymentNotice", "provider", "reporter"},
		{Practitioner, "ResearchStudy", "principalinvestigator", "-"},
		{Device, "DeviceRequest", "device subject requester performer", "subject requester performer"},
		{Device, "ResearchSubject", "-", "subject"},
	}
	for _, tt := range tests {
		for _, c := range []struct {
			v    fhir.Release
			want string
		}{{fhir.R4, tt.r4}, {fhir.R5, tt.r5}} {
			got := strings.Join(Lookup(c.v, tt.typ).params(tt.resource), " ")
			if got == "" {
				got = "-"
			}
			if got != c.want {
				t.Errorf("%v %v %s: %q, want %q", c.v, tt.typ, tt.resource, got, c.want)
			}
		}
	}
}

func TestSelfAndPaths(t *testing.T) {
	tests := []struct {
		v        fhir.Release
		typ      Type
		resource string
		self     bool
		narrow   string
		paths    []Path
	}{
		{fhir.R4, Patient, "Patient", true, "_id", []Path{{Elements: "link.other"}}},
		{fhir.R5, Patient, "Patient", true, "_id", []Path{{Elements: "link.other"}}},
		{fhir.R4, Patient, "Observation", false, "patient", []Path{{Elements: "subject"}, {Elements: "performer"}}},
		{fhir.R4, Patient, "Encounter", false, "patient", []Path{{Elements: "subject", Target: "Patient"}}},
		{fhir.R4, Patient, "Appointment", false, "patient", []Path{{Elements: "participant.actor"}}},
		{fhir.R4, Patient, "Account", false, "patient", []Path{{Elements: "subject"}}},
		{fhir.R4, Patient, "AdverseEvent", false, "subject", []Path{{Elements: "subject"}}},
		{fhir.R4, Patient, "Basic", false, "patient", []Path{{Elements: "subject", Target: "Patient"}, {Elements: "author"}}},
		{fhir.R4, Patient, "Group", false, "member", []Path{{Elements: "member.entity"}}},
		{fhir.R4, Device, "DeviceRequest", false, "device", []Path{{Elements: "codeReference"}, {Elements: "code"}, {Elements: "subject"}, {Elements: "requester"}, {Elements: "performer"}}},
		{fhir.R4, Device, "Media", false, "subject", []Path{{Elements: "subject"}}},
		{fhir.R4, Encounter, "Encounter", true, "_id", nil},
		{fhir.R4, Encounter, "ChargeItem", false, "context", []Path{{Elements: "context"}}},
		{fhir.R4, Practitioner, "Appointment", false, "practitioner", []Path{{Elements: "participant.actor"}}},
		{fhir.R4, RelatedPerson, "Person", false, "relatedperson", []Path{{Elements: "link.target"}}},
		{fhir.R5, Patient, "RequestOrchestration", false, "patient", []Path{{Elements: "subject"}, {Elements: "action.participant.actorReference"}, {Elements: "action.participant.actor"}}},
	}
	for _, tt := range tests {
		t.Run(tt.v.String()+"/"+tt.typ.String()+"/"+tt.resource, func(t *testing.T) {
			r, ok := Lookup(tt.v, tt.typ).Resource(tt.resource)
			if !ok {
				t.Fatal("not a member type")
			}
			if r.Self != tt.self || r.Narrow.Name != tt.narrow {
				t.Errorf("Self %v Narrow %q, want %v %q", r.Self, r.Narrow.Name, tt.self, tt.narrow)
			}
			var paths []Path
			for _, p := range r.Params {
				paths = append(paths, p.Paths...)
			}
			if !reflect.DeepEqual(paths, tt.paths) {
				t.Errorf("paths %v, want %v", paths, tt.paths)
			}
			if n, _ := Lookup(tt.v, tt.typ).NarrowParam(tt.resource); n != tt.narrow {
				t.Errorf("NarrowParam = %q", n)
			}
		})
	}
}

func TestResourceIsACopy(t *testing.T) {
	d := Lookup(fhir.R4, Patient)
	r, _ := d.Resource("Observation")
	r.Params[0].Paths[0].Elements = "x"
	r.Params[0].Targets[0] = "x"
	r2, _ := d.Resource("Observation")
	if r2.Params[0].Paths[0].Elements != "subject" || slices.Contains(r2.Params[0].Targets, "x") {
		t.Error("Resource shares its slices")
	}
}

func TestTypesAndLookup(t *testing.T) {
	if Lookup(0, Patient) != nil || Lookup(fhir.R4, 0) != nil || Lookup(3, Patient) != nil || Lookup(fhir.R4, 6) != nil {
		t.Error("Lookup of an unknown version or type returned a definition")
	}
	if Type(0).String() != "Type(0)" || Patient.String() != "Patient" {
		t.Error("String of unknown values")
	}
}

func TestTouchesLink(t *testing.T) {
	d := Lookup(fhir.R4, Patient)
	tests := []struct {
		resource, pointer string
		want              bool
	}{
		{"Observation", "/subject", true},
		{"Observation", "/subject/reference", true},
		{"Observation", "/performer/0", true},
		{"Observation", "/performer/-", true},
		{"Observation", "/id", true},
		{"Observation", "/resourceType", true},
		{"Observation", "", true},
		{"Observation", "/", true},
		{"Observation", "subject", true},
		{"Observation", "/sub~0ject", false},
		{"Observation", "/subject~2", true},
		{"Observation", "/status", false},
		{"Observation", "/valueQuantity/value", false},
		{"Observation", "/focus/0", false},
		{"Observation", "/contained/0/subject", false},
		{"Appointment", "/participant/1/actor/reference", true},
		{"Patient", "/link/0/other", true},
		{"Patient", "/name/0/family", false},
		{"Medication", "/code", false},
		{"Medication", "/id", true},
	}
	for _, tt := range tests {
		if got := d.TouchesLink(tt.resource, tt.pointer); got != tt.want {
			t.Errorf("TouchesLink(%s, %q) = %v, want %v", tt.resource, tt.pointer, got, tt.want)
		}
	}
}
