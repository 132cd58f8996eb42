package fhirjson

import (
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// The fast paths of the guard's verified reads: ReadRefs (a resource read
// flat, no map built) and the fast path of Options.References in Plain
// mode (decodeRefsFast). One pass over the document, no path kept, no error
// built. They answer only when the document is valid and its member names
// are plain (ASCII, no escape); for anything else (every error, an escaped
// or non-ASCII name, an escaped kept string, an object of more than
// fastMaxMembers members, more than len(fastRefs.keys) open names) they
// decline and the general decoder reads the document again, so every
// error, its offset and its path are the general decoder's. When they
// answer, the result equals the general decoder's (TestRefsFastAgrees,
// TestReadRefs and their fuzz targets compare them).

// fastMaxMembers is the largest object the fast path reads (duplicates are
// found by a scan of the object's names).
const fastMaxMembers = 32

type fastRefs struct {
	data     []byte
	maxDepth int
	keys     [64]string // the names of the objects being read, innermost last
	nk       int

	// flat, when not nil, receives the references instead of maps
	// (ReadRefs).
	flat     *RefDoc
	overflow bool // more references or path names than flat holds
}

// RefDoc is a resource reduced to what a reference check reads, without
// maps: its top-level resourceType and id, and each "reference" member
// with the names of the members leading to the object that holds it
// (array elements add no name), in document order. ReadRefs fills it; it
// holds at most len(names) path names and len(refs) references in all
// (fixed arrays: a RefDoc is reused whole, see Reset).
type RefDoc struct {
	ResourceType string // "" when absent
	ID           string // "" when absent

	names  [64]string // the paths of refs, one after the other
	refs   [32]flatRef
	nn, nr int

	// While ReadRefs reads: the names leading to the current value.
	path [32]string
	np   int
}

type flatRef struct {
	from, to int // names[from:to] is the path
	value    string
}

// Reset empties d, dropping its views of the document it was read from
// (for a RefDoc kept in a sync.Pool).
func (d *RefDoc) Reset() {
	clear(d.names[:d.nn])
	clear(d.refs[:d.nr])
	clear(d.path[:d.np])
	d.ResourceType, d.ID, d.nn, d.nr, d.np = "", "", 0, 0, 0
}

// Len returns the number of references.
func (d *RefDoc) Len() int { return d.nr }

// Ref returns reference i: the member names leading to the object that
// holds it, and its value.
func (d *RefDoc) Ref(i int) (path []string, value string) {
	r := d.refs[:d.nr][i]
	return d.names[r.from:r.to:r.to], r.value
}

// All yields every reference as Ref does, in document order.
func (d *RefDoc) All(yield func(path []string, value string) bool) {
	for i := range d.nr {
		if !yield(d.Ref(i)) {
			return
		}
	}
}

// ReadRefs reads data as Decode does with Options{Mode: Plain, References:
// true, MaxDepth: maxDepth} and fills d with the same content, flat: what a
// walk over the pruned map finds when it follows objects and the objects
// in arrays. It returns false, leaving the caller to Decode, for every
// document Decode refuses and for those whose pruned map holds anything
// RefDoc does not: a top-level resourceType or id that is not a string, a
// "reference" member whose value is not a string (null is dropped, as
// Decode drops it), an array directly inside an array, more references or
// path names than d holds; and for whatever the fast path leaves to the
// general decoder (escaped or non-ASCII member names, an escaped
// reference, resourceType or id, large or deep objects). The strings of d
// are views of data; when it returns false, d is empty.
func ReadRefs(data []byte, maxDepth int, d *RefDoc) bool {
	d.Reset()
	f := fastRefs{data: data, maxDepth: maxDepth, flat: d}
	i := skipWS(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	if _, i = f.object(i, 1); i < 0 || f.overflow || skipWS(data, i) != len(data) {
		d.Reset()
		return false
	}
	return true
}

// addRef records a reference at the current path.
func (f *fastRefs) addRef(value string) {
	d := f.flat
	if d.nr == len(d.refs) || d.nn+d.np > len(d.names) {
		f.overflow = true
		return
	}
	from := d.nn
	d.nn += copy(d.names[from:], d.path[:d.np])
	d.refs[d.nr] = flatRef{from: from, to: d.nn, value: value}
	d.nr++
}

// decodeRefsFast returns what Decode returns for data with Options{Mode:
// Plain, References: true, MaxDepth: maxDepth}, or false when the general
// decoder must decide.
func decodeRefsFast(data []byte, maxDepth int) (map[string]any, bool) {
	f := fastRefs{data: data, maxDepth: maxDepth}
	i := skipWS(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil, false
	}
	m, i := f.object(i, 1)
	if i < 0 {
		return nil, false
	}
	return m, skipWS(data, i) == len(data)
}

// skipWS returns the index of the first byte at or after i that is not
// JSON white space.
func skipWS(data []byte, i int) int {
	for i < len(data) && data[i] <= ' ' {
		if c := data[i]; c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return i
		}
		i++
	}
	return i
}

// object reads the object at data[i] (an opening brace) at depth, and
// returns what it keeps (nil when nothing, except at depth 1, where the
// map is always made) and the index after it, or -1 to decline.
func (f *fastRefs) object(i, depth int) (map[string]any, int) {
	if depth > f.maxDepth {
		return nil, -1
	}
	data := f.data
	var m map[string]any
	if depth == 1 && f.flat == nil {
		m = make(map[string]any, 4)
	}
	i = skipWS(data, i+1)
	if i < len(data) && data[i] == '}' {
		return m, i + 1
	}
	base := f.nk
	var sigs uint64
	for n := 0; ; n++ {
		// The name: plain ASCII up to the closing quote.
		if i >= len(data) || data[i] != '"' || n == fastMaxMembers || f.nk == len(f.keys) {
			return nil, -1
		}
		end, stop := scanPlain(data, i+1)
		if stop != '"' {
			return nil, -1 // an escape, a byte of 0x80 or above, a control character, the end
		}
		key := viewAt(data, i+1, end)
		if sig := keySig(key); sigs&sig != 0 {
			for j := base; j < f.nk; j++ {
				if asciiEqualFold(f.keys[j], key) {
					return nil, -1
				}
			}
		} else {
			sigs |= sig
		}
		f.keys[f.nk] = key
		f.nk++
		// Compact JSON has no white space: look for the byte first.
		if i = end + 1; i >= len(data) || data[i] != ':' {
			if i = skipWS(data, i); i >= len(data) || data[i] != ':' {
				return nil, -1
			}
		}
		if i++; i < len(data) && data[i] <= ' ' {
			i = skipWS(data, i)
		}
		if i >= len(data) {
			return nil, -1
		}
		keep := key == "reference" || depth == 1 && (key == "resourceType" || key == "id")
		var v any
		switch c := data[i]; c {
		case '"':
			var s string
			if s, i = f.str(i, keep); keep && i >= 0 {
				if f.flat != nil {
					f.flatString(key, depth, s)
				} else {
					v = s
				}
			}
		case '{', '[':
			if d := f.flat; d != nil {
				if keep || d.np == len(d.path) {
					return nil, -1 // a reference, resourceType or id that is not a string; too deep
				}
				d.path[d.np] = key
				d.np++
			}
			if c == '{' {
				var o map[string]any
				if o, i = f.object(i, depth+1); o != nil {
					v = o
				}
			} else {
				var a []any
				if a, i = f.array(i, depth+1); a != nil {
					v = a
				}
			}
			if f.flat != nil {
				f.flat.np--
			}
		default:
			v, i = scalar(data, i, keep)
			if f.flat != nil && v != nil {
				return nil, -1 // a reference, resourceType or id that is a number or a boolean
			}
		}
		if i < 0 {
			return nil, -1
		}
		if v != nil {
			if m == nil {
				m = make(map[string]any, 2)
			}
			m[key] = v
		}
		if i < len(data) && data[i] <= ' ' {
			i = skipWS(data, i)
		}
		if i >= len(data) {
			return nil, -1
		}
		switch data[i] {
		case ',':
			if i++; i < len(data) && data[i] <= ' ' {
				i = skipWS(data, i)
			}
		case '}':
			f.nk = base
			return m, i + 1
		default:
			return nil, -1
		}
	}
}

// array reads the array at data[i] at depth; its scalars are never kept.
func (f *fastRefs) array(i, depth int) ([]any, int) {
	if depth > f.maxDepth {
		return nil, -1
	}
	data := f.data
	var a []any
	i = skipWS(data, i+1)
	if i < len(data) && data[i] == ']' {
		return nil, i + 1
	}
	for {
		if i >= len(data) {
			return nil, -1
		}
		switch data[i] {
		case '"':
			_, i = f.str(i, false)
		case '{':
			var o map[string]any
			if o, i = f.object(i, depth+1); o != nil {
				a = append(a, o)
			}
		case '[':
			if f.flat != nil {
				return nil, -1 // an array in an array
			}
			var e []any
			if e, i = f.array(i, depth+1); e != nil {
				a = append(a, e)
			}
		default:
			_, i = scalar(data, i, false)
		}
		if i < 0 {
			return nil, -1
		}
		if i < len(data) && data[i] <= ' ' {
			i = skipWS(data, i)
		}
		if i >= len(data) {
			return nil, -1
		}
		switch data[i] {
		case ',':
			if i++; i < len(data) && data[i] <= ' ' {
				i = skipWS(data, i)
			}
		case ']':
			return a, i + 1
		default:
			return nil, -1
		}
	}
}

// viewAt is view(data[i:j]) for 0 <= i <= j <= len(data), which the
// caller has established, without checking it again.
func viewAt(data []byte, i, j int) string {
	return unsafe.String((*byte)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(data)), i)), j-i)
}

