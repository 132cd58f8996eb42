package demotest

import (
	"encoding/json"
	"os"

	"github.com/fhirguard/fhirguard/examples/internal/demo"
)

// childEnv carries the arguments of a demo started as a child process by
// the signal tests.
const childEnv = "FHIRGUARD_DEMO_CHILD_ARGS"

// RunChild runs the demo with router as a real program (demo.Main, with its
// signal handling) when the test binary was started as a child by Suite's
// signal tests, and then exits; otherwise it returns at once. Call it first
// in the example's TestMain.
func RunChild(name string, router demo.Router) {
	raw, ok := os.LookupEnv(childEnv)
	if !ok {
		return
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		os.Exit(3)
	}
	os.Args = append([]string{name}, args...)
	demo.Main(name, router)
	os.Exit(0)
}
