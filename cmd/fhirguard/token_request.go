package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/fhirguard/fhirguard/middleware"
)

// requestPreview is what the Guard decides for one request (--request)
// with an accepted token, against a stub FHIR server that holds no data.
type requestPreview struct {
	// Request is the request as given ("GET /Observation/123").
	Request string `json:"request"`
	// Allowed says the request reached the FHIR server. Its response
	// would then be verified resource by resource.
	Allowed bool `json:"allowed"`
	// Status is the answer with the stub server (which holds no data: it
	// answers reads with 404 and searches with an empty Bundle), or the
	// refusal's status.
	Status int `json:"status"`
	// Error, ScopeNeeded and Reason explain a refusal: the RFC 6750
	// error code and scope attribute, when there are, and the guard's
	// reason.
	Error       string `json:"error"`
	ScopeNeeded string `json:"scopeNeeded"`
	Reason      string `json:"reason"`
	// Interaction, Context and Compartment describe the decision: the
	// classified request, the context of the grant used (patient, user,
	// system) and the compartment the request is held to ("Patient/123").
	Interaction string `json:"interaction"`
	Context     string `json:"context"`
	Compartment string `json:"compartment"`
	// Narrowed says the guard added parameters to the search; Forwarded
	// is the request as the FHIR server receives it.
	Narrowed  bool   `json:"narrowed"`
	Forwarded string `json:"forwarded"`
}

// parseRequestFlag reads --request: "METHOD path", the path relative to
// the FHIR base ("GET /Observation?code=1234-5" or "GET Patient/123").
func parseRequestFlag(s string) (method, path string, err error) {
	method, path, ok := strings.Cut(strings.TrimSpace(s), " ")
	path = strings.TrimSpace(path)
	if !ok || path == "" {
		return "", "", fmt.Errorf("--request %q: write it as \"GET /Observation/123\" (a method and a path below the FHIR base)", s)
	}
	method = strings.ToUpper(method)
	if method != http.MethodGet && method != http.MethodHead {
		return "", "", fmt.Errorf("--request %q: only GET and HEAD can be previewed (a request without body)", s)
	}
	if u, err := url.Parse(path); err != nil || u.IsAbs() || u.Host != "" || strings.HasPrefix(path, "//") || strings.ContainsAny(path, " #") {
		return "", "", fmt.Errorf("--request %q: %q is not a path below the FHIR base", s, path)
	}
	return method, "/" + strings.TrimPrefix(path, "/"), nil
}

// previewRequest runs the request of --request through a Guard with the
// checked configuration, in front of a stub FHIR server.
func previewRequest(ctx context.Context, tok string, env *checkEnv, o *checkOptions) *requestPreview {
	method, path, _ := parseRequestFlag(o.request)
	p := &requestPreview{Request: method + " " + path}
	var (
		decision *middleware.Decision
		refusal  error
	)
	g, err := middleware.New(middleware.Config{
		Authorize: middleware.AuthorizeConfig{
			BaseURL: o.baseURL,
			Logger:  env.logger,
			OnDecision: func(_ *http.Request, d *middleware.Decision, r error) {
				decision, refusal = d, r
			},
		},
		Auth: env.authConfig(nil),
	})
	if err != nil {
		p.Reason = "the guard refuses this configuration: " + err.Error()
		return p
	}
	defer g.Close()
	h := g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.Forwarded == "" {
			p.Forwarded = r.Method + " " + r.URL.RequestURI()
		}
		p.Allowed = true
		d, _ := middleware.DecisionFromContext(r.Context())
		if d != nil && strings.Contains(d.Interaction.Kind.String(), "search") {
			w.Header().Set("Content-Type", "application/fhir+json")
			_, _ = w.Write([]byte(`{"resourceType":"Bundle","type":"searchset","total":0}`))
			return
		}
		w.Header().Set("Content-Type", "application/fhir+json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found"}]}`))
	}))
	req, err := bearerRequest(ctx, method, strings.TrimSuffix(o.baseURL, "/")+path, tok)
	if err != nil {
		p.Reason = err.Error()
		return p
	}
	w := newRecorder()
	h.ServeHTTP(w, req)
	p.Status = w.status
	if decision != nil {
		p.Interaction = decision.Interaction.String()
		if decision.Context != 0 {
			p.Context = decision.Context.String()
		}
		if decision.CompartmentType != "" {
			p.Compartment = decision.CompartmentType + "/" + decision.CompartmentID
		}
		p.Narrowed = decision.Narrowed
	}
	switch {
	case p.Allowed && decision == nil && refusal == nil:
		p.Reason = "a public document: the guard serves it without a token"
	case p.Allowed:
		// The stub holds no data: what the guard then does with the
		// response (verification) says nothing about the token.
	default:
		params := challengeParams(w.header.Get("WWW-Authenticate"))
		p.Error, p.ScopeNeeded = params["error"], params["scope"]
		if refusal != nil {
			p.Reason = refusal.Error()
			if status, rest, ok := strings.Cut(p.Reason, ": "); ok && status == fmt.Sprint(w.status) {
				p.Reason = rest
			}
		} else {
			p.Reason = diagnostics(w.body.Bytes())
		}
		if w.status == http.StatusNotFound {
			p.Reason += " (the guard answers so for what lies outside the token's compartment or constraints, as for an absent resource)"
		}
	}
	return p
}

// challengeParams reads the auth-params of a Bearer challenge
// (error="insufficient_scope", scope="...").
func challengeParams(h string) map[string]string {
	out := map[string]string{}
	for _, m := range authParam.FindAllStringSubmatch(h, -1) {
		out[strings.ToLower(m[1])] = m[2]
	}
	return out
}

var authParam = regexp.MustCompile(`([A-Za-z_]+)="((?:[^"\\]|\\.)*)"`)

// diagnostics returns the text of an OperationOutcome body.
func diagnostics(body []byte) string {
	var oo struct {
		Issue []struct {
			Diagnostics string `json:"diagnostics"`
			Details     struct {
				Text string `json:"text"`
			} `json:"details"`
		} `json:"issue"`
	}
	if json.Unmarshal(body, &oo) != nil || len(oo.Issue) == 0 {
		return ""
	}
	if oo.Issue[0].Diagnostics != "" {
		return oo.Issue[0].Diagnostics
	}
	return oo.Issue[0].Details.Text
}
