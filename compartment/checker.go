package compartment

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Errors returned by the package; test with errors.Is.
var (
	// ErrConfig reports an invalid Config.
	ErrConfig = errors.New("compartment: invalid config")
	// ErrInvalidID reports a compartment id that is not a FHIR id
	// ([A-Za-z0-9\-.]{1,64}).
	ErrInvalidID = errors.New("compartment: invalid id")
	// ErrUnknownType reports a compartment type the Checker's release does
	// not define.
	ErrUnknownType = errors.New("compartment: unknown compartment type")
	// ErrMalformed reports a document that is not valid JSON, or that
	// repeats a member name the check depends on.
	ErrMalformed = errors.New("compartment: malformed JSON")
	// ErrNotResource reports JSON that is not an object with a string
	// resourceType.
	ErrNotResource = errors.New("compartment: not a FHIR resource")
	// ErrNotMemberType reports a search of a resource type that has no link
	// to the compartment, so it cannot be narrowed to it.
	ErrNotMemberType = errors.New("compartment: resource type is not in the compartment")
)

// Config configures a Checker.
type Config struct {
	// Version is the FHIR release of the server (R4 or R5). Required.
	Version Version
	// BaseURLs are the absolute base URLs under which this server is
	// reached, e.g. "https://fhir.example.org/r4". An absolute reference
	// names one of our resources only when its base is listed here (scheme
	// and host compared case-insensitively, the path exactly, trailing
	// slashes ignored); with none, only relative references count.
	BaseURLs []string
	// ExcludeLinked makes a resource of the compartment's own type (a
	// Patient in the Patient compartment) a member only as the focal
	// resource, never through a link from it (Patient.link). FHIR lists
	// Patient.link as a link; SMART leaves linked-patient access to the
	// server's documentation.
	ExcludeLinked bool
}

// Checker answers membership and search-narrowing questions for one FHIR
// release and one server. It is safe for concurrent use.
type Checker struct {
	version       Version
	defs          *[Device + 1]*Definition
	bases         []base
	excludeLinked bool
}

// base is a normalized base URL; the first n bytes (scheme and host) compare
// case-insensitively.
type base struct {
	s string
	n int
}

// New returns a Checker for cfg.
func New(cfg Config) (*Checker, error) {
	if cfg.Version != R4 && cfg.Version != R5 {
		return nil, fmt.Errorf("%w: unknown FHIR version %v", ErrConfig, cfg.Version)
	}
	c := &Checker{version: cfg.Version, defs: &definitions[cfg.Version], excludeLinked: cfg.ExcludeLinked}
	for _, raw := range cfg.BaseURLs {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: base URL %q: %v", ErrConfig, raw, err)
		}
		if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" || u.User != nil ||
			u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" ||
			u.RawPath != "" || strings.ContainsAny(u.Path, "%\\ ") {
			return nil, fmt.Errorf("%w: base URL %q must be a plain absolute http(s) URL", ErrConfig, raw)
		}
		head := strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host)
		c.bases = append(c.bases, base{s: head + strings.TrimRight(u.Path, "/"), n: len(head)})
	}
	return c, nil
}

// Version returns the FHIR release the Checker was built for.
func (c *Checker) Version() Version { return c.version }

// Definition returns the definition of compartment type t for the Checker's
// release, or nil when there is none.
func (c *Checker) Definition(t Type) *Definition {
	if !t.valid() {
		return nil
	}
	return c.defs[t]
}

// ValidID reports whether id is a FHIR id: 1 to 64 of A-Z a-z 0-9 - and '.'.
func ValidID(id string) bool { return validID(id) }

func validID[S string | []byte](id S) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// RefersTo reports whether the Reference.reference value ref names the
// resource t/id: "T/id", "T/id/_history/v", or either form after one of the
// configured base URLs. Anything else — other types or ids, other servers,
// contained "#id", URNs, encoded or padded forms — does not.
func (c *Checker) RefersTo(ref string, t Type, id string) bool {
	return t.valid() && validID(id) && refersTo(c, ref, typeNames[t], id)
}

const history = "/_history/"

func refersTo[S string | []byte](c *Checker, ref S, typ, id string) bool {
	// Strip a version suffix.
	if i := lastIndex(ref, history); i >= 0 {
		if !validID(ref[i+len(history):]) {
			return false
		}
		ref = ref[:i]
	}
	n := len(typ) + 1 + len(id)
	if len(ref) < n {
		return false
	}
	tail := ref[len(ref)-n:]
	if string(tail[:len(typ)]) != typ || tail[len(typ)] != '/' || string(tail[len(typ)+1:]) != id {
		return false
	}
	prefix := ref[:len(ref)-n]
	if len(prefix) == 0 {
		return true
	}
	if prefix[len(prefix)-1] != '/' {
		return false
	}
	return ownBase(c, prefix[:len(prefix)-1])
}

func ownBase[S string | []byte](c *Checker, s S) bool {
	for _, b := range c.bases {
		if len(s) == len(b.s) && string(s[b.n:]) == b.s[b.n:] && foldEqual(s[:b.n], b.s[:b.n]) {
			return true
		}
	}
	return false
}

// foldEqual compares s with the lower-case ASCII string lower, ignoring ASCII case.
func foldEqual[S string | []byte](s S, lower string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func lastIndex[S string | []byte](s S, sub string) int {
	for i := len(s) - len(sub); i >= 0; i-- {
		if string(s[i:i+len(sub)]) == sub {
			return i
		}
	}
	return -1
}
