package smarttest

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fhirguard/fhirguard/scope"
)

const consentLifetime = 10 * time.Minute

// authRequest is an approved (or awaiting consent) authorization request.
type authRequest struct {
	client      string
	redirectURI string
	state       string
	challenge   string
	nonce       string
	scopes      []string // granted
	user        string   // fhirUser
	ctx         launchClaims
	pickPatient bool      // the consent page lets the user pick the patient
	expires     time.Time // consent page requests only
}

// launchClaims is the SMART launch context carried by a grant.
type launchClaims struct {
	Patient           string
	Encounter         string
	FHIRContext       []any
	NeedPatientBanner *bool
	SMARTStyleURL     string
	Intent            string
	Tenant            string
}

// authCode is an issued authorization code.
type authCode struct {
	req     *authRequest
	expires time.Time
	used    bool
	grantID string
}

// authError is refused authorization request that cannot be redirected.
func authError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte("smarttest: authorization request refused: " + msg + "\n"))
}

func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	var q url.Values
	var err error
	if r.Method == http.MethodPost {
		q, err = readForm(w, r)
	} else {
		q, err = parseParams(r.URL.RawQuery)
	}
	if err != nil {
		authError(w, http.StatusBadRequest, "malformed or repeated parameters")
		return
	}
	req, redirErr, fatal := s.checkAuthorize(q)
	if fatal != "" {
		authError(w, http.StatusBadRequest, fatal)
		return
	}
	if redirErr != nil {
		redirectWith(w, r, req.redirectURI, url.Values{"error": {redirErr.code}, "error_description": {redirErr.desc}}, req.state)
		return
	}
	if s.cfg.Consent {
		s.showConsent(w, req)
		return
	}
	s.approve(w, r, req)
}

// checkAuthorize validates an authorization request. fatal is set when the
// client or redirect URI cannot be trusted (no redirect); redirErr when the
// error goes back to the client's redirect URI.
func (s *Server) checkAuthorize(q url.Values) (req *authRequest, redirErr *oauthError, fatal string) {
	c := s.client(q.Get("client_id"))
	if c == nil {
		return nil, nil, "unknown client_id"
	}
	redirect := q.Get("redirect_uri")
	ok := false
	for _, u := range c.RedirectURIs {
		if u == redirect {
			ok = true
			break
		}
	}
	if !ok {
		return nil, nil, "redirect_uri is not registered for this client"
	}
	req = &authRequest{client: c.ID, redirectURI: redirect, state: q.Get("state"), nonce: q.Get("nonce")}
	bad := func(code, desc string) (*authRequest, *oauthError, string) {
		return req, &oauthError{status: http.StatusFound, code: code, desc: desc}, ""
	}
	if rt := q.Get("response_type"); rt != "code" {
		return bad("unsupported_response_type", "response_type must be code")
	}
	if req.state == "" {
		return bad("invalid_request", "state is required")
	}
	if aud := q.Get("aud"); aud == "" || strings.TrimSuffix(aud, "/") != s.fhirBase {
		return bad("invalid_request", "aud must be the FHIR base URL")
	}
	switch q.Get("code_challenge_method") {
	case "S256":
	case "":
		return bad("invalid_request", "PKCE is required: code_challenge_method must be S256")
	default:
		return bad("invalid_request", "code_challenge_method must be S256")
	}
	req.challenge = q.Get("code_challenge")
	if !validChallenge(req.challenge) {
		return bad("invalid_request", "code_challenge must be a base64url SHA-256 (43 characters)")
	}
	if len(req.nonce) > 512 {
		return bad("invalid_request", "nonce too long")
	}
	requested := scope.ParseSet(q.Get("scope"))
	req.scopes = s.grantScopes(c, q.Get("scope"), false)
	if len(req.scopes) == 0 {
		return bad("invalid_scope", "no requested scope can be granted")
	}
	granted := scope.ParseSet(strings.Join(req.scopes, " "))
	req.user = s.cfg.User
	if lv := q.Get("launch"); lv != "" {
		// EHR launch. SMART has the app ask for the scope launch; npm
		// fhirclient sends only launch/patient when the app asks for it, so
		// any launch scope will do.
		if len(requested.Launches()) == 0 {
			return bad("invalid_scope", "a launch parameter needs the launch scope")
		}
		lc, why := s.takeLaunch(lv, redirect)
		if lc == nil {
			return bad("invalid_request", why)
		}
		banner := lc.NeedPatientBanner
		req.ctx = launchClaims{
			Patient:           lc.Patient,
			Encounter:         lc.Encounter,
			FHIRContext:       lc.FHIRContext,
			NeedPatientBanner: &banner,
			SMARTStyleURL:     lc.SMARTStyleURL,
			Intent:            lc.Intent,
			Tenant:            lc.Tenant,
		}
		if lc.User != "" {
			req.user = lc.User
		}
	} else {
		// Standalone launch.
		if requested.LaunchContext("") {
			return bad("invalid_request", "the launch scope needs a launch parameter")
		}
		if granted.LaunchContext("patient") {
			if s.cfg.Patient == "" && !s.cfg.Consent {
				return bad("invalid_request", "launch/patient requested but no patient is configured")
			}
			req.ctx.Patient = s.cfg.Patient
			req.pickPatient = s.cfg.Consent
		}
		if granted.LaunchContext("encounter") {
			req.ctx.Encounter = s.cfg.Encounter
		}
	}
	return req, nil, ""
}

// validChallenge reports whether c is a base64url S256 challenge.
func validChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	for i := 0; i < len(c); i++ {
		if !isUnreservedB64(c[i]) {
			return false
		}
	}
	return true
}

