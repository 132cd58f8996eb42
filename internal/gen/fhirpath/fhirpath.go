// Package fhirpath holds what the generators share to read FHIR definition
// files: JSON loading, the concrete resource types of a release, and the
// splitting of the simple FHIRPath expressions that SearchParameter
// definitions use.
package fhirpath

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"
)

// ReadJSON decodes the JSON file name of fsys into v, ignoring a UTF-8 byte
// order mark.
func ReadJSON(fsys fs.FS, name string, v any) error {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return err
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// split cuts s at sep where it stands outside parentheses and quotes.
func split(s string, sep byte) []string {
	var out []string
	depth, start := 0, 0
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
		case c == sep && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// SplitUnion splits an expression at its top-level | operators, trimming
// each term.
func SplitUnion(expr string) []string {
	terms := split(expr, '|')
	for i, t := range terms {
		terms[i] = strings.TrimSpace(t)
	}
	return terms
}

// SplitDots splits a path at the dots outside parentheses and quotes.
func SplitDots(s string) []string { return split(s, '.') }

// IsIdent reports whether s is a FHIRPath identifier: a letter, then
// letters, digits and underscores.
func IsIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '_'):
		default:
			return false
		}
	}
	return true
}

type concept struct {
	Code     string    `json:"code"`
	Concept  []concept `json:"concept"`
	Property []struct {
		Code         string `json:"code"`
		ValueCode    string `json:"valueCode"`
		ValueBoolean bool   `json:"valueBoolean"`
	} `json:"property"`
}

// ResourceTypes returns the concrete resource types of release dir ("r4"
// or "r5"): R4's resource-types CodeSystem without Resource and
// DomainResource, R5's fhir-types CodeSystem entries of kind resource that
// are not abstract.
func ResourceTypes(fsys fs.FS, dir string) (map[string]bool, error) {
	var cs struct {
		Concept []concept `json:"concept"`
	}
	out := map[string]bool{}
	switch dir {
	case "r4":
		if err := ReadJSON(fsys, "r4/codesystem-resource-types.json", &cs); err != nil {
			return nil, err
		}
		for _, c := range cs.Concept {
			if c.Code != "Resource" && c.Code != "DomainResource" {
				out[c.Code] = true
			}
		}
	case "r5":
		if err := ReadJSON(fsys, "r5/codesystem-fhir-types.json", &cs); err != nil {
			return nil, err
		}
		var walk func(cs []concept, isResource bool)
		walk = func(cs []concept, isResource bool) {
			for _, c := range cs {
				res, abs := isResource || c.Code == "Resource", false
				for _, p := range c.Property {
					if p.Code == "kind" && p.ValueCode == "resource" {
						res = true
					}
					if p.Code == "abstract-type" && p.ValueBoolean {
						abs = true
					}
				}
				if res && !abs && c.Code != "Resource" {
					out[c.Code] = true
				}
				walk(c.Concept, res)
			}
		}
		walk(cs.Concept, false)
	default:
		return nil, fmt.Errorf("unknown release directory %q", dir)
	}
	if len(out) < 140 {
		return nil, fmt.Errorf("%s: implausible resource type count %d", dir, len(out))
	}
	return out, nil
}
