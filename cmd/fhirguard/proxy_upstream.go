package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// upstreamAuthEnv holds the Authorization value sent to the upstream when
// --upstream-authorization-file is not given.
const upstreamAuthEnv = "FHIRGUARD_UPSTREAM_AUTHORIZATION"

// upstreamAuthRecheck is how often the credential file is looked at again
// (a sidecar that renews the token rewrites it).
const upstreamAuthRecheck = 10 * time.Second

// upstreamAuth is the credential the proxy presents to the upstream: the
// client's own Authorization header never reaches it (its audience is the
// public base). The value comes from a file, read again when it changes
// (checked at most every upstreamAuthRecheck, on the request path), or from
// the environment.
type upstreamAuth struct {
	file string
	log  *slog.Logger
	now  func() time.Time

	value   atomic.Pointer[string]
	checked atomic.Int64 // Unix nanoseconds of the last look at the file

	mu      sync.Mutex // one reader of the file at a time
	modTime time.Time
	size    int64
}

// newUpstreamAuth returns the credential of file, or of value when file is
// empty; nil when both are empty. A missing, empty or malformed credential
// is an error at start.
func newUpstreamAuth(file, value string, log *slog.Logger) (*upstreamAuth, error) {
	u := &upstreamAuth{file: file, log: log, now: time.Now}
	switch {
	case file != "":
		if err := u.load(); err != nil {
			return nil, fmt.Errorf("--upstream-authorization-file: %w", err)
		}
	case value != "":
		v, err := checkAuthValue(value)
		if err != nil {
			return nil, fmt.Errorf("$%s: %w", upstreamAuthEnv, err)
		}
		u.value.Store(&v)
	default:
		return nil, nil
	}
	return u, nil
}

// checkAuthValue trims v and checks that it is one header value with a
// scheme and credentials ("Bearer …", "Basic …").
func checkAuthValue(v string) (string, error) {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return "", errors.New("empty: the Authorization value to send, such as \"Bearer <token>\"")
	case strings.ContainsFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }):
		return "", errors.New("not a valid header value (one line, no control characters)")
	case !strings.Contains(v, " "):
		return "", errors.New("no scheme: give the whole value, such as \"Bearer <token>\"")
	}
	return v, nil
}

// load reads the file when it changed since the last read.
func (u *upstreamAuth) load() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	fi, err := os.Stat(u.file)
	if err != nil {
		return err
	}
	if u.value.Load() != nil && fi.ModTime().Equal(u.modTime) && fi.Size() == u.size {
		return nil
	}
	b, err := os.ReadFile(u.file)
	if err != nil {
		return err
	}
	v, err := checkAuthValue(string(b))
	if err != nil {
		return err
	}
	u.value.Store(&v)
	u.modTime, u.size = fi.ModTime(), fi.Size()
	return nil
}

// header returns the value to send, looking at the file again when
// upstreamAuthRecheck has passed. A file that became unreadable or
// malformed keeps the last good value (and is logged).
func (u *upstreamAuth) header() string {
	if u.file != "" {
		now := u.now().UnixNano()
		if last := u.checked.Load(); now-last >= int64(upstreamAuthRecheck) && u.checked.CompareAndSwap(last, now) {
			if err := u.load(); err != nil {
				u.log.Warn("fhirguard proxy: --upstream-authorization-file could not be read again; the last credential is kept", slog.String("error", err.Error()))
			}
		}
	}
	return *u.value.Load()
}

// authTransport sets the upstream credential on every request to the
// upstream.
type authTransport struct {
	base http.RoundTripper
	auth *upstreamAuth
}

func (t *authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r2 := r.Clone(r.Context()) // a RoundTripper must not change its request
	r2.Header.Set("Authorization", t.auth.header())
	return t.base.RoundTrip(r2)
}
