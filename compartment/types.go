package compartment

import (
	"strconv"

	"github.com/fhirguard/fhirguard/fhir"
)

// Type is a compartment type; its name is the resource type that defines
// the compartment.
type Type uint8

// The compartment types of FHIR R4 and R5.
const (
	Patient Type = iota + 1
	Encounter
	RelatedPerson
	Practitioner
	Device
)

var typeNames = [...]string{"", "Patient", "Encounter", "RelatedPerson", "Practitioner", "Device"}

// types backs Types; it is never handed out.
var types = [...]Type{Patient, Encounter, RelatedPerson, Practitioner, Device}

// Types returns the compartment types, in declaration order. Each call
// returns a new slice: changing it changes nothing in the package.
func Types() []Type { return append([]Type(nil), types[:]...) }

// String returns the resource type name, e.g. "Patient".
func (t Type) String() string {
	if t >= Patient && t <= Device {
		return typeNames[t]
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

func (t Type) valid() bool { return t >= Patient && t <= Device }

// Path is an element path, relative to the resource, that holds references
// linking the resource to a compartment.
type Path struct {
	// Elements is the dotted JSON property path below the resource, e.g.
	// "subject" or "participant.actor". Each step may hold an array.
	Elements string
	// Target, when set, is the only resource type the reference may point
	// to for the link to count (from `.where(resolve() is Target)`).
	Target string
}

// Param is a search parameter as seen from one resource type.
type Param struct {
	// Name is the search parameter code, e.g. "subject".
	Name string
	// Expression holds the terms of the FHIRPath expression that concern
	// the resource type, joined with " | ".
	Expression string
	// Targets lists the resource types the parameter may point to.
	Targets []string
	// Paths are the element paths the expression covers.
	Paths []Path
	// Unresolved is set when a term of the expression could not be turned
	// into paths; that term links nothing.
	Unresolved bool
}

// Resource describes how one resource type belongs to a compartment.
type Resource struct {
	// Type is the resource type, e.g. "Observation".
	Type string
	// Self is set for the compartment's own type: the focal resource is a
	// member of its own compartment ("{def}"; also set for the R4 Patient).
	Self bool
	// Params are the linking search parameters, in definition order. A
	// resource is a member when any of them points to the compartment.
	Params []Param
	// Narrow is the parameter Checker.Narrow adds to a search of this type
	// (see the package documentation for the choice); "_id" for the
	// compartment's own type.
	Narrow Param
}

// unresolvedExpression is a term of a linking search parameter expression
// that the generator could not turn into element paths (the generated
// unresolved table, which the tests pin).
type unresolvedExpression struct {
	Version     fhir.Release
	Compartment Type
	Resource    string // the member resource type
	Param       string // the search parameter code
	Expression  string // the term
	Reason      string
}

// genDefinition and genResource are the shapes of the generated tables.
type genDefinition struct {
	version   fhir.Release
	typ       Type
	url       string
	resources []genResource
}

type genResource struct {
	name   string
	self   bool
	narrow Param
	params []Param
}
