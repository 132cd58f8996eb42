// Package fhirstore is an in-memory FHIR R4 server for the fhirguard
// examples and end-to-end tests. It is an http.Handler that serves FHIR JSON
// (application/fhir+json) below a configurable base path.
//
// It performs no authorization whatsoever: it deliberately serves whatever
// it is asked. Putting it behind the fhirguard middleware is what makes it a
// SMART on FHIR resource server, and its completeness is what lets the tests
// prove the middleware refuses what it must.
//
// # Interactions
//
//   - read, vread, instance/type/system history (_count, _since), with ETag,
//     meta.versionId and meta.lastUpdated; If-None-Match gives 304.
//   - create (server-assigned ids, Location header, If-None-Exist), update
//     (update-as-create with a client-chosen id, If-Match), JSON Patch
//     (application/json-patch+json), delete; conditional update, patch and
//     delete ([type]?[search]).
//   - search-type (GET and POST _search with a form body), search-system
//     (with _type), Patient compartment search (/Patient/123/Observation,
//     /Patient/123/*), Patient/[id]/$everything.
//   - batch and transaction Bundles (transaction all-or-nothing, processed
//     DELETE, POST, PUT/PATCH, GET, with urn:uuid references resolved).
//   - /metadata: an R4 CapabilityStatement; Config.Security is inserted as
//     rest[0].security (the SMART block).
//
// Errors are OperationOutcome bodies with 400, 404, 405, 406, 409
// (JSON Patch conflicts), 410 (deleted), 412 (If-Match and ambiguous
// conditional writes), 413, 415 or 422.
//
// # Search
//
// Parameters of the types below (R4 definitions): _id, _lastUpdated, and
// for Patient, Practitioner, Organization, Medication, Observation,
// Condition, Encounter, AllergyIntolerance, MedicationRequest,
// DiagnosticReport, Provenance, Procedure, Immunization, DocumentReference,
// CarePlan, CareTeam, Goal and ServiceRequest their usual identifier, token,
// string, date and reference parameters (patient, subject, encounter,
// category, code, ...). Other R4 types can be stored, read and searched by
// _id and _lastUpdated; they are in no compartment. The Patient compartment
// uses the R4 CompartmentDefinition's parameters for these types.
// Reference values may be "123", "Patient/123" or "<base>/Patient/123", with
// a :Type modifier; tokens may be "system|code", "|code", "system|" or
// "code", with :not; strings are case-insensitive prefixes, with :exact and
// :contains; comma lists are alternatives and repeated parameters must all
// hold. :missing works on every parameter. Also _include (with :iterate and
// "*"), _revinclude, _count with next/previous links (paging uses _offset),
// _summary (count, text, data, false; true is answered like data, since
// the store has no element definitions) and _elements (top-level names). Unknown parameters are ignored unless the request says
// "Prefer: handling=strict"; chains and _has are refused (400); _sort is
// accepted and ignored: results are always sorted by type and id.
//
// # Seed data
//
// Seed loads a small record set with stable ids, which tests rely on:
//
//	Patient/123    Jane Smith; generalPractitioner Practitioner/9, managingOrganization Organization/org1
//	Patient/456    John Smith
//	Patient/789    Maria Garcia
//	Practitioner/9, Organization/org1, Medication/m1 (in no Patient compartment)
//	Encounter/E1, Encounter/E2 (Patient/123), Encounter/e456, Encounter/e789
//	Observation/lab1   Patient/123, laboratory, LOINC 4548-4 (HbA1c), identifier http://my-lab-system|123,
//	                   performer Practitioner/9; versions 1 (preliminary) and 2 (final)
//	Observation/lab2   Patient/123, laboratory, LOINC 2339-0 (glucose)
//	Observation/vs1    Patient/123, vital-signs, LOINC 8867-4 (heart rate)
//	Observation/o456   Patient/456, laboratory, LOINC 4548-4, identifier http://my-lab-system|123
//	Observation/vs456  Patient/456, vital-signs, LOINC 8867-4
//	Observation/o789   Patient/789, vital-signs, LOINC 29463-7 (body weight)
//	Condition/c1       Patient/123, problem-list-item (SNOMED 44054006), asserter Practitioner/9
//	Condition/c2       Patient/123, encounter-diagnosis, Encounter/E1
//	Condition/c456     Patient/456, problem-list-item
//	AllergyIntolerance/a1 (Patient/123), AllergyIntolerance/a456 (Patient/456)
//	MedicationRequest/mr1 (Patient/123, Medication/m1), MedicationRequest/mr456 (Patient/456)
//	DiagnosticReport/dr1  Patient/123, result Observation/lab1
//	Provenance/prov1      target Observation/lab1; Provenance/prov456 target Observation/o456
//
// Seeded versions have meta.lastUpdated from 2026-01-01T00:00:00.000Z on, one
// second apart in the order above (Organization/org1 first), whatever
// Config.Now says, so seeded output is identical on every run.
//
// # Concurrency and output
//
// A Store is safe for concurrent use (one RWMutex; writes and whole
// batches or transactions hold it exclusively) and starts no goroutines.
// Output is deterministic: resources have resourceType first and members
// sorted, and search results are ordered by type and id.
package fhirstore
