package compartment

import (
	"strconv"
	"strings"
)

// RefKind classifies a Reference.reference value.
type RefKind uint8

// The kinds of Reference.reference values (see the package documentation for
// the rules).
const (
	// RefInvalid is a value that cannot be normalised unambiguously: treat
	// it as foreign, never as one of our resources.
	RefInvalid RefKind = iota
	// RefLocal names a resource of this server: "T/id", "T/id/_history/v",
	// or one of the configured base URLs followed by "/" and either form.
	RefLocal
	// RefExternal is an absolute http(s) URL that is not below one of the
	// configured base URLs.
	RefExternal
	// RefContained is "#id" (or "#"), a resource contained in the same one.
	RefContained
	// RefURN is "urn:uuid:…" or "urn:oid:…", resolved within a Bundle by
	// its caller.
	RefURN
	// RefConditional is "T?criteria", a conditional reference the server
	// resolves in a transaction.
	RefConditional
)

var refKindNames = [...]string{"RefInvalid", "RefLocal", "RefExternal", "RefContained", "RefURN", "RefConditional"}

// String returns the name of the constant, e.g. "RefLocal".
func (k RefKind) String() string {
	if int(k) < len(refKindNames) {
		return refKindNames[k]
	}
	return "RefKind(" + strconv.Itoa(int(k)) + ")"
}

// Ref is a parsed Reference.reference value. Type, ID and Version (empty
// when unversioned) are set for RefLocal and, when the URL path ends in
// Type/ID or Type/ID/_history/Version, for RefExternal; Type alone for
// RefConditional. They are substrings of the parsed value, as written: for
// RefLocal and RefConditional Type has the shape of a resource type name
// ([A-Z][A-Za-z]*), for RefExternal it is any run of ASCII letters; ID and
// Version are FHIR ids other than "." and "..".
type Ref struct {
	Kind              RefKind
	Type, ID, Version string
}

// ParseReference classifies and splits the Reference.reference value ref by
// the rules of the package documentation. It does not allocate.
func (c *Checker) ParseReference(ref string) Ref {
	var p parsed
	parseRef(c, ref, &p)
	return Ref{Kind: p.kind, Type: ref[p.typ.i:p.typ.j], ID: ref[p.id.i:p.id.j], Version: ref[p.ver.i:p.ver.j]}
}

// RefersTo reports whether the Reference.reference value ref names the
// resource t/id: it is a RefLocal of type t and id id, the type and id
// compared exactly (case-sensitively). Versioned references count;
// anything else — other types or ids, other servers, contained "#id", URNs,
// conditional, encoded or padded forms — does not.
func (c *Checker) RefersTo(ref string, t Type, id string) bool {
	return t.valid() && validID(id) && refersTo(c, ref, typeNames[t], id)
}

// RefersToOther reports whether ref names, or may name, a resource of type t
// on this server other than t/id, as a guard for what a client writes:
//
//   - a RefLocal of type t (compared case-insensitively, since a lenient
//     server may resolve "PATIENT/9") with another id;
//   - a RefExternal whose path ends in t/<another id> (we cannot know every
//     name the server is reached under);
//   - a RefConditional of type t (case-insensitively): the server chooses
//     the resource;
//   - a RefInvalid whose text contains t case-insensitively, also when
//     spelled with percent-encoded bytes ("patient/9", "Pati%65nt/9").
//
// Contained and URN references are not; their targets are checked where
// they are. RefersToOther is false for an invalid t; an id that is not a
// FHIR id is no id of this server, so every reference of type t is "other".
func (c *Checker) RefersToOther(ref string, t Type, id string) bool {
	if !t.valid() {
		return false
	}
	name := typeNames[t]
	var p parsed
	parseRef(c, ref, &p)
	switch p.kind {
	case RefLocal, RefExternal:
		return p.typ.j > p.typ.i && equalFold(ref[p.typ.i:p.typ.j], name) && ref[p.id.i:p.id.j] != id
	case RefConditional:
		return equalFold(ref[p.typ.i:p.typ.j], name)
	case RefInvalid:
		return containsFoldDecoded(ref, name)
	}
	return false
}

// refersTo is RefersTo for a valid typ and id; membership uses it on the
// bytes of a JSON string.
func refersTo[S string | []byte](c *Checker, ref S, typ, id string) bool {
	var p parsed
	parseRef(c, ref, &p)
	return p.kind == RefLocal && string(ref[p.typ.i:p.typ.j]) == typ && string(ref[p.id.i:p.id.j]) == id
}

