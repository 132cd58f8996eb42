//go:build unix && race

package gateway

// raceEnabled: the test binary runs with -race, and so does the fhirguard
// binary the suite builds (the race detector then watches the proxy too).
const raceEnabled = true
