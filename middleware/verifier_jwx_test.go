package middleware

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"hash"
	"os"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// Wycheproof JOSE vectors (testdata/wycheproof, Apache-2.0, see SOURCE and
// LICENSE there) drive the verifier: every "invalid" vector must be
// rejected; every "valid" vector must be accepted unless listed in
// wycheproofOverrides with the rule of this middleware that refuses it.
//
// HMAC vectors: keys of type oct are never loaded from a key set (the
// middleware accepts HMAC only through a jwtauth.JWTAuth), so for them the
// test checks the strict JWS parser and computes the MAC itself, and checks
// separately that the key set policy refuses the key.

type wycheFile struct {
	TestGroups []struct {
		Comment string          `json:"comment"`
		Private json.RawMessage `json:"private"`
		Public  json.RawMessage `json:"public"`
		Tests   []struct {
			TcID    int             `json:"tcId"`
			Comment string          `json:"comment"`
			JWS     json.RawMessage `json:"jws"`
			Result  string          `json:"result"`
		} `json:"tests"`
	} `json:"testGroups"`
}

// wycheproofOverrides are valid vectors this middleware rejects on purpose.
var wycheproofOverrides = map[string]map[int]string{
	"json_web_signature_test.json": {
		// Strict decoding: a literal "?" inside a segment is not base64url
		// (RFC 7515 §2, threat model §3). Wycheproof marks these valid
		// because the MAC covers the raw ASCII signing input.
		372: "strict base64url decoding: '?' in the header segment",
		373: "strict base64url decoding: '?' in the payload segment",
		// RFC 7520 Figure 20: the key says alg PS256, the token PS384; a
		// key is bound to exactly one algorithm (RFC 8725 §3.1, A4).
		346: "key bound to PS256, token says PS384",
		350: "key bound to PS256, token says PS384",
		// RFC 7520 Figure 27: the key's alg is "ES521", not a JWA
		// algorithm; the key is refused at load (A12).
		347: `key alg "ES521" is not a registered algorithm`,
		351: `key alg "ES521" is not a registered algorithm`,
	},
	"json_web_key_test.json": {},
}

// wycheproofDuplicates are "invalid" vectors whose jws is byte-for-byte
// the jws of a "valid" vector of the same group in this snapshot (the
// padding the test names is absent): no verifier can reject one and accept
// the other. The test checks the strings are identical.
var wycheproofDuplicates = map[int]int{
	367: 357, // invalidBase64Padding
	370: 357, // invalidBase64PaddingInPayload
}

