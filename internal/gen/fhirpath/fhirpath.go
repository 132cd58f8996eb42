// Package fhirpath holds what the generators share to read FHIR definition
// files: JSON loading, and the splitting of the simple FHIRPath expressions
// that SearchParameter definitions use.
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
