package scopeexplain

import (
	"strings"
	"unicode"

	"github.com/fhirguard/fhirguard/scope"
)

// suggest returns corrected forms of a scope that does not work as written,
// when the fix is obvious: letters out of order (.sr → .rs), upper case
// (Patient/ → patient/, .RS → .rs), a type in the wrong case or plural
// (observation, Observations → Observation), a v1 suffix with constraints
// (.read?x=1 → .rs?x=1), an empty query, scopes glued together by white
// space, quotes, commas or '+'. Every suggestion is a string of valid scopes.
func suggest(tok string) []string {
	out := []string{}
	if pieces, ok := splitGlued(tok); ok {
		return append(out, strings.Join(pieces, " "))
	}
	if fixed, ok := fixOne(tok); ok && fixed != tok {
		out = append(out, fixed)
	}
	return out
}

// splitGlued splits a token that holds several scopes, or one scope with
// stray characters around it, and fixes each piece.
func splitGlued(tok string) ([]string, bool) {
	noQuery := !strings.Contains(tok, "?")
	text := tok
	if noQuery {
		text = strings.ReplaceAll(text, "%20", " ")
	}
	pieces := strings.FieldsFunc(text, func(r rune) bool {
		switch r {
		case '"', '\'', '\u2018', '\u2019', '\u201c', '\u201d', '`', '\\':
			return true
		case ',', '+':
			return noQuery
		}
		return unicode.IsSpace(r) || r == unicode.ReplacementChar || r < 0x20 || r == 0x7f
	})
	if len(pieces) == 0 || len(pieces) == 1 && pieces[0] == tok {
		return nil, false
	}
	var out []string
	for _, p := range pieces {
		fixed, ok := fixOne(p)
		if !ok {
			return nil, false
		}
		sc, _ := scope.Parse(fixed)
		if sc.Kind == scope.KindExtension && !strings.HasPrefix(fixed, "__") && !strings.Contains(fixed, "://") {
			return nil, false // "a,b" is no list of scopes
		}
		out = append(out, fixed)
	}
	return out, true
}

// works reports whether a scope parses and, for a resource scope, names a
// known type.
func works(s string) bool {
	sc, err := scope.Parse(s)
	return err == nil && (sc.Kind != scope.KindResource || sc.KnownType)
}

// fixOne returns tok when it works, else its obvious correction. An
// extension scope without an obvious correction is returned as it is.
func fixOne(tok string) (string, bool) {
	if len(tok) > 1024 {
		return "", false
	}
	fixed, ok := fixScope(tok)
	if !ok {
		if sc, err := scope.Parse(tok); err == nil && sc.Kind == scope.KindExtension {
			return tok, true
		}
	}
	return fixed, ok
}

func fixScope(tok string) (string, bool) {
	if sc, err := scope.Parse(tok); err == nil {
		switch sc.Kind {
		case scope.KindResource:
			if sc.KnownType {
				return tok, true
			}
		case scope.KindExtension:
			// A known name in the wrong case or spelling, else as written.
			norm := strings.ReplaceAll(strings.ToLower(tok), "-", "_")
			for _, n := range knownNames {
				if norm == strings.ToLower(n) {
					return n, true
				}
			}
		default:
			return tok, true
		}
	}
	prefix, rest, ok := strings.Cut(tok, "/")
	if !ok {
		return "", false
	}
	lp := strings.ToLower(prefix)
	switch lp {
	case "patients", "users", "systems":
		lp = strings.TrimSuffix(lp, "s")
	case "launch":
		name, role, hasRole := strings.Cut(rest, "?")
		s := "launch/" + strings.ToLower(name)
		if hasRole {
			s += "?" + role
		}
		if sc, err := scope.Parse(s); err == nil && sc.Kind == scope.KindLaunch {
			return s, true
		}
		return "", false
	}
	if lp != "patient" && lp != "user" && lp != "system" {
		return "", false
	}
	head, query, hasQuery := strings.Cut(rest, "?")
	typ, perms, ok := strings.Cut(head, ".")
	if !ok {
		return "", false
	}
	if typ != "*" {
		if _, known := scope.LookupType(typ); !known {
			if typ, ok = typeFix(typ); !ok {
				return "", false
			}
		}
	}
	var items []string
	if hasQuery {
		for item := range strings.SplitSeq(query, "&") {
			if item != "" {
				items = append(items, item)
			}
		}
	}
	if perms, ok = permsFix(perms, len(items) > 0); !ok {
		return "", false
	}
	s := lp + "/" + typ + "." + perms
	if len(items) > 0 {
		s += "?" + strings.Join(items, "&")
	}
	if !works(s) {
		return "", false
	}
	return s, true
}

// permsFix corrects permission letters: v1 words in any case, plural v1
// words, v2 letters in any case, order or repetition. With constraints a v1
// suffix becomes its v2 letters (v1 takes no constraints).
func permsFix(p string, constrained bool) (string, bool) {
	lp := strings.ToLower(p)
	switch lp {
	case "reads":
		lp = "read"
	case "writes":
		lp = "write"
	}
	switch lp {
	case "read", "write", "*":
		if !constrained {
			return lp, true
		}
		return map[string]string{"read": "rs", "write": "cud", "*": "cruds"}[lp], true
	case "":
		return "", false
	}
	var perm scope.Permission
	for i := 0; i < len(lp); i++ {
		j := strings.IndexByte("cruds", lp[i])
		if j < 0 {
			return "", false
		}
		perm |= 1 << j
	}
	return perm.String(), true
}

// typeFix returns the resource type a misspelt name most likely means: the
// same name in another case, the singular of a plural, or the one type
// within two edits.
func typeFix(name string) (string, bool) {
	if name == "" || len(name) > 64 {
		return "", false
	}
	for _, t := range allTypes {
		if strings.EqualFold(t, name) {
			return t, true
		}
	}
	low := strings.ToLower(name)
	var singulars []string
	if s, ok := strings.CutSuffix(low, "ies"); ok {
		singulars = append(singulars, s+"y")
	}
	if s, ok := strings.CutSuffix(low, "es"); ok {
		singulars = append(singulars, s)
	}
	if s, ok := strings.CutSuffix(low, "s"); ok {
		singulars = append(singulars, s)
	}
	for _, s := range singulars {
		for _, t := range allTypes {
			if strings.EqualFold(t, s) {
				return t, true
			}
		}
	}
	if len(low) < 5 {
		return "", false
	}
	best, bestD, ties := "", 3, 0
	for _, t := range allTypes {
		d := distance(low, strings.ToLower(t), 2)
		switch {
		case d < bestD:
			best, bestD, ties = t, d, 1
		case d == bestD:
			ties++
		}
	}
	if bestD <= 2 && ties == 1 {
		return best, true
	}
	return "", false
}

// distance is the Levenshtein distance of a and b, or max+1 when it is
// larger than max.
func distance(a, b string, max int) int {
	if d := len(a) - len(b); d > max || -d > max {
		return max + 1
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin > max {
			return max + 1
		}
		prev, cur = cur, prev
	}
	if prev[len(b)] > max {
		return max + 1
	}
	return prev[len(b)]
}
