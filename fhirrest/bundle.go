package fhirrest

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/fhirguard/fhirguard/internal/fhirjson"
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
	errNotString     = newErr(errInvalidBundle, "JSON string expected")
	errNotArray      = newErr(errInvalidBundle, "entry is not an array")
	errNotObject     = newErr(errInvalidBundle, "JSON object expected")
	errNotBundle     = newErr(errInvalidBundle, "resourceType is missing or not Bundle")
	errNoRequest     = newErr(errInvalidBundle, "entry without request")
	errNoType        = newErr(errBundleType, "Bundle without type")
	errNotBatch      = newErr(errBundleType, "only batch and transaction Bundles are accepted")
	errTooMany       = newErr(errTooLarge, "too many Bundle entries")
	errNestedRes     = newErr(errNestedBundle, "entry resource is a Bundle")
	errNestedURL     = newErr(errNestedBundle, "entry posts to the base")
	errEntryMethod   = newErr(errMethod, "entry method is not a FHIR method")
	errAbsolute      = newErr(ErrOutsideBase, "absolute entry URL outside the configured BaseURL")
	errNoResource    = newErr(errInvalidBundle, "create or update entry without resource")
	errResourceType  = newErr(errUnsupported, "entry resource type differs from its URL")
	errSearchBody    = newErr(errUnsupported, "POST _search entry with a resource")
	errEntryFragment = newErr(errNonCanonicalPath, "fragment in entry URL")
)

// The members of the Bundle parts the classifier interprets (FHIR R4 and
// R5); any other member is refused, since a server could read it.
var (
	bundleMembers  = []string{"resourceType", "id", "meta", "implicitRules", "language", "identifier", "type", "timestamp", "total", "link", "entry", "signature", "issues"}
	entryMembers   = []string{"id", "extension", "modifierExtension", "link", "fullUrl", "resource", "search", "request", "response"}
	requestMembers = []string{"id", "extension", "modifierExtension", "method", "url", "ifNoneMatch", "ifModifiedSince", "ifMatch", "ifNoneExist"}
)

// ParseBundle parses a batch or transaction Bundle (JSON) with the default
// limits and no base URL (absolute entry URLs are refused).
func ParseBundle(body []byte) (*Bundle, error) {
	c := Classifier{maxBundle: defaultMaxBundleBytes, maxEntries: defaultMaxBundleEntries, maxForm: defaultMaxFormBytes}
	return c.ParseBundle(body)
}

// ParseBundle parses a batch or transaction Bundle (JSON) and classifies the
// request of every entry with the rules of Classify, as if it were sent
// alone; entry URLs are relative to the base, or absolute below
// Config.BaseURL.
//
// The whole body is read by the kit's strict FHIR JSON reader: malformed
// JSON, a byte order mark, invalid UTF-8, nesting deeper than 100 levels,
// member names that FHIR does not allow or that repeat (even in another
// case, as a case-insensitive decoder would match them), and in the Bundle,
// its entries and their requests any member FHIR does not define there, all
// refuse the whole Bundle ("fhirrest: invalid Bundle", 400), with a detail
// that names the member. It also refuses a Bundle.type other than batch or
// transaction, a Bundle in an entry or an entry posted to the base (400),
// and bodies or entry counts over the limits (413). In a transaction the
// first entry that cannot be classified refuses the Bundle with an
// *EntryError; in a batch it is kept in Entry.Err.
func (c *Classifier) ParseBundle(body []byte) (*Bundle, error) {
	if int64(len(body)) > c.maxBundle {
		return nil, errBodyLimit
	}
	doc, err := fhirjson.Decode(body, fhirjson.Options{Mode: fhirjson.FHIR, MaxDepth: fhirjson.MaxWriteDepth})
	if err != nil {
		return nil, bodyErr(err)
	}
	if err := fhirjson.Only(doc, "Bundle", bundleMembers...); err != nil {
		return nil, bodyErr(err)
	}
	var b Bundle
	if rt, ok := doc["resourceType"].(string); !ok || rt != "Bundle" {
		return nil, errNotBundle
	}
	t, err := optString(doc, "type")
	switch _, ok := doc["type"]; {
	case err != nil:
		return nil, err
	case !ok:
		return nil, errNoType
	case t == "batch":
		b.Type, b.Kind = "batch", Batch
	case t == "transaction":
		b.Type, b.Kind = "transaction", Transaction
	default:
		return nil, errNotBatch
	}
	raw, ok := doc["entry"]
	if !ok {
		return &b, nil
	}
	entries, ok := raw.([]any)
	if !ok {
		return nil, errNotArray
	}
	if len(entries) > c.maxEntries {
		return nil, errTooMany
	}
	for i, v := range entries {
		e, err := c.parseEntry(v, i)
		if err != nil {
			return nil, err
		}
		if e.Err != nil && b.Kind == Transaction {
			return nil, &EntryError{Index: len(b.Entries), Err: e.Err}
		}
		b.Entries = append(b.Entries, e)
	}
	return &b, nil
}

// bodyErr wraps an error of the JSON reader, which names the member.
func bodyErr(err error) error {
	return &Error{Err: errInvalidBundle, Detail: err.Error()}
}

// parseEntry parses entry i. The error return refuses the whole Bundle;
// Entry.Err refuses the entry.
func (c *Classifier) parseEntry(v any, i int) (Entry, error) {
	var e Entry
	path := "Bundle.entry[" + strconv.Itoa(i) + "]"
	obj, ok := v.(map[string]any)
	if !ok {
		return e, errNotObject
	}
	if err := fhirjson.Only(obj, path, entryMembers...); err != nil {
		return e, bodyErr(err)
	}
	var err error
	if e.FullURL, err = optString(obj, "fullUrl"); err != nil {
		return e, err
	}
	if res, ok := obj["resource"]; ok {
		m, ok := res.(map[string]any)
		if !ok {
			return e, errNotObject
		}
		if e.ResourceType, err = optString(m, "resourceType"); err != nil {
			return e, err
		}
		if e.Resource, err = json.Marshal(m); err != nil {
			return e, bodyErr(err)
		}
	}
	if e.ResourceType == "Bundle" {
		return e, errNestedRes
	}
	rv, ok := obj["request"]
	if !ok {
		return e, errNoRequest
	}
	req, ok := rv.(map[string]any)
	if !ok {
		return e, errNotObject
	}
	if err := fhirjson.Only(req, path+".request", requestMembers...); err != nil {
		return e, bodyErr(err)
	}
	r := &e.Request
	for name, p := range map[string]*string{"method": &r.Method, "url": &r.URL, "ifNoneMatch": &r.IfNoneMatch,
		"ifModifiedSince": &r.IfModifiedSince, "ifMatch": &r.IfMatch, "ifNoneExist": &r.IfNoneExist} {
		if *p, err = optString(req, name); err != nil {
			return e, err
		}
	}
	e.Interaction, e.Err = c.classifyEntry(&e)
	if errors.Is(e.Err, errNestedBundle) {
		return e, e.Err
	}
	return e, nil
}

// optString returns the string member name of obj, "" when absent.
func optString(obj map[string]any, name string) (string, error) {
	v, ok := obj[name]
	if !ok {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", errNotString
	}
	return s, nil
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
	p := parts{Method: r.Method, Path: path}
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
	it, err := classifyParts(p)
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
