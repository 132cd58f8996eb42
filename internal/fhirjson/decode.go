package fhirjson

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// Depth limits. A write the guard accepts can always be read back: the
// resources it lets through nest at most MaxWriteDepth levels, and a stored
// resource inside a search Bundle, or inside a Bundle inside a batch-response
// entry, adds at most 6 levels, far below MaxReadDepth.
const (
	// MaxWriteDepth bounds the nesting of request bodies (resources,
	// Bundles, JSON Patch documents). A Questionnaire with 40 nested item
	// levels needs about 81.
	MaxWriteDepth = 100
	// MaxReadDepth bounds the nesting of the responses the guard verifies.
	MaxReadDepth = 128
	// MaxTokenDepth bounds the nesting of token headers, claims and
	// introspection responses.
	MaxTokenDepth = 32
)

// Mode selects the member-name rules on top of the JSON rules.
type Mode uint8

const (
	// Plain applies the JSON rules only (token claims, introspection).
	Plain Mode = iota
	// FHIR also applies FHIR's member-name rules (see the package doc).
	FHIR
)

// Options configure Decode.
type Options struct {
	// Mode is Plain or FHIR.
	Mode Mode
	// MaxDepth bounds the nesting of arrays and objects (the top-level
	// object is depth 1). Zero means MaxWriteDepth.
	MaxDepth int
	// Float64 decodes numbers as float64 instead of json.Number.
	Float64 bool
	// References reads the whole document under the same rules but keeps
	// only what a reference check reads: the top-level resourceType and
	// id, every member named "reference" (its value kept the same way),
	// and the objects and arrays that lead to one. Every other value is
	// dropped without being built, and so are objects and arrays left
	// empty (the top-level object is always returned). A walk that only
	// reads "reference" members, anywhere, and the top-level resourceType
	// and id sees exactly what it would see in the whole document. The
	// strings of the result may share data's memory: data must not change
	// while the result is in use.
	References bool
}

// Error is a body that breaks the rules. Path locates the problem in the
// document (such as "entry[0].request.Url"); Offset is the byte offset.
type Error struct {
	Offset int
	Path   string
	Msg    string
}

func (e *Error) Error() string {
	switch {
	case e.Offset < 0 && e.Path == "":
		return "invalid FHIR JSON: " + e.Msg
	case e.Offset < 0:
		return fmt.Sprintf("invalid FHIR JSON at %s: %s", e.Path, e.Msg)
	case e.Path == "":
		return fmt.Sprintf("invalid JSON at offset %d: %s", e.Offset, e.Msg)
	}
	return fmt.Sprintf("invalid JSON at %s (offset %d): %s", e.Path, e.Offset, e.Msg)
}

