package scope

import (
	"errors"
	"fmt"
	"strings"
)

// Context is the kind of access a resource scope grants: to the data of the
// patient in context, to what the user may see, or to what a backend client
// was authorised for.
type Context uint8

// Resource-scope contexts. The zero Context is no context.
const (
	Patient Context = iota + 1 // patient/
	User                       // user/
	System                     // system/
)

const numContexts = 3

// String returns "patient", "user" or "system".
func (c Context) String() string {
	switch c {
	case Patient:
		return "patient"
	case User:
		return "user"
	case System:
		return "system"
	}
	return ""
}

// Permission is a set of SMART v2 permission letters.
type Permission uint8

// Permissions, one bit each; combine them with |.
const (
	Create Permission = 1 << iota // c: type-level create
	Read                          // r: read, vread, instance history
	Update                        // u: update (including update-as-create), patch
	Delete                        // d: delete
	Search                        // s: type and system search, type and system history

	// All is every permission, "cruds".
	All = Create | Read | Update | Delete | Search
)

const permLetters = "cruds"

// String returns the permission letters in canonical order ("rs", "cud").
func (p Permission) String() string {
	var b [5]byte
	n := 0
	for i := 0; i < 5; i++ {
		if p&(1<<i) != 0 {
			b[n] = permLetters[i]
			n++
		}
	}
	return string(b[:n])
}

// ParsePermission parses v2 letters ("rs", "cud"): a non-empty, in-order
// subset of "cruds" without repeats.
func ParsePermission(letters string) (Permission, error) {
	if letters == "" {
		return 0, errEmptyPermissions
	}
	var p Permission
	next := 0
	for i := 0; i < len(letters); i++ {
		j := strings.IndexByte(permLetters[next:], letters[i])
		if j < 0 {
			if strings.IndexByte(permLetters, letters[i]) >= 0 {
				return 0, fmt.Errorf("%w: %q", errPermissionOrder, letters)
			}
			return 0, fmt.Errorf("%w: %q", errUnknownPermission, letters)
		}
		p |= 1 << (next + j)
		next += j + 1
	}
	return p, nil
}

// Kind classifies a scope.
type Kind uint8

// Scope kinds.
const (
	KindResource  Kind = iota + 1 // patient/, user/, system/ resource scopes
	KindLaunch                    // launch, launch/patient, launch/<type>[?role=]
	KindIdentity                  // openid, fhirUser, profile
	KindRefresh                   // offline_access, online_access
	KindExtension                 // anything else; kept, grants nothing
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case KindResource:
		return "resource"
	case KindLaunch:
		return "launch"
	case KindIdentity:
		return "identity"
	case KindRefresh:
		return "refresh"
	case KindExtension:
		return "extension"
	}
	return "invalid"
}

// The errors of Parse, wrapped with the offending text. A caller has no
// need to tell them apart: a scope that does not parse grants nothing, and
// the error's text says why (InvalidScope.Err).
var (
	errEmpty             = errors.New("scope: empty scope")
	errCharacter         = errors.New("scope: character not allowed in a scope token")
	errContext           = errors.New("scope: context must be patient, user or system")
	errResourceType      = errors.New("scope: invalid resource type")
	errEmptyPermissions  = errors.New("scope: empty permission letters")
	errPermissionOrder   = errors.New("scope: permission letters out of order or repeated")
	errUnknownPermission = errors.New("scope: unknown permission letter")
	errV1Constraint      = errors.New("scope: v1 scopes (.read, .write, .*) take no constraints")
	errConstraint        = errors.New("scope: invalid constraint")
)

// Constraint is one granular `param=value` item of a v2 scope. Several
// constraints in one scope are ANDed; the comma-separated Values of one
// constraint are ORed, as in a FHIR search.
type Constraint struct {
	// Name is the search parameter without modifier, e.g. "category" or, for a
	// chain, "patient.birthdate".
	Name string
	// Modifier is the text after ':' in the parameter name ("in" for
	// "code:in"), or "".
	Modifier string
	// Value is the percent-decoded value, FHIR escapes (\, \| \$ \\) kept.
	Value string
	// Values is Value split at unescaped commas.
	Values []string
}

// Chained reports whether the parameter is a chain ("patient.birthdate").
func (c Constraint) Chained() bool { return strings.IndexByte(c.Name, '.') >= 0 }

// String returns the canonical `name[:modifier]=value` form, percent-encoded
// where the scope grammar requires it.
func (c Constraint) String() string {
	var b strings.Builder
	c.appendTo(&b)
	return b.String()
}