func isUnreservedB64(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// grantScopes filters a requested scope string down to what the client may
// have. Backend clients get system/ resource scopes only; app launches never
// get system/ scopes. Scopes that do not parse are dropped. The granted
// scopes keep their requested spelling.
func (s *Server) grantScopes(c *registeredClient, requested string, backend bool) []string {
	var out []string
	seen := map[string]bool{}
	for _, tok := range strings.Fields(requested) {
		if seen[tok] {
			continue
		}
		seen[tok] = true
		sc, err := scope.Parse(tok)
		if err != nil {
			continue
		}
		isSystem := sc.Kind == scope.KindResource && sc.Context == scope.System
		if backend != isSystem {
			continue
		}
		if len(c.allowed) > 0 && !covered(c.allowed, sc) {
			continue
		}
		out = append(out, tok)
	}
	return out
}

func covered(allowed []scope.Scope, sc scope.Scope) bool {
	for _, a := range allowed {
		if a.Kind != sc.Kind {
			continue
		}
		if sc.Kind != scope.KindResource {
			if a.String() == sc.String() {
				return true
			}
			continue
		}
		if a.Context != sc.Context || !(a.Wildcard() || a.ResourceType == sc.ResourceType) {
			continue
		}
		if sc.Permissions&^a.Permissions != 0 {
			continue
		}
		if len(a.Constraints) == 0 || a.Constraints.String() == sc.Constraints.String() {
			return true
		}
	}
	return false
}

// approve issues a code and redirects back to the client.
func (s *Server) approve(w http.ResponseWriter, r *http.Request, req *authRequest) {
	code := randomString(32)
	s.mu.Lock()
	s.sweepLocked()
	s.codes[code] = &authCode{req: req, expires: s.cfg.Now().Add(codeLifetime)}
	s.mu.Unlock()
	redirectWith(w, r, req.redirectURI, url.Values{"code": {code}}, req.state)
}

func redirectWith(w http.ResponseWriter, r *http.Request, redirectURI string, params url.Values, state string) {
	u, err := url.Parse(redirectURI)
	if err != nil {
		authError(w, http.StatusBadRequest, "bad redirect_uri")
		return
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	if state != "" {
		q.Set("state", state)
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusFound)
}

var consentPage = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>smarttest: authorize {{.Client}}</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 2em auto">
<p><strong>smarttest</strong> is a test authorization server. Not for production.</p>
<h1>Authorize {{.Client}}?</h1>
<p>Signed in as <code>{{.User}}</code>{{if and .Patient (not .PickPatient)}}, patient <code>{{.Patient}}</code>{{end}}.</p>
<p>The application asks for:</p>
<ul>{{range .Scopes}}<li><code>{{.}}</code></li>{{end}}</ul>
<form method="post" action="{{.Action}}">
<input type="hidden" name="request" value="{{.Request}}">
{{if .PickPatient}}<p><label>Patient id: <input name="patient" value="{{.Patient}}" required maxlength="64"></label></p>
{{end}}<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>
</body></html>
`))

func (s *Server) showConsent(w http.ResponseWriter, req *authRequest) {
	id := randomString(24)
	req.expires = s.cfg.Now().Add(consentLifetime)
	s.mu.Lock()
	s.sweepLocked()
	s.pending[id] = req
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' "+originOf(req.redirectURI))
	_ = consentPage.Execute(w, map[string]any{
		"Client":      req.client,
		"User":        req.user,
		"Patient":     req.ctx.Patient,
		"PickPatient": req.pickPatient,
		"Scopes":      req.scopes,
		"Action":      s.endpoint(pathConsent),
		"Request":     id,
	})
}

// originOf returns the origin of an absolute http(s) URL as browsers
// serialize it in the Origin header (RFC 6454 §6.2: lower-case scheme and
// host, default port omitted), or "" for other URLs and URLs with user
// info.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.Opaque != "" || u.User != nil {
		return ""
	}
	host := strings.ToLower(u.Host)
	if strings.Contains(u.Hostname(), ":") != strings.HasPrefix(host, "[") {
		return "" // an IPv6 address needs brackets, and only it may have them
	}
	if p := u.Port(); (u.Scheme == "http" && p == "80") || (u.Scheme == "https" && p == "443") {
		host = strings.TrimSuffix(host, ":"+p)
	}
	return u.Scheme + "://" + host
}

// parseOrigin reads an origin ("https://app.example.org",
// "http://127.0.0.1:9000"): an http(s) URL with nothing after the
// authority. It returns the origin's serialization.
func parseOrigin(s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || u.Path != "" || u.RawQuery != "" || u.ForceQuery || strings.Contains(s, "#") {
		return "", false
	}
	o := originOf(s)
	return o, o != ""
}

func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(w, r)
	if err != nil {
		authError(w, http.StatusBadRequest, "malformed consent form")
		return
	}
	id := form.Get("request")
	s.mu.Lock()
	req := s.pending[id]
	delete(s.pending, id)
	s.mu.Unlock()
	if req == nil || s.cfg.Now().After(req.expires) {
		authError(w, http.StatusBadRequest, "unknown or expired consent request")
		return
	}
	switch form.Get("decision") {
	case "approve":
		if req.pickPatient && (form.Has("patient") || req.ctx.Patient == "") {
			p := form.Get("patient")
			if !validID(p) {
				redirectWith(w, r, req.redirectURI, url.Values{"error": {"invalid_request"}, "error_description": {"the picked patient is not a FHIR id"}}, req.state)
				return
			}
			req.ctx.Patient = p
		}
		s.approve(w, r, req)
	default:
		redirectWith(w, r, req.redirectURI, url.Values{"error": {"access_denied"}, "error_description": {"the user denied the request"}}, req.state)
	}
}
