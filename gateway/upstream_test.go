package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
)

// fakeFHIR is an upstream FHIR server that knows nothing of authorization
// and writes its own address everywhere a real server does (Location,
// Content-Location, Link, fullUrl, Bundle.link, absolute references,
// narrative), and in a few places a real server might (identifiers,
// escaped slashes). Searches return every resource of the type.
type fakeFHIR struct {
	srv  *httptest.Server
	base string // its FHIR base: <srv.URL>/up/r4

	mu        sync.Mutex
	resources map[string]map[string]any
	requests  []*http.Request // clones, with their bodies read into bodies
	bodies    []string
	// override, when set, answers instead.
	override http.HandlerFunc
}

func newFakeFHIR(t *testing.T) *fakeFHIR {
	t.Helper()
	f := &fakeFHIR{resources: map[string]map[string]any{}}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	f.base = f.srv.URL + "/up/r4"
	abs := func(ref string) map[string]any { return map[string]any{"reference": f.base + "/" + ref} }
	f.put(map[string]any{"resourceType": "Patient", "id": "p1", "name": []any{map[string]any{"family": "One"}},
		"text": map[string]any{"status": "generated", "div": `<div xmlns="http://www.w3.org/1999/xhtml"><a href="` + f.base + `/Patient/p1">One</a></div>`}})
	f.put(map[string]any{"resourceType": "Patient", "id": "p2", "name": []any{map[string]any{"family": "Two"}}})
	f.put(map[string]any{"resourceType": "Observation", "id": "o1", "status": "final", "subject": abs("Patient/p1"),
		"identifier": []any{map[string]any{"system": f.base, "value": f.base + "/Observation/o1"}}})
	f.put(map[string]any{"resourceType": "Observation", "id": "o1rel", "status": "final", "subject": map[string]any{"reference": "Patient/p1"}})
	f.put(map[string]any{"resourceType": "Observation", "id": "o2", "status": "final", "subject": abs("Patient/p2")})
	f.put(map[string]any{"resourceType": "Observation", "id": "o2rel", "status": "final", "subject": map[string]any{"reference": "Patient/p2"}})
	return f
}

func (f *fakeFHIR) put(res map[string]any) {
	f.resources[res["resourceType"].(string)+"/"+res["id"].(string)] = res
}

// last returns the last request the upstream received and its body.
func (f *fakeFHIR) last(t *testing.T) (*http.Request, string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) == 0 {
		t.Fatal("the upstream got no request")
	}
	return f.requests[len(f.requests)-1], f.bodies[len(f.bodies)-1]
}

func (f *fakeFHIR) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, r.Clone(r.Context()))
	f.bodies = append(f.bodies, string(body))
	override := f.override
	f.mu.Unlock()
	if override != nil {
		override(w, r)
		return
	}
	path, ok := strings.CutPrefix(r.URL.Path, "/up/r4")
	if !ok {
		http.NotFound(w, r)
		return
	}
	segs := strings.Split(strings.Trim(path, "/"), "/")
	w.Header().Set("Link", "<"+f.base+"/metadata>; rel=\"describedby\"")
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case path == "/metadata":
		f.write(w, http.StatusOK, map[string]any{"resourceType": "CapabilityStatement", "status": "active", "kind": "instance",
			"fhirVersion": "4.0.1", "format": []any{"json"}, "implementation": map[string]any{"description": "fake", "url": f.base}})
	case r.Method == http.MethodGet && len(segs) == 2:
		res, ok := f.resources[segs[0]+"/"+segs[1]]
		if !ok {
			f.write(w, http.StatusNotFound, map[string]any{"resourceType": "OperationOutcome", "issue": []any{map[string]any{"severity": "error", "code": "not-found"}}})
			return
		}
		w.Header().Set("Content-Location", f.base+"/"+segs[0]+"/"+segs[1]+"/_history/1")
		f.write(w, http.StatusOK, res)
	case r.Method == http.MethodGet && len(segs) == 1:
		var keys []string
		for k := range f.resources {
			if strings.HasPrefix(k, segs[0]+"/") {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		var entries []any
		for _, k := range keys {
			entries = append(entries, map[string]any{"fullUrl": f.base + "/" + k, "resource": f.resources[k], "search": map[string]any{"mode": "match"}})
		}
		f.write(w, http.StatusOK, map[string]any{"resourceType": "Bundle", "type": "searchset", "total": len(entries),
			"link": []any{
				map[string]any{"relation": "self", "url": f.base + "/" + segs[0] + "?" + r.URL.RawQuery},
				map[string]any{"relation": "next", "url": f.base + "/" + segs[0] + "?" + r.URL.RawQuery + "&_offset=100"},
			},
			"entry": entries})
	case r.Method == http.MethodPost && len(segs) == 1:
		var res map[string]any
		if err := json.Unmarshal(body, &res); err != nil {
			f.write(w, http.StatusBadRequest, map[string]any{"resourceType": "OperationOutcome"})
			return
		}
		res["id"] = fmt.Sprintf("new%d", len(f.resources))
		f.put(res)
		w.Header().Set("Location", f.base+"/"+segs[0]+"/"+res["id"].(string)+"/_history/1")
		f.write(w, http.StatusCreated, res)
	default:
		f.write(w, http.StatusMethodNotAllowed, map[string]any{"resourceType": "OperationOutcome"})
	}
}

func (f *fakeFHIR) write(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v) // escapes nothing in URLs: "http://..." as is
	w.Header().Set("Content-Type", "application/fhir+json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
