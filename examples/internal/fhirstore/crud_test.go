package fhirstore

import (
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestNewConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero", Config{}, true},
		{"base path", Config{BasePath: "/fhir"}, true},
		{"root slash", Config{BasePath: "/"}, true},
		{"nested base path", Config{BasePath: "/api/fhir/r4"}, true},
		{"base URL", Config{BaseURL: "https://ehr.example.org/fhir/"}, true},
		{"security object", Config{Security: json.RawMessage(`{"cors":true}`)}, true},
		{"counts", Config{DefaultCount: 5, MaxCount: 10}, true},
		{"relative base path", Config{BasePath: "fhir"}, false},
		{"trailing slash", Config{BasePath: "/fhir/"}, false},
		{"double slash", Config{BasePath: "//fhir"}, false},
		{"escaped base path", Config{BasePath: "/f%2Fhir"}, false},
		{"ftp base URL", Config{BaseURL: "ftp://x/fhir"}, false},
		{"relative base URL", Config{BaseURL: "/fhir"}, false},
		{"base URL with query", Config{BaseURL: "http://x/fhir?a=b"}, false},
		{"base URL with user", Config{BaseURL: "http://u:p@x/fhir"}, false},
		{"security array", Config{Security: json.RawMessage(`[]`)}, false},
		{"security not JSON", Config{Security: json.RawMessage(`nope`)}, false},
		{"negative count", Config{DefaultCount: -1}, false},
		{"default above max", Config{DefaultCount: 50, MaxCount: 10}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.cfg)
			if tt.ok {
				if err != nil || s == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("New: got %v, want ErrConfig", err)
			}
		})
	}
}

