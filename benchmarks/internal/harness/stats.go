package harness

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"time"
)

// ProcessStats are a process's allocation and memory figures.
type ProcessStats struct {
	// Mallocs is runtime.MemStats.Mallocs: heap objects allocated so far.
	Mallocs uint64 `json:"mallocs"`
	// HeapAlloc is runtime.MemStats.HeapAlloc in bytes.
	HeapAlloc uint64 `json:"heap_alloc"`
	// RSS is the resident set size in bytes (VmRSS from /proc/self/status;
	// runtime.MemStats.Sys where /proc is not available).
	RSS uint64 `json:"rss"`
	// CPU is the user plus system CPU time the process has used (zero where
	// the platform does not report it).
	CPU time.Duration `json:"cpu"`
}

// ReadProcessStats reads the calling process's ProcessStats.
func ReadProcessStats() ProcessStats {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	s := ProcessStats{Mallocs: m.Mallocs, HeapAlloc: m.HeapAlloc, RSS: m.Sys, CPU: cpuTime()}
	if rss, ok := vmRSS(); ok {
		s.RSS = rss
	}
	return s
}

func vmRSS() (uint64, bool) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	return parseVmRSS(data)
}

// parseVmRSS reads the VmRSS line ("VmRSS:    16384 kB") of a
// /proc/<pid>/status document and returns it in bytes.
func parseVmRSS(status []byte) (uint64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:"))
		if !ok {
			continue
		}
		kb, ok := bytes.CutSuffix(bytes.TrimSpace(rest), []byte(" kB"))
		if !ok {
			return 0, false
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(kb)), 10, 64)
		if err != nil || n > math.MaxUint64>>10 {
			return 0, false
		}
		return n << 10, true
	}
	return 0, false
}

// StatsPath is where WithStats serves the process's ProcessStats.
const StatsPath = "/_bench/stats"

// WithStats serves ReadProcessStats as JSON at StatsPath, outside the FHIR
// base, and passes every other request to next.
func WithStats(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != StatsPath {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(ReadProcessStats())
	})
}
