package fhirstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// request is an HTTP request or a Bundle entry, below the base.
type request struct {
	method   string
	segs     []string // decoded path segments
	rawQuery string
	header   http.Header
	body     []byte
	base     string
	inBundle bool
}

// result is the answer to a request.
type result struct {
	status   int
	body     []byte
	location string // relative: Type/id/_history/vid
	etag     string
	modified time.Time
}

func errResult(err error) *result {
	var e *Error
	if !errors.As(err, &e) {
		e = errorf(ErrInvalid, "%v", err)
	}
	return &result{status: e.Status, body: outcome("error", e.Code, e.Diagnostics)}
}

// ServeHTTP serves the FHIR RESTful API below the configured base path.
func (s *Store) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	res := s.handle(w, r)
	h := w.Header()
	if res.location != "" {
		h.Set("Location", s.baseOf(r)+"/"+res.location)
	}
	if res.etag != "" {
		h.Set("ETag", res.etag)
	}
	if !res.modified.IsZero() {
		h.Set("Last-Modified", res.modified.UTC().Format(http.TimeFormat))
	}
	if res.status == http.StatusMethodNotAllowed {
		h.Set("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE")
	}
	if len(res.body) > 0 {
		h.Set("Content-Type", MediaType+"; charset=utf-8")
		if r.URL.Query().Get("_pretty") == "true" {
			var buf bytes.Buffer
			if json.Indent(&buf, res.body, "", "  ") == nil {
				res.body = buf.Bytes()
			}
		}
		h.Set("Content-Length", strconv.Itoa(len(res.body)))
	}
	w.WriteHeader(res.status)
	if len(res.body) > 0 && r.Method != http.MethodHead {
		_, _ = w.Write(res.body)
	}
}

func (s *Store) handle(w http.ResponseWriter, r *http.Request) *result {
	segs, err := s.segments(r.URL)
	if err != nil {
		return errResult(err)
	}
	if err := negotiate(r); err != nil {
		return errResult(err)
	}
	var body []byte
	if r.Body != nil { // nil in requests built for a client, and in some internal calls
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errResult(errorf(ErrInvalid, "request body too large").withStatus(http.StatusRequestEntityTooLarge))
		}
		return errResult(errorf(ErrInvalid, "reading the body: %v", err))
	}
	req := &request{
		method:   r.Method,
		segs:     segs,
		rawQuery: r.URL.RawQuery,
		header:   r.Header,
		body:     body,
		base:     s.baseOf(r),
	}
	return s.serve(req)
}

