package celpolicy

import (
	"bytes"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// exprPos is where an expression starts in a policy file, enough to turn
// a position inside the expression into a position in the file.
type exprPos struct {
	line, col int // 1-based position of the YAML value
	style     yaml.Style
	indent    int // block scalars: indentation of the content
}

// filePos maps a 1-based line and 0-based column inside the expression to
// a 1-based line and column in the file. Positions inside folded or
// escaped scalars are approximate.
func (p exprPos) filePos(line, col0 int) (int, int) {
	if p.line == 0 {
		return line, col0 + 1
	}
	switch {
	case p.style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		return p.line + line, p.indent + col0 + 1
	case line > 1:
		return p.line + line - 1, col0 + 1
	case p.style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0:
		return p.line, p.col + 1 + col0
	}
	return p.line, p.col + col0
}

// source is where a rule came from.
type source struct {
	file        string
	line, col   int // the rule's mapping
	match, when exprPos
	fields      map[string][2]int // key → line, column
}

// ParseFile parses a policy file in YAML. The schema:
//
//	version: 1            # optional; 1 is the only version
//	rules:                # required, may be empty ([])
//	  - name: tenant      # required, unique: letters, digits, . _ : -
//	    description: ...  # optional
//	    effect: deny      # required: deny (deny when `when` is true) or
//	                      #   require (deny when `when` is false)
//	    on: request       # optional: request (default) or resource
//	    match: ...        # optional CEL bool: the rule applies only when true
//	    when: ...         # required CEL bool
//	    message: ...      # required: shown to the client on denial
//
// Unknown keys are errors. name is used in positions of errors; ParseFile
// does not compile the expressions (New does). An error is a *CompileError.
// ParseFile takes the file's bytes, so policies can come from go:embed or
// anywhere else: give the rules to New as Config.Rules. Config.File is for
// a file on disk that Reload and Config.Watch read again.
func ParseFile(data []byte, name string) ([]Rule, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, &CompileError{File: name, Message: "YAML: " + err.Error(), kind: errInvalidPolicy}
	}
	if len(doc.Content) == 0 {
		return nil, &CompileError{File: name, Message: "empty policy file; write `rules: []` for no rules", kind: errInvalidPolicy}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &CompileError{File: name, Line: extra.Line, Column: extra.Column, Message: "more than one YAML document", kind: errInvalidPolicy}
	}
	root := doc.Content[0]
	bad := func(n *yaml.Node, format string, args ...any) error {
		return &CompileError{File: name, Line: n.Line, Column: n.Column, Message: fmt.Sprintf(format, args...), kind: errInvalidPolicy}
	}
	if root.Kind != yaml.MappingNode {
		return nil, bad(root, "a policy file is a mapping with a rules key")
	}
	var rulesNode *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "version":
			if v.Kind != yaml.ScalarNode || v.Value != "1" {
				return nil, bad(v, "version must be 1")
			}
		case "rules":
			rulesNode = v
		default:
			return nil, bad(k, "unknown key %q", k.Value)
		}
	}
	if rulesNode == nil {
		return nil, bad(root, "missing rules; write `rules: []` for no rules")
	}
	if rulesNode.Kind != yaml.SequenceNode {
		return nil, bad(rulesNode, "rules must be a list")
	}
	lines := bytes.Split(data, []byte("\n"))
	rules := make([]Rule, 0, len(rulesNode.Content))
	for _, rn := range rulesNode.Content {
		if rn.Kind != yaml.MappingNode {
			return nil, bad(rn, "a rule is a mapping")
		}
		r := Rule{src: &source{file: name, line: rn.Line, col: rn.Column, fields: map[string][2]int{}}}
		for i := 0; i+1 < len(rn.Content); i += 2 {
			k, v := rn.Content[i], rn.Content[i+1]
			if _, dup := r.src.fields[k.Value]; dup {
				return nil, bad(k, "duplicate key %q", k.Value)
			}
			if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
				return nil, bad(v, "%s must be a string", k.Value)
			}
			r.src.fields[k.Value] = [2]int{v.Line, v.Column}
			switch k.Value {
			case "name":
				r.Name = v.Value
			case "description":
				r.Description = v.Value
			case "effect":
				r.Effect = Effect(v.Value)
			case "on":
				r.On = Target(v.Value)
			case "match":
				r.Match = v.Value
				r.src.match = posOf(v, lines)
			case "when":
				r.When = v.Value
				r.src.when = posOf(v, lines)
			case "message":
				r.Message = v.Value
			default:
				return nil, bad(k, "unknown rule key %q", k.Value)
			}
		}
		rules = append(rules, r)
	}
	return rules, nil
}

func posOf(v *yaml.Node, lines [][]byte) exprPos {
	p := exprPos{line: v.Line, col: v.Column, style: v.Style}
	if v.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 && v.Line < len(lines) {
		// The content starts on the next line; its indentation is the
		// block's (explicit indentation indicators are rare enough to
		// ignore).
		l := lines[v.Line] // 0-based index of the next line
		for p.indent < len(l) && l[p.indent] == ' ' {
			p.indent++
		}
	}
	return p
}
