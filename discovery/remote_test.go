package discovery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

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
	defer r.Stop()
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
		{"no issuer", RemoteConfig{}, nil, nil},
		{"refresh too often", RemoteConfig{Issuer: srv.URL, RefreshInterval: time.Nanosecond}, nil, nil},
		{"negative refresh", RemoteConfig{Issuer: srv.URL, RefreshInterval: -time.Second}, nil, nil},
		{"bad handler config", RemoteConfig{Issuer: srv.URL, Handler: HandlerConfig{MaxAge: time.Millisecond}}, nil, nil},
		{"server down", RemoteConfig{Issuer: srv.URL, Local: remoteLocal(), Fetch: FetchConfig{Client: srv.Client()}}, func() { srv.status.Store(503) }, ErrHTTPStatus},
		{"http issuer", RemoteConfig{Issuer: "http://as.example.org", Local: remoteLocal()}, nil, ErrInsecureIssuer},
		{"invalid result", RemoteConfig{Issuer: srv.URL, Local: remoteLocal(), Fetch: FetchConfig{Client: srv.Client()}}, func() {
			srv.setEdit(func(m map[string]any) { m["code_challenge_methods_supported"] = []string{"plain"} })
		}, ErrMissing},
		{"invalid resource", RemoteConfig{Issuer: srv.URL, Local: remoteLocal(), Resource: "/fhir", Fetch: FetchConfig{Client: srv.Client()}}, nil, ErrRelativeURL},
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
				r.Stop()
				t.Fatal("accepted")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
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
	defer r.Stop()
	tag := r.Handler().ETag()

	// A failed refresh keeps the document and says why.
	srv.status.Store(500)
	if err := r.Refresh(context.Background()); !errors.Is(err, ErrHTTPStatus) {
		t.Fatalf("err %v", err)
	}
	srv.status.Store(0)
	srv.setEdit(func(m map[string]any) { delete(m, "token_endpoint") })
	var ve *ValidationError
	if err := r.Refresh(context.Background()); !errors.As(err, &ve) {
		t.Fatalf("err %v", err)
	}
	if r.Handler().ETag() != tag {
		t.Fatal("failed refresh changed the document")
	}

	// A good one replaces it, in the security block too.
	srv.setEdit(func(m map[string]any) { m["token_endpoint"] = srv.URL + "/v2/token" })
	if err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r.Handler().ETag() == tag || r.Handler().Document().TokenEndpoint != srv.URL+"/v2/token" || r.Handler().Security().OAuthURI("token") != srv.URL+"/v2/token" {
		t.Fatal("refresh not served")
	}
}

func TestRemoteBackgroundRefreshAndStop(t *testing.T) {
	old := minRefreshInterval
	minRefreshInterval = time.Millisecond
	defer func() { minRefreshInterval = old }()

	srv := newOpenIDServer(t, true)
	var mu sync.Mutex
	var results []error
	refreshed := make(chan struct{}, 100)
	r, err := NewRemote(context.Background(), RemoteConfig{
		Issuer: srv.URL, Local: remoteLocal(), Fetch: FetchConfig{Client: srv.Client()},
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
		if errors.Is(last, ErrHTTPStatus) {
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

	r.Stop()
	r.Stop() // idempotent
	hits := srv.hits.Load()
	time.Sleep(30 * time.Millisecond)
	if srv.hits.Load() != hits {
		t.Fatal("requests after Stop: the refresh goroutine is still running")
	}
}

func TestRemoteStopWithoutRefresh(t *testing.T) {
	srv := newOpenIDServer(t, true)
	r, err := NewRemote(context.Background(), RemoteConfig{Issuer: srv.URL, Local: remoteLocal(), Fetch: FetchConfig{Client: srv.Client()}})
	if err != nil {
		t.Fatal(err)
	}
	r.Stop()
	r.Stop()
	if r.ProtectedResourceHandler() != nil {
		t.Fatal("protected-resource handler without a resource")
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
	defer r.Stop()
	d := r.Handler().Document()
	if !slices.Equal(d.Capabilities, []string{"launch-standalone", "client-public", "client-confidential-symmetric", "permission-offline"}) ||
		!slices.Equal(d.ResponseTypesSupported, []string{"code"}) || !slices.Contains(d.TokenEndpointAuthMethodsSupported, "none") {
		t.Fatalf("served %+v", d)
	}
	ws := r.Warnings()
	if len(got) != 1 || !slices.EqualFunc(got[0], ws, func(a, b Problem) bool { return a.Error() == b.Error() }) {
		t.Fatalf("OnWarnings got %v, Warnings %v", got, ws)
	}
	if !hasProblem(ws, SeverityWarning, "token_endpoint_auth_signing_alg_values_supported", ErrUnsupported) {
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
	if f := findingsOf(got[1]); len(f) != 0 || !r.Handler().Document().HasCapability(CapabilityClientConfidentialAsymmetric) {
		t.Fatalf("after the server was fixed: findings %v, capabilities %q", f, r.Handler().Document().Capabilities)
	}

	t.Run("strict", func(t *testing.T) {
		serveOIDCProvider(t, srv, nil)
		r, err := NewRemote(context.Background(), RemoteConfig{Issuer: srv.URL, Strict: true, Fetch: FetchConfig{Client: srv.Client()}})
		if err == nil {
			r.Stop()
			t.Fatal("strict mode started")
		}
		var ve *ValidationError
		if !errors.As(err, &ve) || !errors.Is(err, ErrUnsupported) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("explicit capabilities", func(t *testing.T) {
		serveOIDCProvider(t, srv, nil)
		r, err := NewRemote(context.Background(), RemoteConfig{Issuer: srv.URL, Local: &Document{Capabilities: demoCapabilities},
			Fetch: FetchConfig{Client: srv.Client()}})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Stop()
		if r.Handler().Document().HasCapability(CapabilityClientConfidentialAsymmetric) {
			t.Fatal("asymmetric clients advertised without RS384 or ES384")
		}
	})
}
