package middleware

import (
	"net/http"
	"strings"
	"testing"
)

// BenchmarkAuthorizeWrite measures what judging a patient token's write
// costs: the stored version read through the handler, the strict reading
// of the body, the JSON Patch applied, the conditional matches searched.
// Baseline: the same handler answering the same write without the guard.
func BenchmarkAuthorizeWrite(b *testing.B) {
	stored := `{"resourceType":"Observation","id":"o1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"2339-0"}]},"subject":{"reference":"Patient/123"},"valueQuantity":{"value":95.5,"unit":"mg/dL"}}`
	server := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = r.Body.Read(make([]byte, 1024))
		w.Header().Set("Content-Type", "application/fhir+json")
		switch {
		case r.Method == http.MethodGet && r.URL.RawQuery != "":
			_, _ = w.Write([]byte(`{"resourceType":"Bundle","type":"searchset","entry":[{"resource":` + stored + `,"search":{"mode":"match"}}]}`))
		case r.Method == http.MethodGet:
			_, _ = w.Write([]byte(stored))
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
	a, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	tok := token("patient/Observation.cu", "123")
	for _, tc := range []struct{ name, method, target, ct, body string }{
		{"create", "POST", "/Observation", "application/fhir+json", strings.Replace(stored, `"id":"o1",`, "", 1)},
		{"update", "PUT", "/Observation/o1", "application/fhir+json", stored},
		{"conditional-update", "PUT", "/Observation?identifier=x|1", "application/fhir+json", stored},
		{"patch", "PATCH", "/Observation/o1", "application/json-patch+json", `[{"op":"replace","path":"/status","value":"amended"}]`},
	} {
		for _, impl := range []struct {
			name string
			h    http.Handler
		}{{"baseline", withToken(tok, server)}, {"fhirguard", withToken(tok, a.Handler(server))}} {
			w := &nopWriter{h: http.Header{}}
			req := func() *http.Request {
				r, _ := http.NewRequest(tc.method, testBase+tc.target, strings.NewReader(tc.body))
				r.Header.Set("Content-Type", tc.ct)
				return r
			}
			rec := &statusWriter{h: http.Header{}}
			impl.h.ServeHTTP(rec, req())
			if rec.status != 0 && rec.status != http.StatusOK {
				b.Fatalf("%s %s: status %d", impl.name, tc.name, rec.status)
			}
			b.Run(tc.name+"/impl="+impl.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					impl.h.ServeHTTP(w, req())
				}
			})
		}
	}
}

// statusWriter records the status of a response and discards its body.
type statusWriter struct {
	h      http.Header
	status int
}

func (w *statusWriter) Header() http.Header         { return w.h }
func (w *statusWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *statusWriter) WriteHeader(s int)           { w.status = s }