// Decode reads data, which must hold exactly one JSON object, under the
// strict rules of the package, and returns it as a map whose values are
// map[string]any, []any, string, json.Number (or float64), bool and nil.
func Decode(data []byte, opt Options) (map[string]any, error) {
	if opt.References && opt.Mode == Plain && !opt.Float64 {
		maxDepth := opt.MaxDepth
		if maxDepth <= 0 {
			maxDepth = MaxWriteDepth
		}
		if m, ok := decodeRefsFast(data, maxDepth); ok {
			return m, nil
		}
	}
	v, err := decodeTop(data, opt, '{')
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

// DecodeArray is Decode for a document that is one JSON array (a JSON
// Patch document).
func DecodeArray(data []byte, opt Options) ([]any, error) {
	v, err := decodeTop(data, opt, '[')
	if err != nil {
		return nil, err
	}
	return v.([]any), nil
}

func decodeTop(data []byte, opt Options, open byte) (any, error) {
	d := decoder{data: data, opt: opt}
	if d.opt.MaxDepth <= 0 {
		d.opt.MaxDepth = MaxWriteDepth
	}
	if len(data) >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF {
		return nil, &Error{Msg: "byte order mark before the JSON text"}
	}
	d.ws()
	if d.pos >= len(d.data) || d.data[d.pos] != open {
		if open == '[' {
			return nil, d.fail("a JSON array was expected")
		}
		return nil, d.fail("a JSON object was expected")
	}
	v, err := d.value(0, false)
	if err != nil {
		return nil, err
	}
	d.ws()
	if d.pos != len(d.data) {
		return nil, d.fail("data after the JSON value")
	}
	if v == nil { // References: nothing kept
		if open == '[' {
			return []any{}, nil
		}
		return map[string]any{}, nil
	}
	return v, nil
}

// Valid reports the first rule data breaks, or nil.
func Valid(data []byte, opt Options) error {
	_, err := Decode(data, opt)
	return err
}

type decoder struct {
	data []byte
	pos  int
	opt  Options
	buf  []byte // scratch for escaped strings

	// The members and elements leading to the current value, n of them:
	// the first levels in steps (no allocation for most documents), the
	// deeper ones in more.
	steps [16]step
	more  []step
	n     int

	// The member names of the objects being read, innermost last, for the
	// duplicate check: the first ones in keys, deeper ones in moreKeys; nk
	// of them.
	keys     [32]string
	moreKeys []string
	nk       int

	nonASCII bool // the last string read has a byte of 0x80 or above
}

// step is one member name, or an array index when name is "".
type step struct {
	name string
	idx  int
}

// push appends s to the path; pop removes the last step.
func (d *decoder) push(s step) {
	if d.n < len(d.steps) {
		d.steps[d.n] = s
	} else {
		d.more = append(d.more[:d.n-len(d.steps)], s)
	}
	d.n++
}

func (d *decoder) pop() { d.n-- }

func (d *decoder) pushKey(k string) {
	if d.nk < len(d.keys) {
		d.keys[d.nk] = k
	} else {
		d.moreKeys = append(d.moreKeys[:d.nk-len(d.keys)], k)
	}
	d.nk++
}

func (d *decoder) keyAt(i int) string {
	if i < len(d.keys) {
		return d.keys[i]
	}
	return d.moreKeys[i-len(d.keys)]
}

// keySig is a one-bit summary of a member name for the duplicate check:
// names equal but for the case of ASCII letters have the same.
func keySig(k string) uint64 {
	var c byte
	if k != "" {
		c = k[0] | 0x20
	}
	return 1 << ((uint(len(k))*7 + uint(c)) & 63)
}

func (d *decoder) fail(msg string) *Error {
	var sb strings.Builder
	for i := range d.n {
		s := d.steps[min(i, len(d.steps)-1)]
		if i >= len(d.steps) {
			s = d.more[i-len(d.steps)]
		}
		switch {
		case s.name == "":
			sb.WriteString("[" + strconv.Itoa(s.idx) + "]")
		case i == 0:
			sb.WriteString(s.name)
		default:
			sb.WriteString("." + s.name)
		}
	}
	path := sb.String()
	if len(path) > 200 {
		path = "…" + path[len(path)-200:]
	}
	return &Error{Offset: d.pos, Path: path, Msg: msg}
}

func (d *decoder) ws() {
	for d.pos < len(d.data) {
		switch c := d.data[d.pos]; {
		case c > ' ': // the common case, one comparison
			return
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			d.pos++
		default:
			return
		}
	}
}

// value reads the value at d.pos. With Options.References, a scalar is
// built only when keep is set, and an object or array only when something
// in it is kept; otherwise value returns nil.
func (d *decoder) value(depth int, keep bool) (any, error) {
	d.ws()
	if d.pos >= len(d.data) {
		return nil, d.fail("unexpected end of the JSON text")
	}
	keep = keep || !d.opt.References
	switch c := d.data[d.pos]; c {
	case '{':
		m, err := d.object(depth + 1)
		if m == nil || err != nil {
			return nil, err
		}
		return m, nil
	case '[':
		a, err := d.array(depth + 1)
		if a == nil || err != nil {
			return nil, err
		}
		return a, nil
	case '"':
		b, escaped, err := d.str()
		if err != nil || !keep {
			return nil, err
		}
		if d.opt.References && !escaped {
			return view(b), nil
		}
		return string(b), nil
	case 't':
		if err := d.literal("true"); err != nil || !keep {
			return nil, err
		}
		return true, nil
	case 'f':
		if err := d.literal("false"); err != nil || !keep {
			return nil, err
		}
		return false, nil
	case 'n':
		return nil, d.literal("null")
	default:
		if c == '-' || c >= '0' && c <= '9' {
			return d.number(keep)
		}
		return nil, d.fail(fmt.Sprintf("unexpected character %q", c))
	}
}

// smallObject is the size up to which duplicate names are found by a scan.
const smallObject = 16

func (d *decoder) object(depth int) (map[string]any, error) {
	if depth > d.opt.MaxDepth {
		return nil, d.fail(fmt.Sprintf("nesting deeper than %d levels", d.opt.MaxDepth))
	}
	d.pos++              // '{'
	var m map[string]any // with References, made when a member is kept
	if !d.opt.References || depth == 1 {
		m = make(map[string]any, 8)
	}
	base := d.nk // this object's names are keyAt(base), keyAt(base+1), …
	var sigs uint64
	var folded map[string]struct{} // lower-case names, once the object is large
	n := 0
	d.ws()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		return m, nil
	}
	for {
		d.ws()
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return nil, d.fail("a member name was expected")
		}
		keyStart := d.pos
		kb, escaped, err := d.str()
		if err != nil {
			return nil, err
		}
		var key string
		known := false
		switch {
		case d.opt.References && !escaped && d.opt.Mode != FHIR:
			// Data does not change (Options.References), and only the
			// FHIR rules need to know whether the name is known.
			key = view(kb)
		default:
			if key, known = canonical[string(kb)]; !known {
				if d.opt.References && !escaped {
					key = view(kb)
				} else {
					key = string(kb)
				}
			}
		}
		if err := d.checkName(key, known, keyStart); err != nil {
			return nil, err
		}
		// Duplicates, exact or differing in case only: a decoder that
		// matches names case-insensitively would see the other one.
		if n < smallObject {
			// Only a name with the same signature can be a duplicate.
			if sig := keySig(key); sigs&sig != 0 {
				for i := base; i < base+n; i++ {
					if asciiEqualFold(d.keyAt(i), key) {
						return nil, d.dupErr(key, keyStart)
					}
				}
			} else {
				sigs |= sig
			}
			d.pushKey(key)
		} else {
			if folded == nil {
				folded = make(map[string]struct{}, 2*n)
				for i := base; i < base+smallObject; i++ {
					folded[strings.ToLower(d.keyAt(i))] = struct{}{}
				}
			}
			lk := strings.ToLower(key)
			if _, dup := folded[lk]; dup {
				return nil, d.dupErr(key, keyStart)
			}
			folded[lk] = struct{}{}
		}
		n++
		d.ws()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return nil, d.fail("':' was expected after a member name")
		}
		d.pos++
		d.push(step{name: key})
		v, err := d.value(depth, key == "reference" || depth == 1 && (key == "resourceType" || key == "id"))
		if err != nil {
			return nil, err
		}
		d.pop()
		switch {
		case !d.opt.References:
			m[key] = v
		case v != nil:
			if m == nil {
				m = make(map[string]any, 2)
			}
			m[key] = v
		}
		more, err := d.next('}')
		if err != nil {
			return nil, err
		}
		if !more {
			d.nk = base
			return m, nil
		}
	}
}

