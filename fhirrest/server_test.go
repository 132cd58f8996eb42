package fhirrest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestClassifyOverHTTP runs Classify as a middleware in front of a handler
// on a real server: what the client sends on the wire is what is refused,
// and the handler still reads the request body.
func TestClassifyOverHTTP(t *testing.T) {
	c, err := New(Config{Base: "/fhir", MaxFormBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		it, err := c.Classify(r)
		if err != nil {
			w.WriteHeader(StatusCode(err))
			return
		}
		body, _ := io.ReadAll(r.Body) // the wrapped handler
		fmt.Fprintf(w, "%v|%s", it, body)
	}))
	defer srv.Close()
	const tx = `{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"GET","url":"Patient/1"}}]}`
	tests := []struct {
		name, method, path, ct, body string
		status                       int
		want                         string
	}{
		{name: "read", method: "GET", path: "/fhir/Patient/1", status: 200, want: "read GET Patient/1|"},
		{name: "post search keeps body", method: "POST", path: "/fhir/Observation/_search", ct: formCT, body: "patient=1&code=x", status: 200,
			want: "search-type POST Observation|patient=1&code=x"},
		{name: "transaction keeps body", method: "POST", path: "/fhir", ct: jsonCT, body: tx, status: 200, want: "transaction POST|" + tx},
		{name: "create keeps body", method: "POST", path: "/fhir/Patient", ct: jsonCT, body: `{"resourceType":"Patient"}`, status: 200, want: `create POST Patient|{"resourceType":"Patient"}`},
		{name: "dot segments", method: "GET", path: "/fhir/Patient/1/../2", status: 400},
		{name: "encoded slash", method: "GET", path: "/fhir/Patient/1%2F..%2F2", status: 400},
		{name: "double encoded slash", method: "GET", path: "/fhir/Patient/1%252F2", status: 400},
		{name: "unknown type", method: "GET", path: "/fhir/patient/1", status: 404},
		{name: "method not allowed", method: "POST", path: "/fhir/Patient/1", status: 405},
		{name: "form too large", method: "POST", path: "/fhir/Observation/_search", ct: formCT, body: "a=" + strings.Repeat("x", 2000), status: 413},
		{name: "json search body", method: "POST", path: "/fhir/Observation/_search", ct: jsonCT, body: "{}", status: 415},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.ct != "" {
				req.Header.Set("Content-Type", tc.ct)
			}
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			got, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", res.StatusCode, tc.status, got)
			}
			if tc.want != "" && string(got) != tc.want {
				t.Errorf("handler saw %q, want %q", got, tc.want)
			}
		})
	}
}
