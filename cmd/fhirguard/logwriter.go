package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// logWriter buffers the log lines of fhirguard proxy and writes them to
// its output from a goroutine of its own, at most logFlushInterval after
// the first line of a batch, instead of one write system call per request
// on the request's path. Nothing is dropped: a line that does not fit in
// the buffer waits for the buffer to be written (the request that logs it
// waits too). Lines keep their order. Flush writes what is buffered at
// once (lines at level Warn and above are flushed so, see flushAtWarn);
// Close writes what is left and ends the goroutine, after which Write
// writes through.
type logWriter struct {
	out   io.Writer
	limit int // the buffer's capacity in bytes

	wmu sync.Mutex // held while writing to out; taken before mu

	mu     sync.Mutex
	buf    []byte // lines not yet written
	spare  []byte // the other buffer, written last time
	closed bool

	kick    chan struct{} // a first line was buffered
	urgent  chan struct{} // the buffer is half full
	stop    chan struct{}
	done    chan struct{}
	closing sync.Once
}

// logFlushInterval is the longest a buffered line waits to be written.
const logFlushInterval = 100 * time.Millisecond

// logBufferBytes is the capacity of a logWriter's buffer.
const logBufferBytes = 256 << 10

func newLogWriter(out io.Writer, limit int) *logWriter {
	w := &logWriter{
		out:    out,
		limit:  limit,
		buf:    make([]byte, 0, limit),
		spare:  make([]byte, 0, limit),
		kick:   make(chan struct{}, 1),
		urgent: make(chan struct{}, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go w.run()
	return w
}

// Write buffers p (a whole line: slog's handlers write one record per
// call). It never fails; errors of the output are not reported (slog
// ignores them as well).
func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	if !w.closed && len(w.buf)+len(p) <= w.limit {
		first := len(w.buf) == 0
		w.buf = append(w.buf, p...)
		half := len(w.buf) >= w.limit/2
		w.mu.Unlock()
		if first {
			notify(w.kick)
		}
		if half {
			notify(w.urgent)
		}
		return len(p), nil
	}
	w.mu.Unlock()
	// Full, or closed: write what is buffered, then p, in order.
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.mu.Lock()
	if !w.closed && len(w.buf)+len(p) <= w.limit { // written meanwhile
		w.buf = append(w.buf, p...)
		w.mu.Unlock()
		notify(w.kick)
		return len(p), nil
	}
	pending := w.take()
	w.mu.Unlock()
	if len(pending) > 0 {
		_, _ = w.out.Write(pending)
	}
	_, _ = w.out.Write(p)
	return len(p), nil
}

// notify sends on a channel of capacity 1 without waiting.
func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// take returns the buffered lines and gives buf the spare buffer. Called
// with mu and wmu held: the returned slice is written before wmu is
// released, so the next take may reuse it.
func (w *logWriter) take() []byte {
	pending := w.buf
	w.buf, w.spare = w.spare[:0], pending
	return pending
}

// Flush writes the buffered lines now.
func (w *logWriter) Flush() {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.mu.Lock()
	pending := w.take()
	w.mu.Unlock()
	if len(pending) > 0 {
		_, _ = w.out.Write(pending)
	}
}

// Close writes the buffered lines and stops the goroutine; later lines
// are written through. It may be called more than once.
func (w *logWriter) Close() {
	w.closing.Do(func() {
		close(w.stop)
		<-w.done
		w.wmu.Lock()
		defer w.wmu.Unlock()
		w.mu.Lock()
		w.closed = true
		pending := w.take()
		w.mu.Unlock()
		if len(pending) > 0 {
			_, _ = w.out.Write(pending)
		}
	})
}

func (w *logWriter) run() {
	defer close(w.done)
	t := time.NewTimer(logFlushInterval)
	t.Stop()
	for {
		select {
		case <-w.kick:
		case <-w.urgent:
		case <-w.stop:
			return
		}
		t.Reset(logFlushInterval)
		select {
		case <-t.C:
		case <-w.urgent:
			t.Stop()
		case <-w.stop:
			t.Stop()
			return
		}
		w.Flush()
	}
}

// flushAtWarn passes records to its handler and flushes the logWriter
// after a record at level Warn or above, so that warnings and errors are
// written at once (and the access lines before them, in order).
type flushAtWarn struct {
	slog.Handler
	w *logWriter
}

func (h flushAtWarn) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		h.w.Flush()
	}
	return err
}

func (h flushAtWarn) WithAttrs(as []slog.Attr) slog.Handler {
	return flushAtWarn{h.Handler.WithAttrs(as), h.w}
}

func (h flushAtWarn) WithGroup(name string) slog.Handler {
	return flushAtWarn{h.Handler.WithGroup(name), h.w}
}
