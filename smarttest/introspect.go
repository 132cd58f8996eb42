package smarttest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(w, r)
	if err != nil {
		writeOAuthError(w, err)
		return
	}
	if err := s.authorizeIntrospection(r, form); err != nil {
		writeOAuthError(w, err)
		return
	}
	tok := form.Get("token")
	if tok == "" {
		writeOAuthError(w, errf(http.StatusBadRequest, "invalid_request", "token is required"))
		return
	}
	writeJSON(w, http.StatusOK, s.Introspect(tok))
}

// authorizeIntrospection admits a caller that is a client registered with
// Introspect, authenticated by its secret or private_key_jwt, or that sends
// an active bearer token issued to such a client (SMART 2.2).
func (s *Server) authorizeIntrospection(r *http.Request, form map[string][]string) error {
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		rec := s.active(strings.TrimSpace(h[7:]))
		if rec == nil {
			return errf(http.StatusUnauthorized, "invalid_token", "bearer token is not active")
		}
		if c := s.client(rec.clientID); c == nil || !c.Introspect {
			return errf(http.StatusForbidden, "insufficient_scope", "the bearer token's client may not introspect")
		}
		return nil
	}
	c, method, err := s.authenticateClient(r, form)
	if err != nil {
		return err
	}
	if method == authNone || !c.Introspect {
		return errf(http.StatusUnauthorized, "invalid_client", "client may not introspect")
	}
	return nil
}

// active returns the record of an active access token, or nil.
func (s *Server) active(tok string) *issuedToken {
	key := s.recordKey(tok)
	if key == "" {
		return nil
	}
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.tokens[key]
	if rec == nil || rec.revoked || !claimsCurrent(rec, now) {
		return nil
	}
	if iss, _ := rec.claims["iss"].(string); iss != s.issuer {
		return nil
	}
	if g := s.grants[rec.grantID]; g != nil && g.revoked {
		return nil
	}
	return rec
}

func claimsCurrent(rec *issuedToken, now time.Time) bool {
	if rec.expires.IsZero() || !now.Before(rec.expires) {
		return false
	}
	if nbf, ok := rec.claims["nbf"].(int64); ok && now.Before(time.Unix(nbf, 0)) {
		return false
	}
	return true
}

// Introspect returns the RFC 7662 introspection response for a token, as
// the introspection endpoint does: {"active": false} for anything that is
// not a current, unrevoked token of this server (signed by a published key
// when a JWT); otherwise active, token_type and every claim of the token
// (scope, client_id, exp, iat, sub, iss, aud, jti and the SMART context:
// patient, encounter, fhirUser, fhirContext, need_patient_banner,
// smart_style_url, intent, tenant). A refresh token introspects with
// token_type "refresh_token".
func (s *Server) Introspect(tok string) map[string]any {
	if rec := s.active(tok); rec != nil {
		out := make(map[string]any, len(rec.claims)+2)
		for k, v := range rec.claims {
			out[k] = v
		}
		out["active"] = true
		out["token_type"] = "Bearer"
		return out
	}
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if rt := s.refresh[tok]; rt != nil && !rt.used && now.Before(rt.expires) {
		if g := s.grants[rt.grantID]; g != nil && !g.revoked {
			return map[string]any{
				"active":     true,
				"token_type": "refresh_token",
				"client_id":  rt.req.client,
				"scope":      strings.Join(rt.req.scopes, " "),
				"sub":        rt.req.user,
				"iss":        s.issuer,
				"iat":        rt.issued.Unix(),
				"exp":        rt.expires.Unix(),
			}
		}
	}
	return map[string]any{"active": false}
}

func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(w, r)
	if err != nil {
		writeOAuthError(w, err)
		return
	}
	c, _, err := s.authenticateClient(r, form)
	if err != nil {
		writeOAuthError(w, err)
		return
	}
	tok := form.Get("token")
	if tok == "" {
		writeOAuthError(w, errf(http.StatusBadRequest, "invalid_request", "token is required"))
		return
	}
	if owner, found := s.owner(tok); found && owner != c.ID {
		writeOAuthError(w, errf(http.StatusBadRequest, "invalid_request", "the token was not issued to this client"))
		return
	}
	// RFC 7009 §2.2: unknown or invalid tokens also get 200.
	s.Revoke(tok)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// recordKey finds the key of an issued access token, without checking
// whether it is still active.
func (s *Server) recordKey(tok string) string {
	if !looksCompact(tok) {
		return "opaque:" + tok
	}
	payload, err := s.verifyOwn(tok)
	if err != nil {
		return ""
	}
	var c struct {
		Jti string `json:"jti"`
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	if dec.Decode(&c) != nil || c.Jti == "" {
		return ""
	}
	return "jwt:" + c.Jti
}

// owner returns the client a token was issued to.
func (s *Server) owner(tok string) (string, bool) {
	key := s.recordKey(tok)
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec := s.tokens[key]; key != "" && rec != nil {
		return rec.clientID, true
	}
	if rt := s.refresh[tok]; rt != nil {
		return rt.req.client, true
	}
	return "", false
}

// Revoke revokes an access token or a refresh token (a refresh token takes
// its whole grant with it: every access and refresh token issued from the
// same authorization). It reports whether the token was known.
func (s *Server) Revoke(tok string) bool {
	key := s.recordKey(tok)
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec := s.tokens[key]; key != "" && rec != nil {
		rec.revoked = true
		return true
	}
	if rt := s.refresh[tok]; rt != nil {
		rt.used = true
		s.revokeGrantLocked(rt.grantID)
		return true
	}
	return false
}
