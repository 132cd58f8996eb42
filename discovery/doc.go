// Package discovery publishes what a SMART on FHIR client needs to find a
// FHIR server's authorization: the SMART App Launch 2.2 configuration
// document at <base>/.well-known/smart-configuration, the same endpoints as
// the CapabilityStatement rest.security block of /metadata, and RFC 9728
// protected-resource metadata.
//
// Serving: NewHandler serves a Document and NewProtectedResourceHandler
// RFC 9728 metadata (Document.ProtectedResource builds it); give them to
// middleware.Config (SMARTConfiguration, ProtectedResource), which serves
// them at their well-known paths without a token. A server in front of an
// existing OAuth server uses NewRemote instead: it fetches the server's
// /.well-known/openid-configuration, builds the document with Derive,
// optionally refreshes it in the background until Close, and offers both
// handlers. Responses are encoded once, are application/json whatever the
// Accept header, carry a strong ETag and Cache-Control, answer
// If-None-Match with 304, allow any origin (CORS, preflight included), and
// refuse other methods than GET, HEAD and OPTIONS with 405.
//
// Validating: Document has a field for every member SMART 2.2 defines,
// plus vendor extensions. Document.Validate returns every problem, errors
// and warnings, against the spec and the discovery checks of Inferno's
// STU2 test kit (PKCE S256 required and plain refused, absolute endpoint
// URLs, members required by the capabilities); a misspelt capability or
// value is reported with the one it probably meant. FetchDocument fetches
// a server's SMART configuration and checks the response too. Capability
// and other spec values are plain strings, as in the spec. The
// non-normative capability names context-passthrough-banner and
// context-passthrough-style are accepted and served as context-banner and
// context-style.
//
// Deriving: Derive reads the capabilities from an authorization server's
// metadata (grant types, client authentication methods and algorithms,
// PKCE methods, scopes) unless they are given, advertises only what the
// server supports, narrows scopes_supported and response_types_supported
// to what the capabilities use, and returns what in the metadata is
// imperfect for SMART as warnings; with DeriveConfig.Strict
// (RemoteConfig.Strict) it refuses such metadata instead. A document
// advertising client-public is served with "none" among its client
// authentication methods.
//
// PatchCapabilityStatement merges the document's security block (service
// SMART-on-FHIR and the oauth-uris extension) into a server's own
// CapabilityStatement, so /metadata and the well-known document always
// agree (middleware.Config.PatchCapabilities does it).
package discovery
