package smarttest

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/fhirguard/fhirguard/scope"
)

// TokenResponse is a token endpoint response (SMART App Launch 2.2 §"Obtain
// access token"), as the client-side helpers LaunchApp, Refresh and
// BackendToken return it. Each field is the response member named in its
// JSON tag.
type TokenResponse struct {
	AccessToken       string `json:"access_token"`
	TokenType         string `json:"token_type"`
	ExpiresIn         int    `json:"expires_in"`
	Scope             string `json:"scope"`
	RefreshToken      string `json:"refresh_token,omitempty"`
	IDToken           string `json:"id_token,omitempty"`
	Patient           string `json:"patient,omitempty"`
	Encounter         string `json:"encounter,omitempty"`
	FHIRContext       []any  `json:"fhirContext,omitempty"` // items as decoded from JSON
	NeedPatientBanner *bool  `json:"need_patient_banner,omitempty"`
	SMARTStyleURL     string `json:"smart_style_url,omitempty"`
	Intent            string `json:"intent,omitempty"`
	Tenant            string `json:"tenant,omitempty"`
}

// ResponseError is an error answer of the authorization or token endpoint
// to one of the client-side helpers: an RFC 6749 error code, its
// description, and the HTTP status (302 for errors redirected from the
// authorization endpoint).
type ResponseError struct {
	Status      int    // HTTP status
	Code        string // RFC 6749 error code, e.g. "invalid_grant"
	Description string // error_description
}

// Error formats the code, status and description.
func (e *ResponseError) Error() string {
	return fmt.Sprintf("smarttest: %s (HTTP %d): %s", e.Code, e.Status, e.Description)
}

// AppLaunch describes an app for LaunchApp.
type AppLaunch struct {
	// ClientID is the registered client. Required.
	ClientID string
	// ClientSecret authenticates a confidential client (client_secret_basic).
	ClientSecret string
	// RedirectURI defaults to the client's first registered redirect URI.
	RedirectURI string
	// Scope is the requested scope string.
	Scope string
	// Launch is the launch value of an EHR launch (from RegisterLaunch or
	// the launch simulator); empty for a standalone launch. With a Launch,
	// the scope "launch" is added when Scope holds no launch scope at all
	// (neither launch nor launch/...), as npm fhirclient does.
	Launch string
	// Audience is the aud parameter. Default the FHIR base.
	Audience string
	// HTTPClient makes the requests. Default a client that does not follow
	// redirects; a given client's redirect policy is overridden for the
	// authorization request.
	HTTPClient *http.Client
}

// LaunchApp runs the SMART App Launch authorization code flow against the
// server's own endpoints over HTTP, as an app does: an authorization request
// with a fresh PKCE S256 verifier and state, the check of the returned
// state, and the code redemption. It needs automatic approval (Config.Consent
// false) and a reachable server: with Config.Issuer set, the server it is
// mounted on must be serving. Refusals come back as *ResponseError.
func (s *Server) LaunchApp(ctx context.Context, a AppLaunch) (*TokenResponse, error) {
	if a.ClientID == "" {
		return nil, fmt.Errorf("%w: AppLaunch needs a ClientID", errConfig)
	}
	if a.RedirectURI == "" {
		if c := s.client(a.ClientID); c != nil && len(c.RedirectURIs) > 0 {
			a.RedirectURI = c.RedirectURIs[0]
		}
	}
	if a.Audience == "" {
		a.Audience = s.fhirBase
	}
	if a.Launch != "" && len(scope.ParseSet(a.Scope).Launches()) == 0 {
		a.Scope = strings.TrimSpace("launch " + a.Scope)
	}
	verifier := randomString(32)
	state := randomString(12)
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {a.ClientID},
		"redirect_uri":          {a.RedirectURI},
		"scope":                 {a.Scope},
		"state":                 {state},
		"aud":                   {a.Audience},
		"code_challenge":        {S256Challenge(verifier)},
		"code_challenge_method": {"S256"},
	}
	if a.Launch != "" {
		q.Set("launch", a.Launch)
	}
	hc := http.Client{}
	if a.HTTPClient != nil {
		hc = *a.HTTPClient
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.endpoint(pathAuthorize)+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return nil, &ResponseError{Status: resp.StatusCode, Code: "invalid_request", Description: strings.TrimSpace(string(body))}
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return nil, err
	}
	back := loc.Query()
	if e := back.Get("error"); e != "" {
		return nil, &ResponseError{Status: resp.StatusCode, Code: e, Description: back.Get("error_description")}
	}
	if back.Get("state") != state {
		return nil, fmt.Errorf("smarttest: state %q came back as %q", state, back.Get("state"))
	}
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {back.Get("code")},
		"redirect_uri":  {a.RedirectURI},
		"code_verifier": {verifier},
	}
	return s.postToken(ctx, a.HTTPClient, form, a.ClientID, a.ClientSecret)
}

// Refresh redeems a refresh token at the token endpoint over HTTP. scope,
// when not empty, narrows the new access token. The response carries the
// rotated refresh token. With a clientSecret the client authenticates with
// client_secret_basic; without one, clientID is sent as client_id, and an
// empty clientID sends none, as SMART's refresh request for a public client
// does (the refresh token identifies the client).
func (s *Server) Refresh(ctx context.Context, clientID, clientSecret, refreshToken, scope string) (*TokenResponse, error) {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	if scope != "" {
		form.Set("scope", scope)
	}
	return s.postToken(ctx, nil, form, clientID, clientSecret)
}

// BackendToken runs the SMART Backend Services client_credentials grant over
// HTTP with a fresh client assertion signed by key (RS384 for RSA, ES384 for
// ECDSA P-384).
func (s *Server) BackendToken(ctx context.Context, clientID string, key crypto.Signer, keyID, scope string) (*TokenResponse, error) {
	assertion, err := SignClientAssertion(Assertion{ClientID: clientID, Audience: s.endpoint(pathToken), Key: key, KeyID: keyID, IssuedAt: s.cfg.Now()})
	if err != nil {
		return nil, err
	}
	form := url.Values{
		"grant_type":            {"client_credentials"},
		"scope":                 {scope},
		"client_assertion_type": {AssertionType},
		"client_assertion":      {assertion},
	}
	return s.postToken(ctx, nil, form, "", "")
}

func (s *Server) postToken(ctx context.Context, hc *http.Client, form url.Values, clientID, secret string) (*TokenResponse, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	if clientID != "" && secret == "" {
		form.Set("client_id", clientID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint(pathToken), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret != "" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(body, &e)
		return nil, &ResponseError{Status: resp.StatusCode, Code: e.Error, Description: e.Description}
	}
	var tr TokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return nil, fmt.Errorf("smarttest: token response: %w", err)
	}
	return &tr, nil
}
