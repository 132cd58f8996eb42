package fhirrest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func bundleJSON(typ string, entries ...string) string {
	return `{"resourceType":"Bundle","type":"` + typ + `","entry":[` + strings.Join(entries, ",") + `]}`
}

func entryJSON(method, u, resource string, extra ...string) string {
	req := `"method":"` + method + `","url":"` + u + `"`
	for _, x := range extra {
		req += "," + x
	}
	e := `{"request":{` + req + `}`
	if resource != "" {
		e += `,"resource":` + resource
	}
	return e + "}"
}

func TestParseBundleEntries(t *testing.T) {
	body := `{"resourceType":"Bundle","id":"b1","type":"transaction","entry":[
	 {"fullUrl":"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a","resource":{"resourceType":"Patient","active":true},
	  "request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=http://x|1"}},
	 {"fullUrl":"http://ex/fhir/Observation/o1","resource":{"resourceType":"Observation","id":"o1"},
	  "request":{"method":"PUT","url":"Observation/o1","ifMatch":"W/\"2\""}},
	 {"request":{"method":"GET","url":"Patient/123","ifNoneMatch":"W/\"1\"","ifModifiedSince":"2020-01-01T00:00:00Z"}},
	 {"request":{"method":"HEAD","url":"Observation?patient=123&code=x"}},
	 {"request":{"method":"DELETE","url":"Observation?identifier=1"}},
	 {"resource":{"resourceType":"Binary","contentType":"application/json-patch+json"},"request":{"method":"PATCH","url":"Observation/o1"}},
	 {"resource":{"resourceType":"Parameters"},"request":{"method":"POST","url":"Patient/123/$everything"}},
	 {"request":{"method":"GET","url":"Patient/123/Observation?_count=1"}},
	 {"request":{"method":"GET","url":"/Patient/9"}},
	 {"request":{"method":"GET","url":"?_type=Patient"}},
	 {"request":{"method":"GET","url":"metadata"}},
	 {"request":{"method":"POST","url":"Observation/_search?code=1"}}
	]}`
	b, err := ParseBundle([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if b.Type != "transaction" || b.Kind != Transaction || len(b.Entries) != 12 {
		t.Fatalf("Bundle %s %v with %d entries", b.Type, b.Kind, len(b.Entries))
	}
	type exp struct {
		kind        Kind
		method, typ string
		id          string
		conditional bool
		query       url.Values
	}
	wants := []exp{
		{Create, "POST", "Patient", "", true, url.Values{"identifier": {"http://x|1"}}},
		{Update, "PUT", "Observation", "o1", false, nil},
		{Read, "GET", "Patient", "123", false, nil},
		{SearchType, "GET", "Observation", "", false, url.Values{"patient": {"123"}, "code": {"x"}}},
		{Delete, "DELETE", "Observation", "", true, url.Values{"identifier": {"1"}}},
		{Patch, "PATCH", "Observation", "o1", false, nil},
		{Operation, "POST", "Patient", "123", false, nil},
		{SearchCompartment, "GET", "Observation", "", false, url.Values{"_count": {"1"}}},
		{Read, "GET", "Patient", "9", false, nil},
		{SearchSystem, "GET", "", "", false, url.Values{"_type": {"Patient"}}},
		{Capabilities, "GET", "", "", false, nil},
		{SearchType, "POST", "Observation", "", false, url.Values{"code": {"1"}}},
	}
	for i, w := range wants {
		e := b.Entries[i]
		t.Run(fmt.Sprint(i, " ", w.kind), func(t *testing.T) {
			if e.Err != nil {
				t.Fatalf("Err = %v", e.Err)
			}
			it := e.Interaction
			if it.Kind != w.kind || it.Method != w.method || it.ResourceType != w.typ || it.ID != w.id || it.Conditional != w.conditional {
				t.Errorf("got %v %s %s/%s cond=%v, want %+v", it.Kind, it.Method, it.ResourceType, it.ID, it.Conditional, w)
			}
			if w.query != nil && !reflect.DeepEqual(it.Query, w.query) {
				t.Errorf("Query = %v, want %v", it.Query, w.query)
			}
		})
	}
	e0, e1, e2 := b.Entries[0], b.Entries[1], b.Entries[2]
	if e0.FullURL != "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a" || e0.ResourceType != "Patient" || e0.Request.IfNoneExist != "identifier=http://x|1" {
		t.Errorf("entry 0 = %+v", e0)
	}
	var res map[string]any
	if err := json.Unmarshal(e0.Resource, &res); err != nil || res["active"] != true {
		t.Errorf("entry 0 resource = %s (%v)", e0.Resource, err)
	}
	if e1.Request.IfMatch != `W/"2"` || e1.Request.Method != "PUT" || e1.Request.URL != "Observation/o1" {
		t.Errorf("entry 1 request = %+v", e1.Request)
	}
	if e2.Request.IfNoneMatch != `W/"1"` || e2.Request.IfModifiedSince != "2020-01-01T00:00:00Z" || e2.Resource != nil {
		t.Errorf("entry 2 = %+v", e2)
	}
	if got := b.Entries[3].Interaction.Method; got != "GET" {
		t.Errorf("HEAD entry Method = %q", got)
	}
}

func TestParseBundleRefusals(t *testing.T) {
	okEntry := entryJSON("GET", "Patient/1", "")
	tests := []struct {
		name string
		body string
		err  error
	}{
		{"not JSON", `Bundle`, errInvalidBundle},
		{"truncated", `{"resourceType":"Bundle","type":"batch"`, errInvalidBundle},
		{"array", `[]`, errInvalidBundle},
		{"null", `null`, errInvalidBundle},
		{"empty", ``, errInvalidBundle},
		{"trailing data", bundleJSON("batch") + `{}`, errInvalidBundle},
		{"trailing garbage", bundleJSON("batch") + ` x`, errInvalidBundle},
		{"no resourceType", `{"type":"batch"}`, errInvalidBundle},
		{"other resourceType", `{"resourceType":"Parameters","type":"batch"}`, errInvalidBundle},
		{"resourceType not string", `{"resourceType":1,"type":"batch"}`, errInvalidBundle},
		{"duplicate type", `{"resourceType":"Bundle","type":"batch","type":"transaction"}`, errInvalidBundle},
		{"case-variant type", `{"resourceType":"Bundle","type":"batch","Type":"transaction"}`, errInvalidBundle},
		{"case-variant entry", `{"resourceType":"Bundle","type":"batch","entry":[],"ENTRY":[` + entryJSON("DELETE", "Patient/1", "") + `]}`, errInvalidBundle},
		{"non-ASCII key", `{"resourceType":"Bundle","type":"batch","entr\u00ff":[]}`, errInvalidBundle},
		{"kelvin key", `{"resourceType":"Bundle","type":"batch","lin\u212a":[]}`, errInvalidBundle},
		{"duplicate entry", `{"resourceType":"Bundle","type":"batch","entry":[],"entry":[]}`, errInvalidBundle},
		{"duplicate resourceType", `{"resourceType":"Bundle","resourceType":"Bundle","type":"batch"}`, errInvalidBundle},
		{"entry not array", `{"resourceType":"Bundle","type":"batch","entry":{}}`, errInvalidBundle},
		{"entry null", `{"resourceType":"Bundle","type":"batch","entry":null}`, errInvalidBundle},
		{"entry item not object", bundleJSON("batch", `"x"`), errInvalidBundle},
		{"entry without request", bundleJSON("batch", `{"fullUrl":"x"}`), errInvalidBundle},
		{"request not object", bundleJSON("batch", `{"request":"GET Patient/1"}`), errInvalidBundle},
		{"method null", bundleJSON("batch", `{"request":{"method":null,"url":"Patient/1"}}`), errInvalidBundle},
		{"method number", bundleJSON("batch", `{"request":{"method":1,"url":"Patient/1"}}`), errInvalidBundle},
		{"duplicate method", bundleJSON("batch", `{"request":{"method":"GET","method":"DELETE","url":"Patient/1"}}`), errInvalidBundle},
		{"case-variant url", bundleJSON("batch", `{"request":{"method":"GET","url":"Patient/1","URL":"Patient/2"}}`), errInvalidBundle},
		{"duplicate request", bundleJSON("batch", `{"request":{"method":"GET","url":"Patient/1"},"request":{"method":"DELETE","url":"Patient/1"}}`), errInvalidBundle},
		{"resource not object", bundleJSON("batch", entryJSON("POST", "Patient", `"x"`)), errInvalidBundle},
		{"duplicate resource key", bundleJSON("batch", entryJSON("POST", "Patient", `{"resourceType":"Patient","resourceType":"Bundle"}`)), errInvalidBundle},
		{"case-variant resource key", bundleJSON("batch", entryJSON("POST", "Observation", `{"resourceType":"Observation","subject":{"reference":"Patient/1"},"Subject":{"reference":"Patient/2"}}`)), errInvalidBundle},
		{"lone Entry", `{"resourceType":"Bundle","type":"batch","Entry":[` + entryJSON("GET", "Patient/2", "") + `]}`, errInvalidBundle},
		{"lone ENTRY", `{"resourceType":"Bundle","type":"transaction","ENTRY":[` + entryJSON("DELETE", "Observation/2", "") + `]}`, errInvalidBundle},
		{"lone eNtry", `{"resourceType":"Bundle","type":"batch","eNtry":[` + entryJSON("GET", "Patient/2", "") + `]}`, errInvalidBundle},
		{"escaped Entry", `{"resourceType":"Bundle","type":"batch","\u0045ntry":[` + entryJSON("GET", "Patient/2", "") + `]}`, errInvalidBundle},
		{"unknown Bundle member", `{"resourceType":"Bundle","type":"batch","entries":[]}`, errInvalidBundle},
		{"Bundle text", `{"resourceType":"Bundle","type":"batch","text":{}}`, errInvalidBundle},
		{"case-variant Request", bundleJSON("batch", `{"Request":{"method":"GET","url":"Patient/2"}}`), errInvalidBundle},
		{"unknown entry member", bundleJSON("batch", `{"request":{"method":"GET","url":"Patient/1"},"requests":{}}`), errInvalidBundle},
		{"IfNoneExist", bundleJSON("batch", `{"resource":{"resourceType":"Observation"},"request":{"method":"POST","url":"Observation","IfNoneExist":"patient=2"}}`), errInvalidBundle},
		{"ifnoneexist", bundleJSON("batch", `{"resource":{"resourceType":"Observation"},"request":{"method":"POST","url":"Observation","ifnoneexist":"patient=2"}}`), errInvalidBundle},
		{"Method", bundleJSON("batch", `{"request":{"Method":"DELETE","url":"Patient/1"}}`), errInvalidBundle},
		{"unknown request member", bundleJSON("batch", `{"request":{"method":"GET","url":"Patient/1","body":"x"}}`), errInvalidBundle},
		{"bom", "\xef\xbb\xbf" + bundleJSON("batch"), errInvalidBundle},
		{"invalid UTF-8", bundleJSON("batch", entryJSON("POST", "Observation", "{\"resourceType\":\"Observation\",\"status\":\"\xff\"}")), errInvalidBundle},
		{"too deep", bundleJSON("batch", entryJSON("POST", "Observation", `{"resourceType":"Observation","extension":`+strings.Repeat("[", 100)+strings.Repeat("]", 100)+`}`)), errInvalidBundle},
		{"no type", `{"resourceType":"Bundle"}`, errBundleType},
		{"history", bundleJSON("history", okEntry), errBundleType},
		{"message", bundleJSON("message"), errBundleType},
		{"document", bundleJSON("document"), errBundleType},
		{"searchset", bundleJSON("searchset"), errBundleType},
		{"collection", bundleJSON("collection"), errBundleType},
		{"batch-response", bundleJSON("batch-response"), errBundleType},
		{"transaction-response", bundleJSON("transaction-response"), errBundleType},
		{"Batch upper", bundleJSON("Batch"), errBundleType},
		{"type not string", `{"resourceType":"Bundle","type":["batch"]}`, errInvalidBundle},
		{"nested Bundle resource batch", bundleJSON("batch", okEntry, entryJSON("POST", "Bundle", bundleJSON("transaction", entryJSON("DELETE", "Patient/1", "")))), errNestedBundle},
		{"nested Bundle resource transaction", bundleJSON("transaction", entryJSON("PUT", "Bundle/1", `{"resourceType":"Bundle","type":"collection"}`)), errNestedBundle},
		{"nested Bundle resource on GET", bundleJSON("batch", entryJSON("GET", "Patient/1", `{"resourceType":"Bundle"}`)), errNestedBundle},
		{"entry posts to base", bundleJSON("batch", entryJSON("POST", "", `{"resourceType":"Parameters"}`)), errNestedBundle},
		{"entry posts to slash", bundleJSON("batch", entryJSON("POST", "/", "")), errNestedBundle},
		{"entry posts to base with query", bundleJSON("batch", entryJSON("POST", "?x=1", "")), errNestedBundle},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := ParseBundle([]byte(tc.body))
			if !errors.Is(err, tc.err) || StatusCode(err) != 400 {
				t.Fatalf("ParseBundle = %+v, %v; want %v", b, err, tc.err)
			}
			if b != nil {
				t.Errorf("refused Bundle returned")
			}
		})
	}
}

