// Package fhir holds what the other packages of the kit share about FHIR
// itself: the releases the kit knows (Release: R4 and R5), the grammar of a
// resource id (ValidID) and the names of the concrete resource types of each
// release (ResourceTypes, IsResourceType).
//
// Resource type names are case-sensitive, as in FHIR: "Observation" is a
// resource type, "observation" is not.
package fhir