func TestRead(t *testing.T) {
	s := newSeeded(t)
	tests := []struct {
		name   string
		method string
		target string
		hdr    []string
		status int
		check  func(t *testing.T, m map[string]any)
	}{
		{name: "current version", target: "/fhir/Observation/lab1", status: 200, check: func(t *testing.T, m map[string]any) {
			if field(m, "meta", "versionId") != "2" || m["status"] != "final" || m["id"] != "lab1" {
				t.Errorf("got %v", m)
			}
		}},
		{name: "patient", target: "/fhir/Patient/123", status: 200, check: func(t *testing.T, m map[string]any) {
			if field(m, "name", "0", "family") != "Smith" {
				t.Errorf("got %v", m)
			}
		}},
		{name: "trailing slash", target: "/fhir/Patient/123/", status: 200},
		{name: "escaped id", target: "/fhir/Patient/%31%323", status: 200},
		{name: "unknown id", target: "/fhir/Observation/nope", status: 404},
		{name: "unknown type", target: "/fhir/Observations/lab1", status: 404},
		{name: "lower-case type", target: "/fhir/observation/lab1", status: 404},
		{name: "invalid id", target: "/fhir/Observation/a_b", status: 400},
		{name: "id too long", target: "/fhir/Observation/" + strings.Repeat("a", 65), status: 400},
		{name: "outside base", target: "/other/Observation/lab1", status: 404},
		{name: "base prefix only", target: "/fhirx/Observation/lab1", status: 404},
		{name: "encoded slash", target: "/fhir/Observation%2Flab1", status: 400},
		{name: "dot segment", target: "/fhir/Observation/../Patient/123", status: 400},
		{name: "empty segment", target: "/fhir//Observation/lab1", status: 400},
		{name: "summary text", target: "/fhir/Observation/lab1?_summary=text", status: 200, check: func(t *testing.T, m map[string]any) {
			if _, ok := m["status"]; ok || m["id"] != "lab1" || field(m, "meta", "tag", "0", "code") != "SUBSETTED" {
				t.Errorf("got %v", m)
			}
		}},
		{name: "summary data", target: "/fhir/Observation/lab1?_summary=data", status: 200, check: func(t *testing.T, m map[string]any) {
			if m["status"] != "final" {
				t.Errorf("got %v", m)
			}
		}},
		{name: "summary count on read", target: "/fhir/Observation/lab1?_summary=count", status: 400},
		{name: "elements", target: "/fhir/Observation/lab1?_elements=status,subject", status: 200, check: func(t *testing.T, m map[string]any) {
			if m["status"] != "final" || m["subject"] == nil || m["code"] != nil || m["resourceType"] != "Observation" {
				t.Errorf("got %v", m)
			}
		}},
		{name: "json format", target: "/fhir/Observation/lab1?_format=json", status: 200},
		{name: "fhir json format", target: "/fhir/Observation/lab1?_format=application/fhir%2Bjson", status: 200},
		{name: "xml format", target: "/fhir/Observation/lab1?_format=xml", status: 406},
		{name: "xml accept", target: "/fhir/Observation/lab1", hdr: []string{"Accept", "application/fhir+xml"}, status: 406},
		{name: "browser accept", target: "/fhir/Observation/lab1", hdr: []string{"Accept", "text/html,*/*;q=0.8"}, status: 200},
		{name: "pretty", target: "/fhir/Observation/lab1?_pretty=true", status: 200},
		{name: "if-none-match current", target: "/fhir/Observation/lab1", hdr: []string{"If-None-Match", `W/"2"`}, status: 304},
		{name: "if-none-match old", target: "/fhir/Observation/lab1", hdr: []string{"If-None-Match", `W/"1"`}, status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			rec := do(t, s, method, tt.target, "", tt.hdr...)
			m := wantStatus(t, rec, tt.status)
			if tt.status == 200 {
				if ct := rec.Header().Get("Content-Type"); ct != MediaType+"; charset=utf-8" {
					t.Errorf("Content-Type %q", ct)
				}
				if rec.Header().Get("ETag") == "" || rec.Header().Get("Last-Modified") == "" {
					t.Errorf("missing ETag or Last-Modified: %v", rec.Header())
				}
			}
			if tt.check != nil {
				tt.check(t, m)
			}
		})
	}
	t.Run("head", func(t *testing.T) {
		rec := do(t, s, http.MethodHead, "/fhir/Observation/lab1", "")
		if rec.Code != 200 || rec.Body.Len() != 0 || rec.Header().Get("ETag") != `W/"2"` {
			t.Fatalf("HEAD: %d %q %v", rec.Code, rec.Body.String(), rec.Header())
		}
	})
	t.Run("pretty is indented", func(t *testing.T) {
		rec := do(t, s, http.MethodGet, "/fhir/Observation/lab1?_pretty=true", "")
		if !strings.Contains(rec.Body.String(), "\n  \"") {
			t.Fatalf("not indented: %s", rec.Body.String())
		}
	})
	t.Run("decimal kept exactly", func(t *testing.T) {
		rec := do(t, s, http.MethodGet, "/fhir/Observation/lab1", "")
		if !strings.Contains(rec.Body.String(), `"value":7.10`) {
			t.Fatalf("decimal changed: %s", rec.Body.String())
		}
	})
	t.Run("resourceType first", func(t *testing.T) {
		rec := do(t, s, http.MethodGet, "/fhir/Condition/c1", "")
		if !strings.HasPrefix(rec.Body.String(), `{"resourceType":"Condition",`) {
			t.Fatalf("got %s", rec.Body.String())
		}
	})
}

func TestVRead(t *testing.T) {
	s := newSeeded(t)
	if rec := do(t, s, "DELETE", "/fhir/Condition/c2", ""); rec.Code != 204 {
		t.Fatal(rec.Code)
	}
	tests := []struct {
		name, target string
		status       int
		wantStatus   string
	}{
		{"first version", "/fhir/Observation/lab1/_history/1", 200, "preliminary"},
		{"second version", "/fhir/Observation/lab1/_history/2", 200, "final"},
		{"no third version", "/fhir/Observation/lab1/_history/3", 404, ""},
		{"version zero", "/fhir/Observation/lab1/_history/0", 404, ""},
		{"leading zero", "/fhir/Observation/lab1/_history/01", 404, ""},
		{"not a number", "/fhir/Observation/lab1/_history/x", 404, ""},
		{"unknown resource", "/fhir/Observation/nope/_history/1", 404, ""},
		{"version before delete", "/fhir/Condition/c2/_history/1", 200, ""},
		{"deletion version", "/fhir/Condition/c2/_history/2", 410, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(t, s, "GET", tt.target, "")
			m := wantStatus(t, rec, tt.status)
			if tt.wantStatus != "" && m["status"] != tt.wantStatus {
				t.Errorf("status element %v, want %s", m["status"], tt.wantStatus)
			}
			if tt.status == 200 {
				v := tt.target[strings.LastIndex(tt.target, "/")+1:]
				if field(m, "meta", "versionId") != v || rec.Header().Get("ETag") != `W/"`+v+`"` {
					t.Errorf("meta %v ETag %s", m["meta"], rec.Header().Get("ETag"))
				}
			}
		})
	}
}

