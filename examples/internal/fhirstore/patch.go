package fhirstore

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
)

// patchOp is one RFC 6902 operation.
type patchOp struct {
	op, path, from string
	value          any
	hasValue       bool
}

// maxPatchOps bounds the work one PATCH can ask for.
const maxPatchOps = 1000

// parsePatch parses a JSON Patch document (RFC 6902). A malformed document
// is a 400.
func parsePatch(body []byte) ([]patchOp, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var raw []map[string]any
	if err := dec.Decode(&raw); err != nil {
		return nil, errorf(ErrInvalid, "the JSON Patch must be an array of operations")
	}
	if len(raw) > maxPatchOps {
		return nil, errorf(ErrInvalid, "the JSON Patch has more than %d operations", maxPatchOps)
	}
	ops := make([]patchOp, 0, len(raw))
	for i, m := range raw {
		var o patchOp
		var ok bool
		if o.op, ok = m["op"].(string); !ok {
			return nil, errorf(ErrInvalid, "operation %d has no op", i)
		}
		if o.path, ok = m["path"].(string); !ok {
			return nil, errorf(ErrInvalid, "operation %d has no path", i)
		}
		o.value, o.hasValue = m["value"]
		switch o.op {
		case "add", "replace", "test":
			if !o.hasValue {
				return nil, errorf(ErrInvalid, "operation %d (%s) has no value", i, o.op)
			}
		case "move", "copy":
			if o.from, ok = m["from"].(string); !ok {
				return nil, errorf(ErrInvalid, "operation %d (%s) has no from", i, o.op)
			}
		case "remove":
		default:
			return nil, errorf(ErrInvalid, "operation %d: unknown op %q", i, o.op)
		}
		if _, err := parsePointer(o.path); err != nil {
			return nil, err
		}
		if o.from != "" {
			if _, err := parsePointer(o.from); err != nil {
				return nil, err
			}
		}
		ops = append(ops, o)
	}
	return ops, nil
}

