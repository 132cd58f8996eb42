package middleware

import (
	"context"
	"time"

	"github.com/fhirguard/fhirguard/scope"
)

// Token is what the Authenticator learned from a valid bearer token: facts about
// the token, never authorisation decisions. It is shared between requests
// that carry the same token; treat it as read-only.
type Token struct {
	Subject  string
	ClientID string
	Issuer   string
	Audience []string
	Expiry   time.Time
	IssuedAt time.Time // zero when the token has no iat

	// Scopes is the compiled scope set of the token. Tokens with the same
	// scope string share one Matcher; Scopes.Set() gives the parsed set.
	Scopes *scope.Matcher

	// SMART launch context.
	Patient           string // a FHIR id ("123"); "Patient/123" in the token is reduced to "123"
	Encounter         string // a FHIR id
	FHIRUser          string // relative ("Practitioner/9") or absolute URL, as sent
	FHIRContext       []ContextItem
	NeedPatientBanner bool
	SMARTStyleURL     string
	Tenant            string

	// Claims holds every claim of the token (JWT claims or the
	// introspection response), decoded from JSON.
	Claims map[string]any

	unreadable   []string // context claims that could not be read, with why
	badFHIRUser  bool     // the fhirUser claim was present but unreadable
	badEncounter bool     // the encounter claim was present but unreadable
}

// UnreadableContext names the launch-context claims (patient, encounter,
// fhirUser) the token carried in a form that cannot be read exactly, with
// the reason and never the value, such as "patient: a number, not a
// string". Their fields are empty, and Authorize refuses the grants they
// would have held.
func (t *Token) UnreadableContext() []string { return append([]string(nil), t.unreadable...) }

// ContextItem is one entry of the SMART fhirContext array: a 2.0 string
// becomes an item with Reference only; 2.1 and 2.2 objects fill the rest.
type ContextItem struct {
	Reference  string         `json:"reference,omitempty"`
	Canonical  string         `json:"canonical,omitempty"`
	Identifier map[string]any `json:"identifier,omitempty"`
	Type       string         `json:"type,omitempty"`
	Role       string         `json:"role,omitempty"`
}

type tokenKey struct{}

// newContextWithToken returns a copy of ctx carrying t, as Authenticate
// does (tests put their tokens in the context with it). The context also
// holds the link through which it answers DecisionFromContext, so that a
// request is authorised without copying it again.
func newContextWithToken(ctx context.Context, t *Token) context.Context {
	return &tokenContext{Context: ctx, tok: t}
}

// tokenContext carries the token and the decision link in one allocation.
type tokenContext struct {
	context.Context
	tok  *Token
	link decisionLink
}

func (c *tokenContext) Value(key any) any {
	switch key {
	case tokenKey{}:
		return c.tok
	case linkKey{}:
		return &c.link
	case decisionKey{}:
		return c.link.value()
	}
	return c.Context.Value(key)
}

// TokenFromContext returns the token the Authenticator stored in the request context.
func TokenFromContext(ctx context.Context) (*Token, bool) {
	t, ok := ctx.Value(tokenKey{}).(*Token)
	return t, ok && t != nil
}
