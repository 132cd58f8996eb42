package fhirstore

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestHistory(t *testing.T) {
	s := newSeeded(t)
	wantStatus(t, do(t, s, "PUT", "/fhir/Observation/lab1", obsWith("lab1", "Patient/123")), 200)
	wantStatus(t, do(t, s, "DELETE", "/fhir/Observation/lab1", ""), 204)
	wantStatus(t, do(t, s, "POST", "/fhir/Observation", newObs), 201)
	tests := []struct {
		name     string
		target   string
		status   int
		total    int
		first    string // request method and url of the newest entry
		statuses string // response statuses of the first entries
	}{
		{name: "instance", target: "/fhir/Observation/lab1/_history", status: 200, total: 4, first: "DELETE Observation/lab1", statuses: "204 No Content;200 OK;200 OK;201 Created"},
		{name: "instance of deleted", target: "/fhir/Observation/lab1/_history?_count=1", status: 200, total: 4, first: "DELETE Observation/lab1"},
		{name: "type", target: "/fhir/Observation/_history", status: 200, total: 10, first: "POST Observation"},
		{name: "system", target: "/fhir/_history", status: 200, total: 30, first: "POST Observation"},
		{name: "since", target: "/fhir/Condition/_history?_since=2026-01-01T00:00:17Z", status: 200, total: 3, first: "PUT Condition/c456"},
		{name: "since future", target: "/fhir/_history?_since=2999-01-01T00:00:00Z", status: 200, total: 0},
		{name: "count zero has no next", target: "/fhir/_history?_count=0", status: 200, total: 30},
		{name: "since bad", target: "/fhir/_history?_since=yesterday", status: 400},
		{name: "count bad", target: "/fhir/_history?_count=x", status: 400},
		{name: "unknown resource", target: "/fhir/Observation/nope/_history", status: 404},
		{name: "unknown type", target: "/fhir/Nope/_history", status: 404},
		{name: "post refused", target: "/fhir/_history", status: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := "GET"
			if strings.HasPrefix(tt.name, "post") {
				method = "POST"
			}
			b := wantStatus(t, do(t, s, method, tt.target, ""), tt.status)
			if tt.status != 200 {
				return
			}
			if b["type"] != "history" || total(b) != tt.total {
				t.Fatalf("type %v total %d, want %d", b["type"], total(b), tt.total)
			}
			if strings.Contains(tt.target, "_count=0") && (link(b, "next") != "" || b["entry"] != nil) {
				t.Fatalf("_count=0: next %q, entries %v", link(b, "next"), b["entry"])
			}
			if tt.first != "" {
				got := fmt.Sprint(field(b, "entry", "0", "request", "method"), " ", field(b, "entry", "0", "request", "url"))
				if got != tt.first {
					t.Fatalf("newest entry %q, want %q", got, tt.first)
				}
			}
			if tt.statuses != "" {
				var got []string
				for i := range strings.Count(tt.statuses, ";") + 1 {
					got = append(got, fmt.Sprint(field(b, "entry", fmt.Sprint(i), "response", "status")))
				}
				if strings.Join(got, ";") != tt.statuses {
					t.Fatalf("statuses %v, want %s", got, tt.statuses)
				}
			}
		})
	}
	t.Run("deleted version has no resource", func(t *testing.T) {
		b := wantStatus(t, do(t, s, "GET", "/fhir/Observation/lab1/_history", ""), 200)
		if field(b, "entry", "0", "resource") != nil || field(b, "entry", "1", "resource", "meta", "versionId") != "3" {
			t.Fatalf("got %v", b["entry"])
		}
	})
}

func TestMetadata(t *testing.T) {
	security := `{"service":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/restful-security-service","code":"SMART-on-FHIR"}]}],"extension":[{"url":"http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris","extension":[{"url":"token","valueUri":"https://as.example/token"}]}]}`
	tests := []struct {
		name     string
		security string
	}{
		{"without security", ""},
		{"with SMART security", security},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(Config{BasePath: "/fhir", BaseURL: testBase, Security: json.RawMessage(tt.security)})
			if err != nil {
				t.Fatal(err)
			}
			m := wantStatus(t, do(t, s, "GET", "/fhir/metadata", ""), 200)
			if m["resourceType"] != "CapabilityStatement" || m["fhirVersion"] != "4.0.1" || m["kind"] != "instance" || field(m, "implementation", "url") != testBase {
				t.Fatalf("got %v", m)
			}
			sec := field(m, "rest", "0", "security")
			if tt.security == "" {
				if sec != nil {
					t.Fatalf("security %v", sec)
				}
			} else {
				var want any
				_ = json.Unmarshal([]byte(tt.security), &want)
				if fmt.Sprint(sec) != fmt.Sprint(want) {
					t.Fatalf("security %v, want %v", sec, want)
				}
			}
			// every type with search parameters is listed, Patient has $everything
			var types []string
			for _, r := range field(m, "rest", "0", "resource").([]any) {
				types = append(types, r.(map[string]any)["type"].(string))
			}
			if !sameList(types, sortedKeys(searchParams)) {
				t.Fatalf("types %v", types)
			}
			wantStatus(t, do(t, s, "HEAD", "/fhir/metadata", ""), 200)
			wantStatus(t, do(t, s, "POST", "/fhir/metadata", "{}"), 405)
		})
	}
	t.Run("base from request", func(t *testing.T) {
		s, _ := New(Config{BasePath: "/r4"})
		r := httptestRequest("GET", "http://ehr.example:8080/r4/metadata")
		rec := serve(s, r)
		var m map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &m)
		if field(m, "implementation", "url") != "http://ehr.example:8080/r4" {
			t.Fatalf("url %v", field(m, "implementation", "url"))
		}
	})
}