var locationPattern = regexp.MustCompile(`^http://fhir\.test/fhir/Observation/([A-Za-z0-9.-]+)/_history/1$`)

const newObs = `{"resourceType":"Observation","id":"ignored","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"2339-0"}]},"subject":{"reference":"Patient/123"},"identifier":[{"system":"urn:test","value":"new-1"}]}`

func TestCreate(t *testing.T) {
	tests := []struct {
		name   string
		target string
		body   string
		hdr    []string
		status int
	}{
		{name: "create", target: "/fhir/Observation", body: newObs, status: 201},
		{name: "application/json", target: "/fhir/Observation", body: newObs, hdr: []string{"Content-Type", "application/json"}, status: 201},
		{name: "charset parameter", target: "/fhir/Observation", body: newObs, hdr: []string{"Content-Type", "application/fhir+json; charset=utf-8"}, status: 201},
		{name: "prefer minimal", target: "/fhir/Observation", body: newObs, hdr: []string{"Prefer", "return=minimal"}, status: 201},
		{name: "prefer outcome", target: "/fhir/Observation", body: newObs, hdr: []string{"Prefer", "return=OperationOutcome"}, status: 201},
		{name: "xml content type", target: "/fhir/Observation", body: newObs, hdr: []string{"Content-Type", "application/fhir+xml"}, status: 415},
		{name: "form content type", target: "/fhir/Observation", body: newObs, hdr: []string{"Content-Type", "application/x-www-form-urlencoded"}, status: 415},
		{name: "type mismatch", target: "/fhir/Condition", body: newObs, status: 400},
		{name: "no resourceType", target: "/fhir/Observation", body: `{"status":"final"}`, status: 400},
		{name: "not JSON", target: "/fhir/Observation", body: `{"resourceType":`, status: 400},
		{name: "array", target: "/fhir/Observation", body: `[]`, status: 400},
		{name: "trailing data", target: "/fhir/Observation", body: newObs + `{}`, status: 400},
		{name: "meta not object", target: "/fhir/Observation", body: `{"resourceType":"Observation","meta":[]}`, status: 400},
		{name: "unknown type", target: "/fhir/Nope", body: `{"resourceType":"Nope"}`, status: 404},
		{name: "R5-only type", target: "/fhir/ActorDefinition", body: `{"resourceType":"ActorDefinition"}`, status: 404},
		{name: "if-none-exist no match", target: "/fhir/Observation", body: newObs, hdr: []string{"If-None-Exist", "identifier=urn:test|zzz"}, status: 201},
		{name: "if-none-exist one match", target: "/fhir/Observation", body: newObs, hdr: []string{"If-None-Exist", "_id=lab2"}, status: 200},
		{name: "if-none-exist many", target: "/fhir/Observation", body: newObs, hdr: []string{"If-None-Exist", "identifier=http://my-lab-system|123"}, status: 412},
		{name: "if-none-exist unknown param", target: "/fhir/Observation", body: newObs, hdr: []string{"If-None-Exist", "nope=1"}, status: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSeeded(t)
			before := s.Len()
			rec := do(t, s, "POST", tt.target, tt.body, tt.hdr...)
			m := wantStatus(t, rec, tt.status)
			switch tt.status {
			case 201:
				loc := rec.Header().Get("Location")
				sub := locationPattern.FindStringSubmatch(loc)
				if sub == nil {
					t.Fatalf("Location %q", loc)
				}
				id := sub[1]
				if id == "ignored" {
					t.Fatal("the client id was kept on create")
				}
				if s.Len() != before+1 {
					t.Fatalf("Len %d, want %d", s.Len(), before+1)
				}
				got := wantStatus(t, do(t, s, "GET", "/fhir/Observation/"+id, ""), 200)
				if got["id"] != id || field(got, "meta", "versionId") != "1" || field(got, "meta", "lastUpdated") == nil {
					t.Fatalf("stored %v", got)
				}
				switch {
				case strings.Contains(strings.Join(tt.hdr, " "), "minimal"):
					if rec.Body.Len() != 0 {
						t.Fatalf("minimal returned a body")
					}
				case strings.Contains(strings.Join(tt.hdr, " "), "OperationOutcome"):
					if m["resourceType"] != "OperationOutcome" {
						t.Fatalf("got %v", m)
					}
				default:
					if m["id"] != id {
						t.Fatalf("body %v", m)
					}
				}
			case 200:
				if m["id"] != "lab2" || s.Len() != before {
					t.Fatalf("conditional create: %v, Len %d", m["id"], s.Len())
				}
			default:
				if s.Len() != before {
					t.Fatalf("failed create changed the store")
				}
			}
		})
	}
	t.Run("ids do not collide with client ids", func(t *testing.T) {
		s := newSeeded(t)
		for _, id := range []string{"1", "2", "3"} {
			body := strings.Replace(newObs, `"ignored"`, `"`+id+`"`, 1)
			wantStatus(t, do(t, s, "PUT", "/fhir/Observation/"+id, body), 201)
		}
		rec := do(t, s, "POST", "/fhir/Observation", newObs)
		wantStatus(t, rec, 201)
		if sub := locationPattern.FindStringSubmatch(rec.Header().Get("Location")); sub == nil || sub[1] == "1" || sub[1] == "2" || sub[1] == "3" {
			t.Fatalf("Location %q", rec.Header().Get("Location"))
		}
	})
}

