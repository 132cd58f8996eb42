package middleware

import (
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// accessTokenParam is the RFC 6750 §2.2 and §2.3 parameter name.
const accessTokenParam = "access_token"

// extract finds the bearer token of r (RFC 6750 §2): the Authorization
// header, and the form body and query access_token methods when enabled.
// It returns "" when the request carries no bearer credentials. When the
// token came from the body or the query, the returned request has it
// removed so that handlers never see it as a FHIR parameter. Cookies are
// never read.
//
// RFC 6750 §2 allows one method per request. An access_token parameter
// counts as a method even when its method is disabled, and whatever its
// case (a lenient server may read Access_Token as access_token), so:
//
//   - a token sent by two methods (the header and an access_token
//     parameter, enabled or not) is a 400 invalid_request;
//   - an access_token parameter of a disabled method with no other token
//     is answered as a request without a token (401, no error parameter).
//
// Either way the request is refused here, before the wrapped handler, so
// a disabled method's parameter never reaches it (nor the server's logs
// through it). Form bodies are read only when they are
// application/x-www-form-urlencoded, at most maxFormBytes, and given back
// to the handler byte for byte.
func (a *Authenticator) extract(r *http.Request) (cacheKey, *http.Request, *AuthError) {
	var tok string
	var key cacheKey // of the header's token
	methods := 0     // methods that carried a token we accept
	var refused []string
	hdrs := r.Header["Authorization"] // Values without canonicalizing a canonical key
	if len(hdrs) > 1 {
		return cacheKey{}, r, invalidRequest("more than one Authorization header", fmt.Errorf("%w: %d Authorization headers", errMalformedRequest, len(hdrs)))
	}
	if len(hdrs) == 1 {
		k, isBearer, aerr := a.parseAuthorization(hdrs[0])
		if aerr != nil {
			return cacheKey{}, r, aerr
		}
		if isBearer {
			tok, key = k.raw, k
			methods++
		}
	}
	r2 := r
	t, nr, present, aerr := a.fromQuery(r2)
	switch {
	case aerr != nil:
		return cacheKey{}, r, aerr
	case t != "":
		tok, r2 = t, nr
		methods++
	case present:
		refused = append(refused, "the query")
	}
	// A disabled form body is worth reading only when another method
	// carried a token: without one the request is refused anyway.
	if a.allowForm || methods > 0 {
		t, nr, present, aerr := a.fromForm(r2)
		if aerr != nil {
			return cacheKey{}, r, aerr
		}
		r2 = nr // the body, read, is given back through nr
		switch {
		case t != "":
			tok = t
			methods++
		case present:
			refused = append(refused, "the form body")
		}
	}
	if methods+len(refused) > 1 {
		return cacheKey{}, r, invalidRequest("more than one method used to send the access token",
			fmt.Errorf("%w: token sent by %d methods", errMalformedRequest, methods+len(refused)))
	}
	if methods == 0 && len(refused) > 0 {
		e := unauthenticated()
		e.Err = fmt.Errorf("%w: an access_token parameter in %s is not accepted", errNoToken, refused[0])
		return cacheKey{}, r, e
	}
	if tok != "" && key.raw != tok {
		key = a.hasher.key(tok) // from the query or the form
	}
	return key, r2, nil
}

// parseAuthorization parses an Authorization header value: the scheme
// (case-insensitive), one or more spaces, exactly one b64token (RFC 6750
// §2.1). A scheme other than Bearer is not an error: the request simply
// has no bearer credentials.
func (a *Authenticator) parseAuthorization(v string) (cacheKey, bool, *AuthError) {
	if len(v) > a.maxTokenBytes+64 {
		return cacheKey{}, true, invalidToken("the access token is too large", errTokenTooLarge)
	}
	scheme, rest, _ := strings.Cut(v, " ")
	if !isBearer(scheme) {
		return cacheKey{}, false, nil
	}
	tok := strings.TrimLeft(rest, " ")
	if tok == "" {
		return cacheKey{}, true, invalidRequest("the Authorization header has no token", fmt.Errorf("%w: empty bearer token", errMalformedRequest))
	}
	k, known := a.knownToken(tok)
	if !known {
		if err := a.checkToken(tok); err != nil {
			return cacheKey{}, true, err
		}
	}
	return k, true, nil
}

// isBearer reports whether an auth-scheme is Bearer, in any case
// (strings.EqualFold without its Unicode folding: "Bearer" has no letter
// that folds to or from a non-ASCII one but k and s, which it lacks).
func isBearer(scheme string) bool {
	return len(scheme) == 6 && scheme[0]|0x20 == 'b' && scheme[1]|0x20 == 'e' && scheme[2]|0x20 == 'a' &&
		scheme[3]|0x20 == 'r' && scheme[4]|0x20 == 'e' && scheme[5]|0x20 == 'r'
}

// checkToken applies the size cap and the RFC 6750 b64token syntax:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func (a *Authenticator) checkToken(tok string) *AuthError {
	if len(tok) > a.maxTokenBytes {
		return invalidToken("the access token is too large", fmt.Errorf("%w: %d bytes, limit %d", errTokenTooLarge, len(tok), a.maxTokenBytes))
	}
	i := 0
	for i < len(tok) && b64tokenByte[tok[i]] {
		i++
	}
	if i == 0 {
		return invalidRequest("the access token is not a b64token", fmt.Errorf("%w: token does not start with a b64token character", errMalformedRequest))
	}
	for ; i < len(tok); i++ {
		if tok[i] != '=' {
			return invalidRequest("the access token is not a b64token", fmt.Errorf("%w: character %q at offset %d", errMalformedRequest, tok[i], i))
		}
	}
	return nil
}

