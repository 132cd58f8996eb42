// Package fhirrest classifies HTTP requests to a FHIR server into FHIR
// RESTful interactions (read, vread, update, patch, delete, history, create,
// search, capabilities, batch, transaction, operation), each naming the SMART
// permission it needs (Kind.Permission).
//
// Classify (or a Classifier built with New) takes an *http.Request and the
// path of the FHIR base:
//
//	GET    /fhir/Patient/123                → read Patient 123          (r)
//	GET    /fhir/Patient/123/_history/2     → vread                     (r)
//	GET    /fhir/Observation?code=1234-5    → search-type Observation   (s)
//	POST   /fhir/Observation/_search        → search-type, form body merged into Query
//	GET    /fhir/Patient/123/Observation    → search-compartment Observation in Patient/123
//	GET    /fhir?_type=Condition,Encounter  → search-system, Types set
//	POST   /fhir/Observation                → create (conditional with If-None-Exist)
//	PUT    /fhir/Observation?identifier=x   → conditional update
//	POST   /fhir  (Bundle)                  → batch or transaction, entries classified
//	POST   /fhir/Patient/123/$everything    → operation "everything", instance level
//	GET    /fhir/metadata                   → capabilities
//
// HEAD is classified as the GET it mirrors (Interaction.Method "GET").
// The entries of a Bundle are classified by the same rules (ParseBundle).
//
// # Refusals
//
// The classifier is the first step of authorization, so it accepts only
// requests it understands exactly. Every refusal is an *Error whose text
// names its class and rule, and StatusCode says how a server should answer
// it:
//
//   - non-canonical path (400): the escaped path (not Go's decoded
//     r.URL.Path) must be canonical: no "." or ".." segments (nor any
//     segment of dots only), no empty segments ("//"), no percent-encoding
//     at all (%2F, %2f, %252F, %5C, %00, ...: no FHIR type, id or operation
//     name needs one), no backslash, no ';', no control character, and a
//     trailing slash only on the base itself ("GET [base]/?") and in the R4
//     literal "DELETE [base]/[type]/?".
//   - unknown resource type (404): a segment in resource-type position, a
//     compartment search target or a _type element is not an R4 or R5
//     resource type (the names are case-sensitive).
//   - invalid id or operation name (400): an id or version id that is not a
//     FHIR id (fhir.ValidID), or a malformed $operation name.
//   - method override refused (400): any X-HTTP-Method-Override,
//     X-HTTP-Method or X-Method-Override header (any case, '-' or '_'), or a
//     _method query or form parameter. Authorizing a POST that the server
//     then runs as DELETE would be a bypass, so the request is refused
//     outright.
//   - method not allowed (405), unsupported request (400): a method or shape
//     FHIR does not define, such as POST /Patient/1, PUT /Patient without
//     criteria, or /Patient/1/Observation/2 (R4: "not defined by this
//     specification").
//   - invalid query (400): a query or form body Go's url.ParseQuery refuses
//     (such as one with ';'), an empty _type element, malformed
//     If-None-Exist.
//   - request body too large (413), unsupported media type (415), invalid
//     Bundle, Bundle type not batch or transaction, nested Bundle (400):
//     bodies the classifier must read (a POST _search form, a batch or
//     transaction Bundle) that are too large, not form-encoded or JSON (or
//     compressed), malformed, of another Bundle type, or nested; and a form
//     posted to a resource type, which some servers run as a search and
//     which must not be authorized as a create.
//
// Three outcomes are not FHIR interactions and are left to the caller, which
// tells them apart with errors.Is: ErrOutsideBase (the path is not below the
// base), ErrOptions (an OPTIONS request on a canonical path: a CORS
// preflight, answered without the handler) and ErrWellKnown (a path below
// [base]/.well-known/, such as the public smart-configuration document).
//
// # Bodies
//
// Classify reads a request body only when the classification depends on it:
// the form body of a POST _search (application/x-www-form-urlencoded, merged
// with the URL query as FHIR specifies) and the Bundle of a POST to the base
// (whose type decides batch or transaction). It reads at most the configured
// limit and puts back an r.Body that yields the same bytes, so the wrapped
// handler sees the request unchanged. The parsed Bundle is returned in
// Interaction.Bundle and need not be parsed again.
//
// # Batch and transaction
//
// Every entry of a Bundle is classified as if it were sent alone, so it can
// be authorized alone. A transaction with an entry that cannot be classified
// is refused as a whole (*EntryError); a batch keeps the entry's error in
// Entry.Err and the entry must be denied. Nested Bundles (a Bundle resource
// in an entry, or an entry posted to the base) are refused, as are create
// and update entries whose resource type differs from their URL.
package fhirrest
