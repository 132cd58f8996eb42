package searchparam

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Match evaluates a plain search value of parameter p against resource, by
// the parameter's type: [MatchToken], [MatchReference] or [MatchString]. ok
// is false for the other types, for an Unresolved parameter and for a
// malformed value: such a constraint cannot be evaluated and grants nothing.
func Match(resource map[string]any, p Param, value string) (matched, ok bool) {
	switch p.Type {
	case Token:
		return MatchToken(resource, p, value)
	case Reference:
		return MatchReference(resource, p, value)
	case String:
		return MatchString(resource, p, value)
	}
	return false, false
}

// MatchToken reports whether resource matches the plain token search value
// of parameter p, by FHIR token search rules on every element on p's paths:
//
//	system|code   a code in exactly that system
//	|code         a code with no system
//	code          a code in any system, or none
//	system|       any code in that system
//
// The elements may be CodeableConcept (any of its codings), Coding,
// CodeableReference (its concept), Identifier (system and value),
// ContactPoint (system and value), or a code, string, id, uri or boolean
// primitive (which has no system: a value naming a system does not match
// it). Codes and systems compare exactly. A comma separates alternatives
// (any may match); "\," "\|" "\$" and "\\" stand for the character itself.
//
// ok is false when p is not a token parameter, is Unresolved, or the value
// is malformed (empty, an empty alternative, a bare "|", a second unescaped
// "|", or a backslash before any other character). Modifiers (:not, :text,
// :in, …) are not handled here: pass only the values of unmodified
// parameters. MatchToken does not check resource's resourceType, and does
// not allocate.
func MatchToken(resource map[string]any, p Param, value string) (matched, ok bool) {
	if p.Type != Token || p.Unresolved || !validToken(value) {
		return false, false
	}
	for _, path := range p.Paths {
		if walk(resource, path.Elements, leafToken, value, "") {
			return true, true
		}
	}
	return false, true
}

// MatchReference reports whether resource matches the plain reference
// search value of parameter p. A value is an id ("123": a relative reference
// to any type with that id), a relative reference ("Patient/123") or an
// absolute URL, which matches only the same absolute reference: the base URL
// of the server is not known here, so an absolute reference in the resource
// matches only an absolute value and never an id or relative value. A
// version ("/_history/2") on either side is ignored. The reference type
// must also be the path's Target when it has one. Canonical and uri
// elements match the value exactly, or their url part before "|version".
// Commas separate alternatives. ok is false when p is not a reference
// parameter, is Unresolved, or the value is malformed. MatchReference does
// not allocate.
func MatchReference(resource map[string]any, p Param, value string) (matched, ok bool) {
	if p.Type != Reference || p.Unresolved || !validReference(value) {
		return false, false
	}
	for _, path := range p.Paths {
		if walk(resource, path.Elements, leafReference, value, path.Target) {
			return true, true
		}
	}
	return false, true
}

// MatchString reports whether resource matches the plain string search
// value of parameter p: some element starts with the value, ignoring case
// and the accents of Latin letters. A HumanName matches on its text,
// family, given, prefix and suffix; an Address on its text, line, city,
// district, state, postalCode and country. Commas separate alternatives.
// ok is false when p is not a string parameter, is Unresolved, or the value
// is malformed. MatchString does not allocate.
func MatchString(resource map[string]any, p Param, value string) (matched, ok bool) {
	if p.Type != String || p.Unresolved || !validString(value) {
		return false, false
	}
	for _, path := range p.Paths {
		if walk(resource, path.Elements, leafString, value, "") {
			return true, true
		}
	}
	return false, true
}

type leafKind uint8

const (
	leafToken leafKind = iota
	leafReference
	leafString
)

// walk follows the dotted path below node, through arrays at any step, and
// reports whether some element at its end matches value. When a step is
// absent it tries the typed names of a choice element (effective →
// effectiveDateTime, effectivePeriod, …).
func walk(node any, path string, k leafKind, value, target string) bool {
	switch n := node.(type) {
	case []any:
		for _, it := range n {
			if walk(it, path, k, value, target) {
				return true
			}
		}
		return false
	case map[string]any:
		if path == "" {
			return leaf(n, k, value, target)
		}
		step, rest := path, ""
		if i := strings.IndexByte(path, '.'); i >= 0 {
			step, rest = path[:i], path[i+1:]
		}
		if child, ok := n[step]; ok {
			return walk(child, rest, k, value, target)
		}
		for key, child := range n {
			if len(key) > len(step) && key[:len(step)] == step && isChoiceType(key[len(step):]) {
				if walk(child, rest, k, value, target) {
					return true
				}
			}
		}
		return false
	}
	if path == "" {
		return leaf(node, k, value, target)
	}
	return false
}

func leaf(node any, k leafKind, value, target string) bool {
	switch k {
	case leafToken:
		return anyAlt(value, func(alt string) bool { return tokenLeaf(node, alt) })
	case leafReference:
		return anyAlt(value, func(alt string) bool { return referenceLeaf(node, alt, target) })
	default:
		return anyAlt(value, func(alt string) bool { return stringLeaf(node, alt) })
	}
}

