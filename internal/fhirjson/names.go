package fhirjson

import (
	"fmt"
	"slices"
	"strings"
)

// baseNames are the member names the guard itself interprets: Bundle and
// its parts, Reference, the top of every resource, JSON Patch and
// Parameters. names_gen.go adds every element name that a FHIR search
// parameter or compartment of R4 or R5 reads.
var baseNames = []string{
	// Resource, DomainResource
	"resourceType", "id", "meta", "implicitRules", "language", "text", "contained",
	"extension", "modifierExtension", "versionId", "lastUpdated", "source", "profile",
	"security", "tag",
	// Bundle and its backbone elements
	"identifier", "type", "timestamp", "total", "link", "entry", "signature", "issues",
	"relation", "url", "fullUrl", "resource", "search", "mode", "score", "request",
	"method", "ifNoneMatch", "ifModifiedSince", "ifMatch", "ifNoneExist", "response",
	"status", "location", "etag", "lastModified", "outcome",
	// Reference, CodeableReference
	"reference", "display", "concept",
	// JSON Patch (RFC 6902) and Parameters
	"op", "path", "from", "value", "parameter", "name", "part",
	// Binary
	"contentType", "data", "securityContext",
}

// canonical maps each known name to itself (for interning) and lower maps
// the lower-case form of each known name to the name.
var canonical, lower = func() (map[string]string, map[string]string) {
	all := slices.Concat(baseNames, generatedNames)
	c := make(map[string]string, len(all))
	l := make(map[string]string, len(all))
	for _, n := range all {
		c[n] = n
		lk := strings.ToLower(n)
		if prev, ok := l[lk]; ok && prev != n {
			// Two names differing only in case: neither can be told from
			// the other's variants, so both are accepted as written.
			l[lk] = ""
			continue
		}
		l[lk] = n
	}
	return c, l
}()

// checkName applies the member-name rules to key (which starts at offset
// at); known says that key is one of the names the package knows.
func (d *decoder) checkName(key string, known bool, at int) error {
	for i := 0; d.nonASCII && i < len(key); i++ { // str saw a byte of 0x80 or above
		if key[i] >= 0x80 {
			e := d.fail(fmt.Sprintf("member name %q is not ASCII", short(key)))
			e.Offset = at
			return e
		}
	}
	if d.opt.Mode != FHIR || known {
		return nil
	}
	if msg := fhirName(key); msg != "" {
		e := d.fail(msg)
		e.Offset = at
		return e
	}
	return nil
}

// fhirName returns why key cannot be a FHIR JSON member name, or "".
func fhirName(key string) string {
	if _, ok := canonical[key]; ok {
		return ""
	}
	n := key
	if len(n) > 1 && n[0] == '_' {
		n = n[1:] // the extensions of a primitive element
	}
	if n == "" || n[0] < 'a' || n[0] > 'z' {
		return fmt.Sprintf("member %q is not a FHIR element name (names start with a lower-case letter; they are case-sensitive)", short(key))
	}
	for i := 1; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return fmt.Sprintf("member %q is not a FHIR element name", short(key))
		}
	}
	if want, ok := lower[strings.ToLower(n)]; ok && want != "" && want != n {
		return fmt.Sprintf("member %q is not a FHIR element name (FHIR names are case-sensitive: %q)", key, want)
	}
	return ""
}

// KnownName reports whether name is one of the element names the package
// knows (those the guard interprets and those FHIR search parameters read).
func KnownName(name string) bool {
	_, ok := canonical[name]
	return ok
}

// Only returns an error naming the first member of obj (found at path) that
// is not in allowed, nor an allowed name with a "_" prefix (the extensions
// of a primitive element). Members are reported in sorted order, so the
// error is stable.
func Only(obj map[string]any, path string, allowed ...string) error {
	var bad []string
	for k := range obj {
		name := strings.TrimPrefix(k, "_")
		if !slices.Contains(allowed, k) && (name == k || !slices.Contains(allowed, name)) {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	slices.Sort(bad)
	return &Error{Path: path, Offset: -1, Msg: fmt.Sprintf("unknown member %q", short(bad[0]))}
}

// short truncates a member name quoted in an error.
func short(name string) string {
	if len(name) > 64 {
		return name[:64] + "…"
	}
	return name
}
