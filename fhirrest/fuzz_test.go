package fhirrest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/fhir"
	"github.com/fhirguard/fhirguard/scope"
)

// checkValid asserts the invariants of every successful classification.
func checkValid(t *testing.T, it Interaction) {
	t.Helper()
	switch it.Method {
	case "GET", "POST", "PUT", "PATCH", "DELETE":
	default:
		t.Fatalf("Method %q", it.Method)
	}
	if it.Kind == KindUnknown || it.Kind > Operation {
		t.Fatalf("Kind %v", it.Kind)
	}
	switch it.ResourceType {
	case "":
	case "*":
		if it.Kind != SearchCompartment {
			t.Fatalf("* as type of %v", it.Kind)
		}
	default:
		tid, ok := scope.LookupType(it.ResourceType)
		if !ok || tid != it.Type {
			t.Fatalf("ResourceType %q (Type %v)", it.ResourceType, it.Type)
		}
	}
	if it.ID != "" && !pathID(it.ID) || it.VersionID != "" && !pathID(it.VersionID) {
		t.Fatalf("id %q version %q", it.ID, it.VersionID)
	}
	if (it.Kind == Operation) != (it.Operation != "") || it.Operation != "" && !validOpName(it.Operation) {
		t.Fatalf("operation %q for %v", it.Operation, it.Kind)
	}
	if (it.Kind == Operation) != (it.OperationLevel != 0) {
		t.Fatalf("operation level %v for %v", it.OperationLevel, it.Kind)
	}
	if (it.Kind == SearchCompartment) != (it.CompartmentType != "") ||
		it.CompartmentType != "" && (!isCompartmentType(it.CompartmentType) || !pathID(it.CompartmentID)) {
		t.Fatalf("compartment %q/%q for %v", it.CompartmentType, it.CompartmentID, it.Kind)
	}
	for _, ty := range it.Types {
		if !fhir.IsResourceType(ty) {
			t.Fatalf("Types has %q", ty)
		}
	}
	if _, ok := it.Query["_method"]; ok {
		t.Fatalf("_method accepted")
	}
	if (it.Kind == Batch || it.Kind == Transaction) != (it.Bundle != nil) {
		t.Fatalf("Bundle %v for %v", it.Bundle, it.Kind)
	}
	if it.Kind.Permission() == 0 && it.ResourceType != "" && it.Kind != Operation {
		t.Fatalf("%v on %q needs no permission", it.Kind, it.ResourceType)
	}
}

// checkRefusal asserts that an error wraps one of the package's sentinels.
func checkRefusal(t *testing.T, it Interaction, err error) {
	t.Helper()
	if StatusCode(err) == 0 && !errors.Is(err, ErrOptions) && !errors.Is(err, ErrWellKnown) {
		t.Fatalf("error %v wraps no sentinel", err)
	}
	if it.Kind != KindUnknown {
		t.Fatalf("refused request classified as %v", it.Kind)
	}
}

// fuzzHeader reads "Name: value" lines into a header; asGiven keeps the
// names as written (non-canonical ones too) instead of canonicalising them.
func fuzzHeader(lines string, asGiven bool) http.Header {
	h := http.Header{}
	for line := range strings.SplitSeq(lines, "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			if asGiven {
				h[k] = append(h[k], v)
			} else {
				h.Add(k, v)
			}
		}
	}
	return h
}

