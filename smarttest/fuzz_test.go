package smarttest

import (
	"crypto"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// fuzzServer is a server with a frozen clock, so that seed assertions stay
// valid for the whole run.
func fuzzServer(f *testing.F) (*Server, *fakeClock) {
	testKeys(f)
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	srv, err := New(Config{FHIRBase: testFHIRBase, Issuer: "https://auth.example", Patient: "123", Now: clock.Now})
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range []Client{
		{ID: appID, RedirectURIs: []string{appRedirect}},
		{ID: "backend", PublicKeys: map[string]crypto.PublicKey{"rsa-1": rsaKey.Public(), "ec-1": ecKey.Public()}},
		{ID: rsID, Secret: rsSecret, Introspect: true},
	} {
		if err := srv.RegisterClient(c); err != nil {
			f.Fatal(err)
		}
	}
	return srv, clock
}

func seedAssertions(f *testing.F, srv *Server, now time.Time) []string {
	var out []string
	for _, a := range []Assertion{
		{ClientID: "backend", Audience: srv.SMARTConfiguration().TokenEndpoint, Key: rsaKey, KeyID: "rsa-1", IssuedAt: now},
		{ClientID: "backend", Audience: srv.SMARTConfiguration().TokenEndpoint, Key: ecKey, KeyID: "ec-1", IssuedAt: now},
		{ClientID: "backend", Audience: srv.SMARTConfiguration().TokenEndpoint, Key: ecKey, KeyID: "ec-1", IssuedAt: now, Lifetime: time.Hour},
		{ClientID: "backend", Subject: "x", Audience: srv.SMARTConfiguration().TokenEndpoint, Key: rsaKey, KeyID: "rsa-1", IssuedAt: now},
	} {
		s, err := SignClientAssertion(a)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, s)
	}
	return append(out, "", "a.b.c", "..", "eyJhbGciOiJub25lIn0.e30.", `{"payload":"e30","signatures":[]}`)
}

func FuzzClientAssertion(f *testing.F) {
	srv, clock := fuzzServer(f)
	for _, s := range seedAssertions(f, srv, clock.Now()) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, assertion string) {
		c, err := srv.verifyAssertion(assertion)
		if err != nil {
			var oe *oauthError
			if !errors.As(err, &oe) || oe.code != "invalid_client" || oe.status != http.StatusUnauthorized {
				t.Fatalf("error %v is not invalid_client", err)
			}
			return
		}
		// Accepted: it must really be signed by the client's key and name
		// the client and the token URL.
		msg, perr := jws.ParseString(assertion)
		if perr != nil {
			t.Fatalf("accepted an assertion jws cannot parse: %v", perr)
		}
		hdr := msg.Signatures()[0].ProtectedHeaders()
		key := c.keys[hdr.KeyID()]
		alg := hdr.Algorithm()
		if alg != jwa.RS384 && alg != jwa.ES384 {
			t.Fatalf("accepted alg %v", alg)
		}
		payload, verr := jws.Verify([]byte(assertion), jws.WithKey(alg, key))
		if verr != nil {
			t.Fatalf("accepted an assertion that does not verify: %v", verr)
		}
		var cl map[string]any
		if json.Unmarshal(payload, &cl) != nil || cl["iss"] != c.ID || cl["sub"] != c.ID {
			t.Fatalf("accepted claims %s", payload)
		}
		// And never twice.
		if _, err := srv.verifyAssertion(assertion); err == nil {
			t.Fatal("assertion accepted twice")
		}
	})
}

var tokenErrors = map[string]bool{"invalid_request": true, "invalid_client": true, "invalid_grant": true,
	"unauthorized_client": true, "unsupported_grant_type": true, "invalid_scope": true}

func FuzzTokenEndpoint(f *testing.F) {
	srv, clock := fuzzServer(f)
	for _, a := range seedAssertions(f, srv, clock.Now()) {
		f.Add(backendForm(a, "system/*.rs").Encode())
	}
	f.Add("grant_type=authorization_code&code=x&client_id=app&code_verifier=" + verifier)
	f.Add("grant_type=refresh_token&refresh_token=x&client_id=app")
	f.Add("grant_type=client_credentials&client_id=resource-server&client_secret=rs-secret")
	f.Add("grant_type=a&grant_type=b")
	f.Add("%zz")
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		var resp map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatalf("status %d, body not JSON: %q", rec.Code, rec.Body.String())
		}
		switch rec.Code {
		case http.StatusOK:
			form, _ := url.ParseQuery(body)
			if form.Get("grant_type") != "client_credentials" || resp["access_token"] == nil {
				t.Fatalf("token for %q: %v", body, resp)
			}
			for _, sc := range strings.Fields(resp["scope"].(string)) {
				if !strings.HasPrefix(sc, "system/") {
					t.Fatalf("backend token with scope %q", sc)
				}
			}
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge:
			if code, _ := resp["error"].(string); !tokenErrors[code] {
				t.Fatalf("status %d with error %v", rec.Code, resp["error"])
			}
		default:
			t.Fatalf("status %d for %q", rec.Code, body)
		}
	})
}

func FuzzAuthorize(f *testing.F) {
	srv, _ := fuzzServer(f)
	q := authParams("launch/patient patient/*.rs")
	f.Add(q.Encode())
	q.Set("code_challenge_method", "plain")
	f.Add(q.Encode())
	q.Set("redirect_uri", "https://evil.example/")
	f.Add(q.Encode())
	f.Add("client_id=app&client_id=app")
	f.Add("%")
	f.Fuzz(func(t *testing.T, rawQuery string) {
		req := httptest.NewRequest(http.MethodGet, "/authorize", nil)
		req.URL.RawQuery = rawQuery
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusBadRequest:
			return
		case http.StatusFound:
		default:
			t.Fatalf("status %d for %q", rec.Code, rawQuery)
		}
		loc := rec.Header().Get("Location")
		if !strings.HasPrefix(loc, appRedirect+"?") {
			t.Fatalf("redirect to %q", loc)
		}
		u, _ := url.Parse(loc)
		in, _ := url.ParseQuery(rawQuery)
		got := u.Query()
		if got.Get("code") != "" {
			if got.Get("error") != "" || in.Get("code_challenge_method") != "S256" || in.Get("state") == "" ||
				strings.TrimSuffix(in.Get("aud"), "/") != testFHIRBase || in.Get("response_type") != "code" {
				t.Fatalf("code issued for %q", rawQuery)
			}
		} else if got.Get("error") == "" {
			t.Fatalf("redirect with neither code nor error: %q", loc)
		}
		if got.Get("state") != in.Get("state") {
			t.Fatalf("state %q, sent %q", got.Get("state"), in.Get("state"))
		}
	})
}

func FuzzIntrospect(f *testing.F) {
	srv, _ := fuzzServer(f)
	good, err := srv.MintToken(TokenOptions{Scopes: "patient/*.rs"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-2])
	f.Add("x")
	f.Add("a.b.c")
	for _, fl := range Flaws() {
		tok, err := srv.MintFlawedToken(fl, TokenOptions{Scopes: "patient/*.rs"})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tok)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		got := srv.Introspect(tok)
		if got["active"] == true && tok != good {
			// Only a token the server issued may be active; the one way
			// to differ from good and still verify is a different
			// encoding of the same signature, which base64url forbids.
			if _, err := srv.verifyOwn(tok); err != nil {
				t.Fatalf("active but does not verify: %q", tok)
			}
		}
	})
}
