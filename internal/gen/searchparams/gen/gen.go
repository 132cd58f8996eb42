// Package gen builds the Go source of searchparam's tables from the FHIR
// SearchParameters and resource-type CodeSystems in internal/fhirdata.
// Command searchparams writes it; the searchparam tests compare it with the
// committed file.
//
// For every resource type of R4 and R5 and every search parameter whose base
// names it, the generator keeps the parameter's type and turns the terms of
// its FHIRPath expression that start with the resource type into JSON element
// paths below the resource. It understands the forms the core definitions use
// for that:
//
//	Observation.category                         → category
//	Observation.component.code                   → component.code
//	Observation.subject.where(resolve() is Patient) → subject, references to Patient only
//	(Observation.value as CodeableConcept)       → valueCodeableConcept
//	Observation.effective.ofType(dateTime)       → effectiveDateTime
//	Condition.onset.as(Age)                      → onsetAge
//	(Observation.value as CodeableConcept).text  → valueCodeableConcept.text
//	A.x | B.y, (A.x | A.y)                       → one path per term of the type
//
// A type selection names the typed JSON property of a choice element
// (value[x] → valueCodeableConcept). Every type selection in the core
// definitions is on a choice element; were one on an element of a single
// type, the path would find nothing, and fail closed.
//
// Parameters on Resource (_id, _lastUpdated, _tag, _security, _profile,
// _source, …) apply to every resource type, those on DomainResource to every
// type but Binary, Bundle and Parameters.
//
// A term it cannot read (other where() filters, extension(), indexes,
// functions), a parameter without an expression, and every composite or
// special parameter make the parameter Unresolved; each such term is listed
// in the generated unresolved table with the reason.
package gen

import (
	"bytes"
	"fmt"
	"go/format"
	"io/fs"
	"sort"
	"strings"

	"github.com/fhirguard/fhirguard/internal/gen/fhirpath"
)

var versions = []struct{ name, dir string }{
	{"R4", "r4"},
	{"R5", "r5"},
}

// notDomain lists the concrete resource types that derive from Resource
// directly rather than from DomainResource (the same in R4 and R5).
var notDomain = map[string]bool{"Binary": true, "Bundle": true, "Parameters": true}

// typeNames maps the SearchParameter.type codes to the searchparam.Type
// constants.
var typeNames = map[string]string{
	"number":    "Number",
	"date":      "Date",
	"string":    "String",
	"token":     "Token",
	"reference": "Reference",
	"composite": "Composite",
	"quantity":  "Quantity",
	"uri":       "URI",
	"special":   "Special",
}

type searchParam struct {
	Code       string   `json:"code"`
	Base       []string `json:"base"`
	Type       string   `json:"type"`
	Expression string   `json:"expression"`
}

type bundle struct {
	Entry []struct {
		Resource searchParam `json:"resource"`
	} `json:"entry"`
}

// Path is an element path below a resource and, for a reference, the
// resource type it must point to ("" for any).
type Path struct {
	Elements string
	Target   string
}

// Param is a search parameter as seen from one resource type.
type Param struct {
	Name       string
	Type       string // searchparam constant name
	Paths      []Path
	Unresolved bool
	Expression string
}

// Unresolved is a search parameter term the generator could not turn into
// element paths, or a parameter it does not evaluate.
type Unresolved struct {
	Version, Resource, Param, Expression, Reason string
}

type version struct {
	name     string
	resource []Param
	domain   []Param
	types    []string
	params   map[string][]Param
}

