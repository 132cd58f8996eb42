package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// openIDServer serves an OpenID configuration naming its own URL as
// issuer; edit changes the document before it is sent.
type openIDServer struct {
	*httptest.Server
	hits   atomic.Int64
	status atomic.Int64 // 0 → 200
	edit   atomic.Pointer[func(m map[string]any)]
}

func newOpenIDServer(t *testing.T, tls bool) *openIDServer {
	t.Helper()
	s := &openIDServer{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		if st := s.status.Load(); st != 0 {
			w.WriteHeader(int(st))
			return
		}
		iss := s.URL
		m := map[string]any{
			"issuer":                                iss,
			"authorization_endpoint":                iss + "/authorize",
			"token_endpoint":                        iss + "/token",
			"jwks_uri":                              iss + "/jwks",
			"introspection_endpoint":                iss + "/introspect",
			"revocation_endpoint":                   iss + "/revoke",
			"userinfo_endpoint":                     iss + "/userinfo",
			"scopes_supported":                      []string{"openid", "profile", "fhirUser", "launch/patient", "patient/*.rs"},
			"response_types_supported":              []string{"code", "id_token", "code id_token"},
			"grant_types_supported":                 []string{"authorization_code", "refresh_token", "client_credentials", "implicit"},
			"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "private_key_jwt"},
			"token_endpoint_auth_signing_alg_values_supported": []string{"RS256", "RS384", "ES384"},
			"code_challenge_methods_supported":                 []string{"plain", "S256"},
			"claims_supported":                                 []string{"sub"},
		}
		if e := s.edit.Load(); e != nil {
			(*e)(m)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(m)
	})
	s.Server = httptest.NewUnstartedServer(h)
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted-certificate case logs a handshake error
	if tls {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

func (s *openIDServer) setEdit(f func(m map[string]any)) { s.edit.Store(&f) }

func TestParseOpenIDConfiguration(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
		check   func(t *testing.T, oc *OpenIDConfiguration)
	}{
		{"minimal", `{"issuer":"https://as"}`, "", func(t *testing.T, oc *OpenIDConfiguration) {
			if oc.Issuer != "https://as" {
				t.Fatal(oc.Issuer)
			}
		}},
		{"full", `{"issuer":"https://as","token_endpoint":"https://as/t","scopes_supported":["a","b"],"code_challenge_methods_supported":["S256"],"unknown":{"x":[1,2]}}`, "", func(t *testing.T, oc *OpenIDConfiguration) {
			if oc.TokenEndpoint != "https://as/t" || len(oc.ScopesSupported) != 2 || oc.CodeChallengeMethodsSupported[0] != "S256" {
				t.Fatalf("%+v", oc)
			}
		}},
		{"null members", `{"issuer":"https://as","token_endpoint":null,"scopes_supported":null}`, "", nil},
		{"whitespace around", " \n{\"issuer\":\"https://as\"}\n ", "", nil},
		{"no issuer", `{"token_endpoint":"https://as/t"}`, "issuer missing", nil},
		{"empty issuer", `{"issuer":""}`, "issuer missing", nil},
		{"issuer not a string", `{"issuer":1}`, "issuer is not a string", nil},
		{"relative issuer", `{"issuer":"/as"}`, "issuer", nil},
		{"relative token endpoint", `{"issuer":"https://as","token_endpoint":"/token"}`, "token_endpoint", nil},
		{"javascript endpoint", `{"issuer":"https://as","authorization_endpoint":"javascript:alert(1)"}`, "authorization_endpoint", nil},
		{"scopes a string", `{"issuer":"https://as","scopes_supported":"openid profile"}`, "scopes_supported is not an array", nil},
		{"scopes with a number", `{"issuer":"https://as","scopes_supported":["openid",1]}`, "scopes_supported", nil},
		{"array", `[]`, "not a JSON object", nil},
		{"null", `null`, "not a JSON object", nil},
		{"string", `"x"`, "not a JSON object", nil},
		{"truncated", `{"issuer":"https://as"`, "not a JSON object", nil},
		{"two objects", `{"issuer":"https://as"}{}`, "data after", nil},
		{"empty", ``, "not a JSON object", nil},
		{"html", `<html>`, "not a JSON object", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			oc, err := parseOpenIDConfiguration([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !is(err, errOpenIDConfiguration) {
					t.Fatalf("err %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, oc)
			}
		})
	}
}

func TestFetchOpenIDConfiguration(t *testing.T) {
	srv := newOpenIDServer(t, true)
	oc, err := FetchOpenIDConfiguration(context.Background(), srv.URL, FetchConfig{Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if oc.Issuer != srv.URL || oc.TokenEndpoint != srv.URL+"/token" {
		t.Fatalf("%+v", oc)
	}
	// A trailing slash on the issuer: the URL is built without a double
	// slash, and the issuer must then match exactly (it does not here).
	if openIDConfigurationURL(srv.URL+"/") != srv.URL+"/.well-known/openid-configuration" {
		t.Fatal(openIDConfigurationURL(srv.URL + "/"))
	}
	_, err = FetchOpenIDConfiguration(context.Background(), srv.URL+"/", FetchConfig{Client: srv.Client()})
	if !is(err, errIssuerMismatch) {
		t.Fatalf("trailing slash: %v", err)
	}
}

func TestFetchOpenIDConfigurationFailures(t *testing.T) {
	tlsSrv := newOpenIDServer(t, true)
	plainSrv := newOpenIDServer(t, false)
	redirectToHTTP := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plainSrv.URL+r.URL.Path, http.StatusFound)
	}))
	defer redirectToHTTP.Close()
	release := make(chan struct{})
	slow := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	defer close(release) // runs before Close, which waits for the handlers
	huge := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"issuer":"` + strings.Repeat("a", 2000) + `"}`))
	}))
	defer huge.Close()

	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name    string
		ctx     context.Context
		issuer  string
		cfg     FetchConfig
		prepare func()
		want    error
		status  int
	}{
		{"http refused", nil, plainSrv.URL, FetchConfig{Client: plainSrv.Client()}, nil, errInsecureIssuer, 0},
		{"other scheme refused", nil, "ftp://as.example.org", FetchConfig{InsecureAllowHTTPURLs: true}, nil, errInsecureIssuer, 0},
		{"relative issuer", nil, "/as", FetchConfig{}, nil, errRelativeURL, 0},
		{"issuer with query", nil, tlsSrv.URL + "?a=b", FetchConfig{Client: tlsSrv.Client()}, nil, errInvalidURL, 0},
		{"redirect to http refused", nil, redirectToHTTP.URL, FetchConfig{Client: redirectToHTTP.Client()}, nil, errInsecureIssuer, 0},
		{"HTTP 404", nil, tlsSrv.URL, FetchConfig{Client: tlsSrv.Client()}, func() { tlsSrv.status.Store(404) }, errHTTPStatus, 404},
		{"HTTP 500", nil, tlsSrv.URL, FetchConfig{Client: tlsSrv.Client()}, func() { tlsSrv.status.Store(500) }, errHTTPStatus, 500},
		{"issuer mismatch", nil, tlsSrv.URL, FetchConfig{Client: tlsSrv.Client()}, func() {
			tlsSrv.setEdit(func(m map[string]any) { m["issuer"] = "https://evil.example.org" })
		}, errIssuerMismatch, 200},
		{"bad document", nil, tlsSrv.URL, FetchConfig{Client: tlsSrv.Client()}, func() {
			tlsSrv.setEdit(func(m map[string]any) { m["token_endpoint"] = 7 })
		}, errOpenIDConfiguration, 200},
		{"too large", nil, huge.URL, FetchConfig{Client: huge.Client(), MaxBodyBytes: 1000}, nil, errBodyTooLarge, 200},
		{"timeout before the response", nil, slow.URL, FetchConfig{Client: slow.Client(), Timeout: 100 * time.Millisecond}, nil, context.DeadlineExceeded, 0},
		{"canceled", canceled, tlsSrv.URL, FetchConfig{Client: tlsSrv.Client()}, nil, context.Canceled, 0},
		{"untrusted certificate", nil, tlsSrv.URL, FetchConfig{Client: &http.Client{}}, nil, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tlsSrv.status.Store(0)
			tlsSrv.setEdit(func(map[string]any) {})
			if tt.prepare != nil {
				tt.prepare()
			}
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			start := time.Now()
			oc, err := FetchOpenIDConfiguration(ctx, tt.issuer, tt.cfg)
			if oc != nil || err == nil {
				t.Fatalf("fetch succeeded: %+v", oc)
			}
			var fe *FetchError
			if !errors.As(err, &fe) {
				t.Fatalf("err %T %v, want a *FetchError", err, err)
			}
			if tt.want != nil && !is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			if fe.StatusCode != tt.status {
				t.Fatalf("StatusCode %d, want %d", fe.StatusCode, tt.status)
			}
			if !strings.Contains(err.Error(), "/.well-known/openid-configuration") {
				t.Fatalf("error does not name the URL: %v", err)
			}
			if time.Since(start) > 3*time.Second {
				t.Fatal("fetch not bounded by its timeout")
			}
		})
	}

	t.Run("timeout while reading the body", func(t *testing.T) {
		done := make(chan error, 1)
		go func() {
			_, err := FetchOpenIDConfiguration(context.Background(), slow.URL, FetchConfig{
				Client:  &http.Client{Transport: bodyStallTransport{}},
				Timeout: 100 * time.Millisecond,
			})
			done <- err
		}()
		select {
		case err := <-done:
			var fe *FetchError
			if !errors.As(err, &fe) || fe.StatusCode != 200 {
				t.Fatalf("err %v, want a FetchError with status 200", err)
			}
		case <-time.After(time.Minute): // bounds a hang only
			t.Fatal("the fetch timeout did not end a stalled body")
		}
	})
	t.Run("http allowed when insecure", func(t *testing.T) {
		oc, err := FetchOpenIDConfiguration(context.Background(), plainSrv.URL, FetchConfig{Client: plainSrv.Client(), InsecureAllowHTTPURLs: true})
		if err != nil || oc.Issuer != plainSrv.URL {
			t.Fatalf("%v %+v", err, oc)
		}
	})
	t.Run("redirect within https followed", func(t *testing.T) {
		hop := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, tlsSrv.URL+r.URL.Path, http.StatusFound)
		}))
		defer hop.Close()
		tlsSrv.setEdit(func(m map[string]any) { m["issuer"] = hop.URL })
		oc, err := FetchOpenIDConfiguration(context.Background(), hop.URL, FetchConfig{Client: tlsSrv.Client()})
		if err != nil || oc.Issuer != hop.URL {
			t.Fatalf("%v %+v", err, oc)
		}
	})
	t.Run("client CheckRedirect still applies", func(t *testing.T) {
		hop := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, tlsSrv.URL+r.URL.Path, http.StatusFound)
		}))
		defer hop.Close()
		c := *tlsSrv.Client()
		stop := errors.New("no redirects here")
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return stop }
		if _, err := FetchOpenIDConfiguration(context.Background(), hop.URL, FetchConfig{Client: &c}); !is(err, stop) {
			t.Fatalf("%v", err)
		}
	})
}

func TestFromOpenIDConfiguration(t *testing.T) {
	oc := &OpenIDConfiguration{
		Issuer: "https://as.example.org", AuthorizationEndpoint: "https://as.example.org/auth",
		TokenEndpoint: "https://as.example.org/token", JWKSURI: "https://as.example.org/jwks",
		IntrospectionEndpoint: "https://as.example.org/introspect", RevocationEndpoint: "https://as.example.org/revoke",
		RegistrationEndpoint: "https://as.example.org/register",
		ScopesSupported:      []string{"openid", "patient/*.rs"}, ResponseTypesSupported: []string{"code"},
		GrantTypesSupported:               []string{"authorization_code", "refresh_token", "client_credentials", "password"},
		TokenEndpointAuthMethodsSupported: []string{"private_key_jwt"}, TokenEndpointAuthSigningAlgValuesSupported: []string{"ES384"},
		CodeChallengeMethodsSupported: []string{"plain", "S256"},
	}
	t.Run("sso takes the issuer", func(t *testing.T) {
		d := fromOpenIDConfiguration(oc, &Document{Capabilities: []string{"launch-standalone", "sso-openid-connect", "client-confidential-asymmetric", "permission-patient", "permission-v2"}, ManagementEndpoint: "https://as.example.org/manage"})
		if d.Issuer != oc.Issuer || d.TokenEndpoint != oc.TokenEndpoint || d.JWKSURI != oc.JWKSURI || d.RegistrationEndpoint != oc.RegistrationEndpoint {
			t.Fatalf("%+v", d)
		}
		if strings.Join(d.GrantTypesSupported, ",") != "authorization_code,client_credentials" {
			t.Fatalf("grants %v", d.GrantTypesSupported)
		}
		if strings.Join(d.CodeChallengeMethodsSupported, ",") != "S256" {
			t.Fatalf("PKCE %v", d.CodeChallengeMethodsSupported)
		}
		if ps := d.Validate(); len(ps) != 0 {
			t.Fatalf("problems: %v", ps)
		}
	})
	t.Run("no sso, no issuer", func(t *testing.T) {
		d := fromOpenIDConfiguration(oc, &Document{Capabilities: []string{"launch-ehr"}})
		if d.Issuer != "" {
			t.Fatalf("issuer %q without sso", d.Issuer)
		}
	})
	t.Run("local wins", func(t *testing.T) {
		local := &Document{
			Capabilities:                  []string{"launch-ehr"},
			TokenEndpoint:                 "https://gateway.example.org/token",
			ScopesSupported:               []string{"launch"},
			CodeChallengeMethodsSupported: []string{"S256"},
			GrantTypesSupported:           []string{"authorization_code"},
		}
		d := fromOpenIDConfiguration(oc, local)
		if d.TokenEndpoint != local.TokenEndpoint || strings.Join(d.ScopesSupported, ",") != "launch" || strings.Join(d.GrantTypesSupported, ",") != "authorization_code" {
			t.Fatalf("%+v", d)
		}
		if d.AuthorizationEndpoint != oc.AuthorizationEndpoint {
			t.Fatal("empty member not filled")
		}
		d.ScopesSupported[0] = "changed"
		if local.ScopesSupported[0] != "launch" {
			t.Fatal("local modified")
		}
	})
	t.Run("grant types absent means authorization_code", func(t *testing.T) {
		c := *oc
		c.GrantTypesSupported = nil
		d := fromOpenIDConfiguration(&c, nil)
		if strings.Join(d.GrantTypesSupported, ",") != "authorization_code" {
			t.Fatalf("grants %v", d.GrantTypesSupported)
		}
	})
	t.Run("plain only leaves PKCE empty, so validation fails", func(t *testing.T) {
		c := *oc
		c.CodeChallengeMethodsSupported = []string{"plain"}
		d := fromOpenIDConfiguration(&c, &Document{Capabilities: []string{"launch-ehr"}})
		if len(d.CodeChallengeMethodsSupported) != 0 || !hasProblem(d.Validate(), SeverityError, "code_challenge_methods_supported", errMissing) {
			t.Fatalf("PKCE %v", d.CodeChallengeMethodsSupported)
		}
	})
	t.Run("nil configuration", func(t *testing.T) {
		if d := fromOpenIDConfiguration(nil, &Document{TokenEndpoint: "x"}); d.TokenEndpoint != "x" {
			t.Fatal(d)
		}
	})
}

// bodyStallTransport answers every request at once with a 200 whose body
// sends the start of a document and then stalls until the request's context
// ends: the fetch timeout must cut a body that never ends, however slowly the
// machine runs (no network, so no handshake can eat the timeout first).
type bodyStallTransport struct{}

func (bodyStallTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: http.StatusOK,
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       &stallBody{ctx: r.Context(), head: []byte(`{"issuer":`)},
		Request:    r,
	}, nil
}

type stallBody struct {
	ctx  context.Context
	head []byte
}

func (b *stallBody) Read(p []byte) (int, error) {
	if len(b.head) > 0 {
		n := copy(p, b.head)
		b.head = b.head[n:]
		return n, nil
	}
	<-b.ctx.Done()
	return 0, b.ctx.Err()
}

func (b *stallBody) Close() error { return nil }
