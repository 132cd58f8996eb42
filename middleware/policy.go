package middleware

import (
	"context"
	"fmt"
	"net/http"

	"github.com/fhirguard/fhirguard/fhirrest"
	"github.com/fhirguard/fhirguard/scope"
)

// Decision is what Authorize decided for a request. It is stored in the
// request context (DecisionFromContext) so that a handler can apply the
// compartment and constraints in its own storage query.
type Decision struct {
	// Interaction is the classified request.
	Interaction fhirrest.Interaction
	// Context is the context of the grant used (patient, user or system).
	Context scope.Context
	// Narrowed is true when Authorize added compartment or constraint
	// parameters to a search.
	Narrowed bool
	// Grant is how the scopes grant the interaction's permission.
	Grant scope.Grant
	// CompartmentType and CompartmentID name the compartment the request is
	// held to ("Patient", "123"), empty when none.
	CompartmentType string
	CompartmentID   string
	// Rule names the policy rule that decided, when a policy denied.
	Rule string
	// Withheld lists the resources verification withheld from the response
	// or refused to let the token write, as "Type/id: reason" (such as
	// "Observation/7: references Patient/456"), at most 100. The client sees
	// only the neutral answer; this is for audit.
	Withheld []string
}

type decisionKey struct{}

// newContextWithDecision returns a copy of ctx carrying d.
func newContextWithDecision(ctx context.Context, d *Decision) context.Context {
	return context.WithValue(ctx, decisionKey{}, d)
}

// decisionContext is a context node that carries a Decision in the same
// allocation.
type decisionContext struct {
	context.Context
	d Decision
}

func (c *decisionContext) Value(key any) any {
	if key == (decisionKey{}) {
		return &c.d
	}
	return c.Context.Value(key)
}

// DecisionFromContext returns the decision Authorize made for the request
// whose context ctx is: ask for it while the request is served (from the
// handler, or a goroutine it starts); the Decision returned stays valid and
// its request's after the request ends. A context kept after the request
// answers with the Decision only if it was asked for during the request:
// Authorize recycles a Decision nobody asked for. OnDecision
// (AuthorizeConfig) is given every Decision, for audit.
func DecisionFromContext(ctx context.Context) (*Decision, bool) {
	d, ok := ctx.Value(decisionKey{}).(*Decision)
	return d, ok && d != nil
}

// Policy is an extra authorisation rule set evaluated after scopes and
// compartments: it may only deny, never widen. A nil error allows. A
// *PolicyDenial denies with its message; any other error also denies (fail
// closed) and is logged. d is nil when no enforcement point ran.
type Policy interface {
	AuthorizeRequest(r *http.Request, t *Token, d *Decision) error
}

// ResourcePhase says why a resource is shown to a ResourcePolicy.
type ResourcePhase uint8

// Resource phases.
const (
	ResourceRead    ResourcePhase = iota + 1 // returned by the handler
	ResourceWritten                          // sent by the client, before the handler
)

// ResourcePolicy is a Policy that also judges each resource read (after the
// handler) or written (before it). resource is the decoded JSON object.
type ResourcePolicy interface {
	Policy
	AuthorizeResource(r *http.Request, t *Token, d *Decision, phase ResourcePhase, resource map[string]any) error
}

// PolicyDenial is the error a Policy returns to deny with a message the
// client may see.
type PolicyDenial struct {
	Rule    string // the rule's name, for logs and the decision hook
	Message string // safe to show to the client
}

func (e *PolicyDenial) Error() string {
	return fmt.Sprintf("policy %q denied: %s", e.Rule, e.Message)
}