// Generate returns the formatted Go source of searchparam/params_gen.go.
func Generate(fsys fs.FS) ([]byte, error) {
	var vs []version
	var unresolved []Unresolved
	for _, v := range versions {
		types, err := fhirpath.ResourceTypes(fsys, v.dir)
		if err != nil {
			return nil, err
		}
		var sps bundle
		if err := fhirpath.ReadJSON(fsys, v.dir+"/search-parameters.json", &sps); err != nil {
			return nil, err
		}
		if len(sps.Entry) < 1000 {
			return nil, fmt.Errorf("%s: implausible search parameter count %d", v.dir, len(sps.Entry))
		}
		ver := version{name: v.name, params: map[string][]Param{}}
		seen := map[[2]string]bool{}
		for _, e := range sps.Entry {
			sp := e.Resource
			if _, ok := typeNames[sp.Type]; !ok {
				return nil, fmt.Errorf("%s: %s has unknown type %q", v.dir, sp.Code, sp.Type)
			}
			for _, base := range sp.Base {
				// R5 defines a few base parameters twice; the first wins.
				if seen[[2]string{base, sp.Code}] {
					continue
				}
				seen[[2]string{base, sp.Code}] = true
				p, bad := convert(base, sp)
				for _, u := range bad {
					u.Version = v.name
					unresolved = append(unresolved, u)
				}
				switch {
				case base == "Resource":
					ver.resource = append(ver.resource, p)
				case base == "DomainResource":
					ver.domain = append(ver.domain, p)
				case types[base]:
					ver.params[base] = append(ver.params[base], p)
				default:
					return nil, fmt.Errorf("%s: %s has unknown base %q", v.dir, sp.Code, base)
				}
			}
		}
		for t := range types {
			ver.types = append(ver.types, t)
		}
		sort.Strings(ver.types)
		byName := func(ps []Param) {
			sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
		}
		byName(ver.resource)
		byName(ver.domain)
		for _, ps := range ver.params {
			byName(ps)
		}
		vs = append(vs, ver)
	}
	sort.SliceStable(unresolved, func(i, j int) bool {
		a, b := unresolved[i], unresolved[j]
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		if a.Resource != b.Resource {
			return a.Resource < b.Resource
		}
		return a.Param < b.Param
	})

	var b bytes.Buffer
	fmt.Fprintln(&b, "// Code generated by internal/gen/searchparams; DO NOT EDIT.")
	fmt.Fprintln(&b, "// Source: FHIR R4 4.0.1 and R5 5.0.0 search-parameters.json and resource-type CodeSystems.")
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, "package searchparam")
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, `import "github.com/fhirguard/fhirguard/fhir"`)
	fmt.Fprintln(&b)
	for _, v := range vs {
		fmt.Fprintf(&b, "// %s holds the search parameters of FHIR %s, types and parameters sorted by name.\n", strings.ToLower(v.name)+"Table", v.name)
		fmt.Fprintf(&b, "var %sTable = table{\n", strings.ToLower(v.name))
		fmt.Fprintln(&b, "\tresource: []Param{")
		for _, p := range v.resource {
			fmt.Fprintf(&b, "\t\t%s,\n", paramLit(p))
		}
		fmt.Fprintln(&b, "\t},")
		fmt.Fprintln(&b, "\tdomain: []Param{")
		for _, p := range v.domain {
			fmt.Fprintf(&b, "\t\t%s,\n", paramLit(p))
		}
		fmt.Fprintln(&b, "\t},")
		fmt.Fprintln(&b, "\ttypes: []typeParams{")
		for _, t := range v.types {
			fmt.Fprintf(&b, "\t\t{name: %q, domain: %t, params: []Param{\n", t, !notDomain[t])
			for _, p := range v.params[t] {
				fmt.Fprintf(&b, "\t\t\t%s,\n", paramLit(p))
			}
			fmt.Fprintln(&b, "\t\t}},")
		}
		fmt.Fprintln(&b, "\t},")
		fmt.Fprintln(&b, "}")
		fmt.Fprintln(&b)
	}
	fmt.Fprintln(&b, "// unresolved lists every search parameter term the generator could not turn")
	fmt.Fprintln(&b, "// into element paths, and every parameter it does not evaluate. Their")
	fmt.Fprintln(&b, "// parameters are Unresolved.")
	fmt.Fprintln(&b, "var unresolved = [...]unresolvedExpression{")
	for _, u := range unresolved {
		fmt.Fprintf(&b, "\t{Version: fhir.%s, Resource: %q, Param: %q, Expression: %q, Reason: %q},\n",
			u.Version, u.Resource, u.Param, u.Expression, u.Reason)
	}
	fmt.Fprintln(&b, "}")
	return format.Source(b.Bytes())
}

