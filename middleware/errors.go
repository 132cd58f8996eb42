package middleware

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ErrorCode is an RFC 6750 §3.1 error code, sent in the WWW-Authenticate
// challenge. The empty code means "no error parameter" (a request without
// credentials, RFC 6750 §3.1 last paragraph).
type ErrorCode string

// RFC 6750 error codes.
const (
	CodeNone              ErrorCode = ""
	CodeInvalidRequest    ErrorCode = "invalid_request"
	CodeInvalidToken      ErrorCode = "invalid_token"
	CodeInsufficientScope ErrorCode = "insufficient_scope"
)

// Causes of authentication failures that callers branch on (metrics,
// alerts): an *AuthError wraps them, so errors.Is(err, ErrTokenExpired)
// works on the error AuthConfig.OnDecision receives. Other causes (a bad
// signature, a wrong audience, a malformed request...) are wrapped too, as
// unexported errors whose text is in the log; the client only sees the RFC
// 6750 code and a short description.
var (
	// ErrTokenExpired: the token's exp has passed (the client should
	// refresh it). 401 invalid_token.
	ErrTokenExpired = errors.New("token expired")
	// ErrKeysUnavailable: the JWKS could not be fetched, so a token could
	// not be verified. 503.
	ErrKeysUnavailable = errors.New("signing keys unavailable")
	// ErrIntrospectionUnavailable: the introspection endpoint did not give
	// a usable answer. 503.
	ErrIntrospectionUnavailable = errors.New("introspection unavailable")
)

// Causes of authentication failures for logs only.
var (
	errNoToken           = errors.New("no bearer token")
	errMalformedRequest  = errors.New("malformed bearer token request")
	errInsecureTransport = errors.New("bearer token sent over plain HTTP")
	errMalformedToken    = errors.New("malformed token")
	errTokenTooLarge     = errors.New("token exceeds the size limit")
	errAlgorithm         = errors.New("signature algorithm not allowed")
	errTokenType         = errors.New("token type (typ) not accepted")
	errUnsupportedHeader = errors.New("unsupported JOSE header parameter")
	errUnknownKey        = errors.New("no key for the token")
	errSignature         = errors.New("signature verification failed")
	errIssuer            = errors.New("issuer not accepted")
	errAudience          = errors.New("audience not accepted")
	errTokenNotYetValid  = errors.New("token not yet valid")
	errTokenLifetime     = errors.New("token lifetime exceeds the configured maximum")
	errClaims            = errors.New("invalid token claims")
	errInactive          = errors.New("token is not active")
)

// AuthError is an authentication or authorisation failure as rendered on
// the wire: an HTTP status, an RFC 6750 error code and a short description
// that is safe to show, plus the real cause for logs (Unwrap). It never
// carries the token or its claims in Description.
type AuthError struct {
	Status      int       // HTTP status: 400, 401, 403 or 503
	Code        ErrorCode // RFC 6750 error code; CodeNone for a request without a token
	Description string    // short, safe text for error_description and the OperationOutcome
	Err         error     // the cause, for logs and errors.Is; never sent to the client

	scopeNeeded string        // for CodeInsufficientScope: the RFC 6750 scope attribute
	retry       time.Duration // for 503: the Retry-After
}

func (e *AuthError) Error() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(e.Status))
	if e.Code != CodeNone {
		b.WriteString(" ")
		b.WriteString(string(e.Code))
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	} else if e.Description != "" {
		b.WriteString(": ")
		b.WriteString(e.Description)
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *AuthError) Unwrap() error { return e.Err }

// unauthenticated is the answer to a request without credentials.
func unauthenticated() *AuthError {
	return &AuthError{Status: http.StatusUnauthorized, Description: "authentication required", Err: errNoToken}
}

// invalidRequest is a 400 invalid_request.
func invalidRequest(desc string, cause error) *AuthError {
	return &AuthError{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Description: desc, Err: cause}
}

// invalidToken is a 401 invalid_token.
func invalidToken(desc string, cause error) *AuthError {
	return &AuthError{Status: http.StatusUnauthorized, Code: CodeInvalidToken, Description: desc, Err: cause}
}

// unavailable is a 503: a key source or introspection endpoint could not
// answer and nothing usable was cached.
func unavailable(desc string, retry time.Duration, cause error) *AuthError {
	if retry < time.Second {
		retry = time.Second
	}
	return &AuthError{Status: http.StatusServiceUnavailable, Description: desc, Err: cause, retry: retry}
}

