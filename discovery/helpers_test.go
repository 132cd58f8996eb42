package discovery

import (
	"errors"
	"testing"
)

// validDocument returns a document with no errors and no warnings: an EHR
// and standalone launch server with OpenID Connect, every recommended
// member set.
func validDocument() *Document {
	return &Document{
		Issuer:                            "https://auth.example.org",
		JWKSURI:                           "https://auth.example.org/jwks",
		AuthorizationEndpoint:             "https://auth.example.org/authorize",
		GrantTypesSupported:               []string{"authorization_code", "client_credentials"},
		TokenEndpoint:                     "https://auth.example.org/token",
		TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "private_key_jwt", "none"},
		TokenEndpointAuthSigningAlgValuesSupported: []string{"RS384", "ES384"},
		RegistrationEndpoint:                       "https://auth.example.org/register",
		ScopesSupported:                            []string{"openid", "fhirUser", "launch", "launch/patient", "patient/*.rs", "user/*.rs", "offline_access"},
		ResponseTypesSupported:                     []string{"code"},
		ManagementEndpoint:                         "https://auth.example.org/manage",
		IntrospectionEndpoint:                      "https://auth.example.org/introspect",
		RevocationEndpoint:                         "https://auth.example.org/revoke",
		Capabilities: []string{
			"launch-ehr", "launch-standalone", "client-public", "client-confidential-symmetric",
			"client-confidential-asymmetric", "sso-openid-connect", "context-ehr-patient",
			"context-standalone-patient", "permission-patient", "permission-user", "permission-v1",
			"permission-v2", "permission-offline", "authorize-post",
		},
		CodeChallengeMethodsSupported: []string{"S256"},
	}
}

// hasProblem reports whether ps has a problem with this severity, field
// and sentinel.
func hasProblem(ps Problems, s Severity, field string, err error) bool {
	for _, p := range ps {
		if p.Severity == s && p.Field == field && p.err == err {
			return true
		}
	}
	return false
}

// is reports whether err is target, wraps it, or is a Problem or a
// *ValidationError with an error (not a warning) of that kind.
func is(err, target error) bool {
	if errors.Is(err, target) {
		return true
	}
	if p, ok := err.(Problem); ok {
		return p.err == target
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		for _, p := range ve.Problems.Errors() {
			if p.err == target {
				return true
			}
		}
	}
	return false
}

func mustHandler(t testing.TB, d *Document, cfg HandlerConfig) *Handler {
	t.Helper()
	h, err := NewHandler(d, cfg)
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	return h
}
