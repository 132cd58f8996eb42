package fhirjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeAccepts(t *testing.T) {
	for name, doc := range map[string]string{
		"empty":      `{}`,
		"resource":   `{"resourceType":"Observation","id":"o1","subject":{"reference":"Patient/123"},"valueQuantity":{"value":95.5}}`,
		"primitive":  `{"resourceType":"Patient","birthDate":"1970","_birthDate":{"extension":[]}}`,
		"escapes":    `{"text":"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00"}`,
		"utf8":       "{\"text\":\"caf\u00e9 \U0001F600\"}",
		"numbers":    `{"a":[0,-0,1.5,-2e10,3E+2,4e-2,12345678901234567890]}`,
		"literals":   `{"a":[true,false,null]}`,
		"whitespace": " \t\r\n{ \"a\" : [ 1 , { } ] } \n",
		"bigObject":  `{"a0":1,"a1":1,"a2":1,"a3":1,"a4":1,"a5":1,"a6":1,"a7":1,"a8":1,"a9":1,"b0":1,"b1":1,"b2":1,"b3":1,"b4":1,"b5":1,"b6":1,"b7":1,"b8":1,"b9":1}`,
	} {
		t.Run(name, func(t *testing.T) {
			got, err := Decode([]byte(doc), Options{Mode: FHIR})
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			dec := json.NewDecoder(strings.NewReader(doc))
			dec.UseNumber()
			var want map[string]any
			if err := dec.Decode(&want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Decode = %#v, encoding/json = %#v", got, want)
			}
		})
	}
}

func TestDecodeRefuses(t *testing.T) {
	deep := strings.Repeat(`{"a":`, MaxWriteDepth+1) + "1" + strings.Repeat("}", MaxWriteDepth+1)
	deepArr := `{"a":` + strings.Repeat("[", MaxWriteDepth) + strings.Repeat("]", MaxWriteDepth) + "}"
	for _, c := range []struct{ name, doc, want string }{
		{"not object", `[]`, "object was expected"},
		{"string", `"x"`, "object was expected"},
		{"empty", ``, "object was expected"},
		{"bom", "\xef\xbb\xbf{}", "byte order mark"},
		{"trailing", `{} {}`, "data after"},
		{"trailing garbage", `{}x`, "data after"},
		{"comment", `{/* c */}`, "member name was expected"},
		{"line comment", "{\"a\":1 // c\n}", "expected"},
		{"single quotes", `{'a':1}`, "member name was expected"},
		{"trailing comma", `{"a":1,}`, "member name was expected"},
		{"trailing comma array", `{"a":[1,]}`, "unexpected character"},
		{"dup exact", `{"a":1,"a":2}`, "more than once"},
		{"dup case", `{"entry":[],"Entry":[]}`, "not a FHIR element name"},
		{"dup case plain", `{"entry":[],"eNTRY":[]}`, "case-sensitive"},
		{"dup case big", `{"a0":1,"a1":1,"a2":1,"a3":1,"a4":1,"a5":1,"a6":1,"a7":1,"a8":1,"a9":1,"b0":1,"b1":1,"b2":1,"b3":1,"b4":1,"b5":1,"b6":1,"b7":1,"b7":1}`, "more than once"},
		{"dup escaped", `{"url":"a","\u0075rl":"b"}`, "more than once"},
		{"dup nested", `{"entry":[{"request":{"url":"a","url":"b"}}]}`, "more than once"},
		{"non-ascii name", `{"ſubject":{}}`, "not ASCII"},
		{"kelvin name", `{"\u212Aey":1}`, "not ASCII"},
		{"invalid utf8 value", "{\"a\":\"\xff\"}", "invalid UTF-8"},
		{"invalid utf8 name", "{\"a\xc3\":1}", "invalid UTF-8"},
		{"overlong utf8", "{\"a\":\"\xc0\xaf\"}", "invalid UTF-8"},
		{"surrogate utf8", "{\"a\":\"\xed\xa0\x80\"}", "invalid UTF-8"},
		{"lone high surrogate", `{"a":"\ud800"}`, "surrogate"},
		{"lone low surrogate", `{"a":"\udc00"}`, "surrogate"},
		{"bad pair", `{"a":"\ud800\u0041"}`, "surrogate"},
		{"control char", "{\"a\":\"\x01\"}", "control character"},
		{"bad escape", `{"a":"\x"}`, "invalid escape"},
		{"bad hex", `{"a":"\u12g4"}`, "\\u escape"},
		{"unterminated", `{"a":"b`, "unterminated"},
		{"bad number", `{"a":01}`, "expected"},
		{"bad number dot", `{"a":1.}`, "invalid number"},
		{"bad number exp", `{"a":1e}`, "invalid number"},
		{"plus number", `{"a":+1}`, "unexpected character"},
		{"nan", `{"a":NaN}`, "unexpected character"},
		{"bad literal", `{"a":tru}`, "invalid literal"},
		{"deep objects", deep, "nesting deeper"},
		{"deep arrays", deepArr, "nesting deeper"},
		{"upper first", `{"Subject":{}}`, "not a FHIR element name"},
		{"all caps", `{"ENTRY":[]}`, "not a FHIR element name"},
		{"case variant", `{"rEference":"Patient/1"}`, "case-sensitive"},
		{"case variant lower", `{"ifnoneexist":"x"}`, "case-sensitive"},
		{"case variant escaped", `{"\u0052eference":"Patient/1"}`, "not a FHIR element name"},
		{"case variant primitive ext", `{"_Reference":{}}`, "not a FHIR element name"},
		{"dash", `{"a-b":1}`, "not a FHIR element name"},
		{"space", `{"a b":1}`, "not a FHIR element name"},
		{"empty name", `{"":1}`, "not a FHIR element name"},
		{"underscore only", `{"_":1}`, "not a FHIR element name"},
		{"resourcetype variant", `{"resourcetype":"Patient"}`, "case-sensitive"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode([]byte(c.doc), Options{Mode: FHIR})
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Decode(%q) = %v, want an *Error", c.doc, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Decode(%q) = %v, want %q", c.doc, err, c.want)
			}
		})
	}
}

