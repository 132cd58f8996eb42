package fhirrest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/scope"
)

// rawRequest parses an HTTP/1.1 request the way net/http's server does, so
// the test sees the same URL fields (Path, RawPath) a handler would.
func rawRequest(t testing.TB, method, target string, header map[string]string, body string) *http.Request {
	t.Helper()
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: fhir.example.org\r\n")
	for k, v := range header {
		b.WriteString(k + ": " + v + "\r\n")
	}
	if body != "" {
		b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n")
	}
	b.WriteString("\r\n" + body)
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(b.String())))
	if err != nil {
		t.Fatalf("building request %s %q: %v", method, target, err)
	}
	return r
}

const (
	formCT = "application/x-www-form-urlencoded"
	jsonCT = "application/fhir+json"
)

// want is the expected classification; zero fields are not compared except
// where noted.
type want struct {
	kind        Kind
	method      string // default: the request method
	typ         string
	id, vid     string
	op          string
	level       Level
	compType    string
	compID      string
	conditional bool
	types       []string
	query       url.Values // compared when non-nil
}

type classifyCase struct {
	name   string
	method string
	target string
	header map[string]string
	body   string
	base   string // default "/fhir"
	want   want
	err    error
}

func runClassify(t *testing.T, cases []classifyCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := tc.base
			if base == "" {
				base = "/fhir"
			} else if base == "root" {
				base = ""
			}
			r := rawRequest(t, tc.method, tc.target, tc.header, tc.body)
			it, err := Classify(r, base)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Classify = %+v, %v; want error %v", it, err, tc.err)
				}
				if it.Kind != KindUnknown {
					t.Errorf("refused request has Kind %v", it.Kind)
				}
				return
			}
			if err != nil {
				t.Fatalf("Classify: %v", err)
			}
			checkInteraction(t, it, tc.method, tc.want)
			// The body the handler reads is the one the client sent.
			if r.Body != nil {
				got, _ := io.ReadAll(r.Body)
				if string(got) != tc.body {
					t.Errorf("body after Classify = %q, want %q", got, tc.body)
				}
			}
		})
	}
}

func checkInteraction(t *testing.T, it Interaction, method string, w want) {
	t.Helper()
	wm := w.method
	if wm == "" {
		wm = method
	}
	if it.Kind != w.kind {
		t.Errorf("Kind = %v, want %v", it.Kind, w.kind)
	}
	if it.Method != wm {
		t.Errorf("Method = %q, want %q", it.Method, wm)
	}
	if it.ResourceType != w.typ {
		t.Errorf("ResourceType = %q, want %q", it.ResourceType, w.typ)
	}
	if tid, ok := scope.LookupType(it.ResourceType); ok && tid != it.Type {
		t.Errorf("Type = %v, want %v", it.Type, tid)
	}
	if it.ID != w.id || it.VersionID != w.vid {
		t.Errorf("ID, VersionID = %q, %q; want %q, %q", it.ID, it.VersionID, w.id, w.vid)
	}
	if it.Operation != w.op || it.OperationLevel != w.level {
		t.Errorf("Operation = %q at %v, want %q at %v", it.Operation, it.OperationLevel, w.op, w.level)
	}
	if it.CompartmentType != w.compType || it.CompartmentID != w.compID {
		t.Errorf("compartment = %s/%s, want %s/%s", it.CompartmentType, it.CompartmentID, w.compType, w.compID)
	}
	if it.Conditional != w.conditional {
		t.Errorf("Conditional = %v, want %v", it.Conditional, w.conditional)
	}
	if !slices.Equal(it.Types, w.types) {
		t.Errorf("Types = %q, want %q", it.Types, w.types)
	}
	if w.query != nil && !reflect.DeepEqual(it.Query, w.query) {
		t.Errorf("Query = %v, want %v", it.Query, w.query)
	}
}

// TestClassifyShapes covers rows 1–30 of the request-shape table (FHIR R4
// http.html, search.html, operations.html; SMART permission per row).
func TestClassifyShapes(t *testing.T) {
	runClassify(t, shapeCases)
}

