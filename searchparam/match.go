package searchparam

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/fhirguard/fhirguard/fhir"
)

// Match evaluates a plain search value of parameter p against resource, a
// resource decoded by encoding/json into map[string]any, by FHIR search
// rules for the parameter's type, on every element on p's paths:
//
// A token value is one of
//
//	system|code   a code in exactly that system
//	|code         a code with no system
//	code          a code in any system, or none
//	system|       any code in that system
//
// and the elements may be CodeableConcept (any of its codings), Coding,
// CodeableReference (its concept), Identifier (system and value),
// ContactPoint (its value, by the code form only), or a code, string, id,
// uri or boolean primitive (which has no system: a value naming a system
// does not match it). Codes and systems compare exactly.
//
// A reference value is an id ("123": a relative reference to any type with
// that id), a relative reference ("Patient/123") or an absolute URL, which
// matches only the same absolute reference: the base URL of the server is
// not known here, so an absolute reference in the resource matches only an
// absolute value and never an id or relative value. A version
// ("/_history/2") on either side is ignored. The reference type must also
// be the path's Target when it has one. Canonical and uri elements match
// the value exactly, or their url part before "|version".
//
// A string value matches an element that starts with it, ignoring case and
// the accents of Latin letters. A HumanName matches on its text, family,
// given, prefix and suffix; an Address on its text, line, city, district,
// state, postalCode and country.
//
// In every type a comma separates alternatives (any may match), and "\,"
// "\|" "\$" and "\\" stand for the character itself. ok is false for the
// other parameter types, for an Unresolved parameter and for a malformed
// value (empty, an empty alternative, a token that is a bare "|" or holds a
// second unescaped "|", a backslash before any other character, a reference
// that is neither an id, a Type/id nor an absolute URL): such a constraint
// cannot be evaluated and grants nothing. Modifiers (:not, :text, :in, …)
// are not handled here: pass only the values of unmodified parameters.
// Match does not check resource's resourceType, and does not allocate.
func Match(resource map[string]any, p Param, value string) (matched, ok bool) {
	switch p.Type {
	case Token:
		return matchToken(resource, p, value)
	case Reference:
		return matchReference(resource, p, value)
	case String:
		return matchString(resource, p, value)
	}
	return false, false
}

// MatchParam evaluates the plain value of search parameter name against a
// resource: it looks the parameter up for the resource's own resourceType
// in release r and calls [Match]. ok is false when the resource has no
// known resourceType, the parameter is unknown, carries a modifier
// ("code:in") or a chain ("patient.name"), or cannot be evaluated. The
// value is percent-decoded with the FHIR escapes kept, as in
// scope.Constraint.Value. MatchParam does not allocate.
func MatchParam(r fhir.Release, resource map[string]any, name, value string) (matched, ok bool) {
	rt, _ := resource["resourceType"].(string)
	if rt == "" || strings.ContainsAny(name, ":.") {
		return false, false
	}
	p, found := Lookup(r, rt, name)
	if !found {
		return false, false
	}
	return Match(resource, p, value)
}

// matchToken is Match for a token parameter.
func matchToken(resource map[string]any, p Param, value string) (matched, ok bool) {
	if p.Type != Token || p.Unresolved {
		return false, false
	}
	var q query
	q.kind = leafToken
	rest, valid := q.token.parse(value)
	if !valid {
		return false, false
	}
	for {
		for _, path := range p.Paths {
			if walk(resource, path.Elements, &q) {
				return true, true
			}
		}
		if rest == "" {
			return false, true
		}
		rest, _ = q.token.parse(rest)
	}
}

// matchReference is Match for a reference parameter.
func matchReference(resource map[string]any, p Param, value string) (matched, ok bool) {
	if p.Type != Reference || p.Unresolved || !validReference(value) {
		return false, false
	}
	for _, path := range p.Paths {
		q := query{kind: leafReference, value: value, target: path.Target}
		if walk(resource, path.Elements, &q) {
			return true, true
		}
	}
	return false, true
}

