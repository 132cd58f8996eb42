package main

import (
	"os"
	"testing"

	"github.com/fhirguard/fhirguard/examples/internal/demo/demotest"
)

func TestMain(m *testing.M) {
	demotest.RunChild("demo", routes) // the signal tests run this binary as the demo program
	os.Exit(m.Run())
}

// TestEndToEnd runs the SMART flows and FHIR calls through real HTTP
// against this example's router.
func TestEndToEnd(t *testing.T) { demotest.Suite(t, routes) }
