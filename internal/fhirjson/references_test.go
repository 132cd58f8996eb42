package fhirjson

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// pruneRefs is the specification of Options.References, applied to a whole
// decoded document: keep the top-level resourceType and id, every member
// named "reference" (its value pruned alike), and the objects and arrays
// that lead to one; drop every other scalar, null and everything left
// empty.
func pruneRefs(v any, depth int, keep bool) any {
	switch v := v.(type) {
	case map[string]any:
		var out map[string]any
		for k, c := range v {
			if p := pruneRefs(c, depth+1, k == "reference" || depth == 1 && (k == "resourceType" || k == "id")); p != nil {
				if out == nil {
					out = map[string]any{}
				}
				out[k] = p
			}
		}
		if out == nil {
			return nil
		}
		return out
	case []any:
		var out []any
		for _, c := range v {
			if p := pruneRefs(c, depth+1, false); p != nil {
				out = append(out, p)
			}
		}
		if out == nil {
			return nil
		}
		return out
	case nil:
		return nil
	}
	if keep {
		return v
	}
	return nil
}

// checkReferences decodes data both ways and fails unless References
// returns exactly the pruned whole document, or exactly the same error.
func checkReferences(t *testing.T, data []byte, opt Options) {
	t.Helper()
	full, ferr := Decode(data, opt)
	ropt := opt
	ropt.References = true
	refs, rerr := Decode(data, ropt)
	if ferr != nil || rerr != nil {
		var fe, re *Error
		if !errors.As(ferr, &fe) || !errors.As(rerr, &re) || *fe != *re {
			t.Fatalf("%q: whole document: %v; References: %v", data, ferr, rerr)
		}
		return
	}
	want, _ := pruneRefs(full, 1, false).(map[string]any)
	if want == nil {
		want = map[string]any{}
	}
	if !reflect.DeepEqual(refs, want) {
		t.Fatalf("%q: References = %#v, want %#v", data, refs, want)
	}
}

var referencesDocs = []string{
	`{}`,
	`{"resourceType":"Observation","id":"o1","status":"final","subject":{"reference":"Patient/123"},"valueQuantity":{"value":95.5,"unit":"mg/dL"}}`,
	`{"resourceType":"Observation","id":null,"subject":{"reference":null},"performer":[{"reference":"Patient/1"},{"display":"x"},"s",1,[{"reference":"Patient/2"}],[]]}`,
	`{"resourceType":"Patient","id":"p","link":[{"other":{"reference":"Patient/9"},"type":"seealso"}],"contained":[{"resourceType":"Patient","id":"c","link":[{"other":{"reference":"Patient/8"}}]}]}`,
	`{"resourceType":"X","extension":[{"url":"u","valueReference":{"reference":"Patient/7","display":"d"}}],"unknownThing":{"deeper":{"reference":{"reference":"Patient/6"}}}}`,
	`{"reference":["Patient/5",{"reference":"Patient/4"}],"id":1,"resourceType":true}`,
	`{"nested":{"id":"not top","resourceType":"not top"},"reference":{"x":1}}`,
	`{"a":{"reference":false},"b":{"reference":1.5e3},"c":{"reference":{}}}`,
	`{"\u0072eference":"Patient/3","weird\u0020":{"reference":"Patient/2"}}`,
	`{"a0":1,"a1":1,"a2":1,"a3":1,"a4":1,"a5":1,"a6":1,"a7":1,"a8":1,"a9":1,"b0":1,"b1":1,"b2":1,"b3":1,"b4":1,"b5":1,"b6":1,"reference":"Patient/1"}`,
	`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation","id":"o","subject":{"reference":"Patient/1"}}}]}`,
}

func TestDecodeReferences(t *testing.T) {
	for _, doc := range referencesDocs {
		for _, opt := range []Options{{}, {Mode: FHIR}, {MaxDepth: MaxReadDepth}, {Float64: true}} {
			checkReferences(t, []byte(doc), opt)
		}
	}
	m, err := Decode([]byte(referencesDocs[1]), Options{References: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"resourceType": "Observation", "id": "o1", "subject": map[string]any{"reference": "Patient/123"}}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("References = %#v", m)
	}
}