// view returns the bytes of data in b as a string without copying them.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// next reads the separator after a member or element: true after a comma,
// false after the closing byte.
func (d *decoder) next(closing byte) (bool, error) {
	d.ws()
	switch {
	case d.pos >= len(d.data):
		return false, d.fail("unexpected end of the JSON text")
	case d.data[d.pos] == ',':
		d.pos++
		return true, nil
	case d.data[d.pos] == closing:
		d.pos++
		return false, nil
	}
	return false, d.fail("',' or '" + string(closing) + "' was expected")
}

func (d *decoder) dupErr(key string, at int) *Error {
	e := d.fail(fmt.Sprintf("member %q appears more than once (names are compared case-insensitively)", short(key)))
	e.Offset = at
	return e
}

func (d *decoder) array(depth int) ([]any, error) {
	if depth > d.opt.MaxDepth {
		return nil, d.fail(fmt.Sprintf("nesting deeper than %d levels", d.opt.MaxDepth))
	}
	d.pos++     // '['
	var a []any // with References, made when an element is kept
	if !d.opt.References {
		a = make([]any, 0, 4)
	}
	d.ws()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		return a, nil
	}
	for i := 0; ; i++ {
		d.push(step{idx: i})
		v, err := d.value(depth, false)
		if err != nil {
			return nil, err
		}
		d.pop()
		if v != nil || !d.opt.References {
			a = append(a, v)
		}
		more, err := d.next(']')
		if err != nil {
			return nil, err
		}
		if !more {
			return a, nil
		}
	}
}