func FuzzClassify(f *testing.F) {
	for _, cases := range [][]classifyCase{shapeCases, refusalCases, mediaTypeCases} {
		for _, tc := range cases {
			var h strings.Builder
			for k, v := range tc.header {
				h.WriteString(k + ": " + v + "\n")
			}
			f.Add(tc.method, tc.target, h.String(), tc.body)
		}
	}
	f.Add("POST", "/fhir", "Content-Type: application/fhir+json\n", bundleJSON("batch", entryJSON("GET", "Patient/1", "")))
	f.Fuzz(func(t *testing.T, method, target, headers, body string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || method == "" {
			return
		}
		h := fuzzHeader(headers, false)
		r := &http.Request{Method: method, URL: u, Header: h, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body))}
		it, err := Classify(r, "/fhir")
		if err != nil {
			checkRefusal(t, it, err)
		} else {
			checkValid(t, it)
			p := u.EscapedPath()
			if u.Path != p || u.RawPath != "" && u.RawPath != p {
				t.Fatalf("accepted URL whose fields differ: Path %q RawPath %q escaped %q", u.Path, u.RawPath, p)
			}
			for _, bad := range []string{"%", "/./", "/../", "//", "\\", ";"} {
				if strings.Contains(p, bad) {
					t.Fatalf("path %q with %q accepted", p, bad)
				}
			}
		}
		got, _ := io.ReadAll(r.Body)
		if string(got) != body {
			t.Fatalf("body changed: %q -> %q", body, got)
		}
		// ClassifyParts agrees with Classify on body-less requests.
		if method != "POST" && err == nil {
			rest, _ := below(u.EscapedPath(), "/fhir")
			q, _ := url.ParseQuery(u.RawQuery)
			if u.RawQuery == "" {
				q = nil
			}
			it2, err2 := classifyParts(parts{Method: method, Path: rest, Query: q, Header: h})
			if err2 != nil || it2.Kind != it.Kind || it2.ResourceType != it.ResourceType || it2.ID != it.ID {
				t.Fatalf("ClassifyParts = %v %v, Classify = %v", it2.Kind, err2, it.Kind)
			}
		}
	})
}

func FuzzParseBundle(f *testing.F) {
	e := entryJSON("GET", "Patient/1", "")
	f.Add([]byte(bundleJSON("batch", e)))
	f.Add([]byte(bundleJSON("transaction", e, entryJSON("POST", "Observation", `{"resourceType":"Observation"}`, `"ifNoneExist":"code=1"`))))
	f.Add([]byte(bundleJSON("batch", entryJSON("POST", "Bundle", `{"resourceType":"Bundle","type":"batch"}`))))
	f.Add([]byte(bundleJSON("batch", entryJSON("GET", "Patient/1/../2", ""), entryJSON("DELETE", "Observation?code=1", ""))))
	f.Add([]byte(`{"resourceType":"Bundle","type":"batch","Type":"transaction"}`))
	f.Add([]byte(`{"resourceType":"Bundle","type":"history"}`))
	f.Add([]byte(`[1,2]`))
	f.Add([]byte(` { "a" : [ "}" , {"b":"\\\"]"} ] , "c" : 1.5e3 , "d":null,"e":true } `))
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := bytes.Clone(body)
		b, err := ParseBundle(body)
		if !bytes.Equal(orig, body) {
			t.Fatal("ParseBundle changed its input")
		}
		if err != nil {
			if b != nil {
				t.Fatal("Bundle with error")
			}
			if StatusCode(err) == 0 {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		checkLenient(t, body, b)
		if !(b.Type == "batch" && b.Kind == Batch || b.Type == "transaction" && b.Kind == Transaction) {
			t.Fatalf("Type %q Kind %v", b.Type, b.Kind)
		}
		if len(b.Entries) > defaultMaxBundleEntries {
			t.Fatalf("%d entries", len(b.Entries))
		}
		for _, e := range b.Entries {
			if e.ResourceType == "Bundle" {
				t.Fatal("nested Bundle accepted")
			}
			if e.Err != nil {
				if b.Kind == Transaction {
					t.Fatalf("transaction entry with error %v", e.Err)
				}
				checkRefusal(t, e.Interaction, e.Err)
				continue
			}
			checkValid(t, e.Interaction)
			if e.Interaction.Kind == Batch || e.Interaction.Kind == Transaction {
				t.Fatal("nested batch accepted")
			}
			if k := e.Interaction.Kind; (k == Create || k == Update) && e.ResourceType != e.Interaction.ResourceType {
				t.Fatalf("%v of %q with a %q resource", k, e.Interaction.ResourceType, e.ResourceType)
			}
		}
	})
}

