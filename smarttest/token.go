package smarttest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
	"time"
)

// grant ties together everything issued from one authorization, so that a
// reused code or refresh token can revoke all of it.
type grant struct {
	revoked bool
	tokens  []string // keys into Server.tokens
	refresh []string // keys into Server.refresh
}

// issuedToken is an access token the server issued or minted.
type issuedToken struct {
	claims   map[string]any
	clientID string
	expires  time.Time // zero: no exp claim
	revoked  bool
	grantID  string
}

// refreshToken is an issued refresh token.
type refreshToken struct {
	req     *authRequest // client, scopes, user and context of the grant
	grantID string
	expires time.Time
	issued  time.Time
	used    bool
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(w, r)
	if err != nil {
		writeOAuthError(w, err)
		return
	}
	var c *registeredClient
	var method authMethod
	if form.Get("grant_type") == "refresh_token" && !presentsClient(r, form) {
		// SMART App Launch "Refresh access token": a public client sends
		// grant_type, refresh_token and scope only; the refresh token
		// names the client.
		c, err = s.refreshTokenClient(form.Get("refresh_token"))
	} else {
		c, method, err = s.authenticateClient(r, form)
	}
	if err != nil {
		writeOAuthError(w, err)
		return
	}
	var resp map[string]any
	switch gt := form.Get("grant_type"); gt {
	case "authorization_code":
		resp, err = s.redeemCode(c, form.Get("code"), form.Get("redirect_uri"), form.Get("code_verifier"))
	case "refresh_token":
		resp, err = s.redeemRefresh(c, form.Get("refresh_token"), form.Get("scope"), form.Has("scope"))
	case "client_credentials":
		if method != authPrivKey {
			err = errf(http.StatusBadRequest, "unauthorized_client", "client_credentials requires private_key_jwt client authentication")
			break
		}
		resp, err = s.clientCredentials(c, form.Get("scope"))
	case "":
		err = errf(http.StatusBadRequest, "invalid_request", "grant_type is required")
	default:
		err = errf(http.StatusBadRequest, "unsupported_grant_type", "grant_type %q is not supported", gt)
	}
	if err != nil {
		writeOAuthError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// presentsClient reports whether a token request identifies or
// authenticates its client in any way: a client_id, a secret, an assertion
// or an Authorization header.
func presentsClient(r *http.Request, form map[string][]string) bool {
	for _, k := range []string{"client_id", "client_secret", "client_assertion", "client_assertion_type"} {
		if _, ok := form[k]; ok {
			return true
		}
	}
	return r.Header.Get("Authorization") != ""
}

// refreshTokenClient returns the client a refresh token was issued to, for
// a refresh request that names no client. Only a public client may refresh
// that way: a confidential client's refresh token needs the client's
// authentication (invalid_client). An unknown refresh token is
// invalid_grant, as it would be with a client.
func (s *Server) refreshTokenClient(value string) (*registeredClient, error) {
	if value == "" {
		return nil, errf(http.StatusBadRequest, "invalid_request", "refresh_token is required")
	}
	s.mu.Lock()
	rt := s.refresh[value]
	var id string
	if rt != nil {
		id = rt.req.client
	}
	c := s.clients[id]
	s.mu.Unlock()
	switch {
	case rt == nil || c == nil:
		return nil, errf(http.StatusBadRequest, "invalid_grant", "unknown refresh token")
	case c.Secret != "" || len(c.keys) > 0:
		return nil, errf(http.StatusUnauthorized, "invalid_client", "the refresh token belongs to a confidential client, which must authenticate")
	}
	return c, nil
}

// validVerifier reports whether v is a PKCE code verifier (RFC 7636 §4.1).
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !isUnreservedB64(c) && c != '.' && c != '~' {
			return false
		}
	}
	return true
}

// S256Challenge returns the PKCE S256 code challenge of a code verifier.
func S256Challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (s *Server) redeemCode(c *registeredClient, code, redirectURI, verifier string) (map[string]any, error) {
	invalid := func(desc string) error { return errf(http.StatusBadRequest, "invalid_grant", "%s", desc) }
	if code == "" {
		return nil, errf(http.StatusBadRequest, "invalid_request", "code is required")
	}
	now := s.cfg.Now()
	s.mu.Lock()
	ac := s.codes[code]
	switch {
	case ac == nil:
		s.mu.Unlock()
		return nil, invalid("unknown authorization code")
	case ac.used:
		// RFC 6749 §4.1.2: revoke what the code gave.
		s.revokeGrantLocked(ac.grantID)
		s.mu.Unlock()
		return nil, invalid("authorization code already used")
	case ac.req.client != c.ID:
		s.mu.Unlock()
		return nil, invalid("authorization code was issued to another client")
	case !now.Before(ac.expires):
		s.mu.Unlock()
		return nil, invalid("authorization code expired")
	case ac.req.redirectURI != redirectURI:
		s.mu.Unlock()
		return nil, invalid("redirect_uri does not match the authorization request")
	case !validVerifier(verifier):
		s.mu.Unlock()
		return nil, invalid("code_verifier missing or malformed")
	case subtle.ConstantTimeCompare([]byte(S256Challenge(verifier)), []byte(ac.req.challenge)) != 1:
		s.mu.Unlock()
		return nil, invalid("code_verifier does not match the code_challenge")
	}
	ac.used = true
	ac.grantID = randomString(12)
	s.grants[ac.grantID] = &grant{}
	s.mu.Unlock()
	return s.issueForGrant(ac.req, ac.grantID, ac.req.scopes, true)
}

// issueForGrant issues an access token, and a refresh token and id_token
// when the scopes ask for them.
func (s *Server) issueForGrant(req *authRequest, grantID string, scopes []string, withIDToken bool) (map[string]any, error) {
	now := s.cfg.Now()
	set := scopeSet(scopes)
	spec := TokenOptions{
		ClientID:          req.client,
		Subject:           req.user,
		Scopes:            strings.Join(scopes, " "),
		Patient:           req.ctx.Patient,
		Encounter:         req.ctx.Encounter,
		FHIRUser:          req.user,
		FHIRContext:       req.ctx.FHIRContext,
		NeedPatientBanner: req.ctx.NeedPatientBanner,
		SMARTStyleURL:     req.ctx.SMARTStyleURL,
		Intent:            req.ctx.Intent,
		Tenant:            req.ctx.Tenant,
		Opaque:            s.cfg.OpaqueTokens,
		Lifetime:          s.cfg.AccessTokenLifetime,
	}
	tok, claims, err := s.mint(spec, grantID)
	if err != nil {
		return nil, err
	}
	resp := tokenResponse(tok, claims, s.cfg.AccessTokenLifetime)
	if set.OfflineAccess() || set.OnlineAccess() {
		rt := randomString(32)
		s.mu.Lock()
		s.refresh[rt] = &refreshToken{req: req, grantID: grantID, issued: now, expires: now.Add(s.cfg.RefreshTokenLifetime)}
		if g := s.grants[grantID]; g != nil {
			g.refresh = append(g.refresh, rt)
		}
		s.mu.Unlock()
		resp["refresh_token"] = rt
	}
	if withIDToken && set.OpenID() {
		idc := map[string]any{
			"iss": s.issuer,
			"sub": req.user,
			"aud": req.client,
			"iat": now.Unix(),
			"exp": now.Add(s.cfg.AccessTokenLifetime).Unix(),
		}
		if req.nonce != "" {
			idc["nonce"] = req.nonce
		}
		if set.FHIRUser() {
			idc["fhirUser"] = req.user
		}
		idt, err := s.signJWT(idc, "JWT")
		if err != nil {
			return nil, err
		}
		resp["id_token"] = idt
	}
	return resp, nil
}

// tokenResponse builds the token response for an access token: the OAuth
// members and the SMART launch context.
func tokenResponse(tok string, claims map[string]any, lifetime time.Duration) map[string]any {
	resp := map[string]any{
		"access_token": tok,
		"token_type":   "Bearer",
		"expires_in":   int(lifetime / time.Second),
		"scope":        claims["scope"],
	}
	for _, k := range []string{"patient", "encounter", "fhirContext", "need_patient_banner", "smart_style_url", "intent", "tenant"} {
		if v, ok := claims[k]; ok {
			resp[k] = v
		}
	}
	return resp
}

func (s *Server) redeemRefresh(c *registeredClient, value, scopeParam string, narrow bool) (map[string]any, error) {
	invalid := func(desc string) error { return errf(http.StatusBadRequest, "invalid_grant", "%s", desc) }
	if value == "" {
		return nil, errf(http.StatusBadRequest, "invalid_request", "refresh_token is required")
	}
	now := s.cfg.Now()
	s.mu.Lock()
	rt := s.refresh[value]
	switch {
	case rt == nil:
		s.mu.Unlock()
		return nil, invalid("unknown refresh token")
	case rt.req.client != c.ID:
		s.mu.Unlock()
		return nil, invalid("refresh token was issued to another client")
	case rt.used:
		// Reuse of a rotated refresh token: assume theft, revoke the grant.
		s.revokeGrantLocked(rt.grantID)
		s.mu.Unlock()
		return nil, invalid("refresh token already used")
	case s.grants[rt.grantID] == nil || s.grants[rt.grantID].revoked:
		s.mu.Unlock()
		return nil, invalid("refresh token revoked")
	case !now.Before(rt.expires):
		s.mu.Unlock()
		return nil, invalid("refresh token expired")
	}
	scopes := rt.req.scopes
	if narrow {
		have := map[string]bool{}
		for _, sc := range rt.req.scopes {
			have[sc] = true
		}
		scopes = nil
		for _, sc := range strings.Fields(scopeParam) {
			if !have[sc] {
				s.mu.Unlock()
				return nil, errf(http.StatusBadRequest, "invalid_scope", "scope %q was not granted", sc)
			}
			scopes = append(scopes, sc)
		}
		if len(scopes) == 0 {
			s.mu.Unlock()
			return nil, errf(http.StatusBadRequest, "invalid_scope", "empty scope")
		}
	}
	rt.used = true
	s.mu.Unlock()
	// The new refresh token carries the grant's full scopes (RFC 6749 §6).
	resp, err := s.issueForGrant(rt.req, rt.grantID, scopes, false)
	if err != nil {
		return nil, err
	}
	if _, ok := resp["refresh_token"]; !ok {
		// Narrowed away offline_access: still rotate, keeping the grant.
		nrt := randomString(32)
		s.mu.Lock()
		s.refresh[nrt] = &refreshToken{req: rt.req, grantID: rt.grantID, issued: now, expires: now.Add(s.cfg.RefreshTokenLifetime)}
		if g := s.grants[rt.grantID]; g != nil {
			g.refresh = append(g.refresh, nrt)
		}
		s.mu.Unlock()
		resp["refresh_token"] = nrt
	}
	return resp, nil
}

func (s *Server) clientCredentials(c *registeredClient, requested string) (map[string]any, error) {
	scopes := s.grantScopes(c, requested, true)
	if len(scopes) == 0 {
		return nil, errf(http.StatusBadRequest, "invalid_scope", "no requested system scope can be granted")
	}
	spec := TokenOptions{
		ClientID: c.ID,
		Subject:  c.ID,
		Scopes:   strings.Join(scopes, " "),
		Opaque:   s.cfg.OpaqueTokens,
		Lifetime: s.cfg.BackendTokenLifetime,
	}
	tok, claims, err := s.mint(spec, "")
	if err != nil {
		return nil, err
	}
	return tokenResponse(tok, claims, s.cfg.BackendTokenLifetime), nil
}

// revokeGrantLocked revokes every token of a grant; s.mu is held.
func (s *Server) revokeGrantLocked(id string) {
	g := s.grants[id]
	if g == nil {
		return
	}
	g.revoked = true
	for _, k := range g.tokens {
		if t := s.tokens[k]; t != nil {
			t.revoked = true
		}
	}
	for _, k := range g.refresh {
		if rt := s.refresh[k]; rt != nil {
			rt.used = true
		}
	}
}

// sweepLocked drops expired state once enough has accumulated; s.mu is
// held.
func (s *Server) sweepLocked() {
	s.issuedCnt++
	if s.issuedCnt%256 != 0 {
		return
	}
	now := s.cfg.Now()
	old := now.Add(-time.Hour) // keep recently expired records for reuse detection
	for k, c := range s.codes {
		if c.expires.Before(old) {
			delete(s.codes, k)
		}
	}
	for k, p := range s.pending {
		if p.expires.Before(now) {
			delete(s.pending, k)
		}
	}
	for k, l := range s.launches {
		if !l.expires.IsZero() && l.expires.Before(now) {
			delete(s.launches, k)
		}
	}
	for k, t := range s.tokens {
		if !t.expires.IsZero() && t.expires.Before(old) {
			delete(s.tokens, k)
		}
	}
	for k, rt := range s.refresh {
		if rt.expires.Before(old) {
			delete(s.refresh, k)
		}
	}
}
