// Command compartments generates compartment/compartments_gen.go: the FHIR R4
// (4.0.1) and R5 (5.0.0) CompartmentDefinitions joined with the element paths
// of their SearchParameters, read from internal/fhirdata.
//
// Run it through `go generate ./compartment`.
package main

import (
	"flag"
	"log"
	"os"

	"github.com/fhirguard/fhirguard/internal/fhirdata"
	"github.com/fhirguard/fhirguard/internal/gen/compartments/gen"
)

func main() {
	out := flag.String("o", "compartments_gen.go", "output file")
	flag.Parse()
	src, err := gen.Generate(fhirdata.FS)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		log.Fatal(err)
	}
}
