package main

import (
	"testing"

	"github.com/fhirguard/fhirguard/examples/internal/demo/demotest"
)

// TestEndToEnd runs the SMART flows and FHIR calls through real HTTP
// against this example's router.
func TestEndToEnd(t *testing.T) { demotest.Suite(t, routes) }
