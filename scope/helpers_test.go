package scope

// Helpers of the tests.

// newSet builds a Set from parsed scopes, dropping duplicates.
func newSet(scopes ...Scope) Set {
	var set Set
	seen := map[string]bool{}
	for _, sc := range scopes {
		if sc.Kind == 0 {
			continue
		}
		if key := sc.String(); !seen[key] {
			seen[key] = true
			set.scopes = append(set.scopes, sc)
		}
	}
	return set
}

// resources returns the resource scopes.
func (s Set) resources() []Scope { return s.ofKind(KindResource) }

// extensions returns the scopes the package does not interpret.
func (s Set) extensions() []Scope { return s.ofKind(KindExtension) }

// v2String renders a resource scope in SMART v2 form (`.read` becomes `.rs`,
// `.write` `.cud`, `.*` `.cruds`); other scopes render as String does.
func (s Scope) v2String() string {
	if s.Kind == KindResource {
		return s.resourceString(false)
	}
	return s.String()
}
