package statuswriter

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWriter(t *testing.T) {
	w := &Writer{ResponseWriter: sink{http.Header{}}}
	w.WriteHeader(http.StatusEarlyHints) // informational: not the status
	_, _ = w.Write([]byte("hello"))
	_, _ = w.Write([]byte(" world"))
	if w.Status != http.StatusOK || w.Bytes != 11 {
		t.Fatalf("status %d, bytes %d; want 200, 11", w.Status, w.Bytes)
	}
	w = &Writer{ResponseWriter: httptest.NewRecorder()}
	w.WriteHeader(http.StatusNotFound)
	w.WriteHeader(http.StatusOK) // a second call changes nothing recorded
	if w.Status != http.StatusNotFound {
		t.Fatalf("status %d, want 404", w.Status)
	}
	if http.NewResponseController(w).Flush() != nil {
		t.Fatal("Flush through the controller failed")
	}
}

// sink accepts every header and byte, 1xx headers included.
type sink struct{ h http.Header }

func (s sink) Header() http.Header         { return s.h }
func (s sink) WriteHeader(int)             {}
func (s sink) Write(b []byte) (int, error) { return len(b), nil }