func paramLit(p Param) string {
	var s strings.Builder
	fmt.Fprintf(&s, "{Name: %q, Type: %s", p.Name, p.Type)
	if len(p.Paths) > 0 {
		s.WriteString(", Paths: []Path{")
		for i, x := range p.Paths {
			if i > 0 {
				s.WriteString(", ")
			}
			if x.Target == "" {
				fmt.Fprintf(&s, "{Elements: %q}", x.Elements)
			} else {
				fmt.Fprintf(&s, "{Elements: %q, Target: %q}", x.Elements, x.Target)
			}
		}
		s.WriteString("}")
	}
	if p.Unresolved {
		s.WriteString(", Unresolved: true")
	}
	if p.Expression != "" {
		fmt.Fprintf(&s, ", Expression: %q", p.Expression)
	}
	s.WriteString("}")
	return s.String()
}

// convert turns the terms of sp's expression that concern resource type rt
// into a Param. Terms it cannot read are returned.
func convert(rt string, sp searchParam) (Param, []Unresolved) {
	p := Param{Name: sp.Code, Type: typeNames[sp.Type]}
	expr := strings.TrimSpace(sp.Expression)
	if expr == "" {
		p.Unresolved = true
		return p, []Unresolved{{Resource: rt, Param: sp.Code, Reason: "no expression"}}
	}
	var bad []Unresolved
	var mine []string
	for _, term := range fhirpath.SplitUnion(expr) {
		paths, applies, reason := parseTerm(rt, term)
		if !applies {
			continue
		}
		mine = append(mine, term)
		if reason != "" {
			p.Unresolved = true
			bad = append(bad, Unresolved{Resource: rt, Param: sp.Code, Expression: term, Reason: reason})
			continue
		}
		for _, x := range paths {
			if !containsPath(p.Paths, x) {
				p.Paths = append(p.Paths, x)
			}
		}
	}
	p.Expression = strings.Join(mine, " | ")
	if len(mine) == 0 {
		p.Unresolved = true
		return p, []Unresolved{{Resource: rt, Param: sp.Code, Expression: expr,
			Reason: "no term of the expression starts with " + rt}}
	}
	if sp.Type == "composite" || sp.Type == "special" {
		// Their values are not single elements: not evaluated.
		p.Unresolved = true
		p.Paths = nil
		return p, []Unresolved{{Resource: rt, Param: sp.Code, Expression: p.Expression,
			Reason: sp.Type + " parameters are not evaluated"}}
	}
	return p, bad
}

func containsPath(ps []Path, x Path) bool {
	for _, p := range ps {
		if p == x {
			return true
		}
	}
	return false
}

// closing returns the index of the parenthesis that closes the one at s[0],
// or -1.
func closing(s string) int {
	depth := 0
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\'':
			quoted = !quoted
		case quoted:
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// topLevelAs returns the index of the last " as " outside parentheses, or -1.
func topLevelAs(s string) int {
	depth, at := 0, -1
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ' ':
			if depth == 0 && strings.HasPrefix(s[i:], " as ") {
				at = i
			}
		}
	}
	return at
}

// typeSelection returns T of "ofType(T)" or "as(T)".
func typeSelection(seg string) (string, bool) {
	for _, f := range []string{"ofType(", "as("} {
		if strings.HasPrefix(seg, f) && strings.HasSuffix(seg, ")") {
			return strings.TrimSpace(seg[len(f) : len(seg)-1]), true
		}
	}
	return "", false
}

