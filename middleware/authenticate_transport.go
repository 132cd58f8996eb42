package middleware

import (
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// extract finds the bearer token of r (RFC 6750 §2): the Authorization
// header, and the form body and query access_token methods when enabled.
// It returns "" when the request carries no bearer credentials. When the
// token came from the body or the query, the returned request has it
// removed so that handlers never see it as a FHIR parameter. Cookies are
// never read.
func (a *Authenticator) extract(r *http.Request) (string, *http.Request, *AuthError) {
	var tok string
	methods := 0
	hdrs := r.Header.Values("Authorization")
	if len(hdrs) > 1 {
		return "", r, invalidRequest("more than one Authorization header", fmt.Errorf("%w: %d Authorization headers", ErrMalformedRequest, len(hdrs)))
	}
	if len(hdrs) == 1 {
		t, isBearer, aerr := a.parseAuthorization(hdrs[0])
		if aerr != nil {
			return "", r, aerr
		}
		if isBearer {
			tok = t
			methods++
		}
	}
	r2 := r
	if a.allowForm {
		t, nr, aerr := a.fromForm(r2)
		if aerr != nil {
			return "", r, aerr
		}
		if t != "" {
			tok, r2 = t, nr
			methods++
		}
	}
	if a.allowQuery {
		t, nr, aerr := a.fromQuery(r2)
		if aerr != nil {
			return "", r, aerr
		}
		if t != "" {
			tok, r2 = t, nr
			methods++
		}
	}
	if methods > 1 {
		return "", r, invalidRequest("more than one method used to send the access token", fmt.Errorf("%w: token sent by %d methods", ErrMalformedRequest, methods))
	}
	return tok, r2, nil
}

// parseAuthorization parses an Authorization header value: the scheme
// (case-insensitive), one or more spaces, exactly one b64token (RFC 6750
// §2.1). A scheme other than Bearer is not an error: the request simply
// has no bearer credentials.
func (a *Authenticator) parseAuthorization(v string) (string, bool, *AuthError) {
	if len(v) > a.maxTokenBytes+64 {
		return "", true, invalidToken("the access token is too large", ErrTokenTooLarge)
	}
	scheme, rest, _ := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false, nil
	}
	tok := strings.TrimLeft(rest, " ")
	if tok == "" {
		return "", true, invalidRequest("the Authorization header has no token", fmt.Errorf("%w: empty bearer token", ErrMalformedRequest))
	}
	if err := a.checkToken(tok); err != nil {
		return "", true, err
	}
	return tok, true, nil
}

// checkToken applies the size cap and the RFC 6750 b64token syntax:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func (a *Authenticator) checkToken(tok string) *AuthError {
	if len(tok) > a.maxTokenBytes {
		return invalidToken("the access token is too large", fmt.Errorf("%w: %d bytes, limit %d", ErrTokenTooLarge, len(tok), a.maxTokenBytes))
	}
	i := 0
	for ; i < len(tok); i++ {
		c := tok[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			break
		}
	}
	if i == 0 {
		return invalidRequest("the access token is not a b64token", fmt.Errorf("%w: token does not start with a b64token character", ErrMalformedRequest))
	}
	for ; i < len(tok); i++ {
		if tok[i] != '=' {
			return invalidRequest("the access token is not a b64token", fmt.Errorf("%w: character %q at offset %d", ErrMalformedRequest, tok[i], i))
		}
	}
	return nil
}

// fromForm reads access_token from an application/x-www-form-urlencoded
// body (RFC 6750 §2.2) of a request whose method has body semantics, and
// returns a request whose body no longer has it.
func (a *Authenticator) fromForm(r *http.Request) (string, *http.Request, *AuthError) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead || r.Body == nil || r.Body == http.NoBody {
		return "", r, nil
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return "", r, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxFormBytes+1))
	r.Body.Close()
	if err != nil || len(body) > maxFormBytes {
		return "", r, invalidRequest("the form body is too large or unreadable", fmt.Errorf("%w: form body: %v", ErrMalformedRequest, err))
	}
	tok, rest, aerr := a.takeParam(string(body))
	if aerr != nil {
		return "", r, aerr
	}
	r2 := shallowCopy(r)
	if tok == "" {
		rest = string(body)
	}
	r2.Body = io.NopCloser(strings.NewReader(rest))
	r2.ContentLength = int64(len(rest))
	r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(rest)), nil }
	return tok, r2, nil
}

// fromQuery reads access_token from the query (RFC 6750 §2.3) and returns
// a request whose URL no longer has it.
func (a *Authenticator) fromQuery(r *http.Request) (string, *http.Request, *AuthError) {
	if q := r.URL.RawQuery; !strings.Contains(q, "access_token") && !strings.Contains(q, "%") {
		return "", r, nil
	}
	tok, rest, aerr := a.takeParam(r.URL.RawQuery)
	if aerr != nil || tok == "" {
		return "", r, aerr
	}
	r2 := shallowCopy(r)
	u := *r.URL
	u.RawQuery = rest
	r2.URL = &u
	r2.RequestURI = ""
	return tok, r2, nil
}

// takeParam removes the access_token parameter from a urlencoded string,
// keeping the other parameters in order. More than one access_token is an
// invalid_request.
func (a *Authenticator) takeParam(s string) (tok, rest string, aerr *AuthError) {
	var kept []string
	found := 0
	for _, pair := range strings.Split(s, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(k)
		if err != nil || name != "access_token" {
			kept = append(kept, pair)
			continue
		}
		found++
		if tok, err = url.QueryUnescape(v); err != nil {
			return "", "", invalidRequest("the access_token parameter is malformed", fmt.Errorf("%w: %v", ErrMalformedRequest, err))
		}
	}
	switch {
	case found > 1:
		return "", "", invalidRequest("access_token repeated", fmt.Errorf("%w: %d access_token parameters", ErrMalformedRequest, found))
	case found == 1 && tok == "":
		return "", "", invalidRequest("empty access_token", fmt.Errorf("%w: empty access_token", ErrMalformedRequest))
	case found == 1:
		if aerr := a.checkToken(tok); aerr != nil {
			return "", "", aerr
		}
	}
	return tok, strings.Join(kept, "&"), nil
}

func shallowCopy(r *http.Request) *http.Request {
	r2 := new(http.Request)
	*r2 = *r
	return r2
}
