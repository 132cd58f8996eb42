// Package fhirjson is the one strict JSON reader of fhirguard: every body
// the guard judges (resources, Bundles and their entries, JSON Patch
// documents, the responses it verifies, token claims and introspection
// answers) is read by Decode, under one set of rules, so that the guard
// never judges a different document than a lenient server would execute.
//
// JSON rules (every Mode): exactly one JSON object (RFC 8259) and nothing
// after it; no byte order mark; valid UTF-8, no control characters and no
// unpaired surrogate escapes in strings; member names are ASCII, and no
// object holds two members whose names are equal or differ only in case
// (encoding/json matches struct fields case-insensitively and keeps the
// last duplicate); nesting at most Options.MaxDepth.
//
// FHIR rules (Mode FHIR): FHIR JSON is case-sensitive and its element names
// are lowerCamelCase, so a member name must be resourceType or start with a
// lower-case letter (after an optional "_" for a primitive's extensions)
// and hold only letters, digits and "_"; and a name that differs only in
// case from an element name the package knows (Bundle, entry, request,
// response, Reference, JSON Patch, and every element a FHIR R4 or R5 search
// parameter reads) is refused: "Subject", "sUbject", "Entry" and
// "ifnoneexist" are errors, "subject" and "ifNoneExist" are not. Only lets
// a caller refuse members it does not know in the parts it interprets.
//
// Errors are *Error values that name the member (Path) and the offset.
package fhirjson
