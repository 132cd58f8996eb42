package apicheck

import (
	"go/ast"
	"go/format"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// goBlocks returns the ```go blocks of a Markdown file with the line each
// starts on.
func goBlocks(t *testing.T, path string) (blocks []string, lines []int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cur []string
	in := false
	for i, ln := range strings.Split(string(b), "\n") {
		switch {
		case !in && strings.TrimSpace(ln) == "```go":
			in, cur = true, nil
			lines = append(lines, i+2)
		case in && strings.TrimSpace(ln) == "```":
			in = false
			blocks = append(blocks, strings.Join(cur, "\n")+"\n")
		case in:
			cur = append(cur, ln)
		}
	}
	return blocks, lines
}

// TestREADMESnippetsFormatted checks that every Go snippet of the README
// is as gofmt writes it: a snippet of declarations or imports as a file,
// a snippet of statements as the body of a function.
func TestREADMESnippetsFormatted(t *testing.T) {
	blocks, lines := goBlocks(t, filepath.Join(moduleRoot, "README.md"))
	if len(blocks) == 0 {
		t.Fatal("no Go snippets found in README.md")
	}
	for i, src := range blocks {
		if strings.HasPrefix(src, "package ") {
			if got, err := format.Source([]byte(src)); err != nil || string(got) != src {
				t.Errorf("README.md:%d: the program is not gofmt-clean (%v); gofmt writes:\n%s", lines[i], err, got)
			}
			continue
		}
		if got, err := format.Source([]byte("package p\n\n" + src)); err == nil {
			if want := "package p\n\n" + src; string(got) != want {
				t.Errorf("README.md:%d: the snippet is not gofmt-clean; gofmt writes:\n%s", lines[i], strings.TrimPrefix(string(got), "package p\n\n"))
			}
			continue
		}
		indented := "\t" + strings.ReplaceAll(strings.TrimSuffix(src, "\n"), "\n", "\n\t") + "\n"
		indented = strings.ReplaceAll(indented, "\n\t\n", "\n\n")
		wrapped := "package p\n\nfunc _() {\n" + indented + "}\n"
		got, err := format.Source([]byte(wrapped))
		if err != nil {
			t.Errorf("README.md:%d: the snippet does not parse as Go declarations or statements: %v", lines[i], err)
			continue
		}
		if string(got) != wrapped {
			t.Errorf("README.md:%d: the snippet is not gofmt-clean; gofmt writes:\n%s", lines[i], got)
		}
	}
}

// TestREADMEConfigTables checks that the README's configuration reference
// names every field of the middleware's configuration structs, so a new
// option cannot ship undocumented there.
func TestREADMEConfigTables(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(moduleRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	// The section of the README that documents each struct.
	structs := map[string]string{"Config": "Config", "AuthConfig": "AuthConfig", "AuthorizeConfig": "AuthorizeConfig",
		"CORSConfig": "CORSConfig", "IntrospectionConfig": "IntrospectionConfig", "ClaimNames": "AuthConfig"}
	section := func(name string) string {
		head := "### `middleware." + name + "`"
		i := strings.Index(string(readme), head)
		if i < 0 {
			t.Errorf("README.md has no section %s", head)
			return ""
		}
		rest := string(readme)[i+len(head):]
		if j := strings.Index(rest, "\n#"); j >= 0 {
			rest = rest[:j]
		}
		return rest
	}
	fset := token.NewFileSet()
	found := 0
	for _, files := range goFiles(t, fset, filepath.Join(moduleRoot, "middleware"), false, 0) {
		for _, f := range files {
			ast.Inspect(f, func(n ast.Node) bool {
				ts, ok := n.(*ast.TypeSpec)
				if !ok || structs[ts.Name.Name] == "" {
					return true
				}
				text := section(structs[ts.Name.Name])
				found++
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					t.Errorf("middleware.%s is not a struct", ts.Name.Name)
					return false
				}
				for _, fld := range st.Fields.List {
					for _, n := range fld.Names {
						if n.IsExported() && !strings.Contains(text, "`"+n.Name+"`") {
							t.Errorf("README.md's section on middleware.%s does not document %s.%s", structs[ts.Name.Name], ts.Name.Name, n.Name)
						}
					}
				}
				return false
			})
		}
	}
	if found != len(structs) {
		t.Errorf("found %d of the %d configuration structs", found, len(structs))
	}
}
