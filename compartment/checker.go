package compartment

import (
	"errors"
	"fmt"
	"strings"

	"github.com/fhirguard/fhirguard/fhir"
)

// The errors of the package. Callers need not tell them apart (every one
// means "not a member", "cannot narrow" or "bad configuration"); the text
// says which rule refused.
var (
	// errConfig reports an invalid Config.
	errConfig = errors.New("compartment: invalid config")
	// errInvalidID reports a compartment id that is not a FHIR id
	// (fhir.ValidID).
	errInvalidID = errors.New("compartment: invalid id")
	// errUnknownType reports a compartment type the Checker's release does
	// not define.
	errUnknownType = errors.New("compartment: unknown compartment type")
	// errMalformed reports a document that is not valid JSON, or that
	// repeats a member name the check depends on.
	errMalformed = errors.New("compartment: malformed JSON")
	// errNotResource reports JSON that is not an object with a string
	// resourceType.
	errNotResource = errors.New("compartment: not a FHIR resource")
	// errNotMemberType reports a search of a resource type that has no link
	// to the compartment, so it cannot be narrowed to it.
	errNotMemberType = errors.New("compartment: resource type is not in the compartment")
)

// Config configures a Checker.
type Config struct {
	// FHIRVersion is the FHIR release of the server: fhir.R4 (the default,
	// also for the zero value) or fhir.R5.
	FHIRVersion fhir.Release
	// BaseURLs are the absolute base URLs under which this server is
	// reached, e.g. "https://fhir.example.org/r4". An absolute reference
	// names one of our resources only when its base is listed here (scheme
	// and host compared case-insensitively, a default port equal to none,
	// the path exactly, trailing slashes of the base ignored); with none,
	// only relative references count. A base must be a plain http(s) URL:
	// no userinfo, query, fragment, percent-encoding or dot segments.
	BaseURLs []string
	// IncludeLinkedPatients makes Patient.link a link of the Patient
	// compartment, as the FHIR CompartmentDefinition lists it: a Patient
	// whose link names Patient/123 is then a member of Patient/123's
	// compartment, and a search of Patient binds through its link
	// parameter. By default (false) a Patient is a member of a Patient
	// compartment only as its focal resource, and only _id binds a search
	// of Patient: linked records are other patients' data, and SMART leaves
	// access to them to the server's documentation. It is the same switch,
	// with the same default, as middleware.AuthorizeConfig's
	// IncludeLinkedPatients. (Patient is the only compartment type whose
	// resources link to their own type.)
	IncludeLinkedPatients bool
}

// Checker answers membership and search-narrowing questions for one FHIR
// release and one server. It is safe for concurrent use.
type Checker struct {
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
	v := cfg.FHIRVersion
	if v == 0 {
		v = fhir.R4
	}
	if v != fhir.R4 && v != fhir.R5 {
		return nil, fmt.Errorf("%w: unknown FHIR version %v", errConfig, cfg.FHIRVersion)
	}
	c := &Checker{defs: &definitions[v], excludeLinked: !cfg.IncludeLinkedPatients}
	for _, raw := range cfg.BaseURLs {
		b, ok := parseBase(raw)
		if !ok {
			return nil, fmt.Errorf("%w: base URL %q must be a plain absolute http(s) URL", errConfig, raw)
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

// Definition returns the definition of compartment type t for the Checker's
// release, or nil when there is none.
func (c *Checker) Definition(t Type) *Definition {
	if !t.valid() {
		return nil
	}
	return c.defs[t]
}

// validID reports whether id is a FHIR id, by the rule of fhir.ValidID
// (which it is, for strings and byte slices alike): 1 to 64 of A-Z a-z 0-9
// '-' and '.', other than the dot segments "." and "..".
func validID[S string | []byte](id S) bool {
	if len(id) == 0 || len(id) > 64 || dots(id) {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !isIDByte(id[i]) {
			return false
		}
	}
	return true
}
