package middleware

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Issue 13 §3: one token method per request (RFC 6750 §2), access_token
// parameters in any case, and launch-context claims of the wrong type.

// seenRequest is what the wrapped handler received.
type seenRequest struct {
	query   string
	body    string
	length  int64
	getBody bool   // GetBody is set
	getRaw  string // what GetBody gives
}

// tokenEdgeCase is one request shape sent through Authenticate.
type tokenEdgeCase struct {
	name   string
	cfg    func(*AuthConfig)
	method string // default GET, POST when body is set
	query  string // raw query; {T} is replaced by the token
	ctype  string // Content-Type of body (default the form media type)
	body   string // {T} is replaced by the token
	bearer bool   // send Authorization: Bearer <token>
	auth   string // another Authorization header value
	prep   func(r *http.Request)
	status int
	code   string // RFC 6750 error; "" for none
	cause  error  // errors.Is on the refusal's cause
	check  func(t *testing.T, tok string, seen seenRequest)
}

func (c tokenEdgeCase) request(tok string) *http.Request {
	target := "https://fhir.example.org/r4/Observation"
	method := c.method
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(strings.ReplaceAll(c.body, "{T}", tok))
		target += "/_search"
		if method == "" {
			method = http.MethodPost
		}
	}
	if method == "" {
		method = http.MethodGet
	}
	if c.query != "" {
		target += "?" + strings.ReplaceAll(c.query, "{T}", tok)
	}
	r := httptest.NewRequest(method, target, body)
	if c.body != "" {
		ct := c.ctype
		if ct == "" {
			ct = formMediaType
		}
		r.Header.Set("Content-Type", ct)
	}
	if c.bearer {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	if c.auth != "" {
		r.Header.Set("Authorization", c.auth)
	}
	if c.prep != nil {
		c.prep(r)
	}
	return r
}

// hasTokenParam reports whether net/http, or a reader splitting on ";"
// too, would find an access_token parameter (in any case) in s.
func hasTokenParam(s string) bool {
	for _, seg := range strings.FieldsFunc(s, func(r rune) bool { return r == '&' || r == ';' }) {
		k, _, _ := strings.Cut(seg, "=")
		if name, err := url.QueryUnescape(k); err == nil && strings.EqualFold(name, "access_token") {
			return true
		}
	}
	return false
}

// wantSeen checks what the handler received; a body Authenticate read and
// gave back has a matching ContentLength and GetBody.
func wantSeen(query, body string) func(t *testing.T, tok string, seen seenRequest) {
	return func(t *testing.T, tok string, seen seenRequest) {
		t.Helper()
		if seen.query != query {
			t.Errorf("handler query = %q, want %q", seen.query, query)
		}
		if seen.body != body {
			t.Errorf("handler body = %q, want %q", seen.body, body)
		}
		if seen.length != int64(len(body)) || seen.getBody && seen.getRaw != body {
			t.Errorf("handler ContentLength %d, GetBody %q; want %d, %q", seen.length, seen.getRaw, len(body), body)
		}
	}
}