var shapeCases = []classifyCase{
	// Row 1: read, with result parameters kept in Query.
	{name: "1 read", method: "GET", target: "/fhir/Patient/123", want: want{kind: Read, typ: "Patient", id: "123"}},
	{name: "1 read with result params", method: "GET", target: "/fhir/Observation/lab1?_summary=true&_elements=code,subject&_format=json&_pretty=true",
		want: want{kind: Read, typ: "Observation", id: "lab1", query: url.Values{"_summary": {"true"}, "_elements": {"code,subject"}, "_format": {"json"}, "_pretty": {"true"}}}},
	{name: "1 read id with dots and dashes", method: "GET", target: "/fhir/Patient/a-b.c-1", want: want{kind: Read, typ: "Patient", id: "a-b.c-1"}},
	{name: "1 read 64-char id", method: "GET", target: "/fhir/Patient/" + strings.Repeat("a", 64), want: want{kind: Read, typ: "Patient", id: strings.Repeat("a", 64)}},
	{name: "1 read R5-only type", method: "GET", target: "/fhir/ActorDefinition/1", want: want{kind: Read, typ: "ActorDefinition", id: "1"}},
	{name: "1 read R4-only type", method: "GET", target: "/fhir/MedicinalProduct/1", want: want{kind: Read, typ: "MedicinalProduct", id: "1"}},
	{name: "1 read at root base", method: "GET", target: "/Patient/123", base: "root", want: want{kind: Read, typ: "Patient", id: "123"}},
	{name: "1 read below deep base", method: "GET", target: "/api/r4/t1/Patient/123", base: "/api/r4/t1", want: want{kind: Read, typ: "Patient", id: "123"}},
	{name: "1 read with base given with trailing slash", method: "GET", target: "/fhir/Patient/123", base: "/fhir/", want: want{kind: Read, typ: "Patient", id: "123"}},
	// Row 2: HEAD is the GET it mirrors.
	{name: "2 HEAD read", method: "HEAD", target: "/fhir/Patient/456", want: want{kind: Read, method: "GET", typ: "Patient", id: "456"}},
	{name: "2 HEAD search", method: "HEAD", target: "/fhir/Observation?patient=1", want: want{kind: SearchType, method: "GET", typ: "Observation"}},
	{name: "2 HEAD vread", method: "HEAD", target: "/fhir/Patient/1/_history/2", want: want{kind: VRead, method: "GET", typ: "Patient", id: "1", vid: "2"}},
	{name: "2 HEAD metadata", method: "HEAD", target: "/fhir/metadata", want: want{kind: Capabilities, method: "GET"}},
	// Row 3: vread.
	{name: "3 vread", method: "GET", target: "/fhir/Observation/lab1/_history/2", want: want{kind: VRead, typ: "Observation", id: "lab1", vid: "2"}},
	// Row 4: instance history.
	{name: "4 history-instance", method: "GET", target: "/fhir/Observation/lab1/_history", want: want{kind: HistoryInstance, typ: "Observation", id: "lab1"}},
	{name: "4 history-instance with params", method: "GET", target: "/fhir/Observation/lab1/_history?_count=10&_since=2020-01-01",
		want: want{kind: HistoryInstance, typ: "Observation", id: "lab1", query: url.Values{"_count": {"10"}, "_since": {"2020-01-01"}}}},
	// Rows 5–8.
	{name: "5 update", method: "PUT", target: "/fhir/Observation/new1", header: map[string]string{"Content-Type": jsonCT}, body: `{"resourceType":"Observation"}`,
		want: want{kind: Update, typ: "Observation", id: "new1"}},
	{name: "6 patch", method: "PATCH", target: "/fhir/Observation/lab1", header: map[string]string{"Content-Type": "application/json-patch+json"}, body: `[]`,
		want: want{kind: Patch, typ: "Observation", id: "lab1"}},
	{name: "7 delete", method: "DELETE", target: "/fhir/Observation/lab1", want: want{kind: Delete, typ: "Observation", id: "lab1"}},
	{name: "8 create", method: "POST", target: "/fhir/Observation", header: map[string]string{"Content-Type": jsonCT}, body: `{"resourceType":"Observation"}`,
		want: want{kind: Create, typ: "Observation"}},
	{name: "8 create with _format", method: "POST", target: "/fhir/Observation?_format=json", want: want{kind: Create, typ: "Observation", query: url.Values{"_format": {"json"}}}},
	// Row 9: conditional create.
	{name: "9 conditional create", method: "POST", target: "/fhir/Patient", header: map[string]string{"If-None-Exist": "identifier=http://x|1&birthdate=2000"},
		want: want{kind: Create, typ: "Patient", conditional: true, query: url.Values{"identifier": {"http://x|1"}, "birthdate": {"2000"}}}},
	{name: "9 conditional create with ?", method: "POST", target: "/fhir/Patient", header: map[string]string{"If-None-Exist": "?identifier=1"},
		want: want{kind: Create, typ: "Patient", conditional: true, query: url.Values{"identifier": {"1"}}}},
	{name: "9 conditional create with type?", method: "POST", target: "/fhir/Patient", header: map[string]string{"If-None-Exist": "Patient?identifier=1"},
		want: want{kind: Create, typ: "Patient", conditional: true, query: url.Values{"identifier": {"1"}}}},
	// Rows 10–12: conditional update, patch, delete.
	{name: "10 conditional update", method: "PUT", target: "/fhir/Observation?identifier=http://lab|1", want: want{kind: Update, typ: "Observation", conditional: true, query: url.Values{"identifier": {"http://lab|1"}}}},
	{name: "11 conditional patch", method: "PATCH", target: "/fhir/Observation?identifier=1", want: want{kind: Patch, typ: "Observation", conditional: true}},
	{name: "12 conditional delete", method: "DELETE", target: "/fhir/Observation?identifier=http://my-lab-system|123", want: want{kind: Delete, typ: "Observation", conditional: true}},
	{name: "12 conditional delete R4 literal", method: "DELETE", target: "/fhir/Observation/?identifier=1", want: want{kind: Delete, typ: "Observation", conditional: true, query: url.Values{"identifier": {"1"}}}},
	// Row 13–15: type search and history.
	{name: "13 search-type", method: "GET", target: "/fhir/Observation?code=4548-4&_sort:desc=date&_count=10&patient=123",
		want: want{kind: SearchType, typ: "Observation", query: url.Values{"code": {"4548-4"}, "_sort:desc": {"date"}, "_count": {"10"}, "patient": {"123"}}}},
	{name: "13 search-type no params", method: "GET", target: "/fhir/Observation", want: want{kind: SearchType, typ: "Observation"}},
	{name: "13 search-type repeated params", method: "GET", target: "/fhir/Observation?patient=1&patient=2", want: want{kind: SearchType, typ: "Observation", query: url.Values{"patient": {"1", "2"}}}},
	{name: "14 POST _search form", method: "POST", target: "/fhir/Observation/_search?_count=5", header: map[string]string{"Content-Type": formCT + "; charset=utf-8"}, body: "patient=123&code=x",
		want: want{kind: SearchType, typ: "Observation", query: url.Values{"_count": {"5"}, "patient": {"123"}, "code": {"x"}}}},
	{name: "14 POST _search param in URL and body", method: "POST", target: "/fhir/Observation/_search?patient=123", header: map[string]string{"Content-Type": formCT}, body: "patient=456",
		want: want{kind: SearchType, typ: "Observation", query: url.Values{"patient": {"123", "456"}}}},
	{name: "14 POST _search empty body", method: "POST", target: "/fhir/Observation/_search?patient=1", want: want{kind: SearchType, typ: "Observation", query: url.Values{"patient": {"1"}}}},
	{name: "15 history-type", method: "GET", target: "/fhir/Observation/_history", want: want{kind: HistoryType, typ: "Observation"}},
	// Rows 16–19: system level.
	{name: "16 search-system", method: "GET", target: "/fhir?_lastUpdated=gt2020", want: want{kind: SearchSystem, query: url.Values{"_lastUpdated": {"gt2020"}}}},
	{name: "16 search-system slash", method: "GET", target: "/fhir/?_id=1", want: want{kind: SearchSystem, query: url.Values{"_id": {"1"}}}},
	{name: "16 search-system root base", method: "GET", target: "/?_id=1", base: "root", want: want{kind: SearchSystem}},
	{name: "17 _type list", method: "GET", target: "/fhir?_type=Condition,Observation", want: want{kind: SearchSystem, types: []string{"Condition", "Observation"}}},
	{name: "17 _type repeated and duplicated", method: "GET", target: "/fhir?_type=Condition&_type=Observation,Condition", want: want{kind: SearchSystem, types: []string{"Condition", "Observation"}}},
	{name: "17 _type encoded comma", method: "GET", target: "/fhir?_type=Condition%2CObservation", want: want{kind: SearchSystem, types: []string{"Condition", "Observation"}}},
	{name: "18 POST system _search", method: "POST", target: "/fhir/_search", header: map[string]string{"Content-Type": formCT}, body: "_type=Patient&name=x",
		want: want{kind: SearchSystem, types: []string{"Patient"}, query: url.Values{"_type": {"Patient"}, "name": {"x"}}}},
	{name: "19 history-system", method: "GET", target: "/fhir/_history", want: want{kind: HistorySystem}},
	// Rows 20–22: compartment search.
	{name: "20 compartment search", method: "GET", target: "/fhir/Patient/123/Observation?code=x",
		want: want{kind: SearchCompartment, typ: "Observation", compType: "Patient", compID: "123", query: url.Values{"code": {"x"}}}},
	{name: "20 Encounter compartment", method: "GET", target: "/fhir/Encounter/e1/Observation", want: want{kind: SearchCompartment, typ: "Observation", compType: "Encounter", compID: "e1"}},
	{name: "20 RelatedPerson compartment", method: "GET", target: "/fhir/RelatedPerson/r1/Condition", want: want{kind: SearchCompartment, typ: "Condition", compType: "RelatedPerson", compID: "r1"}},
	{name: "20 Practitioner compartment", method: "GET", target: "/fhir/Practitioner/p1/Encounter", want: want{kind: SearchCompartment, typ: "Encounter", compType: "Practitioner", compID: "p1"}},
	{name: "20 Device compartment", method: "GET", target: "/fhir/Device/d1/Observation", want: want{kind: SearchCompartment, typ: "Observation", compType: "Device", compID: "d1"}},
	{name: "21 compartment all types", method: "GET", target: "/fhir/Patient/123/*", want: want{kind: SearchCompartment, typ: "*", compType: "Patient", compID: "123"}},
	{name: "21 compartment all types with _type", method: "GET", target: "/fhir/Patient/123/*?_type=Observation", want: want{kind: SearchCompartment, typ: "*", compType: "Patient", compID: "123", types: []string{"Observation"}}},
	{name: "22 compartment POST _search", method: "POST", target: "/fhir/Patient/123/Observation/_search", header: map[string]string{"Content-Type": formCT}, body: "code=x",
		want: want{kind: SearchCompartment, typ: "Observation", compType: "Patient", compID: "123", query: url.Values{"code": {"x"}}}},
	{name: "22 compartment * POST _search", method: "POST", target: "/fhir/Patient/123/*/_search", want: want{kind: SearchCompartment, typ: "*", compType: "Patient", compID: "123"}},
	// Row 24.
	{name: "24 capabilities", method: "GET", target: "/fhir/metadata?mode=full", want: want{kind: Capabilities, query: url.Values{"mode": {"full"}}}},
	// Row 27–28: operations.
	{name: "27 system op GET", method: "GET", target: "/fhir/$export?_type=Patient", want: want{kind: Operation, op: "export", level: LevelSystem, types: []string{"Patient"}}},
	{name: "27 system op POST", method: "POST", target: "/fhir/$process-message", want: want{kind: Operation, op: "process-message", level: LevelSystem}},
	{name: "27 type op", method: "POST", target: "/fhir/Observation/$validate", want: want{kind: Operation, typ: "Observation", op: "validate", level: LevelType}},
	{name: "27 type op GET", method: "GET", target: "/fhir/Observation/$lastn?patient=1", want: want{kind: Operation, typ: "Observation", op: "lastn", level: LevelType}},
	{name: "27 instance op", method: "GET", target: "/fhir/Patient/123/$everything", want: want{kind: Operation, typ: "Patient", id: "123", op: "everything", level: LevelInstance}},
	{name: "27 instance op POST", method: "POST", target: "/fhir/Patient/123/$everything", want: want{kind: Operation, typ: "Patient", id: "123", op: "everything", level: LevelInstance}},
	{name: "27 version op", method: "POST", target: "/fhir/Patient/123/_history/2/$meta-add", want: want{kind: Operation, typ: "Patient", id: "123", vid: "2", op: "meta-add", level: LevelInstance}},
	{name: "27 op with underscore", method: "POST", target: "/fhir/$bulk_member_match", want: want{kind: Operation, op: "bulk_member_match", level: LevelSystem}},
	{name: "28 system graphql", method: "POST", target: "/fhir/$graphql", want: want{kind: Operation, op: "graphql", level: LevelSystem}},
	{name: "28 instance graphql", method: "GET", target: "/fhir/Patient/123/$graphql?query=x", want: want{kind: Operation, typ: "Patient", id: "123", op: "graphql", level: LevelInstance}},
	// Row 29: paging links are system searches with opaque parameters.
	{name: "29 paging link", method: "GET", target: "/fhir?_getpages=abc&_getpagesoffset=10", want: want{kind: SearchSystem, query: url.Values{"_getpages": {"abc"}, "_getpagesoffset": {"10"}}}},
	// Neighbours of refused requests that must still work.
	{name: "ok search param named method", method: "GET", target: "/fhir/Observation?method=x&_methods=y", want: want{kind: SearchType, typ: "Observation", query: url.Values{"method": {"x"}, "_methods": {"y"}}}},
	{name: "ok header like an override", method: "GET", target: "/fhir/Observation/1", header: map[string]string{"X-HTTP-Method-Overrides": "DELETE", "X-Method": "DELETE"}, want: want{kind: Read, typ: "Observation", id: "1"}},
	{name: "ok id with inner dots", method: "GET", target: "/fhir/Observation/a..b", want: want{kind: Read, typ: "Observation", id: "a..b"}},
	{name: "ok id with leading dot", method: "GET", target: "/fhir/Observation/.a", want: want{kind: Read, typ: "Observation", id: ".a"}},
	{name: "ok semicolon in query value encoded", method: "GET", target: "/fhir/Observation?code=a%3Bb", want: want{kind: SearchType, typ: "Observation", query: url.Values{"code": {"a;b"}}}},
	{name: "ok percent in query", method: "GET", target: "/fhir/Observation?code=a%2Fb", want: want{kind: SearchType, typ: "Observation", query: url.Values{"code": {"a/b"}}}},
	{name: "ok plus in query", method: "GET", target: "/fhir/Observation?date=ge2020-01-01T00:00:00%2B05:00", want: want{kind: SearchType, typ: "Observation", query: url.Values{"date": {"ge2020-01-01T00:00:00+05:00"}}}},
	// Row 30: _include stays in Query for the middleware.
	{name: "30 include", method: "GET", target: "/fhir/Observation?patient=1&_include=Observation:performer&_revinclude=Provenance:target",
		want: want{kind: SearchType, typ: "Observation", query: url.Values{"patient": {"1"}, "_include": {"Observation:performer"}, "_revinclude": {"Provenance:target"}}}},
}

