package smarttest

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

func TestMintToken(t *testing.T) {
	f := newFixture(t, nil)
	cases := []struct {
		name  string
		opts  TokenOptions
		check func(t *testing.T, claims map[string]any)
	}{
		{"defaults", TokenOptions{Scopes: "system/*.rs"}, func(t *testing.T, c map[string]any) {
			if c["client_id"] != defaultClientID || c["sub"] != defaultClientID || c["aud"] != testFHIRBase || c["iss"] != f.srv.SMARTConfiguration().Issuer {
				t.Errorf("claims %v", c)
			}
			if exp, iat := c["exp"].(float64), c["iat"].(float64); exp-iat != 3600 {
				t.Errorf("lifetime %v", exp-iat)
			}
			for _, k := range []string{"patient", "encounter", "fhirUser", "fhirContext", "need_patient_banner", "nbf"} {
				if _, ok := c[k]; ok {
					t.Errorf("unset claim %s present", k)
				}
			}
		}},
		{"subject from fhirUser", TokenOptions{FHIRUser: "Patient/9"}, func(t *testing.T, c map[string]any) {
			if c["sub"] != "Patient/9" || c["fhirUser"] != "Patient/9" {
				t.Errorf("claims %v", c)
			}
		}},
		{"two audiences", TokenOptions{Audience: []string{"a", "b"}}, func(t *testing.T, c map[string]any) {
			if !reflect.DeepEqual(c["aud"], []any{"a", "b"}) {
				t.Errorf("aud %v", c["aud"])
			}
		}},
		{"lifetime", TokenOptions{Lifetime: 90 * time.Second}, func(t *testing.T, c map[string]any) {
			if c["exp"].(float64)-c["iat"].(float64) != 90 {
				t.Errorf("claims %v", c)
			}
		}},
		{"extra and omitted claims", TokenOptions{ExtraClaims: map[string]any{"patient": "Patient/1", "x": 1.5}, OmitClaims: []string{"jti", "client_id"}}, func(t *testing.T, c map[string]any) {
			if c["patient"] != "Patient/1" || c["x"] != 1.5 || c["jti"] != nil || c["client_id"] != nil {
				t.Errorf("claims %v", c)
			}
		}},
		{"banner false", TokenOptions{NeedPatientBanner: new(bool)}, func(t *testing.T, c map[string]any) {
			if c["need_patient_banner"] != false {
				t.Errorf("claims %v", c)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok, err := f.srv.MintToken(c.opts)
			must(t, err)
			if h := headerOf(t, tok); h["typ"] != "at+jwt" || h["kid"] != f.srv.SigningKeyID() {
				t.Errorf("header %v", h)
			}
			c.check(t, claimsOf(t, tok))
		})
	}
	if _, err := f.srv.MintToken(TokenOptions{ExtraClaims: map[string]any{"bad": func() {}}}); !errors.Is(err, errConfig) {
		t.Errorf("unencodable claim: %v", err)
	}
}

// TestFlawedTokensRefused checks every flawed token against a strict
// resource-server verification (JWKS, iss, aud, required exp, compact
// form, typ at+jwt), and that the unflawed token passes the same check.
func TestFlawedTokensRefused(t *testing.T) {
	f := newFixture(t, nil)
	set, err := jwk.Fetch(t.Context(), f.srv.SMARTConfiguration().JWKSURI)
	must(t, err)
	strict := func(tok string) error {
		if !looksCompact(tok) {
			return errors.New("not compact")
		}
		msg, err := jws.ParseString(tok)
		if err != nil {
			return err
		}
		if typ := msg.Signatures()[0].ProtectedHeaders().Type(); typ != "at+jwt" {
			return errors.New("typ " + typ)
		}
		_, err = jwt.Parse([]byte(tok), jwt.WithKeySet(set), jwt.WithIssuer(f.srv.SMARTConfiguration().Issuer), jwt.WithAudience(f.srv.fhirBase),
			jwt.WithRequiredClaim("exp"), jwt.WithClock(jwt.ClockFunc(f.clock.Now)))
		return err
	}
	opts := TokenOptions{Scopes: "patient/*.rs", Patient: "123"}
	good, err := f.srv.MintToken(opts)
	must(t, err)
	if err := strict(good); err != nil {
		t.Fatalf("unflawed token refused: %v", err)
	}
	if len(Flaws()) != 14 {
		t.Errorf("Flaws() has %d entries", len(Flaws()))
	}
	for _, flaw := range Flaws() {
		t.Run(flaw.String(), func(t *testing.T) {
			tok, err := f.srv.MintFlawedToken(flaw, opts)
			must(t, err)
			if tok == good {
				t.Fatal("flawed token equals the good one")
			}
			if err := strict(tok); err == nil {
				t.Errorf("flawed token accepted: %s", tok)
			}
		})
	}
	t.Run("opaque", func(t *testing.T) {
		for _, flaw := range Flaws() {
			tok, err := f.srv.MintFlawedToken(flaw, TokenOptions{Opaque: true})
			claimFlaw := flaw <= FlawNoExpiry
			if claimFlaw != (err == nil) {
				t.Errorf("%v: err %v", flaw, err)
			}
			if err == nil && strings.Contains(tok, ".") {
				t.Errorf("%v: opaque token %q", flaw, tok)
			}
		}
	})
	if _, err := f.srv.MintFlawedToken(Flaw(99), opts); !errors.Is(err, errConfig) {
		t.Errorf("unknown flaw: %v", err)
	}
	if Flaw(99).String() != "Flaw(99)" || FlawAlgNone.String() != "alg-none" {
		t.Error("Flaw.String")
	}
}
