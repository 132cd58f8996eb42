package searchparam

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/fhirguard/fhirguard/fhir"
)

var fuzzResources = []string{
	labObservation,
	vitalObservation,
	`{"resourceType": "Observation", "category": [{"coding": [{"code": "laboratory"}]}], "status": "final"}`,
	`{"resourceType": "Observation", "category": "x", "code": {"coding": 1}}`,
	`{"resourceType": "Observation", "category": [[{"coding": [{"system": "a|b", "code": "c,d"}]}]]}`,
}

func fuzzResource(s string) map[string]any {
	var m map[string]any
	if json.Unmarshal([]byte(s), &m) != nil {
		return nil
	}
	return m
}

// plainAlternative reports whether value is one alternative system|code with
// both parts non-empty.
func plainAlternative(value string) (code string, ok bool) {
	if unescapedIndex(value, ',') >= 0 {
		return "", false
	}
	bar := unescapedIndex(value, '|')
	if bar <= 0 || bar == len(value)-1 {
		return "", false
	}
	return value[bar+1:], true
}

// FuzzMatchToken checks that no value or resource panics, that a match of
// system|code implies a match of |code or code, and that ok depends only on
// the value.
func FuzzMatchToken(f *testing.F) {
	for _, r := range fuzzResources {
		for _, v := range []string{obsCat + "|laboratory", "laboratory", "|laboratory", obsCat + "|",
			"exam," + obsCat + "|vital-signs", `urn:oid:1.2.3|A\,1\|x`, `a|b|c`, `\`, "", "|", ",", `\$g`} {
			f.Add(r, "category", v)
			f.Add(r, "code", v)
		}
	}
	f.Add(labObservation, "identifier", `A\,1\|x`)
	f.Add(labObservation, "status", "final")
	f.Fuzz(func(t *testing.T, resJSON, code, value string) {
		res := fuzzResource(resJSON)
		p, found := Lookup(fhir.R4, "Observation", code)
		if !found {
			p = Param{Name: code, Type: Token, Paths: []Path{{Elements: code}}}
		}
		matched, ok := matchToken(res, p, value)
		if !ok {
			if matched {
				t.Fatal("matched without ok")
			}
			return
		}
		if p.Type == Token && !p.Unresolved {
			if _, ok2 := matchToken(nil, p, value); !ok2 {
				t.Fatal("ok depends on the resource")
			}
		}
		if c, plain := plainAlternative(value); plain && matched {
			if m, _ := matchToken(res, p, c); !m {
				t.Fatalf("%q matched, code %q did not", value, c)
			}
		}
	})
}

// FuzzMatchReference checks that no value panics and that a match of
// Type/id implies a match of id for a relative reference.
func FuzzMatchReference(f *testing.F) {
	for _, v := range []string{"p1", "Patient/p1", "Patient/p1/_history/2", "https://x/Patient/p1", "urn:uuid:1",
		"Group/p1", "p9,Patient/p1", "/", "Patient/", "a/b/c", `p\,1`} {
		f.Add(`{"subject": {"reference": "Patient/p1"}}`, v)
		f.Add(`{"subject": {"reference": "https://x/Patient/p1/_history/1"}}`, v)
	}
	f.Add(`{"subject": [{"reference": 5}, "x", {"reference": {"reference": "Patient/p1"}}]}`, "p1")
	p, _ := Lookup(fhir.R4, "Observation", "subject")
	f.Fuzz(func(t *testing.T, resJSON, value string) {
		res := fuzzResource(resJSON)
		matched, ok := matchReference(res, p, value)
		if !ok && matched {
			t.Fatal("matched without ok")
		}
		if ok && matched && !isAbsolute(value) && !strings.Contains(value, ",") {
			if _, id, cut := strings.Cut(stripHistory(value), "/"); cut {
				if m, _ := matchReference(res, p, id); !m {
					t.Fatalf("%q matched, id %q did not", value, id)
				}
			}
		}
	})
}

// FuzzMatchString checks that no value panics and that a matching value's
// shorter prefixes match too.
func FuzzMatchString(f *testing.F) {
	for _, v := range []string{"Mül", "muller", "zoe,anne", `a\,b`, "", ",", `\`, "Mu\u0308"} {
		f.Add(`{"name": [{"family": "Müller", "given": ["Zoë"]}]}`, v)
	}
	p, _ := Lookup(fhir.R4, "Patient", "name")
	f.Fuzz(func(t *testing.T, resJSON, value string) {
		res := fuzzResource(resJSON)
		matched, ok := matchString(res, p, value)
		if !ok && matched {
			t.Fatal("matched without ok")
		}
		if !ok || !matched || strings.ContainsAny(value, `,\`) || !utf8.ValidString(value) {
			return
		}
		_, n := utf8.DecodeLastRuneInString(value)
		if shorter := value[:len(value)-n]; shorter != "" {
			if m, _ := matchString(res, p, shorter); !m {
				t.Fatalf("%q matched, its prefix %q did not", value, shorter)
			}
		}
	})
}
