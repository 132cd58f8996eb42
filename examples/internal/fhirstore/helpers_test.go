package fhirstore

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
)

const testBase = "http://fhir.test/fhir"

func newSeeded(t testing.TB) *Store {
	t.Helper()
	s, err := New(Config{BasePath: "/fhir", BaseURL: testBase})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Seed(); err != nil {
		t.Fatal(err)
	}
	return s
}

// do sends a request; hdr is pairs of header name and value. A body is sent
// as application/fhir+json unless a Content-Type is given.
func do(t testing.TB, h http.Handler, method, target, body string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("bad target %q: %v", target, err)
	}
	r := httptest.NewRequest(method, "http://fhir.test/", strings.NewReader(body))
	r.URL = u
	r.RequestURI = target
	if body != "" {
		r.Header.Set("Content-Type", MediaType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

// decode parses a JSON response body and fails on anything but an object.
func decode(t testing.TB, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if rec.Body.Len() == 0 {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, rec.Body.String())
	}
	return m
}

// wantStatus checks the status; error bodies must be an OperationOutcome.
func wantStatus(t testing.TB, rec *httptest.ResponseRecorder, want int) map[string]any {
	t.Helper()
	if rec.Code != want {
		t.Fatalf("status %d, want %d; body %s", rec.Code, want, rec.Body.String())
	}
	m := decode(t, rec)
	if want >= 400 {
		if m["resourceType"] != "OperationOutcome" {
			t.Fatalf("error body is not an OperationOutcome: %s", rec.Body.String())
		}
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, MediaType) {
			t.Fatalf("Content-Type %q", ct)
		}
	}
	return m
}

// entries returns "Type/id" of the Bundle entries with the search mode
// ("match", "include"), or all entries when mode is "".
func entries(t testing.TB, b map[string]any, mode string) []string {
	t.Helper()
	if b["resourceType"] != "Bundle" {
		t.Fatalf("not a Bundle: %v", b)
	}
	out := []string{}
	es, _ := b["entry"].([]any)
	for _, e := range es {
		em := e.(map[string]any)
		if mode != "" {
			sm, _ := em["search"].(map[string]any)
			if sm["mode"] != mode {
				continue
			}
		}
		res, _ := em["resource"].(map[string]any)
		if res == nil {
			continue
		}
		ref := res["resourceType"].(string) + "/" + res["id"].(string)
		if full, _ := em["fullUrl"].(string); full != "" && full != testBase+"/"+ref {
			t.Errorf("fullUrl %q for %s", full, ref)
		}
		out = append(out, ref)
	}
	return out
}

func link(b map[string]any, rel string) string {
	ls, _ := b["link"].([]any)
	for _, l := range ls {
		lm := l.(map[string]any)
		if lm["relation"] == rel {
			return lm["url"].(string)
		}
	}
	return ""
}

func total(b map[string]any) int {
	f, ok := b["total"].(float64)
	if !ok {
		return -1
	}
	return int(f)
}

// field walks a decoded JSON value: keys for objects, "0".. for arrays.
func field(v any, path ...string) any {
	for _, p := range path {
		switch t := v.(type) {
		case map[string]any:
			v = t[p]
		case []any:
			i := 0
			for _, c := range p {
				i = i*10 + int(c-'0')
			}
			if i >= len(t) {
				return nil
			}
			v = t[i]
		default:
			return nil
		}
	}
	return v
}

func sameList(a, b []string) bool { return slices.Equal(a, b) }

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}
