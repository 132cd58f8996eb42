// Package demotest holds the end-to-end tests of the fhirguard examples.
// Each example's test calls Suite with its own router, so the same flows
// run through real HTTP against the standard-library router and the chi
// router: EHR launch, standalone launch, backend services, refresh, opaque
// tokens through introspection (embedded and external authorization
// server), key rotation while serving, and the banner's shell lines: its
// token assignments and curl commands, replayed as a POSIX shell runs them
// (ReadBanner), checked against sh, bash and zsh and run with the real
// curl where they are installed.
package demotest

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/examples/internal/demo"
)

// Started is a demo server started by Start.
type Started struct {
	*demo.Server
	// Banner is what the server printed at start-up.
	Banner string
	// Logs returns what the server has logged so far.
	Logs func() string
}

// Start runs the demo with router and args on a new listener on
// 127.0.0.1:0 and waits until it serves. The server is shut down when the
// test ends, and the test fails unless Run then returns nil.
func Start(t testing.TB, router demo.Router, args ...string) *Started {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return StartOn(t, ln, router, args...)
}

// StartOn is Start on a given listener (for tests that need the address
// before the server exists).
func StartOn(t testing.TB, ln net.Listener, router demo.Router, args ...string) *Started {
	t.Helper()
	var out, logs syncBuffer
	ready := make(chan *demo.Server, 1)
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		done <- demo.Run(ctx, args, router, demo.Options{Name: "test", Stdout: &out, Stderr: &logs, Listener: ln,
			Ready: func(s *demo.Server) { ready <- s }})
	}()
	var s *demo.Server
	select {
	case s = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("demo.Run %v: %v\n%s", args, err, logs.String())
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatalf("demo.Run %v: not ready\n%s", args, logs.String())
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("demo.Run returned %v after shutdown", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("demo.Run did not return after shutdown")
		}
	})
	return &Started{Server: s, Banner: out.String(), Logs: logs.String}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// do sends a request and returns the status and body.
func do(t testing.TB, req *http.Request) (int, []byte) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	return res.StatusCode, b
}
