package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// gatedWriter records what is written; while gate is open (not nil and
// not closed) every Write waits for it.
type gatedWriter struct {
	gate chan struct{}
	mu   sync.Mutex
	b    bytes.Buffer
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	if g.gate != nil {
		<-g.gate
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.b.Write(p)
}

func (g *gatedWriter) String() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.b.String()
}

// TestLogWriterOrder writes lines from several goroutines through a small
// buffer (often full): every line arrives once, each goroutine's in order.
func TestLogWriterOrder(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	out := &gatedWriter{}
	w := newLogWriter(out, 200)
	const writers, lines = 4, 500
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range lines {
				if i%100 == 99 {
					w.Flush()
				}
				line := fmt.Sprintf("g%d %04d %s\n", g, i, strings.Repeat("x", i%70))
				if n, err := w.Write([]byte(line)); n != len(line) || err != nil {
					t.Errorf("Write: %d, %v", n, err)
				}
			}
		}()
	}
	wg.Wait()
	w.Close()
	next := make([]int, writers)
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var g, i int
		if _, err := fmt.Sscanf(l, "g%d %d", &g, &i); err != nil || g < 0 || g >= writers {
			t.Fatalf("line %q", l)
		}
		if i != next[g] {
			t.Fatalf("writer %d: line %d after %d", g, i, next[g]-1)
		}
		next[g]++
	}
	for g, n := range next {
		if n != lines {
			t.Errorf("writer %d: %d lines, want %d", g, n, lines)
		}
	}
}

// TestLogWriterBatches: lines are written by the goroutine, without Flush
// or Close.
func TestLogWriterBatches(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	out := &gatedWriter{}
	w := newLogWriter(out, 1<<10)
	defer w.Close()
	for i := range 10 {
		fmt.Fprintf(w, "line %d\n", i)
	}
	deadline := time.Now().Add(time.Minute) // bounds a hang only
	for strings.Count(out.String(), "\n") < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("not written: %q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLogWriterFlushAndClose: Flush writes at once; Close writes the rest
// and stops the goroutine; lines after Close are written through.
func TestLogWriterFlushAndClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	out := &gatedWriter{}
	w := newLogWriter(out, 1<<10)
	_, _ = w.Write([]byte("a\n"))
	w.Flush()
	if got := out.String(); got != "a\n" {
		t.Fatalf("after Flush: %q", got)
	}
	_, _ = w.Write([]byte("b\n"))
	w.Close()
	if got := out.String(); got != "a\nb\n" {
		t.Fatalf("after Close: %q", got)
	}
	goleak.VerifyNone(t) // the goroutine ended with Close
	_, _ = w.Write([]byte("c\n"))
	if got := out.String(); got != "a\nb\nc\n" {
		t.Fatalf("after Close, a line: %q", got)
	}
	w.Close() // again: nothing happens
	w.Flush()
}

// TestLogWriterFullBlocks: when the output does not keep up and the
// buffer is full, Write waits (nothing is dropped), and a line larger
// than the buffer is written whole.
func TestLogWriterFullBlocks(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	out := &gatedWriter{gate: make(chan struct{})}
	w := newLogWriter(out, 64)
	line := strings.Repeat("y", 39) + "\n" // 40 bytes: one fits, two do not
	wrote := make(chan int, 1)
	go func() {
		n := 0
		for range 5 {
			_, _ = logWriterProducer(w, line)
			n++
		}
		wrote <- n
	}()
	// Wait until the producer waits (on the output, or on the writer that
	// holds it): from then on it cannot finish before the gate opens. The
	// deadline only bounds a hang.
	deadline := time.Now().Add(30 * time.Second)
	for !goroutineWaits("logWriterProducer") {
		select {
		case n := <-wrote:
			t.Fatalf("%d lines written through a blocked output and a 64-byte buffer", n)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the producer never blocked")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case n := <-wrote:
		t.Fatalf("%d lines written through a blocked output and a 64-byte buffer", n)
	default:
	}
	close(out.gate)
	if n := <-wrote; n != 5 {
		t.Fatal(n)
	}
	big := strings.Repeat("z", 100) + "\n"
	_, _ = w.Write([]byte(big))
	w.Close()
	if want := strings.Repeat(line, 5) + big; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}

// TestFlushAtWarn: a warning is written when it is logged, after the
// buffered lines before it.
func TestFlushAtWarn(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	out := &gatedWriter{}
	w := newLogWriter(out, 1<<10)
	defer w.Close()
	log := newLogger(&proxyConfig{logFormat: "text", logLevel: "info"}, w)
	log = log.With("k", "v").WithGroup("g")
	log.Info("first")
	log.Warn("second")
	got := out.String()
	if !strings.Contains(got, "msg=first k=v") || !strings.Contains(got, "msg=second k=v") || strings.Index(got, "first") > strings.Index(got, "second") {
		t.Errorf("after a warning: %q", got)
	}
	log.LogAttrs(t.Context(), slog.LevelError, "third")
	if !strings.Contains(out.String(), "msg=third") {
		t.Errorf("after an error: %q", out.String())
	}
}

// logWriterProducer is w.Write, under a name goroutineWaits can find in a
// stack.
//
//go:noinline
func logWriterProducer(w *logWriter, line string) (int, error) { return w.Write([]byte(line)) }

// goroutineWaits reports whether a goroutine with fn in its stack is
// blocked (on a channel, a mutex or a semaphore).
func goroutineWaits(fn string) bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		if !strings.Contains(g, fn) {
			continue
		}
		for _, state := range []string{"[chan receive", "[chan send", "[select", "[sync.Mutex.Lock", "[semacquire", "[sync.Cond.Wait"} {
			if strings.Contains(header, state) {
				return true
			}
		}
	}
	return false
}
