package fhir

import (
	"strconv"

	"github.com/fhirguard/fhirguard/internal/resourcetypes"
)

// Release is a FHIR release.
//
// The zero Release is unset: configuration fields of the kit that take a
// Release (compartment.Config.FHIRVersion,
// middleware.AuthorizeConfig.FHIRVersion) read it as R4. Functions that take
// a Release know R4 and R5 only, and answer nothing for any other value.
type Release uint8

// The FHIR releases the kit knows.
const (
	R4 Release = iota + 1 // FHIR R4 (4.0.1)
	R5                    // FHIR R5 (5.0.0)
)

// String returns "R4" or "R5", and "Release(n)" for any other value.
func (r Release) String() string {
	switch r {
	case R4:
		return "R4"
	case R5:
		return "R5"
	}
	return "Release(" + strconv.Itoa(int(r)) + ")"
}

// mask returns the release as a set of one, 0 for an unknown release.
func (r Release) mask() resourcetypes.Mask {
	switch r {
	case R4:
		return resourcetypes.R4
	case R5:
		return resourcetypes.R5
	}
	return 0
}

// ValidID reports whether id is a FHIR resource id: 1 to 64 characters of
// A-Z, a-z, 0-9, '-' and '.' (the id type's pattern, [A-Za-z0-9\-\.]{1,64}).
//
// "." and ".." match that pattern but are refused: in a URL they are dot
// segments, which a server, proxy or client library may resolve against
// the path ("Patient/.." is the base), so no resource can be named by them.
// Longer runs of dots ("...") are ids.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > 64 || id == "." || id == ".." {
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

// ResourceTypes returns the sorted names of the concrete resource types of
// release r (not the abstract Resource and DomainResource), or nil for an
// unknown release. Each call returns a new slice: changing it changes
// nothing in the package.
func ResourceTypes(r Release) []string {
	if m := r.mask(); m != 0 {
		return resourcetypes.Names(m)
	}
	return nil
}

// IsResourceType reports whether name is a concrete resource type of one of
// the given releases, or of R4 or R5 when none is given:
//
//	IsResourceType("Observation")        // true
//	IsResourceType("Transport")          // true: an R5 type
//	IsResourceType("Transport", fhir.R4) // false
//	IsResourceType("observation")        // false: names are case-sensitive
func IsResourceType(name string, releases ...Release) bool {
	id, ok := resourcetypes.Lookup(name)
	if !ok {
		return false
	}
	if len(releases) == 0 {
		return true
	}
	have := id.Releases()
	for _, r := range releases {
		if have&r.mask() != 0 {
			return true
		}
	}
	return false
}
