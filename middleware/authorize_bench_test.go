package middleware

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// nopWriter is a ResponseWriter that discards everything, so benchmarks
// measure the middleware, not httptest.ResponseRecorder.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(int)             {}

func benchRequest(target string, tok *Token) *http.Request {
	r := httptest.NewRequest("GET", testBase+target, nil)
	return r.WithContext(newContextWithToken(r.Context(), tok))
}

// BenchmarkAuthorizeDecision measures the enforcement point when no
// response verification is needed (a system token), against the bare
// handler in the same run. Each iteration gives the request a fresh token
// context, as Authenticate does; the baseline pays for it too.
func BenchmarkAuthorizeDecision(b *testing.B) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	a, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	tok := token("system/Observation.rs system/Patient.rs system/Condition.rs", "")
	for _, tc := range []struct{ name, target string }{
		{"read", "/Observation/123"},
		{"search", "/Observation?patient=123&code=http://loinc.org|2339-0&_count=10"},
	} {
		r := httptest.NewRequest("GET", testBase+tc.target, nil)
		w := &nopWriter{h: http.Header{}}
		bare := withToken(tok, ok)
		b.Run("bare/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bare.ServeHTTP(w, r)
			}
		})
		h := withToken(tok, a.Handler(ok))
		b.Run("authorize/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
		})
	}
}

// searchBundle100 is a 100-entry searchset, half of them another patient's.
func searchBundle100() []byte {
	var entries []string
	for i := range 100 {
		pid := "123"
		if i%2 == 1 {
			pid = "456"
		}
		entries = append(entries, fmt.Sprintf(`{"fullUrl":"https://ehr.example.org/fhir/Observation/o%d","resource":{"resourceType":"Observation","id":"o%d","meta":{"versionId":"1","lastUpdated":"2024-01-01T00:00:00Z"},"status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"2339-0","display":"Glucose"}]},"subject":{"reference":"Patient/%s"},"effectiveDateTime":"2024-01-01T10:00:00Z","valueQuantity":{"value":95.5,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"}},"search":{"mode":"match"}}`, i, i, pid))
	}
	return []byte(`{"resourceType":"Bundle","type":"searchset","total":100,"entry":[` + strings.Join(entries, ",") + `]}`)
}

// BenchmarkVerifyBundle100 measures a patient search whose 100-entry
// response is verified (and half of it removed), against a plain
// json.Unmarshal of the same Bundle in the same run.
func BenchmarkVerifyBundle100(b *testing.B) {
	body := searchBundle100()
	b.Run("baseline/json.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var v map[string]any
			if err := json.Unmarshal(body, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		_, _ = w.Write(body)
	})
	a, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	h := a.Handler(handler)
	r := benchRequest("/Observation?patient=123", token("patient/Observation.rs", "123"))
	w := &nopWriter{h: http.Header{}}
	b.Run("authorize/verify", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			h.ServeHTTP(w, r)
		}
	})
}
