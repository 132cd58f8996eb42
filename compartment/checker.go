package compartment

import (
	"errors"
	"fmt"
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
	// and host compared case-insensitively, a default port equal to none,
	// the path exactly, trailing slashes of the base ignored); with none,
	// only relative references count. A base must be a plain http(s) URL:
	// no userinfo, query, fragment, percent-encoding or dot segments.
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

// base is a configured base URL normalised by New: scheme and host in lower
// case, port empty when it is the scheme's default, path without trailing
// slashes. A reference's scheme and host compare case-insensitively with it,
// its port and path exactly.
type base struct {
	scheme, host, port, path string
}

// New returns a Checker for cfg.
func New(cfg Config) (*Checker, error) {
	if cfg.Version != R4 && cfg.Version != R5 {
		return nil, fmt.Errorf("%w: unknown FHIR version %v", ErrConfig, cfg.Version)
	}
	c := &Checker{version: cfg.Version, defs: &definitions[cfg.Version], excludeLinked: cfg.ExcludeLinked}
	for _, raw := range cfg.BaseURLs {
		b, ok := parseBase(raw)
		if !ok {
			return nil, fmt.Errorf("%w: base URL %q must be a plain absolute http(s) URL", ErrConfig, raw)
		}
		c.bases = append(c.bases, b)
	}
	return c, nil
}

// parseBase normalises a configured base URL by the rules references are
// read with (splitAbs).
func parseBase(raw string) (base, bool) {
	s := strings.TrimRight(raw, "/")
	k := strings.IndexByte(s, ':')
	if k < 0 || !foldEqual(s[:k], "https") && !foldEqual(s[:k], "http") {
		return base{}, false
	}
	u, ok := splitAbs(s, k)
	if !ok {
		return base{}, false
	}
	return base{
		scheme: strings.ToLower(s[u.scheme.i:u.scheme.j]),
		host:   strings.ToLower(s[u.host.i:u.host.j]),
		port:   s[u.port.i:u.port.j],
		path:   s[u.path.i:u.path.j],
	}, true
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
		if !isIDByte(id[i]) {
			return false
		}
	}
	return true
}
