package fhirrest

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// Bundle is a batch or transaction Bundle posted to the base.
type Bundle struct {
	// Type is Bundle.type: "batch" or "transaction".
	Type string
	// Kind is Batch or Transaction.
	Kind Kind
	// Entries are the Bundle's entries, in order.
	Entries []Entry
}

// Entry is one entry of a batch or transaction.
type Entry struct {
	// FullURL is Bundle.entry.fullUrl.
	FullURL string
	// Resource is the raw JSON of Bundle.entry.resource; nil when absent.
	Resource json.RawMessage
	// ResourceType is Resource's resourceType.
	ResourceType string
	// Request is Bundle.entry.request.
	Request EntryRequest
	// Interaction is the entry's request classified as if it were sent
	// alone; valid when Err is nil.
	Interaction Interaction
	// Err is why the entry's request cannot be classified. Only a batch has
	// entries with errors (a transaction with one is refused as a whole);
	// such an entry must be denied.
	Err error
}

// EntryRequest is Bundle.entry.request, as sent (strings are not
// normalised; the classified form is in Entry.Interaction).
type EntryRequest struct {
	Method          string // request.method: GET, HEAD, POST, PUT, PATCH or DELETE
	URL             string // request.url, relative to the base or absolute
	IfNoneMatch     string // request.ifNoneMatch (a conditional read)
	IfModifiedSince string // request.ifModifiedSince
	IfMatch         string // request.ifMatch (version-aware update)
	IfNoneExist     string // request.ifNoneExist (conditional create criteria)
}

var (
	errJSON          = newErr(ErrInvalidBundle, "malformed JSON")
	errDupKey        = newErr(ErrInvalidBundle, "duplicate JSON key (keys are compared case-insensitively)")
	errKey           = newErr(ErrInvalidBundle, "non-ASCII JSON key")
	errNotObject     = newErr(ErrInvalidBundle, "JSON object expected")
	errNotString     = newErr(ErrInvalidBundle, "JSON string expected")
	errNotArray      = newErr(ErrInvalidBundle, "entry is not an array")
	errNotBundle     = newErr(ErrInvalidBundle, "resourceType is missing or not Bundle")
	errNoRequest     = newErr(ErrInvalidBundle, "entry without request")
	errNoType        = newErr(ErrBundleType, "Bundle without type")
	errBundleType    = newErr(ErrBundleType, "only batch and transaction Bundles are accepted")
	errTooMany       = newErr(ErrTooLarge, "too many Bundle entries")
	errNestedRes     = newErr(ErrNestedBundle, "entry resource is a Bundle")
	errNestedURL     = newErr(ErrNestedBundle, "entry posts to the base")
	errEntryMethod   = newErr(ErrMethod, "entry method is not a FHIR method")
	errAbsolute      = newErr(ErrOutsideBase, "absolute entry URL outside the configured BaseURL")
	errNoResource    = newErr(ErrInvalidBundle, "create or update entry without resource")
	errResourceType  = newErr(ErrUnsupported, "entry resource type differs from its URL")
	errSearchBody    = newErr(ErrUnsupported, "POST _search entry with a resource")
	errEntryFragment = newErr(ErrNonCanonicalPath, "fragment in entry URL")
)

// ParseBundle parses a batch or transaction Bundle (JSON) with the default
// limits and no base URL (absolute entry URLs are refused).
func ParseBundle(body []byte) (*Bundle, error) {
	c := Classifier{maxBundle: DefaultMaxBundleBytes, maxEntries: DefaultMaxBundleEntries, maxForm: DefaultMaxFormBytes}
	return c.ParseBundle(body)
}