func (d *decoder) literal(lit string) error {
	if len(d.data)-d.pos < len(lit) || string(d.data[d.pos:d.pos+len(lit)]) != lit {
		return d.fail("invalid literal")
	}
	d.pos += len(lit)
	return nil
}

func (d *decoder) digits() int {
	n := 0
	for d.pos < len(d.data) && d.data[d.pos] >= '0' && d.data[d.pos] <= '9' {
		d.pos++
		n++
	}
	return n
}

// number reads a number; with References and !keep it returns nil.
func (d *decoder) number(keep bool) (any, error) {
	start := d.pos
	if d.data[d.pos] == '-' {
		d.pos++
	}
	switch {
	case d.pos < len(d.data) && d.data[d.pos] == '0':
		d.pos++
	case d.digits() == 0:
		return nil, d.fail("invalid number")
	}
	if d.pos < len(d.data) && d.data[d.pos] == '.' {
		d.pos++
		if d.digits() == 0 {
			return nil, d.fail("invalid number")
		}
	}
	if d.pos < len(d.data) && (d.data[d.pos] == 'e' || d.data[d.pos] == 'E') {
		d.pos++
		if d.pos < len(d.data) && (d.data[d.pos] == '+' || d.data[d.pos] == '-') {
			d.pos++
		}
		if d.digits() == 0 {
			return nil, d.fail("invalid number")
		}
	}
	if !d.opt.Float64 {
		if !keep {
			return nil, nil
		}
		return json.Number(d.data[start:d.pos]), nil
	}
	f, err := strconv.ParseFloat(unsafe.String(&d.data[start], d.pos-start), 64)
	if err != nil {
		return nil, d.fail("number out of range")
	}
	if !keep {
		return nil, nil
	}
	return f, nil
}

// strStop marks the bytes that end a run of plain string content.
var strStop = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	for c := 0x80; c < 0x100; c++ {
		t[c] = true
	}
	return t
}()

// stopMask marks, with its high bit, each of the eight bytes of w (read
// little-endian: the first byte is the lowest) that is in strStop: a
// control character, '"', '\\' or a byte of 0x80 and above. A byte above
// a marked one may be marked wrongly (a borrow); the lowest marked byte is
// always a stop byte, and no stop byte is left unmarked.
func stopMask(w uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote := w ^ (ones * '"')
	bslash := w ^ (ones * '\\')
	ctrl := (w - ones*0x20) &^ w        // the high bit of a byte below 0x20
	zq := (quote - ones) &^ quote       // of a '"'
	zb := (bslash - ones) &^ bslash     // of a '\\'
	return (ctrl | zq | zb | w) & highs // w: of a byte of 0x80 and above
}

