package compartment

import (
	"fmt"

	"github.com/fhirguard/fhirguard/internal/fhirjson"
)

// refLeaf is the node of the Reference inside a CodeableReference.
var refLeaf = &node{leaf: true}

func (c *Checker) prepare(t Type, id string) (*Definition, error) {
	if !validID(id) {
		return nil, errInvalidID
	}
	if !t.valid() || c.defs[t] == nil {
		return nil, errUnknownType
	}
	return c.defs[t], nil
}

// links returns the link trie of resource type rt in d, honouring
// IncludeLinkedPatients; nil when rt cannot link to the compartment.
func (c *Checker) links(d *Definition, rt string) *node {
	if c.excludeLinked && rt == typeNames[d.typ] {
		return nil
	}
	if e := d.resources[rt]; e != nil {
		return e.links
	}
	return nil
}

// Member reports whether the JSON resource is in the compartment instance
// t/id (see the package documentation for the rules). The document is read
// by the kit's strict JSON reader (internal/fhirjson: valid UTF-8, no
// member repeated even in another case, nesting at most 128 levels). It
// returns an error for a document that breaks those rules, for JSON that
// is not a resource, and for a t or id that names no compartment (t not
// defined by the Checker's release, id not a FHIR id by fhir.ValidID); the
// boolean is false whenever the error is not nil.
func (c *Checker) Member(resource []byte, t Type, id string) (bool, error) {
	if _, err := c.prepare(t, id); err != nil {
		return false, err
	}
	// MemberMap reads the top-level resourceType and id and references
	// only: the rest of the document is checked but not built.
	m, err := fhirjson.Decode(resource, fhirjson.Options{MaxDepth: fhirjson.MaxReadDepth, References: true})
	if err != nil {
		if notObject(resource) {
			return false, errNotResource
		}
		return false, fmt.Errorf("%w: %v", errMalformed, err)
	}
	return c.MemberMap(m, t, id)
}

// notObject reports whether data is one JSON value other than an object.
func notObject(data []byte) bool {
	wrapped := append(append([]byte{'['}, data...), ']')
	a, err := fhirjson.DecodeArray(wrapped, fhirjson.Options{MaxDepth: fhirjson.MaxReadDepth})
	if err != nil || len(a) != 1 {
		return false
	}
	_, isObject := a[0].(map[string]any)
	return !isObject
}

// MemberMap is Member for a resource already decoded by encoding/json into
// a map (numbers as float64 or json.Number).
func (c *Checker) MemberMap(resource map[string]any, t Type, id string) (bool, error) {
	d, err := c.prepare(t, id)
	if err != nil {
		return false, err
	}
	rt, ok := resource["resourceType"].(string)
	if !ok {
		return false, errNotResource
	}
	if rt == typeNames[t] {
		if rid, ok := resource["id"].(string); ok && rid == id {
			return true, nil
		}
	}
	n := c.links(d, rt)
	if n == nil {
		return false, nil
	}
	m := matcher{c: c, typ: typeNames[t], id: id}
	walkMap(resource, n, &m, false)
	return m.found, nil
}

// References are the references a resource holds: Ref(i), for i from 0
// to Len()-1, returns one with the names of the members leading to the
// object that holds it, array elements adding no name, so that
// {"performer":[{"reference":"Patient/1"}]} has (["performer"],
// "Patient/1").
type References interface {
	Len() int
	Ref(i int) (path []string, value string)
}

// MemberRefs is MemberMap for a resource known by its type, its id and the
// references it holds instead of its JSON. For a resource that holds its
// references as strings, in objects and in the objects of arrays, it
// answers as MemberMap does (a Reference inside a CodeableReference, whose
// "reference" member is an object, needs MemberMap). It suits a server
// that keeps a resource's references apart from its JSON (a search
// index); the guard uses it for verified reads. An empty resourceType is
// an error, as a missing one is for MemberMap.
func (c *Checker) MemberRefs(resourceType, resourceID string, refs References, t Type, id string) (bool, error) {
	d, err := c.prepare(t, id)
	if err != nil {
		return false, err
	}
	if resourceType == "" {
		return false, errNotResource
	}
	if resourceType == typeNames[t] && resourceID == id {
		return true, nil
	}
	root := c.links(d, resourceType)
	if root == nil {
		return false, nil
	}
	for i, n := 0, refs.Len(); i < n; i++ {
		path, ref := refs.Ref(i)
		node := root
		for _, name := range path {
			k := node.child(name)
			if k < 0 {
				node = nil
				break
			}
			node = node.kids[k]
		}
		if node != nil && node.leaf && refersTo(c, ref, typeNames[t], id) {
			return true, nil
		}
	}
	return false, nil
}

func walkAny(v any, n *node, m *matcher) {
	switch v := v.(type) {
	case map[string]any:
		walkMap(v, n, m, false)
	case []any:
		for _, x := range v {
			if o, ok := x.(map[string]any); ok && !m.found {
				walkMap(o, n, m, false)
			}
		}
	}
}

func walkMap(o map[string]any, n *node, m *matcher, inRef bool) {
	if n.leaf {
		switch r := o["reference"].(type) {
		case string:
			if refersTo(m.c, r, m.typ, m.id) {
				m.found = true
				return
			}
		case map[string]any:
			if !inRef {
				walkMap(r, refLeaf, m, true)
			}
		}
	}
	for i, name := range n.names {
		if m.found {
			return
		}
		if v, ok := o[name]; ok {
			walkAny(v, n.kids[i], m)
		}
	}
}

// matcher collects the result of a scan.
type matcher struct {
	c     *Checker
	typ   string
	id    string
	found bool
}
