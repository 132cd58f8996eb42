package cliconfig_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fhirguard/fhirguard/internal/cliconfig"
)

func ExampleParse() {
	dir, _ := os.MkdirTemp("", "cliconfig")
	defer os.RemoveAll(dir)
	config := filepath.Join(dir, "proxy.yaml")
	_ = os.WriteFile(config, []byte("upstream: http://127.0.0.1:8080/fhir\ntimeout: 30s\ncors-origins: [https://app.example.org, https://admin.example.org]\n"), 0o600)

	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	upstream := fs.String("upstream", "", "FHIR server to guard")
	timeout := fs.Duration("timeout", 0, "request timeout")
	var origins cliconfig.List
	fs.Var(&origins, "cors-origins", "allowed origins")

	// --timeout on the command line wins over the file.
	args, err := cliconfig.Parse(fs, []string{"--config", config, "serve", "--timeout", "5s"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(args, *upstream, *timeout, origins)
	// Output: [serve] http://127.0.0.1:8080/fhir 5s [https://app.example.org https://admin.example.org]
}
