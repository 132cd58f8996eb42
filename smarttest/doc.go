// Package smarttest is an in-process SMART on FHIR authorization server for
// tests and demos, in the spirit of net/http/httptest and go-oidc's oidctest.
//
// # NOT FOR PRODUCTION
//
// smarttest is a test fixture. It approves authorization requests
// automatically for one configured user (or after one click on a bare
// consent page), keeps every grant, code and token in memory, has no user
// authentication, no persistence, no rate limiting and no TLS of its own.
// Never put it in front of real patient data.
//
// # What it serves
//
// Relative to its issuer URL:
//
//	/.well-known/openid-configuration   OpenID Connect discovery
//	/jwks                               the public signing keys (JWK Set)
//	/authorize                          authorization code + PKCE (GET or POST), EHR and standalone launch
//	/authorize/consent                  the demo consent form's target (Config.Consent)
//	/token                              authorization_code, refresh_token, client_credentials
//	/introspect                         RFC 7662 with the SMART profile fields
//	/revoke                             RFC 7009
//	/launch                             EHR launch simulator (see [Server.EHRLaunchURL])
//
// Discovery and the JWKS answer CORS requests from any origin, the token
// and revocation endpoints from the origins of registered redirect URIs and
// Config.CORSOrigins, so that a browser app at another origin can redeem
// its code and refresh its token.
//
// The FHIR server's own .well-known/smart-configuration is served by the FHIR
// server; [Server.SMARTConfiguration] returns the values it needs, and with
// them every URL a test needs: the issuer and JWKS URL to configure a
// resource server with, the token endpoint (the audience of client
// assertions) and the other endpoints.
//
// # Flows
//
//   - SMART App Launch: authorization code with PKCE (S256 only; plain and a
//     missing challenge are refused), state required and returned, aud must
//     equal the FHIR base. EHR launch binds a launch value from
//     [Server.RegisterLaunch] to its context (patient, encounter,
//     fhirContext, need_patient_banner, smart_style_url, intent, tenant);
//     standalone launch/patient picks Config.Patient (or, with
//     Config.Consent, the patient the user types on the consent page). The
//     EHR launch simulator, GET /launch?launch_uri=<app launch
//     URL>&patient=<id>[&encounter=<id>], plays the EHR: it registers a
//     single-use, short-lived launch value and redirects the browser to the
//     app's launch URL with iss and launch added; it only redirects to the
//     origins of registered redirect URIs. openid gives an id_token (RS256)
//     carrying fhirUser when fhirUser is granted; offline_access or
//     online_access give a refresh token that is rotated on every use (a
//     reused refresh token revokes its whole grant). A public client
//     refreshes without client_id, as SMART's refresh request has none (the
//     refresh token names its client; a client_id that is sent must match);
//     a confidential client's refresh token still needs the client's
//     authentication.
//   - SMART Backend Services: client_credentials with a private_key_jwt
//     client assertion (RS384 or ES384; iss = sub = client_id, aud = the
//     token URL, exp at most five minutes ahead, jti never reused). Only
//     system/ scopes are granted and tokens live at most five minutes.
//   - Direct minting for unit tests: [Server.MintToken] issues a JWT or an
//     opaque token with any claims; [Server.MintFlawedToken] makes
//     deliberately bad tokens (expired, wrong audience, alg none, unknown
//     key, ...) for negative tests. Each [Flaw] documents the token it
//     makes and what a correct resource server answers to it.
//
// For end-to-end tests, [Server.LaunchApp], [Server.Refresh] and
// [Server.BackendToken] play the app's side of each flow over real HTTP
// (PKCE verifier, state check, client assertion), and
// [SignClientAssertion] makes assertions for hand-built requests.
//
// Access tokens are JWTs in the style of RFC 9068 (header typ at+jwt; claims
// iss, sub, aud = the FHIR base, client_id, scope, exp, iat, jti, plus the
// SMART context claims patient, encounter, fhirUser, fhirContext,
// need_patient_banner, smart_style_url, intent and tenant), or opaque random
// strings that only the introspection endpoint can resolve
// (Config.OpaqueTokens). [Server.RotateKey] and [Server.RemoveKey] exercise a
// resource server's key refresh.
//
// # Standalone or mounted
//
// With an empty Config.Issuer, [New] starts its own httptest.Server; stop it
// with [Server.Close]. With Config.Issuer set, nothing is started: the
// Server is an http.Handler to mount at the issuer's path on another
// server, for example
//
//	auth, err := smarttest.New(smarttest.Config{
//		Issuer:   "http://127.0.0.1:8080/auth",
//		FHIRBase: "http://127.0.0.1:8080/fhir",
//		User:     "Practitioner/1",
//	})
//	mux.Handle("/auth/", auth)
//
// Requests may reach it with or without the issuer's path prefix (so
// http.StripPrefix also works).
package smarttest
