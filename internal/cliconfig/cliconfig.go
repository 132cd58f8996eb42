// Package cliconfig parses a command's flags from its command line and,
// optionally, from a YAML configuration file whose keys are the flag names.
//
// A command defines its flags on a flag.FlagSet as usual and calls Parse
// instead of FlagSet.Parse. Parse adds a -config flag; when it is given,
// the file it names is read after the command line and sets every flag the
// command line did not set:
//
//	# lint.yaml
//	timeout: 30s
//	json: true
//	cors-origins: [https://app.example.org, https://admin.example.org]
//
// The file must be one YAML mapping. Its values are scalars (written as
// they would be on the command line: 30s, true, 8080, "a string"), or, for
// flags whose value is a List, sequences of scalars. Every problem is an
// error naming the file and line: a key that is not a flag, a key given
// twice, a null, mapping or (for other flags) sequence value, a value the
// flag refuses, a "config" key, anchors and aliases, more than one
// document. A flag on the command line wins over the file.
//
// Flags may follow positional arguments ("lint https://x --json"); "--"
// ends the flags. Both -flag and --flag work, as with package flag.
package cliconfig

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// configFlag is the name of the flag naming the configuration file.
const configFlag = "config"

// Parse defines the -config flag on fs (unless fs already has it), parses
// args, then applies the configuration file when -config names one. It
// returns the positional arguments, in order. Errors are those of
// fs.Parse (flag.ErrHelp for -h and -help) and of the configuration file;
// set fs's error handling to flag.ContinueOnError to receive them.
func Parse(fs *flag.FlagSet, args []string) ([]string, error) {
	Define(fs)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	path := fs.Lookup(configFlag).Value.String()
	if path == "" {
		return positional, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if err := apply(fs, path, data); err != nil {
		return nil, err
	}
	return positional, nil
}

// Define defines the -config flag on fs unless fs already has it, so that
// a usage message printed before Parse lists it.
func Define(fs *flag.FlagSet) {
	if fs.Lookup(configFlag) == nil {
		fs.String(configFlag, "", "read flags from the YAML `file` (keys are flag names; the command line wins)")
	}
}

// List is a flag value holding a list of strings. Each use of the flag
// on the command line adds its comma-separated items (empty items are
// dropped, spaces around items trimmed); in the configuration file it
// takes a sequence (each item added the same way) or a scalar.
type List []string

// String returns the items joined with commas.
func (l *List) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

// Set adds the comma-separated items of s.
func (l *List) Set(s string) error {
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			*l = append(*l, item)
		}
	}
	return nil
}

// IsList reports that a List accepts a YAML sequence.
func (l *List) IsList() bool { return true }

// listValue is implemented by flag values that accept a YAML sequence:
// Set is called once per item.
type listValue interface {
	IsList() bool
}

// apply sets the flags named in the YAML document data (read from the
// file name, used in errors) that are not set yet on fs. Nothing is set
// when the document has an error; every error found is returned.
func apply(fs *flag.FlagSet, name string, data []byte) (err error) {
	root, err := decode(data)
	if err != nil {
		// "yaml: line 3: did not find..." becomes "name:3: did not find...".
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if rest, ok := strings.CutPrefix(msg, "line "); ok {
			if n, tail, ok := strings.Cut(rest, ": "); ok && n != "" && strings.Trim(n, "0123456789") == "" {
				return fmt.Errorf("%s:%s: %s", name, n, tail)
			}
		}
		return fmt.Errorf("%s: %s", name, msg)
	}
	if root == nil {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("%s:%d: the file must be a mapping of flag names to values", name, root.Line)
	}
	if root.Anchor != "" {
		return fmt.Errorf("%s:%d: anchors and aliases are not supported", name, root.Line)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	type setting struct {
		line   int
		key    string
		f      *flag.Flag
		values []string
	}
	var (
		errs     []error
		settings []setting
		seen     = map[string]int{}
	)
	fail := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, args...)))
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Anchor != "" {
			fail(k.Line, "a key must be a flag name")
			continue
		}
		key := k.Value
		if first, dup := seen[key]; dup {
			fail(k.Line, "duplicate key %q (first on line %d)", key, first)
			continue
		}
		seen[key] = k.Line
		f := fs.Lookup(key)
		switch {
		case key == configFlag:
			fail(k.Line, "key %q: the configuration file cannot name another one", key)
			continue
		case f == nil:
			fail(k.Line, "unknown key %q: not a flag of this command", key)
			continue
		}
		values, msg := scalars(v, f)
		if msg != "" {
			fail(v.Line, "key %q: %s", key, msg)
			continue
		}
		settings = append(settings, setting{line: v.Line, key: key, f: f, values: values})
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for _, s := range settings {
		if set[s.key] {
			continue // the command line wins
		}
		for _, val := range s.values {
			if err := fs.Set(s.key, val); err != nil {
				fail(s.line, "key %q: invalid value %q: %v", s.key, val, err)
				break
			}
		}
	}
	return errors.Join(errs...)
}

// decode parses data as one YAML document and returns its root node, nil
// for an empty document. A panic of the YAML parser is returned as an
// error.
func decode(data []byte) (root *yaml.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			root, err = nil, fmt.Errorf("invalid YAML: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("line %d: more than one YAML document", next.Line)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	root = doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	return root, nil
}

// scalarTags are the tags of the scalars a flag value can be written as.
var scalarTags = map[string]bool{
	"!!str": true, "!!int": true, "!!float": true, "!!bool": true, "!!timestamp": true,
}

// scalars returns the values node v gives flag f (its scalar, or the items
// of a sequence for a list flag), or why it cannot.
func scalars(v *yaml.Node, f *flag.Flag) ([]string, string) {
	scalar := func(n *yaml.Node) (string, string) {
		switch {
		case n.Kind == yaml.AliasNode || n.Anchor != "":
			return "", "anchors and aliases are not supported"
		case n.Kind == yaml.MappingNode:
			return "", "a mapping is not a flag value"
		case n.Kind == yaml.SequenceNode:
			return "", "a list inside a list is not a flag value"
		case n.Kind != yaml.ScalarNode:
			return "", "not a flag value"
		case n.Tag == "!!null":
			return "", "no value (null)"
		case !scalarTags[n.Tag]:
			return "", fmt.Sprintf("unsupported tag %q", n.Tag)
		}
		return n.Value, ""
	}
	if v.Kind == yaml.SequenceNode && v.Anchor == "" {
		if l, ok := f.Value.(listValue); !ok || !l.IsList() {
			return nil, "a list is only accepted by list flags"
		}
		out := make([]string, 0, len(v.Content))
		for _, item := range v.Content {
			s, msg := scalar(item)
			if msg != "" {
				return nil, msg
			}
			out = append(out, s)
		}
		return out, ""
	}
	s, msg := scalar(v)
	if msg != "" {
		return nil, msg
	}
	return []string{s}, ""
}
