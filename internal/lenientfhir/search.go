package lenientfhir

import (
	"encoding/json"
	"errors"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// search returns the resources of type typ matching the criteria, in id
// order. Parameters are ANDed, comma-separated values ORed. It knows _id,
// patient, subject (with an optional :Patient modifier) and identifier
// (system|value or value); every other parameter is ignored, as lenient
// servers ignore what they do not support.
func (s *Server) search(typ string, crit url.Values) []*Resource {
	var out []*Resource
	for _, r := range s.store {
		if r.ResourceType == typ && matches(r, crit) {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func matches(r *Resource, crit url.Values) bool {
	for key, vals := range crit {
		name, mod, _ := strings.Cut(key, ":")
		var test func(v string) bool
		switch name {
		case "_id":
			test = func(v string) bool { return r.ID == v }
		case "patient", "subject":
			test = func(v string) bool {
				if mod == "Patient" || !strings.Contains(v, "/") {
					v = "Patient/" + v
				}
				want, ok := PatientOf(v)
				if !ok {
					return false
				}
				for _, ref := range []*Reference{r.Subject, r.Patient} {
					if ref == nil {
						continue
					}
					if got, ok := PatientOf(ref.Reference); ok && got == want {
						return true
					}
				}
				return false
			}
		case "identifier":
			test = func(v string) bool {
				sys, val, hasSys := strings.Cut(v, "|")
				if !hasSys {
					sys, val = "", v
				}
				for _, id := range r.Identifier {
					if id.Value == val && (!hasSys || id.System == sys) {
						return true
					}
				}
				return false
			}
		default:
			continue
		}
		for _, v := range vals {
			hit := false
			for alt := range strings.SplitSeq(v, ",") {
				hit = hit || test(alt)
			}
			if !hit {
				return false
			}
		}
	}
	return true
}

// applyOp applies one JSON Patch operation (add, replace or remove) to the
// decoded document.
func applyOp(doc any, o PatchOp) (any, error) {
	if !strings.HasPrefix(o.Path, "/") {
		return nil, errors.New("patch path must start with /")
	}
	toks := strings.Split(o.Path[1:], "/")
	for i, t := range toks {
		toks[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	var value any
	switch o.Op {
	case "add", "replace":
		if len(o.Value) == 0 {
			return nil, errors.New("patch operation without value")
		}
		if err := json.Unmarshal(o.Value, &value); err != nil {
			return nil, err
		}
	case "remove":
	default:
		return nil, errors.New("unsupported patch operation " + strconv.Quote(o.Op))
	}
	return set(doc, toks, o.Op, value)
}

// set performs op at the pointer toks inside v and returns the new v.
func set(v any, toks []string, op string, value any) (any, error) {
	tok, last := toks[0], len(toks) == 1
	switch c := v.(type) {
	case map[string]any:
		child, exists := c[tok]
		if !last {
			if !exists {
				return nil, errors.New("patch path not found: " + tok)
			}
			nv, err := set(child, toks[1:], op, value)
			if err != nil {
				return nil, err
			}
			c[tok] = nv
			return c, nil
		}
		switch {
		case op == "add":
			c[tok] = value
		case !exists:
			return nil, errors.New("patch path not found: " + tok)
		case op == "replace":
			c[tok] = value
		default:
			delete(c, tok)
		}
		return c, nil
	case []any:
		if last && op == "add" && tok == "-" {
			return append(c, value), nil
		}
		i, err := strconv.Atoi(tok)
		if err != nil || i < 0 || i > len(c) || (i == len(c) && !(last && op == "add")) {
			return nil, errors.New("patch index out of range: " + tok)
		}
		if !last {
			nv, err := set(c[i], toks[1:], op, value)
			if err != nil {
				return nil, err
			}
			c[i] = nv
			return c, nil
		}
		switch op {
		case "add":
			c = append(c[:i], append([]any{value}, c[i:]...)...)
		case "replace":
			c[i] = value
		default:
			c = append(c[:i], c[i+1:]...)
		}
		return c, nil
	}
	return nil, errors.New("patch path goes through a primitive")
}
