package compartment

// Helpers of the tests.

// params returns the names of the search parameters that link resourceType
// to the compartment, in definition order; nil when it is not a member type.
// A compartment search of that type is the union of searches on them.
func (d *Definition) params(resourceType string) []string {
	e := d.resources[resourceType]
	if e == nil {
		return nil
	}
	out := make([]string, len(e.res.Params))
	for i, p := range e.res.Params {
		out[i] = p.Name
	}
	return out
}
