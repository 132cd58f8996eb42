//go:build unix && !linux

package gateway

import "time"

// cpuTime is not measured outside Linux.
func cpuTime(int) (time.Duration, bool) { return 0, false }