func TestTokenOneMethodOnly(t *testing.T) {
	testKeys(t)
	queryOn := func(c *AuthConfig) { c.AllowQuery = true }
	formOn := func(c *AuthConfig) { c.AllowFormBody = true }
	const bad = 400
	cases := []tokenEdgeCase{
		// Legitimate: the Authorization header alone.
		{name: "header only", bearer: true, query: "code=1", status: 200, check: wantSeen("code=1", "")},
		{name: "header and a form without access_token", bearer: true, body: "code=1&patient=Patient%2F123", status: 200,
			check: wantSeen("", "code=1&patient=Patient%2F123")},
		{name: "header and access_token as a value, not a name", bearer: true, query: "code=access_token&_text=access_token", status: 200,
			check: wantSeen("code=access_token&_text=access_token", "")},
		{name: "header and longer names", bearer: true, query: "my_access_token=1&access_tokens=2&access_token_x=3", status: 200,
			check: wantSeen("my_access_token=1&access_tokens=2&access_token_x=3", "")},
		{name: "header and a JSON body mentioning access_token", bearer: true, method: http.MethodPost, ctype: "application/fhir+json",
			body: `{"resourceType":"Parameters","x":"access_token=1"}`, status: 200,
			check: wantSeen("", `{"resourceType":"Parameters","x":"access_token=1"}`)},
		{name: "header and a form on GET is not a token method", bearer: true, method: http.MethodGet, body: "code=1", status: 200,
			check: wantSeen("", "code=1")},

		// The header and a query parameter (the query method is disabled).
		{name: "header and query access_token", bearer: true, query: "code=1&access_token={T}", status: bad, code: "invalid_request", cause: errMalformedRequest},
		{name: "header and query Access_Token", bearer: true, query: "Access_Token={T}", status: bad, code: "invalid_request"},
		{name: "header and query ACCESS_TOKEN", bearer: true, query: "ACCESS_TOKEN={T}", status: bad, code: "invalid_request"},
		{name: "header and query aCcEsS_tOkEn", bearer: true, query: "aCcEsS_tOkEn={T}", status: bad, code: "invalid_request"},
		{name: "header and query percent-encoded name", bearer: true, query: "access%5Ftoken={T}", status: bad, code: "invalid_request"},
		{name: "header and query percent-encoded upper case", bearer: true, query: "%41CCESS%5fTOKEN={T}", status: bad, code: "invalid_request"},
		{name: "header and query long s (U+017F)", bearer: true, query: "acce%C5%BF%C5%BF_token={T}", status: bad, code: "invalid_request"},
		{name: "header and query Kelvin sign (U+212A)", bearer: true, query: "access_to%E2%84%AAen={T}", status: bad, code: "invalid_request"},
		{name: "header and query empty access_token", bearer: true, query: "access_token=", status: bad, code: "invalid_request"},
		{name: "header and query bare access_token", bearer: true, query: "access_token", status: bad, code: "invalid_request"},
		{name: "header and query access_token after a semicolon", bearer: true, query: "code=1;access_token={T}", status: bad, code: "invalid_request"},
		{name: "header and query another token", bearer: true, query: "access_token=other", status: bad, code: "invalid_request"},

		// The header and a form body parameter (the form method is disabled).
		{name: "header and form access_token", bearer: true, body: "code=1&access_token={T}", status: bad, code: "invalid_request", cause: errMalformedRequest},
		{name: "header and form ACCESS_TOKEN", bearer: true, body: "ACCESS_TOKEN={T}", status: bad, code: "invalid_request"},
		{name: "header and form Access_Token percent-encoded", bearer: true, body: "code=1&Access%5FToken={T}", status: bad, code: "invalid_request"},
		{name: "header and form with charset", bearer: true, ctype: "application/x-www-form-urlencoded; charset=utf-8", body: "access_token={T}", status: bad, code: "invalid_request"},
		{name: "header and form media type in upper case", bearer: true, ctype: "Application/X-WWW-Form-URLEncoded", body: "access_token={T}", status: bad, code: "invalid_request"},
		{name: "header and form with a malformed parameter", bearer: true, ctype: "application/x-www-form-urlencoded; charset", body: "access_token={T}", status: bad, code: "invalid_request"},
		{name: "header and form with a trailing comma", bearer: true, ctype: "application/x-www-form-urlencoded, text/plain", body: "access_token={T}", status: bad, code: "invalid_request"},
		{name: "header and form access_token after a semicolon", bearer: true, body: "code=1;access_token={T}", status: bad, code: "invalid_request"},
		{name: "header and form on PUT", bearer: true, method: http.MethodPut, body: "access_token={T}", status: bad, code: "invalid_request"},
		{name: "header and form on PATCH", bearer: true, method: http.MethodPatch, body: "access_token={T}", status: bad, code: "invalid_request"},
		{name: "header and a form already parsed", bearer: true, prep: func(r *http.Request) {
			r.PostForm = url.Values{"Access_Token": {"x"}}
			r.Body = http.NoBody
		}, status: bad, code: "invalid_request"},
		{name: "header and a form over the limit", bearer: true, body: "code=" + strings.Repeat("1", maxFormBytes), status: bad, code: "invalid_request"},

		// A parameter alone: no token accepted (Authorization header only).
		{name: "query access_token alone", query: "access_token={T}", status: 401, cause: errNoToken},
		{name: "query ACCESS_TOKEN alone", query: "code=1&ACCESS_TOKEN={T}", status: 401, cause: errNoToken},
		{name: "query access_token and Basic", auth: "Basic dXNlcjpwYXNz", query: "access_token={T}", status: 401, cause: errNoToken},
		{name: "form access_token alone", body: "access_token={T}", status: 401, cause: errNoToken},
		{name: "query and form access_token, neither enabled", query: "access_token={T}", body: "access_token={T}", status: 401, cause: errNoToken},

		// AllowQuery: any case is the same parameter, taken out.
		{name: "AllowQuery Access_Token", cfg: queryOn, query: "code=1&Access_Token={T}&patient=2", status: 200, check: wantSeen("code=1&patient=2", "")},
		{name: "AllowQuery access_token and ACCESS_TOKEN", cfg: queryOn, query: "access_token={T}&ACCESS_TOKEN={T}", status: bad, code: "invalid_request"},
		{name: "AllowQuery header and ACCESS_TOKEN", cfg: queryOn, bearer: true, query: "ACCESS_TOKEN={T}", status: bad, code: "invalid_request"},
		{name: "AllowQuery after a semicolon", cfg: queryOn, query: "code=1;access_token={T}", status: bad, code: "invalid_request"},
		{name: "AllowQuery token and a form access_token", cfg: queryOn, query: "access_token={T}", body: "Access_Token={T}", status: bad, code: "invalid_request"},
		{name: "AllowQuery token and a form without one", cfg: queryOn, query: "access_token={T}", body: "code=1", status: 200, check: wantSeen("", "code=1")},

		// AllowFormBody: likewise.
		{name: "AllowFormBody Access_Token", cfg: formOn, body: "code=1&Access_Token={T}", status: 200, check: wantSeen("", "code=1")},
		{name: "AllowFormBody access_token and ACCESS_TOKEN", cfg: formOn, body: "access_token={T}&ACCESS_TOKEN={T}", status: bad, code: "invalid_request"},
		{name: "AllowFormBody header and ACCESS_TOKEN", cfg: formOn, bearer: true, body: "ACCESS_TOKEN={T}", status: bad, code: "invalid_request"},
		{name: "AllowFormBody token and a query access_token", cfg: formOn, query: "ACCESS_TOKEN={T}", body: "access_token={T}", status: bad, code: "invalid_request"},
		{name: "AllowFormBody header and a form without one", cfg: formOn, bearer: true, body: "code=1", status: 200, check: wantSeen("", "code=1")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(t)
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			var mu sync.Mutex
			var refusal *AuthError
			cfg.OnDecision = func(e AuthEvent) { mu.Lock(); refusal = e.Err; mu.Unlock() }
			a := newAuth(t, cfg)
			tok := keyRS.token(validClaims(), nil)
			var seen *seenRequest
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s := seenRequest{query: r.URL.RawQuery, length: r.ContentLength}
				b, _ := io.ReadAll(r.Body)
				s.body = string(b)
				if r.GetBody != nil {
					s.getBody = true
					rc, _ := r.GetBody()
					g, _ := io.ReadAll(rc)
					s.getRaw = string(g)
				}
				seen = &s
				w.WriteHeader(http.StatusOK)
			})
			w := httptest.NewRecorder()
			a.Handler(h).ServeHTTP(w, tc.request(tok))
			if w.Code != tc.status {
				t.Fatalf("status = %d, want %d (%s; cause %v)", w.Code, tc.status, w.Body, refusal)
			}
			if tc.status != http.StatusOK {
				if seen != nil {
					t.Fatal("the wrapped handler was called")
				}
				checkChallenge(t, w, tc.code)
				if strings.Contains(w.Body.String(), tok[len(tok)-16:]) || strings.Contains(w.Header().Get("WWW-Authenticate"), tok[len(tok)-16:]) {
					t.Error("the refusal echoes the token")
				}
				if tc.cause != nil && !errors.Is(refusal, tc.cause) {
					t.Errorf("cause = %v, want %v", refusal, tc.cause)
				}
				return
			}
			if seen == nil {
				t.Fatal("the wrapped handler was not called")
			}
			// Whatever reaches the handler carries no token parameter and
			// not the token.
			if hasTokenParam(seen.query) || hasTokenParam(seen.body) || strings.Contains(seen.query+seen.body, tok) {
				t.Errorf("the handler saw a token: query %q, body %q", seen.query, seen.body)
			}
			if tc.check != nil {
				tc.check(t, tok, *seen)
			}
		})
	}
}