// parsePointer splits a JSON Pointer (RFC 6901) into reference tokens.
func parsePointer(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	if p[0] != '/' {
		return nil, errorf(ErrInvalid, "JSON Pointer %q must start with /", p)
	}
	toks := strings.Split(p[1:], "/")
	for i, t := range toks {
		for j := 0; j < len(t); j++ {
			if t[j] == '~' && (j+1 == len(t) || (t[j+1] != '0' && t[j+1] != '1')) {
				return nil, errorf(ErrInvalid, "JSON Pointer %q has a bad ~ escape", p)
			}
		}
		toks[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return toks, nil
}

// applyPatch applies the operations in order. A path that does not exist
// or a failed test is a conflict (409, RFC 5789 "conflicting state").
func applyPatch(doc any, ops []patchOp) (any, error) {
	var err error
	for i, o := range ops {
		path, _ := parsePointer(o.path)
		switch o.op {
		case "add":
			doc, err = addAt(doc, path, deepCopy(o.value))
		case "remove":
			doc, _, err = removeAt(doc, path)
		case "replace":
			if len(path) == 0 {
				doc = deepCopy(o.value)
				break
			}
			if _, err = getAt(doc, path); err == nil {
				if doc, _, err = removeAt(doc, path); err == nil {
					doc, err = addAt(doc, path, deepCopy(o.value))
				}
			}
		case "move":
			from, _ := parsePointer(o.from)
			if isPrefix(from, path) && len(from) < len(path) {
				err = errorf(ErrConflict, "cannot move a value into itself")
				break
			}
			var v any
			if doc, v, err = removeAt(doc, from); err == nil {
				doc, err = addAt(doc, path, v)
			}
		case "copy":
			from, _ := parsePointer(o.from)
			var v any
			if v, err = getAt(doc, from); err == nil {
				doc, err = addAt(doc, path, deepCopy(v))
			}
		case "test":
			var v any
			if v, err = getAt(doc, path); err == nil && !jsonEqual(v, o.value) {
				err = errorf(ErrConflict, "test failed at %s", o.path)
			}
		}
		if err != nil {
			if e, ok := err.(*Error); ok {
				e.Diagnostics = "operation " + strconv.Itoa(i) + ": " + e.Diagnostics
			}
			return nil, err
		}
	}
	return doc, nil
}

func isPrefix(prefix, path []string) bool {
	if len(prefix) > len(path) {
		return false
	}
	for i := range prefix {
		if prefix[i] != path[i] {
			return false
		}
	}
	return true
}

func arrayIndex(tok string, n int, appendOK bool) (int, bool) {
	if appendOK && tok == "-" {
		return n, true
	}
	if tok == "" || (len(tok) > 1 && tok[0] == '0') {
		return 0, false
	}
	i, err := strconv.Atoi(tok)
	if err != nil || i < 0 || i > n || (!appendOK && i == n) {
		return 0, false
	}
	return i, true
}

func getAt(doc any, path []string) (any, error) {
	cur := doc
	for _, t := range path {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[t]
			if !ok {
				return nil, errorf(ErrConflict, "no member %q", t)
			}
			cur = v
		case []any:
			i, ok := arrayIndex(t, len(c), false)
			if !ok {
				return nil, errorf(ErrConflict, "bad array index %q", t)
			}
			cur = c[i]
		default:
			return nil, errorf(ErrConflict, "cannot descend into a primitive at %q", t)
		}
	}
	return cur, nil
}

// addAt adds v at path and returns the (possibly new) document.
func addAt(doc any, path []string, v any) (any, error) {
	if len(path) == 0 {
		return v, nil
	}
	parent, err := getAt(doc, path[:len(path)-1])
	if err != nil {
		return nil, err
	}
	last := path[len(path)-1]
	switch c := parent.(type) {
	case map[string]any:
		c[last] = v
	case []any:
		i, ok := arrayIndex(last, len(c), true)
		if !ok {
			return nil, errorf(ErrConflict, "bad array index %q", last)
		}
		c = append(c, nil)
		copy(c[i+1:], c[i:])
		c[i] = v
		return setAt(doc, path[:len(path)-1], c)
	default:
		return nil, errorf(ErrConflict, "cannot add below a primitive")
	}
	return doc, nil
}

// removeAt removes the value at path and returns the document and value.
func removeAt(doc any, path []string) (any, any, error) {
	if len(path) == 0 {
		return nil, nil, errorf(ErrConflict, "cannot remove the whole document")
	}
	parent, err := getAt(doc, path[:len(path)-1])
	if err != nil {
		return nil, nil, err
	}
	last := path[len(path)-1]
	switch c := parent.(type) {
	case map[string]any:
		v, ok := c[last]
		if !ok {
			return nil, nil, errorf(ErrConflict, "no member %q", last)
		}
		delete(c, last)
		return doc, v, nil
	case []any:
		i, ok := arrayIndex(last, len(c), false)
		if !ok {
			return nil, nil, errorf(ErrConflict, "bad array index %q", last)
		}
		v := c[i]
		n := append(append([]any(nil), c[:i]...), c[i+1:]...)
		doc, err = setAt(doc, path[:len(path)-1], n)
		return doc, v, err
	}
	return nil, nil, errorf(ErrConflict, "cannot remove below a primitive")
}

// setAt replaces the value at an existing path (used for grown arrays).
func setAt(doc any, path []string, v any) (any, error) {
	if len(path) == 0 {
		return v, nil
	}
	parent, err := getAt(doc, path[:len(path)-1])
	if err != nil {
		return nil, err
	}
	last := path[len(path)-1]
	switch c := parent.(type) {
	case map[string]any:
		c[last] = v
	case []any:
		i, _ := arrayIndex(last, len(c), false)
		c[i] = v
	}
	return doc, nil
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[k] = deepCopy(x)
		}
		return m
	case []any:
		a := make([]any, len(t))
		for i, x := range t {
			a[i] = deepCopy(x)
		}
		return a
	}
	return v
}

// jsonEqual compares JSON values; numbers compare by value.
func jsonEqual(a, b any) bool {
	na, aNum := a.(json.Number)
	nb, bNum := b.(json.Number)
	if aNum && bNum {
		fa, ea := na.Float64()
		fb, eb := nb.Float64()
		if ea == nil && eb == nil {
			return fa == fb
		}
		return na == nb
	}
	switch ta := a.(type) {
	case map[string]any:
		tb, ok := b.(map[string]any)
		if !ok || len(ta) != len(tb) {
			return false
		}
		for k, x := range ta {
			y, ok := tb[k]
			if !ok || !jsonEqual(x, y) {
				return false
			}
		}
		return true
	case []any:
		tb, ok := b.([]any)
		if !ok || len(ta) != len(tb) {
			return false
		}
		for i := range ta {
			if !jsonEqual(ta[i], tb[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}
