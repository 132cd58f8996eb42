package searchparam

import (
	"sort"
	"strconv"

	"github.com/fhirguard/fhirguard/fhir"
)

// Type is the type of a search parameter (SearchParameter.type).
type Type uint8

// The search parameter types of FHIR.
const (
	Number Type = iota + 1
	Date
	String
	Token
	Reference
	Composite
	Quantity
	URI
	Special
)

var typeNames = [...]string{
	Number:    "number",
	Date:      "date",
	String:    "string",
	Token:     "token",
	Reference: "reference",
	Composite: "composite",
	Quantity:  "quantity",
	URI:       "uri",
	Special:   "special",
}

// String returns the FHIR code of the type ("token", "reference", …).
func (t Type) String() string {
	if t >= Number && int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// Param is a search parameter as seen from one resource type.
type Param struct {
	// Name is the parameter's code, as used in a query ("category").
	Name string
	// Type is the parameter's type.
	Type Type
	// Paths are the JSON elements the parameter's expression covers for
	// the resource type. A search value matches the resource when it
	// matches any element on any path. When Unresolved is set they cover
	// only the terms that could be read.
	Paths []Path
	// Unresolved marks a parameter whose expression could not be read in
	// full, or that is composite or special: it cannot be evaluated, and a
	// constraint on it must grant nothing.
	Unresolved bool
	// Expression is the part of the FHIRPath expression that concerns the
	// resource type, for diagnostics.
	Expression string
}

// Path is a JSON element path below a resource.
type Path struct {
	// Elements is the dotted path of JSON property names below the
	// resource, e.g. "category", "component.code", "valueCodeableConcept".
	// An array at any step means every item. A type selection in the
	// expression gives the typed name of a choice element; a few core
	// expressions name a choice element without one (R4 Observation.date:
	// "effective"), and the JSON property then carries the type
	// (effectiveDateTime): the Match functions compare names exactly, so
	// such a path finds nothing there.
	Elements string
	// Target is the resource type a reference on this path must point to
	// (from where(resolve() is X)); "" allows any.
	Target string
}

// unresolvedExpression is a search parameter term the generator could not
// turn into element paths, or a parameter it does not evaluate (the
// generated unresolved table, which the tests pin).
type unresolvedExpression struct {
	Version    fhir.Release
	Resource   string // the resource type, or Resource / DomainResource for base parameters
	Param      string
	Expression string // the term, or the parameter's expression
	Reason     string
}

type typeParams struct {
	name   string
	domain bool    // derives from DomainResource
	params []Param // sorted by Name
}

type table struct {
	resource []Param      // parameters of Resource, sorted by Name
	domain   []Param      // parameters of DomainResource, sorted by Name
	types    []typeParams // sorted by name
}

func tableOf(r fhir.Release) *table {
	switch r {
	case fhir.R4:
		return &r4Table
	case fhir.R5:
		return &r5Table
	}
	return nil
}

func (t *table) find(resourceType string) *typeParams {
	lo, hi := 0, len(t.types)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if t.types[m].name < resourceType {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(t.types) && t.types[lo].name == resourceType {
		return &t.types[lo]
	}
	return nil
}

func findParam(ps []Param, code string) (int, bool) {
	lo, hi := 0, len(ps)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if ps[m].Name < code {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(ps) && ps[lo].Name == code
}

// Lookup returns search parameter code of resourceType in FHIR release r,
// including the parameters every resource has (_id, _lastUpdated, _tag, …).
// ok is false for an unknown release, resource type or parameter.
//
// Lookup does not allocate: the returned Param shares its Paths with the
// table, and must not be modified.
func Lookup(r fhir.Release, resourceType, code string) (p Param, ok bool) {
	t := tableOf(r)
	if t == nil {
		return Param{}, false
	}
	tp := t.find(resourceType)
	if tp == nil {
		return Param{}, false
	}
	if i, ok := findParam(tp.params, code); ok {
		return tp.params[i], true
	}
	if i, ok := findParam(t.resource, code); ok {
		return t.resource[i], true
	}
	if tp.domain {
		if i, ok := findParam(t.domain, code); ok {
			return t.domain[i], true
		}
	}
	return Param{}, false
}

// Params returns the codes of every search parameter of resourceType in FHIR
// release r, sorted, or nil for an unknown release or resource type.
func Params(r fhir.Release, resourceType string) []string {
	t := tableOf(r)
	if t == nil {
		return nil
	}
	tp := t.find(resourceType)
	if tp == nil {
		return nil
	}
	out := make([]string, 0, len(tp.params)+len(t.resource)+len(t.domain))
	for _, p := range tp.params {
		out = append(out, p.Name)
	}
	for _, p := range t.resource {
		out = append(out, p.Name)
	}
	if tp.domain {
		for _, p := range t.domain {
			out = append(out, p.Name)
		}
	}
	sort.Strings(out)
	return out
}
