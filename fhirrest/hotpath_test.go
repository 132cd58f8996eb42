package fhirrest

import (
	"net/url"
	"strings"
	"testing"
)

// TestPlainPath: for a plain path (and no RawPath), EscapedPath is the path
// itself, for every byte and in every position.
func TestPlainPath(t *testing.T) {
	for c := 0; c < 256; c++ {
		for _, p := range []string{"/fhir/" + string(rune(c)), string([]byte{byte(c)}) + "/x", "/a" + string([]byte{byte(c)}) + "b"} {
			u := &url.URL{Path: p}
			if plainPath(p) && u.EscapedPath() != p {
				t.Fatalf("plainPath(%q) but EscapedPath %q", p, u.EscapedPath())
			}
		}
	}
}

// TestOverrideHeaderFirstByte: the first-byte filter of overrideHeader
// rejects no variant of the override names.
func TestOverrideHeaderFirstByte(t *testing.T) {
	for _, n := range []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"} {
		for _, v := range []string{n, strings.ToLower(n), strings.ToUpper(n), strings.ReplaceAll(n, "-", "_"), "x" + n[1:]} {
			if !overrideHeader(v) {
				t.Fatalf("%q not recognised", v)
			}
		}
	}
	for _, v := range []string{"Authorization", "Accept-Encoding", "Y-HTTP-Method", "X-HTTP-Methods"} {
		if overrideHeader(v) {
			t.Fatalf("%q recognised", v)
		}
	}
}