// baseOf returns the absolute FHIR base for links.
func (s *Store) baseOf(r *http.Request) string {
	if s.baseURL != "" {
		return s.baseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + s.basePath
}

// segments strips the base path and decodes the path segments.
func (s *Store) segments(u *url.URL) ([]string, error) {
	p := u.EscapedPath()
	if !strings.HasPrefix(p, s.basePath) {
		return nil, errorf(ErrNotFound, "not below the FHIR base")
	}
	p = p[len(s.basePath):]
	if p != "" && p[0] != '/' {
		return nil, errorf(ErrNotFound, "not below the FHIR base")
	}
	return splitSegments(p)
}

// splitSegments decodes an escaped path below the base. Empty, dot and
// encoded-slash segments are refused.
func splitSegments(p string) ([]string, error) {
	p = strings.TrimPrefix(p, "/")
	p = strings.TrimSuffix(p, "/")
	if p == "" {
		return nil, nil
	}
	raw := strings.Split(p, "/")
	segs := make([]string, len(raw))
	for i, r := range raw {
		d, err := url.PathUnescape(r)
		if err != nil || d == "" || strings.ContainsAny(d, "/\\") || d == "." || d == ".." {
			return nil, errorf(ErrInvalid, "invalid path segment")
		}
		segs[i] = d
	}
	return segs, nil
}

// negotiate refuses requests for formats other than JSON.
func negotiate(r *http.Request) error {
	if f := r.URL.Query().Get("_format"); f != "" && !strings.Contains(f, "json") {
		return errorf(ErrUnsupported, "only JSON is supported").withStatus(http.StatusNotAcceptable)
	}
	accept := r.Header.Get("Accept")
	if accept == "" || strings.Contains(accept, "json") || strings.Contains(accept, "*/*") || strings.Contains(accept, "application/*") {
		return nil
	}
	return errorf(ErrUnsupported, "only JSON is supported").withStatus(http.StatusNotAcceptable)
}

// readOnly reports whether a request only reads, so a read lock suffices.
func readOnly(req *request) bool {
	switch req.method {
	case http.MethodGet, http.MethodHead:
		return true
	case http.MethodPost:
		n := len(req.segs)
		return n > 0 && (req.segs[n-1] == "_search" || req.segs[n-1] == "$everything")
	}
	return false
}

func (s *Store) serve(req *request) *result {
	if readOnly(req) {
		s.mu.RLock()
		defer s.mu.RUnlock()
	} else {
		s.mu.Lock()
		defer s.mu.Unlock()
	}
	res, err := s.dispatch(req)
	if err != nil {
		return errResult(err)
	}
	return res
}

func methodNotAllowed(req *request) error {
	return errorf(ErrMethod, "%s is not allowed here", req.method)
}

func isGet(m string) bool { return m == http.MethodGet || m == http.MethodHead }

// dispatch routes a request. The caller holds the lock.
func (s *Store) dispatch(req *request) (*result, error) {
	segs := req.segs
	if len(segs) == 0 {
		switch {
		case isGet(req.method):
			return s.systemSearch(req, nil)
		case req.method == http.MethodPost:
			return s.bundle(req)
		}
		return nil, methodNotAllowed(req)
	}
	first := segs[0]
	switch {
	case first == "metadata" && len(segs) == 1:
		if !isGet(req.method) {
			return nil, methodNotAllowed(req)
		}
		return &result{status: http.StatusOK, body: s.capabilities(req.base)}, nil
	case first == "_history" && len(segs) == 1:
		if !isGet(req.method) {
			return nil, methodNotAllowed(req)
		}
		return s.historyBundle(req, "", "")
	case first == "_search" && len(segs) == 1:
		if req.method != http.MethodPost {
			return nil, methodNotAllowed(req)
		}
		form, err := formBody(req)
		if err != nil {
			return nil, err
		}
		return s.systemSearch(req, form)
	case strings.HasPrefix(first, "$"):
		return nil, errorf(ErrUnsupported, "operation %s is not supported", first)
	case !isR4Type(first):
		return nil, errorf(ErrNotFound, "unknown resource type %q", first)
	}
	typ := first
	switch len(segs) {
	case 1:
		switch req.method {
		case http.MethodGet, http.MethodHead:
			return s.typeSearch(req, typ, nil, "")
		case http.MethodPost:
			return s.createHTTP(req, typ)
		case http.MethodPut:
			return s.conditionalUpdate(req, typ)
		case http.MethodPatch:
			return s.conditionalPatch(req, typ)
		case http.MethodDelete:
			return s.conditionalDelete(req, typ)
		}
		return nil, methodNotAllowed(req)
	case 2:
		second := segs[1]
		switch {
		case second == "_search":
			if req.method != http.MethodPost {
				return nil, methodNotAllowed(req)
			}
			form, err := formBody(req)
			if err != nil {
				return nil, err
			}
			return s.typeSearch(req, typ, form, "")
		case second == "_history":
			if !isGet(req.method) {
				return nil, methodNotAllowed(req)
			}
			return s.historyBundle(req, typ, "")
		case strings.HasPrefix(second, "$"):
			return nil, errorf(ErrUnsupported, "operation %s is not supported on %s", second, typ)
		case !validID(second):
			return nil, errorf(ErrInvalid, "invalid resource id")
		}
		id := second
		switch req.method {
		case http.MethodGet, http.MethodHead:
			return s.read(req, typ, id)
		case http.MethodPut:
			return s.updateHTTP(req, typ, id)
		case http.MethodPatch:
			return s.patchHTTP(req, typ, id)
		case http.MethodDelete:
			return s.deleteHTTP(req, typ, id)
		}
		return nil, methodNotAllowed(req)
	case 3, 4:
		id, third := segs[1], segs[2]
		if !validID(id) {
			return nil, errorf(ErrInvalid, "invalid resource id")
		}
		switch {
		case third == "_history" && len(segs) == 3:
			if !isGet(req.method) {
				return nil, methodNotAllowed(req)
			}
			return s.historyBundle(req, typ, id)
		case third == "_history":
			if !isGet(req.method) {
				return nil, methodNotAllowed(req)
			}
			return s.vread(req, typ, id, segs[3])
		case third == "$everything" && typ == "Patient" && len(segs) == 3:
			if !isGet(req.method) && req.method != http.MethodPost {
				return nil, methodNotAllowed(req)
			}
			return s.everything(req, id)
		case strings.HasPrefix(third, "$"):
			return nil, errorf(ErrUnsupported, "operation %s is not supported on %s", third, typ)
		case typ == "Patient" && (third == "*" || isR4Type(third)) && (len(segs) == 3 || segs[3] == "_search"):
			var form []kv
			if len(segs) == 4 {
				if req.method != http.MethodPost {
					return nil, methodNotAllowed(req)
				}
				f, err := formBody(req)
				if err != nil {
					return nil, err
				}
				form = f
			} else if !isGet(req.method) {
				return nil, methodNotAllowed(req)
			}
			return s.typeSearch(req, third, form, id)
		}
	}
	return nil, errorf(ErrNotFound, "no such path")
}

// queryPairs parses the URL query of a request.
func queryPairs(req *request) ([]kv, error) { return parsePairs(req.rawQuery) }

// formBody parses an application/x-www-form-urlencoded _search body.
func formBody(req *request) ([]kv, error) {
	if len(bytes.TrimSpace(req.body)) == 0 {
		return nil, nil
	}
	if ct := mediaType(req.header); ct != "application/x-www-form-urlencoded" {
		return nil, errorf(ErrUnsupported, "a _search body must be application/x-www-form-urlencoded").withStatus(http.StatusUnsupportedMediaType)
	}
	return parsePairs(string(req.body))
}

func mediaType(h http.Header) string {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return mt
}

func strictHandling(h http.Header) bool {
	for _, v := range h.Values("Prefer") {
		for _, part := range strings.Split(v, ",") {
			if strings.TrimSpace(part) == "handling=strict" {
				return true
			}
		}
	}
	return false
}

// preferReturn returns the Prefer: return= value ("minimal",
// "representation", "OperationOutcome"), or "".
func preferReturn(h http.Header) string {
	for _, v := range h.Values("Prefer") {
		for _, part := range strings.Split(v, ",") {
			if r, ok := strings.CutPrefix(strings.TrimSpace(part), "return="); ok {
				return r
			}
		}
	}
	return ""
}

// systemSearch is GET [base]?… and POST [base]/_search.
func (s *Store) systemSearch(req *request, form []kv) (*result, error) {
	pairs, err := queryPairs(req)
	if err != nil {
		return nil, err
	}
	pairs = append(pairs, form...)
	var types []string
	var typeParams []kv
	for _, p := range pairs {
		if p.key != "_type" {
			continue
		}
		typeParams = append(typeParams, p)
		for _, t := range strings.Split(p.value, ",") {
			t = strings.TrimSpace(t)
			if !isR4Type(t) {
				return nil, errorf(ErrInvalid, "_type: unknown resource type %q", t)
			}
			if !contains(types, t) {
				types = append(types, t)
			}
		}
	}
	if types == nil {
		types = sortedKeys(s.res)
	}
	q, err := s.parseSearch(pairs, types, strictHandling(req.header))
	if err != nil {
		return nil, err
	}
	q.used = append(typeParams, q.used...)
	return &result{status: http.StatusOK, body: s.searchBundle(q, req.base, "")}, nil
}

// typeSearch is a type search or, with patient set, a Patient compartment
// search ("*" for every type in the compartment).
func (s *Store) typeSearch(req *request, typ string, form []kv, patient string) (*result, error) {
	pairs, err := queryPairs(req)
	if err != nil {
		return nil, err
	}
	pairs = append(pairs, form...)
	types := []string{typ}
	path := typ
	if patient != "" {
		path = "Patient/" + patient + "/" + typ
		if typ == "*" {
			types = compartmentTypes()
		}
	}
	q, err := s.parseSearch(pairs, types, strictHandling(req.header))
	if err != nil {
		return nil, err
	}
	q.compartment = patient
	return &result{status: http.StatusOK, body: s.searchBundle(q, req.base, path)}, nil
}

// everything is Patient/[id]/$everything: the patient, its compartment, and
// the resources they reference (as includes).
func (s *Store) everything(req *request, id string) (*result, error) {
	if _, err := s.currentVersion("Patient", id); err != nil {
		return nil, err
	}
	pairs, err := queryPairs(req)
	if err != nil {
		return nil, err
	}
	if req.method == http.MethodPost && len(req.body) > 0 {
		return nil, errorf(ErrUnsupported, "$everything takes its parameters in the URL")
	}
	types := compartmentTypes()
	var rest, typeParams []kv
	for _, p := range pairs {
		switch p.key {
		case "_count", "_offset", "_elements", "_summary":
			rest = append(rest, p)
		case "_type":
			typeParams = append(typeParams, p)
			var ts []string
			for _, t := range strings.Split(p.value, ",") {
				if !isR4Type(t) {
					return nil, errorf(ErrInvalid, "_type: unknown resource type %q", t)
				}
				ts = append(ts, t)
			}
			types = ts
		}
	}
	q, err := s.parseSearch(rest, types, false)
	if err != nil {
		return nil, err
	}
	q.used = append(typeParams, q.used...)
	q.compartment = id
	q.includes = []include{{all: true}}
	return &result{status: http.StatusOK, body: s.searchBundle(q, req.base, "Patient/"+id+"/$everything")}, nil
}

// read is GET [type]/[id], with _summary and _elements.
func (s *Store) read(req *request, typ, id string) (*result, error) {
	v, err := s.currentVersion(typ, id)
	if err != nil {
		return nil, err
	}
	return s.versionResult(req, v)
}

func (s *Store) versionResult(req *request, v *version) (*result, error) {
	res := &result{status: http.StatusOK, etag: etag(v), modified: v.modified}
	if inm := req.header.Get("If-None-Match"); inm != "" && strings.TrimPrefix(inm, "W/") == strings.TrimPrefix(res.etag, "W/") {
		res.status = http.StatusNotModified
		return res, nil
	}
	pairs, err := queryPairs(req)
	if err != nil {
		return nil, err
	}
	var summary string
	var elements []string
	for _, p := range pairs {
		switch p.key {
		case "_summary":
			switch p.value {
			case "true", "false", "text", "data":
				summary = p.value
			default:
				return nil, errorf(ErrInvalid, "_summary must be one of true, false, text, data on a read")
			}
		case "_elements":
			elements = append(elements, elementNames(p.value)...)
		}
	}
	res.body = subset(v, summary, elements)
	return res, nil
}

// vread is GET [type]/[id]/_history/[vid].
func (s *Store) vread(req *request, typ, id, vid string) (*result, error) {
	r := s.res[typ][id]
	n, err := strconv.Atoi(vid)
	if r == nil || err != nil || n < 1 || n > len(r.versions) || strconv.Itoa(n) != vid {
		return nil, errorf(ErrNotFound, "%s/%s/_history/%s is not known", typ, id, vid)
	}
	v := r.versions[n-1]
	if v.deleted {
		return nil, errorf(ErrGone, "%s/%s version %s is a deletion", typ, id, vid)
	}
	return s.versionResult(req, v)
}

// resourceBody parses a create or update body.
func resourceBody(req *request) (map[string]any, error) {
	if !req.inBundle {
		switch mediaType(req.header) {
		case MediaType, "application/json":
		default:
			return nil, errorf(ErrUnsupported, "the body must be %s", MediaType).withStatus(http.StatusUnsupportedMediaType)
		}
	}
	obj, err := decodeObject(req.body)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return nil, e
		}
		return nil, errorf(ErrInvalid, "the body is not valid JSON")
	}
	return obj, nil
}

