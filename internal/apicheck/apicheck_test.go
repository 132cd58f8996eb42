package apicheck

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/printer"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite api/*.txt from the current source")

// maxExported is the ceiling on exported names (top-level constants,
// variables, functions and types, plus methods on exported types) over all
// public packages. Raising it needs a reason in review.
const maxExported = 360

// moduleRoot is the module root, two levels up from this package.
const moduleRoot = "../.."

// publicPackages lists the directories (relative to the module root) of the
// packages users import: everything outside internal/, examples/, cmd/,
// testdata/ and the interop suites that holds non-test Go files of a
// non-main package.
func publicPackages(t *testing.T) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(moduleRoot, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(moduleRoot, path)
		rel = filepath.ToSlash(rel)
		name := d.Name()
		if rel != "." && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") ||
			name == "internal" || name == "testdata" || name == "cmd" || name == "node_modules" ||
			rel == "examples" || rel == "interop" || rel == "api") {
			return filepath.SkipDir
		}
		if name := packageName(t, path); name != "" && name != "main" {
			dirs = append(dirs, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(dirs)
	return dirs
}

// goFiles parses the Go files of dir, grouped by package name: the non-test
// files, or only the _test.go files (of the package and its external test
// package).
func goFiles(t *testing.T, fset *token.FileSet, dir string, tests bool, mode parser.Mode) map[string][]*ast.File {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	pkgs := map[string][]*ast.File{}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") != tests {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, mode)
		if err != nil {
			t.Fatalf("parse %s: %v", filepath.Join(dir, n), err)
		}
		pkgs[f.Name.Name] = append(pkgs[f.Name.Name], f)
	}
	return pkgs
}

// packageName is the name of the non-test package in dir, "" if none.
func packageName(t *testing.T, dir string) string {
	for name := range goFiles(t, token.NewFileSet(), dir, false, parser.PackageClauseOnly) {
		return name
	}
	return ""
}

// apiOf renders the exported API of the package in dir: declarations
// without comments or bodies, in a stable order, one per paragraph.
func apiOf(t *testing.T, dir string) (text string, names int) {
	t.Helper()
	fset := token.NewFileSet()
	var files []*ast.File
	var name string
	for n, fs := range goFiles(t, fset, dir, false, 0) {
		if n != "main" {
			name, files = n, fs
		}
	}
	sort.Slice(files, func(i, j int) bool { return fset.File(files[i].Pos()).Name() < fset.File(files[j].Pos()).Name() })
	dp, err := doc.NewFromFiles(fset, files, "github.com/fhirguard/fhirguard/"+dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "package %s\n", name)
	emit := func(node any) {
		var buf bytes.Buffer
		if err := (&printer.Config{Mode: printer.UseSpaces | printer.TabIndent, Tabwidth: 8}).Fprint(&buf, fset, node); err != nil {
			t.Fatal(err)
		}
		b.WriteString("\n")
		b.Write(buf.Bytes())
		b.WriteString("\n")
	}
	values := func(vs []*doc.Value) {
		for _, v := range vs {
			emit(v.Decl)
			for _, s := range v.Decl.Specs {
				for _, n := range s.(*ast.ValueSpec).Names {
					if n.IsExported() {
						names++
					}
				}
			}
		}
	}
	funcs := func(fs []*doc.Func) {
		for _, f := range fs {
			decl := *f.Decl
			decl.Body = nil
			decl.Doc = nil
			emit(&decl)
			names++
		}
	}
	values(dp.Consts)
	values(dp.Vars)
	funcs(dp.Funcs)
	for _, typ := range dp.Types {
		emit(typ.Decl)
		names++
		values(typ.Consts)
		values(typ.Vars)
		funcs(typ.Funcs)
		funcs(typ.Methods)
	}
	return b.String(), names
}

// TestAPI compares the exported API of every public package with
// api/<package>.txt and keeps the number of exported names under
// maxExported.
func TestAPI(t *testing.T) {
	apiDir := filepath.Join(moduleRoot, "api")
	total := 0
	want := map[string]bool{}
	for _, dir := range publicPackages(t) {
		text, n := apiOf(t, filepath.Join(moduleRoot, dir))
		total += n
		file := strings.ReplaceAll(dir, "/", "_") + ".txt"
		want[file] = true
		path := filepath.Join(apiDir, file)
		if *update {
			if err := os.MkdirAll(apiDir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v (run: go test ./internal/apicheck -run TestAPI -update)", dir, err)
			continue
		}
		if string(got) != text {
			t.Errorf("the exported API of %s changed; if intended, run go test ./internal/apicheck -run TestAPI -update and commit api/%s\n%s",
				dir, file, firstDifference(string(got), text))
		}
	}
	entries, err := os.ReadDir(apiDir)
	if err != nil && !*update {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !want[e.Name()] && strings.HasSuffix(e.Name(), ".txt") {
			if *update {
				os.Remove(filepath.Join(apiDir, e.Name()))
				continue
			}
			t.Errorf("api/%s describes no public package any more; delete it", e.Name())
		}
	}
	t.Logf("%d exported names in public packages (ceiling %d)", total, maxExported)
	if total > maxExported {
		t.Errorf("%d exported names, more than the ceiling of %d: make something unexported or internal, or raise maxExported with a reason", total, maxExported)
	}
}

// firstDifference shows the first line where the golden file and the
// current API differ.
func firstDifference(old, cur string) string {
	a, b := strings.Split(old, "\n"), strings.Split(cur, "\n")
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\n  golden:  %q\n  current: %q", i+1, x, y)
		}
	}
	return ""
}

// TestExamplesRun checks that every public package has at least one
// example and that every example has an output comment, so go test runs it
// instead of only compiling it.
func TestExamplesRun(t *testing.T) {
	for _, dir := range publicPackages(t) {
		if _, n := apiOf(t, filepath.Join(moduleRoot, dir)); n == 0 {
			continue // exports nothing (benchmarks: tests only)
		}
		var files []*ast.File
		for _, fs := range goFiles(t, token.NewFileSet(), filepath.Join(moduleRoot, dir), true, parser.ParseComments) {
			files = append(files, fs...)
		}
		examples := doc.Examples(files...)
		if len(examples) == 0 {
			t.Errorf("%s: no runnable example (func ExampleXxx with an // Output: comment)", dir)
		}
		for _, ex := range examples {
			if ex.Output == "" && !ex.EmptyOutput {
				t.Errorf("%s: Example%s has no // Output: comment, so go test only compiles it", dir, ex.Name)
			}
		}
	}
}
