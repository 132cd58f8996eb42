package gateway

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// defaultMaxResponseBytes is the default of Config.MaxResponseBytes.
const defaultMaxResponseBytes = 32 << 20

// Config configures a Proxy.
type Config struct {
	// Upstream is the base URL of the FHIR server behind the proxy, such as
	// "http://127.0.0.1:8103/fhir/R4". Required.
	Upstream string
	// BaseURL is the public FHIR base URL, the one clients use and the
	// Guard's AuthorizeConfig.BaseURL, such as
	// "https://ehr.example.org/fhir". Required. It must differ from
	// Upstream: same scheme, host and port need paths that are not nested.
	BaseURL string
	// Transport sends the requests to the upstream. nil means a transport
	// of the proxy's own (http.DefaultTransport's settings, up to 64 idle
	// connections to the upstream, 1 minute for the response headers).
	Transport http.RoundTripper
	// MaxResponseBytes caps an upstream response body, which the proxy
	// reads whole to rewrite it (after gzip decoding); a larger one is
	// answered 502. 0 means 32 MiB.
	MaxResponseBytes int64
	// ForwardAuthorization sends the client's Authorization header to the
	// upstream. Off by default: the token's audience is the public base,
	// and an upstream that needs credentials gets them from Transport.
	ForwardAuthorization bool
	// Logger receives upstream failures (with the upstream's address and
	// the error; never a client's token). nil means slog.Default().
	Logger *slog.Logger
}

// Proxy is a reverse proxy from the public FHIR base to the upstream FHIR
// server, safe for concurrent use. Create it with New.
type Proxy struct {
	rp        *httputil.ReverseProxy
	transport http.RoundTripper
	upstream  base
	public    base
	upHost    string // hostPort(upstream)
	pubHost   string // hostPort(public)
	m         *matcher
	maxBytes  int64
	forward   bool
	log       *slog.Logger
}

// New validates cfg and returns its Proxy.
func New(cfg Config) (*Proxy, error) {
	up, err := parseBase("Upstream", cfg.Upstream)
	if err != nil {
		return nil, err
	}
	pub, err := parseBase("BaseURL", cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	m, err := newMatcher(up, pub)
	if err != nil {
		return nil, err
	}
	if cfg.MaxResponseBytes < 0 {
		return nil, fmt.Errorf("gateway: Config.MaxResponseBytes %d is negative", cfg.MaxResponseBytes)
	}
	if cfg.Logger != nil && cfg.Logger.Handler() == nil {
		return nil, errors.New("gateway: Config.Logger was declared, not built with slog.New")
	}
	p := &Proxy{
		transport: cfg.Transport,
		upstream:  up,
		public:    pub,
		upHost:    hostPort(up),
		pubHost:   hostPort(pub),
		m:         m,
		maxBytes:  cfg.MaxResponseBytes,
		forward:   cfg.ForwardAuthorization,
		log:       cfg.Logger,
	}
	if p.maxBytes == 0 {
		p.maxBytes = defaultMaxResponseBytes
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		t.ResponseHeaderTimeout = time.Minute
		p.transport = t
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewriteRequest,
		Transport:      no1xx{p.transport},
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.fail,
		ErrorLog:       slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
		BufferPool:     copyBuffers,
	}
	return p, nil
}

// copyBuffers lends ReverseProxy its 32 KiB copy buffers, which it would
// otherwise allocate for every response.
var copyBuffers = &bufferPool{pool: sync.Pool{New: func() any { return new([32 << 10]byte) }}}

type bufferPool struct{ pool sync.Pool }

func (b *bufferPool) Get() []byte  { return b.pool.Get().(*[32 << 10]byte)[:] }
func (b *bufferPool) Put(p []byte) { b.pool.Put((*[32 << 10]byte)(p[:32<<10])) }

// ServeHTTP forwards a request at or below the public base path to the
// same path below the upstream's base path, and answers others 404.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, ok := p.rest(r.URL); !ok {
		writeOutcome(w, http.StatusNotFound, "not-found", "not below the FHIR base")
		return
	}
	p.rp.ServeHTTP(w, r)
}

// Ready reports whether the upstream answers: nil when GET
// <Upstream>/metadata answers 2xx.
func (p *Proxy) Ready(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.upstream.text+"/metadata", nil)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	req.Header.Set("Accept", "application/fhir+json")
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := p.transport.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("gateway: upstream unreachable: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("gateway: upstream %s/metadata answered %d", p.upstream.text, resp.StatusCode)
	}
	return nil
}