// str reads the string at d.pos (an opening quote) and returns its content:
// a slice of the input when it has no escape, else d.buf, valid until the
// next string is read (escaped is then true). Invalid UTF-8, control
// characters and unpaired surrogate escapes are errors.
func (d *decoder) str() (b []byte, escaped bool, err error) {
	// The common case, in locals: plain ASCII up to the closing quote.
	data, start := d.data, d.pos+1
	i := start
	for {
		if i+8 > len(data) {
			for i < len(data) && !strStop[data[i]] {
				i++
			}
			break
		}
		if m := stopMask(binary.LittleEndian.Uint64(data[i:])); m != 0 {
			i += bits.TrailingZeros64(m) >> 3 // the first stop byte
			break
		}
		i += 8
	}
	if i < len(data) && data[i] == '"' {
		d.pos, d.nonASCII = i+1, false
		return data[start:i], false, nil
	}
	return d.strSlow()
}

// strSlow is str for a string with an escape, a byte of 0x80 or above, or
// an error.
func (d *decoder) strSlow() (b []byte, escaped bool, err error) {
	d.nonASCII = false
	d.pos++
	start := d.pos
	esc := false
	b = d.buf[:0]
	for d.pos < len(d.data) {
		i := d.pos
		for i < len(d.data) && !strStop[d.data[i]] {
			i++
		}
		if esc {
			b = append(b, d.data[d.pos:i]...)
		}
		d.pos = i
		if d.pos >= len(d.data) {
			break
		}
		c := d.data[d.pos]
		switch {
		case c == '"':
			d.pos++
			if !esc {
				return d.data[start : d.pos-1], false, nil
			}
			d.buf = b
			return b, true, nil
		case c >= 0x80:
			d.nonASCII = true
			r, size := utf8.DecodeRune(d.data[d.pos:])
			if r == utf8.RuneError && size <= 1 {
				return nil, false, d.fail("invalid UTF-8 in a string")
			}
			if esc {
				b = append(b, d.data[d.pos:d.pos+size]...)
			}
			d.pos += size
		case c < 0x20:
			return nil, false, d.fail("control character in a string")
		default: // '\\'
			if !esc {
				esc = true
				b = append(b, d.data[start:d.pos]...)
			}
			if b, err = d.escape(b); err != nil {
				return nil, false, err
			}
		}
	}
	return nil, false, d.fail("unterminated string")
}

// escape decodes the escape sequence at d.pos onto b.
func (d *decoder) escape(b []byte) ([]byte, error) {
	if d.pos+1 >= len(d.data) {
		return nil, d.fail("unterminated string")
	}
	e := d.data[d.pos+1]
	d.pos += 2
	switch e {
	case '"', '\\', '/':
		return append(b, e), nil
	case 'b':
		return append(b, '\b'), nil
	case 'f':
		return append(b, '\f'), nil
	case 'n':
		return append(b, '\n'), nil
	case 'r':
		return append(b, '\r'), nil
	case 't':
		return append(b, '\t'), nil
	case 'u':
		r := d.hex4()
		if r < 0 {
			return nil, d.fail("invalid \\u escape")
		}
		if utf16.IsSurrogate(r) {
			if r >= 0xDC00 || d.pos+1 >= len(d.data) || d.data[d.pos] != '\\' || d.data[d.pos+1] != 'u' {
				return nil, d.fail("unpaired surrogate in a \\u escape")
			}
			d.pos += 2
			r2 := d.hex4()
			dec := utf16.DecodeRune(r, r2)
			if r2 < 0 || dec == utf8.RuneError {
				return nil, d.fail("unpaired surrogate in a \\u escape")
			}
			r = dec
		}
		if r >= utf8.RuneSelf {
			d.nonASCII = true
		}
		return utf8.AppendRune(b, r), nil
	}
	return nil, d.fail("invalid escape")
}

func (d *decoder) hex4() rune {
	r := hex4At(d.data, d.pos)
	if r >= 0 {
		d.pos += 4
	}
	return r
}

// asciiEqualFold compares two ASCII strings ignoring case.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x != y {
			if x|0x20 != y|0x20 || x|0x20 < 'a' || x|0x20 > 'z' {
				return false
			}
		}
	}
	return true
}