// TestTokenParamScanner: the parameter scanner agrees with a reader
// splitting on "&" and ";", and takeParam removes exactly the token.
func TestTokenParamScanner(t *testing.T) {
	a := &Authenticator{maxTokenBytes: defaultMaxTokenBytes}
	cases := []struct {
		in     string
		n      int
		hidden bool
		tok    string // takeParam's token; "" when it refuses or finds none
		rest   string
	}{
		{in: "", n: 0},
		{in: "code=1&&patient=2", n: 0},
		{in: "access_token=abc", n: 1, tok: "abc", rest: ""},
		{in: "a=1&ACCESS_TOKEN=abc&&b=2", n: 1, tok: "abc", rest: "a=1&b=2"},
		{in: "a=1&access%5ftoken=ab%2Bc", n: 1, tok: "ab+c", rest: "a=1"},
		{in: "access_token=a&Access_Token=b", n: 2},
		{in: "a=1;access_token=b", n: 1, hidden: true},
		{in: "access_token=a;access_token=b", n: 2, hidden: true},
		{in: "access_token=a;b=1", n: 1, hidden: true},
		{in: "access_token=%zz", n: 1},
		{in: "access_token%zz=1", n: 0},
		{in: "access+token=1&access-token=2&accesstoken=3", n: 0},
		{in: "acce%C5%BF%C5%BF_to%E2%84%AAen=x", n: 1, tok: "x", rest: ""},
		{in: "access_token=a%20b", n: 1}, // not a b64token
		{in: "access_token=", n: 1},      // empty
		{in: "access_token=a&x=access_token", n: 1, tok: "a", rest: "x=access_token"},
	}
	for _, tc := range cases {
		n, hidden := countTokenParams(tc.in)
		if n != tc.n || hidden != tc.hidden {
			t.Errorf("countTokenParams(%q) = %d, %v; want %d, %v", tc.in, n, hidden, tc.n, tc.hidden)
		}
		if tc.n == 0 {
			continue
		}
		tok, rest, aerr := a.takeParam(tc.in)
		if tc.tok == "" {
			if aerr == nil || aerr.Status != http.StatusBadRequest || aerr.Code != CodeInvalidRequest {
				t.Errorf("takeParam(%q) = %q, %q, %v; want 400 invalid_request", tc.in, tok, rest, aerr)
			}
			continue
		}
		if aerr != nil || tok != tc.tok || rest != tc.rest {
			t.Errorf("takeParam(%q) = %q, %q, %v; want %q, %q", tc.in, tok, rest, aerr, tc.tok, tc.rest)
		}
	}
}

