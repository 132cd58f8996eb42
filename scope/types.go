package scope

// FHIRVersion is a bit set of FHIR releases.
type FHIRVersion uint8

// FHIR releases whose resource types the package knows.
const (
	R4 FHIRVersion = 1 << iota // FHIR R4 (4.0.1)
	R5                         // FHIR R5 (5.0.0)
)

// TypeID identifies a known FHIR resource type. It indexes the Matcher's
// tables; resolve it once with LookupType and reuse it with AllowsID.
type TypeID uint16

// NumTypes is the number of known resource types (R4 and R5 together).
const NumTypes = len(resourceTypes)

// The type table is an open-addressed hash of the names, built once at init.
// The hash reads four bytes and the length, so a lookup costs a handful of
// instructions and one string comparison.
const typeTableSize = 1024

var typeTable [typeTableSize]uint16 // TypeID+1, 0 = empty

func typeHash(s string) uint32 {
	n := uint32(len(s))
	if n == 0 {
		return 0
	}
	h := n*0x9e3779b1 ^ uint32(s[0])*0x85ebca6b ^ uint32(s[n-1])*0xc2b2ae35 ^ uint32(s[n/2])*0x27d4eb2f ^ uint32(s[n/3])*0x165667b1
	return (h ^ h>>15) & (typeTableSize - 1)
}

func init() {
	for i, t := range resourceTypes {
		h := typeHash(t.name)
		for typeTable[h] != 0 {
			h = (h + 1) & (typeTableSize - 1)
		}
		typeTable[h] = uint16(i + 1)
	}
}

// LookupType returns the TypeID of a known FHIR resource type. Names are
// case-sensitive: "observation" is not a resource type.
func LookupType(name string) (TypeID, bool) {
	h := typeHash(name)
	for {
		v := typeTable[h]
		if v == 0 {
			return 0, false
		}
		if resourceTypes[v-1].name == name {
			return TypeID(v - 1), true
		}
		h = (h + 1) & (typeTableSize - 1)
	}
}

// IsResourceType reports whether name is a concrete resource type of FHIR R4 or R5.
func IsResourceType(name string) bool {
	_, ok := LookupType(name)
	return ok
}

// String returns the type's name.
func (id TypeID) String() string {
	if int(id) >= NumTypes {
		return ""
	}
	return resourceTypes[id].name
}

// Versions returns the FHIR releases that define the type.
func (id TypeID) Versions() FHIRVersion {
	if int(id) >= NumTypes {
		return 0
	}
	return resourceTypes[id].versions
}

// ResourceTypes returns the sorted names of the resource types defined by
// any of the releases in v.
func ResourceTypes(v FHIRVersion) []string {
	var out []string
	for _, t := range resourceTypes {
		if t.versions&v != 0 {
			out = append(out, t.name)
		}
	}
	return out
}
