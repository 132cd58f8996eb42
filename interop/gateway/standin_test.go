//go:build unix

package gateway

import (
	"fmt"
	"net"
	"net/http"

	fgateway "github.com/fhirguard/fhirguard/gateway"
	"github.com/fhirguard/fhirguard/middleware"
)

// startStandin (FHIRGUARD_GATEWAY_STANDIN=1, development only) serves the
// gateway in process: middleware.New in front of gateway.New.
func (s *suite) startStandin(port int) error {
	proxy, err := fgateway.New(fgateway.Config{Upstream: s.engineBase, BaseURL: s.publicBase})
	if err != nil {
		return err
	}
	g, err := middleware.New(middleware.Config{
		Authorize: middleware.AuthorizeConfig{BaseURL: s.publicBase, UpstreamBaseURL: s.engineBase},
		Auth: middleware.AuthConfig{
			Issuers: []string{s.authTLS.URL}, JWKSURL: s.authTLS.URL + "/jwks",
			HTTPClient: s.authTLS.Client(), InsecureAllowHTTP: true,
		},
	})
	if err != nil {
		proxy.Close()
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("/", g.Handler(proxy))
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		g.Close()
		proxy.Close()
		return errPortTaken
	}
	srv := &http.Server{Handler: mux}
	done := make(chan struct{})
	go func() { _ = srv.Serve(l); close(done) }()
	s.standin = func() { srv.Close(); <-done; g.Close(); proxy.Close() }
	return s.waitReady(done, func() error { return fmt.Errorf("stand-in stopped") })
}
