package fhirrest

import (
	"errors"
	"net/http"
	"strconv"
)

// Sentinel errors. Every error returned by this package wraps exactly one of
// them (test with errors.Is); most are an *Error that also says what was wrong.
var (
	// ErrOutsideBase: the path is not below the FHIR base, or an absolute
	// Bundle entry URL does not start with the configured base URL.
	ErrOutsideBase = errors.New("fhirrest: outside the FHIR base")
	// ErrNonCanonicalPath: the path is not in canonical form: dot segments,
	// empty segments (//), a trailing slash where none is allowed, any
	// percent-encoding (%2F, %252F, %5C, %00, ...), a backslash, ';', a
	// control character or any other byte a FHIR path never needs.
	ErrNonCanonicalPath = errors.New("fhirrest: non-canonical path")
	// ErrUnknownType: a path segment in resource-type position is not a
	// resource type of FHIR R4 or R5 (names are case-sensitive), or _type
	// names one. A server answers 404.
	ErrUnknownType = errors.New("fhirrest: unknown resource type")
	// ErrInvalidID: a resource id, version id or operation name is malformed.
	ErrInvalidID = errors.New("fhirrest: invalid id or operation name")
	// ErrMethodOverride: the request carries a method-override header
	// (X-HTTP-Method-Override, X-HTTP-Method, X-Method-Override, also with
	// underscores) or a _method query or form parameter.
	ErrMethodOverride = errors.New("fhirrest: method override refused")
	// ErrMethod: the HTTP method is not defined for the path.
	ErrMethod = errors.New("fhirrest: method not allowed")
	// ErrUnsupported: the request shape is not a FHIR interaction, such as
	// /Patient/1/Observation/2 or PUT on a type without id or criteria.
	ErrUnsupported = errors.New("fhirrest: unsupported request")
	// ErrInvalidQuery: the query string, form body, _type list or
	// If-None-Exist criteria cannot be parsed unambiguously.
	ErrInvalidQuery = errors.New("fhirrest: invalid query")
	// ErrTooLarge: a form or Bundle body, or the number of Bundle entries,
	// exceeds its limit.
	ErrTooLarge = errors.New("fhirrest: request body too large")
	// ErrMediaType: a body the classifier must read (a POST _search form, a
	// batch or transaction Bundle) has a media type or content-coding it
	// cannot read, or a create is posted as a form (which some servers run
	// as a search).
	ErrMediaType = errors.New("fhirrest: unsupported media type")
	// ErrInvalidBundle: a batch or transaction body is not a well-formed
	// JSON Bundle (malformed JSON, duplicate or misspelt keys, wrong member
	// types, an entry without request).
	ErrInvalidBundle = errors.New("fhirrest: invalid Bundle")
	// ErrBundleType: a Bundle posted to the base is not of type batch or
	// transaction.
	ErrBundleType = errors.New("fhirrest: Bundle type not batch or transaction")
	// ErrNestedBundle: a Bundle entry carries a Bundle or targets the base.
	ErrNestedBundle = errors.New("fhirrest: nested Bundle")
	// ErrOptions: an OPTIONS request. It is not a FHIR interaction; the
	// middleware answers it as a CORS preflight without calling the handler.
	ErrOptions = errors.New("fhirrest: OPTIONS request")
	// ErrWellKnown: a path below [base]/.well-known/, such as the
	// smart-configuration document. It is not a FHIR interaction; the
	// middleware serves it as a public endpoint or passes it on.
	ErrWellKnown = errors.New("fhirrest: .well-known path")
)

// Error is a refused request: Err is one of the package's sentinels and
// Detail says which rule refused it. Detail is a fixed phrase, except for
// a Bundle the strict JSON reader refused: then it names the member and
// where it is (at most 64 characters of a name), so that the client can
// fix its request. It never holds a value from the request.
type Error struct {
	Err    error
	Detail string
}

// Error returns the sentinel's text and the detail.
func (e *Error) Error() string { return e.Err.Error() + ": " + e.Detail }

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Err }

func newErr(sentinel error, detail string) *Error { return &Error{Err: sentinel, Detail: detail} }

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
	case errors.Is(err, ErrUnknownType), errors.Is(err, ErrOutsideBase):
		return http.StatusNotFound
	case errors.Is(err, ErrMethod):
		return http.StatusMethodNotAllowed
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrMediaType):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, ErrNonCanonicalPath), errors.Is(err, ErrInvalidID),
		errors.Is(err, ErrMethodOverride), errors.Is(err, ErrUnsupported),
		errors.Is(err, ErrInvalidQuery), errors.Is(err, ErrInvalidBundle),
		errors.Is(err, ErrBundleType), errors.Is(err, ErrNestedBundle):
		return http.StatusBadRequest
	}
	return 0
}
