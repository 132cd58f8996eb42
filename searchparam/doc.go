// Package searchparam knows the FHIR R4 and R5 search parameters as data and
// evaluates search values against resource JSON.
//
// SMART v2 granular scopes carry FHIR search constraints, such as
//
//	patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory
//
// To decide whether a resource matches such a constraint, an enforcement
// point needs the parameter's type and the JSON elements its FHIRPath
// expression covers. [Lookup] answers that from a table generated from the
// official SearchParameter definitions: for Observation's category it gives
// type [Token] and the path "category"; for value-concept the choice element
// "valueCodeableConcept"; for patient the path "subject" with target type
// Patient. Parameters defined on Resource (_id, _lastUpdated, _tag,
// _security, _profile, _source) apply to every resource type.
//
// [MatchParam] evaluates one constraint of a scope against a resource: it
// looks the parameter up for the resource's own type and calls [Match],
// which evaluates a plain search value (no modifier, no prefix) of a token,
// reference or string parameter against a resource decoded with
// encoding/json into map[string]any, following FHIR search semantics:
// comma-separated values are alternatives (OR), and "\," "\|" "\$" "\\"
// escape those characters. The constraints of one scope must all match
// (AND); that, and the union over scopes, is the caller's part.
//
// # Unevaluable parameters
//
// The generator reads the subset of FHIRPath that the core definitions use
// for element paths (unions, where(resolve() is X), as/ofType casts). A
// parameter with a term it cannot read (other filters, extensions, indexes),
// without an expression, or of composite or special type is marked
// [Param.Unresolved] (the package's tests pin the list, with the reason).
// Match and MatchParam report such a parameter as not evaluable (ok false),
// and a scope constraint on it must grant nothing. A malformed value is not
// evaluable either.
//
// The table is read-only data: the Param values and their Paths slices
// returned by Lookup are shared and must not be modified.
package searchparam

//go:generate go run ../internal/gen/searchparams -o params_gen.go
