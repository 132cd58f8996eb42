package middleware

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// checkFetchURL validates a JWKS or introspection URL: absolute, https
// unless insecureHTTP, no user info, no fragment.
func checkFetchURL(what, raw string, insecureHTTP bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("middleware: %s: %w", what, err)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && insecureHTTP:
	case u.Scheme == "http":
		return nil, fmt.Errorf("middleware: %s %q must use https (InsecureAllowHTTPKeyURLs allows http)", what, raw)
	default:
		return nil, fmt.Errorf("middleware: %s %q must be an absolute https URL", what, raw)
	}
	if u.Host == "" || u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("middleware: %s %q must be an absolute URL without user info or fragment", what, raw)
	}
	return u, nil
}

// fetchClient returns the HTTP client used for a JWKS or introspection
// endpoint: a copy of base (or of a new client, with a transport of its
// own) with no redirect to another host or from https to http, at most 3
// redirects, and response bodies capped at maxBody bytes. The callers bound
// each call with a context (FetchTimeout, Introspection.Timeout). When clampMin > 0 the Cache-Control
// max-age of responses is clamped into [clampMin, clampMax] (clampMax when
// absent), which bounds the JWKS refresh interval.
func fetchClient(base *http.Client, maxBody int64, clampMin, clampMax time.Duration) *http.Client {
	c := &http.Client{}
	if base != nil {
		*c = *base
	}
	lt := &limitTransport{next: c.Transport, maxBody: maxBody, clampMin: clampMin, clampMax: clampMax}
	if lt.next == nil {
		// A transport of its own, so that Close can close its idle
		// connections without touching anybody else's.
		lt.next = http.DefaultTransport
		if dt, ok := http.DefaultTransport.(*http.Transport); ok {
			lt.own = dt.Clone()
			lt.next = lt.own
		}
	}
	c.Transport = lt
	c.Jar = nil
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 3 {
			return errors.New("too many redirects")
		}
		first := via[0].URL
		if req.URL.Host != first.Host {
			return fmt.Errorf("redirect to another host (%s) refused", req.URL.Host)
		}
		if first.Scheme == "https" && req.URL.Scheme != "https" {
			return errors.New("redirect from https to http refused")
		}
		return nil
	}
	return c
}

type limitTransport struct {
	next               http.RoundTripper
	own                *http.Transport // next, when the transport is ours
	maxBody            int64
	clampMin, clampMax time.Duration
}

// CloseIdleConnections closes the idle connections of a transport of our
// own; a caller's transport is left alone.
func (t *limitTransport) CloseIdleConnections() {
	if t.own != nil {
		t.own.CloseIdleConnections()
	}
}

func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if res.ContentLength > t.maxBody {
		res.Body.Close()
		return nil, fmt.Errorf("response of %d bytes exceeds the %d-byte limit", res.ContentLength, t.maxBody)
	}
	res.Body = &limitedBody{rc: res.Body, left: t.maxBody}
	if t.clampMin > 0 {
		age := t.clampMax
		if v, ok := cacheControlMaxAge(res.Header.Get("Cache-Control")); ok {
			age = min(max(v, t.clampMin), t.clampMax)
		}
		res.Header.Del("Expires")
		res.Header.Set("Cache-Control", "max-age="+strconv.FormatInt(int64(age/time.Second), 10))
	}
	return res, nil
}

// maxAge reads the max-age directive of a Cache-Control value; no-store
// and no-cache count as 0.
func cacheControlMaxAge(cc string) (time.Duration, bool) {
	if cc == "" {
		return 0, false
	}
	for _, d := range strings.Split(cc, ",") {
		d = strings.ToLower(strings.TrimSpace(d))
		if d == "no-store" || d == "no-cache" {
			return 0, true
		}
		if v, ok := strings.CutPrefix(d, "max-age="); ok {
			n, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 64)
			if err != nil || n < 0 {
				return 0, false
			}
			if n > 1<<31 {
				n = 1 << 31
			}
			return time.Duration(n) * time.Second, true
		}
	}
	return 0, false
}

var errBodyTooLarge = errors.New("response body exceeds the size limit")

// limitedBody fails instead of truncating when a body is too large, so a
// cut JWKS or introspection answer is never mistaken for a whole one.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, errBodyTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return 0, errBodyTooLarge
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
