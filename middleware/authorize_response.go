package middleware

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/fhirguard/fhirguard/internal/fhirjson"
)

// recorder buffers a handler's response so that Authorize can verify it
// before anything reaches the client.
type recorder struct {
	header   http.Header
	direct   bool // header is the response's own map (serveVerified)
	status   int
	body     bytes.Buffer
	limit    int64
	overflow bool

	contentLength [1]string // the Content-Length writeRecorded sends
	digits        [20]byte  // its bytes

	pooled *[]byte // where body's memory came from (usePooledBody)
}

// responseBodies holds the memory of verified responses between requests:
// a buffer goes back once its response is written and nothing refers to
// it (releaseBody), so a verified call does not allocate one.
var responseBodies = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledBody: larger buffers are left to the garbage collector.
const maxPooledBody = 64 << 10

// usePooledBody makes rec record into a buffer of responseBodies.
func (rec *recorder) usePooledBody() {
	rec.pooled = responseBodies.Get().(*[]byte)
	rec.body = *bytes.NewBuffer((*rec.pooled)[:0])
}

// releaseBody gives the body's memory back to responseBodies. The caller
// has written the response and keeps nothing that points into the body
// (the views of a RefDoc or of a References decode included). The
// recorder refuses writes from then on: a handler that writes after it
// returned gets an error, never another response's buffer.
func (rec *recorder) releaseBody() {
	if rec.pooled == nil {
		return
	}
	b := rec.body.Bytes()
	rec.body, rec.limit = bytes.Buffer{}, -1
	if cap(b) <= maxPooledBody {
		*rec.pooled = b[:0]
		responseBodies.Put(rec.pooled)
	}
	rec.pooled = nil
}

func newRecorder(limit int64) *recorder {
	return &recorder{header: http.Header{}, limit: limit}
}

func (rec *recorder) Header() http.Header { return rec.header }

// WriteHeader records the final status. Informational answers (1xx, such
// as 103 Early Hints) are dropped: they are not the answer, and taking one
// for it would pass the real answer on unverified.
func (rec *recorder) WriteHeader(code int) {
	if code >= 100 && code <= 199 {
		return
	}
	if rec.status == 0 {
		rec.status = code
	}
}

func (rec *recorder) Write(p []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if int64(rec.body.Len())+int64(len(p)) > rec.limit {
		rec.overflow = true
		return 0, errResponseTooLarge
	}
	return rec.body.Write(p)
}

// Flush is accepted and ignored: nothing leaves before verification.
func (rec *recorder) Flush() {}

func (rec *recorder) code() int {
	if rec.status == 0 {
		return http.StatusOK
	}
	return rec.status
}

var (
	errResponseTooLarge = errors.New("fhirguard: response too large to verify")
	errNotJSON          = errors.New("fhirguard: response is not FHIR JSON")
	errEncoding         = errors.New("fhirguard: response content encoding cannot be inspected")
)

// isJSONMediaType accepts the JSON media types a FHIR server emits.
func isJSONMediaType(ct string) bool {
	if ct == "application/fhir+json" || ct == "application/json" {
		return true // what servers send
	}
	if strings.IndexByte(ct, ';') < 0 {
		// No parameters: the media type mime.ParseMediaType would return
		// (ct trimmed, in lower case), without its allocation.
		mt := strings.TrimSpace(ct)
		return lowerASCIIEqual(mt, "application/fhir+json") || lowerASCIIEqual(mt, "application/json") ||
			lowerASCIIEqual(mt, "application/json+fhir")
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	switch mt {
	case "application/fhir+json", "application/json", "application/json+fhir":
		return true
	}
	return false
}

// decodedBody returns the identity-encoded body of the recorded response.
func (rec *recorder) decodedBody() ([]byte, error) {
	enc := strings.ToLower(strings.TrimSpace(headerGet(rec.header, "Content-Encoding")))
	switch enc {
	case "", "identity":
		return rec.body.Bytes(), nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(rec.body.Bytes()))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errEncoding, err)
		}
		return readCapped(zr, rec.limit)
	case "deflate":
		return readCapped(flate.NewReader(bytes.NewReader(rec.body.Bytes())), rec.limit)
	}
	return nil, fmt.Errorf("%w: %q", errEncoding, enc)
}

func readCapped(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errEncoding, err)
	}
	if int64(len(b)) > limit {
		return nil, errResponseTooLarge
	}
	return b, nil
}

// decodeJSONObject reads a response body with the kit's strict reader
// (numbers stay json.Number, so that FHIR decimals keep their precision if
// the object is written again).
func decodeJSONObject(b []byte) (map[string]any, error) {
	return fhirjson.Decode(b, readJSON)
}

// writeRecorded sends the recorded response with body b (identity-encoded).
// HEAD requests get the headers only.
func writeRecorded(w http.ResponseWriter, r *http.Request, rec *recorder, b []byte) {
	h := w.Header()
	if !rec.direct {
		for k, v := range rec.header {
			h[k] = v
		}
	}
	delete(h, "Content-Encoding") // h.Del of a canonical key
	// h.Set without allocating: the value and its slice live in rec, and
	// writeRecorded runs once per recorder, so they never change.
	d := strconv.AppendInt(rec.digits[:0], int64(len(b)), 10)
	rec.contentLength[0] = unsafe.String(&d[0], len(d))
	h["Content-Length"] = rec.contentLength[:]
	w.WriteHeader(rec.code())
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}