// TestDecodeReferencesRefuses: References reads under exactly the same
// rules, with the same errors, as a whole-document decode.
func TestDecodeReferencesRefuses(t *testing.T) {
	deep := strings.Repeat(`{"a":`, MaxWriteDepth+1) + "1" + strings.Repeat("}", MaxWriteDepth+1)
	for _, doc := range []string{
		`[]`, ``, "\xef\xbb\xbf{}", `{} {}`, `{"a":1,}`, `{"a":[1,]}`,
		`{"a":1,"a":2}`, `{"x":{"a":1,"A":2}}`, `{"entry":[],"Entry":[]}`,
		`{"url":"a","\u0075rl":"b"}`, `{"x":{"unknownName":1,"unknown\u004eame":2}}`,
		`{"x":{"unknownName":"\u0041","unknownName":2}}`,
		`{"x":{"a0":1,"a1":1,"a2":1,"a3":1,"a4":1,"a5":1,"a6":1,"a7":1,"a8":1,"a9":1,"b0":1,"b1":1,"b2":1,"b3":1,"b4":1,"b5":1,"b6":1,"b7":1,"B7":1}}`,
		`{"ſubject":{}}`, "{\"a\":\"\xff\"}", "{\"a\xc3\":1}", `{"a":"\ud800"}`, "{\"a\":\"\x01\"}",
		`{"a":"\x"}`, `{"a":01}`, `{"a":1.}`, `{"a":1e}`, `{"a":tru}`, `{"a":1e999}`, deep,
		`{"Subject":{}}`, `{"rEference":"Patient/1"}`, `{"a b":1}`, `{"":1}`,
		`{"entry":[{},{"request":{"method":"GET","Url":"x"}}]}`,
	} {
		for _, opt := range []Options{{}, {Mode: FHIR}, {Float64: true}} {
			checkReferences(t, []byte(doc), opt)
		}
		if _, err := Decode([]byte(doc), Options{Mode: FHIR, Float64: true, References: true}); err == nil {
			t.Errorf("References accepted %q", doc)
		}
	}
}

// TestDecodeReferencesAllocs: a resource with one reference costs a handful
// of allocations, however many other elements it has.
func TestDecodeReferencesAllocs(t *testing.T) {
	doc := []byte(`{"resourceType":"Observation","id":"o1","meta":{"versionId":"1","lastUpdated":"2024-01-01T00:00:00Z"},` +
		`"status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],` +
		`"code":{"coding":[{"system":"http://loinc.org","code":"2339-0","display":"Glucose"}]},"subject":{"reference":"Patient/123"},` +
		`"effectiveDateTime":"2024-01-01T10:00:00Z","valueQuantity":{"value":95.5,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"}}`)
	n := testing.AllocsPerRun(100, func() {
		if _, err := Decode(doc, Options{MaxDepth: MaxReadDepth, References: true}); err != nil {
			t.Fatal(err)
		}
	})
	// Two maps, three strings: at most 2 allocations each.
	if n > 10 {
		t.Fatalf("%v allocations", n)
	}
}

// FuzzDecodeReferences: for any input, References returns exactly the
// pruned whole document, or exactly the same error.
func FuzzDecodeReferences(f *testing.F) {
	for _, s := range referencesDocs {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	for _, s := range []string{`{"a":1,"A":2}`, `{"x":{"unknownName":1,"unknown\u004eame":2}}`, `{"a":"\ud800"}`} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, fhir bool) {
		opt := Options{}
		if fhir {
			opt.Mode = FHIR
		}
		checkReferences(t, data, opt)
	})
}