// FuzzTokenParams: countTokenParams never misses a parameter net/http or
// a ";"-splitting reader would read as access_token (in any case), and
// when takeParam accepts, nothing of the kind is left.
func FuzzTokenParams(f *testing.F) {
	for _, s := range []string{"access_token=abc", "a=1&ACCESS_TOKEN=x&b", "a=1;access_token=b", "access%5Ftoken=a%2B",
		"acce%C5%BF%C5%BF_token=x", "access_to%E2%84%AAen=y", "%zz=1&access_token", "&&;;==", "access_token=a;access_token=b"} {
		f.Add(s)
	}
	a := &Authenticator{maxTokenBytes: defaultMaxTokenBytes}
	f.Fuzz(func(t *testing.T, s string) {
		n, _ := countTokenParams(s)
		want := 0
		for _, seg := range strings.FieldsFunc(s, func(r rune) bool { return r == '&' || r == ';' }) {
			k, _, _ := strings.Cut(seg, "=")
			if name, err := url.QueryUnescape(k); err == nil && strings.EqualFold(name, "access_token") {
				want++
			}
		}
		if n != want {
			t.Fatalf("countTokenParams(%q) = %d, want %d", s, n, want)
		}
		if q, _ := url.ParseQuery(s); n == 0 {
			for k := range q {
				if strings.EqualFold(k, "access_token") {
					t.Fatalf("%q: net/http reads %q, the scanner found none", s, k)
				}
			}
		}
		tok, rest, aerr := a.takeParam(s)
		if aerr != nil || n == 0 {
			return
		}
		if tok == "" || a.checkToken(tok) != nil || hasTokenParam(rest) {
			t.Fatalf("takeParam(%q) = %q, %q", s, tok, rest)
		}
		if m, _ := countTokenParams(rest); m != 0 {
			t.Fatalf("takeParam(%q) left %q", s, rest)
		}
	})
}

