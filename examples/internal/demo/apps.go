package demo

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/fhirguard/fhirguard/smarttest"
)

// The SMART app clients the embedded authorization server registers.
const (
	// AppClientID is the public app client (PKCE, no secret), registered
	// with -app-redirect-uris. The banner's patient token carries it too.
	AppClientID = "demo-app"
	// ConfidentialAppClientID is the confidential app client
	// (client_secret_basic or client_secret_post), registered with the same
	// redirect URIs when -app-confidential-secret is given.
	ConfidentialAppClientID = "demo-confidential-app"
	// StandaloneScopes is the scope a patient app asks for in the banner's
	// standalone launch example.
	StandaloneScopes = "launch/patient openid fhirUser patient/*.rs offline_access"
)

// maxURI bounds the redirect URIs and the launch URL.
const maxURI = 2048

// parseRedirectURIs reads the -app-redirect-uris list: comma-separated,
// white space around items and empty items dropped, duplicates removed.
// Each is an absolute https URL, or http on a loopback host (127.0.0.0/8,
// [::1], localhost), without user info or fragment. The URIs are kept as
// written: the authorization server matches them exactly.
func parseRedirectURIs(v string) ([]string, error) {
	var out []string
	for _, item := range splitList(v) {
		if err := checkAppURL(item); err != nil {
			return nil, err
		}
		if !slices.Contains(out, item) {
			out = append(out, item)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("at least one redirect URI is needed")
	}
	return out, nil
}

// checkAppURL checks a redirect URI or launch URL of a browser app.
func checkAppURL(raw string) error {
	if len(raw) > maxURI {
		return fmt.Errorf("%.40q...: longer than %d bytes", raw, maxURI)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a URL", raw)
	case (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.Hostname() == "":
		return fmt.Errorf("%q must be an absolute http(s) URL", raw)
	case u.User != nil:
		return fmt.Errorf("%q may not carry user info", raw)
	case strings.Contains(raw, "#"):
		return fmt.Errorf("%q may not carry a fragment", raw)
	case strings.ContainsAny(raw, " \t\r\n,"):
		return fmt.Errorf("%q may not contain white space or commas", raw)
	case originOf(raw) == "":
		return fmt.Errorf("%q has no valid origin", raw)
	case u.Scheme == "http" && !isLoopbackHost(u):
		return fmt.Errorf("%q: plain http is allowed on a loopback host only (127.0.0.1, [::1], localhost); use https", raw)
	}
	return nil
}

// defaultLaunchURL is launch.html next to a redirect URI (in its directory).
func defaultLaunchURL(redirect string) string {
	u, err := url.Parse(redirect)
	if err != nil {
		return ""
	}
	return u.ResolveReference(&url.URL{Path: "launch.html"}).String()
}

// checkLaunchURL checks the app's launch URL: an app URL (see checkAppURL)
// at the origin of one of the redirect URIs (the embedded server's launch
// simulator redirects nowhere else), without iss or launch parameters.
func checkLaunchURL(raw string, redirects []string) error {
	if err := checkAppURL(raw); err != nil {
		return err
	}
	u, _ := url.Parse(raw)
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return fmt.Errorf("%q has a malformed query", raw)
	}
	if q.Has("iss") || q.Has("launch") {
		return fmt.Errorf("%q may not carry iss or launch parameters (the launch adds them)", raw)
	}
	o := originOf(raw)
	for _, r := range redirects {
		if originOf(r) == o {
			return nil
		}
	}
	return fmt.Errorf("the origin %s of %q is not the origin of any -app-redirect-uris URI", o, raw)
}

// parseOrigins reads the -cors-origins list: "*" or origins
// ("https://app.example.org", "http://127.0.0.1:9000"), normalized (lower
// case, default port dropped), duplicates removed.
func parseOrigins(v string) ([]string, error) {
	var out []string
	for _, item := range splitList(v) {
		o := item
		if item != "*" {
			u, err := url.Parse(item)
			if err != nil || u.Path != "" || u.RawQuery != "" || u.ForceQuery || strings.Contains(item, "#") {
				return nil, fmt.Errorf("%q must be \"*\" or an origin, scheme://host[:port] without a path", item)
			}
			if o = originOf(item); o == "" {
				return nil, fmt.Errorf("%q must be \"*\" or an origin, scheme://host[:port] (http or https)", item)
			}
		}
		if !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out, nil
}

// originOf returns the origin of an absolute http(s) URL as browsers send
// it in the Origin header (lower-case scheme and host, default port
// dropped), or "" for other URLs and URLs with user info.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.Opaque != "" || u.User != nil {
		return ""
	}
	host := strings.ToLower(u.Host)
	if strings.Contains(u.Hostname(), ":") != strings.HasPrefix(host, "[") {
		return ""
	}
	if p := u.Port(); (u.Scheme == "http" && p == "80") || (u.Scheme == "https" && p == "443") {
		host = strings.TrimSuffix(host, ":"+p)
	}
	return u.Scheme + "://" + host
}

// appOrigins returns the origins of the redirect URIs, in order, without
// duplicates.
func appOrigins(redirects []string) []string {
	var out []string
	for _, r := range redirects {
		if o := originOf(r); o != "" && !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}

// corsOrigins is what the FHIR API allows: -cors-origins and, with the
// embedded server, the origins of the app redirect URIs; just "*" when
// -cors-origins has it.
func (c Config) corsOrigins() []string {
	if slices.Contains(c.CORSOrigins, "*") {
		return []string{"*"}
	}
	out := slices.Clone(c.CORSOrigins)
	if c.Issuer == "" {
		for _, o := range appOrigins(c.AppRedirectURIs) {
			if !slices.Contains(out, o) {
				out = append(out, o)
			}
		}
	}
	return out
}

// registerApps registers the app clients at the embedded server and
// returns the banner's EHR launch URL.
func registerApps(as *smarttest.Server, cfg Config) (string, error) {
	if err := as.RegisterClient(smarttest.Client{ID: AppClientID, RedirectURIs: cfg.AppRedirectURIs}); err != nil {
		return "", err
	}
	if cfg.AppConfidentialSecret != "" {
		if err := as.RegisterClient(smarttest.Client{ID: ConfidentialAppClientID, Secret: cfg.AppConfidentialSecret,
			RedirectURIs: cfg.AppRedirectURIs}); err != nil {
			return "", err
		}
	}
	return as.EHRLaunchURL(cfg.AppLaunchURL, cfg.Patient, ""), nil
}
