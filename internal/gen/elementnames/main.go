// Command elementnames generates internal/fhirjson/names_gen.go: every FHIR
// element name that the FHIRPath expressions of the FHIR R4 (4.0.1) and R5
// (5.0.0) SearchParameters read, read from internal/fhirdata. It reports on
// standard error the generated names that differ only in case (fhirjson
// treats such names as ambiguous and accepts each as written).
//
// Run it through `go generate ./internal/fhirjson`.
package main

import (
	"flag"
	"log"
	"os"
	"strings"

	"github.com/fhirguard/fhirguard/internal/fhirdata"
	"github.com/fhirguard/fhirguard/internal/gen/elementnames/gen"
)

func main() {
	out := flag.String("o", "names_gen.go", "output file")
	flag.Parse()
	names, err := gen.Names(fhirdata.FS)
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range gen.Collisions(names) {
		log.Printf("warning: element names differ only in case: %s", strings.Join(c, ", "))
	}
	src, err := gen.Generate(fhirdata.FS)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		log.Fatal(err)
	}
}
