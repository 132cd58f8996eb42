package fhirrest

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/fhirguard/fhirguard/fhir"
	"github.com/fhirguard/fhirguard/scope"
)

// The default limits of a Classifier (see Config).
const (
	defaultMaxFormBytes     = 1 << 20  // a POST _search form body
	defaultMaxBundleBytes   = 16 << 20 // a batch or transaction Bundle
	defaultMaxBundleEntries = 10000    // entries of one Bundle
)

// Config configures a Classifier. The zero value classifies requests at the
// server root with the default limits.
type Config struct {
	// Base is the path of the FHIR base, such as "/fhir" or "/r4/tenant1";
	// "" or "/" when the FHIR API is at the server root. It is compared with
	// the request's escaped path, segment by segment and case-sensitively.
	Base string
	// BaseURL is the absolute URL of the FHIR base, such as
	// "https://ehr.example.org/fhir". When set, absolute Bundle entry URLs
	// that start with it are classified as relative ones; without it every
	// absolute entry URL is refused with ErrOutsideBase. Its path must be Base.
	BaseURL string
	// MaxFormBytes caps the form body of a POST _search (default 1 MiB).
	MaxFormBytes int64
	// MaxBundleBytes caps the body of a batch or transaction (default 16
	// MiB).
	MaxBundleBytes int64
	// MaxBundleEntries caps the number of entries of a Bundle (default
	// 10000).
	MaxBundleEntries int
}

// Classifier classifies requests below one FHIR base. Build it with New; it
// is immutable and safe for concurrent use.
type Classifier struct {
	base       string // "" or "/seg/seg"
	baseURL    string // "" or "scheme://host/path", no trailing slash
	maxForm    int64
	maxBundle  int64
	maxEntries int
}

// New validates cfg and returns its Classifier.
func New(cfg Config) (*Classifier, error) {
	c := &Classifier{
		maxForm:    cfg.MaxFormBytes,
		maxBundle:  cfg.MaxBundleBytes,
		maxEntries: cfg.MaxBundleEntries,
	}
	if c.maxForm < 0 || c.maxBundle < 0 || c.maxEntries < 0 {
		return nil, fmt.Errorf("fhirrest: negative limit in Config")
	}
	if c.maxForm == 0 {
		c.maxForm = defaultMaxFormBytes
	}
	if c.maxBundle == 0 {
		c.maxBundle = defaultMaxBundleBytes
	}
	if c.maxEntries == 0 {
		c.maxEntries = defaultMaxBundleEntries
	}
	base := strings.TrimSuffix(cfg.Base, "/")
	if base != "" {
		if base[0] != '/' {
			return nil, fmt.Errorf("fhirrest: Config.Base %q must start with '/'", cfg.Base)
		}
		if _, err := splitPath(base); err != nil && err != errTooDeep {
			return nil, fmt.Errorf("fhirrest: Config.Base %q: %w", cfg.Base, err)
		}
	}
	c.base = base
	if cfg.BaseURL != "" {
		u, err := url.Parse(cfg.BaseURL)
		if err != nil {
			return nil, fmt.Errorf("fhirrest: Config.BaseURL: %w", err)
		}
		if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" || u.User != nil ||
			u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
			return nil, fmt.Errorf("fhirrest: Config.BaseURL %q must be an absolute http(s) URL without user, query or fragment", cfg.BaseURL)
		}
		if p := strings.TrimSuffix(u.EscapedPath(), "/"); p != base {
			return nil, fmt.Errorf("fhirrest: Config.BaseURL path %q differs from Config.Base %q", p, base)
		}
		c.baseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	}
	return c, nil
}

// Base returns the base path the Classifier was configured with ("" for
// the server root).
func (c *Classifier) Base() string { return c.base }