func TestDecodeDepthBoundary(t *testing.T) {
	for _, depth := range []int{1, 2, 32, MaxWriteDepth} {
		doc := strings.Repeat(`{"a":`, depth-1) + "{}" + strings.Repeat("}", depth-1)
		if _, err := Decode([]byte(doc), Options{MaxDepth: depth}); err != nil {
			t.Errorf("depth %d at limit %d: %v", depth, depth, err)
		}
		if _, err := Decode([]byte(doc), Options{MaxDepth: depth - 1}); depth > 1 && err == nil {
			t.Errorf("depth %d accepted at limit %d", depth, depth-1)
		}
	}
}

func TestDecodePlainMode(t *testing.T) {
	m, err := Decode([]byte(`{"Sub":1,"https://x/claim":"v","exp":1.5e9}`), Options{Float64: true})
	if err != nil {
		t.Fatal(err)
	}
	if m["exp"] != 1.5e9 || m["Sub"] != 1.0 {
		t.Fatalf("got %#v", m)
	}
	for _, doc := range []string{`{"sub":"a","SUB":"b"}`, `{"Entry":[],"entry":[]}`, `{"url":1,"a0":1,"a1":1,"a2":1,"a3":1,"a4":1,"a5":1,"a6":1,"a7":1,"a8":1,"a9":1,"b0":1,"b1":1,"b2":1,"b3":1,"b4":1,"b5":1,"URL":2}`} {
		if _, err := Decode([]byte(doc), Options{}); err == nil || !strings.Contains(err.Error(), "more than once") {
			t.Fatalf("case-variant duplicate in %s: %v", doc, err)
		}
	}
	if _, err := Decode([]byte(`{"a":1e999}`), Options{Float64: true}); err == nil {
		t.Fatal("out-of-range number accepted")
	}
}

func TestErrorPath(t *testing.T) {
	_, err := Decode([]byte(`{"entry":[{},{"request":{"method":"GET","Url":"x"}}]}`), Options{Mode: FHIR})
	var e *Error
	if !errors.As(err, &e) || e.Path != "entry[1].request" || !strings.Contains(e.Msg, `"Url"`) {
		t.Fatalf("err = %#v", err)
	}
}

