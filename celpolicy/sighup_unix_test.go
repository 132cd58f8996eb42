//go:build unix

package celpolicy

import (
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// TestWatchSIGHUP sends SIGHUP to the test process. The test holds its own
// signal.Notify for SIGHUP throughout, so the signal can never terminate
// the process.
func TestWatchSIGHUP(t *testing.T) {
	guard := make(chan os.Signal, 16)
	signal.Notify(guard, syscall.SIGHUP)
	defer signal.Stop(guard)

	dir := t.TempDir()
	path := writeFile(t, dir, "p.yaml", policyA)
	results := make(chan error, 64)
	p := newTestPolicy(t, Config{File: path, Watch: WatchConfig{Signals: []os.Signal{syscall.SIGHUP},
		OnReload: func(err error) { results <- err }}})
	defer p.Close()
	writeFile(t, dir, "p.yaml", policyB) // no polling: only a signal reloads
	deadline := time.After(time.Minute)  // bounds a hang only
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-results:
			if err != nil {
				t.Fatal(err)
			}
			if got := denyingRule(t, p); got != "only-post" {
				t.Fatalf("rule %q after SIGHUP", got)
			}
			return
		case <-tick.C:
			if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
				t.Skipf("cannot signal self: %v", err)
			}
		case <-deadline:
			t.Fatal("SIGHUP did not reload")
		}
	}
}
