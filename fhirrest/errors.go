package fhirrest

import (
	"errors"
	"net/http"
	"strconv"
)

// The outcomes of Classify that are not refusals but requests that are not
// FHIR interactions, which the caller handles itself (test with
// errors.Is). StatusCode returns 0 for ErrOptions and ErrWellKnown.
var (
	// ErrOutsideBase: the path is not below the FHIR base, or an absolute
	// Bundle entry URL does not start with the configured base URL. A
	// server that mounts the classifier over more than its FHIR API passes
	// such requests on; StatusCode says 404.
	ErrOutsideBase = errors.New("fhirrest: outside the FHIR base")
	// ErrOptions: an OPTIONS request. It is not a FHIR interaction; the
	// middleware answers it as a CORS preflight without calling the handler.
	ErrOptions = errors.New("fhirrest: OPTIONS request")
	// ErrWellKnown: a path below [base]/.well-known/, such as the
	// smart-configuration document. It is not a FHIR interaction; the
	// middleware serves it as a public endpoint.
	ErrWellKnown = errors.New("fhirrest: .well-known path")
)

// The classes of refusal. Every other error of the package wraps one of
// them, mostly in an *Error that also says which rule refused; callers tell
// them apart by StatusCode, and their text names them.
var (
	// errNonCanonicalPath: the path is not in canonical form: dot segments,
	// empty segments (//), a trailing slash where none is allowed, any
	// percent-encoding (%2F, %252F, %5C, %00, ...), a backslash, ';', a
	// control character or any other byte a FHIR path never needs.
	errNonCanonicalPath = errors.New("fhirrest: non-canonical path")
	// errUnknownType: a path segment in resource-type position is not a
	// resource type of FHIR R4 or R5 (names are case-sensitive), or _type
	// names one. A server answers 404.
	errUnknownType = errors.New("fhirrest: unknown resource type")
	// errInvalidID: a resource id, version id or operation name is malformed.
	errInvalidID = errors.New("fhirrest: invalid id or operation name")
	// errMethodOverride: the request carries a method-override header
	// (X-HTTP-Method-Override, X-HTTP-Method, X-Method-Override, also with
	// underscores) or a _method query or form parameter.
	errMethodOverride = errors.New("fhirrest: method override refused")
	// errMethod: the HTTP method is not defined for the path.
	errMethod = errors.New("fhirrest: method not allowed")
	// errUnsupported: the request shape is not a FHIR interaction, such as
	// /Patient/1/Observation/2 or PUT on a type without id or criteria.
	errUnsupported = errors.New("fhirrest: unsupported request")
	// errInvalidQuery: the query string, form body, _type list or
	// If-None-Exist criteria cannot be parsed unambiguously.
	errInvalidQuery = errors.New("fhirrest: invalid query")
	// errTooLarge: a form or Bundle body, or the number of Bundle entries,
	// exceeds its limit.
	errTooLarge = errors.New("fhirrest: request body too large")
	// errMediaType: a body the classifier must read (a POST _search form, a
	// batch or transaction Bundle) has a media type or content-coding it
	// cannot read, or a create is posted as a form (which some servers run
	// as a search).
	errMediaType = errors.New("fhirrest: unsupported media type")
	// errInvalidBundle: a batch or transaction body is not a well-formed
	// JSON Bundle (malformed JSON, duplicate or misspelt keys, wrong member
	// types, an entry without request).
	errInvalidBundle = errors.New("fhirrest: invalid Bundle")
	// errBundleType: a Bundle posted to the base is not of type batch or
	// transaction.
	errBundleType = errors.New("fhirrest: Bundle type not batch or transaction")
	// errNestedBundle: a Bundle entry carries a Bundle or targets the base.
	errNestedBundle = errors.New("fhirrest: nested Bundle")
)

// Error is a refused request: Err is the class of refusal (its text, such
// as "fhirrest: non-canonical path", names it; StatusCode maps it to an
// HTTP status) and Detail says which rule refused it. Detail is a fixed
// phrase, except for a Bundle the strict JSON reader refused: then it names
// the member and where it is (at most 64 characters of a name), so that the
// client can fix its request. It never holds a value from the request.
type Error struct {
	Err    error
	Detail string
}

// Error returns the class's text and the detail.
func (e *Error) Error() string { return e.Err.Error() + ": " + e.Detail }

// Unwrap returns the class of refusal.
func (e *Error) Unwrap() error { return e.Err }

func newErr(class error, detail string) *Error { return &Error{Err: class, Detail: detail} }

// EntryError is the error of one Bundle entry: Index is its position in
// Bundle.entry (from 0) and Err the classification error.
type EntryError struct {
	Index int
	Err   error
}

// Error names the entry and its error.
func (e *EntryError) Error() string {
	return "fhirrest: Bundle entry " + strconv.Itoa(e.Index) + ": " + e.Err.Error()
}

// Unwrap returns the entry's error.
func (e *EntryError) Unwrap() error { return e.Err }

// StatusCode returns the HTTP status a server should answer for a refusal
// from this package: 400 for malformed requests, 404 for unknown resource
// types and paths outside the base, 405, 413 and 415. It returns 0 for
// ErrOptions, ErrWellKnown and errors of other packages, which are not
// refusals of this package's making.
func StatusCode(err error) int {
	switch {
	case err == nil, errors.Is(err, ErrOptions), errors.Is(err, ErrWellKnown):
		return 0
	case errors.Is(err, errUnknownType), errors.Is(err, ErrOutsideBase):
		return http.StatusNotFound
	case errors.Is(err, errMethod):
		return http.StatusMethodNotAllowed
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errMediaType):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, errNonCanonicalPath), errors.Is(err, errInvalidID),
		errors.Is(err, errMethodOverride), errors.Is(err, errUnsupported),
		errors.Is(err, errInvalidQuery), errors.Is(err, errInvalidBundle),
		errors.Is(err, errBundleType), errors.Is(err, errNestedBundle):
		return http.StatusBadRequest
	}
	return 0
}
