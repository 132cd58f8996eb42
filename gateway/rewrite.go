package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// matcher finds occurrences of the upstream base URL in text and replaces
// them with the public base.
//
// An occurrence is the upstream scheme, "://", host, port and path, where
// the scheme and host compare case-insensitively, a port equal to the
// scheme's default matches none (and none matches it), leading zeros of a
// port are ignored, and the path compares exactly; followed by the end of
// the text or a character that cannot continue the last path segment (or
// the host, for a base at the root): anything but an ASCII letter, digit,
// '-', '.', '_', '~' or '%'. So with the upstream "http://up/fhir",
// "http://UP:80/fhir/Patient/1", "http://up/fhir?x" and "(http://up/fhir)"
// hold an occurrence and "http://up/fhir2", "http://up/fhir.v2" and
// "http://up.example/fhir" do not. Nothing is required before the scheme.
type matcher struct {
	scheme  string // lower case
	host    string // lower case
	port    string // the effective port, digits without leading zeros
	defPort bool   // port is the scheme's default
	path    string // escaped, without trailing slash; "" at the root
	public  string // the replacement: the public base, without trailing slash
	minLen  int    // the length of the shortest occurrence
}

// base is a validated base URL.
type base struct {
	scheme, host, port, path string
	defPort                  bool
	text                     string // as configured, without trailing slash
}

// parseBase validates a base URL: absolute http(s), a host, no user
// information, query or fragment, and a path of letters, digits, '-', '.',
// '_', '~' and single slashes (no percent-encoding, no empty segment), so
// that no replacement can form a new occurrence.
func parseBase(field, raw string) (base, error) {
	s := strings.TrimRight(raw, "/")
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return base{}, fmt.Errorf("gateway: Config.%s %q must be an absolute http(s) URL", field, raw)
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(s, "#?@") {
		return base{}, fmt.Errorf("gateway: Config.%s %q must have no user, query or fragment", field, raw)
	}
	p := u.EscapedPath()
	if strings.Contains(p, "//") || strings.ContainsFunc(p, func(r rune) bool { return r != '/' && !nameChar(r) || r == '%' }) {
		return base{}, fmt.Errorf("gateway: Config.%s %q: the path may hold only letters, digits, '-', '.', '_', '~' and single slashes", field, raw)
	}
	port := strings.TrimLeft(u.Port(), "0")
	def := "80"
	if u.Scheme == "https" {
		def = "443"
	}
	if u.Port() == "" || port == def {
		port = def
	}
	if strings.HasSuffix(u.Host, ":") {
		return base{}, fmt.Errorf("gateway: Config.%s %q has an empty port", field, raw)
	}
	return base{
		scheme: u.Scheme, host: strings.ToLower(u.Hostname()), port: port, defPort: port == def,
		path: p, text: s,
	}, nil
}

// nameChar reports whether r may continue a path segment or host name in
// the sense of the matcher (and of base paths).
func nameChar[T rune | byte](r T) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' ||
		r == '-' || r == '.' || r == '_' || r == '~' || r == '%'
}

// newMatcher returns the matcher replacing upstream with public. It
// refuses bases of one origin whose paths are equal or nested: a
// replacement could then form a new occurrence.
func newMatcher(upstream, public base) (*matcher, error) {
	if upstream.scheme == public.scheme && upstream.host == public.host && upstream.port == public.port {
		a, b := upstream.path+"/", public.path+"/"
		if strings.HasPrefix(a, b) || strings.HasPrefix(b, a) {
			return nil, fmt.Errorf("gateway: Config.Upstream %q and Config.BaseURL %q are the same server and nested paths", upstream.text, public.text)
		}
	}
	h := upstream.host
	if strings.Contains(h, ":") {
		h = "[" + h + "]" // an IPv6 literal, as written in URLs
	}
	m := &matcher{
		scheme: upstream.scheme, host: h, port: upstream.port, defPort: upstream.defPort,
		path: upstream.path, public: public.text,
	}
	m.minLen = len(m.scheme) + len(sep) + len(m.host) + len(m.path)
	if !m.defPort {
		m.minLen += 1 + len(m.port)
	}
	return m, nil
}

var sep = []byte("://")

