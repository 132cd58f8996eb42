package discovery

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// defaultMaxAge is the Cache-Control max-age used when HandlerConfig.MaxAge
// is zero.
const defaultMaxAge = time.Hour

// HandlerConfig configures a Handler or a ProtectedResourceHandler.
type HandlerConfig struct {
	// MaxAge is the Cache-Control max-age of the document, at least one
	// second. Zero means one hour; a negative value sends "no-cache"
	// (clients revalidate every time, with If-None-Match).
	MaxAge time.Duration
}

func (c HandlerConfig) cacheControl() string {
	switch {
	case c.MaxAge < 0:
		return "public, no-cache"
	case c.MaxAge == 0:
		return "public, max-age=" + strconv.FormatInt(int64(defaultMaxAge/time.Second), 10)
	default:
		return "public, max-age=" + strconv.FormatInt(int64(c.MaxAge/time.Second), 10)
	}
}

// representation is one encoded document and its header values, computed
// once. The header value slices are shared by every response: they are
// assigned to the response header map without copying, and have cap == len
// so that an append made by a later handler copies them.
type representation struct {
	src           any // the document encoded, for the typed handlers
	body          []byte
	etag          string
	etagHdr       []string
	contentLength []string
}

// Header value slices shared by every response (see representation).
var (
	hdrJSON          = []string{"application/json"}
	hdrAnyOrigin     = []string{"*"}
	hdrAllow         = []string{"GET, HEAD, OPTIONS"}
	hdrNoSniff       = []string{"nosniff"}
	hdrZero          = []string{"0"}
	hdrExposeHeaders = []string{"ETag"}
	hdrPreflightAge  = []string{"86400"}
	hdrPreflightHdrs = []string{"Accept, If-None-Match, Cache-Control"}
)

func newRepresentation(src any, body []byte) *representation {
	sum := sha256.Sum256(body)
	etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:]) + `"`
	n := strconv.Itoa(len(body))
	return &representation{
		src:           src,
		body:          body,
		etag:          etag,
		etagHdr:       []string{etag},
		contentLength: []string{n},
	}
}

// encodeBody encodes v as indented JSON with a final newline.
func encodeBody(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// docHandler serves the current representation of a JSON document.
type docHandler struct {
	cur          atomic.Pointer[representation]
	cacheControl []string
}

func (h *docHandler) init(cfg HandlerConfig, rep *representation) {
	h.cacheControl = []string{cfg.cacheControl()}
	h.cur.Store(rep)
}

// serve answers GET and HEAD with the document, OPTIONS with a CORS
// preflight or an Allow list, and other methods with 405. Every response
// carries Access-Control-Allow-Origin: *.
func (h *docHandler) serve(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr["Access-Control-Allow-Origin"] = hdrAnyOrigin
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		hdr["Allow"] = hdrAllow
		if r.Header.Get("Access-Control-Request-Method") != "" {
			hdr["Access-Control-Allow-Methods"] = hdrAllow
			if reqHdrs := r.Header.Get("Access-Control-Request-Headers"); reqHdrs != "" && isTokenList(reqHdrs) {
				hdr["Access-Control-Allow-Headers"] = []string{reqHdrs}
			} else {
				hdr["Access-Control-Allow-Headers"] = hdrPreflightHdrs
			}
			hdr["Vary"] = append(hdr["Vary"], "Access-Control-Request-Headers")
			hdr["Access-Control-Max-Age"] = hdrPreflightAge
		}
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		hdr["Allow"] = hdrAllow
		hdr["Content-Length"] = hdrZero
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}

	rep := h.cur.Load()
	hdr["Etag"] = rep.etagHdr
	hdr["Cache-Control"] = h.cacheControl
	hdr["Access-Control-Expose-Headers"] = hdrExposeHeaders
	if inm, ok := r.Header["If-None-Match"]; ok && noneMatch(inm, rep.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr["Content-Type"] = hdrJSON
	hdr["X-Content-Type-Options"] = hdrNoSniff
	hdr["Content-Length"] = rep.contentLength
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(rep.body)
	}
}

