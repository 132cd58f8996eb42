package fhirstore

import (
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors. Every *Error wraps one of them, so callers can branch with
// errors.Is.
var (
	// ErrInvalid: the request or resource is malformed (HTTP 400).
	ErrInvalid = errors.New("fhirstore: invalid request")
	// ErrNotFound: no such resource, version or route (HTTP 404).
	ErrNotFound = errors.New("fhirstore: not found")
	// ErrGone: the resource has been deleted (HTTP 410).
	ErrGone = errors.New("fhirstore: resource deleted")
	// ErrMethod: the HTTP method is not allowed on this path (HTTP 405).
	ErrMethod = errors.New("fhirstore: method not allowed")
	// ErrConflict: the request conflicts with the stored state, such as a
	// failed JSON Patch test (HTTP 409).
	ErrConflict = errors.New("fhirstore: conflict")
	// ErrPrecondition: an If-Match or conditional-write precondition failed
	// (HTTP 412).
	ErrPrecondition = errors.New("fhirstore: precondition failed")
	// ErrUnprocessable: the request is well formed but its result is not an
	// acceptable resource (HTTP 422).
	ErrUnprocessable = errors.New("fhirstore: unprocessable resource")
	// ErrUnsupported: the request uses a feature the store does not have,
	// such as an unknown operation or an unsupported media type (HTTP 400,
	// 406 or 415).
	ErrUnsupported = errors.New("fhirstore: not supported")
	// ErrConfig: the Config given to New is not valid.
	ErrConfig = errors.New("fhirstore: invalid config")
)

// Error is a failed request: its HTTP status, the OperationOutcome issue
// code and a diagnostic that is safe to return to the client. It wraps one of
// the sentinel errors.
type Error struct {
	Status      int    // HTTP status code
	Code        string // OperationOutcome issue.code ("not-found", "invalid", ...)
	Diagnostics string // human-readable detail, returned to the client
	kind        error
}

// Error returns the diagnostic.
func (e *Error) Error() string {
	return fmt.Sprintf("fhirstore: %d %s: %s", e.Status, e.Code, e.Diagnostics)
}

// Unwrap returns the sentinel error of the failure.
func (e *Error) Unwrap() error { return e.kind }

func errorf(kind error, format string, args ...any) *Error {
	e := &Error{Diagnostics: fmt.Sprintf(format, args...), kind: kind}
	switch kind {
	case ErrNotFound:
		e.Status, e.Code = http.StatusNotFound, "not-found"
	case ErrGone:
		e.Status, e.Code = http.StatusGone, "deleted"
	case ErrMethod:
		e.Status, e.Code = http.StatusMethodNotAllowed, "not-supported"
	case ErrConflict:
		e.Status, e.Code = http.StatusConflict, "conflict"
	case ErrPrecondition:
		e.Status, e.Code = http.StatusPreconditionFailed, "conflict"
	case ErrUnprocessable:
		e.Status, e.Code = http.StatusUnprocessableEntity, "processing"
	case ErrUnsupported:
		e.Status, e.Code = http.StatusBadRequest, "not-supported"
	default:
		e.Status, e.Code = http.StatusBadRequest, "invalid"
	}
	return e
}

// withStatus overrides the HTTP status (406 and 415 are ErrUnsupported too).
func (e *Error) withStatus(status int) *Error {
	e.Status = status
	return e
}

// outcome is the OperationOutcome body of an error.
func outcome(severity, code, diagnostics string) []byte {
	type issue struct {
		Severity    string `json:"severity"`
		Code        string `json:"code"`
		Diagnostics string `json:"diagnostics,omitempty"`
	}
	type operationOutcome struct {
		ResourceType string  `json:"resourceType"`
		Issue        []issue `json:"issue"`
	}
	return mustEncode(operationOutcome{
		ResourceType: "OperationOutcome",
		Issue:        []issue{{Severity: severity, Code: code, Diagnostics: diagnostics}},
	})
}
