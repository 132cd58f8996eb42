//go:build !race

package middleware

// raceEnabled: the race detector changes allocation counts.
const raceEnabled = false
