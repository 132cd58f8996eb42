package fhirstore

import (
	"strings"
	"time"
)

// collect appends the values found at path below v, flattening arrays.
func collect(v any, path []string, out []any) []any {
	if arr, ok := v.([]any); ok {
		for _, x := range arr {
			out = collect(x, path, out)
		}
		return out
	}
	if len(path) == 0 {
		if v != nil {
			out = append(out, v)
		}
		return out
	}
	m, ok := v.(map[string]any)
	if !ok {
		return out
	}
	return collect(m[path[0]], path[1:], out)
}

func values(obj map[string]any, d paramDef) []any {
	var out []any
	for _, path := range d.paths {
		out = collect(obj, path, out)
	}
	return out
}

// localRef is a reference to a resource on this server.
type localRef struct{ typ, id string }

// splitRef resolves a reference string to a resource of this server: a
// relative "Type/id" (optionally "/_history/n") or an absolute URL below
// base. Contained, urn: and external references return false.
func splitRef(ref, base string) (localRef, bool) {
	if strings.Contains(ref, "://") {
		if base == "" || !strings.HasPrefix(ref, base+"/") {
			return localRef{}, false
		}
		ref = ref[len(base)+1:]
	}
	if i := strings.IndexAny(ref, "?#"); i >= 0 {
		ref = ref[:i]
	}
	parts := strings.Split(ref, "/")
	if len(parts) == 4 && parts[2] == "_history" {
		parts = parts[:2]
	}
	if len(parts) != 2 || !isR4Type(parts[0]) || !validID(parts[1]) {
		return localRef{}, false
	}
	return localRef{parts[0], parts[1]}, true
}

// refsOf returns the local references found at a reference parameter, to
// the parameter's target types.
func refsOf(obj map[string]any, d paramDef, base string) []localRef {
	var out []localRef
	for _, v := range values(obj, d) {
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		s, _ := m["reference"].(string)
		if r, ok := splitRef(s, base); ok && (d.targets == nil || contains(d.targets, r.typ)) {
			out = append(out, r)
		}
	}
	return out
}

// allRefs returns every local reference in the resource, for _include=*.
func allRefs(obj map[string]any, base string) []localRef {
	var out []localRef
	walkReferences(obj, func(s string) {
		if r, ok := splitRef(s, base); ok {
			out = append(out, r)
		}
	})
	return out
}

// matchFilter reports whether the resource satisfies one search parameter.
func matchFilter(typ string, obj map[string]any, f filter, base string) bool {
	d, ok := lookupParam(typ, f.name)
	if !ok {
		return false
	}
	vals := values(obj, d)
	if f.modifier == "missing" {
		return (len(vals) == 0) == (f.values[0] == "true")
	}
	switch d.kind {
	case tokenParam:
		hit := false
		for _, q := range f.values {
			if matchToken(vals, q) {
				hit = true
				break
			}
		}
		if f.modifier == "not" {
			return !hit
		}
		return hit
	case referenceParam:
		for _, q := range f.values {
			if matchReference(vals, d, f.modifier, q, base) {
				return true
			}
		}
	case stringParam:
		for _, q := range f.values {
			if matchString(vals, f.modifier, q) {
				return true
			}
		}
	case dateParam:
		for _, q := range f.dates {
			for _, v := range vals {
				if lo, hi, ok := storedRange(v); ok && q.matches(lo, hi) {
					return true
				}
			}
		}
	}
	return false
}

// codings returns the (system, code) pairs a token parameter can match in a
// value: CodeableConcept, Coding, Identifier, code, boolean.
func codings(v any, fn func(system, code string, hasSystem bool) bool) bool {
	switch t := v.(type) {
	case string:
		return fn("", t, false)
	case bool:
		if t {
			return fn("", "true", false)
		}
		return fn("", "false", false)
	case map[string]any:
		if cs, ok := t["coding"].([]any); ok {
			for _, c := range cs {
				if codings(c, fn) {
					return true
				}
			}
			return false
		}
		sys, hasSys := t["system"].(string)
		if code, ok := t["code"].(string); ok {
			return fn(sys, code, hasSys)
		}
		if val, ok := t["value"].(string); ok { // Identifier, ContactPoint
			return fn(sys, val, hasSys)
		}
	}
	return false
}

// matchToken implements [system]|[code], |[code], [system]| and [code].
func matchToken(vals []any, q string) bool {
	sys, code, hasBar := splitToken(q)
	for _, v := range vals {
		if codings(v, func(vs, vc string, vHasSys bool) bool {
			switch {
			case !hasBar:
				return vc == code
			case sys == "":
				return !vHasSys && vc == code
			case code == "":
				return vHasSys && vs == sys
			default:
				return vHasSys && vs == sys && vc == code
			}
		}) {
			return true
		}
	}
	return false
}

// matchReference matches "id", "Type/id" and absolute "<base>/Type/id"; an
// absolute URL to another server matches the stored reference text exactly.
func matchReference(vals []any, d paramDef, typeMod, q, base string) bool {
	want, local := localRef{}, false
	switch {
	case strings.Contains(q, "://"):
		want, local = splitRef(q, base)
	case strings.Contains(q, "/"):
		want, local = splitRef(q, "")
	default:
		want, local = localRef{id: q}, validID(q)
		if typeMod != "" {
			want.typ = typeMod
		} else if len(d.targets) == 1 {
			want.typ = d.targets[0]
		}
	}
	if local && typeMod != "" && want.typ != typeMod {
		return false
	}
	for _, v := range vals {
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		s, _ := m["reference"].(string)
		if s == "" {
			continue
		}
		if !local {
			if s == q {
				return true
			}
			continue
		}
		got, ok := splitRef(s, base)
		if !ok || got.id != want.id {
			continue
		}
		if d.targets != nil && !contains(d.targets, got.typ) {
			continue
		}
		if want.typ == "" || want.typ == got.typ {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var nameParts = []string{"text", "family", "given", "prefix", "suffix", "line", "city", "district", "state", "postalCode", "country"}

// matchString implements the default (case-insensitive starts-with),
// :exact and :contains string searches on strings, HumanName and Address.
func matchString(vals []any, mod, q string) bool {
	lq := strings.ToLower(q)
	test := func(s string) bool {
		switch mod {
		case "exact":
			return s == q
		case "contains":
			return strings.Contains(strings.ToLower(s), lq)
		}
		return strings.HasPrefix(strings.ToLower(s), lq)
	}
	for _, v := range vals {
		switch t := v.(type) {
		case string:
			if test(t) {
				return true
			}
		case map[string]any:
			for _, k := range nameParts {
				for _, s := range collect(t[k], nil, nil) {
					if str, ok := s.(string); ok && test(str) {
						return true
					}
				}
			}
		}
	}
	return false
}

// storedRange is the time range a stored date, dateTime, instant or Period
// covers. An open Period end extends to the far past or future.
func storedRange(v any) (lo, hi time.Time, ok bool) {
	switch t := v.(type) {
	case string:
		return dateRange(t)
	case map[string]any:
		start, _ := t["start"].(string)
		end, _ := t["end"].(string)
		if start == "" && end == "" {
			return lo, hi, false
		}
		lo = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
		hi = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
		if start != "" {
			if lo, _, ok = dateRange(start); !ok {
				return lo, hi, false
			}
		}
		if end != "" {
			if _, hi, ok = dateRange(end); !ok {
				return lo, hi, false
			}
		}
		return lo, hi, true
	}
	return lo, hi, false
}
