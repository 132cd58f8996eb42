package middleware

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var errSecretCause = errors.New("SECRET claim value")

func TestWriteError(t *testing.T) {
	cases := []struct {
		name       string
		err        *AuthError
		status     int
		www        string // "" means no header
		retryAfter string
		issue      string
	}{
		{"no token", unauthenticated(), 401, `Bearer realm="https://fhir.example.org/r4"`, "", "login"},
		{"invalid token", invalidToken("the access token expired", errors.Join(ErrTokenExpired, errSecretCause)), 401,
			`Bearer realm="https://fhir.example.org/r4", error="invalid_token", error_description="the access token expired"`, "", "login"},
		{"invalid request", invalidRequest("more than one Authorization header", errors.Join(errMalformedRequest, errSecretCause)), 400,
			`Bearer realm="https://fhir.example.org/r4", error="invalid_request", error_description="more than one Authorization header"`, "", "invalid"},
		{"insufficient scope", &AuthError{Status: 403, Code: CodeInsufficientScope, Description: "scope", scopeNeeded: "patient/Observation.rs"}, 403,
			`Bearer realm="https://fhir.example.org/r4", error="insufficient_scope", error_description="scope", scope="patient/Observation.rs"`, "", "forbidden"},
		{"unavailable", unavailable("down", 1500*time.Millisecond, ErrKeysUnavailable), 503, "", "2", "transient"},
		{"unavailable, short retry", unavailable("down", 0, ErrKeysUnavailable), 503, "", "1", "transient"},
		{"quotes and control characters dropped", invalidToken("a\"b\\c\x01d", nil), 401,
			`Bearer realm="https://fhir.example.org/r4", error="invalid_token", error_description="abcd"`, "", "login"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			writeError(w, challengeInfo{realm: testAudience}, tc.err)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tc.www {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tc.www)
			}
			if got := w.Header().Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tc.retryAfter)
			}
			var oo struct {
				ResourceType string
				Issue        []struct{ Severity, Code, Diagnostics string }
			}
			if err := json.Unmarshal(w.Body.Bytes(), &oo); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if oo.ResourceType != "OperationOutcome" || len(oo.Issue) != 1 || oo.Issue[0].Code != tc.issue || oo.Issue[0].Severity != "error" {
				t.Errorf("body = %s", w.Body)
			}
			if strings.Contains(w.Body.String(), "SECRET") || strings.Contains(w.Header().Get("WWW-Authenticate"), "SECRET") {
				t.Errorf("response leaks the cause")
			}
		})
	}
}

func TestAuthErrorIs(t *testing.T) {
	e := claimsError(errors.Join(ErrTokenExpired))
	var ae *AuthError
	if !errors.As(error(e), &ae) || !errors.Is(e, ErrTokenExpired) || ae.Status != http.StatusUnauthorized || ae.Code != CodeInvalidToken {
		t.Fatalf("AuthError = %#v", e)
	}
	if errors.Is(e, errTokenLifetime) {
		t.Fatal("wrong cause matched")
	}
	if !strings.Contains(e.Error(), "401 invalid_token") {
		t.Fatalf("Error() = %q", e.Error())
	}
}

func TestOperationOutcomeEscaping(t *testing.T) {
	for _, s := range []string{"plain", `quote " backslash \`, "ctrl \x00\x1f\x7f", "non-ASCII é 中 😀", "bad UTF-8 \xff"} {
		b := operationOutcome("login", s)
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Errorf("%q: invalid JSON %s: %v", s, b, err)
		}
	}
}
