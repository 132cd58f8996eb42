package discovery

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func serve(h http.Handler, method, target string, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHandlerGET(t *testing.T) {
	h := mustHandler(t, validDocument(), HandlerConfig{})
	// SMART: JSON whatever the Accept header.
	for _, accept := range []string{"", "application/json", "application/fhir+json", "text/html", "application/xml", "*/*", "text/html;q=1, application/json;q=0"} {
		t.Run("accept "+accept, func(t *testing.T) {
			w := serve(h, http.MethodGet, "/.well-known/smart-configuration", map[string]string{"Accept": accept})
			if w.Code != http.StatusOK {
				t.Fatalf("status %d", w.Code)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
			if !bytes.Equal(w.Body.Bytes(), h.body()) || !json.Valid(w.Body.Bytes()) {
				t.Fatalf("body %q", w.Body.String())
			}
			if got := w.Header().Get("Content-Length"); got != strconv.Itoa(len(h.body())) {
				t.Fatalf("Content-Length %q, body %d bytes", got, len(h.body()))
			}
			if w.Header().Get("Access-Control-Allow-Origin") != "*" {
				t.Fatal("no CORS header")
			}
			if w.Header().Get("ETag") != h.etag() || !strings.HasPrefix(h.etag(), `"`) || strings.HasPrefix(h.etag(), "W/") {
				t.Fatalf("ETag %q / %q", w.Header().Get("ETag"), h.etag())
			}
			if cc := w.Header().Get("Cache-Control"); cc != "public, max-age=3600" {
				t.Fatalf("Cache-Control %q", cc)
			}
		})
	}
}

func TestHandlerHEAD(t *testing.T) {
	h := mustHandler(t, validDocument(), HandlerConfig{})
	w := serve(h, http.MethodHead, "/", nil)
	if w.Code != http.StatusOK || w.Body.Len() != 0 {
		t.Fatalf("status %d, body %d bytes", w.Code, w.Body.Len())
	}
	if w.Header().Get("Content-Length") != strconv.Itoa(len(h.body())) || w.Header().Get("ETag") != h.etag() ||
		w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v", w.Header())
	}
}

func TestHandlerCacheControl(t *testing.T) {
	tests := []struct {
		name   string
		maxAge time.Duration
		want   string
	}{
		{"default", 0, "public, max-age=3600"},
		{"five minutes", 5 * time.Minute, "public, max-age=300"},
		{"one day", 24 * time.Hour, "public, max-age=86400"},
		{"no-cache", -1, "public, no-cache"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := mustHandler(t, validDocument(), HandlerConfig{MaxAge: tt.maxAge})
			if got := serve(h, http.MethodGet, "/", nil).Header().Get("Cache-Control"); got != tt.want {
				t.Fatalf("Cache-Control %q, want %q", got, tt.want)
			}
		})
	}
	if _, err := NewHandler(validDocument(), HandlerConfig{MaxAge: time.Millisecond}); err == nil {
		t.Fatal("sub-second max-age accepted")
	}
	if _, err := NewHandler(nil, HandlerConfig{}); err == nil {
		t.Fatal("nil document accepted")
	}
}

func TestHandlerConditionalGET(t *testing.T) {
	h := mustHandler(t, validDocument(), HandlerConfig{})
	etag := h.etag()
	opaque := strings.Trim(etag, `"`)
	tests := []struct {
		name string
		inm  []string
		want int
	}{
		{"exact", []string{etag}, http.StatusNotModified},
		{"weak form matches (weak comparison)", []string{"W/" + etag}, http.StatusNotModified},
		{"star", []string{"*"}, http.StatusNotModified},
		{"in a list", []string{`"a", ` + etag + `, "b"`}, http.StatusNotModified},
		{"in a list without spaces", []string{`"a",` + etag}, http.StatusNotModified},
		{"weak in a list", []string{`W/"a", W/` + etag}, http.StatusNotModified},
		{"second header line", []string{`"a"`, etag}, http.StatusNotModified},
		{"tabs and commas", []string{"\t,, " + etag + " ,"}, http.StatusNotModified},
		{"other tag", []string{`"other"`}, http.StatusOK},
		{"unquoted", []string{opaque}, http.StatusOK},
		{"prefix of the tag", []string{`"` + opaque[:10] + `"`}, http.StatusOK},
		{"tag plus extra", []string{`"` + opaque + `x"`}, http.StatusOK},
		{"lower-case w/", []string{"w/" + etag}, http.StatusOK},
		{"unterminated", []string{`"` + opaque}, http.StatusOK},
		{"malformed before match stops parsing", []string{`garbage, ` + etag}, http.StatusOK},
		{"empty", []string{""}, http.StatusOK},
	}
	for _, tt := range tests {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			t.Run(tt.name+" "+method, func(t *testing.T) {
				r := httptest.NewRequest(method, "/", nil)
				for _, v := range tt.inm {
					r.Header.Add("If-None-Match", v)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != tt.want {
					t.Fatalf("status %d, want %d", w.Code, tt.want)
				}
				if tt.want == http.StatusNotModified {
					if w.Body.Len() != 0 {
						t.Fatal("304 with a body")
					}
					// RFC 9110 §15.4.5: the 304 carries the validator and caching headers.
					if w.Header().Get("ETag") != etag || w.Header().Get("Cache-Control") == "" || w.Header().Get("Access-Control-Allow-Origin") != "*" {
						t.Fatalf("304 headers %v", w.Header())
					}
				}
			})
		}
	}
}