// checkLenient decodes an accepted Bundle the way a lenient Go server does
// (encoding/json into structs: names matched case-insensitively, the last
// duplicate wins, unknown members ignored) and requires it to see exactly
// the entries ParseBundle saw.
func checkLenient(t *testing.T, body []byte, b *Bundle) {
	t.Helper()
	var lenient struct {
		ResourceType string
		Type         string
		Entry        []struct {
			FullURL  string
			Resource json.RawMessage
			Request  struct {
				Method, URL, IfNoneMatch, IfModifiedSince, IfMatch, IfNoneExist string
			}
		}
	}
	if err := json.Unmarshal(body, &lenient); err != nil {
		t.Fatalf("ParseBundle accepted what encoding/json refuses: %v", err)
	}
	if lenient.ResourceType != "Bundle" || lenient.Type != b.Type || len(lenient.Entry) != len(b.Entries) {
		t.Fatalf("lenient decoder sees %q %q with %d entries, ParseBundle %q with %d", lenient.ResourceType, lenient.Type, len(lenient.Entry), b.Type, len(b.Entries))
	}
	for i, le := range lenient.Entry {
		e := b.Entries[i]
		if le.Request != e.Request || le.FullURL != e.FullURL {
			t.Fatalf("entry %d: lenient decoder sees %+v %q, ParseBundle %+v %q", i, le.Request, le.FullURL, e.Request, e.FullURL)
		}
		if (le.Resource == nil) != (e.Resource == nil) {
			t.Fatalf("entry %d: resource presence differs", i)
		}
	}
}

// pathID reports whether s is a FHIR id that a canonical path may hold:
// not a segment of dots only.
func pathID(s string) bool { return fhir.ValidID(s) && strings.Trim(s, ".") != "" }

// FuzzClassifyReadFastPath: the read fast path (classifyRead) answers
// exactly what the general path answers, error for error, for any method,
// target and headers.
func FuzzClassifyReadFastPath(f *testing.F) {
	for _, target := range []string{
		"/fhir/Observation/1", "/fhir/Patient/a.b-C", "/fhir/Observation/..", "/fhir/Observation/...", "/fhir/Observation/.x",
		"/fhir/Observation/1/", "/fhir/Observation//1", "/fhir/observation/1", "/fhir/Nope/1", "/fhir/metadata/1",
		"/fhir/_history/1", "/fhir/Observation/_history", "/fhir/Observation/$meta", "/fhir/Observation/1?_format=json",
		"/fhir/Observation/%31", "/fhir/Observation/1%2F2", "/fhir/.well-known/x", "/fhir/Observation/" + strings.Repeat("a", 65),
		"/fhir/Observation/1;x", "/fhir/Observation/1?", "/fhirObservation/1", "/fhir/Observation/a%20b",
	} {
		for _, method := range []string{"GET", "HEAD", "POST", "get"} {
			f.Add(method, target, "")
		}
	}
	f.Add("GET", "/fhir/Observation/1", "X-HTTP-Method-Override: DELETE")
	f.Add("GET", "/fhir/Observation/1", "x_http_method: PUT")
	f.Add("GET", "/fhir/Observation/1", "Accept: application/fhir+json")
	f.Fuzz(func(t *testing.T, method, target, headers string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || method == "" {
			return
		}
		h := fuzzHeader(headers, true)
		c, err := New(Config{Base: "/fhir"})
		if err != nil {
			t.Fatal(err)
		}
		r := &http.Request{Method: method, URL: u, Header: h, Body: http.NoBody}
		fast, errFast := c.classify(r, true)
		slow, errSlow := c.classify(r, false)
		if !reflect.DeepEqual(fast, slow) || fmt.Sprint(errFast) != fmt.Sprint(errSlow) {
			t.Fatalf("%s %s %q: fast path %+v, %v; general path %+v, %v", method, target, headers, fast, errFast, slow, errSlow)
		}
	})
}