// anyAlt calls f with each comma-separated alternative of value (still
// escaped) until one returns true. f must not retain its argument.
func anyAlt(value string, f func(alt string) bool) bool {
	for {
		i := unescapedIndex(value, ',')
		if i < 0 {
			return f(value)
		}
		if f(value[:i]) {
			return true
		}
		value = value[i+1:]
	}
}

// unescapedIndex returns the index of the first c in s not escaped by a
// backslash, or -1.
func unescapedIndex(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case c:
			return i
		}
	}
	return -1
}

// validEscapes reports whether every backslash in s escapes , | $ or \.
func validEscapes(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			if i+1 >= len(s) {
				return false
			}
			switch s[i+1] {
			case ',', '|', '$', '\\':
				i++
			default:
				return false
			}
		}
	}
	return true
}

func validToken(value string) bool {
	if value == "" || !validEscapes(value) {
		return false
	}
	return !anyAlt(value, func(alt string) bool {
		if alt == "" || alt == "|" {
			return true
		}
		bar := unescapedIndex(alt, '|')
		return bar >= 0 && unescapedIndex(alt[bar+1:], '|') >= 0
	})
}

// eqEsc reports whether escaped string esc, unescaped, equals raw.
func eqEsc(esc, raw string) bool {
	j := 0
	for i := 0; i < len(esc); i++ {
		c := esc[i]
		if c == '\\' && i+1 < len(esc) {
			i++
			c = esc[i]
		}
		if j >= len(raw) || raw[j] != c {
			return false
		}
		j++
	}
	return j == len(raw)
}

// tokenLeaf matches one token alternative against one element.
func tokenLeaf(node any, alt string) bool {
	system, code, hasBar := alt, alt, false
	if bar := unescapedIndex(alt, '|'); bar >= 0 {
		system, code, hasBar = alt[:bar], alt[bar+1:], true
	} else {
		system = ""
	}
	switch n := node.(type) {
	case string:
		return (!hasBar || system == "") && eqEsc(code, n)
	case bool:
		s := "false"
		if n {
			s = "true"
		}
		return (!hasBar || system == "") && eqEsc(code, s)
	case map[string]any:
		if cs, ok := n["coding"]; ok {
			list, ok := cs.([]any)
			if !ok {
				return false
			}
			for _, c := range list {
				if m, ok := c.(map[string]any); ok && codeMatch(m, "code", system, code, hasBar) {
					return true
				}
			}
			return false
		}
		if c, ok := n["concept"]; ok {
			return tokenLeaf(c, alt)
		}
		if _, ok := n["code"]; !ok {
			if _, ok := n["value"]; ok {
				return codeMatch(n, "value", system, code, hasBar)
			}
		}
		return codeMatch(n, "code", system, code, hasBar)
	}
	return false
}

// codeMatch matches system|code against an object's "system" and codeKey
// members.
func codeMatch(m map[string]any, codeKey, system, code string, hasBar bool) bool {
	sys, hasSys := "", false
	if v, ok := m["system"]; ok {
		s, isStr := v.(string)
		if !isStr {
			return false
		}
		sys, hasSys = s, s != ""
	}
	c, hasCode := m[codeKey].(string)
	switch {
	case !hasBar: // code
		return hasCode && eqEsc(code, c)
	case system == "": // |code
		return !hasSys && hasCode && eqEsc(code, c)
	case code == "": // system|
		return hasSys && eqEsc(system, sys)
	default: // system|code
		return hasSys && hasCode && eqEsc(system, sys) && eqEsc(code, c)
	}
}

func validReference(value string) bool {
	if value == "" || strings.IndexByte(value, '\\') >= 0 {
		return false
	}
	return !anyAlt(value, func(alt string) bool {
		alt = stripHistory(alt)
		if isAbsolute(alt) {
			return false
		}
		typ, id, hasSlash := strings.Cut(alt, "/")
		if !hasSlash {
			return !isID(alt)
		}
		return !isTypeName(typ) || !isID(id)
	})
}

func isAbsolute(ref string) bool {
	return strings.Contains(ref, "://") || strings.HasPrefix(ref, "urn:")
}

func stripHistory(ref string) string {
	if i := strings.Index(ref, "/_history/"); i >= 0 {
		return ref[:i]
	}
	return ref
}

