package compartment

import (
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// strStop marks the bytes that end a run of plain string content.
var strStop = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// maxDepth bounds the nesting of JSON arrays and objects, as encoding/json does.
const maxDepth = 10000

// refLeaf is the node of the Reference inside a CodeableReference.
var refLeaf = &node{leaf: true}

func (c *Checker) prepare(t Type, id string) (*Definition, error) {
	if !validID(id) {
		return nil, ErrInvalidID
	}
	if !t.valid() || c.defs[t] == nil {
		return nil, ErrUnknownType
	}
	return c.defs[t], nil
}

// links returns the link trie of resource type rt in d, honouring
// ExcludeLinked; nil when rt cannot link to the compartment.
func (c *Checker) links(d *Definition, rt string) *node {
	if c.excludeLinked && rt == typeNames[d.typ] {
		return nil
	}
	if e := d.resources[rt]; e != nil {
		return e.links
	}
	return nil
}

// Member reports whether the JSON resource is in the compartment instance
// t/id (see the package documentation for the rules). It returns an error
// wrapping ErrMalformed for invalid JSON, ErrNotResource for JSON that is not
// a resource, ErrInvalidID or ErrUnknownType for a bad t or id; the boolean
// is false whenever the error is not nil.
func (c *Checker) Member(resource []byte, t Type, id string) (bool, error) {
	d, err := c.prepare(t, id)
	if err != nil {
		return false, err
	}
	m := matcher{c: c, typ: typeNames[t], id: id}
	s := scanner{data: resource}
	ok := s.resource(c, d, &m)
	if s.err != nil {
		return false, s.err
	}
	return ok, nil
}

// MemberMap is Member for a resource already decoded by encoding/json into
// a map (numbers as float64 or json.Number).
func (c *Checker) MemberMap(resource map[string]any, t Type, id string) (bool, error) {
	d, err := c.prepare(t, id)
	if err != nil {
		return false, err
	}
	rt, ok := resource["resourceType"].(string)
	if !ok {
		return false, ErrNotResource
	}
	if rt == typeNames[t] {
		if rid, ok := resource["id"].(string); ok && rid == id {
			return true, nil
		}
	}
	n := c.links(d, rt)
	if n == nil {
		return false, nil
	}
	m := matcher{c: c, typ: typeNames[t], id: id}
	walkMap(resource, n, &m, false)
	return m.found, nil
}

func walkAny(v any, n *node, m *matcher) {
	switch v := v.(type) {
	case map[string]any:
		walkMap(v, n, m, false)
	case []any:
		for _, x := range v {
			if o, ok := x.(map[string]any); ok && !m.found {
				walkMap(o, n, m, false)
			}
		}
	}
}

func walkMap(o map[string]any, n *node, m *matcher, inRef bool) {
	if n.leaf {
		switch r := o["reference"].(type) {
		case string:
			if refersTo(m.c, r, m.typ, m.id) {
				m.found = true
				return
			}
		case map[string]any:
			if !inRef {
				walkMap(r, refLeaf, m, true)
			}
		}
	}
	for i, name := range n.names {
		if m.found {
			return
		}
		if v, ok := o[name]; ok {
			walkAny(v, n.kids[i], m)
		}
	}
}

// matcher collects the result of a scan.
type matcher struct {
	c     *Checker
	typ   string
	id    string
	found bool
}

// scanner is a validating, allocation-free JSON reader that descends only
// into the elements of a link trie and skips everything else.
type scanner struct {
	data  []byte
	pos   int
	depth int
	err   error
	buf   []byte // scratch for unescaped strings
}

func (s *scanner) fail(msg string) {
	if s.err == nil {
		s.err = fmt.Errorf("%w: %s at offset %d", ErrMalformed, msg, s.pos)
	}
}

func (s *scanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

// resource reads a whole document and reports membership.
func (s *scanner) resource(c *Checker, d *Definition, m *matcher) bool {
	if s.peek() != '{' {
		s.skip()
		s.end()
		if s.err == nil {
			s.err = ErrNotResource
		}
		return false
	}
	ok, rt, _ := s.resourceObject(c, d, m)
	s.end()
	if s.err != nil {
		return false
	}
	if rt == nil {
		s.err = ErrNotResource
		return false
	}
	return ok
}

// resourceObject reads the object at s.pos as a resource and reports
// membership; rt is nil when it has no string resourceType, and rt and rid
// stay valid after further reads.
func (s *scanner) resourceObject(c *Checker, d *Definition, m *matcher) (member bool, rt, rid []byte) {
	start := s.pos
	var (
		haveRT, haveID bool
		root           *node
		skipped        bool // members skipped before resourceType was known
		seen           uint64
	)
	s.pos++
	s.depth++
	if s.peek() == '}' {
		s.pos++
	} else {
		for s.err == nil {
			key := s.key()
			if s.err != nil {
				break
			}
			switch string(key) {
			case "resourceType":
				if haveRT {
					s.fail("duplicate resourceType")
					break
				}
				haveRT = true
				if s.peek() != '"' {
					s.skip()
					break
				}
				rt = s.strCopy()
				if !(c.excludeLinked && string(rt) == m.typ) {
					if e := d.resources[string(rt)]; e != nil {
						root = e.links
					}
				}
			case "id":
				if haveID {
					s.fail("duplicate id")
					break
				}
				haveID = true
				if s.peek() == '"' {
					rid = s.strCopy()
				} else {
					s.skip()
				}
			default:
				if !haveRT {
					skipped = true
					s.skip()
					break
				}
				i := -1
				if root != nil {
					i = root.child(string(key))
				}
				if i < 0 {
					s.skip()
					break
				}
				if i < 64 {
					if seen&(1<<i) != 0 {
						s.fail("duplicate member " + string(key))
						break
					}
					seen |= 1 << i
				}
				if m.found {
					s.skip()
				} else {
					s.value(root.kids[i], m)
				}
			}
			if !s.next('}') {
				break
			}
		}
	}
	s.depth--
	if s.err != nil || rt == nil {
		return false, rt, rid
	}
	if string(rt) == m.typ && rid != nil && string(rid) == m.id {
		return true, rt, rid
	}
	if !m.found && skipped && root != nil {
		r := scanner{data: s.data, pos: start, depth: s.depth}
		r.object(root, m, false)
		if r.err != nil {
			s.err = r.err
			return false, rt, rid
		}
	}
	return m.found, rt, rid
}

// strCopy reads a string that must outlive the next string read.
func (s *scanner) strCopy() []byte {
	b, esc := s.str()
	if esc {
		b = append([]byte(nil), b...)
	}
	return b
}

// end checks that only white space follows the document.
func (s *scanner) end() {
	if s.ws(); s.err == nil && s.pos < len(s.data) {
		s.fail("data after the document")
	}
}

// next consumes the separator after a member or element: it returns true
// after a comma, false after the closing byte or an error.
func (s *scanner) next(closing byte) bool {
	switch s.peek() {
	case ',':
		s.pos++
		return true
	case closing:
		s.pos++
		return false
	}
	s.fail("expected , or " + string(closing))
	return false
}

// key reads a member name and its colon; the result is only valid until the
// next string is read.
func (s *scanner) key() []byte {
	if s.peek() != '"' {
		s.fail("expected member name")
		return nil
	}
	k, _ := s.str()
	if s.peek() != ':' {
		s.fail("expected :")
		return nil
	}
	s.pos++
	return k
}

// value reads the value of a member that is on a link path.
func (s *scanner) value(n *node, m *matcher) {
	switch s.peek() {
	case '{':
		s.object(n, m, false)
	case '[':
		s.pos++
		s.depth++
		if s.depth > maxDepth {
			s.fail("too deep")
			return
		}
		if s.peek() == ']' {
			s.pos++
		} else {
			for s.err == nil {
				if s.peek() == '{' && !m.found {
					s.object(n, m, false)
				} else {
					s.skip()
				}
				if !s.next(']') {
					break
				}
			}
		}
		s.depth--
	default:
		s.skip()
	}
}

// object reads an object on a link path. When n is a leaf its "reference"
// is checked; inRef marks the Reference inside a CodeableReference.
func (s *scanner) object(n *node, m *matcher, inRef bool) {
	s.pos++
	s.depth++
	if s.depth > maxDepth {
		s.fail("too deep")
		return
	}
	var seen uint64
	const refBit = 1 << 63
	if s.peek() == '}' {
		s.pos++
		s.depth--
		return
	}
	for s.err == nil {
		key := s.key()
		if s.err != nil {
			break
		}
		if n.leaf && string(key) == "reference" {
			if seen&refBit != 0 {
				s.fail("duplicate reference")
				break
			}
			seen |= refBit
			switch s.peek() {
			case '"':
				raw, _ := s.str()
				if s.err == nil && !m.found && refersTo(m.c, raw, m.typ, m.id) {
					m.found = true
				}
			case '{':
				if !inRef {
					s.object(refLeaf, m, true)
				} else {
					s.skip()
				}
			default:
				s.skip()
			}
		} else if i := n.child(string(key)); i >= 0 {
			if i < 63 {
				if seen&(1<<i) != 0 {
					s.fail("duplicate member " + string(key))
					break
				}
				seen |= 1 << i
			}
			if m.found {
				s.skip()
			} else {
				s.value(n.kids[i], m)
			}
		} else {
			s.skip()
		}
		if !s.next('}') {
			break
		}
	}
	s.depth--
}

// skip reads and validates any value.
func (s *scanner) skip() {
	if s.err != nil {
		return
	}
	switch c := s.peek(); c {
	case '"':
		s.str()
	case '{':
		s.pos++
		s.depth++
		if s.depth > maxDepth {
			s.fail("too deep")
			return
		}
		if s.peek() == '}' {
			s.pos++
		} else {
			for s.err == nil {
				s.key()
				s.skip()
				if !s.next('}') {
					break
				}
			}
		}
		s.depth--
	case '[':
		s.pos++
		s.depth++
		if s.depth > maxDepth {
			s.fail("too deep")
			return
		}
		if s.peek() == ']' {
			s.pos++
		} else {
			for s.err == nil {
				s.skip()
				if !s.next(']') {
					break
				}
			}
		}
		s.depth--
	case 't':
		s.literal("true")
	case 'f':
		s.literal("false")
	case 'n':
		s.literal("null")
	case 0:
		s.fail("unexpected end")
	default:
		if c == '-' || c >= '0' && c <= '9' {
			s.number()
			return
		}
		s.fail("unexpected byte")
	}
}

func (s *scanner) literal(lit string) {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		s.fail("bad literal")
		return
	}
	s.pos += len(lit)
}

func (s *scanner) digits() int {
	n := 0
	for s.pos < len(s.data) && s.data[s.pos] >= '0' && s.data[s.pos] <= '9' {
		s.pos++
		n++
	}
	return n
}

func (s *scanner) number() {
	if s.data[s.pos] == '-' {
		s.pos++
	}
	switch {
	case s.pos < len(s.data) && s.data[s.pos] == '0':
		s.pos++
	case s.digits() == 0:
		s.fail("bad number")
		return
	}
	if s.pos < len(s.data) && s.data[s.pos] == '.' {
		s.pos++
		if s.digits() == 0 {
			s.fail("bad number")
			return
		}
	}
	if s.pos < len(s.data) && (s.data[s.pos] == 'e' || s.data[s.pos] == 'E') {
		s.pos++
		if s.pos < len(s.data) && (s.data[s.pos] == '+' || s.data[s.pos] == '-') {
			s.pos++
		}
		if s.digits() == 0 {
			s.fail("bad number")
		}
	}
}

func hexVal(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// str reads a string at s.pos (an opening quote) and returns its decoded
// content: the input bytes when there is no escape, else (esc) s.buf, valid
// until the next string is read.
func (s *scanner) str() (b []byte, esc bool) {
	s.pos++
	start := s.pos
	for s.pos < len(s.data) {
		data := s.data[s.pos:]
		i := 0
		for i < len(data) && !strStop[data[i]] {
			i++
		}
		s.pos += i
		if s.pos == len(s.data) {
			break
		}
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			return s.data[start : s.pos-1], false
		case c == '\\':
			return s.escaped(start), true
		case c < 0x20:
			s.fail("control character in string")
			return nil, false
		}
		s.pos++
	}
	s.fail("unterminated string")
	return nil, false
}

// escaped decodes the rest of a string that has an escape at s.pos.
func (s *scanner) escaped(start int) []byte {
	b := append(s.buf[:0], s.data[start:s.pos]...)
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			s.buf = b
			return b
		case c < 0x20:
			s.fail("control character in string")
			return nil
		case c != '\\':
			b = append(b, c)
			s.pos++
			continue
		}
		if s.pos+1 >= len(s.data) {
			break
		}
		e := s.data[s.pos+1]
		s.pos += 2
		switch e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r := s.hex4()
			if r < 0 {
				s.fail("bad \\u escape")
				return nil
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if s.pos+1 < len(s.data) && s.data[s.pos] == '\\' && s.data[s.pos+1] == 'u' {
					save := s.pos
					s.pos += 2
					r2 = s.hex4()
					if r2 < 0 {
						s.fail("bad \\u escape")
						return nil
					}
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						b = utf8.AppendRune(b, d)
						continue
					}
					s.pos = save
				}
				r = utf8.RuneError
			}
			b = utf8.AppendRune(b, r)
		default:
			s.fail("bad escape")
			return nil
		}
	}
	s.fail("unterminated string")
	return nil
}

func (s *scanner) hex4() rune {
	if len(s.data)-s.pos < 4 {
		return -1
	}
	var r rune
	for i := 0; i < 4; i++ {
		v := hexVal(s.data[s.pos+i])
		if v < 0 {
			return -1
		}
		r = r<<4 | v
	}
	s.pos += 4
	return r
}
