package scope

import "github.com/fhirguard/fhirguard/internal/resourcetypes"

// TypeID identifies a resource type of FHIR R4 or R5. It indexes the
// Matcher's tables; resolve it once with LookupType and reuse it with
// AllowsID or Lookup.
type TypeID uint16

// numTypes is the number of known resource types (R4 and R5 together).
const numTypes = resourcetypes.Count

// LookupType returns the TypeID of a concrete resource type of FHIR R4 or
// R5. Names are case-sensitive: "observation" is not a resource type.
func LookupType(name string) (TypeID, bool) {
	id, ok := resourcetypes.Lookup(name)
	return TypeID(id), ok
}

// String returns the type's name.
func (id TypeID) String() string { return resourcetypes.ID(id).Name() }