func TestHandlerMethods(t *testing.T) {
	h := mustHandler(t, validDocument(), HandlerConfig{})
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodTrace, http.MethodConnect, "PROPFIND", "get"} {
		t.Run(m, func(t *testing.T) {
			w := serve(h, m, "/", nil)
			if w.Code != http.StatusMethodNotAllowed {
				t.Fatalf("status %d", w.Code)
			}
			if got := w.Header().Get("Allow"); got != "GET, HEAD, OPTIONS" {
				t.Fatalf("Allow %q", got)
			}
			if w.Header().Get("Access-Control-Allow-Origin") != "*" {
				t.Fatal("no CORS header on 405")
			}
			if w.Body.Len() != 0 {
				t.Fatalf("body %q", w.Body.String())
			}
		})
	}
}

func TestHandlerCORS(t *testing.T) {
	h := mustHandler(t, validDocument(), HandlerConfig{})
	t.Run("simple GET from any origin", func(t *testing.T) {
		for _, origin := range []string{"https://app.example.com", "null", "http://localhost:3000"} {
			w := serve(h, http.MethodGet, "/", map[string]string{"Origin": origin, "Accept": "application/json"})
			if w.Code != http.StatusOK || w.Header().Get("Access-Control-Allow-Origin") != "*" {
				t.Fatalf("%s: status %d, ACAO %q", origin, w.Code, w.Header().Get("Access-Control-Allow-Origin"))
			}
			if w.Header().Get("Access-Control-Allow-Credentials") != "" {
				t.Fatal("credentials allowed with a wildcard origin")
			}
			if !strings.Contains(w.Header().Get("Access-Control-Expose-Headers"), "ETag") {
				t.Fatal("ETag not exposed")
			}
		}
	})
	t.Run("preflight", func(t *testing.T) {
		w := serve(h, http.MethodOptions, "/", map[string]string{
			"Origin":                         "https://app.example.com",
			"Access-Control-Request-Method":  "GET",
			"Access-Control-Request-Headers": "if-none-match, x-requested-with",
		})
		if w.Code != http.StatusNoContent {
			t.Fatalf("status %d", w.Code)
		}
		want := map[string]string{
			"Access-Control-Allow-Origin":  "*",
			"Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
			"Access-Control-Allow-Headers": "if-none-match, x-requested-with",
			"Access-Control-Max-Age":       "86400",
			"Vary":                         "Access-Control-Request-Headers",
		}
		for k, v := range want {
			if got := w.Header().Get(k); got != v {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
		if w.Body.Len() != 0 {
			t.Fatal("preflight with a body")
		}
	})
	t.Run("preflight with odd requested headers is not echoed", func(t *testing.T) {
		w := serve(h, http.MethodOptions, "/", map[string]string{
			"Access-Control-Request-Method":  "GET",
			"Access-Control-Request-Headers": "x-a\x7f",
		})
		if got := w.Header().Get("Access-Control-Allow-Headers"); got != "Accept, If-None-Match, Cache-Control" {
			t.Fatalf("Allow-Headers %q", got)
		}
	})
	t.Run("preflight keeps an outer Vary", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodOptions, "/", nil)
		r.Header.Set("Access-Control-Request-Method", "GET")
		w := httptest.NewRecorder()
		w.Header().Set("Vary", "Origin")
		h.ServeHTTP(w, r)
		if got := w.Header().Values("Vary"); len(got) != 2 || got[0] != "Origin" {
			t.Fatalf("Vary %q", got)
		}
	})
	t.Run("preflight without requested headers", func(t *testing.T) {
		w := serve(h, http.MethodOptions, "/", map[string]string{"Access-Control-Request-Method": "HEAD"})
		if w.Code != http.StatusNoContent || w.Header().Get("Access-Control-Allow-Methods") == "" {
			t.Fatalf("status %d, headers %v", w.Code, w.Header())
		}
	})
	t.Run("plain OPTIONS", func(t *testing.T) {
		w := serve(h, http.MethodOptions, "/", nil)
		if w.Code != http.StatusNoContent || w.Header().Get("Allow") != "GET, HEAD, OPTIONS" {
			t.Fatalf("status %d, headers %v", w.Code, w.Header())
		}
		if w.Header().Get("Access-Control-Allow-Methods") != "" {
			t.Fatal("preflight headers on a plain OPTIONS")
		}
	})
}