// scanPlain returns the index of the first byte at or after i that is a
// control character, '"', '\\' or 0x80 and above, and that byte (0 at the
// end of data).
func scanPlain(data []byte, i int) (int, byte) {
	for i+8 <= len(data) {
		if m := stopMask(binary.LittleEndian.Uint64(data[i:])); m != 0 {
			i += bits.TrailingZeros64(m) >> 3
			return i, data[i]
		}
		i += 8
	}
	for i < len(data) {
		if strStop[data[i]] {
			return i, data[i]
		}
		i++
	}
	return i, 0
}

// flatString records a kept string of member key at depth (flat mode).
func (f *fastRefs) flatString(key string, depth int, s string) {
	switch {
	case key == "reference":
		f.addRef(s)
	case key == "resourceType":
		f.flat.ResourceType = s
	default: // "id" at depth 1
		f.flat.ID = s
	}
}

// str reads the string at data[i] and checks it as the general decoder
// does; it returns the index after it, or -1 to decline. A kept string is
// returned as a view of data; a kept string with an escape declines (the
// general decoder builds it).
func (f *fastRefs) str(i int, keep bool) (string, int) {
	data := f.data
	start := i + 1
	i = start
	escaped := false
	for {
		j, c := scanPlain(data, i)
		switch {
		case c == '"':
			if !keep {
				return "", j + 1
			}
			if escaped {
				return "", -1
			}
			return view(data[start:j]), j + 1
		case c == '\\':
			escaped = true
			n := validEscape(data, j)
			if n == 0 {
				return "", -1
			}
			i = j + n
		case c >= 0x80:
			r, size := utf8.DecodeRune(data[j:])
			if r == utf8.RuneError && size <= 1 {
				return "", -1
			}
			i = j + size
		default: // a control character, or the end
			return "", -1
		}
	}
}