// matchString is Match for a string parameter.
func matchString(resource map[string]any, p Param, value string) (matched, ok bool) {
	if p.Type != String || p.Unresolved || !validString(value) {
		return false, false
	}
	q := query{kind: leafString, value: value}
	for _, path := range p.Paths {
		if walk(resource, path.Elements, &q) {
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

// query is what walk looks for at the end of a path.
type query struct {
	kind   leafKind
	value  string    // reference and string: the escaped value
	target string    // reference: the path's Target
	token  tokenAlts // token: the parsed alternatives
}

// maxAlts is how many token alternatives are parsed at once; a value with
// more is evaluated in rounds.
const maxAlts = 8

// tokenAlt is one alternative of a token value, still escaped.
type tokenAlt struct {
	system, code string
	hasBar       bool // system|code, |code or system|
	escaped      bool // contains a backslash
}

type tokenAlts struct {
	n int
	a [maxAlts]tokenAlt
}

// parse checks a token value and fills s with its first maxAlts
// alternatives. rest holds the alternatives after those, "" when none; ok
// is false when the value is malformed.
func (s *tokenAlts) parse(value string) (rest string, ok bool) {
	if value == "" {
		return "", false
	}
	escaped := strings.IndexByte(value, '\\') >= 0
	if escaped && !validEscapes(value) {
		return "", false
	}
	s.n = 0
	for {
		start, alt := value, value
		i := indexUnescaped(value, ',', escaped)
		if i >= 0 {
			alt, value = value[:i], value[i+1:]
		}
		if alt == "" || alt == "|" {
			return "", false
		}
		t := tokenAlt{code: alt, escaped: escaped && strings.IndexByte(alt, '\\') >= 0}
		if bar := indexUnescaped(alt, '|', t.escaped); bar >= 0 {
			if indexUnescaped(alt[bar+1:], '|', t.escaped) >= 0 {
				return "", false
			}
			t.system, t.code, t.hasBar = alt[:bar], alt[bar+1:], true
		}
		switch {
		case s.n < maxAlts:
			s.a[s.n] = t
			s.n++
		case rest == "":
			rest = start
		}
		if i < 0 {
			return rest, true
		}
	}
}

// indexUnescaped returns the index of the first c in s not escaped by a
// backslash, or -1; escaped says whether s may contain backslashes.
func indexUnescaped(s string, c byte, escaped bool) int {
	if !escaped {
		return strings.IndexByte(s, c)
	}
	return unescapedIndex(s, c)
}

// walk follows the dotted path below node, through arrays at any step, and
// reports whether some element at its end matches value. Property names
// match exactly: a choice element is found only under the typed name the
// path gives (valueCodeableConcept).
func walk(node any, path string, q *query) bool {
	switch n := node.(type) {
	case []any:
		for _, it := range n {
			if walk(it, path, q) {
				return true
			}
		}
		return false
	case map[string]any:
		if path == "" {
			return leaf(n, q)
		}
		step, rest := path, ""
		if i := strings.IndexByte(path, '.'); i >= 0 {
			step, rest = path[:i], path[i+1:]
		}
		child, ok := n[step]
		return ok && walk(child, rest, q)
	}
	if path == "" {
		return leaf(node, q)
	}
	return false
}

func leaf(node any, q *query) bool {
	value, target := q.value, q.target
	switch q.kind {
	case leafToken:
		return tokenLeaf(node, &q.token)
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

// eqTok reports whether a part of an alternative equals raw.
func eqTok(part string, escaped bool, raw string) bool {
	if !escaped {
		return part == raw
	}
	return eqEsc(part, raw)
}

// tokenLeaf matches the alternatives against one element.
func tokenLeaf(node any, alts *tokenAlts) bool {
	switch n := node.(type) {
	case string:
		return primitiveMatch(alts, n)
	case bool:
		if n {
			return primitiveMatch(alts, "true")
		}
		return primitiveMatch(alts, "false")
	case map[string]any:
		if cs, ok := n["coding"]; ok {
			list, ok := cs.([]any)
			if !ok {
				return false
			}
			for _, c := range list {
				if m, ok := c.(map[string]any); ok && codeMatch(m, "code", alts) {
					return true
				}
			}
			return false
		}
		if c, ok := n["concept"]; ok {
			return tokenLeaf(c, alts)
		}
		if _, ok := n["code"]; !ok {
			if v, ok := n["value"]; ok {
				if sys, _ := n["system"].(string); isContactSystem(sys) {
					// ContactPoint: its system is a kind (phone, email),
					// not a token system; only the value is searched.
					s, isStr := v.(string)
					return isStr && plainMatch(alts, s)
				}
				return codeMatch(n, "value", alts) // Identifier
			}
		}
		return codeMatch(n, "code", alts)
	}
	return false
}

// primitiveMatch matches a code, string or boolean element, which has no
// system.
func primitiveMatch(alts *tokenAlts, s string) bool {
	for i := range alts.n {
		t := &alts.a[i]
		if (!t.hasBar || t.system == "") && eqTok(t.code, t.escaped, s) {
			return true
		}
	}
	return false
}

// plainMatch matches the alternatives of the code form (no "|") against s.
func plainMatch(alts *tokenAlts, s string) bool {
	for i := range alts.n {
		t := &alts.a[i]
		if !t.hasBar && eqTok(t.code, t.escaped, s) {
			return true
		}
	}
	return false
}

// isContactSystem reports whether s is a ContactPoint.system code. An
// Identifier's system is an absolute URI, never one of these.
func isContactSystem(s string) bool {
	switch s {
	case "phone", "fax", "email", "pager", "url", "sms", "other":
		return true
	}
	return false
}

// codeMatch matches the alternatives against an object's "system" and
// codeKey members.
func codeMatch(m map[string]any, codeKey string, alts *tokenAlts) bool {
	sys, hasSys := "", false
	if v, ok := m["system"]; ok {
		s, isStr := v.(string)
		if !isStr {
			return false
		}
		sys, hasSys = s, s != ""
	}
	c, hasCode := m[codeKey].(string)
	for i := range alts.n {
		t := &alts.a[i]
		var ok bool
		switch {
		case !t.hasBar: // code
			ok = hasCode && eqTok(t.code, t.escaped, c)
		case t.system == "": // |code
			ok = !hasSys && hasCode && eqTok(t.code, t.escaped, c)
		case t.code == "": // system|
			ok = hasSys && eqTok(t.system, t.escaped, sys)
		default: // system|code
			ok = hasSys && hasCode && eqTok(t.system, t.escaped, sys) && eqTok(t.code, t.escaped, c)
		}
		if ok {
			return true
		}
	}
	return false
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
			return !fhir.ValidID(alt)
		}
		return !isTypeName(typ) || !fhir.ValidID(id)
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