func obsWith(id, subject string) string {
	return `{"resourceType":"Observation","id":"` + id + `","status":"amended","code":{"text":"x"},"subject":{"reference":"` + subject + `"}}`
}

func TestUpdate(t *testing.T) {
	tests := []struct {
		name    string
		target  string
		body    string
		hdr     []string
		status  int
		id      string // resource to read afterwards
		version string // its expected versionId
	}{
		{name: "update existing", target: "/fhir/Observation/lab1", body: obsWith("lab1", "Patient/123"), status: 200, id: "lab1", version: "3"},
		{name: "update as create", target: "/fhir/Observation/new1", body: obsWith("new1", "Patient/123"), status: 201, id: "new1", version: "1"},
		{name: "resurrect deleted", target: "/fhir/Condition/c2", body: `{"resourceType":"Condition","id":"c2","subject":{"reference":"Patient/123"}}`, status: 201, id: "", version: ""},
		{name: "if-match current", target: "/fhir/Observation/lab1", body: obsWith("lab1", "Patient/123"), hdr: []string{"If-Match", `W/"2"`}, status: 200, id: "lab1", version: "3"},
		{name: "if-match strong form", target: "/fhir/Observation/lab1", body: obsWith("lab1", "Patient/123"), hdr: []string{"If-Match", `"2"`}, status: 200, id: "lab1", version: "3"},
		{name: "if-match stale", target: "/fhir/Observation/lab1", body: obsWith("lab1", "Patient/123"), hdr: []string{"If-Match", `W/"1"`}, status: 412, id: "lab1", version: "2"},
		{name: "if-match on missing", target: "/fhir/Observation/new2", body: obsWith("new2", "Patient/123"), hdr: []string{"If-Match", `W/"1"`}, status: 412},
		{name: "id mismatch", target: "/fhir/Observation/lab1", body: obsWith("vs1", "Patient/123"), status: 400, id: "lab1", version: "2"},
		{name: "id missing", target: "/fhir/Observation/lab1", body: `{"resourceType":"Observation","status":"final"}`, status: 400, id: "lab1", version: "2"},
		{name: "type mismatch", target: "/fhir/Observation/lab1", body: `{"resourceType":"Condition","id":"lab1"}`, status: 400, id: "lab1", version: "2"},
		{name: "wrong media type", target: "/fhir/Observation/lab1", body: obsWith("lab1", "Patient/123"), hdr: []string{"Content-Type", "text/plain"}, status: 415, id: "lab1", version: "2"},
		{name: "conditional update one match", target: "/fhir/Observation?_id=vs1", body: `{"resourceType":"Observation","status":"amended"}`, status: 200, id: "vs1", version: "2"},
		{name: "conditional update no match with id", target: "/fhir/Observation?identifier=urn:x|none", body: obsWith("cu1", "Patient/456"), status: 201, id: "cu1", version: "1"},
		{name: "conditional update no match without id", target: "/fhir/Observation?identifier=urn:x|none", body: `{"resourceType":"Observation","status":"final"}`, status: 201},
		{name: "conditional update many", target: "/fhir/Observation?identifier=http://my-lab-system|123", body: obsWith("lab1", "Patient/123"), status: 412, id: "lab1", version: "2"},
		{name: "conditional update id conflict", target: "/fhir/Observation?_id=vs1", body: obsWith("lab1", "Patient/123"), status: 400, id: "vs1", version: "1"},
		{name: "conditional update without condition", target: "/fhir/Observation", body: obsWith("lab1", "Patient/123"), status: 400, id: "lab1", version: "2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSeeded(t)
			wantStatus(t, do(t, s, "DELETE", "/fhir/Condition/c2", ""), 204)
			rec := do(t, s, "PUT", tt.target, tt.body, tt.hdr...)
			wantStatus(t, rec, tt.status)
			if tt.status == 201 {
				if !strings.HasPrefix(rec.Header().Get("Location"), testBase+"/") {
					t.Errorf("Location %q", rec.Header().Get("Location"))
				}
			}
			if tt.id != "" {
				got := wantStatus(t, do(t, s, "GET", "/fhir/Observation/"+tt.id, ""), 200)
				if field(got, "meta", "versionId") != tt.version {
					t.Fatalf("version %v, want %s", field(got, "meta", "versionId"), tt.version)
				}
			}
		})
	}
	t.Run("meta tags kept, version and time replaced", func(t *testing.T) {
		now := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
		s, _ := New(Config{BasePath: "/fhir", BaseURL: testBase, Now: func() time.Time { return now }})
		body := `{"resourceType":"Patient","id":"p1","meta":{"versionId":"99","lastUpdated":"2000-01-01T00:00:00Z","tag":[{"code":"t"}]}}`
		m := wantStatus(t, do(t, s, "PUT", "/fhir/Patient/p1", body), 201)
		if field(m, "meta", "versionId") != "1" || field(m, "meta", "lastUpdated") != "2030-05-06T07:08:09.000Z" || field(m, "meta", "tag", "0", "code") != "t" {
			t.Fatalf("meta %v", m["meta"])
		}
	})
}

