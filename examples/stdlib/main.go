// Command stdlib is the fhirguard demo FHIR server on the standard
// library's http.ServeMux. Run it with
//
//	go run ./examples/stdlib
//
// and follow the instructions it prints; -h lists the flags. The server,
// its flags and its embedded test authorization server are in package
// examples/internal/demo; this file shows the one thing that differs
// between routers: where fhirguard wraps the FHIR handler.
package main

import (
	"net/http"

	"github.com/fhirguard/fhirguard/examples/internal/demo"
)

func main() { demo.Main("stdlib", routes) }

// routes builds the router. Guard.Handler wraps the FHIR server: every
// request below the FHIR base is authenticated and authorized, except the
// public discovery documents and /metadata, which the Guard serves or
// passes through without a token.
func routes(app *demo.App) http.Handler {
	mux := http.NewServeMux()
	fhir := app.Guard.Handler(app.FHIR)
	mux.Handle(app.BasePath, fhir)     // the base itself: batch, transaction, system search
	mux.Handle(app.BasePath+"/", fhir) // everything below it
	// RFC 9728 metadata at /.well-known/oauth-protected-resource/<base>,
	// outside the base (and under it), public like the discovery documents.
	if err := app.Guard.MountProtectedResource(mux); err != nil {
		panic(err) // only for a base path that cannot be a route pattern
	}
	if app.Auth != nil {
		mux.Handle(demo.AuthPath+"/", app.Auth) // the embedded test authorization server
	}
	return mux
}
