package lenientfhir

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
)

// maxBody bounds a request body.
const maxBody = 32 << 20

// Server is the in-memory FHIR server; it is an http.Handler. Build it with
// New. It is safe for concurrent use (one request at a time is executed).
type Server struct {
	base    string // path prefix of the FHIR base, such as "/fhir"
	baseURL string // absolute base accepted in entry URLs, such as "https://ehr.example.org/fhir"

	mu     sync.Mutex
	store  map[string]*Resource // "Type/id"; values are never mutated in place
	nextID int
	calls  int
	log    []Op
}

// New returns a server for the FHIR base baseURL (absolute, such as
// "https://ehr.example.org/fhir"), seeded with Seed.
func New(baseURL string) *Server {
	u, err := url.Parse(baseURL)
	if err != nil {
		panic("lenientfhir: bad base URL: " + err.Error())
	}
	s := &Server{base: strings.TrimRight(u.Path, "/"), baseURL: strings.TrimRight(baseURL, "/"), store: map[string]*Resource{}}
	for _, raw := range Seed {
		var r Resource
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			panic("lenientfhir: bad seed: " + err.Error())
		}
		s.store[r.ResourceType+"/"+r.ID] = &r
	}
	return s
}

// Seed are the resources a new server holds: two patients, each with
// Observations, two of which share an identifier.
var Seed = []string{
	`{"resourceType":"Patient","id":"123"}`,
	`{"resourceType":"Patient","id":"456"}`,
	`{"resourceType":"Observation","id":"o123","status":"final","identifier":[{"system":"urn:test","value":"o123"}],"subject":{"reference":"Patient/123"}}`,
	`{"resourceType":"Observation","id":"o456","status":"final","identifier":[{"system":"urn:test","value":"o456"}],"subject":{"reference":"Patient/456"}}`,
	`{"resourceType":"Observation","id":"s123","status":"final","identifier":[{"system":"urn:test","value":"shared"}],"subject":{"reference":"Patient/123"}}`,
	`{"resourceType":"Observation","id":"s456","status":"final","identifier":[{"system":"urn:test","value":"shared"}],"subject":{"reference":"Patient/456"}}`,
	`{"resourceType":"Observation","id":"m456","status":"final","identifier":[{"system":"urn:test","value":"mixed"}],"subject":{"reference":"Patient/456"},"performer":[{"reference":"Patient/123"}]}`,
}

// Log returns a copy of the execution log.
func (s *Server) Log() []Op {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Op(nil), s.log...)
}

// Snapshot returns a copy of every stored resource, by "Type/id".
func (s *Server) Snapshot() map[string]Resource {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Resource, len(s.store))
	for k, r := range s.store {
		out[k] = *r
	}
	return out
}

// Get returns the stored resource Type/id, or nil.
func (s *Server) Get(typ, id string) *Resource {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.store[typ+"/"+id]; r != nil {
		c := *r
		return &c
	}
	return nil
}

// request is one FHIR request, direct or from a Bundle entry.
type request struct {
	method, url string // url relative to the base, with its query
	body        []byte
	contentType string
	ifNoneExist string
}

// result is the outcome of one request.
type result struct {
	status   int
	resource *Resource
	search   []*Resource
	isSearch bool
	location string
	msg      string
}

func fail(status int, format string, args ...any) result {
	return result{status: status, msg: fmt.Sprintf(format, args...)}
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		writeResult(w, fail(http.StatusBadRequest, "unreadable body"))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	rel, ok := strings.CutPrefix(r.URL.Path, s.base)
	if !ok {
		writeResult(w, fail(http.StatusNotFound, "outside the FHIR base"))
		return
	}
	rel = strings.Trim(rel, "/")
	if r.Method == http.MethodPost && rel == "" {
		s.bundle(w, r.Method, body)
		return
	}
	if r.URL.RawQuery != "" {
		rel += "?" + r.URL.RawQuery
	}
	req := request{method: r.Method, url: rel, body: body, contentType: r.Header.Get("Content-Type"), ifNoneExist: r.Header.Get("If-None-Exist")}
	writeResult(w, s.exec(req, Op{Call: s.calls, HTTPMethod: r.Method, Entry: -1}))
}

