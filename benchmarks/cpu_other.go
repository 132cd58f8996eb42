//go:build !unix

package benchmarks

import "time"

// cpuTime is not measured on this platform.
func cpuTime() time.Duration { return 0 }