// writeResult renders a successful write according to Prefer: return.
func writeResult(req *request, status int, typ, id string, v *version, withLocation bool) *result {
	res := &result{status: status, etag: etag(v), modified: v.modified}
	if withLocation {
		res.location = typ + "/" + id + "/_history/" + strconv.Itoa(v.vid)
	}
	switch preferReturn(req.header) {
	case "minimal":
	case "OperationOutcome":
		res.body = outcome("information", "informational", "ok")
	default:
		res.body = v.body
	}
	return res
}

// createHTTP is POST [type], with If-None-Exist.
func (s *Store) createHTTP(req *request, typ string) (*result, error) {
	obj, err := resourceBody(req)
	if err != nil {
		return nil, err
	}
	if cond := req.header.Get("If-None-Exist"); cond != "" {
		matches, err := s.conditionalMatches(req, typ, strings.TrimPrefix(cond, "?"))
		if err != nil {
			return nil, err
		}
		switch len(matches) {
		case 0:
		case 1:
			return writeResult(req, http.StatusOK, typ, matches[0].id, matches[0].v, false), nil
		default:
			return nil, errorf(ErrPrecondition, "If-None-Exist matches %d resources", len(matches))
		}
	}
	v, id, err := s.create(typ, obj, "")
	if err != nil {
		return nil, err
	}
	return writeResult(req, http.StatusCreated, typ, id, v, true), nil
}