// Entry-level refusals: a transaction fails as a whole with an *EntryError
// naming the entry; a batch keeps the error in the entry and still returns
// its other entries.
func TestParseBundleEntryErrors(t *testing.T) {
	good := entryJSON("GET", "Patient/1", "")
	tests := []struct {
		name  string
		entry string
		err   error
	}{
		{"dotdot", entryJSON("GET", "Patient/1/../2", ""), errNonCanonicalPath},
		{"encoded slash", entryJSON("GET", "Patient/1%2F..%2F2", ""), errNonCanonicalPath},
		{"json-escaped encoded slash", entryJSON("GET", `Patient/1\u00252F2`, ""), errNonCanonicalPath},
		{"backslash", entryJSON("GET", `Patient\\1`, ""), errNonCanonicalPath},
		{"double slash", entryJSON("GET", "Patient//1", ""), errNonCanonicalPath},
		{"fragment", entryJSON("GET", "Patient/1#x", ""), errNonCanonicalPath},
		{"NUL", entryJSON("GET", `Patient/1\u0000`, ""), errNonCanonicalPath},
		{"unknown type", entryJSON("GET", "patient/1", ""), errUnknownType},
		{"bad id", entryJSON("GET", "Patient/a_b", ""), errInvalidID},
		{"method override in url", entryJSON("GET", "Patient/1?_method=DELETE", ""), errMethodOverride},
		{"OPTIONS", entryJSON("OPTIONS", "Patient/1", ""), errMethod},
		{"lower-case method", entryJSON("get", "Patient/1", ""), errMethod},
		{"no method", `{"request":{"url":"Patient/1"}}`, errMethod},
		{"POST instance", entryJSON("POST", "Patient/1", `{"resourceType":"Patient"}`), errMethod},
		{"compartment instance", entryJSON("GET", "Patient/1/Observation/2", ""), errUnsupported},
		{"create type mismatch", entryJSON("POST", "Observation", `{"resourceType":"Patient"}`), errUnsupported},
		{"update type mismatch", entryJSON("PUT", "Observation/1", `{"resourceType":"Patient","id":"1"}`), errUnsupported},
		{"conditional update type mismatch", entryJSON("PUT", "Observation?identifier=1", `{"resourceType":"Patient"}`), errUnsupported},
		{"create without resource", entryJSON("POST", "Observation", ""), errInvalidBundle},
		{"create resource without type", entryJSON("POST", "Observation", `{"id":"1"}`), errUnsupported},
		{"search with hidden body", entryJSON("POST", "Observation/_search", `{"resourceType":"Parameters"}`), errUnsupported},
		{"conditional delete without criteria", entryJSON("DELETE", "Observation", ""), errUnsupported},
		{"bad query", entryJSON("GET", "Observation?a=1;b=2", ""), errInvalidQuery},
		{"bad If-None-Exist", entryJSON("POST", "Patient", `{"resourceType":"Patient"}`, `"ifNoneExist":"Observation?x=1"`), errInvalidQuery},
		{"absolute url", entryJSON("GET", "https://ehr.example.org/fhir/Patient/1", ""), ErrOutsideBase},
		{"urn url", entryJSON("GET", "urn:uuid:1", ""), ErrOutsideBase},
		{"well-known", entryJSON("GET", ".well-known/smart-configuration", ""), ErrWellKnown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseBundle([]byte(bundleJSON("transaction", good, tc.entry, good)))
			var ee *EntryError
			if !errors.As(err, &ee) || ee.Index != 1 || !errors.Is(err, tc.err) {
				t.Fatalf("transaction: err = %v, want entry 1 %v", err, tc.err)
			}
			b, err := ParseBundle([]byte(bundleJSON("batch", good, tc.entry, good)))
			if err != nil {
				t.Fatalf("batch: err = %v", err)
			}
			if len(b.Entries) != 3 || b.Entries[0].Err != nil || b.Entries[2].Err != nil {
				t.Fatalf("batch entries = %+v", b.Entries)
			}
			if !errors.Is(b.Entries[1].Err, tc.err) {
				t.Fatalf("batch entry 1 Err = %v, want %v", b.Entries[1].Err, tc.err)
			}
			if b.Entries[1].Interaction.Kind != KindUnknown {
				t.Errorf("refused entry has Kind %v", b.Entries[1].Interaction.Kind)
			}
		})
	}
}

