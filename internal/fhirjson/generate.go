package fhirjson

// names_gen.go lists the element names that the FHIR R4 and R5 search
// parameters read; internal/gen/elementnames derives it from internal/fhirdata.
//go:generate go run ../gen/elementnames -o names_gen.go
