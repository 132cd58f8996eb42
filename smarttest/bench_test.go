package smarttest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func benchServer(b *testing.B) *Server {
	testKeys(b)
	srv, err := New(Config{FHIRBase: testFHIRBase, Issuer: "https://auth.example"})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.RegisterClient(Client{ID: rsID, Secret: rsSecret, Introspect: true}); err != nil {
		b.Fatal(err)
	}
	return srv
}

// BenchmarkMintToken compares the JWT path (RS256 signing) with the opaque
// path (random bytes and a map insert), its baseline.
func BenchmarkMintToken(b *testing.B) {
	srv := benchServer(b)
	opts := TokenOptions{Scopes: "launch/patient patient/*.rs", Patient: "123", FHIRUser: "Practitioner/1"}
	for _, opaque := range []bool{false, true} {
		name := "jwt"
		if opaque {
			name = "opaque"
		}
		b.Run(name, func(b *testing.B) {
			o := opts
			o.Opaque = opaque
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := srv.MintToken(o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkIntrospect measures the introspection endpoint for a JWT
// (signature verification) and an opaque token (map lookup, the baseline).
func BenchmarkIntrospect(b *testing.B) {
	srv := benchServer(b)
	for _, opaque := range []bool{false, true} {
		name := "jwt"
		if opaque {
			name = "opaque"
		}
		tok, err := srv.MintToken(TokenOptions{Scopes: "patient/*.rs", Patient: "123", Opaque: opaque, Lifetime: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		body := "token=" + tok
		auth := basicAuth(rsID, rsSecret)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				req := httptest.NewRequest(http.MethodPost, "/introspect", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Authorization", auth)
				rec := httptest.NewRecorder()
				srv.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"active":true`) {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