// b64tokenByte marks the bytes of a b64token before its "=" padding:
// ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/".
var b64tokenByte = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/", byte(c)) >= 0
	}
	return t
}()

const formMediaType = "application/x-www-form-urlencoded"

// isFormBody reports whether r has a body a server may parse as an
// application/x-www-form-urlencoded form: a method other than GET and
// HEAD, a body, and a Content-Type that net/http's ParseForm takes for a
// form (malformed media type parameters included) or that merely starts
// with the form media type, as a lenient server may accept.
func isFormBody(r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead || r.Body == nil || r.Body == http.NoBody {
		return false
	}
	ct := strings.TrimSpace(r.Header.Get("Content-Type"))
	if mt, _, _ := mime.ParseMediaType(ct); mt == formMediaType {
		return true
	}
	return len(ct) >= len(formMediaType) && strings.EqualFold(ct[:len(formMediaType)], formMediaType)
}

// fromForm looks for access_token in an application/x-www-form-urlencoded
// body (RFC 6750 §2.2). With AllowFormBody it returns the token and a
// request whose body no longer has it; otherwise present reports a
// parameter of the disabled method. The body is read at most maxFormBytes
// (a larger one is a 400) and given back, without the token, in r2.
func (a *Authenticator) fromForm(r *http.Request) (tok string, r2 *http.Request, present bool, aerr *AuthError) {
	// A form an earlier middleware already parsed (its body is consumed):
	// its values are what the handler would read, and cannot be removed.
	for k := range r.PostForm {
		if isTokenName(k) {
			present = true
		}
	}
	if !isFormBody(r) {
		return "", r, present, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxFormBytes+1))
	r.Body.Close()
	if err != nil || len(body) > maxFormBytes {
		return "", r, false, invalidRequest("the form body is too large or unreadable", fmt.Errorf("%w: form body: %v", errMalformedRequest, err))
	}
	rest := string(body)
	switch n, _ := countTokenParams(rest); {
	case n == 0:
	case a.allowForm && !present:
		if tok, rest, aerr = a.takeParam(rest); aerr != nil {
			return "", r, false, aerr
		}
	default:
		present = true
	}
	r2 = shallowCopy(r)
	r2.Body = io.NopCloser(strings.NewReader(rest))
	r2.ContentLength = int64(len(rest))
	r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(rest)), nil }
	return tok, r2, present, nil
}

