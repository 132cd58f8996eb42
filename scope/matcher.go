package scope

// Matcher is a Set compiled for permission checks. Build it once per distinct
// scope string with Compile and share it: it is immutable and safe for
// concurrent use.
//
// For each context and known resource type the Matcher holds two bit sets:
// the permissions granted without constraints, and the permissions granted
// at all (with or without constraints). Wildcard scopes are folded into every
// type at compile time, so a check is a type lookup and a table read,
// whatever the number of scopes. Constraint sets are kept aside and read only
// when a permission is granted with constraints alone.
type Matcher struct {
	set   Set
	any   [numContexts][numTypes]Permission // granted, with or without constraints
	open  [numContexts][numTypes]Permission // granted without constraints
	wild  [numContexts]Permission           // granted by "*" without constraints
	cons  map[consKey][]ConstraintSet       // constraint sets per (context, type, letter)
	ctxs  [numContexts]bool                 // some resource scope of the context exists
	empty bool
}

type consKey struct {
	ctx    Context
	typ    TypeID
	letter uint8
}

// Compile builds the Matcher of a Set.
func Compile(set Set) *Matcher {
	m := &Matcher{set: set, empty: true}
	for _, sc := range set.scopes {
		if sc.Kind != KindResource || !sc.KnownType || sc.Context < Patient || sc.Context > System {
			continue
		}
		m.empty = false
		c := sc.Context - 1
		m.ctxs[c] = true
		if sc.Wildcard() && len(sc.Constraints) == 0 {
			m.wild[c] |= sc.Permissions
		}
		apply := func(t TypeID) {
			m.any[c][t] |= sc.Permissions
			if len(sc.Constraints) == 0 {
				m.open[c][t] |= sc.Permissions
			}
		}
		if sc.Wildcard() {
			for t := range numTypes {
				apply(TypeID(t))
			}
		} else {
			apply(sc.Type)
		}
	}
	// Constraint sets matter only where no unconstrained scope gives the letter.
	for _, sc := range set.scopes {
		if sc.Kind != KindResource || !sc.KnownType || len(sc.Constraints) == 0 || sc.Context < Patient || sc.Context > System {
			continue
		}
		c := sc.Context - 1
		add := func(t TypeID) {
			for l := uint8(0); l < 5; l++ {
				bit := Permission(1) << l
				if sc.Permissions&bit == 0 || m.open[c][t]&bit != 0 {
					continue
				}
				if m.cons == nil {
					m.cons = map[consKey][]ConstraintSet{}
				}
				k := consKey{sc.Context, t, l}
				m.cons[k] = append(m.cons[k], sc.Constraints)
			}
		}
		if sc.Wildcard() {
			for t := range numTypes {
				add(TypeID(t))
			}
		} else {
			add(sc.Type)
		}
	}
	return m
}

// Set returns the Set the Matcher was compiled from.
func (m *Matcher) Set() Set { return m.set }

// Empty reports whether no resource scope grants anything.
func (m *Matcher) Empty() bool { return m.empty }

// HasContext reports whether some valid resource scope of the context exists.
func (m *Matcher) HasContext(ctx Context) bool {
	return ctx >= Patient && ctx <= System && m.ctxs[ctx-1]
}

// Allows reports whether the scopes of context ctx grant every permission in
// p on the resource type, with or without granular constraints. Each letter
// may come from a different scope: "Observation.r Observation.s" allows
// Read|Search as "Observation.rs" does. Unknown types are never allowed.
func (m *Matcher) Allows(ctx Context, resourceType string, p Permission) bool {
	t, ok := LookupType(resourceType)
	if !ok {
		return false
	}
	return m.AllowsID(ctx, t, p)
}

// AllowsID is Allows for a type already resolved with LookupType.
func (m *Matcher) AllowsID(ctx Context, t TypeID, p Permission) bool {
	c := int(ctx) - 1
	if uint(c) >= numContexts || int(t) >= numTypes || p == 0 {
		return false
	}
	return m.any[c][t]&p == p
}

// AllowsUnconstrained reports whether the scopes of context ctx grant every
// permission in p on the type without granular constraints.
func (m *Matcher) AllowsUnconstrained(ctx Context, t TypeID, p Permission) bool {
	c := int(ctx) - 1
	if uint(c) >= numContexts || int(t) >= numTypes || p == 0 {
		return false
	}
	return m.open[c][t]&p == p
}

// AllowsAllTypes reports whether a wildcard scope of context ctx grants every
// permission in p without constraints: what a system-wide search needs to
// return any type.
func (m *Matcher) AllowsAllTypes(ctx Context, p Permission) bool {
	c := int(ctx) - 1
	return uint(c) < numContexts && p != 0 && m.wild[c]&p == p
}

// Grant is the answer of Lookup for one context, type and permission letter.
type Grant struct {
	// Allowed is true when some scope grants the permission.
	Allowed bool
	// Unconstrained is true when a scope grants it with no constraints;
	// such a scope wins over constrained ones.
	Unconstrained bool
	// Constraints lists, when Allowed and not Unconstrained, the constraint
	// sets of the granting scopes: a resource is permitted when it satisfies
	// every constraint of at least one set. The slice is shared; do not
	// modify it.
	Constraints []ConstraintSet
}

// Lookup says how the scopes of context ctx grant one permission letter p
// (Create, Read, Update, Delete or Search) on type t. It does not allocate.
func (m *Matcher) Lookup(ctx Context, t TypeID, p Permission) Grant {
	c := int(ctx) - 1
	if uint(c) >= numContexts || int(t) >= numTypes || p == 0 || p&(p-1) != 0 || p > Search {
		return Grant{}
	}
	if m.open[c][t]&p != 0 {
		return Grant{Allowed: true, Unconstrained: true}
	}
	if m.any[c][t]&p == 0 {
		return Grant{}
	}
	l := uint8(0)
	for Permission(1)<<l != p {
		l++
	}
	return Grant{Allowed: true, Constraints: m.cons[consKey{ctx, t, l}]}
}
