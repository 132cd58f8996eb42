package discovery

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites the file with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run go test -update after checking):\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

func indentJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// goldenDocument has every member of SMART 2.2, a passthrough capability
// name (served normatively) and a vendor extension.
func goldenDocument() *Document {
	d := validDocument()
	d.AssociatedEndpoints = []AssociatedEndpoint{{URL: "https://state.example.org", Capabilities: []string{"smart-app-state"}}}
	d.UserAccessBrandBundle = "https://example.org/brands.json"
	d.UserAccessBrandIdentifier = &Identifier{System: "urn:ietf:rfc:3986", Value: "https://example.org"}
	d.Capabilities = append(d.Capabilities, "context-passthrough-banner", "context-passthrough-style", "https://example.org/capability/bulk")
	d.Extensions = map[string]json.RawMessage{
		"x_example_vendor":  json.RawMessage(`{"tier": "gold", "n": 3}`),
		"another_extension": json.RawMessage(`["a","b"]`),
	}
	return d
}

func TestGoldenSMARTConfiguration(t *testing.T) {
	h := mustHandler(t, goldenDocument(), HandlerConfig{})
	golden(t, "smart-configuration.golden.json", h.body())

	// The golden body reads back into the same (normalized) document.
	var back Document
	if err := json.Unmarshal(h.body(), &back); err != nil {
		t.Fatal(err)
	}
	again, err := json.Marshal(back)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := json.Marshal(goldenDocument().normalize())
	if !bytes.Equal(again, first) {
		t.Errorf("round trip changed the document:\n%s\n%s", again, first)
	}
}

func TestGoldenSecurity(t *testing.T) {
	golden(t, "security.golden.json", indentJSON(t, goldenDocument().restSecurity()))
}

func TestGoldenProtectedResource(t *testing.T) {
	m := goldenDocument().ProtectedResource("https://fhir.example.org/r4")
	m.ResourceName = "Example FHIR R4"
	m.ResourceDocumentation = "https://example.org/docs"
	h, err := NewProtectedResourceHandler(m, HandlerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "protected-resource.golden.json", h.body())
}

func TestGoldenPatchedCapabilityStatement(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "capabilitystatement.json"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := PatchCapabilityStatement(in, goldenDocument(), false)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "capabilitystatement-patched.golden.json", out)
}
