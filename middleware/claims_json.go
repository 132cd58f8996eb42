package middleware

import "github.com/fhirguard/fhirguard/internal/fhirjson"

// tokenJSON reads token headers, claims and introspection responses: the
// kit's strict JSON rules (valid UTF-8, no member repeated even in another
// case — RFC 7515 §4 and RFC 7519 §4 — nothing after the object), nesting
// at most 32 levels (threat model A20), numbers as float64.
var tokenJSON = fhirjson.Options{Mode: fhirjson.Plain, MaxDepth: fhirjson.MaxTokenDepth, Float64: true}

// decodeObject decodes a token header, claim set or introspection response.
func decodeObject(data []byte) (map[string]any, error) {
	return fhirjson.Decode(data, tokenJSON)
}

// logTrunc shortens s for log messages.
func logTrunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