// Classify classifies a request below base (such as "/fhir", or "" for the
// server root) with the default limits. It is New(Config{Base: base})
// followed by Classifier.Classify, without the validation of base: a
// malformed base makes every request ErrOutsideBase.
func Classify(r *http.Request, base string) (Interaction, error) {
	c := Classifier{
		base:       strings.TrimSuffix(base, "/"),
		maxForm:    defaultMaxFormBytes,
		maxBundle:  defaultMaxBundleBytes,
		maxEntries: defaultMaxBundleEntries,
	}
	return c.Classify(r)
}

// Classify classifies r. It reads the escaped path (r.URL.EscapedPath), so
// encodings that Go's URL parsing decodes in r.URL.Path are still seen. For a
// POST to the base it reads the Bundle body, and for a POST _search its form
// body; either is read up to the configured limit and r.Body is restored so
// the wrapped handler reads the same bytes. The parsed Bundle of a batch or
// transaction is returned in Interaction.Bundle.
//
// Errors are a refusal (an *Error, StatusCode says how to answer it), an
// *EntryError for a transaction entry, ErrOutsideBase for paths outside the
// base, ErrOptions for OPTIONS, ErrWellKnown for [base]/.well-known/..., or
// an I/O error from reading the body.
func (c *Classifier) Classify(r *http.Request) (Interaction, error) {
	return c.classify(r, true)
}

// classify is Classify; fast enables classifyRead (tests compare it with
// the general path).
func (c *Classifier) classify(r *http.Request, fast bool) (Interaction, error) {
	u := r.URL
	if u == nil || u.Opaque != "" || u.Fragment != "" || u.RawFragment != "" {
		return Interaction{}, errOpaque
	}
	// Routers read different fields: net/http's ServeMux the escaped path,
	// chi RawPath when set, most handlers Path. On a path this package
	// accepts (no percent-encoding) all three are the same string; a
	// RawPath that disagrees with Path (only a rewritten URL has one) is
	// refused.
	esc := u.Path
	if u.RawPath != "" || !plainPath(esc) {
		esc = u.EscapedPath() // the same string for a plain path
	}
	if u.RawPath != "" && u.RawPath != esc {
		return Interaction{}, errRawPath
	}
	rest, ok := below(esc, c.base)
	if !ok {
		return Interaction{}, errOutside
	}
	if u.RawQuery == "" && (r.Method == http.MethodGet || r.Method == http.MethodHead) && fast {
		if it, ok := classifyRead(rest, r.Header); ok {
			return it, nil
		}
	}
	var q url.Values
	if u.RawQuery != "" {
		var err error
		if q, err = url.ParseQuery(u.RawQuery); err != nil {
			return Interaction{}, errQuery
		}
	}
	p := parts{Method: r.Method, Path: rest, Query: q, Header: r.Header}
	it, err := classifyParts(p)
	switch {
	case err == errNoBundle:
		body, err := readBody(r, c.maxBundle, isJSON)
		if err != nil {
			return Interaction{}, err
		}
		if p.Bundle, err = c.ParseBundle(body); err != nil {
			return Interaction{}, err
		}
		return classifyParts(p)
	case err != nil:
		return it, err
	case it.Method == http.MethodPost && (it.Kind == SearchType || it.Kind == SearchSystem || it.Kind == SearchCompartment):
		body, err := readBody(r, c.maxForm, isForm)
		if err != nil {
			return Interaction{}, err
		}
		if len(body) == 0 {
			return it, nil
		}
		if p.Form, err = url.ParseQuery(string(body)); err != nil {
			return Interaction{}, errForm
		}
		return classifyParts(p)
	}
	return it, nil
}

