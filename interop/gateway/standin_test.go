//go:build unix

package gateway

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"

	"github.com/fhirguard/fhirguard/middleware"
)

// startStandin (FHIRGUARD_GATEWAY_STANDIN=1, development only) serves the
// gateway in process: middleware.New in front of a plain
// httputil.ReverseProxy that rewrites the engine's address textually.
func (s *suite) startStandin(port int) error {
	up, err := url.Parse(s.engineBase)
	if err != nil {
		return err
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host, pr.Out.Host = up.Scheme, up.Host, up.Host
		},
		ModifyResponse: func(resp *http.Response) error {
			for _, k := range []string{"Location", "Content-Location"} {
				if v := resp.Header.Get(k); v != "" {
					resp.Header.Set(k, strings.Replace(v, s.engineBase, s.publicBase, 1))
				}
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			b = bytes.ReplaceAll(b, []byte(s.engineBase), []byte(s.publicBase))
			resp.Body = io.NopCloser(bytes.NewReader(b))
			resp.ContentLength = int64(len(b))
			resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
			return nil
		},
	}
	g, err := middleware.New(middleware.Config{
		Authorize: middleware.AuthorizeConfig{BaseURL: s.publicBase, AlternateBaseURLs: []string{s.engineBase}},
		Auth: middleware.AuthConfig{
			Issuers: []string{s.authTLS.URL}, JWKSURL: s.authTLS.URL + "/jwks",
			HTTPClient: s.authTLS.Client(), InsecureAllowHTTP: true,
		},
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("/", g.Handler(rp))
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		g.Close()
		return errPortTaken
	}
	srv := &http.Server{Handler: mux}
	done := make(chan struct{})
	go func() { _ = srv.Serve(l); close(done) }()
	s.standin = func() { srv.Close(); <-done; g.Close() }
	return s.waitReady(done, func() error { return fmt.Errorf("stand-in stopped") })
}
