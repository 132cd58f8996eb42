//go:build !unix

package demotest

import "testing"

// testSignals needs Unix signals.
func testSignals(t *testing.T) { t.Skip("signals are tested on Unix only") }