// parseTerm reads one union term. applies reports whether the term concerns
// resource type rt; reason is non-empty when it does but cannot be read.
func parseTerm(rt, term string) (paths []Path, applies bool, reason string) {
	s := strings.TrimSpace(term)
	for strings.HasPrefix(s, "(") && closing(s) == len(s)-1 {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	if s == "" {
		return nil, false, ""
	}
	if parts := fhirpath.SplitUnion(s); len(parts) > 1 {
		for _, part := range parts {
			ps, a, r := parseTerm(rt, part)
			if !a {
				continue
			}
			applies = true
			if r != "" {
				return nil, true, r
			}
			paths = append(paths, ps...)
		}
		return paths, applies, ""
	}
	cast := ""
	if i := topLevelAs(s); i >= 0 {
		cast = strings.TrimSpace(s[i+4:])
		s = strings.TrimSpace(s[:i])
	}
	var cur []Path
	var segs []string
	casted := false
	if strings.HasPrefix(s, "(") {
		j := closing(s)
		if j < 0 {
			return nil, false, ""
		}
		inner, a, r := parseTerm(rt, s[1:j])
		if !a {
			return nil, false, ""
		}
		if r != "" {
			return nil, true, r
		}
		rest := s[j+1:]
		switch {
		case rest == "":
		case rest[0] == '.':
			segs = fhirpath.SplitDots(rest[1:])
		default:
			return nil, true, "unsupported FHIRPath " + rest
		}
		cur = inner
		casted = true
	} else {
		segs = fhirpath.SplitDots(s)
		if segs[0] != rt {
			return nil, false, ""
		}
		segs = segs[1:]
		cur = []Path{{}}
	}
	if cast != "" && !fhirpath.IsIdent(cast) {
		return nil, true, "unsupported cast " + cast
	}
	for i, seg := range segs {
		last := i == len(segs)-1
		if fhirpath.IsIdent(seg) {
			for k := range cur {
				if cur[k].Target != "" {
					return nil, true, "element after a where() filter"
				}
				cur[k].Elements = join(cur[k].Elements, seg)
			}
			continue
		}
		if strings.HasPrefix(seg, "where(resolve() is ") && strings.HasSuffix(seg, ")") {
			t := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(seg, "where(resolve() is "), ")"))
			if !fhirpath.IsIdent(t) || !last {
				return nil, true, "unsupported filter " + seg
			}
			for k := range cur {
				cur[k].Target = t
			}
			continue
		}
		if t, ok := typeSelection(seg); ok {
			if !fhirpath.IsIdent(t) || casted {
				return nil, true, "unsupported type selection " + seg
			}
			var err string
			if cur, err = applyCast(cur, t); err != "" {
				return nil, true, err
			}
			casted = true
			continue
		}
		if strings.Contains(seg, " ") {
			return nil, true, "unsupported operator in " + seg
		}
		return nil, true, "unsupported FHIRPath " + seg
	}
	if cast != "" {
		if casted {
			return nil, true, "unsupported second type selection as " + cast
		}
		var err string
		if cur, err = applyCast(cur, cast); err != "" {
			return nil, true, err
		}
	}
	for _, p := range cur {
		if p.Elements == "" {
			return nil, true, "no element path"
		}
	}
	return cur, true, ""
}

// applyCast turns each path p into p+Type, the JSON name of a choice element
// of that type.
func applyCast(ps []Path, t string) ([]Path, string) {
	out := make([]Path, 0, len(ps))
	for _, p := range ps {
		if p.Elements == "" {
			return nil, "type selection without an element"
		}
		if p.Target != "" {
			return nil, "type selection after a where() filter"
		}
		out = append(out, Path{Elements: p.Elements + strings.ToUpper(t[:1]) + t[1:]})
	}
	return out, ""
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}