func TestMethodNotAllowed(t *testing.T) {
	s := newSeeded(t)
	tests := []struct{ method, target string }{
		{"DELETE", "/fhir"},
		{"PUT", "/fhir"},
		{"PUT", "/fhir/metadata"},
		{"GET", "/fhir/_search"},
		{"GET", "/fhir/Observation/_search"},
		{"POST", "/fhir/Observation/lab1"},
		{"PUT", "/fhir/Observation/_history"},
		{"DELETE", "/fhir/Observation/lab1/_history"},
		{"PUT", "/fhir/Observation/lab1/_history/1"},
		{"DELETE", "/fhir/Patient/123/Observation"},
		{"GET", "/fhir/Patient/123/Observation/_search"},
		{"OPTIONS", "/fhir/Observation"},
		{"TRACE", "/fhir/Observation/lab1"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			rec := do(t, s, tt.method, tt.target, "")
			wantStatus(t, rec, 405)
			if rec.Header().Get("Allow") == "" {
				t.Fatal("no Allow header")
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	s := newSeeded(t)
	big := `{"resourceType":"Patient","id":"big","text":{"div":"` + strings.Repeat("a", maxBody) + `"}}`
	wantStatus(t, do(t, s, "PUT", "/fhir/Patient/big", big), 413)
	wantStatus(t, do(t, s, "GET", "/fhir/Patient/big", ""), 404)
}

func TestConcurrentUse(t *testing.T) {
	s := newSeeded(t)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				id := fmt.Sprintf("w%d-%d", w, i)
				if rec := do(t, s, "PUT", "/fhir/Observation/"+id, obsWith(id, "Patient/123")); rec.Code != 201 {
					t.Errorf("PUT %s: %d", id, rec.Code)
				}
				if rec := do(t, s, "GET", "/fhir/Observation?patient=123&_count=5", ""); rec.Code != 200 {
					t.Errorf("search: %d", rec.Code)
				}
				do(t, s, "POST", "/fhir", bundleOf("transaction", entry("GET", "Patient/123", "")))
			}
		}()
	}
	wg.Wait()
	b := wantStatus(t, do(t, s, "GET", "/fhir/Observation?patient=123&_summary=count", ""), 200)
	if total(b) != 3+100 {
		t.Fatalf("total %d, want 103", total(b))
	}
}

func TestNoAuthorization(t *testing.T) {
	// The store must serve anything asked: authorization is the middleware's job.
	s := newSeeded(t)
	for _, target := range []string{"/fhir/Observation/o456", "/fhir/Patient/456", "/fhir/Observation?patient=456"} {
		rec := do(t, s, "GET", target, "", "Authorization", "Bearer nonsense")
		wantStatus(t, rec, 200)
	}
}

func TestClock(t *testing.T) {
	at := time.Date(2031, 2, 3, 4, 5, 6, 789_000_000, time.UTC)
	s, _ := New(Config{BasePath: "/fhir", BaseURL: testBase, Now: func() time.Time { return at }})
	rec := do(t, s, "PUT", "/fhir/Patient/p", `{"resourceType":"Patient","id":"p"}`)
	m := wantStatus(t, rec, 201)
	if field(m, "meta", "lastUpdated") != "2031-02-03T04:05:06.789Z" || rec.Header().Get("Last-Modified") != "Mon, 03 Feb 2031 04:05:06 GMT" {
		t.Fatalf("lastUpdated %v Last-Modified %q", field(m, "meta", "lastUpdated"), rec.Header().Get("Last-Modified"))
	}
}

func httptestRequest(method, target string) *http.Request {
	r, _ := http.NewRequest(method, target, nil)
	r.Host = r.URL.Host
	return r
}
