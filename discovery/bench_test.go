package discovery

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// discardWriter is a ResponseWriter that keeps one header map, cleared
// between requests, so that a benchmark counts the handler's allocations
// only (a real server also reuses its header map per connection).
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(s int)   { w.status = s }
func (w *discardWriter) Write(b []byte) (int, error) {
	w.n += len(b)
	return len(b), nil
}

func benchServe(b *testing.B, h http.Handler, r *http.Request, want int) {
	w := &discardWriter{h: make(http.Header, 16)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
	b.StopTimer()
	if w.status != want && !(w.status == 0 && want == http.StatusOK) {
		b.Fatalf("status %d, want %d", w.status, want)
	}
}

// BenchmarkHandler measures serving the cached document. Baselines in the
// same run: Static writes the same bytes with only Content-Type set (the
// least any handler can do), Marshal encodes the document per request
// (what the cache avoids).
func BenchmarkHandler(b *testing.B) {
	doc := goldenDocument()
	h := mustHandler(b, doc, HandlerConfig{})
	body := h.body()
	get := httptest.NewRequest(http.MethodGet, "/.well-known/smart-configuration", nil)
	get.Header.Set("Accept", "application/json")
	cond := get.Clone(get.Context())
	cond.Header.Set("If-None-Match", `"x", W/`+h.etag())
	preflight := httptest.NewRequest(http.MethodOptions, "/", nil)
	preflight.Header.Set("Access-Control-Request-Method", "GET")

	b.Run("Static", func(b *testing.B) {
		static := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = hdrJSON
			_, _ = w.Write(body)
		})
		benchServe(b, static, get, http.StatusOK)
	})
	b.Run("Marshal", func(b *testing.B) {
		naive := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			out, err := json.Marshal(doc.normalize())
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Access-Control-Allow-Origin", "*")
			_, _ = w.Write(out)
		})
		benchServe(b, naive, get, http.StatusOK)
	})
	b.Run("GET", func(b *testing.B) { benchServe(b, h, get, http.StatusOK) })
	b.Run("NotModified", func(b *testing.B) { benchServe(b, h, cond, http.StatusNotModified) })
	b.Run("Preflight", func(b *testing.B) { benchServe(b, h, preflight, http.StatusNoContent) })
}

// TestHandlerAllocations holds the cached GET and 304 paths to zero
// allocations of their own (a correctness property of the cache, counted,
// not timed).
func TestHandlerAllocations(t *testing.T) {
	h := mustHandler(t, validDocument(), HandlerConfig{})
	get := httptest.NewRequest(http.MethodGet, "/", nil)
	cond := httptest.NewRequest(http.MethodGet, "/", nil)
	cond.Header.Set("If-None-Match", h.etag())
	w := &discardWriter{h: make(http.Header, 16)}
	for _, r := range []*http.Request{get, cond} {
		if n := testing.AllocsPerRun(100, func() { clear(w.h); h.ServeHTTP(w, r) }); n != 0 {
			t.Errorf("%d allocations per request", int(n))
		}
	}
}
