// Command resourcetypes generates internal/resourcetypes/table_gen.go: the
// concrete FHIR resource types of R4 (4.0.1) and R5 (5.0.0), read from
// internal/fhirdata.
//
// Run it through `go generate ./internal/resourcetypes`.
package main

import (
	"flag"
	"log"
	"os"

	"github.com/fhirguard/fhirguard/internal/fhirdata"
	"github.com/fhirguard/fhirguard/internal/gen/resourcetypes/gen"
)

func main() {
	out := flag.String("o", "table_gen.go", "output file")
	flag.Parse()
	src, err := gen.Generate(fhirdata.FS)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		log.Fatal(err)
	}
}
