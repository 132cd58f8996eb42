package fhirstore

import (
	"fmt"
	"time"
)

// seedTime is meta.lastUpdated of the first seed resource; each following
// seed version is one second later, so seeded data is the same on every run.
var seedTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const (
	lab  = `{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory","display":"Laboratory"}]}`
	vs   = `{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs","display":"Vital Signs"}]}`
	pli  = `{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-category","code":"problem-list-item","display":"Problem List Item"}]}`
	edx  = `{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-category","code":"encounter-diagnosis","display":"Encounter Diagnosis"}]}`
	act  = `{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":"active"}]}`
	conf = `{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-ver-status","code":"confirmed"}]}`
	aact = `{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical","code":"active"}]}`
	amb  = `{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB","display":"ambulatory"}`
)

func loinc(code, display string) string {
	return `{"coding":[{"system":"http://loinc.org","code":"` + code + `","display":"` + display + `"}],"text":"` + display + `"}`
}

func snomed(code, display string) string {
	return `{"coding":[{"system":"http://snomed.info/sct","code":"` + code + `","display":"` + display + `"}],"text":"` + display + `"}`
}

func rxnorm(code, display string) string {
	return `{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"` + code + `","display":"` + display + `"}],"text":"` + display + `"}`
}

func patient(id, family, given, gender, birth, extra string) string {
	return `{"resourceType":"Patient","id":"` + id + `","active":true,` +
		`"identifier":[{"system":"http://hospital.example.org/mrn","value":"MRN-` + id + `"}],` +
		`"name":[{"use":"official","family":"` + family + `","given":["` + given + `"]}],` +
		`"gender":"` + gender + `","birthDate":"` + birth + `"` + extra + `}`
}

func encounter(id, pid, start string) string {
	return `{"resourceType":"Encounter","id":"` + id + `","status":"finished","class":` + amb + `,` +
		`"subject":{"reference":"Patient/` + pid + `"},` +
		`"participant":[{"individual":{"reference":"Practitioner/9"}}],` +
		`"period":{"start":"` + start + `T09:00:00Z","end":"` + start + `T10:00:00Z"},` +
		`"serviceProvider":{"reference":"Organization/org1"}}`
}

func observation(id, status, pid, enc, category, code, value, when, extra string) string {
	s := `{"resourceType":"Observation","id":"` + id + `","status":"` + status + `",` +
		`"category":[` + category + `],"code":` + code + `,` +
		`"subject":{"reference":"Patient/` + pid + `"},`
	if enc != "" {
		s += `"encounter":{"reference":"Encounter/` + enc + `"},`
	}
	return s + `"effectiveDateTime":"` + when + `","valueQuantity":` + value + extra + `}`
}

func quantity(value, unit, ucum string) string {
	return `{"value":` + value + `,"unit":"` + unit + `","system":"http://unitsofmeasure.org","code":"` + ucum + `"}`
}

func condition(id, pid, category, code, extra string) string {
	return `{"resourceType":"Condition","id":"` + id + `","clinicalStatus":` + act + `,"verificationStatus":` + conf + `,` +
		`"category":[` + category + `],"code":` + code + `,"subject":{"reference":"Patient/` + pid + `"}` + extra + `}`
}