// exec runs one request and logs it with the fields of op filled in.
func (s *Server) exec(req request, op Op) result {
	op.Method, op.URL, op.IfNoneExist = req.method, req.url, req.ifNoneExist
	path, rawQuery, hasQuery := strings.Cut(req.url, "?")
	var segs []string
	if p := strings.Trim(path, "/"); p != "" {
		segs = strings.Split(p, "/")
	}
	crit, err := url.ParseQuery(rawQuery)
	if err != nil {
		crit = url.Values{}
	}
	res := fail(http.StatusBadRequest, "unsupported request")
	if len(segs) > 0 {
		op.Type = segs[0]
	}
	if len(segs) > 1 {
		op.ID = segs[1]
	}
	var touched []*Resource
	method := req.method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	switch {
	case len(segs) == 0 || len(segs) > 2:
	case method == http.MethodGet && len(segs) == 2:
		if r := s.store[segs[0]+"/"+segs[1]]; r != nil {
			res = result{status: http.StatusOK, resource: r}
			touched = append(touched, r)
		} else {
			res = fail(http.StatusNotFound, "not found")
		}
	case method == http.MethodGet:
		op.Criteria = crit.Encode()
		matches := s.search(segs[0], crit)
		res = result{status: http.StatusOK, search: matches, isSearch: true}
		touched = append(touched, matches...)
	case method == http.MethodPost && len(segs) == 1:
		var cond url.Values
		if req.ifNoneExist != "" {
			if cond, err = url.ParseQuery(req.ifNoneExist); err != nil {
				res = fail(http.StatusBadRequest, "bad If-None-Exist")
				break
			}
			op.Criteria = cond.Encode()
		}
		res, touched = s.create(segs[0], req.body, cond)
	case method == http.MethodPut:
		id := op.ID
		if len(segs) == 1 {
			if !hasQuery {
				break
			}
			op.Criteria = crit.Encode()
			m := s.search(segs[0], crit)
			if len(m) > 1 {
				res = fail(http.StatusPreconditionFailed, "several matches")
				break
			}
			if len(m) == 1 {
				id = m[0].ID
			}
		}
		res, touched = s.update(segs[0], id, req.body)
	case method == http.MethodPatch:
		id := op.ID
		if len(segs) == 1 {
			if !hasQuery {
				break
			}
			op.Criteria = crit.Encode()
			m := s.search(segs[0], crit)
			if len(m) != 1 {
				res = fail(http.StatusPreconditionFailed, "conditional patch needs exactly one match")
				break
			}
			id = m[0].ID
		}
		res, touched = s.patch(segs[0], id, req.body, req.contentType)
	case method == http.MethodDelete:
		var victims []*Resource
		if len(segs) == 1 {
			if !hasQuery {
				break
			}
			op.Criteria = crit.Encode()
			victims = s.search(segs[0], crit) // every match: a lenient server
		} else if r := s.store[segs[0]+"/"+segs[1]]; r != nil {
			victims = append(victims, r)
		} else {
			res = fail(http.StatusNotFound, "not found")
			break
		}
		for _, v := range victims {
			delete(s.store, v.ResourceType+"/"+v.ID)
		}
		res = result{status: http.StatusNoContent}
		touched = victims
	}
	if res.status < 300 && res.resource != nil && (method == http.MethodPost || method == http.MethodPut) {
		op.ID = res.resource.ID
	}
	op.Status = res.status
	ids, pats := map[string]bool{}, map[string]bool{}
	for _, r := range touched {
		ids[r.ResourceType+"/"+r.ID] = true
		for _, p := range r.Patients() {
			pats[p] = true
		}
	}
	op.Touched, op.Patients = sortedKeys(ids), sortedKeys(pats)
	s.log = append(s.log, op)
	return res
}

// decodeResource decodes a body into the typed view, as the server does
// for every resource: case-insensitive, last duplicate wins, unknown
// members ignored.
func decodeResource(body []byte, typ string) (*Resource, error) {
	var r Resource
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, err
	}
	if r.ResourceType != typ {
		return nil, fmt.Errorf("resourceType %q does not match %q", r.ResourceType, typ)
	}
	return &r, nil
}

func (s *Server) create(typ string, body []byte, cond url.Values) (result, []*Resource) {
	r, err := decodeResource(body, typ)
	if err != nil {
		return fail(http.StatusBadRequest, "%v", err), nil
	}
	if cond != nil {
		switch m := s.search(typ, cond); len(m) {
		case 0:
		case 1:
			return result{status: http.StatusOK, resource: m[0]}, m // the existing one
		default:
			return fail(http.StatusPreconditionFailed, "several matches"), nil
		}
	}
	s.nextID++
	r.ID = fmt.Sprintf("new%d", s.nextID)
	s.store[typ+"/"+r.ID] = r
	return result{status: http.StatusCreated, resource: r, location: typ + "/" + r.ID}, []*Resource{r}
}

func (s *Server) update(typ, id string, body []byte) (result, []*Resource) {
	r, err := decodeResource(body, typ)
	if err != nil {
		return fail(http.StatusBadRequest, "%v", err), nil
	}
	switch {
	case id == "" && r.ID == "":
		s.nextID++
		r.ID = fmt.Sprintf("new%d", s.nextID)
	case id == "":
	case r.ID == "":
		r.ID = id
	case r.ID != id:
		return fail(http.StatusBadRequest, "the id of the body does not match"), nil
	}
	key := typ + "/" + r.ID
	touched := []*Resource{r}
	status := http.StatusCreated
	if old := s.store[key]; old != nil {
		touched = append(touched, old)
		status = http.StatusOK
	}
	s.store[key] = r
	return result{status: status, resource: r, location: key}, touched
}

