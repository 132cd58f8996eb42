package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"testing"
)

// The fuzz upstream, and an occurrence of it written as a regular
// expression independently of the matcher: scheme and host in any case, an
// optional default port (with leading zeros, or empty), the exact path,
// then the end or a character that cannot continue the path.
const (
	fuzzUpstream = "http://up.example/fhir"
	fuzzPublic   = "https://gw.example.org/r4"
)

var fuzzOccurrence = regexp.MustCompile(`(?i:http)://(?i:up\.example)(?::0*80|:)?/fhir([^A-Za-z0-9._~%-]|$)`)

// FuzzRewrite: for any input, the output of rewriteJSON is valid JSON
// exactly when the input is (as encoding/json reads it); no string of the
// output holds an occurrence of the upstream base (in any escaped form);
// and every other token is unchanged, strings included, each string being
// the input's with its occurrences replaced.
func FuzzRewrite(f *testing.F) {
	for _, s := range []string{
		`{"resourceType":"Bundle","link":[{"relation":"next","url":"http://up.example/fhir/Observation?_offset=1"}],"entry":[{"fullUrl":"http://up.example/fhir/Patient/1"}]}`,
		`{"a":"http:\/\/up.example\/fhir\/x","b":"\u0068ttp://UP.example:80/fhir","c":"http://up.example/fhir2"}`,
		`["http://up.example/fhirhttp://up.example/fhir/", 1.5e3, true, null, {"http://up.example/fhir": {}}]`,
		`"http://up.example:/fhir?x"`,
		"{\"a\":\"\xff http://up.example/fhir\\ud800\"}",
		`{"a":"http://up.example/fhir\u0032"}`,
		`{"a"`, `[1,]`, `01`, ``,
	} {
		f.Add([]byte(s))
	}
	m := testMatcher(f, fuzzUpstream, fuzzPublic)
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := m.rewriteJSON(in)
		valid := json.Valid(in)
		if (err == nil) != valid {
			t.Fatalf("rewriteJSON error %v, json.Valid %v: %q", err, valid, in)
		}
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("output is not JSON: %q -> %q", in, out)
		}
		if err == nil && !bytes.Equal(in, out) && !fuzzOccurrence.Match(decodedStrings(t, in)) {
			t.Fatalf("changed without an occurrence: %q -> %q", in, out)
		}
		din, dout := json.NewDecoder(bytes.NewReader(in)), json.NewDecoder(bytes.NewReader(out))
		din.UseNumber()
		dout.UseNumber()
		for {
			a, errA := din.Token()
			b, errB := dout.Token()
			if errors.Is(errA, io.EOF) || errors.Is(errB, io.EOF) {
				if !errors.Is(errA, io.EOF) || !errors.Is(errB, io.EOF) {
					t.Fatalf("token streams differ in length: %q -> %q", in, out)
				}
				return
			}
			if errA != nil || errB != nil {
				t.Fatalf("tokens: %v, %v: %q -> %q", errA, errB, in, out)
			}
			sa, okA := a.(string)
			sb, okB := b.(string)
			if okA != okB {
				t.Fatalf("token %v became %v", a, b)
			}
			if !okA {
				if a != b {
					t.Fatalf("token %v became %v", a, b)
				}
				continue
			}
			if fuzzOccurrence.MatchString(sb) {
				t.Fatalf("%q still holds the upstream (from %q)", sb, sa)
			}
			if want := fuzzOccurrence.ReplaceAllString(sa, fuzzPublic+"$1"); sb != want {
				t.Fatalf("string %q became %q, want %q", sa, sb, want)
			}
		}
	})
}

// decodedStrings returns the strings of a valid JSON text, decoded, one a
// line.
func decodedStrings(t *testing.T, in []byte) []byte {
	var out []byte
	d := json.NewDecoder(bytes.NewReader(in))
	for {
		tok, err := d.Token()
		if err != nil {
			return out
		}
		if s, ok := tok.(string); ok {
			out = append(append(out, s...), '\n')
		}
	}
}