// asAuthError turns any error into an *AuthError; an unknown error becomes
// a 401 invalid_token (fail closed).
func asAuthError(err error) *AuthError {
	var ae *AuthError
	if errors.As(err, &ae) {
		return ae
	}
	return invalidToken("invalid token", err)
}

// writeError renders e: the status, a WWW-Authenticate challenge for 401 and
// 403 (and for 400 invalid_request, RFC 6750 §3), Retry-After for 503, and a
// FHIR OperationOutcome body. c names the realm and the RFC 9728 metadata.
// The body never contains the token, its claims or e.Err.
// closeUnreadBody makes an HTTP/1 server close the connection after a
// refusal of a request that has a body: net/http would otherwise read (and
// wait for) up to 256 KiB of the unread body before sending the answer, so
// a client trickling a body in would hold the refusal, and the connection,
// until the server's read timeout. HTTP/2 streams need no such thing.
func closeUnreadBody(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 && r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		w.Header().Set("Connection", "close")
	}
}

func writeError(w http.ResponseWriter, c challengeInfo, e *AuthError) {
	h := w.Header()
	if e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden || e.Code != CodeNone {
		h.Set("WWW-Authenticate", challenge(c, e))
	}
	if e.Status == http.StatusServiceUnavailable {
		secs := int64((e.retry + time.Second - 1) / time.Second)
		if secs < 1 {
			secs = 1
		}
		h.Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	h.Set("Content-Type", "application/fhir+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	body := operationOutcome(issueCode(e.Status), diagnostics(e))
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}

func diagnostics(e *AuthError) string {
	if e.Description != "" {
		return e.Description
	}
	return http.StatusText(e.Status)
}

// challengeInfo is what every challenge of a server names: its realm (the
// FHIR base URL, may be empty) and, when the Guard serves the RFC 9728
// metadata of the FHIR endpoint, where that is (RFC 9728 §5.1).
type challengeInfo struct {
	realm, resourceMetadata string
}

// challenge builds the RFC 6750 §3 WWW-Authenticate value, with RFC 9728's
// resource_metadata when c has it.
func challenge(c challengeInfo, e *AuthError) string {
	var b strings.Builder
	b.WriteString("Bearer")
	sep := " "
	param := func(name, value string) {
		b.WriteString(sep)
		b.WriteString(name)
		b.WriteString(`="`)
		b.WriteString(quotable(value))
		b.WriteString(`"`)
		sep = ", "
	}
	if c.realm != "" {
		param("realm", c.realm)
	}
	if c.resourceMetadata != "" {
		param("resource_metadata", c.resourceMetadata)
	}
	if e.Code != CodeNone {
		param("error", string(e.Code))
		if e.Description != "" {
			param("error_description", e.Description)
		}
		if e.Code == CodeInsufficientScope && e.scopeNeeded != "" {
			param("scope", e.scopeNeeded)
		}
	}
	return b.String()
}

// quotable drops the characters RFC 6750 §3 forbids in auth-param values
// (outside %x20-21 / %x23-5B / %x5D-7E).
func quotable(s string) string {
	ok := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' {
			b = append(b, c)
		}
	}
	return string(b)
}

// issueCode maps an HTTP status to a FHIR IssueType code.
func issueCode(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "login"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not-found"
	case http.StatusServiceUnavailable:
		return "transient"
	case http.StatusBadRequest:
		return "invalid"
	}
	if status >= 500 {
		return "exception"
	}
	return "processing"
}

// operationOutcome returns a FHIR OperationOutcome with one error issue.
func operationOutcome(code, diag string) []byte {
	b := make([]byte, 0, 128+len(diag))
	b = append(b, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":`...)
	b = strconv.AppendQuote(b, code)
	if diag != "" {
		b = append(b, `,"diagnostics":`...)
		b = appendJSONString(b, diag)
	}
	b = append(b, "}]}"...)
	return b
}

// appendJSONString appends s as a JSON string. Control characters, quotes,
// backslashes and non-ASCII are escaped; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r < 0x20 || r == 0x7f:
			b = append(b, '\\', 'u', '0', '0', hex[r>>4], hex[r&0xf])
		case r < 0x80:
			b = append(b, byte(r))
		default:
			if r > 0xffff {
				r = 0xfffd
			}
			b = append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
		}
	}
	return append(b, '"')
}