func TestOnly(t *testing.T) {
	obj := map[string]any{"method": "GET", "url": "x", "_url": map[string]any{}}
	if err := Only(obj, "entry[0].request", "method", "url"); err != nil {
		t.Fatal(err)
	}
	obj["ifNoneExist"] = "x"
	err := Only(obj, "entry[0].request", "method", "url")
	if err == nil || !strings.Contains(err.Error(), `unknown member "ifNoneExist"`) || !strings.Contains(err.Error(), "entry[0].request") {
		t.Fatalf("Only = %v", err)
	}
	if err := Only(map[string]any{"_foo": 1}, "x", "url"); err == nil {
		t.Fatal("extension of an unknown primitive accepted")
	}
}

// FuzzDecode checks that Decode never panics, that what it accepts
// encoding/json reads as the same value, and that no accepted document
// holds names a case-insensitive decoder could confuse.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,"x",{"b":null}]}`, `{"entry":[{"request":{"url":"x"}}]}`,
		`{"a":"\ud83d\ude00"}`, `{"a":1,"A":2}`, "\xef\xbb\xbf{}", `{"Subject":{}}`, `{"a":"\u0000"}`} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, fhir bool) {
		opt := Options{}
		if fhir {
			opt.Mode = FHIR
		}
		got, err := Decode(data, opt)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var want map[string]any
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("accepted %q, encoding/json: %v", data, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Decode(%q) = %#v, encoding/json = %#v", data, got, want)
		}
		var check func(v any)
		check = func(v any) {
			switch v := v.(type) {
			case map[string]any:
				seen := map[string]bool{}
				for k, c := range v {
					lk := strings.ToLower(k)
					if seen[lk] {
						t.Fatalf("accepted case-variant names in %q", data)
					}
					seen[lk] = true
					if fhir && fhirName(k) != "" {
						t.Fatalf("accepted bad name %q", k)
					}
					check(c)
				}
			case []any:
				for _, c := range v {
					check(c)
				}
			}
		}
		check(got)
	})
}

func benchDoc() []byte {
	var entries []string
	for i := range 100 {
		entries = append(entries, fmt.Sprintf(`{"fullUrl":"https://ehr.example.org/fhir/Observation/o%d","resource":{"resourceType":"Observation","id":"o%d","meta":{"versionId":"1","lastUpdated":"2024-01-01T00:00:00Z"},"status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"2339-0","display":"Glucose"}]},"subject":{"reference":"Patient/123"},"effectiveDateTime":"2024-01-01T10:00:00Z","valueQuantity":{"value":95.5,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"}},"search":{"mode":"match"}}`, i, i))
	}
	return []byte(`{"resourceType":"Bundle","type":"searchset","total":100,"entry":[` + strings.Join(entries, ",") + `]}`)
}

// BenchmarkDecode compares Decode with encoding/json on a 100-entry search
// Bundle, in the same run.
func BenchmarkDecode(b *testing.B) {
	doc := benchDoc()
	b.Run("baseline/encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(doc)))
		for b.Loop() {
			dec := json.NewDecoder(bytes.NewReader(doc))
			dec.UseNumber()
			var v map[string]any
			if err := dec.Decode(&v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fhirjson", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(doc)))
		for b.Loop() {
			if _, err := Decode(doc, Options{Mode: FHIR, MaxDepth: MaxReadDepth}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestDecodeArray(t *testing.T) {
	a, err := DecodeArray([]byte(`[{"op":"add","path":"/a","value":1}]`), Options{Mode: FHIR})
	if err != nil || len(a) != 1 {
		t.Fatalf("DecodeArray = %v, %v", a, err)
	}
	for _, doc := range []string{`{}`, `[{"op":"add","PATH":"/a"}]`, `[{"op":"add","path":"/a","path":"/b"}]`, `[] []`, `[`} {
		if _, err := DecodeArray([]byte(doc), Options{Mode: FHIR}); err == nil {
			t.Errorf("DecodeArray(%s) accepted", doc)
		}
	}
}
