// Package statuswriter records the status and the size of an HTTP
// response, for access logs (the demo servers and fhirguard proxy).
package statuswriter

import "net/http"

// Writer wraps a ResponseWriter and records what was sent through it.
type Writer struct {
	http.ResponseWriter
	Status int   // the final status; 0 until a header or body is written
	Bytes  int64 // body bytes written
}

// WriteHeader records a final (non-1xx) status and passes it on.
func (w *Writer) WriteHeader(code int) {
	if w.Status == 0 && code >= 200 {
		w.Status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200 and the size written.
func (w *Writer) Write(b []byte) (int, error) {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.Bytes += int64(n)
	return n, err
}

// Flush passes flushes through (httputil.ReverseProxy flushes).
func (w *Writer) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *Writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }
