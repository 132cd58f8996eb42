package fhirstore

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// maxEntries bounds the entries of one batch or transaction.
const maxEntries = 1000

type inputBundle struct {
	ResourceType string       `json:"resourceType"`
	Type         string       `json:"type"`
	Entry        []inputEntry `json:"entry"`
}

type inputEntry struct {
	FullURL  string          `json:"fullUrl"`
	Resource json.RawMessage `json:"resource"`
	Request  *struct {
		Method          string `json:"method"`
		URL             string `json:"url"`
		IfMatch         string `json:"ifMatch"`
		IfNoneMatch     string `json:"ifNoneMatch"`
		IfNoneExist     string `json:"ifNoneExist"`
		IfModifiedSince string `json:"ifModifiedSince"`
	} `json:"request"`
}

// prepared is a Bundle entry turned into a request.
type prepared struct {
	req    *request
	obj    map[string]any // parsed resource of POST and PUT
	typ    string
	target string // "Type/id" an instance-level write acts on
	id     string // id chosen for a transaction POST
	exists bool   // transaction POST whose If-None-Exist matched
}

// bundle is POST [base] with a batch or transaction Bundle.
func (s *Store) bundle(req *request) (*result, error) {
	if req.inBundle {
		return nil, errorf(ErrInvalid, "nested batch or transaction bundles are not allowed")
	}
	switch mediaType(req.header) {
	case MediaType, "application/json":
	default:
		return nil, errorf(ErrUnsupported, "the body must be %s", MediaType).withStatus(http.StatusUnsupportedMediaType)
	}
	if _, err := decodeObject(req.body); err != nil {
		return nil, errorf(ErrInvalid, "the body is not a JSON object")
	}
	var in inputBundle
	if err := json.Unmarshal(req.body, &in); err != nil {
		return nil, errorf(ErrInvalid, "the body is not a valid Bundle")
	}
	if in.ResourceType != "Bundle" {
		return nil, errorf(ErrInvalid, "POST to the base takes a Bundle")
	}
	if len(in.Entry) > maxEntries {
		return nil, errorf(ErrInvalid, "more than %d entries", maxEntries)
	}
	switch in.Type {
	case "batch":
		return s.batch(req, in.Entry), nil
	case "transaction":
		return s.transaction(req, in.Entry)
	}
	return nil, errorf(ErrInvalid, "Bundle.type must be batch or transaction")
}

// prepare turns an entry into a request below the base.
func (s *Store) prepare(outer *request, e inputEntry) (*prepared, error) {
	if e.Request == nil || e.Request.Method == "" || e.Request.URL == "" {
		return nil, errorf(ErrInvalid, "entry.request with method and url is required")
	}
	method := e.Request.Method
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return nil, errorf(ErrInvalid, "unknown entry.request.method %q", method)
	}
	raw := e.Request.URL
	// Absolute when the part before the query has a scheme: a query value
	// such as code=http://loinc.org|4548-4 does not make it absolute.
	if before, _, _ := strings.Cut(raw, "?"); strings.Contains(before, "://") {
		if !strings.HasPrefix(raw, outer.base+"/") {
			return nil, errorf(ErrInvalid, "entry.request.url is not on this server")
		}
		raw = raw[len(outer.base)+1:]
	}
	path, query, _ := strings.Cut(raw, "?")
	segs, err := splitSegments(path)
	if err != nil {
		return nil, err
	}
	if len(segs) == 0 && method == http.MethodPost {
		return nil, errorf(ErrInvalid, "nested batch or transaction bundles are not allowed")
	}
	h := http.Header{}
	for k, v := range map[string]string{
		"If-Match": e.Request.IfMatch, "If-None-Match": e.Request.IfNoneMatch,
		"If-None-Exist": e.Request.IfNoneExist, "If-Modified-Since": e.Request.IfModifiedSince,
		"Prefer": outer.header.Get("Prefer"),
	} {
		if v != "" {
			h.Set(k, v)
		}
	}
	p := &prepared{req: &request{method: method, segs: segs, rawQuery: query, header: h, base: outer.base, inBundle: true}}
	if len(segs) > 0 {
		p.typ = segs[0]
	}
	if len(segs) == 2 && (method == http.MethodPut || method == http.MethodPatch || method == http.MethodDelete) {
		p.target = segs[0] + "/" + segs[1]
	}
	switch method {
	case http.MethodPost, http.MethodPut:
		if len(e.Resource) == 0 {
			return nil, errorf(ErrInvalid, "entry.resource is required for %s", method)
		}
		obj, err := decodeObject(e.Resource)
		if err != nil {
			return nil, errorf(ErrInvalid, "entry.resource is not a JSON object")
		}
		p.obj = obj
	case http.MethodPatch:
		body, err := binaryPatch(e.Resource)
		if err != nil {
			return nil, err
		}
		p.req.body = body
	}
	return p, nil
}