// badTypeValues are patient and fhirUser values of the wrong JSON type.
var badTypeValues = []struct {
	name  string
	value any
	kind  string // how the log names the type
}{
	{"number", 123, "a number"},
	{"fraction", 123.5, "a number"},
	{"true", true, "a boolean"},
	{"false", false, "a boolean"},
	{"array", []any{"Patient/123"}, "an array"},
	{"empty array", []any{}, "an array"},
	{"object", map[string]any{"reference": "Patient/123"}, "an object"},
	{"null", nil, "null"},
}

// badPatientStrings are patient strings that are not a FHIR id or Patient/id.
var badPatientStrings = []string{"", "Patient/", "Patient/1 2", "123/../456", "Group/123", "patient/123", "Patient/123/_history/1",
	"https://ehr.example.org/fhir/Patient/123", "12%33", " 123", "javascript:x"}

// badFHIRUserStrings are fhirUser strings that are not a reference to a user.
var badFHIRUserStrings = []string{"", "123", "Patient/", "Patient/1 2", "javascript:x", "javascript://ehr.example.org/Patient/123",
	"Organization/1", "patient/123", "/Patient/123", "Patient/123/_history/1", "https://ehr.example.org/fhir/Patient/123?",
	"https://ehr.example.org/fhir/Patient/123#", "https://ehr.example.org/fhir/Patient/123?x=1", "https://ehr.example.org/fhir/Patient/123/",
	"https://ehr.example.org/fhir/Patient%2F123", "https://u@ehr.example.org/fhir/Patient/123", "ftp://ehr.example.org/Patient/123",
	"https:///Patient/123", "urn:uuid:3f0b2a3c-8f2e-4c1e-9a43-3a0c9f3b1d11"}

var goodPatients = map[string]string{"123": "123", "Patient/123": "123", "a-b.C9": "a-b.C9"}

var goodFHIRUsers = []string{"Patient/123", "Practitioner/9", "PractitionerRole/7", "RelatedPerson/r1", "Person/p.1",
	"https://ehr.example.org/fhir/Patient/123", "http://ehr.example.org:8080/Practitioner/9"}

// TestClaimTypeEdges: at the claim parser, a patient or fhirUser that
// cannot be read exactly leaves the token without it (never coerced), and
// UnreadableContext names the claim and the type but never the value.
func TestClaimTypeEdges(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	base := map[string]any{"iss": testIssuer, "aud": testAudience, "exp": float64(1_800_000_600), "iat": float64(1_799_999_990)}
	claims := func(name string, v any) map[string]any {
		m := map[string]any{}
		for k, x := range base {
			m[k] = x
		}
		// As the JSON decoder gives them: numbers are float64.
		if n, ok := v.(int); ok {
			v = float64(n)
		}
		m[name] = v
		return m
	}
	refused := func(t *testing.T, name string, v any, kind string, nested bool) {
		t.Helper()
		r := testRules(t)
		m := claims(name, v)
		if nested {
			r.names.Context = "context"
			m = claims("context", map[string]any{name: v})
			m[name] = "123" // a valid top-level value does not rescue it
		}
		tok, err := r.buildToken(m, now)
		if err != nil || tok == nil {
			t.Fatalf("%s = %#v: err %v; want a token without that context", name, v, err)
		}
		if tok.Patient != "" || tok.FHIRUser != "" {
			t.Fatalf("%s = %#v: context kept as patient %q, fhirUser %q", name, v, tok.Patient, tok.FHIRUser)
		}
		if name == "fhirUser" && !tok.badFHIRUser {
			t.Fatal("an unreadable fhirUser is not marked: user/ grants would be free")
		}
		u := tok.UnreadableContext()
		msg := strings.Join(u, "; ")
		if len(u) != 1 || !strings.Contains(msg, name) || kind != "" && !strings.Contains(msg, kind+", not a string") {
			t.Errorf("UnreadableContext %q does not name %s and %s", msg, name, kind)
		}
		if s, ok := v.(string); ok && len(s) > 3 && strings.Contains(msg, s) {
			t.Errorf("UnreadableContext %q echoes the value", msg)
		}
	}
	for _, claim := range []string{"patient", "fhirUser"} {
		for _, bt := range badTypeValues {
			t.Run(claim+" "+bt.name, func(t *testing.T) { refused(t, claim, bt.value, bt.kind, false) })
			t.Run(claim+" "+bt.name+" in a context object", func(t *testing.T) { refused(t, claim, bt.value, bt.kind, true) })
		}
	}
	for _, s := range badPatientStrings {
		t.Run("patient "+strconv.Quote(s), func(t *testing.T) { refused(t, "patient", s, "", false) })
	}
	for _, s := range badFHIRUserStrings {
		t.Run("fhirUser "+strconv.Quote(s), func(t *testing.T) { refused(t, "fhirUser", s, "", false) })
	}
	for in, want := range goodPatients {
		t.Run("patient "+strconv.Quote(in)+" accepted", func(t *testing.T) {
			tok, err := testRules(t).buildToken(claims("patient", in), now)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, tok.Patient, want)
		})
	}
	for _, in := range goodFHIRUsers {
		t.Run("fhirUser "+strconv.Quote(in)+" accepted", func(t *testing.T) {
			tok, err := testRules(t).buildToken(claims("fhirUser", in), now)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, tok.FHIRUser, in)
		})
	}
}

