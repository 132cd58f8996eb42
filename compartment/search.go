package compartment

import (
	"net/url"
	"strings"
)

// Binds reports whether the search query q of resourceType already confines
// its results to the compartment instance t/id, so that no narrowing is
// needed. A query binds when, for one linking parameter of the type (or its
// narrowing parameter), every occurrence holds exactly one reference to t/id:
//
//	patient=Patient/123   patient=<own base>/Patient/123   subject:Patient=123
//	patient=123           (only when the parameter can point to t alone)
//	_id=123               (for the compartment's own type)
//
// A typed value binds when ParseReference reads it as an unversioned
// RefLocal of t/id. Lists (patient=123,456), other modifiers (:missing,
// :not, :identifier …), chains (patient.name=…), other ids or types,
// versioned or padded values, references to other servers and untyped ids
// on parameters that can point to several types never bind. Parameters are ANDed, so one binding
// parameter is enough whatever else the query holds. Binds is false for an
// invalid t or id and for a type that is not in the compartment.
func (c *Checker) Binds(resourceType string, q url.Values, t Type, id string) bool {
	d, err := c.prepare(t, id)
	if err != nil {
		return false
	}
	own := resourceType == typeNames[t]
	e := d.resources[resourceType]
	if e == nil && !own {
		return false
	}
	for key, vals := range q {
		if len(vals) == 0 {
			continue
		}
		name, mod, _ := strings.Cut(key, ":")
		if own && name == "_id" {
			if mod == "" && all(vals, func(v string) bool { return v == id }) {
				return true
			}
			continue
		}
		if e == nil || (own && c.excludeLinked) {
			continue
		}
		p := e.params[name]
		if p == nil {
			continue
		}
		var ok func(string) bool
		switch mod {
		case "":
			exclusive := name == e.res.Narrow.Name && e.narrowExclusive || exclusive(p, t)
			ok = func(v string) bool {
				if exclusive && v == id {
					return true
				}
				r := c.ParseReference(v)
				return r.Kind == RefLocal && r.Version == "" && r.Type == typeNames[t] && r.ID == id
			}
		case typeNames[t]:
			ok = func(v string) bool { return v == id }
		default:
			continue
		}
		if all(vals, ok) {
			return true
		}
	}
	return false
}

func all(vals []string, ok func(string) bool) bool {
	for _, v := range vals {
		if !ok(v) {
			return false
		}
	}
	return true
}

// Narrow returns a copy of the search query q of resourceType confined to
// the compartment instance t/id: q itself (copied) when Binds says it is
// already confined, else q with the type's narrowing parameter
// (Definition.NarrowParam) bound to "t/id" — "_id=id" for the compartment's
// own type. The added value comes first among the values of that parameter,
// so a server that reads only the first value still sees it; FHIR ANDs the
// rest. It returns an error for a type that has no link to the compartment
// (which cannot be narrowed to it) and for a bad t or id.
func (c *Checker) Narrow(resourceType string, q url.Values, t Type, id string) (url.Values, error) {
	d, err := c.prepare(t, id)
	if err != nil {
		return nil, err
	}
	name, value := "_id", id
	if resourceType != typeNames[t] {
		e := d.resources[resourceType]
		if e == nil {
			return nil, errNotMemberType
		}
		name, value = e.res.Narrow.Name, typeNames[t]+"/"+id
	}
	out := make(url.Values, len(q)+1)
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	if c.Binds(resourceType, q, t, id) {
		return out, nil
	}
	out[name] = append([]string{value}, out[name]...)
	return out, nil
}
