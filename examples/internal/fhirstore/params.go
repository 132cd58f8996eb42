package fhirstore

// The search parameters the store understands. They are the FHIR R4
// definitions (search-parameters.json of hl7.fhir.r4.core 4.0.1) of the
// resource types the demo data uses, with their FHIRPath expressions
// reduced to element paths. Other R4 types can be stored and read and
// searched by the common parameters (_id, _lastUpdated) only.

type paramKind uint8

const (
	tokenParam paramKind = iota + 1
	referenceParam
	stringParam
	dateParam
)

type paramDef struct {
	kind    paramKind
	paths   [][]string // element paths from the resource root; arrays are flattened
	targets []string   // reference parameters: allowed target types (nil: any)
}

func p(kind paramKind, paths ...string) paramDef {
	d := paramDef{kind: kind}
	for _, s := range paths {
		d.paths = append(d.paths, splitPath(s))
	}
	return d
}

func ref(targets []string, paths ...string) paramDef {
	d := p(referenceParam, paths...)
	d.targets = targets
	return d
}

func splitPath(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

var onlyPatient = []string{"Patient"}

// searchParams maps resource type → parameter name → definition.
var searchParams = map[string]map[string]paramDef{
	"Patient": {
		"identifier":           p(tokenParam, "identifier"),
		"name":                 p(stringParam, "name"),
		"family":               p(stringParam, "name.family"),
		"given":                p(stringParam, "name.given"),
		"gender":               p(tokenParam, "gender"),
		"birthdate":            p(dateParam, "birthDate"),
		"active":               p(tokenParam, "active"),
		"general-practitioner": ref([]string{"Organization", "Practitioner", "PractitionerRole"}, "generalPractitioner"),
		"organization":         ref([]string{"Organization"}, "managingOrganization"),
		"link":                 ref([]string{"Patient", "RelatedPerson"}, "link.other"),
	},
	"Practitioner": {
		"identifier": p(tokenParam, "identifier"),
		"name":       p(stringParam, "name"),
		"family":     p(stringParam, "name.family"),
		"given":      p(stringParam, "name.given"),
		"active":     p(tokenParam, "active"),
	},
	"Organization": {
		"identifier": p(tokenParam, "identifier"),
		"name":       p(stringParam, "name", "alias"),
		"active":     p(tokenParam, "active"),
	},
	"Medication": {
		"identifier": p(tokenParam, "identifier"),
		"code":       p(tokenParam, "code"),
		"status":     p(tokenParam, "status"),
	},
	"Observation": {
		"identifier": p(tokenParam, "identifier"),
		"status":     p(tokenParam, "status"),
		"category":   p(tokenParam, "category"),
		"code":       p(tokenParam, "code"),
		"date":       p(dateParam, "effectiveDateTime", "effectivePeriod", "effectiveInstant"),
		"subject":    ref(nil, "subject"),
		"patient":    ref(onlyPatient, "subject"),
		"encounter":  ref([]string{"Encounter"}, "encounter"),
		"performer":  ref([]string{"CareTeam", "Organization", "Patient", "Practitioner", "PractitionerRole", "RelatedPerson"}, "performer"),
		"based-on":   ref(nil, "basedOn"),
		"has-member": ref(nil, "hasMember"),
	},
	"Condition": {
		"identifier":          p(tokenParam, "identifier"),
		"clinical-status":     p(tokenParam, "clinicalStatus"),
		"verification-status": p(tokenParam, "verificationStatus"),
		"category":            p(tokenParam, "category"),
		"code":                p(tokenParam, "code"),
		"onset-date":          p(dateParam, "onsetDateTime", "onsetPeriod"),
		"subject":             ref([]string{"Group", "Patient"}, "subject"),
		"patient":             ref(onlyPatient, "subject"),
		"encounter":           ref([]string{"Encounter"}, "encounter"),
		"asserter":            ref([]string{"Patient", "Practitioner", "PractitionerRole", "RelatedPerson"}, "asserter"),
	},
	"Encounter": {
		"identifier":       p(tokenParam, "identifier"),
		"status":           p(tokenParam, "status"),
		"class":            p(tokenParam, "class"),
		"type":             p(tokenParam, "type"),
		"date":             p(dateParam, "period"),
		"subject":          ref([]string{"Group", "Patient"}, "subject"),
		"patient":          ref(onlyPatient, "subject"),
		"participant":      ref([]string{"Practitioner", "PractitionerRole", "RelatedPerson"}, "participant.individual"),
		"practitioner":     ref([]string{"Practitioner"}, "participant.individual"),
		"service-provider": ref([]string{"Organization"}, "serviceProvider"),
	},
	"AllergyIntolerance": {
		"identifier":      p(tokenParam, "identifier"),
		"clinical-status": p(tokenParam, "clinicalStatus"),
		"category":        p(tokenParam, "category"),
		"code":            p(tokenParam, "code"),
		"patient":         ref(onlyPatient, "patient"),
		"recorder":        ref([]string{"Patient", "Practitioner", "PractitionerRole", "RelatedPerson"}, "recorder"),
		"asserter":        ref([]string{"Patient", "Practitioner", "PractitionerRole", "RelatedPerson"}, "asserter"),
	},
	"MedicationRequest": {
		"identifier": p(tokenParam, "identifier"),
		"status":     p(tokenParam, "status"),
		"intent":     p(tokenParam, "intent"),
		"category":   p(tokenParam, "category"),
		"code":       p(tokenParam, "medicationCodeableConcept"),
		"authoredon": p(dateParam, "authoredOn"),
		"subject":    ref([]string{"Group", "Patient"}, "subject"),
		"patient":    ref(onlyPatient, "subject"),
		"encounter":  ref([]string{"Encounter"}, "encounter"),
		"medication": ref([]string{"Medication"}, "medicationReference"),
		"requester":  ref(nil, "requester"),
	},
	"DiagnosticReport": {
		"identifier": p(tokenParam, "identifier"),
		"status":     p(tokenParam, "status"),
		"category":   p(tokenParam, "category"),
		"code":       p(tokenParam, "code"),
		"date":       p(dateParam, "effectiveDateTime", "effectivePeriod"),
		"subject":    ref(nil, "subject"),
		"patient":    ref(onlyPatient, "subject"),
		"encounter":  ref([]string{"Encounter"}, "encounter"),
		"result":     ref([]string{"Observation"}, "result"),
		"performer":  ref(nil, "performer"),
	},
	"Procedure": {
		"identifier": p(tokenParam, "identifier"),
		"status":     p(tokenParam, "status"),
		"category":   p(tokenParam, "category"),
		"code":       p(tokenParam, "code"),
		"date":       p(dateParam, "performedDateTime", "performedPeriod"),
		"subject":    ref([]string{"Group", "Patient"}, "subject"),
		"patient":    ref(onlyPatient, "subject"),
		"encounter":  ref([]string{"Encounter", "EpisodeOfCare"}, "encounter"),
		"performer":  ref(nil, "performer.actor"),
	},
	"Immunization": {
		"identifier":   p(tokenParam, "identifier"),
		"status":       p(tokenParam, "status"),
		"vaccine-code": p(tokenParam, "vaccineCode"),
		"date":         p(dateParam, "occurrenceDateTime"),
		"patient":      ref(onlyPatient, "patient"),
		"performer":    ref(nil, "performer.actor"),
	},
	"DocumentReference": {
		"identifier": p(tokenParam, "identifier"),
		"status":     p(tokenParam, "status"),
		"category":   p(tokenParam, "category"),
		"type":       p(tokenParam, "type"),
		"date":       p(dateParam, "date"),
		"subject":    ref(nil, "subject"),
		"patient":    ref(onlyPatient, "subject"),
		"author":     ref(nil, "author"),
		"encounter":  ref([]string{"Encounter", "EpisodeOfCare"}, "context.encounter"),
	},
	"CarePlan": {
		"identifier": p(tokenParam, "identifier"),
		"status":     p(tokenParam, "status"),
		"category":   p(tokenParam, "category"),
		"subject":    ref([]string{"Group", "Patient"}, "subject"),
		"patient":    ref(onlyPatient, "subject"),
		"encounter":  ref([]string{"Encounter"}, "encounter"),
		"performer":  ref(nil, "activity.detail.performer"),
	},
	"CareTeam": {
		"identifier":  p(tokenParam, "identifier"),
		"status":      p(tokenParam, "status"),
		"category":    p(tokenParam, "category"),
		"subject":     ref([]string{"Group", "Patient"}, "subject"),
		"patient":     ref(onlyPatient, "subject"),
		"encounter":   ref([]string{"Encounter"}, "encounter"),
		"participant": ref(nil, "participant.member"),
	},
	"Goal": {
		"identifier":       p(tokenParam, "identifier"),
		"lifecycle-status": p(tokenParam, "lifecycleStatus"),
		"category":         p(tokenParam, "category"),
		"subject":          ref([]string{"Group", "Organization", "Patient"}, "subject"),
		"patient":          ref(onlyPatient, "subject"),
	},
	"ServiceRequest": {
		"identifier": p(tokenParam, "identifier"),
		"status":     p(tokenParam, "status"),
		"category":   p(tokenParam, "category"),
		"code":       p(tokenParam, "code"),
		"subject":    ref(nil, "subject"),
		"patient":    ref(onlyPatient, "subject"),
		"encounter":  ref([]string{"Encounter", "EpisodeOfCare"}, "encounter"),
		"performer":  ref(nil, "performer"),
		"requester":  ref(nil, "requester"),
	},
	"Provenance": {
		"target":   ref(nil, "target"),
		"patient":  ref(onlyPatient, "target"),
		"agent":    ref(nil, "agent.who"),
		"recorded": p(dateParam, "recorded"),
	},
}

// patientCompartment lists, per resource type, the parameters that put a
// resource in a Patient compartment (R4 compartmentdefinition-patient.json,
// restricted to the types above). A Patient is also in its own compartment.
var patientCompartment = map[string][]string{
	"Patient":            {"link"},
	"Observation":        {"subject", "performer"},
	"Condition":          {"patient", "asserter"},
	"Encounter":          {"patient"},
	"AllergyIntolerance": {"patient", "recorder", "asserter"},
	"MedicationRequest":  {"subject"},
	"DiagnosticReport":   {"subject"},
	"Provenance":         {"patient"},
	"Procedure":          {"patient", "performer"},
	"Immunization":       {"patient"},
	"DocumentReference":  {"subject", "author"},
	"CarePlan":           {"patient", "performer"},
	"CareTeam":           {"patient", "participant"},
	"Goal":               {"patient"},
	"ServiceRequest":     {"subject", "performer"},
}

// lookupParam returns the definition of a parameter of typ. _id and
// _lastUpdated are common to every type.
func lookupParam(typ, name string) (paramDef, bool) {
	switch name {
	case "_id":
		return paramDef{kind: tokenParam, paths: [][]string{{"id"}}}, true
	case "_lastUpdated":
		return paramDef{kind: dateParam, paths: [][]string{{"meta", "lastUpdated"}}}, true
	}
	d, ok := searchParams[typ][name]
	return d, ok
}
