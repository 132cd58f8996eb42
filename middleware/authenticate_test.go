package middleware

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// outcome is what one request produced.
type outcome struct {
	status int
	www    string
	body   string
	err    *AuthError
	called bool
	token  *Token
}

// run sends tok through a fresh handler of a and captures the decision.
func runAuth(t *testing.T, cfg AuthConfig, tok string) outcome {
	t.Helper()
	var mu sync.Mutex
	var ev AuthEvent
	cfg.OnDecision = func(e AuthEvent) { mu.Lock(); ev = e; mu.Unlock() }
	a := newAuth(t, cfg)
	h := &recordHandler{}
	w := doAuth(a, h, tok)
	mu.Lock()
	defer mu.Unlock()
	return outcome{status: w.Code, www: w.Header().Get("WWW-Authenticate"), body: w.Body.String(), err: ev.Err, called: h.calls.Load() > 0, token: h.last.Load()}
}

// expectRefused checks a 401 invalid_token refusal whose cause is want
// (nil: any cause).
func expectRefused(t *testing.T, o outcome, tok string, want error) {
	t.Helper()
	if o.called {
		t.Fatalf("handler called for a refused token")
	}
	if o.status != http.StatusUnauthorized {
		t.Fatalf("status = %d, want 401 (cause %v)", o.status, o.err)
	}
	if !strings.Contains(o.www, `error="invalid_token"`) {
		t.Errorf("WWW-Authenticate = %q, want invalid_token", o.www)
	}
	if want != nil && (o.err == nil || !errors.Is(o.err, want)) {
		t.Errorf("cause = %v, want %v", o.err, want)
	}
	if !strings.Contains(o.body, `"resourceType":"OperationOutcome"`) {
		t.Errorf("body is not an OperationOutcome: %s", o.body)
	}
	if len(tok) > 20 && strings.Contains(o.body, tok[len(tok)-20:]) {
		t.Errorf("body echoes the token")
	}
}

func expectAccepted(t *testing.T, o outcome) {
	t.Helper()
	if o.status != http.StatusOK || !o.called {
		t.Fatalf("status = %d (handler called %v), want 200; cause %v", o.status, o.called, o.err)
	}
	if o.token == nil {
		t.Fatalf("no token in the context")
	}
}

// withClaim returns valid claims with name set (or removed when v is delClaim).
type delClaimT struct{}

var delClaim = delClaimT{}

func withClaims(kv ...any) map[string]any { return withClaimsAt(time.Now(), kv...) }

// withClaimsAt is withClaims at now.
func withClaimsAt(now time.Time, kv ...any) map[string]any {
	c := claimsAt(now)
	for i := 0; i < len(kv); i += 2 {
		name := kv[i].(string)
		if _, ok := kv[i+1].(delClaimT); ok {
			delete(c, name)
		} else {
			c[name] = kv[i+1]
		}
	}
	return c
}