// isID reports whether s is a FHIR id: 1 to 64 of A-Z a-z 0-9 - and '.'.
func isID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func isTypeName(s string) bool {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// referenceLeaf matches one reference alternative against one element.
func referenceLeaf(node any, alt, target string) bool {
	switch n := node.(type) {
	case string: // canonical or uri
		if target != "" {
			return false
		}
		if n == alt {
			return true
		}
		url, _, hasVersion := strings.Cut(n, "|")
		return hasVersion && url == alt
	case map[string]any:
		ref, ok := n["reference"]
		if !ok {
			return false
		}
		switch r := ref.(type) {
		case string:
			return refMatch(r, alt, target)
		case map[string]any: // CodeableReference
			return referenceLeaf(r, alt, target)
		}
	}
	return false
}

func refMatch(ref, alt, target string) bool {
	ref = stripHistory(ref)
	alt = stripHistory(alt)
	if isAbsolute(ref) {
		if !isAbsolute(alt) || ref != alt {
			return false
		}
		if target == "" {
			return true
		}
		rest := ref[:strings.LastIndexByte(ref, '/')+1]
		rest = strings.TrimSuffix(rest, "/")
		return rest[strings.LastIndexByte(rest, '/')+1:] == target
	}
	typ, id, ok := strings.Cut(ref, "/")
	if !ok || strings.IndexByte(id, '/') >= 0 || (target != "" && typ != target) {
		return false
	}
	if isAbsolute(alt) {
		return false
	}
	if at, aid, ok := strings.Cut(alt, "/"); ok {
		return at == typ && aid == id
	}
	return alt == id
}

func validString(value string) bool {
	if value == "" || !validEscapes(value) {
		return false
	}
	return !anyAlt(value, func(alt string) bool { return alt == "" })
}

// nameParts lists the members of HumanName and Address that string search
// reads.
var nameParts = [...]string{"text", "family", "given", "prefix", "suffix",
	"line", "city", "district", "state", "postalCode", "country"}

func stringLeaf(node any, alt string) bool {
	switch n := node.(type) {
	case string:
		return prefixFold(n, alt)
	case map[string]any:
		for _, k := range nameParts {
			switch v := n[k].(type) {
			case string:
				if prefixFold(v, alt) {
					return true
				}
			case []any:
				for _, it := range v {
					if s, ok := it.(string); ok && prefixFold(s, alt) {
						return true
					}
				}
			}
		}
	}
	return false
}

// prefixFold reports whether s starts with escaped string esc, ignoring case,
// the accents of Latin letters and combining marks.
func prefixFold(s, esc string) bool {
	i, j := 0, 0
	for {
		var want rune
		for {
			if j >= len(esc) {
				return true
			}
			c := esc[j]
			if c == '\\' && j+1 < len(esc) {
				j++
			}
			r, n := utf8.DecodeRuneInString(esc[j:])
			j += n
			if !isMark(r) {
				want = fold(r)
				break
			}
		}
		var got rune
		for {
			if i >= len(s) {
				return false
			}
			r, n := utf8.DecodeRuneInString(s[i:])
			i += n
			if !isMark(r) {
				got = fold(r)
				break
			}
		}
		if got != want {
			return false
		}
	}
}

func isMark(r rune) bool { return r >= 0x300 && r <= 0x36f }

// latin1 and latinExtA give the base letter of U+00C0–U+00FF and
// U+0100–U+017F; '.' keeps the letter.
const (
	latin1    = "AAAAAA.CEEEEIIIIDNOOOOO.OUUUUY..aaaaaa.ceeeeiiiidnooooo.ouuuuy.y"
	latinExtA = "AaAaAaCcCcCcCcDdDdEeEeEeEeEeGgGgGgGgHhHhIiIiIiIiIi..JjKk.LlLlLlLlLlNnNnNn...OoOoOo..RrRrRrSsSsSsSsTtTtTtUuUuUuUuUuUuWwYyYZzZzZzs"
)

func fold(r rune) rune {
	switch {
	case r < 0x80:
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	case r >= 0xc0 && r <= 0xff:
		if b := latin1[r-0xc0]; b != '.' {
			r = rune(b)
		}
	case r >= 0x100 && r <= 0x17f:
		if b := latinExtA[r-0x100]; b != '.' {
			r = rune(b)
		}
	}
	return unicode.ToLower(r)
}

// choiceTypes lists the FHIR data types a choice element can take, by the
// suffix they give its JSON name.
var choiceTypes = [...]string{
	"Address", "Age", "Annotation", "Attachment", "Availability", "Base64Binary",
	"Boolean", "Canonical", "Code", "CodeableConcept", "CodeableReference",
	"Coding", "ContactDetail", "ContactPoint", "Contributor", "Count",
	"DataRequirement", "Date", "DateTime", "Decimal", "Distance", "Dosage",
	"Duration", "Expression", "ExtendedContactDetail", "HumanName", "Id",
	"Identifier", "Instant", "Integer", "Integer64", "Markdown", "Meta",
	"Money", "Oid", "ParameterDefinition", "Period", "PositiveInt", "Quantity",
	"Range", "Ratio", "RatioRange", "Reference", "RelatedArtifact",
	"SampledData", "Signature", "String", "Time", "Timing", "TriggerDefinition",
	"UnsignedInt", "Uri", "Url", "UsageContext", "Uuid",
}

func isChoiceType(suffix string) bool {
	if suffix == "" || suffix[0] < 'A' || suffix[0] > 'Z' {
		return false
	}
	for _, t := range choiceTypes {
		if t == suffix {
			return true
		}
	}
	return false
}
