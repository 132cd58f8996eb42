// Package scopeexplain explains a SMART on FHIR scope string: what each scope
// grants, what is invalid and why, and what the whole string permits once
// combined. It is the logic of `fhirguard scope explain`:
//
//	fhirguard scope explain [--json] <scope string>...
//	fhirguard scope explain [--json] -        # the scope string is read from stdin
//
// Several arguments are joined with single spaces into one scope string, so
// `explain openid fhirUser` and `explain "openid fhirUser"` are the same.
// With `-` the whole of stdin is the scope string, less one trailing line
// ending (what echo adds); any other white space stays where it is.
// Exit status: 0 when every scope is valid, 1 when some scope is invalid
// (including a resource scope whose type neither FHIR R4 nor R5 defines,
// which parses but grants nothing), 2 for a usage error.
//
// # Same rules as enforcement
//
// The string is split into scopes exactly as package scope splits a granted
// scope string (ParseSet: the ASCII space alone separates scopes; a tab or a
// new line stays inside its scope, which then does not parse), each scope is
// parsed with scope.Parse, and the effective permissions come from
// scope.Compile and Matcher.Lookup, the code the middleware runs. The FHIR
// interactions each permission letter covers are read from
// fhirrest.Kind.Permission, the mapping the request classifier uses. The
// explanation therefore cannot disagree with what the middleware enforces.
//
// One part is informative only: whether the middleware can evaluate a
// granular constraint mirrors its rule (a token, reference or string search
// parameter the kit resolves, without modifier or chain); a constraint it
// cannot evaluate grants nothing there.
//
// # JSON
//
// With --json the output is one JSON object, a Report:
//
//	{
//	  "input":     string,   the scope string as explained
//	  "valid":     bool,     every scope is valid (the exit status is 0)
//	  "canonical": string,   the valid scopes in canonical form, deduplicated
//	                         (scope.Set.String)
//	  "scopes":    [ScopeReport], one per scope, in the order written,
//	                         duplicates included
//	  "effective": [Effective],   what the string grants, per context and type
//	  "warnings":  [string]       remarks about the string as a whole
//	}
//
// ScopeReport:
//
//	{
//	  "position":    int,      1-based position of the scope in the string
//	  "raw":         string,   the scope as written
//	  "valid":       bool,
//	  "kind":        string,   resource, launch, identity, refresh, extension,
//	                           or invalid when it does not parse
//	  "canonical":   string,   canonical form ("" when it does not parse)
//	  "summary":     string,   one sentence saying what it grants
//	  "error":       string,   why it is invalid (omitted when valid)
//	  "suggestions": [string], corrected scopes that are valid (may be empty)
//	  "duplicateOf": int,      position of an earlier identical scope (omitted
//	                           when none)
//	  "redundant":   bool,     the other scopes already grant all it grants
//	  "resource":    Resource, resource scopes only (omitted otherwise)
//	  "launch":      Launch,   launch scopes only (omitted otherwise)
//	  "notes":       [string]
//	}
//
// Resource:
//
//	{
//	  "context":        string,   patient, user or system
//	  "contextMeaning": string,
//	  "resourceType":   string,   a type name, or "*"
//	  "allTypes":       bool,     resourceType is "*"
//	  "knownType":      bool,     "*" or a type of FHIR R4 or R5
//	  "releases":       [string], the releases defining the type ("R4", "R5")
//	  "syntax":         string,   "v1" (.read, .write, .*) or "v2" (letters)
//	  "permissions":    string,   the v2 letters granted, in order ("rs")
//	  "letters":        [{"letter": "r", "name": "read",
//	                      "interactions": ["read", "vread", "history-instance"]}],
//	  "constraints":    [Constraint], all must hold (AND)
//	  "v2":             string,   the scope in v2 form
//	  "v1":             string    the scope in v1 form, "" when it has none
//	}
//
// Constraint:
//
//	{
//	  "text":        string,   canonical name[:modifier]=value
//	  "parameter":   string,   search parameter ("patient.birthdate" for a chain)
//	  "modifier":    string,   "in" for code:in, or ""
//	  "chained":     bool,
//	  "value":       string,   percent-decoded value
//	  "anyOf":       [string], the comma-separated values: any may match (OR)
//	  "paramType":   string,   token, reference, string, date, ... ("" when the
//	                           type does not define the parameter)
//	  "evaluableIn": [string]  releases in which the middleware can evaluate it
//	}
//
// Launch:
//
//	{
//	  "context":      string,  "" for the bare EHR launch, else patient,
//	                           encounter, or a lowercase type name
//	  "role":         string,  the ?role= value, or ""
//	  "resourceType": string   the FHIR type the context names, or ""
//	}
//
// Effective: one entry per context and named type, and one with resourceType
// "*" for every other type when a wildcard scope applies:
//
//	{
//	  "context":       string,
//	  "resourceType":  string,
//	  "permissions":   string,  letters granted, with or without constraints
//	  "unconstrained": string,  letters granted without constraints
//	  "constrained":   [{"letter": "r", "anyOf": ["category=laboratory"]}]
//	                            letters granted only under constraints: a
//	                            resource must satisfy every constraint of one
//	                            of the anyOf sets ("a=1&b=2")
//	}
//
// Arrays are always present (possibly empty), never null.
package scopeexplain