// classifyRead classifies the commonest request, a read (GET or HEAD of
// /Type/id without a query), without taking the path apart in general. It
// answers only when the general path (classifyParts) would answer the same
// Interaction and no error (FuzzClassifyReadFastPath); otherwise ok is
// false and the general path decides.
func classifyRead(rest string, h http.Header) (it Interaction, ok bool) {
	if len(rest) < 4 || rest[0] != '/' {
		return it, false
	}
	slash := strings.IndexByte(rest[1:], '/') + 1
	if slash <= 1 {
		return it, false
	}
	typ, id := rest[1:slash], rest[slash+1:]
	// A type starts with a capital letter (not metadata, _history, $op,
	// .well-known); an id starting with '.' may be a dot segment, which the
	// general path refuses.
	if typ[0] < 'A' || typ[0] > 'Z' || id == "" || id[0] == '.' || !fhir.ValidID(id) {
		return it, false
	}
	t, known := scope.LookupType(typ)
	if !known || hasOverride(h, nil, nil) {
		return it, false
	}
	return Interaction{Kind: Read, Type: t, Method: http.MethodGet, ResourceType: typ, ID: id}, true
}

// below returns the part of the escaped path below base: "" or "/...".
func below(path, base string) (string, bool) {
	if path == "" {
		path = "/"
	}
	if !strings.HasPrefix(path, base) {
		return "", false
	}
	rest := path[len(base):]
	if rest != "" && rest[0] != '/' {
		return "", false
	}
	return rest, true
}

type restoredBody struct {
	io.Reader
	io.Closer
}

func isForm(mt string) bool { return mt == "application/x-www-form-urlencoded" }

func isJSON(mt string) bool {
	return mt == "application/fhir+json" || mt == "application/json" || mt == "application/json+fhir"
}

// readBody reads r.Body up to limit bytes and puts back a body that yields
// the same bytes. An empty body is (nil, nil).
func readBody(r *http.Request, limit int64, accept func(mediaType string) bool) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength > limit {
		return nil, errBodyLimit
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return nil, errEncoding
	}
	orig := r.Body
	buf, err := io.ReadAll(io.LimitReader(orig, limit+1))
	r.Body = restoredBody{io.MultiReader(bytes.NewReader(buf), orig), orig}
	if err != nil {
		return nil, fmt.Errorf("fhirrest: reading the request body: %w", err)
	}
	if int64(len(buf)) > limit {
		return nil, errBodyLimit
	}
	if len(buf) == 0 {
		return nil, nil
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !accept(mt) {
			return nil, errContentType
		}
	} else if !accept("application/json") {
		// A form must say so; a Bundle without Content-Type is read as JSON.
		return nil, errContentType
	}
	return buf, nil
}

// parts is a FHIR request taken apart: what Classify reads from an
// *http.Request, or what a Bundle entry's request says.
type parts struct {
	// Method is the HTTP method (HEAD is classified as GET).
	Method string
	// Path is the escaped path below the base: "" or "/" for the base
	// itself, otherwise "/"-prefixed ("/Patient/123").
	Path string
	// Query is the parsed query string; nil when there is none. The
	// Interaction shares it.
	Query url.Values
	// Header holds the request headers: method-override headers are refused
	// and If-None-Exist makes a create conditional. It may be nil.
	Header http.Header
	// Form is the parsed form body of a POST _search; nil otherwise.
	Form url.Values
	// Bundle is the parsed body of a POST to the base.
	Bundle *Bundle
}