// Row 26 and the batch/transaction path of Classify.
func TestClassifyBundle(t *testing.T) {
	const tx = `{"resourceType":"Bundle","type":"transaction","entry":[
		{"request":{"method":"GET","url":"Observation/lab1"}},
		{"request":{"method":"DELETE","url":"Observation/lab1"}}]}`
	const batch = `{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Patient?name=x"}}]}`
	for _, tc := range []struct {
		name, target, body, ct, enc string
		kind                        Kind
		entries                     []Kind
		err                         error
	}{
		{name: "26 transaction", target: "/fhir", body: tx, ct: jsonCT, kind: Transaction, entries: []Kind{Read, Delete}},
		{name: "26 transaction slash", target: "/fhir/", body: tx, ct: "application/json", kind: Transaction, entries: []Kind{Read, Delete}},
		{name: "26 batch", target: "/fhir", body: batch, ct: jsonCT + "; charset=utf-8", kind: Batch, entries: []Kind{SearchType}},
		{name: "26 batch no content type", target: "/fhir", body: batch, kind: Batch, entries: []Kind{SearchType}},
		{name: "xml bundle refused", target: "/fhir", body: "<Bundle/>", ct: "application/fhir+xml", err: errMediaType},
		{name: "history bundle refused", target: "/fhir", body: `{"resourceType":"Bundle","type":"history"}`, ct: jsonCT, err: errBundleType},
		{name: "empty body refused", target: "/fhir", ct: jsonCT, err: errInvalidBundle},
		{name: "malformed refused", target: "/fhir", body: `{"resourceType":"Bundle",`, ct: jsonCT, err: errInvalidBundle},
		{name: "transaction with bad entry refused", target: "/fhir", ct: jsonCT, err: errNonCanonicalPath,
			body: `{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"GET","url":"Patient/1/../2"}}]}`},
		{name: "nested Bundle refused", target: "/fhir", ct: jsonCT, err: errNestedBundle,
			body: `{"resourceType":"Bundle","type":"batch","entry":[{"resource":{"resourceType":"Bundle","type":"transaction"},"request":{"method":"POST","url":"Bundle"}}]}`},
		{name: "gzip bundle refused", target: "/fhir", ct: jsonCT, enc: "gzip", body: tx, err: errMediaType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{}
			if tc.ct != "" {
				h["Content-Type"] = tc.ct
			}
			if tc.enc != "" {
				h["Content-Encoding"] = tc.enc
			}
			r := rawRequest(t, "POST", tc.target, h, tc.body)
			it, err := Classify(r, "/fhir")
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if it.Kind != tc.kind || it.Bundle == nil || it.Bundle.Kind != tc.kind {
				t.Fatalf("Kind = %v, Bundle = %+v; want %v", it.Kind, it.Bundle, tc.kind)
			}
			var got []Kind
			for _, e := range it.Bundle.Entries {
				got = append(got, e.Interaction.Kind)
			}
			if !slices.Equal(got, tc.entries) {
				t.Errorf("entries = %v, want %v", got, tc.entries)
			}
			body, _ := io.ReadAll(r.Body)
			if string(body) != tc.body {
				t.Errorf("body after Classify = %q, want %q", body, tc.body)
			}
		})
	}
}