func TestDelete(t *testing.T) {
	tests := []struct {
		name    string
		target  string
		hdr     []string
		status  int
		gone    []string
		present []string
	}{
		{name: "delete", target: "/fhir/Observation/lab1", status: 204, gone: []string{"Observation/lab1"}, present: []string{"Observation/o456"}},
		{name: "delete again", target: "/fhir/Condition/c2", status: 204, gone: []string{"Condition/c2"}},
		{name: "unknown", target: "/fhir/Observation/nope", status: 404},
		{name: "if-match current", target: "/fhir/Observation/lab1", hdr: []string{"If-Match", `W/"2"`}, status: 204, gone: []string{"Observation/lab1"}},
		{name: "if-match stale", target: "/fhir/Observation/lab1", hdr: []string{"If-Match", `W/"1"`}, status: 412, present: []string{"Observation/lab1"}},
		{name: "conditional delete", target: "/fhir/Observation?identifier=http://my-lab-system|123", status: 204, gone: []string{"Observation/lab1", "Observation/o456"}, present: []string{"Observation/vs1"}},
		{name: "conditional delete bound to a patient", target: "/fhir/Observation?identifier=http://my-lab-system|123&patient=123", status: 204, gone: []string{"Observation/lab1"}, present: []string{"Observation/o456"}},
		{name: "conditional delete no match", target: "/fhir/Observation?identifier=urn:x|none", status: 204, present: []string{"Observation/lab1"}},
		{name: "conditional delete unknown parameter", target: "/fhir/Observation?nope=1", status: 400, present: []string{"Observation/lab1"}},
		{name: "conditional delete needs a condition", target: "/fhir/Observation", status: 400, present: []string{"Observation/lab1"}},
		{name: "conditional delete trailing slash", target: "/fhir/Observation/?_id=vs1", status: 204, gone: []string{"Observation/vs1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSeeded(t)
			wantStatus(t, do(t, s, "DELETE", "/fhir/Condition/c2", ""), 204)
			wantStatus(t, do(t, s, "DELETE", tt.target, "", tt.hdr...), tt.status)
			for _, g := range tt.gone {
				wantStatus(t, do(t, s, "GET", "/fhir/"+g, ""), 410)
				typ, id, _ := strings.Cut(g, "/")
				if _, err := s.Get(typ, id); !errors.Is(err, ErrGone) {
					t.Errorf("Get %s: %v", g, err)
				}
			}
			for _, p := range tt.present {
				wantStatus(t, do(t, s, "GET", "/fhir/"+p, ""), 200)
			}
		})
	}
	t.Run("deleted resources leave searches", func(t *testing.T) {
		s := newSeeded(t)
		wantStatus(t, do(t, s, "DELETE", "/fhir/Observation/lab1", ""), 204)
		b := wantStatus(t, do(t, s, "GET", "/fhir/Observation?patient=123", ""), 200)
		if got := entries(t, b, "match"); !sameList(got, []string{"Observation/lab2", "Observation/vs1"}) {
			t.Fatalf("got %v", got)
		}
	})
}

