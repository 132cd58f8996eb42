package fhirstore

import (
	"bytes"
	"encoding/json"
	"io"
	"regexp"
	"sort"

	"github.com/fhirguard/fhirguard/fhir"
)

// decodeObject parses a JSON object, keeping numbers as json.Number so that
// decimals such as 7.10 are returned exactly as they were stored.
func decodeObject(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errorf(ErrInvalid, "trailing data after the JSON value")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errorf(ErrInvalid, "the body is not a JSON object")
	}
	return m, nil
}

// mustEncode encodes v without HTML escaping. It only panics on values that
// cannot be JSON, which the package never builds.
func mustEncode(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("fhirstore: encode: " + err.Error())
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// encodeResource encodes a resource with "resourceType" first and the other
// members sorted by name (encoding/json sorts map keys), so output is
// deterministic.
func encodeResource(m map[string]any) []byte {
	rt, _ := m["resourceType"].(string)
	rest := make(map[string]any, len(m))
	for k, v := range m {
		if k != "resourceType" {
			rest[k] = v
		}
	}
	body := mustEncode(rest)
	out := make([]byte, 0, len(body)+len(rt)+20)
	out = append(out, `{"resourceType":`...)
	out = append(out, mustEncode(rt)...)
	if len(body) > 2 {
		out = append(out, ',')
		out = append(out, body[1:]...)
	} else {
		out = append(out, '}')
	}
	return out
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// validID reports whether s is a FHIR id.
func validID(s string) bool { return idPattern.MatchString(s) }

// isR4Type reports whether name is a FHIR R4 resource type.
func isR4Type(name string) bool { return fhir.IsResourceType(name, fhir.R4) }

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// walkReferences calls fn for every "reference" string inside v.
func walkReferences(v any, fn func(ref string)) {
	switch t := v.(type) {
	case map[string]any:
		for k, c := range t {
			if k == "reference" {
				if s, ok := c.(string); ok {
					fn(s)
					continue
				}
			}
			walkReferences(c, fn)
		}
	case []any:
		for _, c := range t {
			walkReferences(c, fn)
		}
	}
}

// rewriteReferences replaces "reference" strings found in repl.
func rewriteReferences(v any, repl map[string]string) {
	switch t := v.(type) {
	case map[string]any:
		for k, c := range t {
			if k == "reference" {
				if s, ok := c.(string); ok {
					if r, ok := repl[s]; ok {
						t[k] = r
					}
					continue
				}
			}
			rewriteReferences(c, repl)
		}
	case []any:
		for _, c := range t {
			rewriteReferences(c, repl)
		}
	}
}