// conditionalMatches runs the search of a conditional interaction. An empty
// query is refused: it would match everything.
func (s *Store) conditionalMatches(req *request, typ, rawQuery string) ([]hit, error) {
	pairs, err := parsePairs(rawQuery)
	if err != nil {
		return nil, err
	}
	q, err := s.parseSearch(pairs, []string{typ}, true)
	if err != nil {
		return nil, err
	}
	if len(q.filters) == 0 {
		return nil, errorf(ErrInvalid, "a conditional interaction needs search parameters")
	}
	return s.run(q, req.base), nil
}

// updateHTTP is PUT [type]/[id], creating the resource when it does not
// exist.
func (s *Store) updateHTTP(req *request, typ, id string) (*result, error) {
	obj, err := resourceBody(req)
	if err != nil {
		return nil, err
	}
	v, created, err := s.update(typ, id, obj, req.header.Get("If-Match"))
	if err != nil {
		return nil, err
	}
	if created {
		return writeResult(req, http.StatusCreated, typ, id, v, true), nil
	}
	return writeResult(req, http.StatusOK, typ, id, v, false), nil
}

// conditionalUpdate is PUT [type]?[search].
func (s *Store) conditionalUpdate(req *request, typ string) (*result, error) {
	obj, err := resourceBody(req)
	if err != nil {
		return nil, err
	}
	matches, err := s.conditionalMatches(req, typ, req.rawQuery)
	if err != nil {
		return nil, err
	}
	bodyID, _ := obj["id"].(string)
	switch len(matches) {
	case 0:
		if bodyID != "" {
			return s.updateHTTP(req, typ, bodyID)
		}
		v, id, err := s.create(typ, obj, "")
		if err != nil {
			return nil, err
		}
		return writeResult(req, http.StatusCreated, typ, id, v, true), nil
	case 1:
		id := matches[0].id
		if bodyID != "" && bodyID != id {
			return nil, errorf(ErrInvalid, "the body id %q is not the id of the matching resource", bodyID)
		}
		obj["id"] = id
		v, _, err := s.update(typ, id, obj, req.header.Get("If-Match"))
		if err != nil {
			return nil, err
		}
		return writeResult(req, http.StatusOK, typ, id, v, false), nil
	}
	return nil, errorf(ErrPrecondition, "the condition matches %d resources", len(matches))
}