func (c Constraint) appendTo(b *strings.Builder) {
	escapeTo(b, c.Name, true)
	if c.Modifier != "" {
		b.WriteByte(':')
		escapeTo(b, c.Modifier, true)
	}
	b.WriteByte('=')
	escapeTo(b, c.Value, false)
}

// ConstraintSet is the constraints of one scope, all of which must hold.
type ConstraintSet []Constraint

// String returns the canonical query form, "a=1&b=2".
func (cs ConstraintSet) String() string {
	var b strings.Builder
	for i, c := range cs {
		if i > 0 {
			b.WriteByte('&')
		}
		c.appendTo(&b)
	}
	return b.String()
}

// Scope is one parsed scope.
type Scope struct {
	Kind Kind

	// Resource scopes.
	Context      Context       // patient, user or system
	ResourceType string        // a type name or "*"
	Type         TypeID        // valid when KnownType
	KnownType    bool          // ResourceType is "*" or a known R4/R5 type; unknown types match nothing
	Permissions  Permission    // the letters granted
	V1           bool          // written as .read, .write or .*
	Constraints  ConstraintSet // granular constraints, nil when none

	// Launch scopes: LaunchContext is "" for the bare "launch" (EHR launch),
	// otherwise the text after "launch/" ("patient", "encounter",
	// "imagingstudy"); LaunchRole is the ?role= value.
	LaunchContext string
	LaunchRole    string

	// Name is the scope text for identity, refresh and extension scopes.
	Name string
}

// Wildcard reports whether a resource scope covers every type ("*").
func (s Scope) Wildcard() bool { return s.ResourceType == "*" }

// String returns the canonical text of the scope. Parsing it gives the same
// Scope. v1 scopes keep their v1 suffix (".read", ".write", ".*").
func (s Scope) String() string {
	switch s.Kind {
	case KindResource:
		return s.resourceString(s.V1)
	case KindLaunch:
		if s.LaunchContext == "" {
			return "launch"
		}
		if s.LaunchRole != "" {
			return "launch/" + s.LaunchContext + "?role=" + s.LaunchRole
		}
		return "launch/" + s.LaunchContext
	}
	return s.Name
}

func (s Scope) resourceString(v1 bool) string {
	var b strings.Builder
	b.WriteString(s.Context.String())
	b.WriteByte('/')
	b.WriteString(s.ResourceType)
	b.WriteByte('.')
	if v1 {
		switch s.Permissions {
		case Read | Search:
			b.WriteString("read")
		case Create | Update | Delete:
			b.WriteString("write")
		default:
			b.WriteString("*")
		}
	} else {
		b.WriteString(s.Permissions.String())
	}
	if len(s.Constraints) > 0 {
		b.WriteByte('?')
		b.WriteString(s.Constraints.String())
	}
	return b.String()
}

// Parse parses one scope token. Identity, refresh, launch and extension
// scopes never fail (unless the text is empty or holds characters a scope
// token cannot hold); a scope that looks like a resource scope must be valid.
// A resource scope naming a type FHIR R4 and R5 do not define parses with
// KnownType false and matches nothing.
func Parse(s string) (Scope, error) {
	if s == "" {
		return Scope{}, errEmpty
	}
	for i := 0; i < len(s); i++ {
		// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return Scope{}, fmt.Errorf("%w: byte 0x%02x at %d", errCharacter, c, i)
		}
	}
	switch s {
	case "openid", "fhirUser", "profile":
		return Scope{Kind: KindIdentity, Name: s}, nil
	case "offline_access", "online_access":
		return Scope{Kind: KindRefresh, Name: s}, nil
	case "launch":
		return Scope{Kind: KindLaunch}, nil
	}
	slash := strings.IndexByte(s, '/')
	if slash < 0 {
		return Scope{Kind: KindExtension, Name: s}, nil
	}
	prefix := s[:slash]
	var ctx Context
	switch prefix {
	case "patient":
		ctx = Patient
	case "user":
		ctx = User
	case "system":
		ctx = System
	case "launch":
		if sc, ok := parseLaunch(s[slash+1:]); ok {
			return sc, nil
		}
		return Scope{Kind: KindExtension, Name: s}, nil
	default:
		if prefix == "*" || strings.EqualFold(prefix, "patient") || strings.EqualFold(prefix, "user") || strings.EqualFold(prefix, "system") {
			return Scope{}, fmt.Errorf("%w: %q", errContext, prefix)
		}
		return Scope{Kind: KindExtension, Name: s}, nil
	}
	return parseResource(ctx, s[slash+1:])
}

