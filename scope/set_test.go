package scope

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseSetP35(t *testing.T) {
	set := ParseSet("launch/patient patient/Observation.rs patient/Patient.rs offline_access")
	if set.Len() != 4 || len(set.Invalid()) != 0 {
		t.Fatalf("Len = %d, invalid = %v", set.Len(), set.Invalid())
	}
	if n := len(set.resources()); n != 2 {
		t.Errorf("Resources = %d, want 2", n)
	}
	if n := len(set.Launches()); n != 1 || !set.LaunchContext("patient") || set.LaunchContext("") {
		t.Errorf("launch accessors wrong: %v", set.Launches())
	}
	if !set.OfflineAccess() || set.OnlineAccess() || set.OpenID() || set.FHIRUser() {
		t.Error("refresh/identity accessors wrong")
	}
}

func TestParseSetInvalidAndDuplicates(t *testing.T) {
	set := ParseSet("  patient/Observation.rs patient/Observation.dus openid  fhirUser patient/Observation.rs " +
		"patient/Observation.read?x=1 launch __ext patient/Observation.dus online_access ")
	got := []string{}
	for _, sc := range set.Scopes() {
		got = append(got, sc.String())
	}
	want := []string{"patient/Observation.rs", "openid", "fhirUser", "launch", "__ext", "online_access"}
	if !slices.Equal(got, want) {
		t.Fatalf("Scopes = %v, want %v", got, want)
	}
	inv := set.Invalid()
	if len(inv) != 2 || inv[0].Raw != "patient/Observation.dus" || !errors.Is(inv[0].Err, errPermissionOrder) ||
		inv[1].Raw != "patient/Observation.read?x=1" || !errors.Is(inv[1].Err, errV1Constraint) {
		t.Fatalf("Invalid = %v", inv)
	}
	if !set.OpenID() || !set.FHIRUser() || !set.OnlineAccess() || !set.LaunchContext("") {
		t.Error("accessors")
	}
	if len(set.extensions()) != 1 {
		t.Error("Extensions")
	}
	if got := set.String(); got != strings.Join(want, " ") {
		t.Errorf("String = %q", got)
	}
	// The accessors return copies: changing them changes nothing.
	s := set.Scopes()
	s[0].Permissions = All
	if set.Scopes()[0].Permissions != Read|Search {
		t.Error("Scopes returned shared storage")
	}
}

func TestParseSetCanonicalDuplicates(t *testing.T) {
	// The same scope written with and without percent-encoding is one scope.
	set := ParseSet("patient/Observation.rs?category=a%7Cb patient/Observation.rs?category=a|b")
	if set.Len() != 1 {
		t.Fatalf("Len = %d, want 1", set.Len())
	}
	// v1 and v2 spellings are distinct scopes with the same permissions.
	set = ParseSet("patient/Observation.read patient/Observation.rs")
	if set.Len() != 2 {
		t.Fatalf("Len = %d, want 2", set.Len())
	}
}

func TestParseSetEmpty(t *testing.T) {
	for _, s := range []string{"", " ", "    "} {
		set := ParseSet(s)
		if set.Len() != 0 || len(set.Invalid()) != 0 || set.String() != "" {
			t.Errorf("ParseSet(%q) = %+v", s, set)
		}
		if !Compile(set).Empty() {
			t.Errorf("Compile(ParseSet(%q)) not empty", s)
		}
	}
}

func TestSetContains(t *testing.T) {
	set := ParseSet("patient/Observation.read user/Patient.rs?identifier=a%7Cb openid")
	for s, want := range map[string]bool{
		"patient/Observation.read":         true,
		"patient/Observation.rs":           false,
		"user/Patient.rs?identifier=a|b":   true,
		"user/Patient.rs?identifier=a%7Cb": true,
		"user/Patient.rs":                  false,
		"openid":                           true,
		"fhirUser":                         false,
		"patient/Observation.dus":          false,
		"":                                 false,
	} {
		if got := set.Contains(s); got != want {
			t.Errorf("Contains(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestNewSet(t *testing.T) {
	a, _ := Parse("patient/Observation.rs")
	b, _ := Parse("openid")
	set := newSet(a, b, a, Scope{})
	if set.Len() != 2 || set.String() != "patient/Observation.rs openid" {
		t.Fatalf("NewSet = %q", set.String())
	}
}

// TestParseSetSplitsOnSpaceOnly: RFC 6749 §3.3 separates scope tokens with
// SP alone. Other white space stays in its token, which then grants
// nothing: it never turns one token into two valid scopes.
func TestParseSetSplitsOnSpaceOnly(t *testing.T) {
	for _, sep := range []string{"\t", "\n", "\r", "\v", "\f", "\u0085", "\u00a0", "\u1680", "\u2003", "\u2028", "\u3000", "\ufeff"} {
		in := "patient/Observation.rs" + sep + "patient/Patient.rs"
		set := ParseSet(in)
		if set.Len() != 0 || len(set.Invalid()) != 1 || set.Invalid()[0].Raw != in {
			t.Errorf("ParseSet(%q) = %v, invalid %v; want one invalid token", in, set.Scopes(), set.Invalid())
		}
		if m := Compile(set); m.Allows(Patient, "Observation", Read) || m.Allows(Patient, "Patient", Read) {
			t.Errorf("ParseSet(%q) grants access", in)
		}
		// The separator at either end also spoils the token.
		if set := ParseSet(sep + "patient/Observation.rs"); set.Len() != 0 {
			t.Errorf("ParseSet(%q) = %v", sep+"patient/Observation.rs", set.Scopes())
		}
	}
	// Repeated, leading and trailing spaces are fine.
	if set := ParseSet("  patient/Observation.rs   patient/Patient.rs  "); set.Len() != 2 || len(set.Invalid()) != 0 {
		t.Errorf("spaces: %v %v", set.Scopes(), set.Invalid())
	}
}