// find returns the first occurrence in u at or after from, as [start,
// end), or -1, -1.
func (m *matcher) find(u []byte, from int) (int, int) {
	for from < len(u) {
		k := bytes.Index(u[from:], sep)
		if k < 0 {
			return -1, -1
		}
		k += from
		from = k + 1
		start := k - len(m.scheme)
		if start < 0 || !foldEq(u[start:k], m.scheme) {
			continue
		}
		if end, ok := m.afterScheme(u, k+len(sep)); ok {
			return start, end
		}
	}
	return -1, -1
}

// afterScheme matches host, port, path and boundary at u[i:].
func (m *matcher) afterScheme(u []byte, i int) (int, bool) {
	if len(u)-i < len(m.host) || !foldEq(u[i:i+len(m.host)], m.host) {
		return 0, false
	}
	i += len(m.host)
	if i < len(u) && u[i] == ':' {
		j := i + 1
		for j < len(u) && '0' <= u[j] && u[j] <= '9' {
			j++
		}
		port := strings.TrimLeft(string(u[i+1:j]), "0")
		if j == i+1 {
			if !m.defPort { // "host:" is the default port
				return 0, false
			}
		} else if port != m.port {
			return 0, false
		}
		i = j
	} else if !m.defPort {
		return 0, false
	}
	if len(u)-i < len(m.path) || string(u[i:i+len(m.path)]) != m.path {
		return 0, false
	}
	i += len(m.path)
	if i < len(u) && nameChar(u[i]) {
		return 0, false
	}
	return i, true
}