func parseLaunch(rest string) (Scope, bool) {
	name, query, hasQuery := strings.Cut(rest, "?")
	if name == "" {
		return Scope{}, false
	}
	for i := 0; i < len(name); i++ {
		if !isAlnum(name[i]) {
			return Scope{}, false
		}
	}
	sc := Scope{Kind: KindLaunch, LaunchContext: name}
	if hasQuery {
		role, ok := strings.CutPrefix(query, "role=")
		if !ok || role == "" || strings.ContainsAny(role, "&") {
			return Scope{}, false
		}
		sc.LaunchRole = role
	}
	return sc, true
}

func parseResource(ctx Context, rest string) (Scope, error) {
	head, query, hasQuery := strings.Cut(rest, "?")
	typ, perms, ok := strings.Cut(head, ".")
	if !ok {
		return Scope{}, fmt.Errorf("%w: no '.' before the permissions in %q", errEmptyPermissions, head)
	}
	sc := Scope{Kind: KindResource, Context: ctx, ResourceType: typ}
	switch {
	case typ == "*":
		sc.KnownType = true
	case validTypeName(typ):
		sc.Type, sc.KnownType = LookupType(typ)
	default:
		return Scope{}, fmt.Errorf("%w: %q", errResourceType, typ)
	}
	switch perms {
	case "read":
		sc.Permissions, sc.V1 = Read|Search, true
	case "write":
		sc.Permissions, sc.V1 = Create|Update|Delete, true
	case "*":
		sc.Permissions, sc.V1 = All, true
	default:
		p, err := ParsePermission(perms)
		if err != nil {
			return Scope{}, err
		}
		sc.Permissions = p
	}
	if hasQuery {
		if sc.V1 {
			return Scope{}, errV1Constraint
		}
		cs, err := parseConstraints(query)
		if err != nil {
			return Scope{}, err
		}
		sc.Constraints = cs
	}
	return sc, nil
}

// validTypeName accepts the shape of a FHIR type name: a letter, then letters
// and digits.
func validTypeName(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isAlnum(s[i]) {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isAlnum(c byte) bool { return isAlpha(c) || c >= '0' && c <= '9' }

// parseConstraints parses a granular query ("category=a|b&code=c") as it
// stands after the '?' of a scope: percent-decoded, '+' kept as '+'.
func parseConstraints(query string) (ConstraintSet, error) {
	if query == "" {
		return nil, fmt.Errorf("%w: empty query after '?'", errConstraint)
	}
	var cs ConstraintSet
	for item := range strings.SplitSeq(query, "&") {
		rawName, rawValue, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("%w: %q has no '='", errConstraint, item)
		}
		name, err := unescape(rawName)
		if err != nil {
			return nil, err
		}
		value, err := unescape(rawValue)
		if err != nil {
			return nil, err
		}
		var c Constraint
		c.Name, c.Modifier, _ = strings.Cut(name, ":")
		if c.Name == "" || !validParamName(c.Name) {
			return nil, fmt.Errorf("%w: parameter name %q", errConstraint, name)
		}
		if strings.HasPrefix(name, c.Name+":") && c.Modifier == "" {
			return nil, fmt.Errorf("%w: empty modifier in %q", errConstraint, name)
		}
		if value == "" {
			return nil, fmt.Errorf("%w: %q has an empty value", errConstraint, name)
		}
		c.Value = value
		c.Values = splitValues(value)
		cs = append(cs, c)
	}
	return cs, nil
}

// validParamName accepts search parameter names and chains: letters, digits,
// '-', '_' and '.', not starting or ending with '.'.
func validParamName(s string) bool {
	if s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

// splitValues splits at commas not escaped with a backslash (FHIR search
// escaping). Escapes stay in the values.
func splitValues(v string) []string {
	var out []string
	start := 0
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case ',':
			out = append(out, v[start:i])
			start = i + 1
		}
	}
	return append(out, v[start:])
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// unescape percent-decodes s. Unlike form decoding, '+' stays '+'.
func unescape(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 {
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("%w: truncated percent escape in %q", errConstraint, s)
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("%w: bad percent escape in %q", errConstraint, s)
		}
		b = append(b, hi<<4|lo)
		i += 2
	}
	return string(b), nil
}

// escapeTo writes s percent-encoding what the scope grammar (or the
// constraint syntax) cannot hold literally: '%', '&', space, '"', '\',
// controls and non-ASCII bytes; in names also '=' and ':'.
func escapeTo(b *strings.Builder, s string, name bool) {
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c >= 0x7f || c == '%' || c == '&' || c == '"' || c == '\\' || c == '#' || (name && (c == '=' || c == ':')) {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
			continue
		}
		b.WriteByte(c)
	}
}