// Prepared errors: refusals do not allocate.
var (
	errOutside     = newErr(ErrOutsideBase, "path is not below the FHIR base")
	errOpaque      = newErr(errNonCanonicalPath, "opaque URL or fragment")
	errRawPath     = newErr(errNonCanonicalPath, "URL RawPath disagrees with Path")
	errQuery       = newErr(errInvalidQuery, "malformed query string")
	errForm        = newErr(errInvalidQuery, "malformed form body")
	errBodyLimit   = newErr(errTooLarge, "body exceeds its limit")
	errEncoding    = newErr(errMediaType, "content-encoding of a body the classifier must read")
	errContentType = newErr(errMediaType, "content type of a body the classifier must read")
	errFormCreate  = newErr(errMediaType, "form body posted to a resource type (use _search)")
	errNoBundle    = newErr(errInvalidBundle, "POST to the base without a parsed Bundle")
	errOverride    = newErr(errMethodOverride, "method-override header or _method parameter")
	errMethodName  = newErr(errMethod, "HTTP method is not a FHIR method")
	errMethodPath  = newErr(errMethod, "HTTP method is not defined for this path")
	errOptions     = newErr(ErrOptions, "OPTIONS is not a FHIR interaction")
	errWellKnown   = newErr(ErrWellKnown, "path below .well-known")
	errShape       = newErr(errUnsupported, "path is not a FHIR interaction")
	errCompartment = newErr(errUnsupported, "not a compartment type")
	errCompPath    = newErr(errUnsupported, "only search is defined on compartment paths")
	errNoCriteria  = newErr(errUnsupported, "conditional interaction without search criteria")
	errNotAType    = newErr(errUnknownType, "not a FHIR R4 or R5 resource type")
	errTypeList    = newErr(errUnknownType, "_type names an unknown resource type")
	errTypeSyntax  = newErr(errInvalidQuery, "empty element in _type")
	errID          = newErr(errInvalidID, "resource id is not a FHIR id")
	errVersionID   = newErr(errInvalidID, "version id is not a FHIR id")
	errOpName      = newErr(errInvalidID, "malformed operation name")
	errIfNoneExist = newErr(errInvalidQuery, "malformed If-None-Exist criteria")
	errTrailing    = newErr(errNonCanonicalPath, "trailing slash")
	errSlash       = newErr(errNonCanonicalPath, "path does not start with '/'")
	errEmptySeg    = newErr(errNonCanonicalPath, "empty path segment (//)")
	errDotSeg      = newErr(errNonCanonicalPath, "dot segment")
	errEncSlash    = newErr(errNonCanonicalPath, "encoded slash (%2F)")
	errEncPercent  = newErr(errNonCanonicalPath, "double encoding (%25)")
	errEncBack     = newErr(errNonCanonicalPath, "encoded backslash (%5C)")
	errEncNUL      = newErr(errNonCanonicalPath, "encoded NUL (%00)")
	errEncoded     = newErr(errNonCanonicalPath, "percent-encoding in path")
	errBackslash   = newErr(errNonCanonicalPath, "backslash")
	errSemicolon   = newErr(errNonCanonicalPath, "semicolon (path parameter)")
	errControl     = newErr(errNonCanonicalPath, "control character")
	errChar        = newErr(errNonCanonicalPath, "character not used in FHIR paths")
	errTooDeep     = newErr(errUnsupported, "too many path segments")
)

// maxSegments is the longest FHIR path: [type]/[id]/_history/[vid]/$op.
const maxSegments = 5

// pathChar marks the bytes a canonical FHIR path segment may hold: resource
// types, ids ([A-Za-z0-9-.]), _history, _search, $operation, * and
// .well-known names.
var pathChar = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._$*" {
		t[c] = true
	}
	return t
}()

type segments struct {
	s        [maxSegments]string
	n        int
	trailing bool
}

// splitPath checks that path ("" or "/"-prefixed, escaped) is canonical and
// splits it into segments. A trailing slash is reported, not refused.
func splitPath(path string) (segments, error) {
	var sg segments
	if path == "" || path == "/" {
		sg.trailing = path == "/"
		return sg, nil
	}
	if path[0] != '/' {
		return sg, errSlash
	}
	start := 1
	dots := true
	deep := false
	for i := 1; i <= len(path); i++ {
		if i == len(path) || path[i] == '/' {
			seg := path[start:i]
			switch {
			case seg == "":
				if i == len(path) {
					sg.trailing = true
					break
				}
				return sg, errEmptySeg
			case dots:
				return sg, errDotSeg
			case sg.n == maxSegments:
				deep = true
			default:
				sg.s[sg.n] = seg
				sg.n++
			}
			start, dots = i+1, true
			continue
		}
		c := path[i]
		if c != '.' {
			dots = false
		}
		if !pathChar[c] {
			return sg, charError(path[i:])
		}
	}
	if deep {
		return sg, errTooDeep
	}
	return sg, nil
}