func TestParseBundleAbsoluteURL(t *testing.T) {
	c, err := New(Config{Base: "/fhir", BaseURL: "https://ehr.example.org/fhir"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		url  string
		kind Kind
		id   string
		err  error
	}{
		{url: "https://ehr.example.org/fhir/Patient/1", kind: Read, id: "1"},
		{url: "https://ehr.example.org/fhir/Observation?patient=1", kind: SearchType},
		{url: "https://ehr.example.org/fhir?_type=Patient", kind: SearchSystem},
		{url: "Patient/2", kind: Read, id: "2"},
		{url: "https://ehr.example.org/fhirx/Patient/1", err: ErrOutsideBase},
		{url: "https://ehr.example.org/Patient/1", err: ErrOutsideBase},
		{url: "https://other.example.org/fhir/Patient/1", err: ErrOutsideBase},
		{url: "http://ehr.example.org/fhir/Patient/1", err: ErrOutsideBase},
		{url: "https://ehr.example.org.evil/fhir/Patient/1", err: ErrOutsideBase},
		{url: "https://ehr.example.org/fhir/../admin", err: errNonCanonicalPath},
		{url: "https://ehr.example.org/fhir//Patient/1", err: errNonCanonicalPath},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			b, err := c.ParseBundle([]byte(bundleJSON("batch", entryJSON("GET", tc.url, ""))))
			if err != nil {
				t.Fatal(err)
			}
			e := b.Entries[0]
			if tc.err != nil {
				if !errors.Is(e.Err, tc.err) {
					t.Fatalf("Err = %v, want %v", e.Err, tc.err)
				}
				return
			}
			if e.Err != nil || e.Interaction.Kind != tc.kind || e.Interaction.ID != tc.id {
				t.Fatalf("got %v %q (%v), want %v %q", e.Interaction.Kind, e.Interaction.ID, e.Err, tc.kind, tc.id)
			}
		})
	}
}

