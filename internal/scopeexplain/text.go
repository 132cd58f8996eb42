package scopeexplain

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// WriteText writes the report for people: a header, one block per scope in
// the order written, the effective permissions, then the warnings.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Scope string: %s\n", strconv.Quote(r.Input))
	invalid := 0
	for _, sr := range r.Scopes {
		if !sr.Valid {
			invalid++
		}
	}
	switch {
	case len(r.Scopes) == 0:
		b.WriteString("No scopes.\n")
	case invalid == 0:
		fmt.Fprintf(&b, "%s, all valid.\n", plural(len(r.Scopes), "scope"))
	default:
		fmt.Fprintf(&b, "%s: %d valid, %d invalid.\n", plural(len(r.Scopes), "scope"), len(r.Scopes)-invalid, invalid)
	}
	for _, sr := range r.Scopes {
		b.WriteByte('\n')
		writeScope(&b, sr)
	}

	b.WriteString("\nEffective permissions (as the middleware enforces them):\n")
	if len(r.Effective) == 0 {
		b.WriteString("  none: no access to FHIR data\n")
	}
	width := 0
	named := map[string]bool{} // contexts with rows for named types
	for _, e := range r.Effective {
		if e.ResourceType != "*" {
			named[e.Context] = true
		}
		width = max(width, len(e.Context)+1+len(e.ResourceType))
	}
	for _, e := range r.Effective {
		line := fmt.Sprintf("  %-*s  %-5s", width, e.Context+"/"+e.ResourceType, e.Permissions)
		if e.ResourceType == "*" {
			if named[e.Context] {
				line += "  (every other type)"
			} else {
				line += "  (every type)"
			}
		}
		b.WriteString(strings.TrimRight(line, " ") + "\n")
		for _, c := range e.Constrained {
			fmt.Fprintf(&b, "  %-*s    %s only for resources matching %s\n", width, "", c.Letter, anyOfText(c.AnyOf))
		}
	}
	if len(r.Warnings) > 0 {
		b.WriteString("\nWarnings:\n")
		for _, w := range r.Warnings {
			fmt.Fprintf(&b, "  - %s\n", w)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func anyOfText(sets []string) string {
	if len(sets) == 1 {
		return sets[0]
	}
	parts := make([]string, len(sets))
	for i, s := range sets {
		parts[i] = "(" + s + ")"
	}
	return strings.Join(parts, " or ")
}

func writeScope(b *strings.Builder, sr ScopeReport) {
	status := ""
	if !sr.Valid {
		status = "  INVALID"
	}
	fmt.Fprintf(b, "#%d %s%s\n", sr.Position, display(sr.Raw), status)
	field := func(name, value string) {
		fmt.Fprintf(b, "   %-13s %s\n", name+":", value)
	}
	field("kind", sr.Kind)
	if sr.Error != "" {
		field("error", sr.Error)
	}
	field("meaning", sr.Summary)
	if res := sr.Resource; res != nil {
		field("context", res.Context+": "+res.ContextMeaning)
		typ := res.ResourceType
		switch {
		case res.AllTypes:
			typ = "* (every resource type)"
		case len(res.Releases) > 0:
			typ += " (FHIR " + strings.Join(res.Releases, ", ") + ")"
		default:
			typ += " (not a FHIR R4 or R5 type)"
		}
		field("type", typ)
		field("syntax", res.Syntax)
		field("permissions", res.Permissions)
		for _, l := range res.Letters {
			fmt.Fprintf(b, "     %s  %-7s %s\n", l.Letter, l.Name, strings.Join(l.Interactions, ", "))
		}
		if len(res.Constraints) > 0 {
			field("constraints", "a resource must match all of:")
			for _, c := range res.Constraints {
				name := c.Parameter
				if c.Modifier != "" {
					name += ":" + c.Modifier
				}
				kind := c.ParamType
				if kind == "" {
					kind = "unknown parameter"
				}
				eval := "middleware cannot evaluate"
				if len(c.EvaluableIn) > 0 {
					eval = "evaluable in " + strings.Join(c.EvaluableIn, ", ")
				}
				fmt.Fprintf(b, "     %s = %s  (%s; %s)\n", name, strings.Join(c.AnyOf, " OR "), kind, eval)
			}
		}
		switch {
		case !res.KnownType:
		case res.Syntax == "v1":
			field("v2 form", res.V2)
		case res.V1 != "":
			field("v1 form", res.V1)
		}
	}
	if l := sr.Launch; l != nil && l.Role != "" {
		field("role", l.Role)
	}
	for _, s := range sr.Suggestions {
		field("did you mean", s)
	}
	for _, n := range sr.Notes {
		field("note", n)
	}
}

// display shows a scope as written when it holds only characters a scope
// can hold, else quoted.
func display(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return strconv.Quote(s)
		}
	}
	return s
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