func charError(s string) error {
	switch c := s[0]; {
	case c == '%':
		if len(s) >= 3 {
			switch strings.ToUpper(s[1:3]) {
			case "2F":
				return errEncSlash
			case "25":
				return errEncPercent
			case "5C":
				return errEncBack
			case "00":
				return errEncNUL
			}
		}
		return errEncoded
	case c == '\\':
		return errBackslash
	case c == ';':
		return errSemicolon
	case c < 0x20 || c == 0x7f:
		return errControl
	}
	return errChar
}

// checkMethod returns the method as classified (HEAD as GET).
func checkMethod(m string) (string, error) {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return m, nil
	case http.MethodHead:
		return http.MethodGet, nil
	case http.MethodOptions:
		return m, errOptions
	}
	return "", errMethodName
}

// overrideHeader reports whether k names a method-override header, in any
// case and with '-' or '_'.
func overrideHeader(k string) bool {
	if len(k) < len("X-HTTP-Method") || len(k) > len("X-HTTP-Method-Override") || k[0]|0x20 != 'x' {
		return false // every name below starts with x, in either case
	}
	var b [22]byte
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '_':
			c = '-'
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		b[i] = c
	}
	switch string(b[:len(k)]) {
	case "x-http-method-override", "x-http-method", "x-method-override":
		return true
	}
	return false
}

func hasOverride(h http.Header, q, form url.Values) bool {
	for k := range h {
		if overrideHeader(k) {
			return true
		}
	}
	return hasMethodParam(q) || hasMethodParam(form)
}

func hasMethodParam(v url.Values) bool {
	if len(v) == 0 {
		return false
	}
	for k := range v {
		if len(k) == len("_method") && strings.EqualFold(k, "_method") {
			return true
		}
	}
	return false
}

// classifyParts classifies a request taken apart. It applies the same rules
// as Classify, except that it reads no body: a POST to the base needs
// p.Bundle (else errInvalidBundle) and a POST _search reads p.Form.
func classifyParts(p parts) (Interaction, error) {
	method, err := checkMethod(p.Method)
	if err != nil && err != errOptions {
		return Interaction{}, err
	}
	if hasOverride(p.Header, p.Query, p.Form) {
		return Interaction{}, errOverride
	}
	sg, perr := splitPath(p.Path)
	if perr != nil {
		return Interaction{}, perr
	}
	if err != nil {
		return Interaction{}, err // OPTIONS, on a canonical path
	}
	if sg.n > 0 && sg.s[0] == ".well-known" {
		return Interaction{}, errWellKnown
	}
	it := Interaction{Method: method, Query: p.Query}
	if err := classify(&it, &sg, &p); err != nil {
		return Interaction{}, err
	}
	if vs, ok := it.Query["_type"]; ok {
		if it.Types, err = parseTypes(vs); err != nil {
			return Interaction{}, err
		}
	}
	return it, nil
}

