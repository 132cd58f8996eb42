package middleware

import "strings"

// checkIncludes checks the syntax of _include and _revinclude (with
// :iterate). The types they reach need no grant up front: every included
// resource is verified in the response like a match, against the grants of
// its own type, and removed when the token may not read it (so
// _revinclude=Provenance:target without a Provenance grant returns the
// matches without Provenance).
func (x *exchange) checkIncludes() *refusal {
	for key, vals := range x.d.Interaction.Query {
		name, mod, _ := strings.Cut(key, ":")
		if name != "_include" && name != "_revinclude" {
			continue
		}
		if mod != "" && mod != "iterate" && mod != "recurse" {
			return badRequest("unknown "+name+" modifier", nil)
		}
		for _, v := range vals {
			if v == "*" {
				continue
			}
			parts := strings.Split(v, ":")
			if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
				return badRequest("malformed "+name, nil)
			}
		}
	}
	return nil
}
