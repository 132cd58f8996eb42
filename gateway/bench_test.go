package gateway

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkRewriteBundle rewrites a searchset of 100 Observations as a
// FHIR server writes it (fullUrl, absolute references, paging links).
func BenchmarkRewriteBundle(b *testing.B) {
	m := testMatcher(b, "http://127.0.0.1:8103/fhir", "https://ehr.example.org/fhir")
	var sb strings.Builder
	sb.WriteString(`{"resourceType":"Bundle","type":"searchset","link":[{"relation":"next","url":"http://127.0.0.1:8103/fhir/Observation?_count=100&_offset=100"}],"entry":[`)
	for i := range 100 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"fullUrl":"http://127.0.0.1:8103/fhir/Observation/%d","resource":{"resourceType":"Observation","id":"%d","status":"final",`+
			`"code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}]},"subject":{"reference":"Patient/p1"},`+
			`"performer":[{"reference":"http://127.0.0.1:8103/fhir/Practitioner/9"}],"valueQuantity":{"value":72,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"},`+
			`"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">Heart rate 72/min</div>"}},"search":{"mode":"match"}}`, i, i)
	}
	sb.WriteString(`]}`)
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.rewriteJSON(body); err != nil {
			b.Fatal(err)
		}
	}
}