// Close closes the idle connections to the upstream (when the Transport
// can). Requests in flight are not interrupted; the Proxy stays usable.
func (p *Proxy) Close() {
	if c, ok := p.transport.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// rest returns the escaped path of u below the public base path.
func (p *Proxy) rest(u *url.URL) (string, bool) {
	path := u.EscapedPath()
	switch {
	case path == p.public.path:
		return "", true
	case strings.HasPrefix(path, p.public.path+"/"):
		return path[len(p.public.path):], true
	}
	return "", false
}

// rewriteRequest maps the request to the upstream.
func (p *Proxy) rewriteRequest(pr *httputil.ProxyRequest) {
	out := pr.Out
	rest, _ := p.rest(pr.In.URL) // checked by ServeHTTP
	escaped := p.upstream.path + rest
	path, err := url.PathUnescape(escaped)
	if err != nil {
		path = escaped // never: the incoming path was parsed
	}
	out.URL.Scheme = p.upstream.scheme
	out.URL.Host = p.upHost
	out.URL.Path, out.URL.RawPath = path, escaped
	out.Host = ""
	pr.SetXForwarded()
	// The address the client used is the public base; the Host header is
	// whatever the client sent.
	h := out.Header
	setHeader(h, "X-Forwarded-Host", p.pubHost)
	setHeader(h, "X-Forwarded-Proto", p.public.scheme)
	if !p.forward {
		delete(h, "Authorization")
	}
	// Bodies are rewritten: ask for them unencoded.
	setHeader(h, "Accept-Encoding", "identity")
}

// setHeader is h.Set(key, v) for a canonical key, reusing the slice of
// the values already there (h is the outgoing request's own copy).
func setHeader(h http.Header, key, v string) {
	h[key] = append(h[key][:0], v)
}

// hostPort returns the host and port of b as written in a URL's authority,
// without a default port.
func hostPort(b base) string {
	h := b.host
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	if b.defPort {
		return h
	}
	return h + ":" + b.port
}

// responseError is a response the proxy refuses to pass on.
type responseError struct {
	status int
	code   string // the OperationOutcome issue code
	msg    string // for the client
	detail string // for the log
}

func (e *responseError) Error() string { return e.msg + ": " + e.detail }

// modifyResponse rewrites the upstream's address in the headers and the
// body of resp.
func (p *Proxy) modifyResponse(resp *http.Response) error {
	h := resp.Header
	for k, vs := range h {
		for i, v := range vs {
			vs[i] = p.m.rewriteString(v)
		}
		if k == "Location" || k == "Content-Location" {
			for i, v := range vs {
				vs[i] = p.relativePath(v)
			}
		}
	}
	resp.Trailer = nil // never passed on: they could hold the address
	if resp.Request != nil && resp.Request.Method == http.MethodHead {
		h.Del("Content-Length") // the rewritten length is unknown
		return nil
	}
	if resp.Body == nil || resp.Body == http.NoBody || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified {
		return nil
	}
	body := io.Reader(resp.Body)
	decoded := false
	switch enc := strings.ToLower(strings.TrimSpace(h.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		gz, err := gzip.NewReader(resp.Body)
		if err != nil {
			_ = resp.Body.Close()
			return &responseError{http.StatusBadGateway, "exception", "the upstream response could not be read", "gzip: " + err.Error()}
		}
		body, decoded = gz, true
	default:
		_ = resp.Body.Close()
		return &responseError{http.StatusBadGateway, "exception", "the upstream response has an unsupported encoding", "Content-Encoding " + enc}
	}
	var hint int64 // the decoded size, when announced
	if !decoded {
		hint = resp.ContentLength
	}
	data, err := readAll(body, hint, p.maxBytes+1)
	_ = resp.Body.Close()
	if err != nil {
		return &responseError{http.StatusBadGateway, "exception", "the upstream response could not be read", err.Error()}
	}
	if int64(len(data)) > p.maxBytes {
		return &responseError{http.StatusBadGateway, "too-costly", "the upstream response is too large", fmt.Sprintf("more than %d bytes", p.maxBytes)}
	}
	out, err := p.rewriteBody(h.Get("Content-Type"), data)
	if err != nil {
		return err
	}
	if decoded {
		h.Del("Content-Encoding")
	}
	if decoded || !bytes.Equal(out, data) {
		// Digests of the upstream's bytes no longer hold.
		h.Del("Content-Md5")
		h.Del("Digest")
		h.Del("Repr-Digest")
		h.Del("Content-Digest")
	}
	resp.Body = io.NopCloser(bytes.NewReader(out))
	resp.ContentLength = int64(len(out))
	resp.TransferEncoding = nil
	h.Set("Content-Length", strconv.Itoa(len(out)))
	return nil
}

// readAll reads r to its end or to limit bytes, into one buffer of the
// size hint (when positive, under limit and at most maxHint: memory is
// not taken on the upstream's word before the bytes arrive) instead of a
// growing one.
func readAll(r io.Reader, hint, limit int64) ([]byte, error) {
	if hint <= 0 || hint >= limit || hint > maxHint {
		return io.ReadAll(io.LimitReader(r, limit))
	}
	// One byte more than announced: the end is seen without a second
	// buffer (and a longer body still reads on).
	b := make([]byte, 0, hint+1)
	for int64(len(b)) < limit {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // grow
		}
		n, err := r.Read(b[len(b):min(int64(cap(b)), limit)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
	return b, nil
}

// maxHint is the largest Content-Length for which readAll allocates the
// whole buffer at once.
const maxHint = 1 << 20

// relativePath maps a Location that is an absolute path below the
// upstream's base path ("/fhir/Patient/1") to the public base path.
func (p *Proxy) relativePath(v string) string {
	if !strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//") || p.upstream.path == p.public.path {
		return v
	}
	if v == p.upstream.path || strings.HasPrefix(v, p.upstream.path+"/") || strings.HasPrefix(v, p.upstream.path+"?") {
		return p.public.path + v[len(p.upstream.path):]
	}
	return v
}

// rewriteBody rewrites a response body: JSON (one value, or newline
// delimited) has the upstream address replaced in every string; any other
// text that holds it is refused; anything else passes unchanged.
func (p *Proxy) rewriteBody(contentType string, data []byte) ([]byte, error) {
	if !p.m.mayContain(data) {
		return data, nil
	}
	if out, err := p.m.rewriteJSON(data); err == nil {
		return out, nil
	}
	media, _, _ := mime.ParseMediaType(contentType)
	if strings.HasSuffix(media, "ndjson") {
		if out, err := p.m.rewriteJSONSeq(data); err == nil {
			return out, nil
		}
	}
	if isText(media, data) && p.m.contains(data) {
		return nil, &responseError{http.StatusBadGateway, "exception", "the upstream response could not be rewritten",
			"a " + media + " body holds the upstream address (only JSON bodies are rewritten)"}
	}
	return data, nil
}

// isText reports whether a body of this media type is text, which could
// show the upstream address to a client: text/*, XML, JSON, JavaScript,
// forms, and a body without a media type that is valid UTF-8.
func isText(media string, data []byte) bool {
	switch {
	case media == "":
		return !bytes.ContainsRune(data, 0) && utf8.Valid(data)
	case strings.HasPrefix(media, "text/"),
		strings.HasSuffix(media, "xml"), strings.HasSuffix(media, "json"),
		strings.HasSuffix(media, "javascript"), strings.HasSuffix(media, "ecmascript"),
		media == "application/x-www-form-urlencoded", media == "application/x-ndjson":
		return true
	}
	return false
}

// fail answers a request whose upstream exchange failed: 504 for a
// timeout, 413 for a request body cut by an http.MaxBytesReader, 502
// otherwise, with an OperationOutcome that does not name the upstream.
func (p *Proxy) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg := http.StatusBadGateway, "transient", "the upstream FHIR server could not be reached"
	var re *responseError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &re):
		status, code, msg = re.status, re.code, re.msg
	case errors.As(err, &tooLarge):
		// The request body was cut by an http.MaxBytesReader.
		status, code, msg = http.StatusRequestEntityTooLarge, "too-costly", "the request body is too large"
	case isTimeout(err):
		status, code, msg = http.StatusGatewayTimeout, "timeout", "the upstream FHIR server did not answer in time"
	}
	level := slog.LevelWarn
	if r.Context().Err() != nil {
		level = slog.LevelDebug // the client went away
	}
	p.log.LogAttrs(r.Context(), level, "gateway: upstream request failed",
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", status),
		slog.String("upstream", p.upstream.text), slog.String("error", err.Error()))
	writeOutcome(w, status, code, msg)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// writeOutcome answers with a FHIR OperationOutcome of one error issue.
// code and msg are constants of this package (nothing to escape).
func writeOutcome(w http.ResponseWriter, status int, code, msg string) {
	body := `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"` + code + `","diagnostics":"` + msg + `"}]}`
	h := w.Header()
	h.Set("Content-Type", "application/fhir+json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// no1xx sends requests through its RoundTripper without the hook through
// which httputil.ReverseProxy passes informational (1xx) responses on to
// the client: their headers (a 103 Early Hints Link) are not rewritten, so
// they are dropped.
type no1xx struct{ http.RoundTripper }

func (t no1xx) RoundTrip(r *http.Request) (*http.Response, error) {
	tr := httptrace.ContextClientTrace(r.Context())
	if tr == nil || tr.Got1xxResponse == nil {
		return t.RoundTripper.RoundTrip(r)
	}
	c := *tr
	c.Got1xxResponse = nil
	return t.RoundTripper.RoundTrip(r.WithContext(traceCtx{r.Context(), tr, &c}))
}

// traceCtx replaces one client trace of its parent with another.
type traceCtx struct {
	context.Context
	old, new *httptrace.ClientTrace
}

func (c traceCtx) Value(key any) any {
	v := c.Context.Value(key)
	if t, ok := v.(*httptrace.ClientTrace); ok && t == c.old {
		return c.new
	}
	return v
}