// span is the byte range [i, j) of a part of a reference.
type span struct{ i, j int }

// parsed is a reference parsed by parseRef: its kind and where its type, id
// and version are (empty spans when absent).
type parsed struct {
	kind         RefKind
	typ, id, ver span
}

const history = "/_history/"

// parseRef is the one reference normaliser of the package: ParseReference,
// RefersTo, RefersToOther, membership (bytes and maps) and Binds all go
// through it. It fills r, which must be the zero value, and does not
// allocate.
func parseRef[S string | []byte](c *Checker, s S, r *parsed) {
	// A leading run of letters is a resource type ("Patient/…", "Patient?…")
	// or a scheme ("https:…", "urn:…").
	k := 0
	for k < len(s) && isLetter(s[k]) {
		k++
	}
	if k == 0 {
		if len(s) > 0 && s[0] == '#' {
			r.kind = RefContained
		}
		return
	}
	if k == len(s) {
		return
	}
	upper := s[0] >= 'A' && s[0] <= 'Z'
	switch s[k] {
	case '/':
		if upper {
			// The common "T/id" directly; parseLocalRest reads the rest.
			if j := idEnd(s, k+1); j == len(s) && fhirID(s, k+1, j) {
				r.kind, r.typ, r.id = RefLocal, span{0, k}, span{k + 1, j}
				return
			}
			parseLocalRest(s, 0, k, r)
		}
	case '?':
		if upper && validCriteria(s[k+1:]) {
			r.kind, r.typ = RefConditional, span{0, k}
		}
	case ':':
		switch {
		case foldEqual(s[:k], "urn"):
			if validURN(s[k+1:]) {
				r.kind = RefURN
			}
		case foldEqual(s[:k], "https") || foldEqual(s[:k], "http"):
			parseAbs(c, s, k, r)
		}
	}
}

// parseLocal parses s[p:] as exactly "T/id" or "T/id/_history/v", neither
// id nor v a dot segment; when it is, it sets r to that RefLocal and
// returns true, else it leaves r alone.
func parseLocal[S string | []byte](s S, p int, r *parsed) bool {
	i := p
	if i >= len(s) || s[i] < 'A' || s[i] > 'Z' {
		return false
	}
	for i++; i < len(s) && isLetter(s[i]); i++ {
	}
	return parseLocalRest(s, p, i, r)
}

// parseLocalRest is parseLocal after the type s[p:i].
func parseLocalRest[S string | []byte](s S, p, i int, r *parsed) bool {
	if i >= len(s) || s[i] != '/' {
		return false
	}
	j := idEnd(s, i+1)
	if !fhirID(s, i+1, j) {
		return false
	}
	var ver span
	if j < len(s) {
		if len(s)-j < len(history) || string(s[j:j+len(history)]) != history {
			return false
		}
		v := j + len(history)
		if ver = (span{v, idEnd(s, v)}); ver.j != len(s) || !fhirID(s, ver.i, ver.j) {
			return false
		}
	}
	r.kind, r.typ, r.id, r.ver = RefLocal, span{p, i}, span{i + 1, j}, ver
	return true
}

// dots reports whether s is "." or "..": FHIR ids by their pattern, but dot
// segments in a URL, which name no resource.
func dots[S string | []byte](s S) bool {
	return len(s) == 1 && s[0] == '.' || len(s) == 2 && s[0] == '.' && s[1] == '.'
}

// idEnd returns the end of the run of FHIR id bytes at s[i:].
func idEnd[S string | []byte](s S, i int) int {
	for i < len(s) && isIDByte(s[i]) {
		i++
	}
	return i
}

// fhirID reports whether the run of id bytes s[i:j] is an id a reference
// may name: 1 to 64 bytes, not a dot segment.
func fhirID[S string | []byte](s S, i, j int) bool {
	return j > i && j-i <= 64 && !dots(s[i:j])
}

// absURL is an absolute http(s) URL split by splitAbs.
type absURL struct {
	scheme, host, port, path span // port is empty for a default port
}