// deleteHTTP is DELETE [type]/[id].
func (s *Store) deleteHTTP(req *request, typ, id string) (*result, error) {
	if err := s.remove(typ, id, req.header.Get("If-Match")); err != nil {
		return nil, err
	}
	return &result{status: http.StatusNoContent}, nil
}

// conditionalDelete is DELETE [type]?[search]: every match is deleted.
func (s *Store) conditionalDelete(req *request, typ string) (*result, error) {
	matches, err := s.conditionalMatches(req, typ, req.rawQuery)
	if err != nil {
		return nil, err
	}
	for _, m := range matches {
		if err := s.remove(typ, m.id, ""); err != nil {
			return nil, err
		}
	}
	return &result{status: http.StatusNoContent}, nil
}

// patchHTTP is PATCH [type]/[id] with a JSON Patch body.
func (s *Store) patchHTTP(req *request, typ, id string) (*result, error) {
	if !req.inBundle && mediaType(req.header) != "application/json-patch+json" {
		return nil, errorf(ErrUnsupported, "PATCH takes application/json-patch+json").withStatus(http.StatusUnsupportedMediaType)
	}
	cur, err := s.currentVersion(typ, id)
	if err != nil {
		return nil, err
	}
	if im := req.header.Get("If-Match"); im != "" {
		if err := checkIfMatch(s.res[typ][id], im); err != nil {
			return nil, err
		}
	}
	ops, err := parsePatch(req.body)
	if err != nil {
		return nil, err
	}
	doc, err := decodeObject(cur.body)
	if err != nil {
		return nil, err
	}
	out, err := applyPatch(doc, ops)
	if err != nil {
		return nil, err
	}
	obj, ok := out.(map[string]any)
	if !ok || obj["resourceType"] != typ || obj["id"] != id {
		return nil, errorf(ErrUnprocessable, "the patch must not change resourceType or id")
	}
	if err := checkResource(typ, obj); err != nil {
		return nil, errorf(ErrUnprocessable, "the patched resource is invalid: %s", err.(*Error).Diagnostics)
	}
	v := s.write(typ, id, http.MethodPatch, obj)
	return writeResult(req, http.StatusOK, typ, id, v, false), nil
}

