// Package wellknown holds the well-known paths of SMART on FHIR discovery
// and the RFC 9728 locations of a FHIR endpoint's protected-resource
// metadata, shared by package discovery and package middleware.
package wellknown

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

const (
	// SMARTConfigurationPath is appended to a FHIR base URL to locate its
	// SMART configuration document.
	SMARTConfigurationPath = "/.well-known/smart-configuration"
	// ProtectedResourcePath is the RFC 9728 well-known path.
	ProtectedResourcePath = "/.well-known/oauth-protected-resource"
	// OpenIDConfigurationPath is appended to an issuer URL to locate its
	// OpenID Connect discovery document.
	OpenIDConfigurationPath = "/.well-known/openid-configuration"
)

// ErrRelativeURL is wrapped when a URL is not absolute.
var ErrRelativeURL = errors.New("URL is not absolute")

// ProtectedResourceMetadataURL returns the RFC 9728 location of the
// metadata of resource: the well-known path inserted between the host and
// the path ("https://h/fhir" → "https://h/.well-known/oauth-protected-resource/fhir").
func ProtectedResourceMetadataURL(resource string) (string, error) {
	u, err := url.Parse(resource)
	if err != nil {
		return "", err
	}
	if !u.IsAbs() || u.Host == "" {
		return "", fmt.Errorf("%w: %q", ErrRelativeURL, resource)
	}
	p := strings.TrimSuffix(u.EscapedPath(), "/")
	return (&url.URL{Scheme: u.Scheme, Host: u.Host}).String() + ProtectedResourcePath + p, nil
}

// ProtectedResourcePaths returns the request paths at which clients look
// for the RFC 9728 metadata of the FHIR endpoint baseURL: first the RFC 9728
// location, the well-known path inserted before the base path
// ("https://h/fhir" → "/.well-known/oauth-protected-resource/fhir"), then
// the base path followed by the well-known path
// ("/fhir/.well-known/oauth-protected-resource"), as SMART appends its own
// well-known document. For a base at the host root both are
// "/.well-known/oauth-protected-resource", returned once. Paths are in
// their escaped form (url.URL.EscapedPath). baseURL must be absolute,
// without query or fragment.
func ProtectedResourcePaths(baseURL string) ([]string, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, err
	}
	if !u.IsAbs() || u.Host == "" {
		return nil, fmt.Errorf("%w: %q", ErrRelativeURL, baseURL)
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, fmt.Errorf("invalid URL: %q has a query or fragment", baseURL)
	}
	base := strings.TrimSuffix(u.EscapedPath(), "/")
	if base == "" {
		return []string{ProtectedResourcePath}, nil
	}
	return []string{ProtectedResourcePath + base, base + ProtectedResourcePath}, nil
}

// Mux is the routing method of http.ServeMux and of chi.Router (and most
// other routers): register a handler for a pattern.
type Mux interface {
	Handle(pattern string, handler http.Handler)
}

// MountProtectedResource registers h, the RFC 9728 metadata of the FHIR
// endpoint baseURL, on mux at every path of ProtectedResourcePaths, and
// returns them. The RFC 9728 location is outside the FHIR base, so a
// router that sends only the base to the FHIR stack never serves it
// otherwise.
//
// The paths become routing patterns as they are: a base path holding
// escapes or characters routers treat specially ("{", "}", "*", spaces) is
// refused, and nothing is registered. The router's own rules apply too:
// http.ServeMux panics when a pattern is registered twice.
func MountProtectedResource(mux Mux, baseURL string, h http.Handler) ([]string, error) {
	if mux == nil || h == nil {
		return nil, errors.New("MountProtectedResource: nil mux or handler")
	}
	paths, err := ProtectedResourcePaths(baseURL)
	if err != nil {
		return nil, err
	}
	for _, p := range paths {
		if strings.ContainsAny(p, "%{}* \t") {
			return nil, fmt.Errorf("path %q cannot be used as a routing pattern", p)
		}
	}
	for _, p := range paths {
		mux.Handle(p, h)
	}
	return paths, nil
}
