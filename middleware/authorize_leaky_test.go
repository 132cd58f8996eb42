package middleware

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/fhirguard/fhirguard/scope"
)

// leakyFHIR is a FHIR server that does no authorisation at all and answers
// searches with every resource of the type, whatever the query: whatever
// the enforcement point lets through reaches the client. It records what it
// was asked.
type leakyFHIR struct {
	mu        sync.Mutex
	resources map[string]map[string]any // "Type/id" -> resource
	requests  []string                  // "METHOD path?query"
	bodies    []string
	headers   []http.Header
	// format overrides the response media type ("xml" serves XML).
	format string
	// gzip makes responses gzip-encoded.
	gzip bool
	// honest makes searches apply the patient, subject and _id parameters
	// (other parameters are still ignored).
	honest bool
	// pageSize > 0 makes searches behave like a real server's: pages of at
	// most pageSize matches (or _count), next and previous links, a self
	// link listing the parameters applied, _summary=count and _count=0
	// answered with the total only. The total counts every match.
	pageSize int
}

func fixtures() map[string]map[string]any {
	res := []string{
		`{"resourceType":"Patient","id":"123","name":[{"family":"Smith"}]}`,
		`{"resourceType":"Patient","id":"456","name":[{"family":"Jones"}]}`,
		`{"resourceType":"Patient","id":"789","link":[{"other":{"reference":"Patient/123"},"type":"seealso"}]}`,
		`{"resourceType":"Observation","id":"lab1","status":"final","subject":{"reference":"Patient/123"},"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"2339-0"}]},"valueQuantity":{"value":1.50}}`,
		`{"resourceType":"Observation","id":"vs1","status":"final","subject":{"reference":"Patient/123"},"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]}}`,
		`{"resourceType":"Observation","id":"o456","status":"final","subject":{"reference":"Patient/456"},"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"2339-0"}]}}`,
		`{"resourceType":"Observation","id":"abs123","status":"final","subject":{"reference":"https://ehr.example.org/fhir/Patient/123"}}`,
		`{"resourceType":"Observation","id":"evil123","status":"final","subject":{"reference":"https://evil.example.org/fhir/Patient/123"}}`,
		`{"resourceType":"Observation","id":"grp","status":"final","subject":{"reference":"Group/123"}}`,
		`{"resourceType":"Condition","id":"c1","subject":{"reference":"Patient/123"}}`,
		`{"resourceType":"Condition","id":"c456","subject":{"reference":"Patient/456"}}`,
		`{"resourceType":"Encounter","id":"e1","subject":{"reference":"Patient/123"}}`,
		`{"resourceType":"Medication","id":"m1","code":{"text":"aspirin"}}`,
		`{"resourceType":"Practitioner","id":"9","name":[{"family":"Who"}]}`,
		`{"resourceType":"DiagnosticReport","id":"dr1","subject":{"reference":"Patient/123"}}`,
		`{"resourceType":"Provenance","id":"prov456","target":[{"reference":"Observation/o456"}],"patient":{"reference":"Patient/456"}}`,
		`{"resourceType":"Questionnaire","id":"q1","status":"active"}`,
		`{"resourceType":"Observation","id":"perf123","status":"final","subject":{"reference":"Patient/456"},"performer":[{"reference":"Patient/123"}]}`,
		`{"resourceType":"Observation","id":"mixed123","status":"final","subject":{"reference":"Patient/123"},"focus":[{"reference":"Patient/456"}]}`,
	}
	out := map[string]map[string]any{}
	for _, s := range res {
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			panic(err)
		}
		out[m["resourceType"].(string)+"/"+m["id"].(string)] = m
	}
	return out
}

func newLeaky() *leakyFHIR { return &leakyFHIR{resources: fixtures()} }

func (s *leakyFHIR) calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

func (s *leakyFHIR) lastHeader() http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.headers) == 0 {
		return nil
	}
	return s.headers[len(s.headers)-1]
}