// conditionalPatch is PATCH [type]?[search].
func (s *Store) conditionalPatch(req *request, typ string) (*result, error) {
	matches, err := s.conditionalMatches(req, typ, req.rawQuery)
	if err != nil {
		return nil, err
	}
	switch len(matches) {
	case 0:
		return nil, errorf(ErrNotFound, "the condition matches no resource")
	case 1:
		return s.patchHTTP(req, typ, matches[0].id)
	}
	return nil, errorf(ErrPrecondition, "the condition matches %d resources", len(matches))
}

// history is instance (typ and id), type (typ) or system history, newest
// first, with _count, _offset and _since.
func (s *Store) historyBundle(req *request, typ, id string) (*result, error) {
	if id != "" && s.res[typ][id] == nil {
		return nil, errorf(ErrNotFound, "%s/%s is not known", typ, id)
	}
	pairs, err := queryPairs(req)
	if err != nil {
		return nil, err
	}
	count, offset, countGiven := s.defCount, 0, false
	var since time.Time
	var used []kv
	for _, p := range pairs {
		switch p.key {
		case "_count":
			n, err := strconv.Atoi(p.value)
			if err != nil || n < 0 {
				return nil, errorf(ErrInvalid, "_count must be a non-negative integer")
			}
			count, countGiven = min(n, s.maxCount), true
		case "_offset":
			n, err := strconv.Atoi(p.value)
			if err != nil || n < 0 {
				return nil, errorf(ErrInvalid, "_offset must be a non-negative integer")
			}
			offset = n
		case "_since":
			t, err := time.Parse(time.RFC3339Nano, p.value)
			if err != nil {
				return nil, errorf(ErrInvalid, "_since must be an instant")
			}
			since = t
			used = append(used, p)
		}
	}
	var refs []histRef
	for i := len(s.history) - 1; i >= 0; i-- {
		h := s.history[i]
		if typ != "" && h.rec.typ != typ || id != "" && h.rec.id != id {
			continue
		}
		if !since.IsZero() && h.rec.versions[h.idx].modified.Before(since) {
			continue
		}
		refs = append(refs, h)
	}
	path := ""
	switch {
	case id != "":
		path = typ + "/" + id + "/_history"
	case typ != "":
		path = typ + "/_history"
	default:
		path = "_history"
	}
	total := len(refs)
	b := bundle{ResourceType: "Bundle", Type: "history", Total: &total}
	link := func(rel string, off int, withCount bool) bundleLink {
		ps := append([]kv(nil), used...)
		if withCount {
			ps = append(ps, kv{"_count", strconv.Itoa(count)})
		}
		if off > 0 {
			ps = append(ps, kv{"_offset", strconv.Itoa(off)})
		}
		u := req.base + "/" + path
		if len(ps) > 0 {
			u += "?" + encodePairs(ps)
		}
		return bundleLink{Relation: rel, URL: u}
	}
	b.Link = append(b.Link, link("self", offset, countGiven))
	start := min(offset, total)
	end := min(start+count, total)
	if end < total && count > 0 {
		b.Link = append(b.Link, link("next", end, true))
	}
	for _, h := range refs[start:end] {
		v := h.rec.versions[h.idx]
		e := bundleEntry{
			FullURL:  req.base + "/" + h.rec.typ + "/" + h.rec.id,
			Request:  &entryRequest{Method: v.method, URL: h.rec.typ + "/" + h.rec.id},
			Response: &entryResponse{Etag: etag(v), LastModified: formatInstant(v.modified)},
		}
		switch {
		case v.deleted:
			e.Response.Status = "204 No Content"
		case v.method == http.MethodPost:
			e.Request.URL = h.rec.typ
			e.Response.Status = "201 Created"
		case h.idx == 0 || h.rec.versions[h.idx-1].deleted:
			e.Response.Status = "201 Created"
		default:
			e.Response.Status = "200 OK"
		}
		if !v.deleted {
			e.Resource = v.body
		}
		b.Entry = append(b.Entry, e)
	}
	return &result{status: http.StatusOK, body: mustEncode(b)}, nil
}