// fromQuery looks for access_token in the query (RFC 6750 §2.3). With
// AllowQuery it returns the token and a request whose URL no longer has
// it; otherwise present reports a parameter of the disabled method.
func (a *Authenticator) fromQuery(r *http.Request) (tok string, r2 *http.Request, present bool, aerr *AuthError) {
	q := r.URL.RawQuery
	if n, _ := countTokenParams(q); n == 0 {
		return "", r, false, nil
	}
	if !a.allowQuery {
		return "", r, true, nil
	}
	tok, rest, aerr := a.takeParam(q)
	if aerr != nil {
		return "", r, false, aerr
	}
	r2 = shallowCopy(r)
	u := *r.URL
	u.RawQuery = rest
	r2.URL = &u
	r2.RequestURI = ""
	return tok, r2, false, nil
}

// isTokenName reports whether a urlencoded name (or name=value pair) names
// the access_token parameter: after percent-decoding, equal to
// access_token in any case (strings.EqualFold, so the Unicode case
// variants some servers fold too count as well).
func isTokenName(pair string) bool {
	k, _, _ := strings.Cut(pair, "=")
	// Every case variant of a letter is at least as long in UTF-8 and
	// at most 3 bytes, and percent-encoding only lengthens a name.
	if len(k) < len(accessTokenParam) || len(k) > 9*len(accessTokenParam) {
		return false
	}
	name, err := url.QueryUnescape(k)
	return err == nil && strings.EqualFold(name, accessTokenParam)
}

// countTokenParams counts the access_token parameters of a urlencoded
// string (a query or a form body) as the most lenient reader would:
// parameters separated by "&" or by ";", which some servers still split
// on. net/http drops a pair with a ";" in it; hidden reports an
// access_token in such a pair, which cannot be taken out on its own.
func countTokenParams(s string) (n int, hidden bool) {
	for s != "" {
		var pair string
		pair, s, _ = strings.Cut(s, "&")
		if strings.IndexByte(pair, ';') < 0 {
			if isTokenName(pair) {
				n++
			}
			continue
		}
		for seg := range strings.SplitSeq(pair, ";") {
			if isTokenName(seg) {
				n++
				hidden = true
			}
		}
	}
	return n, hidden
}

// takeParam removes the access_token parameter from a urlencoded string,
// keeping the other parameters in order (empty ones dropped). More than
// one access_token (in any case), one in a pair with a ";", an
// undecodable or empty value are an invalid_request.
func (a *Authenticator) takeParam(s string) (tok, rest string, aerr *AuthError) {
	n, hidden := countTokenParams(s)
	switch {
	case n == 0:
		return "", s, nil
	case n > 1:
		return "", "", invalidRequest("access_token repeated", fmt.Errorf("%w: %d access_token parameters", errMalformedRequest, n))
	case hidden:
		return "", "", invalidRequest("the access_token parameter is malformed", fmt.Errorf("%w: access_token in a parameter with a ';'", errMalformedRequest))
	}
	var kept []string
	for _, pair := range strings.Split(s, "&") {
		if pair == "" {
			continue
		}
		if !isTokenName(pair) {
			kept = append(kept, pair)
			continue
		}
		_, v, _ := strings.Cut(pair, "=")
		var err error
		if tok, err = url.QueryUnescape(v); err != nil {
			return "", "", invalidRequest("the access_token parameter is malformed", fmt.Errorf("%w: %v", errMalformedRequest, err))
		}
	}
	if tok == "" {
		return "", "", invalidRequest("empty access_token", fmt.Errorf("%w: empty access_token", errMalformedRequest))
	}
	if aerr := a.checkToken(tok); aerr != nil {
		return "", "", aerr
	}
	return tok, strings.Join(kept, "&"), nil
}

func shallowCopy(r *http.Request) *http.Request {
	r2 := new(http.Request)
	*r2 = *r
	return r2
}
