package demo

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkLogRequests measures what the demo's request logging adds to a
// request, against the bare handler in the same run.
func BenchmarkLogRequests(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"resourceType":"Patient","id":"123"}`))
	})
	r := httptest.NewRequest("GET", "http://127.0.0.1/fhir/Patient/123", nil)
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{
		{"baseline", h},
		{"logged", logRequests(slog.New(slog.NewTextHandler(io.Discard, nil)), h)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				w.Body.Reset()
				bc.h.ServeHTTP(w, r)
			}
		})
	}
}
