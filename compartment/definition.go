package compartment

import (
	"sort"
	"strings"

	"github.com/fhirguard/fhirguard/fhir"
)

// Definition is one CompartmentDefinition of one FHIR release: the member
// resource types and the search parameters and elements that link them.
// Definitions are immutable and shared; get them with Lookup.
type Definition struct {
	version   fhir.Release
	typ       Type
	url       string
	names     []string
	resources map[string]*entry
}

// entry is a member resource type with its compiled links.
type entry struct {
	res Resource
	// links holds the element paths that can point to the compartment's
	// type; nil when none can.
	links *node
	// narrowExclusive is set when an untyped id in the narrowing parameter
	// can only mean the compartment's type.
	narrowExclusive bool
	// params maps a linking or narrowing parameter name to its data.
	params map[string]*Param
}

// node is a step of the element-path trie of one member type.
type node struct {
	names []string
	kids  []*node
	leaf  bool // the element holds References (or CodeableReferences)
}

func (n *node) child(name string) int {
	for i, s := range n.names {
		if s == name {
			return i
		}
	}
	return -1
}

func (n *node) add(path string) {
	cur := n
	for _, step := range strings.Split(path, ".") {
		i := cur.child(step)
		if i < 0 {
			cur.names = append(cur.names, step)
			cur.kids = append(cur.kids, &node{})
			i = len(cur.kids) - 1
		}
		cur = cur.kids[i]
	}
	cur.leaf = true
}

var definitions [fhir.R5 + 1][Device + 1]*Definition

func init() {
	for i := range generated {
		g := &generated[i]
		d := &Definition{version: g.version, typ: g.typ, url: g.url, resources: make(map[string]*entry, len(g.resources))}
		for _, r := range g.resources {
			e := &entry{
				res:    Resource{Type: r.name, Self: r.self, Params: r.params, Narrow: r.narrow},
				params: make(map[string]*Param, len(r.params)+1),
			}
			root := &node{}
			for j := range r.params {
				p := &r.params[j]
				e.params[p.Name] = p
				for _, x := range p.Paths {
					if x.Target == "" || x.Target == g.typ.String() {
						root.add(x.Elements)
					}
				}
			}
			if len(root.names) > 0 {
				e.links = root
			}
			if _, ok := e.params[r.narrow.Name]; !ok && r.narrow.Name != "_id" {
				n := r.narrow
				e.params[n.Name] = &n
			}
			e.narrowExclusive = r.narrow.Name == "_id" || exclusive(e.params[r.narrow.Name], g.typ)
			d.resources[r.name] = e
			d.names = append(d.names, r.name)
		}
		sort.Strings(d.names)
		definitions[g.version][g.typ] = d
	}
}

// exclusive reports whether every reference the parameter can match points
// to type t, so that an untyped id means t/id.
func exclusive(p *Param, t Type) bool {
	if p == nil || p.Unresolved || len(p.Paths) == 0 {
		return false
	}
	if len(p.Targets) == 1 && p.Targets[0] == t.String() {
		return true
	}
	for _, x := range p.Paths {
		if x.Target != t.String() {
			return false
		}
	}
	return true
}

// Lookup returns the definition of compartment type t in release r
// (fhir.R4 or fhir.R5), or nil when there is none.
func Lookup(r fhir.Release, t Type) *Definition {
	if r != fhir.R4 && r != fhir.R5 || !t.valid() {
		return nil
	}
	return definitions[r][t]
}

// Type returns the compartment type.
func (d *Definition) Type() Type { return d.typ }

// ResourceTypes returns the member resource types, sorted.
func (d *Definition) ResourceTypes() []string {
	return append([]string(nil), d.names...)
}

// Resource returns how resourceType belongs to the compartment; ok is false
// when it is not a member type.
func (d *Definition) Resource(resourceType string) (r Resource, ok bool) {
	e := d.resources[resourceType]
	if e == nil {
		return Resource{}, false
	}
	r = e.res
	r.Params = make([]Param, len(e.res.Params))
	for i, p := range e.res.Params {
		r.Params[i] = cloneParam(p)
	}
	r.Narrow = cloneParam(e.res.Narrow)
	return r, true
}

func cloneParam(p Param) Param {
	p.Targets = append([]string(nil), p.Targets...)
	p.Paths = append([]Path(nil), p.Paths...)
	return p
}

// NarrowParam returns the search parameter that Checker.Narrow adds to a
// search of resourceType; ok is false when it is not a member type.
func (d *Definition) NarrowParam(resourceType string) (name string, ok bool) {
	e := d.resources[resourceType]
	if e == nil {
		return "", false
	}
	return e.res.Narrow.Name, true
}

// TouchesLink reports whether a JSON Patch operation on the JSON Pointer
// pointer (RFC 6901, e.g. "/subject/reference" or "/performer/0") of a
// resourceType resource may change its membership in the compartment: the
// pointer is the whole document, resourceType, id, or lies inside a
// top-level element that holds a link. Pointers that are not valid JSON
// Pointers count as touching. Check both path and from of move and copy.
func (d *Definition) TouchesLink(resourceType, pointer string) bool {
	if pointer == "" || pointer[0] != '/' {
		return true
	}
	seg, _, _ := strings.Cut(pointer[1:], "/")
	if strings.Contains(seg, "~") {
		var ok bool
		if seg, ok = unescapePointer(seg); !ok {
			return true
		}
	}
	if seg == "resourceType" || seg == "id" || seg == "" {
		return true
	}
	e := d.resources[resourceType]
	return e != nil && e.links != nil && e.links.child(seg) >= 0
}

func unescapePointer(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '~' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 == len(s) {
			return "", false
		}
		switch s[i+1] {
		case '0':
			b.WriteByte('~')
		case '1':
			b.WriteByte('/')
		default:
			return "", false
		}
		i++
	}
	return b.String(), true
}