func classify(it *Interaction, sg *segments, p *parts) error {
	m := it.Method
	if sg.n == 0 {
		switch m {
		case http.MethodGet:
			it.Kind = SearchSystem
		case http.MethodPost:
			if p.Bundle == nil {
				return errNoBundle
			}
			it.Kind = p.Bundle.Kind
			it.Bundle = p.Bundle
		default:
			return errMethodPath
		}
		return nil
	}
	if sg.trailing && (sg.n != 1 || m != http.MethodDelete) {
		return errTrailing
	}
	s0 := sg.s[0]
	switch {
	case s0 == "metadata":
		return system(it, sg, Capabilities, http.MethodGet)
	case s0 == "_history":
		return system(it, sg, HistorySystem, http.MethodGet)
	case s0 == "_search":
		if err := system(it, sg, SearchSystem, http.MethodPost); err != nil {
			return err
		}
		it.Query = merge(p.Query, p.Form)
		return nil
	case s0[0] == '$':
		if sg.n != 1 {
			return errShape
		}
		return operation(it, s0, LevelSystem)
	case s0[0] == '_' || s0[0] == '*':
		return errShape
	}
	t, ok := scope.LookupType(s0)
	if !ok {
		return errNotAType
	}
	it.ResourceType, it.Type = s0, t
	if sg.n == 1 {
		return typeLevel(it, sg, p)
	}
	s1 := sg.s[1]
	switch {
	case s1 == "_history":
		if sg.n != 2 {
			return errShape
		}
		return expect(it, HistoryType, http.MethodGet)
	case s1 == "_search":
		if sg.n != 2 {
			return errShape
		}
		if err := expect(it, SearchType, http.MethodPost); err != nil {
			return err
		}
		it.Query = merge(p.Query, p.Form)
		return nil
	case s1[0] == '$':
		if sg.n != 2 {
			return errShape
		}
		return operation(it, s1, LevelType)
	}
	if !fhir.ValidID(s1) {
		return errID
	}
	it.ID = s1
	if sg.n == 2 {
		switch m {
		case http.MethodGet:
			it.Kind = Read
		case http.MethodPut:
			it.Kind = Update
		case http.MethodPatch:
			it.Kind = Patch
		case http.MethodDelete:
			it.Kind = Delete
		default:
			return errMethodPath
		}
		return nil
	}
	s2 := sg.s[2]
	switch {
	case s2 == "_history":
		switch sg.n {
		case 3:
			return expect(it, HistoryInstance, http.MethodGet)
		case 4, 5:
			if !fhir.ValidID(sg.s[3]) {
				return errVersionID
			}
			it.VersionID = sg.s[3]
			if sg.n == 4 {
				return expect(it, VRead, http.MethodGet)
			}
			if sg.s[4][0] != '$' {
				return errShape
			}
			return operation(it, sg.s[4], LevelInstance)
		}
		return errShape
	case s2[0] == '$':
		if sg.n != 3 {
			return errShape
		}
		return operation(it, s2, LevelInstance)
	}
	return compartmentSearch(it, sg, p)
}

// system classifies a one-segment system-level path.
func system(it *Interaction, sg *segments, k Kind, method string) error {
	if sg.n != 1 {
		return errShape
	}
	return expect(it, k, method)
}

func expect(it *Interaction, k Kind, method string) error {
	if it.Method != method {
		return errMethodPath
	}
	it.Kind = k
	return nil
}

func typeLevel(it *Interaction, sg *segments, p *parts) error {
	switch it.Method {
	case http.MethodGet:
		it.Kind = SearchType
		return nil
	case http.MethodPost:
		if formBody(p.Header) {
			// Not a resource; some servers run a form POST to a type as a
			// search, which must not be authorized as a create.
			return errFormCreate
		}
		it.Kind = Create
		vs := p.Header["If-None-Exist"]
		if len(vs) == 0 {
			return nil
		}
		if len(vs) > 1 {
			return errIfNoneExist
		}
		q, err := parseCriteria(vs[0], it.ResourceType)
		if err != nil {
			return err
		}
		it.Conditional, it.Query = true, q
		return nil
	case http.MethodPut:
		it.Kind = Update
	case http.MethodPatch:
		it.Kind = Patch
	case http.MethodDelete:
		it.Kind = Delete
	default:
		return errMethodPath
	}
	if !hasCriteria(it.Query) {
		return errNoCriteria
	}
	it.Conditional = true
	return nil
}

func compartmentSearch(it *Interaction, sg *segments, p *parts) error {
	if !isCompartmentType(it.ResourceType) {
		return errCompartment
	}
	s2 := sg.s[2]
	var t scope.TypeID
	if s2 != "*" {
		var ok bool
		if t, ok = scope.LookupType(s2); !ok {
			if s2[0] == '_' {
				return errShape
			}
			return errNotAType
		}
	}
	switch {
	case sg.n == 3 && it.Method == http.MethodGet:
	case sg.n == 4 && sg.s[3] == "_search" && it.Method == http.MethodPost:
		it.Query = merge(p.Query, p.Form)
	case sg.n == 4 && sg.s[3] == "_search":
		return errMethodPath
	default:
		return errCompPath
	}
	it.Kind = SearchCompartment
	it.CompartmentType, it.CompartmentID = it.ResourceType, it.ID
	it.ResourceType, it.Type, it.ID = s2, t, ""
	return nil
}

