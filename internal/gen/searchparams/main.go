// Command searchparams generates searchparam/params_gen.go: for FHIR R4
// (4.0.1) and R5 (5.0.0), every search parameter of every resource type with
// its type and the JSON element paths its FHIRPath expression covers, read
// from internal/fhirdata.
//
// Run it through `go generate ./searchparam`.
package main

import (
	"flag"
	"log"
	"os"

	"github.com/fhirguard/fhirguard/internal/fhirdata"
	"github.com/fhirguard/fhirguard/internal/gen/searchparams/gen"
)

func main() {
	out := flag.String("o", "params_gen.go", "output file")
	flag.Parse()
	src, err := gen.Generate(fhirdata.FS)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		log.Fatal(err)
	}
}
