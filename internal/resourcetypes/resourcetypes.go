// Package resourcetypes is the table of the concrete resource types of FHIR
// R4 and R5 that packages fhir and scope share: a dense ID per type (for
// tables indexed by type) and a lookup that costs a hash of a few bytes and
// one string comparison.
package resourcetypes

//go:generate go run ../gen/resourcetypes -o table_gen.go

// Mask is a set of FHIR releases.
type Mask uint8

// The releases whose resource types the table holds.
const (
	R4 Mask = 1 << iota // FHIR R4 (4.0.1)
	R5                  // FHIR R5 (5.0.0)
)

// ID is the index of a resource type in the sorted table, below Count.
type ID uint16

// Count is the number of resource types (R4 and R5 together).
const Count = len(table)

// The lookup table is an open-addressed hash of the names, built once at
// init. The hash reads four bytes and the length.
const hashSize = 1024

var hashed [hashSize]uint16 // ID+1, 0 = empty

func hash(s string) uint32 {
	n := uint32(len(s))
	if n == 0 {
		return 0
	}
	h := n*0x9e3779b1 ^ uint32(s[0])*0x85ebca6b ^ uint32(s[n-1])*0xc2b2ae35 ^ uint32(s[n/2])*0x27d4eb2f ^ uint32(s[n/3])*0x165667b1
	return (h ^ h>>15) & (hashSize - 1)
}

func init() {
	for i, t := range table {
		h := hash(t.name)
		for hashed[h] != 0 {
			h = (h + 1) & (hashSize - 1)
		}
		hashed[h] = uint16(i + 1)
	}
}

// Lookup returns the ID of a resource type of R4 or R5. Names are
// case-sensitive: "observation" is not a resource type.
func Lookup(name string) (ID, bool) {
	h := hash(name)
	for {
		v := hashed[h]
		if v == 0 {
			return 0, false
		}
		if table[v-1].name == name {
			return ID(v - 1), true
		}
		h = (h + 1) & (hashSize - 1)
	}
}

// Name returns the type's name, "" for an ID out of range.
func (id ID) Name() string {
	if int(id) >= Count {
		return ""
	}
	return table[id].name
}

// Releases returns the releases that define the type, 0 for an ID out of
// range.
func (id ID) Releases() Mask {
	if int(id) >= Count {
		return 0
	}
	return table[id].releases
}

// Names returns the sorted names of the resource types defined by any of
// the releases in m, in a new slice.
func Names(m Mask) []string {
	var out []string
	for _, t := range table {
		if t.releases&m != 0 {
			out = append(out, t.name)
		}
	}
	return out
}