func TestLegitimateTokens(t *testing.T) {
	testKeys(t)
	now := time.Now()
	cases := []struct {
		name string
		tok  func() string
		cfg  func(*AuthConfig)
	}{
		{"RS256", func() string { return keyRS.token(claimsAt(now), nil) }, nil},
		{"ES256", func() string { return keyES.token(claimsAt(now), nil) }, nil},
		{"EdDSA", func() string { return keyEd.token(claimsAt(now), nil) }, nil},
		{"PS256", func() string { return keyPS.token(claimsAt(now), nil) }, nil},
		{"ES384", func() string { return keyES384.token(claimsAt(now), nil) }, nil},
		{"ES512", func() string { return keyES512.token(claimsAt(now), nil) }, nil},
		{"aud array containing ours", func() string {
			return keyRS.token(withClaimsAt(now, "aud", []string{"https://other.example", testAudience}), nil)
		}, nil},
		{"typ JWT in default mode", func() string { return keyRS.token(claimsAt(now), func(h map[string]any) { h["typ"] = "JWT" }) }, nil},
		{"no typ in default mode", func() string { return keyRS.token(claimsAt(now), func(h map[string]any) { delete(h, "typ") }) }, nil},
		{"typ at+JWT in strict mode", func() string { return keyRS.token(claimsAt(now), func(h map[string]any) { h["typ"] = "at+JWT" }) },
			func(c *AuthConfig) { c.StrictTokenType = true }},
		{"typ application/at+jwt in strict mode", func() string {
			return keyRS.token(claimsAt(now), func(h map[string]any) { h["typ"] = "application/at+jwt" })
		}, func(c *AuthConfig) { c.StrictTokenType = true }},
		{"scp array", func() string {
			return keyRS.token(withClaimsAt(now, "scope", delClaim, "scp", []string{"patient/Observation.rs"}), nil)
		}, nil},
		{"patient as reference", func() string { return keyRS.token(withClaimsAt(now, "patient", "Patient/123"), nil) }, nil},
		{"header jku ignored", func() string {
			return keyRS.token(claimsAt(now), func(h map[string]any) { h["jku"] = "https://attacker.example/jwks" })
		}, nil},
		{"exp within leeway", func() string { return keyRS.token(withClaimsAt(now, "exp", now.Add(-20*time.Second).Unix()), nil) }, nil},
		{"nbf within leeway", func() string { return keyRS.token(withClaimsAt(now, "nbf", now.Add(20*time.Second).Unix()), nil) }, nil},
		{"iat within leeway", func() string {
			return keyRS.token(withClaimsAt(now, "iat", now.Add(20*time.Second).Unix()), nil)
		}, nil},
		{"lifetime exactly one hour", func() string {
			return keyRS.token(withClaimsAt(now, "iat", now.Unix(), "exp", now.Add(time.Hour).Unix()), nil)
		}, nil},
		{"no iat, exp in 50 minutes", func() string {
			return keyRS.token(withClaimsAt(now, "iat", delClaim, "exp", now.Add(50*time.Minute).Unix()), nil)
		}, nil},
		{"high-S ECDSA signature is valid", func() string { return highS(claimsAt(now), keyES) }, nil},
		{"no kid with a one-key set", func() string {
			return keyRS.token(claimsAt(now), func(h map[string]any) { delete(h, "kid") })
		}, func(c *AuthConfig) { c.JWKS = jwksOf(keyRS.jwk()) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(t)
			cfg.Now = func() time.Time { return now } // the tokens' times are relative to now
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			expectAccepted(t, runAuth(t, cfg, tc.tok()))
		})
	}
}

// highS returns an ES256 token of k whose signature uses s' = n − s.
func highS(claims map[string]any, k *testKey) string {
	tok := k.token(claims, nil)
	i := strings.LastIndexByte(tok, '.')
	sig, _ := b64.DecodeString(tok[i+1:])
	n := elliptic.P256().Params().N
	s := new(big.Int).SetBytes(sig[32:])
	s.Sub(n, s)
	s.FillBytes(sig[32:])
	return tok[:i+1] + b64enc(sig)
}

// rsaRenderings are the forms an attacker may use as an HMAC secret made of
// an RSA public key (threat model A2).
func rsaRenderings(t *testing.T) map[string][]byte {
	pub := keyRS.priv.Public()
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PublicKey(keyRS.priv.Public().(*rsa.PublicKey))
	spkiPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})
	return map[string][]byte{
		"SPKI PEM":               spkiPEM,
		"SPKI PEM without \\n":   []byte(strings.TrimSuffix(string(spkiPEM), "\n")),
		"PKCS1 PEM":              pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: pkcs1}),
		"SPKI DER":               spki,
		"JWK JSON":               mustJSON(keyRS.jwk()),
		"modulus bytes":          keyRS.priv.Public().(*rsa.PublicKey).N.Bytes(),
		"empty key":              {},
		"the kid as secret (A6)": []byte("k1"),
	}
}