// TestTokenClaimTypesAuthenticate: the same values in signed tokens,
// through Authenticate: accepted without that context, or accepted with the
// value read exactly.
func TestTokenClaimTypesAuthenticate(t *testing.T) {
	testKeys(t)
	type tc struct {
		name  string
		claim string
		value any
	}
	var bad []tc
	for _, claim := range []string{"patient", "fhirUser"} {
		for _, bt := range badTypeValues {
			bad = append(bad, tc{claim + " " + bt.name, claim, bt.value})
		}
	}
	for _, s := range badPatientStrings {
		bad = append(bad, tc{"patient " + strconv.Quote(s), "patient", s})
	}
	for _, s := range badFHIRUserStrings {
		bad = append(bad, tc{"fhirUser " + strconv.Quote(s), "fhirUser", s})
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			tok := keyRS.token(withClaims(c.claim, c.value), nil)
			o := runAuth(t, baseConfig(t), tok)
			expectAccepted(t, o)
			kept := o.token.Patient
			if c.claim == "fhirUser" {
				kept = o.token.FHIRUser
			}
			if kept != "" || len(o.token.UnreadableContext()) != 1 {
				t.Errorf("%s kept as %q, unreadable %q", c.claim, kept, o.token.UnreadableContext())
			}
		})
	}
	for in, want := range goodPatients {
		t.Run("patient "+strconv.Quote(in)+" accepted", func(t *testing.T) {
			o := runAuth(t, baseConfig(t), keyRS.token(withClaims("patient", in), nil))
			expectAccepted(t, o)
			eq(t, o.token.Patient, want)
		})
	}
	for _, in := range goodFHIRUsers {
		t.Run("fhirUser "+strconv.Quote(in)+" accepted", func(t *testing.T) {
			o := runAuth(t, baseConfig(t), keyRS.token(withClaims("fhirUser", in), nil))
			expectAccepted(t, o)
			eq(t, o.token.FHIRUser, in)
		})
	}
	t.Run("no patient claim", func(t *testing.T) {
		o := runAuth(t, baseConfig(t), keyRS.token(withClaims("patient", delClaim), nil))
		expectAccepted(t, o)
		eq(t, o.token.Patient, "")
	})
}