func loadWycheproof(t *testing.T, name string) wycheFile {
	t.Helper()
	b, err := os.ReadFile("testdata/wycheproof/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var f wycheFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

// wycheKeys returns the verification key set of a group: the public keys,
// or the public part of the private keys.
func wycheKeys(t *testing.T, pub, priv json.RawMessage) (jwk.Set, error) {
	raw := pub
	if len(raw) == 0 || string(raw) == "null" {
		raw = priv
	}
	if !strings.Contains(string(raw), `"keys"`) {
		raw = json.RawMessage(`{"keys":[` + string(raw) + `]}`)
	}
	set, err := jwk.Parse(raw)
	if err != nil {
		return nil, err
	}
	return jwk.PublicSetOf(set)
}

func TestWycheproof(t *testing.T) {
	policy := &keyPolicy{allowed: map[string]bool{}, defaultRSA: "RS256"}
	for _, a := range defaultAlgorithms {
		policy.allowed[a] = true
	}
	for _, file := range []string{"json_web_signature_test.json", "json_web_key_test.json"} {
		f := loadWycheproof(t, file)
		overrides := wycheproofOverrides[file]
		seen := 0
		byID := map[int]string{}
		for _, g := range f.TestGroups {
			for _, tc := range g.Tests {
				byID[tc.TcID] = string(tc.JWS)
			}
		}
		for _, g := range f.TestGroups {
			for _, tc := range g.Tests {
				seen++
				name := fmt.Sprintf("%s/%d-%s-%s", strings.TrimSuffix(file, "_test.json"), tc.TcID, g.Comment, tc.Comment)
				t.Run(name, func(t *testing.T) {
					accepted, why := wycheVerify(t, policy, g.Public, g.Private, tc.JWS)
					want := tc.Result == "valid"
					if twin, ok := wycheproofDuplicates[tc.TcID]; ok && file == "json_web_signature_test.json" {
						if byID[twin] != string(tc.JWS) {
							t.Fatalf("vector %d is no longer identical to %d: remove it from wycheproofDuplicates", tc.TcID, twin)
						}
						t.Logf("identical to valid vector %d; judged like it", twin)
						want = true
					}
					if reason, ok := overrides[tc.TcID]; ok {
						if !want {
							t.Fatalf("override listed for an invalid vector")
						}
						want = false
						t.Logf("expected rejection (%s)", reason)
					}
					if accepted != want {
						t.Fatalf("accepted = %v, want %v (%s)", accepted, want, why)
					}
				})
			}
		}
		if seen == 0 {
			t.Fatalf("%s: no vectors", file)
		}
	}
}

// wycheVerify runs one vector through the strict parser, the key policy
// and the signature check.
func wycheVerify(t *testing.T, policy *keyPolicy, pub, priv json.RawMessage, rawJWS json.RawMessage) (bool, string) {
	var compactJWS string
	if err := json.Unmarshal(rawJWS, &compactJWS); err != nil {
		return false, "JSON serialization is refused"
	}
	tok, err := parseJWS(compactJWS)
	if err != nil {
		return false, err.Error()
	}
	set, err := wycheKeys(t, pub, priv)
	if err != nil {
		return false, "key set does not parse: " + err.Error()
	}
	doc, err := json.Marshal(set)
	if err != nil {
		return false, "key set does not encode: " + err.Error()
	}
	entries, err := parseJWKS(doc, true)
	if err != nil {
		return false, "key set does not parse: " + err.Error()
	}
	ks, errs := policy.buildKeySet(entries)
	if isOctSet(set) {
		// HMAC: the policy must refuse the keys; check the MAC here.
		if len(ks.all) != 0 || len(errs) == 0 {
			t.Fatalf("oct key loaded from a key set")
		}
		return hmacVectorOK(set, tok)
	}
	if len(errs) > 0 {
		return false, fmt.Sprint(errs)
	}
	if !policy.allowed[tok.alg] {
		return false, "alg not allowed"
	}
	k, err := ks.lookup(tok)
	if err != nil {
		return false, err.Error()
	}
	if err := verifySignature(tok, k); err != nil {
		return false, err.Error()
	}
	return true, ""
}

// isOctSet reports whether every key of set is symmetric.
func isOctSet(set jwk.Set) bool {
	for i := 0; i < set.Len(); i++ {
		if k, _ := set.Key(i); k.KeyType() != "oct" {
			return false
		}
	}
	return set.Len() > 0
}

// hmacVectorOK verifies an HS* vector: the key with the token's kid (or the
// only key), bound to its alg, at least as long as the hash.
func hmacVectorOK(set jwk.Set, tok *jws) (bool, string) {
	var keys []jwk.Key
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		if !tok.hasKid || k.KeyID() == tok.kid {
			keys = append(keys, k)
		}
	}
	if len(keys) != 1 {
		return false, fmt.Sprintf("%d candidate keys", len(keys))
	}
	k := keys[0]
	if k.KeyType() != "oct" || k.Algorithm().String() != tok.alg {
		return false, "key type or alg mismatch"
	}
	var secret []byte
	if err := k.Raw(&secret); err != nil {
		return false, err.Error()
	}
	var h func() hash.Hash
	switch tok.alg {
	case "HS256":
		h = sha256.New
	case "HS384":
		h = sha512.New384
	case "HS512":
		h = sha512.New
	default:
		return false, "not HMAC"
	}
	if len(secret) < h().Size() {
		return false, "HMAC key shorter than the hash"
	}
	m := hmac.New(h, secret)
	m.Write([]byte(tok.signingInput))
	if !hmac.Equal(m.Sum(nil), tok.signature) {
		return false, "bad MAC"
	}
	return true, ""
}