// splitAbs splits the absolute http(s) URL s whose scheme ends at s[k] (a
// colon) and validates it: no userinfo, query, fragment, percent-encoding,
// backslash, white space, control or non-ASCII byte; a host name or a
// bracketed IPv6 address; a port of 1 to 65535 without leading zeros (an empty
// or default port is dropped); a path of non-empty segments other than "."
// and "..", or no path, or "/" (then path is empty).
func splitAbs[S string | []byte](s S, k int) (u absURL, ok bool) {
	u.scheme = span{0, k}
	i := k + 1
	if len(s)-i < 2 || s[i] != '/' || s[i+1] != '/' {
		return u, false
	}
	i += 2
	h := i
	if i < len(s) && s[i] == '[' {
		for i++; i < len(s) && (isHex(s[i]) || s[i] == ':' || s[i] == '.'); i++ {
		}
		if i >= len(s) || s[i] != ']' || !validIPv6(s[h+1:i]) {
			return u, false
		}
		i++
	} else {
		for i < len(s) && (isIDByte(s[i]) || s[i] == '_') {
			i++
		}
		if i == h {
			return u, false
		}
	}
	u.host = span{h, i}
	if i < len(s) && s[i] == ':' {
		i++
		p := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if n := i - p; n > 0 {
			if n > 5 || s[p] == '0' {
				return u, false
			}
			port := 0
			for q := p; q < i; q++ {
				port = port*10 + int(s[q]-'0')
			}
			if port > 65535 {
				return u, false
			}
			def := "443"
			if k == 4 {
				def = "80"
			}
			if string(s[p:i]) != def {
				u.port = span{p, i}
			}
		}
	}
	u.path = span{i, i}
	if i == len(s) {
		return u, true
	}
	if s[i] != '/' {
		return u, false
	}
	if i+1 == len(s) {
		return u, true
	}
	u.path.j = len(s)
	seg := i + 1
	for j := seg; j <= len(s); j++ {
		if j < len(s) && s[j] != '/' {
			if !isPathByte(s[j]) {
				return u, false
			}
			continue
		}
		if j == seg || dots(s[seg:j]) {
			return u, false
		}
		seg = j + 1
	}
	return u, true
}

// validIPv6 reports whether s is an IPv6 address (without zone) as
// net/netip reads it: groups of 1 to 4 hex digits, at most one "::" that
// stands for at least one group, an optional dotted IPv4 address in place of
// the last two groups.
func validIPv6[S string | []byte](s S) bool {
	n, ellipsis, i := 0, -1, 0 // n: 16-bit groups read
	if len(s) >= 2 && s[0] == ':' && s[1] == ':' {
		ellipsis, i = 0, 2
		if i == len(s) {
			return true
		}
	}
	for n < 8 {
		j := i
		for j < len(s) && isHex(s[j]) {
			j++
		}
		if j == i || j-i > 4 {
			return false
		}
		if j < len(s) && s[j] == '.' {
			if ellipsis < 0 && n != 6 || n > 6 || !validIPv4(s[i:]) {
				return false
			}
			n, i = n+2, len(s)
			break
		}
		n, i = n+1, j
		if i == len(s) {
			break
		}
		if s[i] != ':' || i+1 == len(s) {
			return false
		}
		i++
		if s[i] == ':' {
			if ellipsis >= 0 {
				return false
			}
			ellipsis = n
			if i++; i == len(s) {
				break
			}
		}
	}
	return i == len(s) && (ellipsis < 0) == (n == 8)
}

// validIPv4 reports whether s is a dotted-decimal IPv4 address: four
// numbers of 0 to 255 without leading zeros.
func validIPv4[S string | []byte](s S) bool {
	fields, val, digits := 0, 0, 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if digits == 0 {
				return false
			}
			fields, val, digits = fields+1, 0, 0
			continue
		}
		c := s[i]
		if c < '0' || c > '9' || digits == 1 && val == 0 {
			return false
		}
		val, digits = val*10+int(c-'0'), digits+1
		if val > 255 {
			return false
		}
	}
	return fields == 4
}