func TestAttackCatalogue(t *testing.T) {
	testKeys(t)
	now := time.Now()
	canary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("canary fetched: %s", r.URL)
	}))
	defer canary.Close()

	hs := func(alg, kid string, key []byte) string {
		h := mustJSON(map[string]any{"alg": alg, "kid": kid, "typ": "at+jwt"})
		return compactJWS(h, mustJSON(claimsAt(now)), func(in string) []byte { return hmacSign(alg, key, in) })
	}
	rawTok := func(header string, claims map[string]any, k *testKey, alg string) string {
		return compactJWS([]byte(header), mustJSON(claims), func(in string) []byte { return signWith(k.priv, alg, in) })
	}
	rawClaims := func(k *testKey, claims string) string {
		return compactJWS(mustJSON(k.header()), []byte(claims), func(in string) []byte { return signWith(k.priv, k.alg, in) })
	}
	valid := keyRS.token(claimsAt(now), nil)
	dot := strings.LastIndexByte(valid, '.')
	firstDot := strings.IndexByte(valid, '.')

	type tc struct {
		name string
		tok  string
		want error
		cfg  func(*AuthConfig)
	}
	var cases []tc
	add := func(name, tok string, want error) { cases = append(cases, tc{name: name, tok: tok, want: want}) }

	// A1: alg none in four casings, with an empty or a left-in signature.
	for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
		h := b64enc(mustJSON(map[string]any{"alg": alg, "typ": "at+jwt"}))
		p := b64enc(mustJSON(claimsAt(now)))
		add("A1 "+alg+" empty signature", h+"."+p+".", errMalformedToken)
		add("A1 "+alg+" signature left in place", h+"."+p+"."+valid[dot+1:], errAlgorithm)
	}
	// A2: RS256 → HS256 with the RSA public key in every rendering.
	for name, key := range rsaRenderings(t) {
		for _, alg := range []string{"HS256", "HS384", "HS512"} {
			add("A2 "+alg+" "+name, hs(alg, "k1", key), errAlgorithm)
		}
	}
	// A3: EC → HS with the point bytes.
	ecPub := keyES.priv.Public().(*ecdsa.PublicKey)
	pt := append([]byte{4}, append(ecPub.X.FillBytes(make([]byte, 32)), ecPub.Y.FillBytes(make([]byte, 32))...)...)
	add("A3 HS256 with 04||x||y", hs("HS256", "k2", pt), errAlgorithm)
	add("A3 HS256 with x||y", hs("HS256", "k2", pt[1:]), errAlgorithm)
	// A4: right key, wrong algorithm family or size.
	add("A4 PS256 signed by the RS256 key", rawTok(`{"alg":"PS256","kid":"k1"}`, claimsAt(now), keyRS, "PS256"), errAlgorithm)
	add("A4 RS384 signed by the RS256 key", rawTok(`{"alg":"RS384","kid":"k1"}`, claimsAt(now), keyRS, "RS384"), errAlgorithm)
	add("A4 ES384 with the P-256 kid", rawTok(`{"alg":"ES384","kid":"k2"}`, claimsAt(now), keyES384, "ES384"), errAlgorithm)
	add("A4 ES256 with the Ed25519 kid", rawTok(`{"alg":"ES256","kid":"k3"}`, claimsAt(now), keyES, "ES256"), errAlgorithm)
	// A5: unknown kid.
	add("A5 unknown kid", keyAtk.token(claimsAt(now), func(h map[string]any) { h["kid"] = "k9" }), errUnknownKey)
	add("A5 attacker key under our kid", keyAtk.token(claimsAt(now), nil), errSignature)
	// A6: kid injection.
	add("A6 path kid, HS256, empty key", hs("HS256", "../../../../../../dev/null", nil), errAlgorithm)
	add("A6 SQL kid, HS256", hs("HS256", "x' UNION SELECT '1';--", []byte("1")), errAlgorithm)
	add("A6 shell kid, RS256", keyAtk.token(claimsAt(now), func(h map[string]any) { h["kid"] = "|sleep 10" }), errUnknownKey)
	add("A6 10 KB kid", keyAtk.token(claimsAt(now), func(h map[string]any) { h["kid"] = strings.Repeat("k", 10000) }), errMalformedToken)
	add("A6 numeric kid", keyAtk.token(claimsAt(now), func(h map[string]any) { h["kid"] = 123 }), errMalformedToken)
	add("A6 object kid", keyAtk.token(claimsAt(now), func(h map[string]any) { h["kid"] = map[string]any{} }), errMalformedToken)
	// A7: jku / x5u are never fetched.
	add("A7 jku to attacker", keyAtk.token(claimsAt(now), func(h map[string]any) { h["jku"] = canary.URL; h["kid"] = "k9" }), errUnknownKey)
	add("A7 x5u to attacker", keyAtk.token(claimsAt(now), func(h map[string]any) { h["x5u"] = canary.URL }), errSignature)
	// A8: embedded keys are never used.
	add("A8 embedded jwk, no kid", keyAtk.token(claimsAt(now), func(h map[string]any) {
		delete(h, "kid")
		h["jwk"] = (&testKey{kid: "k1", alg: "RS256", priv: keyAtk.priv}).jwk()
	}), errUnknownKey)
	add("A8 embedded oct jwk with HS256", compactJWS(mustJSON(map[string]any{"alg": "HS256", "jwk": map[string]any{"kty": "oct", "k": b64enc([]byte("secret-secret-secret-secret-1234"))}}),
		mustJSON(claimsAt(now)), func(in string) []byte { return hmacSign("HS256", []byte("secret-secret-secret-secret-1234"), in) }), errAlgorithm)
	add("A8 x5c", keyAtk.token(claimsAt(now), func(h map[string]any) { h["x5c"] = []string{b64enc([]byte("not a cert"))} }), errSignature)
	// A9: structure.
	add("A9 empty signature", valid[:dot+1], errMalformedToken)
	add("A9 two segments", valid[:dot], errMalformedToken)
	add("A9 four segments", valid+"."+valid[dot+1:], errMalformedToken)
	add("A9 five segments (JWE shape)", valid+".a.b", errMalformedToken)
	add("A9 trailing dot", valid+".", errMalformedToken)
	add("A9 padding", valid+"==", errMalformedToken)
	add("A9 standard alphabet", strings.NewReplacer("-", "+", "_", "/").Replace(valid[:firstDot])+valid[firstDot:]+"+/", errMalformedToken)
	add("A9 non-canonical trailing bits", nonCanonical(valid), errMalformedToken)
	add("A9 empty payload, old signature", valid[:firstDot]+".."+valid[dot+1:], errSignature)
	add("A9 empty payload, signed", compactJWS(mustJSON(keyRS.header()), nil, func(in string) []byte { return signWith(keyRS.priv, "RS256", in) }), errMalformedToken)
	add("A9 claims not an object", rawClaims(keyRS, `["iss"]`), errMalformedToken)
	add("A9 claims with trailing data", rawClaims(keyRS, `{"iss":"x"} {}`), errMalformedToken)
	add("A9 claims invalid UTF-8", rawClaims(keyRS, "{\"iss\":\"\xff\"}"), errMalformedToken)
	// A10: psychic signatures.
	n := elliptic.P256().Params().N
	for name, rs := range map[string][2]*big.Int{
		"r=s=0":   {big.NewInt(0), big.NewInt(0)},
		"r=s=n":   {n, n},
		"r=s=1":   {big.NewInt(1), big.NewInt(1)},
		"r=n-1":   {new(big.Int).Sub(n, big.NewInt(1)), new(big.Int).Sub(n, big.NewInt(1))},
		"r=0 s=1": {big.NewInt(0), big.NewInt(1)},
	} {
		sig := make([]byte, 64)
		rs[0].FillBytes(sig[:32])
		rs[1].FillBytes(sig[32:])
		t2 := keyES.token(claimsAt(now), nil)
		add("A10 "+name, t2[:strings.LastIndexByte(t2, '.')+1]+b64enc(sig), errSignature)
	}
	// A11: ECDSA encodings.
	{
		t2 := keyES.token(claimsAt(now), nil)
		d := strings.LastIndexByte(t2, '.')
		sig, _ := b64.DecodeString(t2[d+1:])
		der, _ := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])})
		add("A11 DER signature", t2[:d+1]+b64enc(der), errSignature)
		add("A11 63-byte signature", t2[:d+1]+b64enc(sig[1:]), errSignature)
		add("A11 65-byte signature", t2[:d+1]+b64enc(append([]byte{0}, sig...)), errSignature)
	}
	// A13: expiry and times.
	add("A13 exp in the past", keyRS.token(withClaimsAt(now, "exp", now.Add(-time.Hour).Unix()), nil), ErrTokenExpired)
	add("A13 exp missing", keyRS.token(withClaimsAt(now, "exp", delClaim), nil), errClaims)
	add("A13 nbf in the future", keyRS.token(withClaimsAt(now, "nbf", now.Add(time.Hour).Unix()), nil), errTokenNotYetValid)
	add("A13 iat in the future", keyRS.token(withClaimsAt(now, "iat", now.Add(time.Hour).Unix(), "exp", now.Add(90*time.Minute).Unix()), nil), errTokenNotYetValid)
	add("A13 exp string", keyRS.token(withClaimsAt(now, "exp", "9999999999"), nil), errClaims)
	add("A13 exp bool", keyRS.token(withClaimsAt(now, "exp", true), nil), errClaims)
	add("A13 exp null", keyRS.token(withClaimsAt(now, "exp", nil), nil), errClaims)
	add("A13 exp year 9999", keyRS.token(withClaimsAt(now, "exp", 253402300799), nil), errTokenLifetime)
	add("A13 exp 1e30", rawClaims(keyRS, `{"iss":"`+testIssuer+`","aud":"`+testAudience+`","exp":1e30}`), errClaims)
	add("A13 lifetime over one hour", keyRS.token(withClaimsAt(now, "iat", now.Unix(), "exp", now.Add(61*time.Minute).Unix()), nil), errTokenLifetime)
	add("A13 no iat, exp in two hours", keyRS.token(withClaimsAt(now, "iat", delClaim, "exp", now.Add(2*time.Hour).Unix()), nil), errTokenLifetime)
	// A14: issuer.
	add("A14 wrong iss", keyRS.token(withClaimsAt(now, "iss", "https://evil.example"), nil), errIssuer)
	add("A14 iss with trailing slash", keyRS.token(withClaimsAt(now, "iss", testIssuer+"/"), nil), errIssuer)
	add("A14 empty iss", keyRS.token(withClaimsAt(now, "iss", ""), nil), errIssuer)
	add("A14 missing iss", keyRS.token(withClaimsAt(now, "iss", delClaim), nil), errIssuer)
	add("A14 iss array", keyRS.token(withClaimsAt(now, "iss", []string{testIssuer}), nil), errIssuer)
	// A15: audience.
	add("A15 wrong aud", keyRS.token(withClaimsAt(now, "aud", "https://other.example/fhir"), nil), errAudience)
	add("A15 missing aud", keyRS.token(withClaimsAt(now, "aud", delClaim), nil), errAudience)
	add("A15 empty array", keyRS.token(withClaimsAt(now, "aud", []string{}), nil), errAudience)
	add("A15 array of empty string", keyRS.token(withClaimsAt(now, "aud", []string{""}), nil), errAudience)
	add("A15 null", keyRS.token(withClaimsAt(now, "aud", nil), nil), errAudience)
	add("A15 number", keyRS.token(withClaimsAt(now, "aud", 123), nil), errAudience)
	add("A15 trailing slash", keyRS.token(withClaimsAt(now, "aud", testAudience+"/"), nil), errAudience)
	add("A15 array with a number", keyRS.token(withClaimsAt(now, "aud", []any{testAudience, 1}), nil), errAudience)
	// A16: typ and cross-JWT confusion.
	for _, typ := range []string{"dpop+jwt", "secevent+jwt", "logout+jwt", "JOSE", ""} {
		typ := typ
		add("A16 typ "+typ, keyRS.token(claimsAt(now), func(h map[string]any) { h["typ"] = typ }), errTokenType)
	}
	add("A16 typ not a string", keyRS.token(claimsAt(now), func(h map[string]any) { h["typ"] = 1 }), errMalformedToken)
	add("A16 ID token", keyRS.token(withClaimsAt(now, "aud", "app-1", "nonce", "n-1"), func(h map[string]any) { h["typ"] = "JWT" }), errAudience)
	add("A16 client assertion", keyRS.token(withClaimsAt(now, "aud", testIssuer+"/token", "iss", "app-1"), nil), errIssuer)
	cases = append(cases,
		tc{"A16 strict: typ JWT", keyRS.token(claimsAt(now), func(h map[string]any) { h["typ"] = "JWT" }), errTokenType, func(c *AuthConfig) { c.StrictTokenType = true }},
		tc{"A16 strict: no typ", keyRS.token(claimsAt(now), func(h map[string]any) { delete(h, "typ") }), errTokenType, func(c *AuthConfig) { c.StrictTokenType = true }},
	)
	// A17: crit.
	add("A17 crit with extension", keyRS.token(claimsAt(now), func(h map[string]any) { h["crit"] = []string{"x-ext"}; h["x-ext"] = 1 }), errUnsupportedHeader)
	add("A17 empty crit", keyRS.token(claimsAt(now), func(h map[string]any) { h["crit"] = []string{} }), errUnsupportedHeader)
	add("A17 b64 false", keyRS.token(claimsAt(now), func(h map[string]any) { h["crit"] = []string{"b64"}; h["b64"] = false }), errUnsupportedHeader)
	// A18: nested, encrypted, compressed.
	add("A18 cty JWT", keyRS.token(claimsAt(now), func(h map[string]any) { h["cty"] = "JWT" }), errUnsupportedHeader)
	add("A18 zip", keyRS.token(claimsAt(now), func(h map[string]any) { h["zip"] = "DEF" }), errUnsupportedHeader)
	add("A18 enc", keyRS.token(claimsAt(now), func(h map[string]any) { h["enc"] = "A256GCM" }), errUnsupportedHeader)
	add("A18 PBES2 JWE", b64enc([]byte(`{"alg":"PBES2-HS256+A128KW","enc":"A128GCM","p2c":2147483647}`))+".a.b.c.d", errMalformedToken)
	// A19: huge tokens.
	add("A19 1 MB token", strings.Repeat("a", 1<<20), errTokenTooLarge)
	add("A19 100000 dots", strings.Repeat(".", 100000), errTokenTooLarge)
	add("A19 15000 dots", strings.Repeat(".", 15000), errMalformedToken)
	// A20: deep JSON.
	add("A20 claims nested 100 levels", keyRS.token(withClaimsAt(now, "x", deepArray(100)), nil), errMalformedToken)
	add("A20 claims nested 10000 levels", rawClaims(keyRS, `{"x":`+strings.Repeat("[", 10000)+strings.Repeat("]", 10000)+`}`), errTokenTooLarge)
	// A21: duplicates.
	past, future := now.Add(-time.Hour).Unix(), now.Add(5*time.Minute).Unix()
	base := `"iss":"` + testIssuer + `","aud":"` + testAudience + `"`
	add("A21 duplicate exp", rawClaims(keyRS, `{`+base+`,"exp":`+jsonInt(past)+`,"exp":`+jsonInt(future)+`}`), errMalformedToken)
	add("A21 duplicate exp, escaped name", rawClaims(keyRS, `{`+base+`,"exp":`+jsonInt(past)+`,"e\u0078p":`+jsonInt(future)+`}`), errMalformedToken)
	// A claim repeated in another case is refused too: a decoder that
	// matches names case-insensitively would read the other one.
	add("A21 exp past, EXP future", rawClaims(keyRS, `{`+base+`,"exp":`+jsonInt(past)+`,"EXP":`+jsonInt(future)+`}`), errMalformedToken)
	add("A21 exp future, Exp past", rawClaims(keyRS, `{`+base+`,"exp":`+jsonInt(future)+`,"Exp":`+jsonInt(past)+`}`), errMalformedToken)
	add("A21 duplicate aud", rawClaims(keyRS, `{`+base+`,"aud":"https://evil.example","exp":`+jsonInt(future)+`}`), errMalformedToken)
	add("A21 duplicate iss", rawClaims(keyRS, `{"iss":"https://evil.example",`+base+`,"exp":`+jsonInt(future)+`}`), errMalformedToken)
	add("A21 duplicate header alg", rawTok(`{"alg":"none","alg":"RS256","kid":"k1"}`, claimsAt(now), keyRS, "RS256"), errMalformedToken)
	// A23: sender-constrained tokens.
	add("A23 cnf jkt", keyRS.token(withClaimsAt(now, "cnf", map[string]any{"jkt": "abc"}), nil), errClaims)
	add("A23 cnf x5t#S256", keyRS.token(withClaimsAt(now, "cnf", map[string]any{"x5t#S256": "abc"}), nil), errClaims)
	// A25: clock skew beyond the leeway.
	add("A25 exp 40 s ago", keyRS.token(withClaimsAt(now, "exp", now.Add(-40*time.Second).Unix()), nil), ErrTokenExpired)
	add("A25 nbf in 40 s", keyRS.token(withClaimsAt(now, "nbf", now.Add(40*time.Second).Unix()), nil), errTokenNotYetValid)
	add("A25 iat in 40 s", keyRS.token(withClaimsAt(now, "iat", now.Add(40*time.Second).Unix()), nil), errTokenNotYetValid)
	// A26: expired and badly signed.
	add("A26 expired and bad signature", keyAtk.token(withClaimsAt(now, "exp", now.Add(-time.Hour).Unix()), nil), errSignature)
	// Context claims that cannot be trusted.
	// (patient, encounter and fhirUser that cannot be read leave the token
	// without that context: TestTokenClaimTypesAuthenticate.)
	add("scope not a string", keyRS.token(withClaimsAt(now, "scope", []string{"a"}), nil), errClaims)

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := baseConfig(t)
			cfg.Now = func() time.Time { return now } // the tokens' times are relative to now
			if c.cfg != nil {
				c.cfg(&cfg)
			}
			expectRefused(t, runAuth(t, cfg, c.tok), c.tok, c.want)
		})
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

