// Package compartment knows the FHIR compartments (Patient, Encounter,
// RelatedPerson, Practitioner, Device) of R4 (4.0.1) and R5 (5.0.0): which
// resource types belong to each, through which search parameters and which
// reference elements, whether a resource is a member of a compartment
// instance such as Patient/123, and how to narrow a search to one.
//
// The tables are generated from the official CompartmentDefinitions and
// SearchParameters (internal/fhirdata) by internal/gen/compartments; each
// linking parameter carries the element paths its FHIRPath expression covers
// (Observation.subject → "subject", Encounter.participant.individual →
// "participant.individual", X.where(resolve() is Patient) → only references
// to a Patient). Expression terms the generator cannot read mark their
// parameter Unresolved (Param.Unresolved) and link nothing: a resource whose
// only link is such a term is not a member.
//
// # References
//
// Every check of the package that reads a Reference.reference value goes
// through one normaliser, Checker.ParseReference, which sorts it into a
// RefKind. A value names one of our resources (RefLocal) only when that is
// unambiguous:
//
//   - relative: exactly T/id or T/id/_history/v, where T is a resource type
//     name ([A-Z][A-Za-z]*) and id and v are FHIR ids (fhir.ValidID:
//     [A-Za-z0-9\-.]{1,64} other than the dot segments "." and "..");
//   - absolute: one of Config.BaseURLs, "/", and one of those forms. The
//     scheme and host compare case-insensitively, a default port (:443 for
//     https, :80 for http) or an empty one equals none, and the path below
//     the host compares exactly (case-sensitively). New normalises the bases
//     the same way and drops their trailing slashes.
//
// Anything padded, percent-encoded or otherwise ambiguous is RefInvalid and
// names nothing of ours: a leading "/" or "./", dot segments, empty
// segments, a trailing slash, extra segments, "%", a backslash, white space
// or control bytes, userinfo, a query or a fragment on a URL, a port with a
// leading zero, a non-http(s) scheme. Below one of our bases, anything but
// T/id{/_history/v} is RefInvalid too (our server has no other resources to
// name). Other absolute http(s) URLs are RefExternal — someone else's
// resource, never ours, even when their path ends in Patient/123. "#id" is
// RefContained, "urn:uuid:…" and "urn:oid:…" are RefURN (resolved within a
// Bundle by its reader), "T?criteria" is RefConditional (resolved by the
// server in a transaction).
//
// Checker.RefersTo and membership want a RefLocal whose type and id equal
// the compartment's exactly: Patient/1234 is not Patient/123 and patient/123
// is not a Patient reference. Checker.RefersToOther is the guard for what a
// client writes and leans the other way: it reports a reference that names,
// or may name, another resource of the type on this server (a local one of
// another id, its type in any case; an external URL ending in T/other-id,
// since we cannot know every name the server is reached under; a
// conditional one of the type; an invalid one that spells the type name in
// any case or percent-encoding).
//
// # Membership
//
// A resource is a member of compartment instance T/id when
//
//   - it is the focal resource itself (resourceType T and id id; the Patient
//     is in its own compartment in R4 too, as R5 says), or
//   - one of its linking elements holds a Reference whose reference is a
//     RefLocal naming T/id, versioned or not (an absolute reference to any
//     other server names someone else's resource, never ours). A Patient's
//     link (Patient.link) to another Patient counts only with
//     Config.IncludeLinkedPatients.
//
// Only Reference.reference counts: not identifier, not display, not
// contained "#id" references, not extensions. Matching is exact and
// case-sensitive: Patient/1234 is not Patient/123, and percent-encoded or
// padded forms never match. Malformed JSON and duplicate member names on the
// checked elements are errors, never members.
//
// Checker.Member reads the JSON with the kit's one strict reader
// (internal/fhirjson) and applies MemberMap; Checker.MemberMap works on a
// resource already decoded into map[string]any.
//
// Definition.TouchesLink tells whether a JSON Patch path may change a
// resource's membership.
//
// # Search narrowing
//
// Checker.Binds tells whether a search query already confines the results to
// a compartment instance, and Checker.Narrow adds the binding parameter when
// it does not. The parameter Narrow adds is Definition.NarrowParam: _id for
// the compartment's own type; else the linking parameter named like the
// compartment (patient, encounter, …); else a parameter of that name that the
// type defines and that covers only linking elements (Observation?patient=);
// else the first linking parameter of the definition.
package compartment

//go:generate go run ../internal/gen/compartments -o compartments_gen.go