func TestGoAPI(t *testing.T) {
	s := newSeeded(t)
	if n := s.Len(); n != len(seedIDs()) {
		t.Fatalf("Len %d, want %d", n, len(seedIDs()))
	}
	for _, ref := range seedIDs() {
		typ, id, _ := strings.Cut(ref, "/")
		b, err := s.Get(typ, id)
		if err != nil || !json.Valid(b) {
			t.Fatalf("Get %s: %v", ref, err)
		}
	}
	_, err := s.Get("Observation", "nope")
	var e *Error
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &e) || e.Status != 404 || e.Code != "not-found" {
		t.Fatalf("Get missing: %v", err)
	}
	v, err := s.Put(json.RawMessage(obsWith("lab1", "Patient/123")))
	if err != nil || v != "3" {
		t.Fatalf("Put: %q %v", v, err)
	}
	for _, bad := range []string{`{"resourceType":"Observation"}`, `{"resourceType":"Nope","id":"x"}`, `[1]`, `{"resourceType":"Observation","id":"a b"}`} {
		if _, err := s.Put(json.RawMessage(bad)); err == nil {
			t.Errorf("Put %s: no error", bad)
		}
	}
	empty, _ := New(Config{})
	if empty.Len() != 0 {
		t.Fatal("a new store is not empty")
	}
}

func TestSeedDeterministic(t *testing.T) {
	a, b := newSeeded(t), newSeeded(t)
	for _, target := range []string{"/fhir/Patient/123/$everything", "/fhir/_history?_count=100", "/fhir/metadata", "/fhir?_type=Observation,Condition"} {
		ra, rb := do(t, a, "GET", target, ""), do(t, b, "GET", target, "")
		if ra.Code != 200 || ra.Body.String() != rb.Body.String() {
			t.Errorf("%s differs between two seeded stores", target)
		}
	}
	m := wantStatus(t, do(t, a, "GET", "/fhir/Organization/org1", ""), 200)
	if field(m, "meta", "lastUpdated") != "2026-01-01T00:00:00.000Z" {
		t.Fatalf("first seed lastUpdated %v", field(m, "meta", "lastUpdated"))
	}
}
