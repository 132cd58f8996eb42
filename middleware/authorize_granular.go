package middleware

import (
	"context"
	"log/slog"
	"slices"
	"strings"

	"github.com/fhirguard/fhirguard/scope"
	"github.com/fhirguard/fhirguard/searchparam"
)

// constraintParam resolves the search parameter of a constraint; ok is
// false when the kit cannot evaluate it (modifier, chain, unknown or
// unresolved parameter, unsupported type).
func (a *authorizer) constraintParam(rt string, c scope.Constraint) (searchparam.Param, bool) {
	if c.Modifier != "" || c.Chained() {
		return searchparam.Param{}, false
	}
	p, ok := searchparam.Lookup(a.spVersion, rt, c.Name)
	if !ok || p.Unresolved {
		return searchparam.Param{}, false
	}
	switch p.Type {
	case searchparam.Token, searchparam.Reference, searchparam.String:
		return p, true
	}
	return searchparam.Param{}, false
}

// matchConstraints reports whether the resource satisfies every constraint
// of one granular constraint set. A constraint the kit cannot evaluate
// matches nothing (fail closed) and is logged.
func (a *authorizer) matchConstraints(rt string, res map[string]any, cs scope.ConstraintSet) bool {
	for _, c := range cs {
		p, ok := a.constraintParam(rt, c)
		if !ok {
			a.log.LogAttrs(context.Background(), slog.LevelWarn, "fhirguard: granular constraint cannot be evaluated; it grants nothing",
				slog.String("resourceType", rt), slog.String("constraint", c.String()))
			return false
		}
		matched, ok := searchparam.Match(res, p, c.Value)
		if !ok {
			a.log.LogAttrs(context.Background(), slog.LevelWarn, "fhirguard: granular constraint cannot be evaluated; it grants nothing",
				slog.String("resourceType", rt), slog.String("constraint", c.String()))
			return false
		}
		if !matched {
			return false
		}
	}
	return true
}

// constraintElements returns the top-level elements of type rt that the
// search parameter name reads.
func (a *authorizer) constraintElements(rt, name string) ([]string, bool) {
	p, ok := searchparam.Lookup(a.spVersion, rt, name)
	if !ok || p.Unresolved {
		return nil, false
	}
	var out []string
	for _, path := range p.Paths {
		top, _, _ := strings.Cut(path.Elements, ".")
		if !slices.Contains(out, top) {
			out = append(out, top)
		}
	}
	return out, len(out) > 0
}

// constraintSets returns the constraint sets of the accesses; constrained
// is false when some access grants the interaction without constraints.
func (x *exchange) constraintSets() (sets []scope.ConstraintSet, constrained bool) {
	for _, ac := range x.acs {
		if ac.grant.Unconstrained {
			return nil, false
		}
		sets = append(sets, ac.grant.Constraints...)
	}
	return sets, len(sets) > 0
}

// checkConstraintsSearch applies the granular constraints to a search
// before the handler runs: narrowing it (by default) or refusing it when
// it is outside every granted set (StrictGranularSearch). Constraints the
// kit cannot evaluate refuse the search.
func (x *exchange) checkConstraintsSearch() *refusal {
	sets, constrained := x.constraintSets()
	if !constrained {
		return nil
	}
	rt := x.d.Interaction.ResourceType
	usable := sets[:0:0]
	for _, cs := range sets {
		ok := true
		for _, c := range cs {
			if _, can := x.a.constraintParam(rt, c); !can {
				ok = false
			}
		}
		if ok {
			usable = append(usable, cs)
		}
	}
	if len(usable) == 0 {
		return forbidden("", "the token's granular scopes for "+rt+" cannot be evaluated")
	}
	q := x.d.Interaction.Query
	if x.a.strictGranular {
		for _, cs := range usable {
			if queryHolds(q, cs) {
				return nil
			}
		}
		return forbidden("", "the search is outside the token's granular scopes")
	}
	// One set: add each of its constraints. Several sets on the same single
	// parameter: add one OR list. Otherwise results are only verified.
	if len(usable) == 1 {
		for _, c := range usable[0] {
			if !slices.Contains(q[c.Name], c.Value) {
				x.addQuery(c.Name, c.Value)
				x.d.Narrowed = true
			}
		}
		return nil
	}
	name := ""
	var values []string
	for _, cs := range usable {
		if len(cs) != 1 || (name != "" && cs[0].Name != name) {
			return nil
		}
		name = cs[0].Name
		values = append(values, cs[0].Value)
	}
	x.addQuery(name, strings.Join(values, ","))
	x.d.Narrowed = true
	return nil
}

// queryHolds reports whether the query carries every constraint of cs: the
// parameter with values all among the constraint's values.
func queryHolds(q map[string][]string, cs scope.ConstraintSet) bool {
	for _, c := range cs {
		vs := q[c.Name]
		if len(vs) == 0 {
			return false
		}
		held := false
		for _, v := range vs {
			all := true
			for _, one := range strings.Split(v, ",") {
				if !slices.Contains(c.Values, one) {
					all = false
				}
			}
			held = held || all
		}
		if !held {
			return false
		}
	}
	return true
}

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