func deepArray(n int) any {
	var v any = "x"
	for range n {
		v = []any{v}
	}
	return v
}

// nonCanonical flips the unused low bits of the last signature character.
func nonCanonical(tok string) string {
	last := tok[len(tok)-1]
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, last)
	// A 2048-bit signature is 256 bytes: 342 characters, the last holding
	// 4 bits of data and 2 unused.
	return tok[:len(tok)-1] + string(alphabet[i^1])
}

func TestHMACWithKeySetRefused(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Algorithms = []string{"RS256", "HS256"}
	if _, err := NewAuthenticator(cfg); err == nil {
		t.Fatal("HS256 with a JWK set was accepted")
	}
	cfg.Algorithms = []string{"none"}
	if _, err := NewAuthenticator(cfg); err == nil {
		t.Fatal("alg none was accepted in the allow-list")
	}
}

func TestConcurrentFirstSight(t *testing.T) {
	cfg := baseConfig(t)
	a := newAuth(t, cfg)
	h := &recordHandler{}
	srv := a.Handler(h)
	tok := keyRS.token(validClaims(), nil)
	const n = 1000
	var wg sync.WaitGroup
	var bad atomic.Int64
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r := httptest.NewRequest(http.MethodGet, "/Patient/123", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				bad.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d requests refused", bad.Load())
	}
	if got := a.verifications.Load(); got != 1 {
		t.Fatalf("%d signature verifications for one token, want 1", got)
	}
	if got := h.calls.Load(); got != n {
		t.Fatalf("handler called %d times, want %d", got, n)
	}
}

