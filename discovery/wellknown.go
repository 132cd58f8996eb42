package discovery

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// WellKnownConfig configures NewWellKnown.
type WellKnownConfig struct {
	// BaseURL is the FHIR base URL, absolute ("https://h/apis/fhir").
	// Required.
	BaseURL string
	// SMART serves the SMART configuration. Required.
	SMART http.Handler
	// ProtectedResource serves the RFC 9728 metadata; nil leaves it out.
	ProtectedResource http.Handler
}

// WellKnown routes the well-known documents of one FHIR base, matching
// the full request path (mount it at the root of the server, or wrap the
// server's handler with Wrap):
//
//   - <base path>/.well-known/smart-configuration → the SMART handler;
//   - <base path>/.well-known/oauth-protected-resource and the RFC 9728
//     location /.well-known/oauth-protected-resource<base path> → the
//     protected-resource handler, when there is one.
type WellKnown struct {
	routes map[string]http.Handler
}

// NewWellKnown returns the router for cfg.
func NewWellKnown(cfg WellKnownConfig) (*WellKnown, error) {
	if cfg.SMART == nil {
		return nil, errors.New("discovery: WellKnownConfig.SMART is required")
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return nil, fmt.Errorf("discovery: WellKnownConfig.BaseURL %q is not an absolute URL", cfg.BaseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("discovery: WellKnownConfig.BaseURL %q has a query or fragment", cfg.BaseURL)
	}
	base := strings.TrimSuffix(u.Path, "/")
	w := &WellKnown{routes: map[string]http.Handler{
		base + SMARTConfigurationPath: cfg.SMART,
	}}
	if cfg.ProtectedResource != nil {
		w.routes[base+ProtectedResourcePath] = cfg.ProtectedResource
		w.routes[ProtectedResourcePath+base] = cfg.ProtectedResource
	}
	return w, nil
}

// Paths returns the request paths served, in no particular order.
func (w *WellKnown) Paths() []string {
	out := make([]string, 0, len(w.routes))
	for p := range w.routes {
		out = append(out, p)
	}
	return out
}

// ServeHTTP serves the well-known documents and answers 404 to any other
// path.
func (w *WellKnown) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if h, ok := w.routes[r.URL.Path]; ok {
		h.ServeHTTP(rw, r)
		return
	}
	http.NotFound(rw, r)
}

// Wrap returns a handler that serves the well-known documents and passes
// every other request to next. The documents are public: no token is
// asked for, so put Wrap outside authentication.
func (w *WellKnown) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if h, ok := w.routes[r.URL.Path]; ok {
			h.ServeHTTP(rw, r)
			return
		}
		next.ServeHTTP(rw, r)
	})
}