func (s *leakyFHIR) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	q := ""
	if r.URL.RawQuery != "" {
		q = "?" + r.URL.RawQuery
	}
	s.requests = append(s.requests, r.Method+" "+r.URL.Path+q)
	s.bodies = append(s.bodies, string(body))
	s.headers = append(s.headers, r.Header.Clone())
	s.mu.Unlock()

	path := strings.TrimPrefix(r.URL.Path, "/fhir")
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if op := segs[len(segs)-1]; strings.HasPrefix(op, "$") {
		s.operation(w, op, segs)
		return
	}
	switch {
	case r.Method == http.MethodPost && (path == "" || path == "/"):
		s.batch(w, body)
	case r.Method == http.MethodGet && len(segs) >= 2 && segs[0] != "" && !strings.HasPrefix(segs[1], "_") && !strings.HasPrefix(segs[1], "$") && (len(segs) == 2 || segs[2] == "_history"):
		res, ok := s.resources[segs[0]+"/"+segs[1]]
		if !ok {
			s.write(w, http.StatusNotFound, map[string]any{"resourceType": "OperationOutcome", "issue": []any{map[string]any{"severity": "error", "code": "not-found", "diagnostics": "no such " + segs[0] + " in this server"}}})
			return
		}
		if len(segs) == 3 {
			s.write(w, http.StatusOK, s.bundle("history", []map[string]any{res}, nil))
			return
		}
		s.write(w, http.StatusOK, res)
	case r.Method == http.MethodGet || (r.Method == http.MethodPost && strings.HasSuffix(path, "/_search")):
		// Search of any shape: every resource of the type (or of every
		// type), plus every other resource as an "include" when asked.
		typ := segs[0]
		if len(segs) >= 3 {
			typ = segs[2] // compartment search
		}
		if typ == "_history" || typ == "" || typ == "_search" {
			typ = "*"
		}
		var matches, includes []map[string]any
		for _, k := range s.sortedKeys() {
			res := s.resources[k]
			if s.honest && !honestMatch(res, r.URL.Query()) {
				continue
			}
			if typ == "*" || res["resourceType"] == typ {
				matches = append(matches, res)
			} else if strings.Contains(r.URL.RawQuery, "include") {
				includes = append(includes, res)
			}
		}
		if s.pageSize > 0 {
			s.write(w, http.StatusOK, s.page(r.URL, matches, includes))
			return
		}
		s.write(w, http.StatusOK, s.bundle("searchset", matches, includes))
	case r.Method == http.MethodPost || r.Method == http.MethodPut:
		var res map[string]any
		_ = json.Unmarshal(body, &res)
		s.write(w, http.StatusCreated, res)
	case r.Method == http.MethodPatch:
		s.write(w, http.StatusOK, map[string]any{"resourceType": "OperationOutcome"})
	case r.Method == http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func (s *leakyFHIR) operation(w http.ResponseWriter, op string, segs []string) {
	switch op {
	case "$everything":
		var all []map[string]any
		for _, k := range s.sortedKeys() {
			all = append(all, s.resources[k])
		}
		s.write(w, http.StatusOK, s.bundle("searchset", all, nil))
	case "$lastn":
		var obs []map[string]any
		for _, k := range s.sortedKeys() {
			if strings.HasPrefix(k, "Observation/") {
				obs = append(obs, s.resources[k])
			}
		}
		s.write(w, http.StatusOK, s.bundle("searchset", obs, nil))
	case "$meta":
		s.write(w, http.StatusOK, map[string]any{"resourceType": "Parameters"})
	default:
		s.write(w, http.StatusOK, map[string]any{"resourceType": "OperationOutcome", "issue": []any{}})
	}
}

// batch answers a batch or transaction: reads and searches are served
// (leakily), writes answered 201.
func (s *leakyFHIR) batch(w http.ResponseWriter, body []byte) {
	var b struct {
		Type  string `json:"type"`
		Entry []struct {
			Request struct{ Method, URL string } `json:"request"`
		} `json:"entry"`
	}
	_ = json.Unmarshal(body, &b)
	var out []any
	for _, e := range b.Entry {
		u, _, _ := strings.Cut(e.Request.URL, "?")
		segs := strings.Split(strings.Trim(u, "/"), "/")
		switch {
		case e.Request.Method == "GET" && len(segs) == 2:
			if res, ok := s.resources[segs[0]+"/"+segs[1]]; ok {
				out = append(out, map[string]any{"resource": res, "response": map[string]any{"status": "200 OK"}})
			} else {
				out = append(out, map[string]any{"response": map[string]any{"status": "404 Not Found"}})
			}
		case e.Request.Method == "GET":
			var matches []map[string]any
			for _, k := range s.sortedKeys() {
				if strings.HasPrefix(k, segs[0]+"/") {
					matches = append(matches, s.resources[k])
				}
			}
			out = append(out, map[string]any{"resource": s.bundle("searchset", matches, nil), "response": map[string]any{"status": "200 OK"}})
		default:
			out = append(out, map[string]any{"response": map[string]any{"status": "201 Created"}})
		}
	}
	s.write(w, http.StatusOK, map[string]any{"resourceType": "Bundle", "type": b.Type + "-response", "entry": out})
}

func (s *leakyFHIR) sortedKeys() []string {
	keys := make([]string, 0, len(s.resources))
	for k := range s.resources {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (s *leakyFHIR) bundle(typ string, matches, includes []map[string]any) map[string]any {
	var entries []any
	for _, m := range matches {
		entries = append(entries, map[string]any{"fullUrl": "https://ehr.example.org/fhir/" + m["resourceType"].(string) + "/" + m["id"].(string), "resource": m, "search": map[string]any{"mode": "match"}})
	}
	for _, m := range includes {
		entries = append(entries, map[string]any{"resource": m, "search": map[string]any{"mode": "include"}})
	}
	return map[string]any{"resourceType": "Bundle", "type": typ, "total": len(matches), "entry": entries}
}

// page renders one page of a search as a paging server does (pageSize).
func (s *leakyFHIR) page(u *url.URL, matches, includes []map[string]any) map[string]any {
	q := u.Query()
	n := s.pageSize
	if c, err := strconv.Atoi(q.Get("_count")); err == nil && c < n {
		n = max(c, 0)
	}
	off, _ := strconv.Atoi(q.Get("_offset"))
	off = min(max(off, 0), len(matches))
	applied := url.Values{}
	if s.honest {
		for _, name := range []string{"patient", "subject", "performer", "_id"} {
			if vs, ok := q[name]; ok {
				applied[name] = vs
			}
		}
	}
	link := func(rel string, offset int) map[string]any {
		v := url.Values{}
		for k, vs := range applied {
			v[k] = vs
		}
		v.Set("_count", strconv.Itoa(n))
		v.Set("_offset", strconv.Itoa(offset))
		return map[string]any{"relation": rel, "url": "https://ehr.example.org" + u.Path + "?" + v.Encode()}
	}
	b := s.bundle("searchset", nil, nil)
	b["total"] = len(matches)
	links := []any{link("self", off)}
	if q.Get("_summary") == "count" || n == 0 {
		delete(b, "entry")
		b["link"] = links
		return b
	}
	end := min(off+n, len(matches))
	page := s.bundle("searchset", matches[off:end], includes)
	if end > off || len(includes) > 0 {
		b["entry"] = page["entry"]
	} else {
		delete(b, "entry")
	}
	if end < len(matches) {
		links = append(links, link("next", end))
	}
	if off > 0 {
		links = append(links, link("previous", max(off-n, 0)))
	}
	b["link"] = links
	return b
}

func (s *leakyFHIR) write(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	switch s.format {
	case "xml":
		w.Header().Set("Content-Type", "application/fhir+xml")
		b = []byte("<Bundle xmlns=\"http://hl7.org/fhir\"/>")
	default:
		w.Header().Set("Content-Type", "application/fhir+json; charset=utf-8")
	}
	w.Header().Set("ETag", `W/"1"`)
	if s.gzip {
		w.Header().Set("Content-Encoding", "gzip")
		b = gzipForTest(b)
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// authorize returns the enforcement point's middleware alone, for tests
// that put the token in the context themselves (withToken).
func authorize(cfg AuthorizeConfig) (func(http.Handler) http.Handler, error) {
	a, err := newAuthorizer(cfg)
	if err != nil {
		return nil, err
	}
	return a.Handler, nil
}

// withToken is Authenticate's stand-in: it puts a fixed token in the context.
func withToken(t *Token, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t != nil {
			r = r.WithContext(newContextWithToken(r.Context(), t))
		}
		next.ServeHTTP(w, r)
	})
}

func token(scopes, patient string) *Token {
	return &Token{Scopes: scope.Compile(scope.ParseSet(scopes)), Patient: patient, Subject: "u1", ClientID: "app"}
}

const testBase = "https://ehr.example.org/fhir"

type harness struct {
	t     *testing.T
	store *leakyFHIR
	authz *authorizer
}

func newHarness(t *testing.T, mod func(*AuthorizeConfig)) *harness {
	t.Helper()
	cfg := AuthorizeConfig{BaseURL: testBase, Logger: quietLogger()}
	if mod != nil {
		mod(&cfg)
	}
	a, err := newAuthorizer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, store: newLeaky(), authz: a}
}

type resp struct {
	*httptest.ResponseRecorder
	doc map[string]any
}

func (h *harness) do(tok *Token, method, target, body string, hdr ...string) resp {
	h.t.Helper()
	var rb io.Reader
	if body != "" {
		rb = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, "https://ehr.example.org/fhir"+target, rb)
	if body != "" {
		r.Header.Set("Content-Type", "application/fhir+json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	withToken(tok, h.authz.Handler(h.store)).ServeHTTP(rec, r)
	out := resp{ResponseRecorder: rec}
	if strings.Contains(rec.Header().Get("Content-Type"), "json") && rec.Body.Len() > 0 {
		_ = json.Unmarshal(rec.Body.Bytes(), &out.doc)
	}
	return out
}

// ids lists "Type/id" of the resources in a response (a resource or a
// Bundle's entries), sorted.
func (r resp) ids() []string {
	var out []string
	if r.doc == nil {
		return nil
	}
	if r.doc["resourceType"] != "Bundle" {
		return []string{r.doc["resourceType"].(string) + "/" + r.doc["id"].(string)}
	}
	entries, _ := r.doc["entry"].([]any)
	for _, e := range entries {
		res := e.(map[string]any)["resource"].(map[string]any)
		out = append(out, res["resourceType"].(string)+"/"+res["id"].(string))
	}
	sort.Strings(out)
	return out
}

func (r resp) query(t *testing.T, store *leakyFHIR) url.Values {
	t.Helper()
	calls := store.calls()
	if len(calls) == 0 {
		t.Fatal("the handler was not called")
	}
	last := calls[len(calls)-1]
	_, raw, _ := strings.Cut(last, "?")
	q, _ := url.ParseQuery(raw)
	return q
}

func gzipForTest(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// honestMatch applies the patient, subject, performer, _id, identifier and
// code parameters of q to res (exact values only; other parameters are
// ignored).
func honestMatch(res map[string]any, q url.Values) bool {
	refs := func(name string) []string {
		var out []string
		switch v := res[name].(type) {
		case map[string]any:
			r, _ := v["reference"].(string)
			out = append(out, r)
		case []any:
			for _, e := range v {
				m, _ := e.(map[string]any)
				r, _ := m["reference"].(string)
				out = append(out, r)
			}
		}
		return out
	}
	has := func(list []string, v string) bool {
		return slices.Contains(list, v) || slices.Contains(list, "Patient/"+v)
	}
	for _, name := range []string{"patient", "subject", "performer"} {
		elem := name
		if name == "patient" {
			elem = "subject"
		}
		for _, v := range q[name] {
			if !has(refs(elem), v) {
				return false
			}
		}
	}
	for _, v := range q["_id"] {
		if res["id"] != v {
			return false
		}
	}
	for _, v := range q["code"] {
		code, _ := res["code"].(map[string]any)
		codings, _ := code["coding"].([]any)
		found := false
		for _, c := range codings {
			m, _ := c.(map[string]any)
			found = found || m["code"] == v
		}
		if !found {
			return false
		}
	}
	return len(q["identifier"]) == 0 // no fixture has an identifier
}
