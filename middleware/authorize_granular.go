package middleware

import (
	"log/slog"

	"github.com/fhirguard/fhirguard/scope"
)

// matchConstraints reports whether the resource satisfies every constraint
// of one granular constraint set. A constraint the kit cannot evaluate
// matches nothing (fail closed).
func (a *Authorizer) matchConstraints(rt string, res map[string]any, cs scope.ConstraintSet) bool {
	a.log.LogAttrs(nil, slog.LevelWarn, "fhirguard: granular constraint not evaluated; granting nothing",
		slog.String("resourceType", rt), slog.String("constraint", cs.String()))
	return false
}

// constraintElements returns the top-level elements of type rt that the
// search parameter name reads.
func constraintElements(rt, name string) ([]string, bool) {
	return nil, false
}

// checkConstraintsSearch checks a search against the granular constraints
// of the grant, before the handler runs.
func (x *exchange) checkConstraintsSearch() *refusal { return nil }

// checkConstraintsCriteria refuses conditional criteria under constrained
// grants: what a conditional write touches cannot be verified.
func (x *exchange) checkConstraintsCriteria() *refusal {
	for _, ac := range x.acs {
		if !ac.grant.Unconstrained {
			return forbidden("", "conditional interactions are not available with granular scopes")
		}
	}
	return nil
}