// noneMatch reports whether an If-None-Match field (all its lines) matches
// etag under the weak comparison of RFC 9110 §13.1.2: "*" matches, and
// W/"x" matches "x". A malformed list stops matching at the malformed
// member.
func noneMatch(lines []string, etag string) bool {
	for _, s := range lines {
		for {
			s = strings.TrimLeft(s, " \t,")
			if s == "" {
				break
			}
			if s[0] == '*' {
				return true
			}
			s = strings.TrimPrefix(s, "W/")
			if s == "" || s[0] != '"' {
				break
			}
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				break
			}
			tag := s[:end+2]
			if tag == etag {
				return true
			}
			s = s[end+2:]
		}
	}
	return false
}

// isTokenList reports whether s is a comma-separated list of HTTP tokens
// (field names), short enough to echo in Access-Control-Allow-Headers.
func isTokenList(s string) bool {
	if len(s) > 1024 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~, ", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// Handler serves a SMART configuration document at
// <base>/.well-known/smart-configuration. It does not look at the request
// path: give it to middleware.Config.SMARTConfiguration, which serves it
// at that path without a token (or mount it on a router yourself).
//
// The body is encoded once, when the document is set; each request writes
// the cached bytes. Responses are application/json whatever the Accept
// header, carry a strong ETag (a SHA-256 of the body) and
// Cache-Control: public with a max-age, answer If-None-Match with 304,
// allow any origin (CORS, preflight included), and refuse methods other
// than GET, HEAD and OPTIONS with 405 and an Allow header.
//
// A Handler is safe for concurrent use; Update replaces the document
// atomically.
type Handler struct {
	h docHandler
}

// NewHandler returns a Handler serving doc. It fails with a
// *ValidationError when doc has errors; warnings do not stop it (call
// doc.Validate to see them).
//
// The document served is doc normalized: the non-normative capability
// names context-passthrough-banner and context-passthrough-style become
// context-banner and context-style, a repeated capability is listed once,
// and "none" is added to token_endpoint_auth_methods_supported when
// client-public is advertised and the list lacks it (a public client
// authenticates with "none", RFC 7591 §2).
func NewHandler(doc *Document, cfg HandlerConfig) (*Handler, error) {
	if doc == nil {
		return nil, errors.New("discovery: NewHandler: nil document")
	}
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	rep, err := prepareDocument(doc)
	if err != nil {
		return nil, err
	}
	h := &Handler{}
	h.h.init(cfg, rep)
	return h, nil
}

func checkConfig(cfg HandlerConfig) error {
	if cfg.MaxAge > 0 && cfg.MaxAge < time.Second {
		return errors.New("discovery: HandlerConfig.MaxAge below one second")
	}
	return nil
}

func prepareDocument(doc *Document) (*representation, error) {
	if err := doc.Validate().Err(); err != nil {
		return nil, err
	}
	n := doc.normalize()
	body, err := encodeBody(n)
	if err != nil {
		return nil, err
	}
	return newRepresentation(n, body), nil
}

// ServeHTTP serves the document.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.h.serve(w, r) }

// Update validates doc and, when it has no errors, serves it from now on.
// On error the previous document stays.
func (h *Handler) Update(doc *Document) error {
	if doc == nil {
		return errors.New("discovery: Update: nil document")
	}
	rep, err := prepareDocument(doc)
	if err != nil {
		return err
	}
	h.h.cur.Store(rep)
	return nil
}

func (h *Handler) current() *Document { return h.h.cur.Load().src.(*Document) }

// Document returns a copy of the document being served (normalized).
func (h *Handler) Document() *Document { return h.current().clone() }

// body returns the exact bytes served.
func (h *Handler) body() []byte { return append([]byte(nil), h.h.cur.Load().body...) }

// etag returns the entity tag of the body, quotes included.
func (h *Handler) etag() string { return h.h.cur.Load().etag }