// binaryPatch extracts a JSON Patch from the Binary resource of a PATCH
// entry.
func binaryPatch(raw json.RawMessage) ([]byte, error) {
	var bin struct {
		ResourceType string `json:"resourceType"`
		ContentType  string `json:"contentType"`
		Data         string `json:"data"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &bin) != nil || bin.ResourceType != "Binary" || bin.ContentType != "application/json-patch+json" {
		return nil, errorf(ErrUnsupported, "a PATCH entry takes a Binary resource with contentType application/json-patch+json")
	}
	body, err := base64.StdEncoding.DecodeString(bin.Data)
	if err != nil {
		return nil, errorf(ErrInvalid, "Binary.data is not base64")
	}
	return body, nil
}

// entryResult renders a result as a response Bundle entry.
func entryResult(res *result, base string) bundleEntry {
	e := bundleEntry{Response: &entryResponse{
		Status: strconv.Itoa(res.status) + " " + http.StatusText(res.status),
		Etag:   res.etag,
	}}
	if res.location != "" {
		e.Response.Location = res.location
	}
	if !res.modified.IsZero() {
		e.Response.LastModified = formatInstant(res.modified)
	}
	if res.status >= 400 {
		e.Response.Outcome = res.body
		return e
	}
	if len(res.body) > 0 {
		e.Resource = res.body
		var head struct {
			ResourceType string `json:"resourceType"`
			ID           string `json:"id"`
		}
		if json.Unmarshal(res.body, &head) == nil && head.ID != "" && head.ResourceType != "OperationOutcome" && head.ResourceType != "Bundle" {
			e.FullURL = base + "/" + head.ResourceType + "/" + head.ID
		}
	}
	return e
}

// run executes a prepared entry. The caller holds the write lock.
func (s *Store) runEntry(p *prepared) *result {
	if p.obj != nil {
		p.req.body = encodeResource(p.obj)
	}
	var res *result
	var err error
	if p.req.method == http.MethodPost && p.id != "" {
		if p.exists {
			v, err := s.currentVersion(p.typ, p.id)
			if err != nil { // deleted by an earlier entry of the transaction
				return errResult(errorf(ErrConflict, "the If-None-Exist match %s/%s was deleted by this transaction", p.typ, p.id))
			}
			return writeResult(p.req, http.StatusOK, p.typ, p.id, v, false)
		}
		var v *version
		if v, _, err = s.create(p.typ, p.obj, p.id); err == nil {
			return writeResult(p.req, http.StatusCreated, p.typ, p.id, v, true)
		}
	} else {
		res, err = s.dispatch(p.req)
	}
	if err != nil {
		return errResult(err)
	}
	return res
}

func (s *Store) batch(req *request, entries []inputEntry) *result {
	out := bundle{ResourceType: "Bundle", Type: "batch-response"}
	for _, e := range entries {
		p, err := s.prepare(req, e)
		var res *result
		if err != nil {
			res = errResult(err)
		} else {
			res = s.runEntry(p)
		}
		out.Entry = append(out.Entry, entryResult(res, req.base))
	}
	return &result{status: http.StatusOK, body: mustEncode(out)}
}

// transactionOrder is the FHIR processing order of transaction entries.
var transactionOrder = map[string]int{
	http.MethodDelete: 0, http.MethodPost: 1, http.MethodPut: 2, http.MethodPatch: 2,
	http.MethodGet: 3, http.MethodHead: 3,
}

// transaction runs the entries all-or-nothing: on the first failure every
// write is rolled back and the failure is returned.
func (s *Store) transaction(req *request, entries []inputEntry) (*result, error) {
	preps := make([]*prepared, len(entries))
	for i, e := range entries {
		p, err := s.prepare(req, e)
		if err != nil {
			return nil, entryError(i, err)
		}
		preps[i] = p
	}
	histLen, seq := len(s.history), s.seq
	journal := []undo{}
	s.journal = &journal
	defer func() { s.journal = nil }()
	fail := func(i int, err error) (*result, error) {
		s.rollback(journal, histLen, seq)
		return nil, entryError(i, err)
	}

	// Resolve ids: POSTs get theirs now, so that urn:uuid references
	// between entries can be rewritten before anything is written.
	repl := map[string]string{}
	targets := map[string]int{}
	for i, e := range entries {
		p := preps[i]
		if p.req.method == http.MethodPost && len(p.req.segs) == 1 {
			if !isR4Type(p.typ) {
				return fail(i, errorf(ErrNotFound, "unknown resource type %q", p.typ))
			}
			if cond := p.req.header.Get("If-None-Exist"); cond != "" {
				matches, err := s.conditionalMatches(p.req, p.typ, strings.TrimPrefix(cond, "?"))
				if err != nil {
					return fail(i, err)
				}
				if len(matches) > 1 {
					return fail(i, errorf(ErrPrecondition, "If-None-Exist matches %d resources", len(matches)))
				}
				if len(matches) == 1 {
					p.id, p.exists = matches[0].id, true
				}
			}
			if p.id == "" {
				p.id = s.newID(p.typ)
			}
			p.target = p.typ + "/" + p.id
		}
		if p.target != "" {
			if j, dup := targets[p.target]; dup {
				return fail(i, errorf(ErrInvalid, "entries %d and %d both act on %s", j, i, p.target))
			}
			targets[p.target] = i
		}
		if strings.HasPrefix(e.FullURL, "urn:") && p.target != "" {
			repl[e.FullURL] = p.target
		}
	}
	if len(repl) > 0 {
		for _, p := range preps {
			if p.obj != nil {
				rewriteReferences(p.obj, repl)
			}
		}
	}

	order := make([]int, len(preps))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		return transactionOrder[preps[order[a]].req.method] < transactionOrder[preps[order[b]].req.method]
	})
	results := make([]*result, len(preps))
	for _, i := range order {
		res := s.runEntry(preps[i])
		if res.status >= 400 {
			s.rollback(journal, histLen, seq)
			return res, entryFailure(i, res)
		}
		results[i] = res
	}
	out := bundle{ResourceType: "Bundle", Type: "transaction-response"}
	for _, res := range results {
		out.Entry = append(out.Entry, entryResult(res, req.base))
	}
	return &result{status: http.StatusOK, body: mustEncode(out)}, nil
}

func entryError(i int, err error) error {
	if e, ok := err.(*Error); ok {
		c := *e
		c.Diagnostics = "entry " + strconv.Itoa(i) + ": " + e.Diagnostics
		return &c
	}
	return err
}

// entryFailure rebuilds the error of a failed entry result.
func entryFailure(i int, res *result) error {
	var oo struct {
		Issue []struct {
			Code        string `json:"code"`
			Diagnostics string `json:"diagnostics"`
		} `json:"issue"`
	}
	e := &Error{Status: res.status, Code: "processing", kind: ErrInvalid}
	if json.Unmarshal(res.body, &oo) == nil && len(oo.Issue) > 0 {
		e.Code, e.Diagnostics = oo.Issue[0].Code, oo.Issue[0].Diagnostics
	}
	e.kind = kindOf(res.status)
	return entryError(i, e)
}

func kindOf(status int) error {
	switch status {
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusGone:
		return ErrGone
	case http.StatusMethodNotAllowed:
		return ErrMethod
	case http.StatusConflict:
		return ErrConflict
	case http.StatusPreconditionFailed:
		return ErrPrecondition
	case http.StatusUnprocessableEntity:
		return ErrUnprocessable
	}
	return ErrInvalid
}