// parseAbs classifies the absolute http(s) URL s whose scheme ends at s[k].
func parseAbs[S string | []byte](c *Checker, s S, k int, r *parsed) {
	u, ok := splitAbs(s, k)
	if !ok {
		return
	}
	ours := false
	for i := range c.bases {
		b := &c.bases[i]
		if !foldEqual(s[u.scheme.i:u.scheme.j], b.scheme) || !foldEqual(s[u.host.i:u.host.j], b.host) ||
			string(s[u.port.i:u.port.j]) != b.port {
			continue
		}
		path := s[u.path.i:u.path.j]
		if len(path) < len(b.path) || string(path[:len(b.path)]) != b.path {
			continue
		}
		if len(path) == len(b.path) {
			ours = true // the base itself
			continue
		}
		if path[len(b.path)] != '/' {
			continue
		}
		if parseLocal(s, u.path.i+len(b.path)+1, r) {
			return
		}
		ours = true
	}
	if ours {
		// Below one of our bases but not T/id: nothing we can name.
		return
	}
	r.kind = RefExternal
	// The tail of the path: T/id or T/id/_history/v. segs holds the last
	// segments, the last first.
	var segs [4]span
	n, j := 0, u.path.j
	for i := j - 1; i >= u.path.i && n < len(segs); i-- {
		if s[i] == '/' {
			segs[n] = span{i + 1, j}
			n++
			j = i
		}
	}
	var typ, id, ver span
	switch {
	case n >= 2 && string(s[segs[1].i:segs[1].j]) == "_history":
		if n < 4 || !validID(s[segs[0].i:segs[0].j]) {
			return
		}
		typ, id, ver = segs[3], segs[2], segs[0]
	case n >= 2:
		typ, id = segs[1], segs[0]
	default:
		return
	}
	if !letters(s[typ.i:typ.j]) || !validID(s[id.i:id.j]) {
		return
	}
	r.typ, r.id, r.ver = typ, id, ver
}

// validURN reports whether s (after "urn:") is "uuid:" followed by hex
// digits and hyphens, or "oid:" followed by digits and dots, the NID in any
// letter case.
func validURN[S string | []byte](s S) bool {
	var rest S
	var oid bool
	switch {
	case len(s) > 5 && foldEqual(s[:5], "uuid:"):
		rest = s[5:]
	case len(s) > 4 && foldEqual(s[:4], "oid:"):
		rest, oid = s[4:], true
	default:
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !(c >= '0' && c <= '9' || !oid && (isHex(c) || c == '-') || oid && c == '.') {
			return false
		}
	}
	return true
}

// validCriteria reports whether s can be the criteria of a conditional
// reference: not empty, no white space, control byte or '#'.
func validCriteria[S string | []byte](s S) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || c == '#' {
			return false
		}
	}
	return true
}

// Byte classes, looked up in byteClass.
const (
	clLetter uint8 = 1 << iota // A-Z a-z
	clID                       // a byte of a FHIR id: A-Z a-z 0-9 - .
	clHex                      // 0-9 A-F a-f
	clPath                     // an RFC 3986 pchar other than '%'
)

var byteClass = func() (t [256]uint8) {
	for c := range 256 {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		digit := c >= '0' && c <= '9'
		if letter {
			t[c] |= clLetter
		}
		if letter || digit || c == '-' || c == '.' {
			t[c] |= clID | clPath
		}
		if digit || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' {
			t[c] |= clHex
		}
		if strings.IndexByte("_~!$&'()*+,;=:@", byte(c)) >= 0 {
			t[c] |= clPath
		}
	}
	return t
}()

func isLetter(c byte) bool { return byteClass[c]&clLetter != 0 }

func isHex(c byte) bool { return byteClass[c]&clHex != 0 }

func isIDByte(c byte) bool { return byteClass[c]&clID != 0 }

func isPathByte(c byte) bool { return byteClass[c]&clPath != 0 }

func letters[S string | []byte](s S) bool {
	for i := 0; i < len(s); i++ {
		if !isLetter(s[i]) {
			return false
		}
	}
	return len(s) > 0
}

// foldEqual reports whether s equals the lower-case ASCII string lower,
// ignoring ASCII case.
func foldEqual[S string | []byte](s S, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if toLower(s[i]) != lower[i] {
			return false
		}
	}
	return true
}

// equalFold reports whether the ASCII strings a and b are equal ignoring
// ASCII case.
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if toLower(a[i]) != toLower(b[i]) {
			return false
		}
	}
	return true
}

func toLower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// containsFoldDecoded reports whether s contains name ignoring ASCII case,
// each byte of it written either plainly or percent-encoded ("%65").
func containsFoldDecoded(s, name string) bool {
	for i := range len(s) {
		j, k := i, 0
		for ; k < len(name) && j < len(s); k++ {
			c := s[j]
			if c == '%' && j+2 < len(s) && isHex(s[j+1]) && isHex(s[j+2]) {
				c = byte(hexVal(s[j+1])<<4 | hexVal(s[j+2]))
				j += 3
			} else {
				j++
			}
			if toLower(c) != toLower(name[k]) {
				break
			}
		}
		if k == len(name) {
			return true
		}
	}
	return false
}

// hexVal returns the value of the hex digit c, or -1.
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
