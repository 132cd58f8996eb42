package fhirjson

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"reflect"
	"slices"
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

// slowRefs is Decode with Options.References in Plain mode without the
// fast path.
func slowRefs(data []byte) (map[string]any, error) {
	v, err := decodeTop(data, Options{MaxDepth: MaxReadDepth, References: true}, '{')
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

// checkFast fails unless the fast path, when it answers, answers exactly
// what the general decoder does, and declines every document the general
// decoder refuses. It reports whether the fast path answered.
func checkFast(t *testing.T, data []byte) bool {
	t.Helper()
	fast, ok := decodeRefsFast(data, MaxReadDepth)
	slow, err := slowRefs(data)
	if !ok {
		return false
	}
	if err != nil {
		t.Fatalf("%q: the fast path accepted a document the decoder refuses (%v): %#v", data, err, fast)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%q: fast path %#v, decoder %#v", data, fast, slow)
	}
	return true
}

// TestRefsFastAgrees: the fast path answers the common documents (plain
// names, escaped and non-ASCII values) with the decoder's result, and
// declines what it leaves to the decoder.
func TestRefsFastAgrees(t *testing.T) {
	answered := []string{
		`{}`, ` { } `, "{\n\t\"a\" : [ 1 , -0.5e+3 , true , false , null , \"x\" ] \r}",
		`{"resourceType":"Observation","id":"o1","status":"final","subject":{"reference":"Patient/123"},"valueQuantity":{"value":95.5,"unit":"mg/dL"}}`,
		`{"resourceType":"Patient","id":"p","name":[{"family":"M\u00fcller \"the\" \ud83d\ude00"}],"text":{"div":"<div>a\nb\/c</div>"}}`,
		`{"resourceType":"Patient","id":"p","name":[{"family":"Müller 😀"}],"link":[{"other":{"reference":"Patient/9"}}]}`,
		`{"reference":"Patient/ü","id":1,"resourceType":true,"x":{"reference":2,"y":{"reference":false}}}`,
		`{"a":[[],[{}],[{"reference":"Patient/1"}]],"b":{"c":{"d":{"reference":null}}}}`,
		`{"x":{"a":1,"b":2},"y":{"a":1,"b":2}}`,
	}
	for _, doc := range answered {
		if !checkFast(t, []byte(doc)) {
			t.Errorf("the fast path declined %q", doc)
		}
	}
	declined := []string{
		`{"\u0072eference":"Patient/3"}`, // escaped name
		`{"naïve":1}`,                    // non-ASCII name
		`{"reference":"Patient\/3"}`,     // kept string with an escape
		`{"a":1,"A":2}`, `{"a":1,"a":2}`, `{"x":{"ab":1,"aB":2}}`,
		`[]`, ``, "\xef\xbb\xbf{}", `{} {}`, `{"a":1,}`, `{"a":[1,]}`, `{"a":01}`, `{"a":1.}`, `{"a":1e}`,
		`{"a":-}`, `{"a":tru}`, `{"a":nul}`, "{\"a\":\"\xff\"}", "{\"a\":\"\x01\"}", `{"a":"\ud800"}`,
		`{"a":"\udc00\ud800"}`, `{"a":"\ud800\u0041"}`, `{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"abc`, `{"a"`, `{"a":`,
		`{"a":1 "b":2}`, `{"a" 1}`, `{a:1}`, `{"a":[1 2]}`, `{"a":{]}`,
		strings.Repeat(`{"a":`, MaxReadDepth) + "1" + strings.Repeat("}", MaxReadDepth),
		strings.Repeat(`{"a":`, MaxReadDepth-1) + "[1]" + strings.Repeat("}", MaxReadDepth-1),
		`{` + strings.Repeat(`"k`+"\x00"+`":1,`, 0) + func() string {
			var b strings.Builder
			for i := range fastMaxMembers + 1 {
				fmt.Fprintf(&b, `"k%d":%d,`, i, i)
			}
			return b.String()
		}() + `"z":0}`,
	}
	for _, doc := range declined {
		if checkFast(t, []byte(doc)) {
			t.Errorf("the fast path answered %q", doc)
		}
	}
	// Nesting: the fast path reads as deep as its name stack goes, and
	// leaves deeper documents to the decoder.
	nested := func(n int) []byte {
		return []byte(strings.Repeat(`{"a":`, n) + `{"reference":"Patient/1"}` + strings.Repeat("}", n))
	}
	if !checkFast(t, nested(len(fastRefs{}.keys)-1)) {
		t.Error("the fast path declined a document its name stack holds")
	}
	if checkFast(t, nested(len(fastRefs{}.keys))) {
		t.Error("the fast path answered a document deeper than its name stack")
	}
	if m, err := Decode(nested(MaxReadDepth-2), Options{MaxDepth: MaxReadDepth, References: true}); err != nil || len(m) != 1 {
		t.Errorf("the deepest document allowed: %v, %v", m, err)
	}
}

// FuzzRefsFast: whenever the fast path answers, the general decoder
// accepts the document and returns the same result.
func FuzzRefsFast(f *testing.F) {
	for _, s := range referencesDocs {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"resourceType":"Patient","id":"p","name":[{"family":"M\u00fcller \ud83d\ude00"}],"x":[[{"reference":"Patient/1"}]]}`))
	f.Add([]byte(`{"a":1,"A":{"reference":"x"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFast(t, data)
	})
}

// flatten lists what ReadRefs must find in m, a References result: the
// "reference" strings reached through objects and the objects of arrays,
// as "path|value", sorted; ok is false when m holds something RefDoc
// cannot (a kept value that is not a string, an array in an array).
func flatten(m map[string]any) (rt, id string, refs []string, ok bool) {
	ok = true
	var walk func(v any, path []string, inArray bool)
	walk = func(v any, path []string, inArray bool) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if k == "reference" {
					s, isString := c.(string)
					if !isString {
						ok = false
						continue
					}
					refs = append(refs, strings.Join(path, ".")+"|"+s)
					continue
				}
				walk(c, append(path[:len(path):len(path)], k), false)
			}
		case []any:
			if inArray {
				ok = false
			}
			for _, c := range v {
				walk(c, path, true)
			}
		default:
			ok = false // a kept scalar that is not a reference
		}
	}
	for k, c := range m {
		switch k {
		case "resourceType", "id":
			s, isString := c.(string)
			if !isString {
				ok = false
			}
			if k == "id" {
				id = s
			} else {
				rt = s
			}
		case "reference":
			walk(map[string]any{k: c}, nil, false)
		default:
			walk(c, []string{k}, false)
		}
	}
	slices.Sort(refs)
	return rt, id, refs, ok
}