// ParseBundle parses a batch or transaction Bundle (JSON) and classifies the
// request of every entry with the rules of ClassifyParts; entry URLs are
// relative to the base, or absolute below Config.BaseURL.
//
// It refuses, for the whole Bundle: malformed JSON, duplicate keys in the
// Bundle, its entries, their requests and the top level of their resources
// (compared case-insensitively; keys must be ASCII), a Bundle.type other than
// batch or transaction (ErrBundleType), a Bundle in an entry or an entry
// posted to the base (ErrNestedBundle), and bodies or entry counts over the
// limits (ErrTooLarge). In a transaction the first entry that cannot be
// classified refuses the Bundle with an *EntryError; in a batch it is kept
// in Entry.Err.
func (c *Classifier) ParseBundle(body []byte) (*Bundle, error) {
	if int64(len(body)) > c.maxBundle {
		return nil, errBodyLimit
	}
	if !json.Valid(body) {
		return nil, errJSON
	}
	var b Bundle
	var entries json.RawMessage
	seenType, seenRT := false, false
	err := members(body, func(k string, v json.RawMessage) error {
		var err error
		switch k {
		case "resourceType":
			var rt string
			if rt, err = jsonString(v); err == nil && rt != "Bundle" {
				err = errNotBundle
			}
			seenRT = true
		case "type":
			b.Type, err = jsonString(v)
			seenType = true
		case "entry":
			entries = v
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	switch {
	case !seenRT:
		return nil, errNotBundle
	case !seenType:
		return nil, errNoType
	case b.Type == "batch":
		b.Kind = Batch
	case b.Type == "transaction":
		b.Kind = Transaction
	default:
		return nil, errBundleType
	}
	if entries == nil {
		return &b, nil
	}
	err = elements(entries, func(raw json.RawMessage) error {
		if len(b.Entries) == c.maxEntries {
			return errTooMany
		}
		e, err := c.parseEntry(raw)
		if err != nil {
			return err
		}
		if e.Err != nil && b.Kind == Transaction {
			return &EntryError{Index: len(b.Entries), Err: e.Err}
		}
		b.Entries = append(b.Entries, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &b, nil
}

// parseEntry parses one entry. The error return refuses the whole Bundle;
// Entry.Err refuses the entry.
func (c *Classifier) parseEntry(raw json.RawMessage) (Entry, error) {
	var e Entry
	var req json.RawMessage
	err := members(raw, func(k string, v json.RawMessage) error {
		var err error
		switch k {
		case "fullUrl":
			e.FullURL, err = jsonString(v)
		case "resource":
			e.Resource = v
			e.ResourceType, err = resourceType(v)
		case "request":
			req = v
		}
		return err
	})
	if err != nil {
		return e, err
	}
	if e.ResourceType == "Bundle" {
		return e, errNestedRes
	}
	if req == nil {
		return e, errNoRequest
	}
	r := &e.Request
	err = members(req, func(k string, v json.RawMessage) error {
		var p *string
		switch k {
		case "method":
			p = &r.Method
		case "url":
			p = &r.URL
		case "ifNoneMatch":
			p = &r.IfNoneMatch
		case "ifModifiedSince":
			p = &r.IfModifiedSince
		case "ifMatch":
			p = &r.IfMatch
		case "ifNoneExist":
			p = &r.IfNoneExist
		default:
			return nil
		}
		var err error
		*p, err = jsonString(v)
		return err
	})
	if err != nil {
		return e, err
	}
	e.Interaction, e.Err = c.classifyEntry(&e)
	if errors.Is(e.Err, ErrNestedBundle) {
		return e, e.Err
	}
	return e, nil
}

func (c *Classifier) classifyEntry(e *Entry) (Interaction, error) {
	r := &e.Request
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return Interaction{}, errEntryMethod
	}
	rel, err := c.relativeURL(r.URL)
	if err != nil {
		return Interaction{}, err
	}
	path, rawQuery, hasQuery := strings.Cut(rel, "?")
	if path == "" || path[0] != '/' {
		path = "/" + path
	}
	p := Parts{Method: r.Method, Path: path}
	if hasQuery && rawQuery != "" {
		if p.Query, err = url.ParseQuery(rawQuery); err != nil {
			return Interaction{}, errQuery
		}
	}
	if r.IfNoneExist != "" {
		p.Header = http.Header{"If-None-Exist": {r.IfNoneExist}}
	}
	if path == "/" && r.Method == http.MethodPost {
		return Interaction{}, errNestedURL
	}
	it, err := ClassifyParts(p)
	if err != nil {
		return Interaction{}, err
	}
	switch {
	case it.Kind == Create || it.Kind == Update:
		if e.Resource == nil {
			return Interaction{}, errNoResource
		}
		if e.ResourceType != it.ResourceType {
			return Interaction{}, errResourceType
		}
	case it.Method == http.MethodPost && e.Resource != nil &&
		(it.Kind == SearchType || it.Kind == SearchSystem || it.Kind == SearchCompartment):
		return Interaction{}, errSearchBody
	}
	return it, nil
}

// relativeURL returns an entry URL relative to the base.
func (c *Classifier) relativeURL(u string) (string, error) {
	if strings.IndexByte(u, '#') >= 0 {
		return "", errEntryFragment
	}
	end := strings.IndexAny(u, "/?")
	if end < 0 {
		end = len(u)
	}
	if strings.IndexByte(u[:end], ':') < 0 {
		return u, nil // no scheme: relative
	}
	if c.baseURL == "" || !strings.HasPrefix(u, c.baseURL) {
		return "", errAbsolute
	}
	rest := u[len(c.baseURL):]
	if rest != "" && rest[0] != '/' && rest[0] != '?' {
		return "", errAbsolute
	}
	return rest, nil
}

// members calls fn for each member of the JSON object data, in order. data
// must be valid JSON (ParseBundle checks the whole body once with
// json.Valid), so the scan only finds boundaries. It refuses anything but an
// object, keys that are not ASCII (FHIR element names are) and keys that
// repeat, even in another case: a parser that matches keys
// case-insensitively (such as encoding/json in the wrapped server) must not
// see a member this one skipped.
func members(data []byte, fn func(key string, value json.RawMessage) error) error {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return errNotObject
	}
	var small [8]string
	seen := small[:0]
	var many map[string]struct{}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return nil
	}
	for i < len(data) {
		ke := skipString(data, i)
		key, err := jsonString(data[i:ke])
		if err != nil {
			return err
		}
		lk, ok := asciiLower(key)
		if !ok {
			return errKey
		}
		if many == nil && slices.Contains(seen, lk) {
			return errDupKey
		}
		if _, dup := many[lk]; dup {
			return errDupKey
		}
		if many == nil && len(seen) < cap(seen) {
			seen = append(seen, lk)
		} else {
			if many == nil {
				many = make(map[string]struct{}, 2*len(seen))
				for _, k := range seen {
					many[k] = struct{}{}
				}
			}
			many[lk] = struct{}{}
		}
		vs := skipSpace(data, skipSpace(data, ke)+1) // past ':'
		ve := skipValue(data, vs)
		if err := fn(key, data[vs:ve:ve]); err != nil {
			return err
		}
		i = skipSpace(data, ve)
		if i < len(data) && data[i] == '}' {
			return nil
		}
		i = skipSpace(data, i+1) // past ','
	}
	return errJSON
}

// elements calls fn for each element of the JSON array data (valid JSON).
func elements(data []byte, fn func(value json.RawMessage) error) error {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		return errNotArray
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		return nil
	}
	for i < len(data) {
		ve := skipValue(data, i)
		if err := fn(data[i:ve:ve]); err != nil {
			return err
		}
		i = skipSpace(data, ve)
		if i < len(data) && data[i] == ']' {
			return nil
		}
		i = skipSpace(data, i+1)
	}
	return errJSON
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the end of the string starting at data[i] ('"').
func skipString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(data)
}

// skipValue returns the end of the value starting at data[i].
func skipValue(data []byte, i int) int {
	if i >= len(data) {
		return i
	}
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				i = skipString(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(data) {
		switch data[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// asciiLower returns k in lower case, or false if k is not ASCII.
func asciiLower(k string) (string, bool) {
	lower := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c >= 0x80 {
			return "", false
		}
		if c >= 'A' && c <= 'Z' {
			lower = false
		}
	}
	if lower {
		return k, true
	}
	return strings.ToLower(k), true
}

func jsonString(v json.RawMessage) (string, error) {
	if len(v) < 2 || v[0] != '"' {
		return "", errNotString
	}
	if inner := v[1 : len(v)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", errJSON
	}
	return s, nil
}

// resourceType returns the resourceType of a resource, checking that its
// top level has no duplicate keys.
func resourceType(v json.RawMessage) (string, error) {
	var rt string
	err := members(v, func(k string, v json.RawMessage) error {
		if k != "resourceType" {
			return nil
		}
		var err error
		rt, err = jsonString(v)
		return err
	})
	return rt, err
}