// validEscape returns the length of the valid escape sequence at data[i]
// (a backslash), or 0: the general decoder's rules, surrogates included.
func validEscape(data []byte, i int) int {
	if i+1 >= len(data) {
		return 0
	}
	switch data[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2
	case 'u':
		r := hex4At(data, i+2)
		if r < 0 {
			return 0
		}
		if !utf16.IsSurrogate(r) {
			return 6
		}
		if r >= 0xDC00 || i+7 >= len(data) || data[i+6] != '\\' || data[i+7] != 'u' {
			return 0
		}
		r2 := hex4At(data, i+8)
		if r2 < 0 || utf16.DecodeRune(r, r2) == utf8.RuneError {
			return 0
		}
		return 12
	}
	return 0
}

func hex4At(data []byte, i int) rune {
	if len(data)-i < 4 {
		return -1
	}
	var r rune
	for _, c := range data[i : i+4] {
		var v rune
		switch {
		case c >= '0' && c <= '9':
			v = rune(c - '0')
		case c >= 'a' && c <= 'f':
			v = rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			v = rune(c - 'A' + 10)
		default:
			return -1
		}
		r = r<<4 | v
	}
	return r
}

// scalar reads a literal or a number at data[i]; a kept one is returned
// as the general decoder builds it (bool, nil, json.Number), with the
// index after it, or -1 to decline.
func scalar(data []byte, i int, keep bool) (any, int) {
	switch data[i] {
	case 't':
		if !hasAt(data, i, "true") {
			return nil, -1
		}
		if keep {
			return true, i + 4
		}
		return nil, i + 4
	case 'f':
		if !hasAt(data, i, "false") {
			return nil, -1
		}
		if keep {
			return false, i + 5
		}
		return nil, i + 5
	case 'n':
		if !hasAt(data, i, "null") {
			return nil, -1
		}
		return nil, i + 4
	}
	start := i
	if data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && data[i] >= '1' && data[i] <= '9':
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
	default:
		return nil, -1
	}
	if i < len(data) && data[i] == '.' {
		i++
		d := i
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
		if i == d {
			return nil, -1
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		d := i
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
		if i == d {
			return nil, -1
		}
	}
	if keep {
		return json.Number(data[start:i]), i
	}
	return nil, i
}

func hasAt(data []byte, i int, lit string) bool {
	return len(data)-i >= len(lit) && string(data[i:i+len(lit)]) == lit
}
