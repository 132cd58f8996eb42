package middleware

import (
	"github.com/fhirguard/fhirguard/internal/fhirjson"
)

// readRefsJSON reads a response as readJSON does, keeping only what the
// compartment and reference checks read (fhirjson.Options.References).
var readRefsJSON = func() fhirjson.Options {
	o := readJSON
	o.References = true
	return o
}()

// referencesSuffice reports whether judging the resource a read returns
// needs nothing of it but its top-level resourceType and id and its
// "reference" members: no resource policy (they are given the whole
// resource) and no granular constraint (they read other elements) applies,
// so the compartment and other-patient checks, which read only those, are
// the whole verification. The accesses are the interaction's own
// (accessesFor answers them for a resource of the interaction's type; a
// resource of another type is refused before any check).
func (x *exchange) referencesSuffice() bool {
	if len(x.a.resPols) > 0 || x.acs == nil {
		return false
	}
	for _, ac := range x.acs {
		if !ac.grant.Unconstrained {
			return false
		}
	}
	return true
}