func TestHandlerUpdate(t *testing.T) {
	h := mustHandler(t, validDocument(), HandlerConfig{})
	oldTag, oldBody := h.etag(), h.body()

	bad := validDocument()
	bad.CodeChallengeMethodsSupported = []string{"plain"}
	if err := h.Update(bad); err == nil {
		t.Fatal("invalid update accepted")
	}
	if h.etag() != oldTag {
		t.Fatal("failed update changed the document")
	}
	if err := h.Update(nil); err == nil {
		t.Fatal("nil update accepted")
	}

	d := validDocument()
	d.TokenEndpoint = "https://auth.example.org/v2/token"
	if err := h.Update(d); err != nil {
		t.Fatal(err)
	}
	if h.etag() == oldTag || bytes.Equal(h.body(), oldBody) {
		t.Fatal("update did not change body and ETag")
	}
	if got := h.Document().TokenEndpoint; got != d.TokenEndpoint {
		t.Fatalf("Document().TokenEndpoint = %q", got)
	}
	if got := h.current().restSecurity().oauthURI("token"); got != d.TokenEndpoint {
		t.Fatalf("security token %q", got)
	}
	// An old ETag no longer matches.
	if w := serve(h, http.MethodGet, "/", map[string]string{"If-None-Match": oldTag}); w.Code != http.StatusOK {
		t.Fatalf("old ETag gave %d", w.Code)
	}
	// The same document gives the same ETag (strong: byte-identical).
	h2 := mustHandler(t, d, HandlerConfig{})
	if h2.etag() != h.etag() {
		t.Fatal("same document, different ETag")
	}
}

func TestHandlerDocumentIsACopy(t *testing.T) {
	d := validDocument()
	h := mustHandler(t, d, HandlerConfig{})
	before := h.body()
	d.Capabilities[0] = "changed"
	got := h.Document()
	got.TokenEndpoint = "changed"
	got.Capabilities[0] = "changed"
	body := h.body()
	body[0] = 'X'
	if !bytes.Equal(h.body(), before) || h.Document().TokenEndpoint == "changed" || h.Document().Capabilities[0] == "changed" {
		t.Fatal("handler state shared with its caller")
	}
}

func TestHandlerConcurrentUpdate(t *testing.T) {
	h := mustHandler(t, validDocument(), HandlerConfig{})
	d2 := validDocument()
	d2.TokenEndpoint = "https://auth.example.org/other"
	h2 := mustHandler(t, d2, HandlerConfig{})
	bodies := map[string]string{h.etag(): string(h.body()), h2.etag(): string(h2.body())}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			if i%2 == 0 {
				_ = h.Update(d2)
			} else {
				_ = h.Update(validDocument())
			}
		}
	}()
	for i := 0; i < 500; i++ {
		w := serve(h, http.MethodGet, "/", nil)
		if want, ok := bodies[w.Header().Get("ETag")]; !ok || want != w.Body.String() {
			t.Fatal("ETag and body of different documents")
		}
	}
	<-done
}

// TestHandlerOverHTTP checks that the headers survive a real net/http
// server and client.
func TestHandlerOverHTTP(t *testing.T) {
	h := mustHandler(t, validDocument(), HandlerConfig{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	tests := []struct {
		name   string
		method string
		hdr    map[string]string
		status int
		want   map[string]string
	}{
		{"GET", http.MethodGet, map[string]string{"Accept": "text/html"}, 200, map[string]string{
			"Content-Type": "application/json", "ETag": h.etag(), "Access-Control-Allow-Origin": "*",
			"Content-Length": strconv.Itoa(len(h.body())), "Cache-Control": "public, max-age=3600",
		}},
		{"HEAD", http.MethodHead, nil, 200, map[string]string{"Content-Length": strconv.Itoa(len(h.body())), "ETag": h.etag()}},
		{"304", http.MethodGet, map[string]string{"If-None-Match": "W/" + h.etag()}, 304, map[string]string{"ETag": h.etag(), "Access-Control-Allow-Origin": "*"}},
		{"preflight", http.MethodOptions, map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"}, 204,
			map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS"}},
		{"405", http.MethodPost, nil, 405, map[string]string{"Allow": "GET, HEAD, OPTIONS", "Access-Control-Allow-Origin": "*"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+"/.well-known/smart-configuration", nil)
			for k, v := range tt.hdr {
				req.Header.Set(k, v)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d", resp.StatusCode)
			}
			for k, v := range tt.want {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if tt.status == 200 && tt.method == http.MethodGet && !bytes.Equal(body, h.body()) {
				t.Error("body differs")
			}
			if tt.status != 200 && len(body) != 0 {
				t.Errorf("body %q", body)
			}
		})
	}
}