func TestParseBundleLimits(t *testing.T) {
	c, err := New(Config{MaxBundleEntries: 2, MaxBundleBytes: 400})
	if err != nil {
		t.Fatal(err)
	}
	e := entryJSON("GET", "Patient/1", "")
	if _, err := c.ParseBundle([]byte(bundleJSON("batch", e, e))); err != nil {
		t.Fatalf("2 entries: %v", err)
	}
	if _, err := c.ParseBundle([]byte(bundleJSON("batch", e, e, e))); !errors.Is(err, errTooLarge) {
		t.Fatalf("3 entries: err = %v", err)
	}
	big := bundleJSON("batch", entryJSON("POST", "Patient", `{"resourceType":"Patient","text":"`+strings.Repeat("x", 400)+`"}`))
	if _, err := c.ParseBundle([]byte(big)); !errors.Is(err, errTooLarge) {
		t.Fatalf("big body: err = %v", err)
	}
	empty, err := ParseBundle([]byte(`{"resourceType":"Bundle","type":"batch"}`))
	if err != nil || len(empty.Entries) != 0 || empty.Kind != Batch {
		t.Fatalf("no entries: %+v, %v", empty, err)
	}
	empty, err = ParseBundle([]byte(bundleJSON("transaction")))
	if err != nil || len(empty.Entries) != 0 || empty.Kind != Transaction {
		t.Fatalf("empty entries: %+v, %v", empty, err)
	}
}

// TestParseBundleNamesTheMember checks that a refusal says which member
// broke the rules, so a client can fix its request.
func TestParseBundleNamesTheMember(t *testing.T) {
	for body, want := range map[string]string{
		`{"resourceType":"Bundle","type":"batch","Entry":[]}`:                                   `"Entry"`,
		bundleJSON("batch", `{"request":{"method":"GET","url":"Patient/1","IfNoneExist":"x"}}`): `"IfNoneExist"`,
		bundleJSON("batch", `{"request":{"method":"GET","url":"Patient/1","foo":"x"}}`):         `Bundle.entry[0].request: unknown member "foo"`,
		bundleJSON("batch", `{"request":{"method":"GET","url":"Patient/1","url":"x"}}`):         `"url" appears more than once`,
	} {
		_, err := ParseBundle([]byte(body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseBundle(%s) = %v, want it to name %s", body, err, want)
		}
	}
}
