// Package fhirdata holds the official FHIR R4 and R5 definitions (resource types,
// CompartmentDefinitions, SearchParameters) that fhirguard's generators read.
// Nothing reads these files at run time; see README.md for their source.
package fhirdata

import "embed"

// FS holds the r4/ and r5/ definition files, for generators and staleness tests.
//
//go:embed r4 r5
var FS embed.FS