// checkFlat fails unless ReadRefs, when it answers, finds exactly what the
// References decoder keeps; it reports whether ReadRefs answered.
func checkFlat(t *testing.T, data []byte) bool {
	t.Helper()
	var d RefDoc
	answered := ReadRefs(data, MaxReadDepth, &d)
	m, err := slowRefs(data)
	if !answered {
		return false
	}
	if err != nil {
		t.Fatalf("%q: ReadRefs accepted a document the decoder refuses: %v", data, err)
	}
	rt, id, want, ok := flatten(m)
	if !ok {
		t.Fatalf("%q: ReadRefs answered for a document it cannot hold: %#v", data, m)
	}
	var got []string
	for path, v := range d.All {
		got = append(got, strings.Join(path, ".")+"|"+v)
	}
	slices.Sort(got)
	if d.ResourceType != rt || d.ID != id || !slices.Equal(got, want) || d.Len() != len(got) {
		t.Fatalf("%q: ReadRefs found %q %q %q, want %q %q %q", data, d.ResourceType, d.ID, got, rt, id, want)
	}
	return true
}

func TestReadRefs(t *testing.T) {
	for _, doc := range []string{
		`{}`,
		`{"resourceType":"Observation","id":"o1","status":"final","subject":{"reference":"Patient/123"},"performer":[{"reference":"Practitioner/1"},{"display":"x"},{"reference":"Patient/9"}]}`,
		`{"resourceType":"Patient","id":"p","link":[{"other":{"reference":"Patient/9"},"type":"seealso"}],"contained":[{"resourceType":"Patient","id":"c","link":[{"other":{"reference":"Patient/8"}}]}]}`,
		`{"reference":"Patient/top","id":null,"resourceType":null,"a":{"b":{"c":[{"d":{"reference":"Patient/deep"}}]}},"e":{"reference":null}}`,
		`{"resourceType":"Patient","name":[{"family":"M\u00fcller"}],"managingOrganization":{"reference":"Organization/ü"}}`,
		`{"a":[],"b":[1,"x",true,null],"c":{},"d":[{}]}`,
	} {
		if !checkFlat(t, []byte(doc)) {
			t.Errorf("ReadRefs declined %q", doc)
		}
	}
	var d RefDoc
	if !ReadRefs([]byte(`{"resourceType":"Observation","subject":{"reference":"Patient/1"},"focus":[{"reference":"Group/2"}]}`), MaxReadDepth, &d) ||
		d.Len() != 2 {
		t.Fatalf("ReadRefs: %d references", d.Len())
	}
	if p, v := d.Ref(1); !slices.Equal(p, []string{"focus"}) || v != "Group/2" {
		t.Fatalf("Ref(1) = %q, %q", p, v)
	}
	many := func(n int) string {
		var b strings.Builder
		b.WriteString(`{"resourceType":"Group","member":[`)
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"entity":{"reference":"Patient/%d"}}`, i)
		}
		b.WriteString("]}")
		return b.String()
	}
	if !checkFlat(t, []byte(many(len(d.refs)))) {
		t.Error("ReadRefs declined as many references as it holds")
	}
	for _, doc := range []string{
		many(len(d.refs) + 1),               // more references than a RefDoc holds
		`{"resourceType":1}`, `{"id":true}`, // not strings
		`{"resourceType":"A","id":{"x":1}}`,             // an object
		`{"a":{"reference":{"reference":"Patient/1"}}}`, // a CodeableReference
		`{"a":{"reference":["Patient/1"]}}`, `{"a":{"reference":1}}`, `{"reference":false}`,
		`{"a":[[{"reference":"Patient/1"}]]}`, `{"a":[[]]}`, // arrays in arrays
		`{"a":1,"A":2}`, `{"reference":"Patient\/1"}`, `{"\u0061":1}`, `[]`, `{`,
	} {
		if checkFlat(t, []byte(doc)) {
			t.Errorf("ReadRefs answered %q", doc)
		}
		// A declined document leaves nothing behind.
		d := RefDoc{ResourceType: "stale", ID: "stale"}
		if ReadRefs([]byte(doc), MaxReadDepth, &d) || d.ResourceType != "" || d.ID != "" || d.Len() != 0 {
			t.Errorf("%q: declined, RefDoc left with %q %q and %d references", doc, d.ResourceType, d.ID, d.Len())
		}
	}
}

// FuzzReadRefs: whenever ReadRefs answers, it finds exactly what the
// References decoder keeps.
func FuzzReadRefs(f *testing.F) {
	for _, s := range referencesDocs {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"resourceType":"Patient","link":[{"other":{"reference":"Patient/9"}}],"a":[{"b":[{"reference":"x"}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFlat(t, data)
	})
}