// TestErrorPathDeep: the path of an error deeper than the levels the
// decoder keeps without allocating.
func TestErrorPathDeep(t *testing.T) {
	var want []string
	doc := ""
	for i := range 20 {
		name := "a" + strings.Repeat("b", i)
		want = append(want, name, "[1]")
		doc += `{"` + name + `":[0,`
	}
	doc += `{"x":1,"x":2}` + strings.Repeat("]}", 20)
	path := strings.Join(want, ".")
	path = strings.ReplaceAll(path, ".[", "[")
	for _, refs := range []bool{false, true} {
		_, err := Decode([]byte(doc), Options{References: refs})
		var e *Error
		if !errors.As(err, &e) {
			t.Fatal(err)
		}
		if wantPath := path; len(wantPath) > 200 {
			if e.Path != "…"+wantPath[len(wantPath)-200:] {
				t.Fatalf("References %v: path %q, want the end of %q", refs, e.Path, wantPath)
			}
		} else if e.Path != wantPath {
			t.Fatalf("References %v: path %q, want %q", refs, e.Path, wantPath)
		}
	}
}

// TestStopMask: the lowest byte stopMask marks is the first stop byte of
// the word, for every stop byte at every position after any plain bytes,
// with anything after it; a word of plain bytes is not marked.
func TestStopMask(t *testing.T) {
	plain := []byte{'a', ' ', '~', 0x7f, '!', '#', '[', ']', '0', 0x21, 0x23, 0x5b, 0x5d}
	for c := 0; c < 256; c++ {
		for pos := range 8 {
			for _, fill := range plain {
				for _, after := range []byte{'a', '"', 0x00, 0x1f, 0x20, 0x21, '\\', 0x80, 0xff} {
					var b [8]byte
					for i := range b {
						b[i] = fill
						if i > pos {
							b[i] = after
						}
					}
					b[pos] = byte(c)
					m := stopMask(binary.LittleEndian.Uint64(b[:]))
					first := 8
					for i, x := range b {
						if strStop[x] {
							first = i
							break
						}
					}
					got := 8
					if m != 0 {
						got = bits.TrailingZeros64(m) >> 3
					}
					if got != first {
						t.Fatalf("%q: first stop byte at %d, stopMask says %d", b, first, got)
					}
				}
			}
		}
	}
	// Random words, biased towards the borders of the stop classes.
	r := rand.New(rand.NewPCG(1, 2))
	special := []byte{0x00, 0x1f, 0x20, 0x21, '"', '#', '[', '\\', ']', 0x7f, 0x80, 0xff, 0x01}
	for range 1 << 20 {
		var b [8]byte
		for i := range b {
			if r.IntN(2) == 0 {
				b[i] = special[r.IntN(len(special))]
			} else {
				b[i] = byte(r.IntN(256))
			}
		}
		first := 8
		for i, x := range b {
			if strStop[x] {
				first = i
				break
			}
		}
		got := 8
		if m := stopMask(binary.LittleEndian.Uint64(b[:])); m != 0 {
			got = bits.TrailingZeros64(m) >> 3
		}
		if got != first {
			t.Fatalf("%q: first stop byte at %d, stopMask says %d", b, first, got)
		}
	}
}

// TestDuplicateDeepKeys: duplicates are found at every level when the
// names of the enclosing objects no longer fit the decoder's first key
// slots, and in every position of a small object.
func TestDuplicateDeepKeys(t *testing.T) {
	level := func(prefix string, inner string) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range 15 {
			fmt.Fprintf(&b, `"%s%d":1,`, prefix, i)
		}
		b.WriteString(`"next":` + inner + "}")
		return b.String()
	}
	for _, dup := range []string{`{"a":1,"A":2}`, `{"x":1,"y":2,"zz":3,"Y":4}`, `{"ab":1,"cd":2,"aB":3}`} {
		doc := level("a", level("b", level("c", level("d", dup))))
		for _, refs := range []bool{false, true} {
			if _, err := Decode([]byte(doc), Options{References: refs}); err == nil || !strings.Contains(err.Error(), "more than once") {
				t.Fatalf("References %v: %s: %v", refs, dup, err)
			}
		}
		ok := level("a", level("b", level("c", level("d", `{"a":1,"b":2}`))))
		if _, err := Decode([]byte(ok), Options{}); err != nil {
			t.Fatal(err)
		}
	}
}
