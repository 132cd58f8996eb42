// Command chi is the fhirguard demo FHIR server on the chi router. Run it
// with
//
//	go run ./examples/chi
//
// and follow the instructions it prints; -h lists the flags. The server,
// its flags and its embedded test authorization server are in package
// examples/internal/demo; this file shows the one thing that differs
// between routers: where fhirguard wraps the FHIR handler.
package main

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/fhirguard/fhirguard/examples/internal/demo"
)

func main() { demo.Main("chi", routes) }

// routes builds the router. Guard.Handler is an ordinary chi middleware
// (func(http.Handler) http.Handler): every request below the FHIR base is
// authenticated and authorized, except the public discovery documents and
// /metadata, which the Guard serves or passes through without a token.
func routes(app *demo.App) http.Handler {
	r := chi.NewRouter()
	r.Route(app.BasePath, func(r chi.Router) {
		r.Use(app.Guard.Handler)
		r.Handle("/*", app.FHIR) // the base itself and everything below it
	})
	// RFC 9728 metadata at /.well-known/oauth-protected-resource/<base>,
	// outside the base (and under it), public like the discovery documents.
	if err := app.Guard.MountProtectedResource(r); err != nil {
		panic(err) // only for a base path that cannot be a route pattern
	}
	if app.Auth != nil {
		r.Mount(demo.AuthPath, app.Auth) // the embedded test authorization server
	}
	return r
}