// patch applies a JSON Patch to the stored resource's JSON (a map), then
// decodes the result into the typed view again. A JSON Patch in a Bundle
// comes as a Binary resource.
func (s *Server) patch(typ, id string, body []byte, contentType string) (result, []*Resource) {
	old := s.store[typ+"/"+id]
	if old == nil {
		return fail(http.StatusNotFound, "not found"), nil
	}
	if !strings.Contains(contentType, "json-patch") {
		var bin Resource
		if json.Unmarshal(body, &bin) != nil || bin.ResourceType != "Binary" || !strings.Contains(bin.ContentType, "json-patch") {
			return fail(http.StatusUnsupportedMediaType, "only JSON Patch"), nil
		}
		body = bin.Data
	}
	var ops []PatchOp
	if err := json.Unmarshal(body, &ops); err != nil {
		return fail(http.StatusBadRequest, "bad JSON Patch: %v", err), nil
	}
	b, _ := json.Marshal(old)
	var doc any
	_ = json.Unmarshal(b, &doc)
	for _, o := range ops {
		var err error
		if doc, err = applyOp(doc, o); err != nil {
			return fail(http.StatusUnprocessableEntity, "%v", err), nil
		}
	}
	b, err := json.Marshal(doc) // map keys sorted: "Subject" < "subject" < "ſubject"
	if err != nil {
		return fail(http.StatusUnprocessableEntity, "%v", err), nil
	}
	r, err := decodeResource(b, typ)
	if err != nil || r.ID != id {
		return fail(http.StatusUnprocessableEntity, "the patch changes the resource's type or id"), nil
	}
	s.store[typ+"/"+id] = r
	return result{status: http.StatusOK, resource: r}, []*Resource{r, old}
}

// bundle runs a batch or transaction.
func (s *Server) bundle(w http.ResponseWriter, httpMethod string, body []byte) {
	var b Bundle
	if err := json.Unmarshal(body, &b); err != nil {
		writeResult(w, fail(http.StatusBadRequest, "bad Bundle: %v", err))
		return
	}
	if b.ResourceType != "Bundle" || (b.Type != "batch" && b.Type != "transaction") {
		writeResult(w, fail(http.StatusBadRequest, "only batch and transaction Bundles"))
		return
	}
	// A transaction runs on the live store and is undone on failure.
	saved := make(map[string]*Resource, len(s.store))
	for k, v := range s.store {
		saved[k] = v
	}
	savedID, savedLog := s.nextID, len(s.log)
	out := make([]map[string]any, 0, len(b.Entry))
	for i, e := range b.Entry {
		u := e.Request.URL
		if rest, ok := strings.CutPrefix(u, s.baseURL); ok {
			u = rest
		}
		if pu, err := url.Parse(u); err == nil { // the percent-decoded path, as a router sees it
			u = pu.Path
			if pu.RawQuery != "" {
				u += "?" + pu.RawQuery
			}
		}
		u = strings.TrimPrefix(u, "/")
		// Lenient about the method's case, too.
		req := request{method: strings.ToUpper(e.Request.Method), url: u, body: e.Resource, ifNoneExist: e.Request.IfNoneExist}
		op := Op{Call: s.calls, HTTPMethod: httpMethod, Entry: i, BundleType: b.Type}
		res := s.exec(req, op)
		s.log[len(s.log)-1].URL = e.Request.URL // as received
		if b.Type == "transaction" && res.status >= 400 {
			s.store, s.nextID, s.log = saved, savedID, s.log[:savedLog]
			writeResult(w, fail(res.status, "transaction failed at entry %d: %s", i, res.msg))
			return
		}
		out = append(out, entryResponse(res))
	}
	writeJSON(w, http.StatusOK, map[string]any{"resourceType": "Bundle", "type": b.Type + "-response", "entry": out})
}

func entryResponse(res result) map[string]any {
	resp := map[string]any{"status": fmt.Sprintf("%d %s", res.status, http.StatusText(res.status))}
	if res.location != "" {
		resp["location"] = res.location
	}
	e := map[string]any{"response": resp}
	switch {
	case res.isSearch:
		e["resource"] = searchBundle(res.search)
	case res.resource != nil:
		e["resource"] = res.resource
	case res.msg != "":
		resp["outcome"] = outcome(res.msg)
	}
	return e
}

func searchBundle(matches []*Resource) map[string]any {
	entries := make([]map[string]any, 0, len(matches))
	for _, r := range matches {
		entries = append(entries, map[string]any{"fullUrl": r.ResourceType + "/" + r.ID, "resource": r, "search": map[string]any{"mode": "match"}})
	}
	return map[string]any{"resourceType": "Bundle", "type": "searchset", "total": len(matches), "entry": entries}
}

func outcome(msg string) map[string]any {
	return map[string]any{"resourceType": "OperationOutcome", "issue": []any{map[string]any{"severity": "error", "code": "processing", "diagnostics": msg}}}
}

func writeResult(w http.ResponseWriter, res result) {
	switch {
	case res.status >= 400:
		writeJSON(w, res.status, outcome(res.msg))
	case res.isSearch:
		writeJSON(w, res.status, searchBundle(res.search))
	case res.resource != nil:
		if res.location != "" {
			w.Header().Set("Location", res.location)
		}
		writeJSON(w, res.status, res.resource)
	default:
		w.WriteHeader(res.status)
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
