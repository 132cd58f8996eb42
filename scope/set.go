package scope

import "strings"

// InvalidScope is a scope of a set that did not parse. It grants nothing.
type InvalidScope struct {
	// Raw is the scope token as written.
	Raw string
	// Err is why it did not parse, as Parse returned it: its text names the
	// rule and quotes the offending part.
	Err error
}

// Set is a parsed space-separated scope string (RFC 6749 §3.3). Order does
// not matter and duplicates are harmless. A Set is immutable once parsed and
// safe for concurrent use.
type Set struct {
	scopes  []Scope
	invalid []InvalidScope
}

// ParseSet parses a scope string. It never fails: scopes that do not parse
// are listed by Invalid and grant nothing; duplicates (by canonical form) are
// kept once. Tokens are separated by the ASCII space alone (RFC 6749 §3.3:
// scope-token *( SP scope-token )); repeated, leading and trailing spaces
// are tolerated, and any other white space (tab, new line, U+00A0, U+2003
// …) stays inside its token, which then does not parse: it never splits
// one token into two scopes.
func ParseSet(s string) Set {
	var set Set
	seen := map[string]bool{}
	for tok := range strings.SplitSeq(s, " ") {
		if tok == "" {
			continue
		}
		sc, err := Parse(tok)
		if err != nil {
			if !seen["\x00"+tok] {
				seen["\x00"+tok] = true
				set.invalid = append(set.invalid, InvalidScope{Raw: tok, Err: err})
			}
			continue
		}
		key := sc.String()
		if seen[key] {
			continue
		}
		seen[key] = true
		set.scopes = append(set.scopes, sc)
	}
	return set
}

// Scopes returns the valid scopes, in order of first appearance.
func (s Set) Scopes() []Scope { return append([]Scope(nil), s.scopes...) }

// Invalid returns the scopes that did not parse.
func (s Set) Invalid() []InvalidScope { return append([]InvalidScope(nil), s.invalid...) }

// Len returns the number of valid scopes.
func (s Set) Len() int { return len(s.scopes) }

func (s Set) ofKind(k Kind) []Scope {
	var out []Scope
	for _, sc := range s.scopes {
		if sc.Kind == k {
			out = append(out, sc)
		}
	}
	return out
}

// Launches returns the launch scopes (launch, launch/patient, ...).
func (s Set) Launches() []Scope { return s.ofKind(KindLaunch) }

// Contains reports whether the set holds the scope written as text; the text
// is compared in canonical form, so "patient/Observation.read" is found in a
// set that holds it, but not in one that holds only "patient/Observation.rs".
// Use a Matcher to ask about permissions.
func (s Set) Contains(text string) bool {
	sc, err := Parse(text)
	if err != nil {
		return false
	}
	key := sc.String()
	for _, have := range s.scopes {
		if have.Kind == sc.Kind && have.String() == key {
			return true
		}
	}
	return false
}

func (s Set) hasName(k Kind, name string) bool {
	for _, sc := range s.scopes {
		if sc.Kind == k && sc.Name == name {
			return true
		}
	}
	return false
}

// OpenID reports whether the set holds "openid".
func (s Set) OpenID() bool { return s.hasName(KindIdentity, "openid") }

// FHIRUser reports whether the set holds "fhirUser" (or its deprecated
// v1 alias "profile").
func (s Set) FHIRUser() bool {
	return s.hasName(KindIdentity, "fhirUser") || s.hasName(KindIdentity, "profile")
}

// OfflineAccess reports whether the set holds "offline_access".
func (s Set) OfflineAccess() bool { return s.hasName(KindRefresh, "offline_access") }

// OnlineAccess reports whether the set holds "online_access".
func (s Set) OnlineAccess() bool { return s.hasName(KindRefresh, "online_access") }

// LaunchContext reports whether the set asks for the launch context name
// ("" for the bare EHR "launch" scope, "patient", "encounter", ...).
func (s Set) LaunchContext(name string) bool {
	for _, sc := range s.scopes {
		if sc.Kind == KindLaunch && sc.LaunchContext == name {
			return true
		}
	}
	return false
}

// String returns the canonical scope string: the valid scopes in canonical
// form, in order of first appearance, separated by single spaces. Invalid
// scopes are left out.
func (s Set) String() string {
	var b strings.Builder
	for i, sc := range s.scopes {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(sc.String())
	}
	return b.String()
}