func operation(it *Interaction, seg string, level Level) error {
	name := seg[1:]
	if !validOpName(name) {
		return errOpName
	}
	if it.Method != http.MethodGet && it.Method != http.MethodPost {
		return errMethodPath
	}
	it.Kind, it.Operation, it.OperationLevel = Operation, name, level
	return nil
}

// formBody reports whether the Content-Type header announces a form.
func formBody(h http.Header) bool {
	for _, ct := range h["Content-Type"] {
		mt, _, _ := strings.Cut(ct, ";")
		mt = strings.TrimSpace(mt)
		if strings.EqualFold(mt, "application/x-www-form-urlencoded") || strings.EqualFold(mt, "multipart/form-data") {
			return true
		}
	}
	return false
}

// merge returns the URL query and the form body as one set of parameters
// (FHIR: putting a parameter in both is the same as repeating it).
func merge(q, form url.Values) url.Values {
	if len(form) == 0 {
		return q
	}
	if len(q) == 0 {
		return form
	}
	out := make(url.Values, len(q)+len(form))
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	for k, v := range form {
		out[k] = append(out[k], v...)
	}
	return out
}

// resultParams are the parameters that shape a response and select nothing.
func resultParam(k string) bool {
	switch k {
	case "_format", "_pretty", "_summary", "_elements":
		return true
	}
	return false
}

func hasCriteria(q url.Values) bool {
	for k := range q {
		if !resultParam(k) {
			return true
		}
	}
	return false
}

// parseCriteria parses If-None-Exist: "name=value&...", also written
// "?name=value" or "[type]?name=value".
func parseCriteria(v, typ string) (url.Values, error) {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, '?'); i >= 0 {
		if v[:i] != "" && v[:i] != typ {
			return nil, errIfNoneExist
		}
		v = v[i+1:]
	}
	if v == "" {
		return nil, errIfNoneExist
	}
	q, err := url.ParseQuery(v)
	if err != nil || !hasCriteria(q) || hasMethodParam(q) {
		return nil, errIfNoneExist
	}
	return q, nil
}

// parseTypes parses the _type parameter: comma-separated lists, possibly
// repeated. Duplicates are dropped; every name must be a resource type.
func parseTypes(vs []string) ([]string, error) {
	var out []string
	for _, v := range vs {
		for name := range strings.SplitSeq(v, ",") {
			if name == "" {
				return nil, errTypeSyntax
			}
			if !fhir.IsResourceType(name) {
				return nil, errTypeList
			}
			if !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	if len(out) == 0 {
		return nil, errTypeSyntax
	}
	return out, nil
}

// validOpName reports whether s (without '$') is an operation name: a letter,
// then up to 63 letters, digits, '-' or '_'.
func validOpName(s string) bool {
	if len(s) == 0 || len(s) > 64 || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// isCompartmentType reports whether name is a compartment type of FHIR R4 and
// R5: Patient, Encounter, RelatedPerson, Practitioner or Device.
func isCompartmentType(name string) bool {
	switch name {
	case "Patient", "Encounter", "RelatedPerson", "Practitioner", "Device":
		return true
	}
	return false
}

// plainPath reports whether p has only bytes that url.URL.EscapedPath never
// escapes (letters, digits, "-", ".", "_", "~" and "/"): for such a Path
// and no RawPath, EscapedPath returns p itself.
func plainPath(p string) bool {
	for i := 0; i < len(p); i++ {
		if !plainPathByte[p[i]] {
			return false
		}
	}
	return true
}

var plainPathByte = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~/", byte(c)) >= 0
	}
	return t
}()
