// Package scope parses SMART on FHIR scopes (App Launch 1.0 and 2.x) and
// compiles a granted scope string into a Matcher that answers permission
// questions in constant time without allocating.
//
// A scope string such as
//
//	launch/patient openid fhirUser patient/Observation.rs?category=laboratory user/*.read
//
// is parsed with ParseSet into a Set: resource scopes (v1 `.read`, `.write`,
// `.*` and v2 `.cruds` subsets, with optional granular `?param=value`
// constraints), launch, identity, refresh and extension scopes, and the list
// of scopes that were invalid. Invalid scopes grant nothing; the rest of the
// set still works (a resource server must ignore what it cannot read, never
// widen it).
//
// Compile turns a Set into a Matcher. Matcher.Allows is the hot path: one
// resource-type lookup and one table read, whatever the number of scopes.
// Matcher.Lookup also returns the granular constraint sets that limit a grant.
package scope
