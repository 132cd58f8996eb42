package fhirstore

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// The baselines serve the same bytes from a handler that does nothing else,
// so the difference is the store's own cost (routing, lookup, search).

func benchServe(b *testing.B, h http.Handler, target string) {
	b.Helper()
	r := httptest.NewRequest(http.MethodGet, target, nil)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

func fixedHandler(b *testing.B, s *Store, target string) http.Handler {
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	body := rec.Body.Bytes()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", MediaType)
		_, _ = w.Write(body)
	})
}

func BenchmarkRead(b *testing.B) {
	s := newSeeded(b)
	const target = "/fhir/Observation/lab1"
	b.Run("baseline", func(b *testing.B) { benchServe(b, fixedHandler(b, s, target), target) })
	b.Run("store", func(b *testing.B) { benchServe(b, s, target) })
}

func BenchmarkSearch(b *testing.B) {
	s := newSeeded(b)
	for _, bc := range []struct{ name, target string }{
		{"patient", "/fhir/Observation?patient=123"},
		{"category+include", "/fhir/Observation?patient=123&category=laboratory&_include=Observation:patient&_revinclude=Provenance:target"},
		{"compartment", "/fhir/Patient/123/*"},
		{"everything", "/fhir/Patient/123/$everything"},
	} {
		b.Run(bc.name+"/baseline", func(b *testing.B) { benchServe(b, fixedHandler(b, s, bc.target), bc.target) })
		b.Run(bc.name+"/store", func(b *testing.B) { benchServe(b, s, bc.target) })
	}
}