// newKeyGuard is the whole stack (middleware.New) with the static test
// keys, in front of the leaky FHIR server.
func newKeyGuard(t *testing.T, mod func(*AuthConfig)) (*leakyFHIR, http.Handler) {
	t.Helper()
	auth := baseConfig(t)
	auth.Audience = testBase
	if mod != nil {
		mod(&auth)
	}
	g, err := New(Config{Authorize: AuthorizeConfig{BaseURL: testBase, Logger: quietLogger()}, Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	store := newLeaky()
	return store, g.Handler(store)
}

// guardToken signs valid claims for the Guard's audience, changed by kv.
func guardToken(kv ...any) string {
	return keyRS.token(withClaims(append([]any{"aud", testBase}, kv...)...), nil)
}

// TestGuardTokenEdges: through middleware.New, a request with a token in
// two places or a context claim of the wrong type never reaches the FHIR
// server, and the legitimate forms still work with Authorize behind.
func TestGuardTokenEdges(t *testing.T) {
	testKeys(t)
	type step struct {
		method, target, ctype, body string
		bearer                      bool
		status                      int
	}
	get := func(target string, status int) step {
		return step{method: http.MethodGet, target: target, bearer: true, status: status}
	}
	patientScopes := "launch/patient patient/Observation.rs"
	userScopes := "openid fhirUser user/Observation.rs"
	type gcase struct {
		name    string
		claims  []any
		mod     func(*AuthConfig)
		steps   []step
		handler bool // whether the FHIR server may see a request
	}
	cases := []gcase{
		// One method only.
		{name: "header only", claims: []any{"scope", patientScopes}, handler: true, steps: []step{get("/Observation?code=1", 200)}},
		{name: "header and query access_token", claims: []any{"scope", patientScopes},
			steps: []step{get("/Observation?code=1&access_token={T}", 400)}},
		{name: "header and query ACCESS_TOKEN", claims: []any{"scope", patientScopes},
			steps: []step{get("/Observation/lab1?ACCESS_TOKEN={T}", 400)}},
		{name: "header and query Access%5FToken", claims: []any{"scope", patientScopes},
			steps: []step{get("/Observation/lab1?Access%5FToken=x", 400)}},
		{name: "query access_token alone", claims: []any{"scope", patientScopes},
			steps: []step{{method: http.MethodGet, target: "/Observation/lab1?access_token={T}", status: 401}}},
		{name: "header and form access_token", claims: []any{"scope", patientScopes},
			steps: []step{{method: http.MethodPost, target: "/Observation/_search", ctype: formMediaType, body: "code=1&access_token={T}", bearer: true, status: 400}}},
		{name: "header and form Access_Token", claims: []any{"scope", patientScopes},
			steps: []step{{method: http.MethodPost, target: "/Observation/_search", ctype: formMediaType + "; charset=UTF-8", body: "Access_Token={T}", bearer: true, status: 400}}},
		{name: "form access_token alone", claims: []any{"scope", patientScopes},
			steps: []step{{method: http.MethodPost, target: "/Observation/_search", ctype: formMediaType, body: "access_token={T}", status: 401}}},
		{name: "header and a form search", claims: []any{"scope", patientScopes}, handler: true,
			steps: []step{{method: http.MethodPost, target: "/Observation/_search", ctype: formMediaType, body: "code=http%3A%2F%2Floinc.org%7C2339-0", bearer: true, status: 200}}},
		{name: "AllowQuery: query ACCESS_TOKEN alone", claims: []any{"scope", patientScopes}, mod: func(c *AuthConfig) { c.AllowQuery = true }, handler: true,
			steps: []step{{method: http.MethodGet, target: "/Observation/lab1?ACCESS_TOKEN={T}", status: 200}}},

		// patient: valid forms, absent, and values that cannot be read.
		{name: "patient 123", claims: []any{"scope", patientScopes, "patient", "123"}, handler: true,
			steps: []step{get("/Observation/lab1", 200), get("/Observation/o456", 404)}},
		{name: "patient Patient/123", claims: []any{"scope", patientScopes, "patient", "Patient/123"}, handler: true,
			steps: []step{get("/Observation/lab1", 200), get("/Observation/o456", 404)}},
		{name: "no patient claim", claims: []any{"scope", patientScopes, "patient", delClaim},
			steps: []step{get("/Observation/lab1", 403), get("/Observation?code=1", 403)}},

		// fhirUser: user/ grants are held to the Patient compartment of a
		// Patient user.
		{name: "fhirUser Patient/123", claims: []any{"scope", userScopes, "patient", delClaim, "fhirUser", "Patient/123"}, handler: true,
			steps: []step{get("/Observation/lab1", 200), get("/Observation/o456", 404)}},
		{name: "fhirUser absolute Patient", claims: []any{"scope", userScopes, "patient", delClaim, "fhirUser", testBase + "/Patient/123"}, handler: true,
			steps: []step{get("/Observation/lab1", 200), get("/Observation/o456", 404)}},
		{name: "fhirUser Practitioner/9", claims: []any{"scope", userScopes, "patient", delClaim, "fhirUser", "Practitioner/9"}, handler: true,
			steps: []step{get("/Observation/lab1", 200), get("/Observation/o456", 200)}},
	}
	// An unreadable patient or fhirUser: the token carries no such context,
	// so the grants it would hold are refused (403, the handler never
	// asked); grants that need no context still work.
	for _, bt := range badTypeValues {
		cases = append(cases,
			gcase{name: "patient " + bt.name, claims: []any{"scope", patientScopes, "patient", bt.value},
				steps: []step{get("/Observation/lab1", 403), get("/Observation?code=1", 403)}},
			gcase{name: "fhirUser " + bt.name, claims: []any{"scope", userScopes, "patient", delClaim, "fhirUser", bt.value},
				steps: []step{get("/Observation/o456", 403), get("/Observation/lab1", 403), get("/Observation?code=1", 403)}},
			gcase{name: "patient " + bt.name + ", system grant", claims: []any{"scope", "system/Observation.rs", "patient", bt.value}, handler: true,
				steps: []step{get("/Observation/o456", 200)}})
	}
	for _, s := range badPatientStrings {
		cases = append(cases, gcase{name: "patient " + strconv.Quote(s), claims: []any{"scope", patientScopes, "patient", s},
			steps: []step{get("/Observation/lab1", 403)}})
	}
	for _, s := range badFHIRUserStrings {
		cases = append(cases, gcase{name: "fhirUser " + strconv.Quote(s), claims: []any{"scope", userScopes, "patient", delClaim, "fhirUser", s},
			steps: []step{get("/Observation/o456", 403)}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			store, h := newKeyGuard(t, c.mod)
			tok := guardToken(c.claims...)
			for _, s := range c.steps {
				target := testBase + strings.ReplaceAll(s.target, "{T}", tok)
				var body io.Reader
				if s.body != "" {
					body = strings.NewReader(strings.ReplaceAll(s.body, "{T}", tok))
				}
				r := httptest.NewRequest(s.method, target, body)
				if s.ctype != "" {
					r.Header.Set("Content-Type", s.ctype)
				}
				if s.bearer {
					r.Header.Set("Authorization", "Bearer "+tok)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != s.status {
					t.Fatalf("%s %s: status %d, want %d: %s", s.method, s.target, w.Code, s.status, w.Body)
				}
				www := w.Header().Get("WWW-Authenticate")
				switch s.status {
				case 400:
					if !strings.Contains(www, `error="invalid_request"`) || !strings.Contains(w.Body.String(), `"resourceType":"OperationOutcome"`) {
						t.Errorf("400: WWW-Authenticate %q, body %s", www, w.Body)
					}
				case 401:
					if s.bearer != strings.Contains(www, `error="invalid_token"`) || !strings.Contains(w.Body.String(), `"resourceType":"OperationOutcome"`) {
						t.Errorf("401: WWW-Authenticate %q, body %s", www, w.Body)
					}
				case 403:
					if !strings.Contains(www, `error="insufficient_scope"`) {
						t.Errorf("403: WWW-Authenticate %q", www)
					}
				}
				if strings.Contains(w.Body.String()+www, tok[len(tok)-16:]) {
					t.Error("the answer echoes the token")
				}
			}
			calls := store.calls()
			if !c.handler && len(calls) > 0 {
				t.Fatalf("the FHIR server was called: %v", calls)
			}
			if c.handler && len(calls) == 0 {
				t.Fatal("the FHIR server was not called")
			}
			store.mu.Lock()
			defer store.mu.Unlock()
			for i, call := range calls {
				_, q, _ := strings.Cut(call, "?")
				if hasTokenParam(q) || hasTokenParam(store.bodies[i]) || strings.Contains(call+store.bodies[i], tok) {
					t.Errorf("the FHIR server saw a token: %s %s", call, store.bodies[i])
				}
			}
		})
	}
}

// FuzzFHIRUser: an accepted fhirUser is "Type/id" or an http(s) URL
// ending in "/Type/id", with a user type and a FHIR id, kept as sent.
func FuzzFHIRUser(f *testing.F) {
	for _, s := range append(append([]string{}, goodFHIRUsers...), badFHIRUserStrings...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := fhirUser(s)
		if err != nil {
			return
		}
		if got != s {
			t.Fatalf("fhirUser(%q) = %q", s, got)
		}
		for _, typ := range fhirUserTypes {
			i := strings.LastIndex(s, typ+"/")
			if i < 0 || !isFHIRID(s[i+len(typ)+1:]) {
				continue
			}
			if i == 0 {
				return
			}
			lower := strings.ToLower(s)
			if s[i-1] == '/' && (strings.HasPrefix(lower, "https://") || strings.HasPrefix(lower, "http://")) {
				return
			}
		}
		t.Fatalf("fhirUser accepted %q", s)
	})
}