func TestCacheHitRechecksExpiry(t *testing.T) {
	now := time.Now()
	clock := &authClock{base: now}
	cfg := withClock(baseConfig(t), clock)
	a := newAuth(t, cfg)
	h := &recordHandler{}
	tok := keyRS.token(withClaimsAt(now, "exp", now.Add(2*time.Minute).Unix()), nil)
	if w := doAuth(a, h, tok); w.Code != 200 {
		t.Fatalf("first request: %d", w.Code)
	}
	if w := doAuth(a, h, tok); w.Code != 200 || a.verifications.Load() != 1 {
		t.Fatalf("second request: %d, %d verifications", w.Code, a.verifications.Load())
	}
	clock.advance(3 * time.Minute)
	if w := doAuth(a, h, tok); w.Code != http.StatusUnauthorized {
		t.Fatalf("expired cached token: status %d, want 401", w.Code)
	}
}

func TestScopeMatcherShared(t *testing.T) {
	a := newAuth(t, baseConfig(t))
	h := &recordHandler{}
	doAuth(a, h, keyRS.token(validClaims(), nil))
	t1 := h.last.Load()
	doAuth(a, h, keyES.token(validClaims(), nil))
	t2 := h.last.Load()
	if t1 == nil || t2 == nil || t1 == t2 {
		t.Fatal("expected two tokens")
	}
	if t1.Scopes != t2.Scopes {
		t.Fatal("tokens with the same scope string do not share a Matcher")
	}
	if t1.Scopes.Set().Len() == 0 {
		t.Fatal("empty scope set")
	}
}
