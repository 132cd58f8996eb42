package fhirrest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type benchRequest struct {
	name, method, target, ct, body string
}

var benchRequests = []benchRequest{
	{name: "read", method: "GET", target: "/fhir/Observation/lab1"},
	{name: "vread", method: "GET", target: "/fhir/Observation/lab1/_history/2"},
	{name: "search-query", method: "GET", target: "/fhir/Observation?patient=123&code=http://loinc.org|4548-4&_sort=-date&_count=10"},
	{name: "compartment-search", method: "GET", target: "/fhir/Patient/123/Observation?category=laboratory"},
	{name: "create", method: "POST", target: "/fhir/Observation", ct: "application/fhir+json", body: `{"resourceType":"Observation"}`},
	{name: "post-search", method: "POST", target: "/fhir/Observation/_search", ct: "application/x-www-form-urlencoded", body: "patient=123&code=4548-4"},
	{name: "refused-dotdot", method: "GET", target: "/fhir/Patient/pat-1/../pat-2"},
}

// BenchmarkClassify measures Classify on typical requests. The request is
// built once; for bodies, r.Body is rewound on each iteration. The baseline sub-benchmarks run a naive classifier of the
// kind peers use (decoded r.URL.Path, strings.Split, r.URL.Query) on the same
// requests, without any of the canonical-path or override checks.
func BenchmarkClassify(b *testing.B) {
	for _, br := range benchRequests {
		r := httptest.NewRequest(br.method, br.target, nil)
		r.Header.Set("Accept", "application/fhir+json")
		r.Header.Set("Authorization", "Bearer x")
		r.Header.Set("User-Agent", "bench")
		if br.ct != "" {
			r.Header.Set("Content-Type", br.ct)
		}
		body := strings.NewReader(br.body)
		rc := io.NopCloser(body)
		b.Run(br.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if br.body != "" {
					body.Reset(br.body)
					r.Body = rc
					r.ContentLength = int64(len(br.body))
				}
				it, err := Classify(r, "/fhir")
				if err == nil && it.Kind == KindUnknown {
					b.Fatal("unclassified")
				}
			}
		})
		b.Run(br.name+"/baseline-naive", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if naiveClassify(r, "/fhir") == "" {
					b.Fatal("unclassified")
				}
			}
		})
	}
}

// naiveClassify is the baseline: split the decoded path, parse the query.
func naiveClassify(r *http.Request, base string) string {
	segs := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, base), "/"), "/")
	q := r.URL.Query()
	_ = q
	switch {
	case len(segs) == 2 && r.Method == "GET":
		return "read"
	case len(segs) == 1 && r.Method == "GET":
		return "search-type"
	case len(segs) == 1 && r.Method == "POST":
		return "create"
	}
	return "other"
}

func BenchmarkParseBundle(b *testing.B) {
	var entries []string
	for range 10 {
		entries = append(entries, entryJSON("GET", "Observation/lab1", ""),
			entryJSON("POST", "Observation", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/123"}}`))
	}
	body := []byte(bundleJSON("transaction", entries...))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseBundle(body); err != nil {
			b.Fatal(err)
		}
	}
}