func TestClassifyBodyLimits(t *testing.T) {
	c, err := New(Config{Base: "/fhir", MaxFormBytes: 16, MaxBundleBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, target, ct, body string
		chunked                bool
		err                    error
	}{
		{name: "form within limit", target: "/fhir/Patient/_search", ct: formCT, body: "name=0123456789"},
		{name: "form over limit", target: "/fhir/Patient/_search", ct: formCT, body: "name=0123456789ab", err: errTooLarge},
		{name: "form over limit chunked", target: "/fhir/Patient/_search", ct: formCT, body: "name=0123456789ab", chunked: true, err: errTooLarge},
		{name: "form within limit chunked", target: "/fhir/Patient/_search", ct: formCT, body: "name=01", chunked: true},
		{name: "bundle over limit", target: "/fhir", ct: jsonCT, body: `{"resourceType":"Bundle","type":"batch","entry":[],"id":"0123456789012345"}`, err: errTooLarge},
		{name: "bundle within limit", target: "/fhir", ct: jsonCT, body: `{"resourceType":"Bundle","type":"batch"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r *http.Request
			if tc.chunked {
				// Unknown length: the limit must hold while reading.
				r, _ = http.NewRequest("POST", "http://fhir.example.org"+tc.target, io.NopCloser(strings.NewReader(tc.body)))
				r.ContentLength = -1
				r.Header.Set("Content-Type", tc.ct)
			} else {
				r = rawRequest(t, "POST", tc.target, map[string]string{"Content-Type": tc.ct}, tc.body)
			}
			_, err := c.Classify(r)
			if tc.err == nil && err != nil || tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			got, _ := io.ReadAll(r.Body)
			if string(got) != tc.body {
				t.Errorf("body after Classify = %q, want %q", got, tc.body)
			}
		})
	}
}

func TestClassifyBodyMediaType(t *testing.T) {
	runClassify(t, mediaTypeCases)
}

var mediaTypeCases = []classifyCase{
	{name: "json body on _search", method: "POST", target: "/fhir/Observation/_search", header: map[string]string{"Content-Type": jsonCT}, body: `{"patient":"456"}`, err: errMediaType},
	{name: "multipart body on _search", method: "POST", target: "/fhir/Observation/_search", header: map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, body: "--x--", err: errMediaType},
	{name: "form without content type", method: "POST", target: "/fhir/Observation/_search", body: "patient=456", err: errMediaType},
	{name: "gzip form", method: "POST", target: "/fhir/Observation/_search", header: map[string]string{"Content-Type": formCT, "Content-Encoding": "gzip"}, body: "xx", err: errMediaType},
	{name: "malformed content type", method: "POST", target: "/fhir/Observation/_search", header: map[string]string{"Content-Type": "application/x-www-form-urlencoded; ="}, body: "a=b", err: errMediaType},
	{name: "form posted to a type", method: "POST", target: "/fhir/Observation", header: map[string]string{"Content-Type": formCT}, body: "patient=456", err: errMediaType},
	{name: "form posted to a type upper case", method: "POST", target: "/fhir/Observation", header: map[string]string{"Content-Type": "Application/X-WWW-Form-Urlencoded ; charset=utf-8"}, body: "patient=456", err: errMediaType},
	{name: "multipart posted to a type", method: "POST", target: "/fhir/Observation", header: map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, body: "--x--", err: errMediaType},
	{name: "form with semicolon", method: "POST", target: "/fhir/Observation/_search", header: map[string]string{"Content-Type": formCT}, body: "patient=123;patient=456", err: errInvalidQuery},
	{name: "form with bad escape", method: "POST", target: "/fhir/Observation/_search", header: map[string]string{"Content-Type": formCT}, body: "patient=%zz", err: errInvalidQuery},
	{name: "identity encoding accepted", method: "POST", target: "/fhir/Observation/_search", header: map[string]string{"Content-Type": formCT, "Content-Encoding": "identity"}, body: "patient=1",
		want: want{kind: SearchType, typ: "Observation", query: url.Values{"patient": {"1"}}}},
}

// TestClassifyRefusals: each rule refuses the attack (several encodings),
// and the neighbouring legitimate request still works (TestClassifyShapes).
func TestClassifyRefusals(t *testing.T) {
	runClassify(t, refusalCases)
}

var refusalCases = []classifyCase{
	// Dot segments.
	{name: "dotdot", method: "GET", target: "/fhir/Patient/pat-1/../pat-2", err: errNonCanonicalPath},
	{name: "dotdot at end", method: "GET", target: "/fhir/Patient/..", err: errNonCanonicalPath},
	{name: "dot", method: "GET", target: "/fhir/./Patient/1", err: errNonCanonicalPath},
	{name: "dot at end", method: "GET", target: "/fhir/Patient/1/.", err: errNonCanonicalPath},
	{name: "triple dot", method: "GET", target: "/fhir/Patient/...", err: errNonCanonicalPath},
	{name: "dotdot above base", method: "GET", target: "/fhir/../admin", err: errNonCanonicalPath},
	{name: "encoded dot", method: "GET", target: "/fhir/Patient/%2e%2e/x", err: errNonCanonicalPath},
	{name: "encoded dot upper", method: "GET", target: "/fhir/Patient/%2E%2E", err: errNonCanonicalPath},
	{name: "dotdot semicolon", method: "GET", target: "/fhir/Patient/..;/x", err: errNonCanonicalPath},
	// Empty segments.
	{name: "double slash", method: "GET", target: "/fhir//Patient/1", err: errNonCanonicalPath},
	{name: "double slash inside", method: "GET", target: "/fhir/Patient//1", err: errNonCanonicalPath},
	{name: "double slash base", method: "GET", target: "//fhir/Patient/1", base: "root", err: errNonCanonicalPath},
	{name: "trailing double slash", method: "GET", target: "/fhir/Patient/1//", err: errNonCanonicalPath},
	// Encoded separators.
	{name: "encoded slash", method: "GET", target: "/fhir/Patient/pat-1%2F..%2Fpat-2", err: errNonCanonicalPath},
	{name: "encoded slash lower", method: "GET", target: "/fhir/Patient/pat-1%2f..%2fpat-2", err: errNonCanonicalPath},
	{name: "encoded slash in type", method: "GET", target: "/fhir/Patient%2F1", err: errNonCanonicalPath},
	{name: "double encoded slash", method: "GET", target: "/fhir/Patient/1%252F..%252F2", err: errNonCanonicalPath},
	{name: "double encoded lower", method: "GET", target: "/fhir/Patient/1%252f2", err: errNonCanonicalPath},
	{name: "backslash", method: "GET", target: `/fhir/Patient/1\..\2`, err: errNonCanonicalPath},
	{name: "encoded backslash", method: "GET", target: "/fhir/Patient/1%5C..%5C2", err: errNonCanonicalPath},
	{name: "encoded backslash lower", method: "GET", target: "/fhir/Patient/1%5c2", err: errNonCanonicalPath},
	{name: "semicolon", method: "GET", target: "/fhir/Patient/1;jsessionid=x", err: errNonCanonicalPath},
	{name: "semicolon in type", method: "GET", target: "/fhir/Patient;x/1", err: errNonCanonicalPath},
	{name: "encoded semicolon", method: "GET", target: "/fhir/Patient/1%3Bx", err: errNonCanonicalPath},
	{name: "encoded NUL", method: "GET", target: "/fhir/Patient/1%00", err: errNonCanonicalPath},
	{name: "encoded control", method: "GET", target: "/fhir/Patient/1%0d%0a", err: errNonCanonicalPath},
	{name: "encoded tab", method: "GET", target: "/fhir/Patient/1%09", err: errNonCanonicalPath},
	{name: "encoded space", method: "GET", target: "/fhir/Patient/1%20", err: errNonCanonicalPath},
	{name: "encoded unreserved", method: "GET", target: "/fhir/Patient/%31%32%33", err: errNonCanonicalPath},
	{name: "encoded dollar", method: "GET", target: "/fhir/Patient/1/%24everything", err: errNonCanonicalPath},
	{name: "encoded hash", method: "GET", target: "/fhir/Patient/1%23x", err: errNonCanonicalPath},
	{name: "encoded question", method: "GET", target: "/fhir/Patient/1%3Fx=1", err: errNonCanonicalPath},
	{name: "colon", method: "GET", target: "/fhir/Patient/a:b", err: errNonCanonicalPath},
	{name: "at", method: "GET", target: "/fhir/Patient/a@b", err: errNonCanonicalPath},
	{name: "non-ascii", method: "GET", target: "/fhir/Patient/%C3%A9", err: errNonCanonicalPath},
	{name: "trailing slash read", method: "GET", target: "/fhir/Patient/1/", err: errNonCanonicalPath},
	{name: "trailing slash search", method: "GET", target: "/fhir/Patient/", err: errNonCanonicalPath},
	{name: "trailing slash put", method: "PUT", target: "/fhir/Patient/?name=x", err: errNonCanonicalPath},
	{name: "trailing slash history", method: "GET", target: "/fhir/Patient/_history/", err: errNonCanonicalPath},
	// Outside the base.
	{name: "other prefix", method: "GET", target: "/fhirx/Patient/1", err: ErrOutsideBase},
	{name: "case differs", method: "GET", target: "/FHIR/Patient/1", err: ErrOutsideBase},
	{name: "root", method: "GET", target: "/Patient/1", err: ErrOutsideBase},
	{name: "encoded base", method: "GET", target: "/%66hir/Patient/1", err: ErrOutsideBase},
	// Unknown types.
	{name: "lower-case type", method: "GET", target: "/fhir/patient/1", err: errUnknownType},
	{name: "upper-case type", method: "GET", target: "/fhir/PATIENT/1", err: errUnknownType},
	{name: "unknown type", method: "GET", target: "/fhir/Foo/1", err: errUnknownType},
	{name: "abstract type", method: "GET", target: "/fhir/Resource/1", err: errUnknownType},
	{name: "datatype", method: "GET", target: "/fhir/HumanName", err: errUnknownType},
	{name: "unknown type create", method: "POST", target: "/fhir/Foo", err: errUnknownType},
	{name: "unknown compartment target", method: "GET", target: "/fhir/Patient/1/observation", err: errUnknownType},
	{name: "unknown _type", method: "GET", target: "/fhir?_type=Observation,Foo", err: errUnknownType},
	{name: "lower-case _type", method: "GET", target: "/fhir/Patient/1/*?_type=observation", err: errUnknownType},
	{name: "favicon", method: "GET", target: "/fhir/favicon.ico", err: errUnknownType},
	{name: "empty _type element", method: "GET", target: "/fhir?_type=Observation,", err: errInvalidQuery},
	{name: "empty _type", method: "GET", target: "/fhir?_type=", err: errInvalidQuery},
	// Ids and operation names.
	{name: "65-char id", method: "GET", target: "/fhir/Patient/" + strings.Repeat("a", 65), err: errInvalidID},
	{name: "underscore id", method: "GET", target: "/fhir/Patient/a_b", err: errInvalidID},
	{name: "star id", method: "GET", target: "/fhir/Patient/a*b", err: errInvalidID},
	{name: "dollar in id", method: "GET", target: "/fhir/Patient/a$b", err: errInvalidID},
	{name: "bad version id", method: "GET", target: "/fhir/Patient/1/_history/v_1", err: errInvalidID},
	{name: "empty op name", method: "POST", target: "/fhir/$", err: errInvalidID},
	{name: "op name digit first", method: "POST", target: "/fhir/$1x", err: errInvalidID},
	{name: "op name with dollar", method: "POST", target: "/fhir/Patient/$a$b", err: errInvalidID},
	{name: "op name with dot", method: "POST", target: "/fhir/Patient/$a.b", err: errInvalidID},
	// Method overrides.
	{name: "X-HTTP-Method-Override", method: "POST", target: "/fhir/Observation/obs-2", header: map[string]string{"X-HTTP-Method-Override": "DELETE"}, err: errMethodOverride},
	{name: "X-HTTP-Method-Override on GET", method: "GET", target: "/fhir/Observation/obs-2", header: map[string]string{"X-HTTP-Method-Override": "DELETE"}, err: errMethodOverride},
	{name: "x-http-method-override lower", method: "POST", target: "/fhir/Observation", header: map[string]string{"x-http-method-override": "PUT"}, err: errMethodOverride},
	{name: "X-HTTP-Method", method: "POST", target: "/fhir/Observation", header: map[string]string{"X-HTTP-Method": "DELETE"}, err: errMethodOverride},
	{name: "X-Method-Override", method: "POST", target: "/fhir/Observation", header: map[string]string{"X-Method-Override": "DELETE"}, err: errMethodOverride},
	{name: "underscore header", method: "POST", target: "/fhir/Observation", header: map[string]string{"X_HTTP_Method_Override": "DELETE"}, err: errMethodOverride},
	{name: "empty override header", method: "GET", target: "/fhir/Observation", header: map[string]string{"X-HTTP-Method-Override": ""}, err: errMethodOverride},
	{name: "_method query", method: "POST", target: "/fhir/Observation/obs-2?_method=DELETE", err: errMethodOverride},
	{name: "_METHOD query", method: "GET", target: "/fhir/Observation?_METHOD=DELETE", err: errMethodOverride},
	{name: "_method encoded key", method: "GET", target: "/fhir/Observation?%5Fmethod=DELETE", err: errMethodOverride},
	{name: "_method form", method: "POST", target: "/fhir/Observation/_search", header: map[string]string{"Content-Type": formCT}, body: "_method=DELETE", err: errMethodOverride},
	{name: "_method in If-None-Exist", method: "POST", target: "/fhir/Observation", header: map[string]string{"If-None-Exist": "a=1&_method=DELETE"}, err: errInvalidQuery},
	// Methods.
	{name: "CONNECT", method: "CONNECT", target: "/fhir/Patient/1", err: errMethod},
	{name: "TRACE", method: "TRACE", target: "/fhir/Patient/1", err: errMethod},
	{name: "lower-case get", method: "get", target: "/fhir/Patient/1", err: errMethod},
	{name: "custom method", method: "PROPFIND", target: "/fhir/Patient/1", err: errMethod},
	{name: "POST instance", method: "POST", target: "/fhir/Observation/obs-2", err: errMethod},
	{name: "PUT metadata", method: "PUT", target: "/fhir/metadata", err: errMethod},
	{name: "POST metadata", method: "POST", target: "/fhir/metadata", err: errMethod},
	{name: "DELETE history", method: "DELETE", target: "/fhir/Patient/1/_history", err: errMethod},
	{name: "DELETE vread", method: "DELETE", target: "/fhir/Patient/1/_history/2", err: errMethod},
	{name: "GET _search", method: "GET", target: "/fhir/Patient/_search", err: errMethod},
	{name: "GET system _search", method: "GET", target: "/fhir/_search", err: errMethod},
	{name: "PUT base", method: "PUT", target: "/fhir", err: errMethod},
	{name: "DELETE base", method: "DELETE", target: "/fhir?_id=1", err: errMethod},
	{name: "DELETE op", method: "DELETE", target: "/fhir/Patient/1/$everything", err: errMethod},
	{name: "GET compartment _search", method: "GET", target: "/fhir/Patient/1/Observation/_search", err: errMethod},
	// Unsupported shapes.
	{name: "23 compartment instance", method: "GET", target: "/fhir/Patient/123/Condition/c1", err: errUnsupported},
	{name: "23 compartment PUT", method: "PUT", target: "/fhir/Patient/123/Condition", err: errUnsupported},
	{name: "23 compartment POST", method: "POST", target: "/fhir/Patient/123/Condition", err: errUnsupported},
	{name: "23 compartment DELETE", method: "DELETE", target: "/fhir/Patient/123/Condition", err: errUnsupported},
	{name: "not a compartment", method: "GET", target: "/fhir/Observation/1/Patient", err: errUnsupported},
	{name: "PUT type no query", method: "PUT", target: "/fhir/Patient", err: errUnsupported},
	{name: "PUT type only _format", method: "PUT", target: "/fhir/Patient?_format=json&_pretty=true", err: errUnsupported},
	{name: "PATCH type no query", method: "PATCH", target: "/fhir/Patient", err: errUnsupported},
	{name: "DELETE type no query", method: "DELETE", target: "/fhir/Patient", err: errUnsupported},
	{name: "DELETE type slash no query", method: "DELETE", target: "/fhir/Patient/", err: errUnsupported},
	{name: "top-level star", method: "GET", target: "/fhir/*", err: errUnsupported},
	{name: "unknown underscore", method: "GET", target: "/fhir/_foo", err: errUnsupported},
	{name: "metadata deeper", method: "GET", target: "/fhir/metadata/x", err: errUnsupported},
	{name: "history deeper", method: "GET", target: "/fhir/Patient/_history/1", err: errUnsupported},
	{name: "vread deeper", method: "GET", target: "/fhir/Patient/1/_history/2/x", err: errUnsupported},
	{name: "op deeper", method: "GET", target: "/fhir/Patient/1/$everything/x", err: errUnsupported},
	{name: "too deep", method: "GET", target: "/fhir/a/b/c/d/e/f/g", err: errUnsupported},
	{name: "compartment _search in place of type", method: "GET", target: "/fhir/Patient/1/_search", err: errUnsupported},
	// Queries Go would half-read.
	{name: "semicolon query", method: "GET", target: "/fhir/Observation?patient=123;patient=456", err: errInvalidQuery},
	{name: "bad escape in query", method: "GET", target: "/fhir/Observation?patient=%zz", err: errInvalidQuery},
	{name: "empty If-None-Exist", method: "POST", target: "/fhir/Patient", header: map[string]string{"If-None-Exist": " "}, err: errInvalidQuery},
	{name: "If-None-Exist other type", method: "POST", target: "/fhir/Patient", header: map[string]string{"If-None-Exist": "Observation?code=1"}, err: errInvalidQuery},
	{name: "If-None-Exist only _format", method: "POST", target: "/fhir/Patient", header: map[string]string{"If-None-Exist": "_format=json"}, err: errInvalidQuery},
	// Not FHIR interactions.
	{name: "OPTIONS", method: "OPTIONS", target: "/fhir/Patient/pat-2", err: ErrOptions},
	{name: "OPTIONS base", method: "OPTIONS", target: "/fhir", err: ErrOptions},
	{name: "OPTIONS non-canonical", method: "OPTIONS", target: "/fhir/Patient/%2e%2e", err: errNonCanonicalPath},
	{name: "25 well-known", method: "GET", target: "/fhir/.well-known/smart-configuration", err: ErrWellKnown},
	{name: "well-known other", method: "GET", target: "/fhir/.well-known/x", err: ErrWellKnown},
	{name: "well-known dotdot", method: "GET", target: "/fhir/.well-known/../Patient/1", err: errNonCanonicalPath},
}

func TestClassifyMultipleIfNoneExist(t *testing.T) {
	r := rawRequest(t, "POST", "/fhir/Patient", nil, "")
	r.Header.Add("If-None-Exist", "identifier=1")
	r.Header.Add("If-None-Exist", "identifier=2")
	if _, err := Classify(r, "/fhir"); !errors.Is(err, errInvalidQuery) {
		t.Fatalf("err = %v, want ErrInvalidQuery", err)
	}
}

// Requests built in code rather than parsed: raw control characters, and
// Path/RawPath combinations that the wire format cannot produce.
func TestClassifyConstructedURL(t *testing.T) {
	tests := []struct {
		name string
		u    *url.URL
		err  error
	}{
		{name: "NUL in Path", u: &url.URL{Path: "/fhir/Patient/1\x00"}, err: errNonCanonicalPath},
		{name: "newline in Path", u: &url.URL{Path: "/fhir/Patient/1\n"}, err: errNonCanonicalPath},
		{name: "decoded slash with RawPath", u: &url.URL{Path: "/fhir/Patient/1/../2", RawPath: "/fhir/Patient/1%2F..%2F2"}, err: errNonCanonicalPath},
		{name: "inconsistent RawPath", u: &url.URL{Path: "/fhir/Patient/1", RawPath: "/fhir/Patient/2"}, err: errNonCanonicalPath},
		{name: "inconsistent RawPath outside base", u: &url.URL{Path: "/fhir/Patient/1", RawPath: "/admin/x"}, err: errNonCanonicalPath},
		{name: "consistent RawPath", u: &url.URL{Path: "/fhir/Patient/1/*", RawPath: "/fhir/Patient/1/*"}},
		{name: "backslash in Path", u: &url.URL{Path: `/fhir/Patient/1\2`}, err: errNonCanonicalPath},
		{name: "encoded slash in Path", u: &url.URL{Path: "/fhir/Patient/1%2F2"}, err: errNonCanonicalPath},
		{name: "fragment", u: &url.URL{Path: "/fhir/Patient/1", Fragment: "x"}, err: errNonCanonicalPath},
		{name: "opaque", u: &url.URL{Scheme: "http", Opaque: "//x/fhir/Patient/1"}, err: errNonCanonicalPath},
		{name: "empty path at root", u: &url.URL{Path: ""}},
		{name: "plain", u: &url.URL{Path: "/fhir/Patient/1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := "/fhir"
			if tc.u.Path == "" {
				base = ""
			}
			r := &http.Request{Method: "GET", URL: tc.u, Header: http.Header{}}
			it, err := Classify(r, base)
			if tc.err == nil {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if it.Kind == KindUnknown {
					t.Fatalf("Kind unknown")
				}
				return
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
		})
	}
	if _, err := Classify(&http.Request{Method: "GET"}, ""); !errors.Is(err, errNonCanonicalPath) {
		t.Errorf("nil URL: err = %v", err)
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errors.New("connection reset")
	}
	n := min(len(p), r.n)
	for i := range n {
		p[i] = 'a'
	}
	r.n -= n
	return n, nil
}

func TestClassifyBodyReadError(t *testing.T) {
	r, _ := http.NewRequest("POST", "http://fhir.example.org/fhir/Patient/_search", io.NopCloser(&failingReader{n: 3}))
	r.Header.Set("Content-Type", formCT)
	it, err := Classify(r, "/fhir")
	if err == nil || StatusCode(err) != 0 || it.Kind != KindUnknown {
		t.Fatalf("Classify = %v, %v; want an I/O error", it.Kind, err)
	}
	got, _ := io.ReadAll(r.Body)
	if string(got) != "aaa" {
		t.Errorf("body after Classify = %q", got)
	}
}

func TestClassifyParts(t *testing.T) {
	it, err := classifyParts(parts{Method: "POST", Path: "/Observation/_search", Query: url.Values{"a": {"1"}}, Form: url.Values{"a": {"2"}, "b": {"3"}}})
	if err != nil {
		t.Fatal(err)
	}
	if it.Kind != SearchType || !reflect.DeepEqual(it.Query, url.Values{"a": {"1", "2"}, "b": {"3"}}) {
		t.Fatalf("got %v %v", it.Kind, it.Query)
	}
	if _, err := classifyParts(parts{Method: "POST", Path: ""}); !errors.Is(err, errInvalidBundle) {
		t.Fatalf("POST base without Bundle: err = %v", err)
	}
	b := &Bundle{Type: "batch", Kind: Batch}
	it, err = classifyParts(parts{Method: "POST", Path: "/", Bundle: b})
	if err != nil || it.Kind != Batch || it.Bundle != b {
		t.Fatalf("POST base with Bundle: %v %v", it, err)
	}
	if _, err := classifyParts(parts{Method: "GET", Path: "Patient/1"}); !errors.Is(err, errNonCanonicalPath) {
		t.Fatalf("relative path: err = %v", err)
	}
	if _, err := classifyParts(parts{Method: "POST", Path: "/Patient/_search", Form: url.Values{"_Method": {"DELETE"}}}); !errors.Is(err, errMethodOverride) {
		t.Fatalf("_method in form: err = %v", err)
	}
}

func TestKindPermission(t *testing.T) {
	tests := []struct {
		k    Kind
		name string
		p    scope.Permission
	}{
		{Read, "read", scope.Read}, {VRead, "vread", scope.Read}, {HistoryInstance, "history-instance", scope.Read},
		{Update, "update", scope.Update}, {Patch, "patch", scope.Update}, {Delete, "delete", scope.Delete},
		{Create, "create", scope.Create}, {SearchType, "search-type", scope.Search}, {SearchSystem, "search-system", scope.Search},
		{SearchCompartment, "search-compartment", scope.Search}, {HistoryType, "history-type", scope.Search},
		{HistorySystem, "history-system", scope.Search}, {Capabilities, "capabilities", 0}, {Batch, "batch", 0},
		{Transaction, "transaction", 0}, {Operation, "operation", 0}, {KindUnknown, "unknown", 0}, {Kind(200), "unknown", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.k.String() != tc.name || tc.k.Permission() != tc.p {
				t.Errorf("%d: %q %v, want %q %v", tc.k, tc.k.String(), tc.k.Permission(), tc.name, tc.p)
			}
			it := Interaction{Kind: tc.k}
			if it.Permission() != tc.p {
				t.Errorf("Interaction.Permission = %v", it.Permission())
			}
		})
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
		base string
	}{
		{name: "zero", ok: true},
		{name: "root slash", cfg: Config{Base: "/"}, ok: true},
		{name: "base", cfg: Config{Base: "/fhir/r4"}, ok: true, base: "/fhir/r4"},
		{name: "base trailing slash", cfg: Config{Base: "/fhir/"}, ok: true, base: "/fhir"},
		{name: "deep base", cfg: Config{Base: "/a/b/c/d/e/f/g"}, ok: true, base: "/a/b/c/d/e/f/g"},
		{name: "base with URL", cfg: Config{Base: "/fhir", BaseURL: "https://ehr.example.org/fhir/"}, ok: true, base: "/fhir"},
		{name: "relative base", cfg: Config{Base: "fhir"}},
		{name: "dotdot base", cfg: Config{Base: "/fhir/../x"}},
		{name: "encoded base", cfg: Config{Base: "/fh%69r"}},
		{name: "double slash base", cfg: Config{Base: "//fhir"}},
		{name: "negative limit", cfg: Config{MaxFormBytes: -1}},
		{name: "negative entries", cfg: Config{MaxBundleEntries: -1}},
		{name: "BaseURL path differs", cfg: Config{Base: "/fhir", BaseURL: "https://ehr.example.org/r4"}},
		{name: "BaseURL relative", cfg: Config{BaseURL: "/fhir"}},
		{name: "BaseURL query", cfg: Config{BaseURL: "https://ehr.example.org?x=1"}},
		{name: "BaseURL user", cfg: Config{BaseURL: "https://u@ehr.example.org"}},
		{name: "BaseURL scheme", cfg: Config{BaseURL: "ftp://ehr.example.org"}},
		{name: "BaseURL malformed", cfg: Config{BaseURL: "https://ehr example.org/%zz"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.cfg)
			if tc.ok != (err == nil) {
				t.Fatalf("New(%+v) err = %v, want ok %v", tc.cfg, err, tc.ok)
			}
			if err == nil && c.Base() != tc.base {
				t.Errorf("Base = %q, want %q", c.Base(), tc.base)
			}
		})
	}
}

func TestStatusCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, 0},
		{"options", errOptions, 0},
		{"well-known", errWellKnown, 0},
		{"other", errors.New("x"), 0},
		{"non-canonical", errDotSeg, 400},
		{"override", errOverride, 400},
		{"id", errID, 400},
		{"shape", errShape, 400},
		{"query", errQuery, 400},
		{"bundle", errNotBundle, 400},
		{"bundle type", errNotBatch, 400},
		{"nested", errNestedRes, 400},
		{"entry error", &EntryError{Index: 2, Err: errDotSeg}, 400},
		{"unknown type", errNotAType, 404},
		{"outside", errOutside, 404},
		{"method", errMethodPath, 405},
		{"too large", errBodyLimit, 413},
		{"media type", errContentType, 415},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := StatusCode(tc.err); got != tc.want {
				t.Errorf("StatusCode(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	var e *Error
	if !errors.As(errEncSlash, &e) || e.Err != errNonCanonicalPath || !strings.Contains(e.Error(), "%2F") {
		t.Fatalf("errEncSlash = %v", errEncSlash)
	}
	ee := &EntryError{Index: 3, Err: errDotSeg}
	if !strings.Contains(ee.Error(), "entry 3") || !errors.Is(ee, errNonCanonicalPath) {
		t.Fatalf("EntryError = %v", ee)
	}
	// Refusal details never quote the request.
	r := rawRequest(t, "GET", "/fhir/Patient/<script>", nil, "")
	_, err := Classify(r, "/fhir")
	if err == nil || strings.Contains(err.Error(), "script") {
		t.Fatalf("err = %v", err)
	}
}

func TestIsCompartmentType(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{{"Patient", true}, {"Encounter", true}, {"RelatedPerson", true}, {"Practitioner", true}, {"Device", true},
		{"patient", false}, {"Observation", false}, {"PractitionerRole", false}, {"", false}} {
		if isCompartmentType(tc.name) != tc.ok {
			t.Errorf("IsCompartmentType(%q) = %v", tc.name, !tc.ok)
		}
	}
}

func TestInteractionString(t *testing.T) {
	tests := []struct {
		target, method string
		header         map[string]string
		want           string
	}{
		{"/fhir/Patient/123", "GET", nil, "read GET Patient/123"},
		{"/fhir/Patient/123/_history/2", "HEAD", nil, "vread GET Patient/123/_history/2"},
		{"/fhir/Patient/123/Observation?name=secret", "GET", nil, "search-compartment GET Patient/123/Observation"},
		{"/fhir/Patient/123/$everything", "POST", nil, "operation POST Patient/123/$everything"},
		{"/fhir/$export", "GET", nil, "operation GET $export"},
		{"/fhir?name=secret", "GET", nil, "search-system GET"},
		{"/fhir/Observation?identifier=1", "DELETE", nil, "delete DELETE Observation (conditional)"},
		{"/fhir/metadata", "GET", nil, "capabilities GET"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			it, err := Classify(rawRequest(t, tc.method, tc.target, tc.header, ""), "/fhir")
			if err != nil {
				t.Fatal(err)
			}
			if got := it.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
			if got := fmt.Sprint(it); got != tc.want {
				t.Errorf("fmt.Sprint = %q, want %q", got, tc.want)
			}
		})
	}
	if got := (Interaction{}).String(); got != "unknown" {
		t.Errorf("zero Interaction = %q", got)
	}
}
