package discovery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// testResource is the FHIR base of the Remotes under test.
const testResource = "https://fhir.example.org/r4"

func remoteLocal() *Document {
	return &Document{
		Capabilities:       []string{"launch-ehr", "launch-standalone", "sso-openid-connect", "client-public", "permission-v2", "client-confidential-asymmetric"},
		ManagementEndpoint: "https://manage.example.org",
		// The test server offers plain and S256; plain is dropped.
	}
}

func TestNewRemote(t *testing.T) {
	srv := newOpenIDServer(t, true)
	r, err := NewRemote(context.Background(), RemoteConfig{
		Issuer:   srv.URL,
		Local:    remoteLocal(),
		Resource: "https://fhir.example.org/r4",
		Fetch:    FetchConfig{Client: srv.Client()},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	d := r.Handler().Document()
	if d.Issuer != srv.URL || d.TokenEndpoint != srv.URL+"/token" || d.ManagementEndpoint != "https://manage.example.org" {
		t.Fatalf("%+v", d)
	}
	if len(d.CodeChallengeMethodsSupported) != 1 || d.CodeChallengeMethodsSupported[0] != "S256" {
		t.Fatalf("PKCE %v", d.CodeChallengeMethodsSupported)
	}
	if r.OpenIDConfiguration().UserinfoEndpoint != srv.URL+"/userinfo" {
		t.Fatal("OpenID configuration not kept")
	}
	prm := r.ProtectedResourceHandler().Metadata()
	if prm.Resource != "https://fhir.example.org/r4" || len(prm.AuthorizationServers) != 1 || prm.AuthorizationServers[0] != srv.URL {
		t.Fatalf("%+v", prm)
	}
	// The handler serves it with Inferno's blessing.
	w := serve(r.Handler(), http.MethodGet, "/", map[string]string{"Accept": "application/json"})
	if f, _ := infernoWellKnown(w.Code, w.Header(), w.Body.Bytes(), ""); len(f) != 0 {
		t.Fatal(f)
	}
}

func TestNewRemoteFailures(t *testing.T) {
	srv := newOpenIDServer(t, true)
	tests := []struct {
		name    string
		cfg     RemoteConfig
		prepare func()
		want    error
	}{
		{"no issuer", RemoteConfig{Resource: testResource}, nil, nil},
		{"no resource", RemoteConfig{Issuer: srv.URL, Local: remoteLocal(), Fetch: FetchConfig{Client: srv.Client()}}, nil, nil},
		{"refresh too often", RemoteConfig{Issuer: srv.URL, Resource: testResource, RefreshInterval: time.Nanosecond}, nil, nil},
		{"negative refresh", RemoteConfig{Issuer: srv.URL, Resource: testResource, RefreshInterval: -time.Second}, nil, nil},
		{"bad handler config", RemoteConfig{Issuer: srv.URL, Resource: testResource, Handler: HandlerConfig{MaxAge: time.Millisecond}}, nil, nil},
		{"server down", RemoteConfig{Issuer: srv.URL, Resource: testResource, Local: remoteLocal(), Fetch: FetchConfig{Client: srv.Client()}}, func() { srv.status.Store(503) }, errHTTPStatus},
		{"http issuer", RemoteConfig{Issuer: "http://as.example.org", Resource: testResource, Local: remoteLocal()}, nil, errInsecureIssuer},
		{"invalid result", RemoteConfig{Issuer: srv.URL, Resource: testResource, Local: remoteLocal(), Fetch: FetchConfig{Client: srv.Client()}}, func() {
			srv.setEdit(func(m map[string]any) { m["code_challenge_methods_supported"] = []string{"plain"} })
		}, errMissing},
		{"invalid resource", RemoteConfig{Issuer: srv.URL, Local: remoteLocal(), Resource: "/fhir", Fetch: FetchConfig{Client: srv.Client()}}, nil, errRelativeURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.status.Store(0)
			srv.setEdit(func(map[string]any) {})
			if tt.prepare != nil {
				tt.prepare()
			}
			r, err := NewRemote(context.Background(), tt.cfg)
			if err == nil {
				r.Close()
				t.Fatal("accepted")
			}
			if tt.want != nil && !is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRemoteRefresh(t *testing.T) {
	srv := newOpenIDServer(t, true)
	r, err := NewRemote(context.Background(), RemoteConfig{Issuer: srv.URL, Local: remoteLocal(), Resource: "https://fhir.example.org/r4", Fetch: FetchConfig{Client: srv.Client()}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tag := r.Handler().etag()

	// A failed refresh keeps the document and says why.
	srv.status.Store(500)
	if err := r.Refresh(context.Background()); !is(err, errHTTPStatus) {
		t.Fatalf("err %v", err)
	}
	srv.status.Store(0)
	srv.setEdit(func(m map[string]any) { delete(m, "token_endpoint") })
	var ve *ValidationError
	if err := r.Refresh(context.Background()); !errors.As(err, &ve) {
		t.Fatalf("err %v", err)
	}
	if r.Handler().etag() != tag {
		t.Fatal("failed refresh changed the document")
	}

	// A good one replaces it, in the security block too.
	srv.setEdit(func(m map[string]any) { m["token_endpoint"] = srv.URL + "/v2/token" })
	if err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r.Handler().etag() == tag || r.Handler().Document().TokenEndpoint != srv.URL+"/v2/token" || r.Handler().current().restSecurity().oauthURI("token") != srv.URL+"/v2/token" {
		t.Fatal("refresh not served")
	}
}

func TestRemoteBackgroundRefreshAndClose(t *testing.T) {
	old := minRefreshInterval
	minRefreshInterval = time.Millisecond
	defer func() { minRefreshInterval = old }()

	srv := newOpenIDServer(t, true)
	var mu sync.Mutex
	var results []error
	refreshed := make(chan struct{}, 100)
	r, err := NewRemote(context.Background(), RemoteConfig{
		Issuer: srv.URL, Resource: testResource, Local: remoteLocal(), Fetch: FetchConfig{Client: srv.Client()},
		RefreshInterval: 5 * time.Millisecond,
		OnRefresh: func(err error) {
			mu.Lock()
			results = append(results, err)
			mu.Unlock()
			select {
			case refreshed <- struct{}{}:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.setEdit(func(m map[string]any) { m["token_endpoint"] = srv.URL + "/new" })
	deadline := time.After(time.Minute) // bounds a hang only
	for r.Handler().Document().TokenEndpoint != srv.URL+"/new" {
		select {
		case <-refreshed:
		case <-deadline:
			t.Fatal("background refresh never applied")
		}
	}
	srv.status.Store(500)
	for {
		mu.Lock()
		last := results[len(results)-1]
		mu.Unlock()
		if is(last, errHTTPStatus) {
			break
		}
		select {
		case <-refreshed:
		case <-deadline:
			t.Fatal("refresh failure never reported")
		}
	}
	if r.Handler().Document().TokenEndpoint != srv.URL+"/new" {
		t.Fatal("failed refresh dropped the document")
	}

	r.Close()
	r.Close() // idempotent
	// TestRemoteCloseStopsRefresh proves the goroutine is gone.
}

// handlerTransport answers requests in memory with a handler: no
// connection, so no goroutine besides the Remote's own.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	return rec.Result(), nil
}

// TestRemoteCloseStopsRefresh: the background refresh is a goroutine that
// Close stops, and waits for.
func TestRemoteCloseStopsRefresh(t *testing.T) {
	const issuer = "https://as.example.org"
	as := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": issuer, "authorization_endpoint": issuer + "/authorize", "token_endpoint": issuer + "/token",
			"jwks_uri": issuer + "/jwks", "code_challenge_methods_supported": []string{"S256"},
			"scopes_supported": []string{"launch/patient", "patient/*.rs"},
		})
	})
	old := minRefreshInterval
	minRefreshInterval = time.Millisecond
	defer func() { minRefreshInterval = old }()

	before := goleak.IgnoreCurrent()
	refreshed := make(chan error, 1)
	r, err := NewRemote(context.Background(), RemoteConfig{
		Issuer: issuer, Resource: testResource,
		Fetch:           FetchConfig{Client: &http.Client{Transport: handlerTransport{as}}},
		RefreshInterval: time.Millisecond,
		OnRefresh: func(err error) {
			select {
			case refreshed <- err:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-refreshed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute): // bounds a hang only
		t.Fatal("no background refresh")
	}
	if goleak.Find(before) == nil {
		t.Fatal("no refresh goroutine found before Close: the check below proves nothing")
	}
	r.Close()
	goleak.VerifyNone(t, before)
	r.Close() // idempotent
}

// TestRemoteCloseWithoutRefresh: Close without a background refresh, and
// handlers that stay usable after it.
func TestRemoteCloseWithoutRefresh(t *testing.T) {
	srv := newOpenIDServer(t, true)
	r, err := NewRemote(context.Background(), RemoteConfig{Issuer: srv.URL, Resource: testResource, Local: remoteLocal(), Fetch: FetchConfig{Client: srv.Client()}})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	r.Close()
	for _, h := range []http.Handler{r.Handler(), r.ProtectedResourceHandler()} {
		if w := serve(h, http.MethodGet, "/", nil); w.Code != http.StatusOK {
			t.Fatalf("%T after Close: %d", h, w.Code)
		}
	}
}

// TestRemoteHandlersNeverNil: a Remote always has both handlers, so that
// wiring them into middleware.Config cannot hand it a nil pointer; a
// missing resource is refused by NewRemote instead.
func TestRemoteHandlersNeverNil(t *testing.T) {
	srv := newOpenIDServer(t, true)
	if r, err := NewRemote(context.Background(), RemoteConfig{Issuer: srv.URL, Local: remoteLocal(), Fetch: FetchConfig{Client: srv.Client()}}); err == nil || r != nil {
		t.Fatalf("no Resource: %v, %v", r, err)
	} else if !strings.Contains(err.Error(), "RemoteConfig.Resource") {
		t.Fatalf("error does not name the field: %v", err)
	}
	r, err := NewRemote(context.Background(), RemoteConfig{Issuer: srv.URL, Resource: testResource, Local: remoteLocal(), Fetch: FetchConfig{Client: srv.Client()}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Handler() == nil || r.ProtectedResourceHandler() == nil {
		t.Fatal("nil handler")
	}
	var h http.Handler = r.ProtectedResourceHandler()
	if w := serve(h, http.MethodGet, "/", nil); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), testResource) {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

// serveOIDCProvider makes srv serve the oidc-provider fixture with its own
// URL as issuer, edited by edit.
func serveOIDCProvider(t *testing.T, srv *openIDServer, edit func(m map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "oidc-provider-defaults.json"))
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.ReplaceAll(b, []byte("https://as.example.org"), []byte(srv.URL))
	srv.setEdit(func(m map[string]any) {
		clear(m)
		if err := json.Unmarshal(b, &m); err != nil {
			panic(err)
		}
		if edit != nil {
			edit(m)
		}
	})
}

// TestNewRemoteOIDCProvider: in front of an oidc-provider with default
// settings the server starts, derives what it may advertise and says what
// is imperfect; strict mode refuses to start.
func TestNewRemoteOIDCProvider(t *testing.T) {
	srv := newOpenIDServer(t, true)
	serveOIDCProvider(t, srv, nil)
	var got []Problems
	r, err := NewRemote(context.Background(), RemoteConfig{
		Issuer:     srv.URL,
		Resource:   "https://fhir.example.org/r4",
		Fetch:      FetchConfig{Client: srv.Client()},
		OnWarnings: func(ps Problems) { got = append(got, ps) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	d := r.Handler().Document()
	if !slices.Equal(d.Capabilities, []string{"launch-standalone", "client-public", "client-confidential-symmetric", "permission-offline"}) ||
		!slices.Equal(d.ResponseTypesSupported, []string{"code"}) || !slices.Contains(d.TokenEndpointAuthMethodsSupported, "none") {
		t.Fatalf("served %+v", d)
	}
	ws := r.Warnings()
	if len(got) != 1 || !slices.EqualFunc(got[0], ws, func(a, b Problem) bool { return a.Error() == b.Error() }) {
		t.Fatalf("OnWarnings got %v, Warnings %v", got, ws)
	}
	if !hasProblem(ws, SeverityWarning, "token_endpoint_auth_signing_alg_values_supported", errUnsupported) {
		t.Fatalf("warnings %v", ws)
	}
	ws[0].Detail = "changed"
	if r.Warnings()[0].Detail == "changed" {
		t.Fatal("Warnings returned the Remote's own slice")
	}
	if prm := r.ProtectedResourceHandler().Metadata(); prm.Resource != "https://fhir.example.org/r4" || !slices.Equal(prm.ScopesSupported, d.ScopesSupported) {
		t.Fatalf("protected resource %+v", prm)
	}

	// The same refreshed: no new report. Changed: reported.
	if err := r.Refresh(context.Background()); err != nil || len(got) != 1 {
		t.Fatalf("refresh: %v, reports %d", err, len(got))
	}
	serveOIDCProvider(t, srv, smartConfigured)
	if err := r.Refresh(context.Background()); err != nil || len(got) != 2 {
		t.Fatalf("refresh: %v, reports %d", err, len(got))
	}
	if f := findingsOf(got[1]); len(f) != 0 || !r.Handler().Document().advertises(capabilityClientConfidentialAsymmetric) {
		t.Fatalf("after the server was fixed: findings %v, capabilities %q", f, r.Handler().Document().Capabilities)
	}

	t.Run("strict", func(t *testing.T) {
		serveOIDCProvider(t, srv, nil)
		r, err := NewRemote(context.Background(), RemoteConfig{Issuer: srv.URL, Resource: testResource, Strict: true, Fetch: FetchConfig{Client: srv.Client()}})
		if err == nil {
			r.Close()
			t.Fatal("strict mode started")
		}
		var ve *ValidationError
		if !errors.As(err, &ve) || !is(err, errUnsupported) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("explicit capabilities", func(t *testing.T) {
		serveOIDCProvider(t, srv, nil)
		r, err := NewRemote(context.Background(), RemoteConfig{Issuer: srv.URL, Resource: testResource, Local: &Document{Capabilities: demoCapabilities},
			Fetch: FetchConfig{Client: srv.Client()}})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if r.Handler().Document().advertises(capabilityClientConfidentialAsymmetric) {
			t.Fatal("asymmetric clients advertised without RS384 or ES384")
		}
	})
}
