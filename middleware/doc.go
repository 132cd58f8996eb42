// Package middleware is fhirguard's net/http glue: Authenticate turns a bearer
// token into a *Token in the request context, Authorize enforces the token's
// SMART scopes and launch context on every FHIR interaction, and Policy lets
// extra rules (such as package celpolicy) deny what scopes would allow.
package middleware
