// Package discovery publishes what a SMART on FHIR client needs to find a
// FHIR server's authorization: the SMART App Launch 2.2 configuration
// document at <base>/.well-known/smart-configuration, the same endpoints as
// the CapabilityStatement rest.security block of /metadata, and RFC 9728
// protected-resource metadata.
//
// Document has a field for every member SMART 2.2 defines, plus vendor
// extensions. Document.Validate returns every problem, errors and
// warnings, against the spec and the discovery checks of Inferno's STU2
// test kit (PKCE S256 required and plain refused, absolute endpoint URLs,
// members required by the capabilities). The non-normative capability
// names context-passthrough-banner and context-passthrough-style are
// accepted and served as context-banner and context-style.
//
// Handler serves a Document: the body is encoded once, responses are
// application/json whatever the Accept header, carry a strong ETag and
// Cache-Control, answer If-None-Match with 304, allow any origin (CORS,
// preflight included), and refuse other methods than GET, HEAD and OPTIONS
// with 405.
//
// A server in front of an existing OAuth server can build its document
// from the server's /.well-known/openid-configuration: see Remote (fetch at
// start, optional background refresh) or FetchOpenIDConfiguration and
// Derive. Derive reads the capabilities from the server's metadata (grant
// types, client authentication methods and algorithms, PKCE methods,
// scopes) unless they are given, advertises only what the server supports,
// narrows scopes_supported and response_types_supported to what the
// capabilities use, and returns what in the metadata is imperfect for SMART
// as warnings; with DeriveConfig.Strict (RemoteConfig.Strict) it refuses
// such metadata instead. A document advertising client-public is served
// with "none" among its client authentication methods.
//
// Document.Security gives the CapabilityStatement rest.security block
// (service SMART-on-FHIR and the oauth-uris extension), and
// PatchCapabilityStatement merges it into a server's own statement, so
// /metadata and the well-known document always agree; its cors flag is
// for the server to set (true only when the FHIR API itself answers
// cross-origin requests). WellKnown routes both well-known documents of
// one FHIR base; MountProtectedResource registers the RFC 9728 metadata on
// a router at its RFC 9728 location (/.well-known/oauth-protected-resource
// followed by the base path), outside the FHIR base, and under the base.
//
// The package imports nothing else from the module.
package discovery