// seedResources are the demo resources in load order. Observation/lab1 is
// loaded twice, so it has versions 1 (preliminary) and 2 (final).
var seedResources = []string{
	`{"resourceType":"Organization","id":"org1","active":true,"identifier":[{"system":"http://hospital.example.org/org","value":"EGH"}],"name":"Example General Hospital"}`,
	`{"resourceType":"Practitioner","id":"9","active":true,"identifier":[{"system":"http://hl7.org/fhir/sid/us-npi","value":"1234567893"}],"name":[{"family":"Jones","given":["Alice"],"prefix":["Dr."]}]}`,
	`{"resourceType":"Medication","id":"m1","status":"active","code":` + rxnorm("861007", "metformin hydrochloride 500 MG Oral Tablet") + `}`,

	patient("123", "Smith", "Jane", "female", "1970-05-14", `,"generalPractitioner":[{"reference":"Practitioner/9"}],"managingOrganization":{"reference":"Organization/org1"}`),
	patient("456", "Smith", "John", "male", "1985-11-02", `,"managingOrganization":{"reference":"Organization/org1"}`),
	patient("789", "Garcia", "Maria", "female", "1992-03-30", ``),

	encounter("E1", "123", "2024-01-10"),
	encounter("E2", "123", "2024-02-15"),
	encounter("e456", "456", "2024-03-01"),
	encounter("e789", "789", "2024-04-20"),

	observation("lab1", "preliminary", "123", "E1", lab, loinc("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood"), quantity("7.1", "%", "%"), "2024-01-10T09:30:00Z",
		`,"identifier":[{"system":"http://my-lab-system","value":"123"}],"performer":[{"reference":"Practitioner/9"}]`),
	observation("lab1", "final", "123", "E1", lab, loinc("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood"), quantity("7.10", "%", "%"), "2024-01-10T09:30:00Z",
		`,"identifier":[{"system":"http://my-lab-system","value":"123"}],"performer":[{"reference":"Practitioner/9"}]`),
	observation("lab2", "final", "123", "E2", lab, loinc("2339-0", "Glucose [Mass/volume] in Blood"), quantity("105", "mg/dL", "mg/dL"), "2024-02-15T09:15:00Z", ``),
	observation("vs1", "final", "123", "E1", vs, loinc("8867-4", "Heart rate"), quantity("72", "beats/minute", "/min"), "2024-01-10T09:10:00Z", ``),
	observation("o456", "final", "456", "e456", lab, loinc("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood"), quantity("6.4", "%", "%"), "2024-03-01T09:30:00Z",
		`,"identifier":[{"system":"http://my-lab-system","value":"123"}]`),
	observation("vs456", "final", "456", "e456", vs, loinc("8867-4", "Heart rate"), quantity("80", "beats/minute", "/min"), "2024-03-01T09:05:00Z", ``),
	observation("o789", "final", "789", "e789", vs, loinc("29463-7", "Body weight"), quantity("61.5", "kg", "kg"), "2024-04-20T09:05:00Z", ``),

	condition("c1", "123", pli, snomed("44054006", "Type 2 diabetes mellitus"), `,"asserter":{"reference":"Practitioner/9"},"onsetDateTime":"2019-06-01"`),
	condition("c2", "123", edx, snomed("38341003", "Hypertensive disorder"), `,"encounter":{"reference":"Encounter/E1"}`),
	condition("c456", "456", pli, snomed("195967001", "Asthma"), ``),

	`{"resourceType":"AllergyIntolerance","id":"a1","clinicalStatus":` + aact + `,"category":["food"],"code":` + snomed("256349002", "Peanut") + `,"patient":{"reference":"Patient/123"},"recorder":{"reference":"Practitioner/9"}}`,
	`{"resourceType":"AllergyIntolerance","id":"a456","clinicalStatus":` + aact + `,"category":["medication"],"code":` + snomed("764146007", "Penicillin") + `,"patient":{"reference":"Patient/456"}}`,

	`{"resourceType":"MedicationRequest","id":"mr1","status":"active","intent":"order","medicationReference":{"reference":"Medication/m1"},"subject":{"reference":"Patient/123"},"encounter":{"reference":"Encounter/E1"},"authoredOn":"2024-01-10","requester":{"reference":"Practitioner/9"}}`,
	`{"resourceType":"MedicationRequest","id":"mr456","status":"active","intent":"order","medicationCodeableConcept":` + rxnorm("745679", "albuterol 0.09 MG/ACTUAT Metered Dose Inhaler") + `,"subject":{"reference":"Patient/456"},"authoredOn":"2024-03-01"}`,

	`{"resourceType":"DiagnosticReport","id":"dr1","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0074","code":"LAB"}]}],"code":` + loinc("55454-3", "Hemoglobin A1c panel") + `,"subject":{"reference":"Patient/123"},"encounter":{"reference":"Encounter/E1"},"effectiveDateTime":"2024-01-10T09:30:00Z","result":[{"reference":"Observation/lab1"}]}`,

	`{"resourceType":"Provenance","id":"prov1","target":[{"reference":"Observation/lab1"}],"recorded":"2024-01-10T10:00:00Z","agent":[{"who":{"reference":"Practitioner/9"}}]}`,
	`{"resourceType":"Provenance","id":"prov456","target":[{"reference":"Observation/o456"}],"recorded":"2024-03-01T10:00:00Z","agent":[{"who":{"reference":"Organization/org1"}}]}`,
}

// Seed loads the demo data (see the package documentation for its ids).
// Loading it into a store that already holds those ids adds new versions.
func (s *Store) Seed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now
	defer func() { s.now = now }()
	tick := seedTime
	s.now = func() time.Time {
		t := tick
		tick = tick.Add(time.Second)
		return t
	}
	for _, raw := range seedResources {
		obj, err := decodeObject([]byte(raw))
		if err != nil {
			return fmt.Errorf("fhirstore: seed resource %.40s: %w", raw, err)
		}
		typ, _ := obj["resourceType"].(string)
		id, _ := obj["id"].(string)
		if _, _, err := s.update(typ, id, obj, ""); err != nil {
			return fmt.Errorf("fhirstore: seed %s/%s: %w", typ, id, err)
		}
	}
	return nil
}

// seedIDs lists "Type/id" of every seed resource, for tests and docs.
func seedIDs() []string {
	var out []string
	seen := map[string]bool{}
	for _, raw := range seedResources {
		obj, _ := decodeObject([]byte(raw))
		k := obj["resourceType"].(string) + "/" + obj["id"].(string)
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}