// foldEq compares b with the lower-case ASCII s, ignoring ASCII case.
func foldEq(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// contains reports whether text holds an occurrence.
func (m *matcher) contains(text []byte) bool {
	s, _ := m.find(text, 0)
	return s >= 0
}

// rewriteText appends text to dst with every occurrence replaced, and
// reports whether there was one.
func (m *matcher) rewriteText(dst, text []byte) ([]byte, bool) {
	last, changed := 0, false
	for from := 0; ; {
		s, e := m.find(text, from)
		if s < 0 {
			break
		}
		dst = append(dst, text[last:s]...)
		dst = append(dst, m.public...)
		last, from, changed = e, e, true
	}
	return append(dst, text[last:]...), changed
}

// rewriteString rewrites a header value.
func (m *matcher) rewriteString(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	out, changed := m.rewriteText(nil, []byte(s))
	if !changed {
		return s
	}
	return string(out)
}

// mayContain reports whether body could hold an occurrence in any form,
// literal or behind JSON escapes: false only when neither the host (in any
// case) nor a \u escape appears in it.
func (m *matcher) mayContain(body []byte) bool {
	return bytes.Contains(body, []byte(`\u`)) || indexFold(body, m.host) >= 0
}

// indexFold returns the index of the lower-case ASCII s in b ignoring
// ASCII case, or -1.
func indexFold(b []byte, s string) int {
	if s == "" {
		return 0
	}
	lo, up := s[0], s[0]
	if 'a' <= lo && lo <= 'z' {
		up = lo - ('a' - 'A')
	}
	last := len(b) - len(s)  // the last possible start
	nextLo, nextUp := -2, -2 // the next index of lo and of up at or after i; -1: none; -2: not searched
	next := func(c byte, cur, i int) int {
		if cur == -1 || cur >= i {
			return cur
		}
		if k := bytes.IndexByte(b[i:], c); k >= 0 {
			return i + k
		}
		return -1
	}
	for i := 0; i <= last; {
		nextLo = next(lo, nextLo, i)
		j := nextLo
		if up != lo {
			nextUp = next(up, nextUp, i)
			if j < 0 || (nextUp >= 0 && nextUp < j) {
				j = nextUp
			}
		}
		if j < 0 || j > last {
			return -1
		}
		if foldEq(b[j:j+len(s)], s) {
			return j
		}
		i = j + 1
	}
	return -1
}

// errNotJSON is returned by rewriteJSON for a body that is not one JSON
// value.
var errNotJSON = errors.New("not JSON")

// maxDepth is encoding/json's nesting limit: rewriteJSON accepts what
// json.Valid accepts.
const maxDepth = 10000

// rewriteJSON rewrites every occurrence in the strings (member names
// included) of the JSON text body, copying everything else verbatim:
// escapes, member order, numbers and white space are kept, and a string
// keeps its own escapes outside the replaced span. It returns body itself
// when nothing changed, and errNotJSON when body is not valid JSON as
// json.Valid reads it (RFC 8259: one value, white space around it).
func (m *matcher) rewriteJSON(body []byte) ([]byte, error) {
	s := scanner{m: m, in: body}
	i := s.ws(0)
	i, err := s.value(i)
	if err != nil {
		return nil, err
	}
	if s.ws(i) != len(body) {
		return nil, errNotJSON
	}
	return s.result(), nil
}

// rewriteJSONSeq rewrites a sequence of JSON values separated by white
// space (newline-delimited JSON, as FHIR bulk data files are).
func (m *matcher) rewriteJSONSeq(body []byte) ([]byte, error) {
	s := scanner{m: m, in: body}
	n := 0
	for i := s.ws(0); i < len(body); i = s.ws(i) {
		var err error
		if i, err = s.value(i); err != nil {
			return nil, err
		}
		if i < len(body) && !isWS(body[i]) {
			return nil, errNotJSON // values must be separated
		}
		n++
	}
	if n == 0 {
		return nil, errNotJSON
	}
	return s.result(), nil
}

// scanner walks a JSON text, copying it lazily into out once a string
// changes.
type scanner struct {
	m     *matcher
	in    []byte
	out   []byte // nil until the first change
	last  int    // in[:last] has been accounted for in out
	units []byte // scratch: decoded units of an escaped string
	offs  []int  // scratch: their offsets
	stack []byte
}

func (s *scanner) result() []byte {
	if s.out == nil {
		return s.in
	}
	return append(s.out, s.in[s.last:]...)
}

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (s *scanner) ws(i int) int {
	for i < len(s.in) && isWS(s.in[i]) {
		i++
	}
	return i
}

// value scans one JSON value at in[i:] (no leading white space) and
// returns the offset after it.
func (s *scanner) value(i int) (int, error) {
	in := s.in
	s.stack = s.stack[:0]
	for {
		if i >= len(in) {
			return 0, errNotJSON
		}
		// A value starts at in[i].
		switch c := in[i]; {
		case c == '{' || c == '[':
			if len(s.stack) >= maxDepth {
				return 0, errNotJSON
			}
			s.stack = append(s.stack, c)
			i = s.ws(i + 1)
			if i < len(in) && in[i] == c+2 { // '}' or ']'
				s.stack = s.stack[:len(s.stack)-1]
				i++
				break
			}
			if c == '{' {
				var err error
				if i, err = s.member(i); err != nil {
					return 0, err
				}
			}
			continue
		case c == '"':
			var err error
			if i, err = s.str(i); err != nil {
				return 0, err
			}
		case c == 't':
			if !bytes.HasPrefix(in[i:], []byte("true")) {
				return 0, errNotJSON
			}
			i += 4
		case c == 'f':
			if !bytes.HasPrefix(in[i:], []byte("false")) {
				return 0, errNotJSON
			}
			i += 5
		case c == 'n':
			if !bytes.HasPrefix(in[i:], []byte("null")) {
				return 0, errNotJSON
			}
			i += 4
		default:
			var err error
			if i, err = s.number(i); err != nil {
				return 0, err
			}
		}
		// After a value: close containers, or go on to the next element.
		for {
			if len(s.stack) == 0 {
				return i, nil
			}
			i = s.ws(i)
			if i >= len(in) {
				return 0, errNotJSON
			}
			top := s.stack[len(s.stack)-1]
			if in[i] == top+2 {
				s.stack = s.stack[:len(s.stack)-1]
				i++
				continue
			}
			if in[i] != ',' {
				return 0, errNotJSON
			}
			i = s.ws(i + 1)
			if top == '{' {
				var err error
				if i, err = s.member(i); err != nil {
					return 0, err
				}
			}
			break
		}
	}
}

// member scans a member name and its colon at in[i:], returning the offset
// of the member's value.
func (s *scanner) member(i int) (int, error) {
	if i >= len(s.in) || s.in[i] != '"' {
		return 0, errNotJSON
	}
	i, err := s.str(i)
	if err != nil {
		return 0, err
	}
	i = s.ws(i)
	if i >= len(s.in) || s.in[i] != ':' {
		return 0, errNotJSON
	}
	return s.ws(i + 1), nil
}

// number scans a JSON number at in[i:].
func (s *scanner) number(i int) (int, error) {
	in := s.in
	digits := func(i int) (int, bool) {
		j := i
		for j < len(in) && '0' <= in[j] && in[j] <= '9' {
			j++
		}
		return j, j > i
	}
	if i < len(in) && in[i] == '-' {
		i++
	}
	if i >= len(in) {
		return 0, errNotJSON
	}
	switch {
	case in[i] == '0':
		i++
	case '1' <= in[i] && in[i] <= '9':
		i, _ = digits(i)
	default:
		return 0, errNotJSON
	}
	var ok bool
	if i < len(in) && in[i] == '.' {
		if i, ok = digits(i + 1); !ok {
			return 0, errNotJSON
		}
	}
	if i < len(in) && (in[i] == 'e' || in[i] == 'E') {
		i++
		if i < len(in) && (in[i] == '+' || in[i] == '-') {
			i++
		}
		if i, ok = digits(i); !ok {
			return 0, errNotJSON
		}
	}
	return i, nil
}

// str scans the string at in[i:] (in[i] is the quote), rewrites its
// occurrences and returns the offset after the closing quote.
func (s *scanner) str(i int) (int, error) {
	in := s.in
	start := i + 1
	esc := false
	j := start
	for {
		for j < len(in) && !strStop[in[j]] {
			j++
		}
		if j >= len(in) || in[j] < 0x20 {
			return 0, errNotJSON
		}
		if in[j] == '"' {
			break
		}
		esc = true
		if j+1 >= len(in) {
			return 0, errNotJSON
		}
		switch in[j+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			j += 2
		case 'u':
			if j+6 > len(in) {
				return 0, errNotJSON
			}
			for _, h := range in[j+2 : j+6] {
				if !isHex(h) {
					return 0, errNotJSON
				}
			}
			j += 6
		default:
			return 0, errNotJSON
		}
	}
	raw := in[start:j]
	switch {
	case len(raw) < s.m.minLen:
		// Too short to hold an occurrence (escapes only lengthen it).
	case esc:
		s.escaped(start, raw)
	default:
		if a, _ := s.m.find(raw, 0); a >= 0 {
			s.flush(start)
			s.out, _ = s.m.rewriteText(s.out, raw)
			s.last = j
		}
	}
	return j + 1, nil
}

// flush copies in[last:upto] to out.
func (s *scanner) flush(upto int) {
	if s.out == nil {
		s.out = make([]byte, 0, len(s.in)+len(s.in)/8)
	}
	s.out = append(s.out, s.in[s.last:upto]...)
	s.last = upto
}

// escaped rewrites the string raw (the valid contents of a string with
// escapes, at in[start:]): it is matched on its decoded ASCII characters
// and only the matched spans are replaced, so the other escapes stay as
// written.
func (s *scanner) escaped(start int, raw []byte) {
	// An occurrence needs "://": literal, or with a slash or colon
	// escaped.
	if !bytes.Contains(raw, sep) && !bytes.Contains(raw, []byte(`\/`)) && !bytes.Contains(raw, []byte(`\u`)) {
		return
	}
	units, offs := s.units[:0], s.offs[:0]
	for k := 0; k < len(raw); {
		offs = append(offs, k)
		c := raw[k]
		if c != '\\' {
			units = append(units, c)
			k++
			continue
		}
		switch raw[k+1] {
		case 'u':
			r := hexVal(raw[k+2])<<12 | hexVal(raw[k+3])<<8 | hexVal(raw[k+4])<<4 | hexVal(raw[k+5])
			if r < 0x80 {
				units = append(units, byte(r))
			} else {
				units = append(units, 0x80) // matches nothing
			}
			k += 6
		case 'b':
			units, k = append(units, '\b'), k+2
		case 'f':
			units, k = append(units, '\f'), k+2
		case 'n':
			units, k = append(units, '\n'), k+2
		case 'r':
			units, k = append(units, '\r'), k+2
		case 't':
			units, k = append(units, '\t'), k+2
		default: // '"', '\\', '/'
			units, k = append(units, raw[k+1]), k+2
		}
	}
	offs = append(offs, len(raw))
	s.units, s.offs = units, offs
	for from := 0; ; {
		a, e := s.m.find(units, from)
		if a < 0 {
			return
		}
		s.flush(start + offs[a])
		s.out = append(s.out, s.m.public...)
		s.last = start + offs[e]
		from = e
	}
}

// strStop marks the bytes that end a run of plain string bytes: the quote,
// the backslash and the control characters.
var strStop = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func hexVal(c byte) rune {
	switch {
	case c <= '9':
		return rune(c - '0')
	case c >= 'a':
		return rune(c - 'a' + 10)
	}
	return rune(c - 'A' + 10)
}
