package middleware

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/internal/fhirjson"
	"github.com/fhirguard/fhirguard/scope"
)

// TestB64TokenBytes checks the table checkToken uses against RFC 6750's
// b64token grammar, byte by byte.
func TestB64TokenBytes(t *testing.T) {
	a := &Authenticator{maxTokenBytes: defaultMaxTokenBytes}
	for c := 0; c < 256; c++ {
		want := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
		if b64tokenByte[c] != want {
			t.Errorf("byte %#x: %v, want %v", c, b64tokenByte[c], want)
		}
		tok := "ab" + string(rune(c)) + "cd"
		if c >= 0x80 {
			tok = "ab" + string([]byte{byte(c)}) + "cd"
		}
		if ok := a.checkToken(tok) == nil; ok != want {
			t.Errorf("checkToken(%q) accepted = %v, want %v", tok, ok, want)
		}
	}
	for tok, want := range map[string]bool{"abc=": true, "abc==": true, "=": false, "abc=d": false, "a=b=": false} {
		if ok := a.checkToken(tok) == nil; ok != want {
			t.Errorf("checkToken(%q) accepted = %v, want %v", tok, ok, want)
		}
	}
}

// allowResources is a ResourcePolicy that allows everything: with it,
// Authorize reads every response whole (no referencesSuffice fast path).
type allowResources struct{}

func (allowResources) AuthorizeRequest(*http.Request, *Token, *Decision) error { return nil }
func (allowResources) AuthorizeResource(*http.Request, *Token, *Decision, ResourcePhase, map[string]any) error {
	return nil
}

// allowRequests is a request-only Policy.
type allowRequests struct{}

func (allowRequests) AuthorizeRequest(*http.Request, *Token, *Decision) error { return nil }

// readVerdictDocs are resources shaped to probe every place a verdict on a
// read can come from: compartment links (direct, in arrays, in
// CodeableReferences), references to other patients anywhere (contained
// resources, extensions, nested objects, absolute and foreign bases,
// reference objects), Patient links, encounters, shared types, and values
// that are not strings where references are expected.
var readVerdictDocs = []string{
	`{"resourceType":"Observation","id":"1","subject":{"reference":"Patient/123"},"encounter":{"reference":"Encounter/e1"}}`,
	`{"resourceType":"Observation","id":"1","subject":{"reference":"Patient/123"},"encounter":{"reference":"Encounter/e2"}}`,
	`{"resourceType":"Observation","id":"1","subject":{"reference":"Patient/456"}}`,
	`{"resourceType":"Observation","id":"1","subject":{"reference":"https://ehr.example.org/fhir/Patient/123"}}`,
	`{"resourceType":"Observation","id":"1","subject":{"reference":"https://evil.example.org/fhir/Patient/123"}}`,
	`{"resourceType":"Observation","id":"1","subject":{"reference":"Patient/123"},"performer":[{"display":"x"},{"reference":"Patient/456"}]}`,
	`{"resourceType":"Observation","id":"1","subject":{"reference":"Patient/123"},"extension":[{"url":"u","valueReference":{"reference":"Patient/456"}}]}`,
	`{"resourceType":"Observation","id":"1","subject":{"reference":"Patient/123"},"contained":[{"resourceType":"Patient","id":"c","link":[{"other":{"reference":"Patient/456"}}]}]}`,
	`{"resourceType":"Observation","id":"1","subject":{"reference":"Patient/123"},"note":[{"authorReference":{"reference":{"reference":"Patient/456"}}}]}`,
	`{"resourceType":"Observation","id":"1","subject":{"reference":"Patient/123"},"deep":[[{"reference":"Patient/456"}]]}`,
	`{"resourceType":"Observation","id":"1","subject":{"reference":["Patient/123"]}}`,
	`{"resourceType":"Observation","id":"1","subject":{"reference":{"reference":"Patient/123"}}}`,
	`{"resourceType":"Observation","id":"1","subject":{"reference":null,"display":"Patient/123"}}`,
	`{"resourceType":"Observation","id":"1","subject":{"reference":"Patient/123"},"status":"final","valueQuantity":{"value":1.50,"unit":"mg"},"valueBoolean":true}`,
	`{"resourceType":"Observation","id":"1","performer":[{"reference":"Patient/123"}]}`,
	`{"resourceType":"Observation","id":"1"}`,
	`{"resourceType":"Observation","id":1,"subject":{"reference":"Patient/123"}}`,
	`{"resourceType":"Observation","subject":{"reference":"Patient/123"},"id":"\u0031"}`,
	`{"resourceType":"Observation","id":"1","subject":{"reference":"Patient/1\u00323"}}`,
	`{"resourceType":"Patient","id":"123","name":[{"family":"Smith"}]}`,
	`{"resourceType":"Patient","id":"123","link":[{"other":{"reference":"Patient/456"},"type":"seealso"}]}`,
	`{"resourceType":"Patient","id":"789","link":[{"other":{"reference":"Patient/123"},"type":"seealso"}]}`,
	`{"resourceType":"Patient","id":"456"}`,
	`{"resourceType":"Patient","id":"123","generalPractitioner":[{"reference":"Patient/456"}]}`,
	`{"resourceType":"Encounter","id":"e1","subject":{"reference":"Patient/123"}}`,
	`{"resourceType":"Encounter","id":"e2","subject":{"reference":"Patient/123"}}`,
	`{"resourceType":"Medication","id":"1","code":{"text":"aspirin"}}`,
	`{"resourceType":"Medication","id":"1","extension":[{"url":"u","valueReference":{"reference":"Patient/456"}}]}`,
	`{"resourceType":"Condition","id":"1","subject":{"reference":"Patient/123"},"encounter":{"reference":"Encounter/e1"}}`,
	`{"resourceType":"MedicationRequest","id":"1","subject":{"reference":"Patient/123"},"reason":[{"reference":{"reference":"Condition/c"}}]}`,
	`{"resourceType":"Observation","id":"1","subject":{"reference":"Patient/123"},"a0":1,"a1":1,"a2":1,"a3":1,"a4":1,"a5":1,"a6":1,"a7":1,"a8":1,"a9":1,"b0":1,"b1":1,"b2":1,"b3":1,"b4":1,"b5":1}`,
	`{"resourceType":"Observation","id":"1","subject":{"reference":"Patient/123"},"Subject":{"reference":"Patient/456"}}`,
	`{"resourceType":"Observation","id":"1","subject":{"reference":"Patient/123"},"subject":{"reference":"Patient/456"}}`,
	`{"resourceType":"Observation","id":"1","subject":{"reference":"Patient/123"}} {}`,
	`{"resourceType":"Observation","id":"1","subject":{"reference":"Patient/123","reference":"Patient/456"}}`,
	`["resourceType"]`,
	`{"resourceType":"Observation","id":"1","subject":{"reference":"Patient/123"},"valueQuantity":{"value":1e999}}`,
	`{"resourceType":"Observation","id":"1","subject":{"reference":"Group/g"},"focus":[{"reference":"Patient/123"}],"performer":[{"reference":"Practitioner/p"}]}`,
	`{"resourceType":"Observation","id":"1","subject":{"reference":"Patient/123"},"hasMember":[` + strings.Repeat(`{"reference":"Observation/o"},`, 40) + `{"reference":"Patient/456"}]}`,
	`{"resourceType":"Observation","id":"1","subject":{"reference":"Patient/123"},"hasMember":[` + strings.Repeat(`{"reference":"Observation/o"},`, 40) + `{"reference":"Observation/p"}]}`,
	`{"reference":"Patient/456","resourceType":"Observation","id":"1","subject":{"reference":"Patient/123"}}`,
	`{"resourceType":"Observation","id":"1","subject":{"reference":"Patient/123","display":"M\u00fcller"},"note":[{"text":"caf\u00e9 \"x\"\n"}]}`,
	`{"resourceType":"Observation","id":"1","subject":{"reference":"Patient/123/_history/2"}}`,
	`{"resourceType":"Observation","id":"1","subject":{"reference":"#p"},"contained":[{"resourceType":"Patient","id":"p"}]}`,
}

// readVerdictConfigs are the authorizer settings that change a read's
// verdict.
var readVerdictConfigs = map[string]func(*AuthorizeConfig){
	"default":   nil,
	"literal":   func(c *AuthorizeConfig) { c.LiteralCompartments = true },
	"linked":    func(c *AuthorizeConfig) { c.IncludeLinkedPatients = true },
	"encounter": func(c *AuthorizeConfig) { c.EnforceEncounter = true },
	"deny403":   func(c *AuthorizeConfig) { c.DenyStatus = http.StatusForbidden },
}

// readVerdictTokens hold reads to Patient/123 in the ways the kit knows.
func readVerdictTokens() map[string]*Token {
	pat := token("patient/*.rs", "123")
	enc := token("patient/*.rs", "123")
	enc.Encounter = "e1"
	usr := token("user/*.rs", "")
	usr.FHIRUser = "Patient/123"
	both := token("patient/Observation.rs user/Observation.rs patient/Patient.rs", "123")
	both.FHIRUser = "Patient/123"
	return map[string]*Token{"patient": pat, "encounter": enc, "user-patient": usr, "patient+user": both}
}

// readVerdictPair builds an authorizer with mod and the same with an
// allow-all resource policy, which makes it read every response whole.
func readVerdictPair(tb testing.TB, mod func(*AuthorizeConfig)) (fast, whole *authorizer) {
	build := func(policies ...Policy) *authorizer {
		cfg := AuthorizeConfig{BaseURL: testBase, Logger: quietLogger(), Policies: policies}
		if mod != nil {
			mod(&cfg)
		}
		a, err := newAuthorizer(cfg)
		if err != nil {
			tb.Fatal(err)
		}
		return a
	}
	return build(), build(allowResources{})
}

// readBoth answers a read of the resource doc with both Authorizers.
func readBoth(fast, whole *authorizer, tok *Token, doc string) (got [2]*httptest.ResponseRecorder) {
	var probe struct {
		ResourceType any `json:"resourceType"`
	}
	_ = json.Unmarshal([]byte(doc), &probe)
	rt, _ := probe.ResourceType.(string)
	if _, ok := scope.LookupType(rt); !ok {
		rt = "Observation"
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		_, _ = io.WriteString(w, doc)
	})
	for j, a := range []*authorizer{fast, whole} {
		r := httptest.NewRequest("GET", testBase+"/"+rt+"/1", nil)
		got[j] = httptest.NewRecorder()
		withToken(tok, a.Handler(h)).ServeHTTP(got[j], r)
	}
	return got
}

// TestReadVerdictReferencesOnly: for every probe, configuration and token,
// a read answered through the fast path (only references built) gets
// exactly the response it gets when the whole resource is read (forced by
// an allow-all resource policy).
func TestReadVerdictReferencesOnly(t *testing.T) {
	// The documents reach both fast paths: read flat (fhirjson.ReadRefs)
	// and, where ReadRefs declines, decoded with Options.References.
	flat := 0
	for _, doc := range readVerdictDocs {
		var rd fhirjson.RefDoc
		if fhirjson.ReadRefs([]byte(doc), fhirjson.MaxReadDepth, &rd) {
			flat++
		}
	}
	if flat < len(readVerdictDocs)/2 || flat > len(readVerdictDocs)-8 {
		t.Errorf("%d of %d documents read flat", flat, len(readVerdictDocs))
	}
	statuses := map[int]int{}
	defer func() {
		// The probes reach every verdict: allowed, withheld, refused.
		for _, code := range []int{200, 403, 404, 502} {
			if statuses[code] == 0 {
				t.Errorf("no probe answered %d (%v)", code, statuses)
			}
		}
	}()
	for cname, mod := range readVerdictConfigs {
		fast, whole := readVerdictPair(t, mod)
		for tname, tok := range readVerdictTokens() {
			for i, doc := range readVerdictDocs {
				got := readBoth(fast, whole, tok, doc)
				statuses[got[0].Code]++
				if got[0].Code != got[1].Code || got[0].Body.String() != got[1].Body.String() {
					t.Errorf("%s, %s, doc %d %s:\nfast path:  %d %s\nwhole read: %d %s", cname, tname, i, doc,
						got[0].Code, got[0].Body, got[1].Code, got[1].Body)
				}
			}
		}
	}
}

// FuzzReadVerdictReferences is TestReadVerdictReferencesOnly for any
// resource a handler may return.
func FuzzReadVerdictReferences(f *testing.F) {
	for _, doc := range readVerdictDocs {
		f.Add(doc)
	}
	type pair struct{ fast, whole *authorizer }
	var pairs []pair
	for _, name := range []string{"default", "literal", "linked", "encounter"} {
		fast, whole := readVerdictPair(f, readVerdictConfigs[name])
		pairs = append(pairs, pair{fast, whole})
	}
	toks := readVerdictTokens()
	f.Fuzz(func(t *testing.T, doc string) {
		for _, p := range pairs {
			for _, tok := range toks {
				got := readBoth(p.fast, p.whole, tok, doc)
				if got[0].Code != got[1].Code || got[0].Body.String() != got[1].Body.String() {
					t.Fatalf("%s:\nfast path:  %d %s\nwhole read: %d %s", doc, got[0].Code, got[0].Body, got[1].Code, got[1].Body)
				}
			}
		}
	})
}

// TestReferencesSuffice: the fast path is taken only without resource
// policies and with unconstrained grants.
func TestReferencesSuffice(t *testing.T) {
	a, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	withPol, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, Logger: quietLogger(), Policies: []Policy{allowResources{}}})
	if err != nil {
		t.Fatal(err)
	}
	onlyReq, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, Logger: quietLogger(), Policies: []Policy{allowRequests{}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		a      *authorizer
		scopes string
		want   bool
	}{
		{a, "patient/Observation.rs", true},
		{onlyReq, "patient/Observation.rs", true},
		{withPol, "patient/Observation.rs", false},
		{a, "patient/Observation.rs?category=laboratory", false},
		{a, "patient/Observation.rs patient/Observation.rs?category=laboratory", true}, // the broadest grant decides
	} {
		x := &exchange{a: tc.a, tok: token(tc.scopes, "123"), d: &Decision{}}
		x.d.Interaction.ResourceType = "Observation"
		obs, _ := scope.LookupType("Observation")
		if e := x.grant("Observation", obs, scope.Read); e != nil {
			t.Fatal(e)
		}
		if got := x.referencesSuffice(); got != tc.want {
			t.Errorf("%q: referencesSuffice = %v, want %v", tc.scopes, got, tc.want)
		}
	}
}

// isJSONMediaTypeSlow is isJSONMediaType as mime.ParseMediaType answers
// it for every Content-Type.
func isJSONMediaTypeSlow(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	switch mt {
	case "application/fhir+json", "application/json", "application/json+fhir":
		return true
	}
	return false
}

var mediaTypeSeeds = []string{
	"application/fhir+json", "Application/FHIR+JSON", " application/json ", "application/json+fhir",
	"application/fhir+json; charset=utf-8", "application/fhir+json;", "application/fhir+json; x",
	"application/fhir+xml", "application/jſon", "application/json\u00a0", "\u0085application/json",
	"application/json ;charset=utf-8", "application/json, text/html", "text/json", "", ";", "application/json\x00",
	"application/fhir+jsonx", "APPLICATION/JSON+FHIR", "application /json",
}

func TestJSONMediaType(t *testing.T) {
	for _, ct := range mediaTypeSeeds {
		if got, want := isJSONMediaType(ct), isJSONMediaTypeSlow(ct); got != want {
			t.Errorf("isJSONMediaType(%q) = %v, mime.ParseMediaType says %v", ct, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { isJSONMediaType("application/fhir+json") }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

func FuzzJSONMediaType(f *testing.F) {
	for _, ct := range mediaTypeSeeds {
		f.Add(ct)
	}
	f.Fuzz(func(t *testing.T, ct string) {
		if got, want := isJSONMediaType(ct), isJSONMediaTypeSlow(ct); got != want {
			t.Fatalf("isJSONMediaType(%q) = %v, mime.ParseMediaType says %v", ct, got, want)
		}
	})
}

// TestVerifiedRequestHeader: the header the handler gets for a verified
// response is the original's clone with Accept set and the content coding
// and conditional headers removed, and a separate copy.
func TestVerifiedRequestHeader(t *testing.T) {
	for _, h := range []http.Header{
		nil,
		{},
		{"Accept": {"application/xml", "text/html"}, "Accept-Encoding": {"gzip"}, "If-None-Match": {`W/"1"`},
			"If-Modified-Since": {"x"}, "Authorization": {"Bearer t"}, "X-Multi": {"a", "b"}, "X-Nil": nil,
			"X-Empty": {}, "accept-encoding": {"br"}},
		{"Prefer": {"return=representation"}},
	} {
		want := h.Clone()
		if want == nil {
			want = http.Header{}
		}
		want.Set("Accept", "application/fhir+json")
		want.Del("Accept-Encoding")
		want.Del("If-None-Match")
		want.Del("If-Modified-Since")
		got := verifiedRequestHeader(h, nil)
		if got2 := verifiedRequestHeader(h, make([]string, 8)); !reflect.DeepEqual(got2, want) {
			t.Fatalf("verifiedRequestHeader(%v, buf) = %#v, want %#v", h, got2, want)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("verifiedRequestHeader(%v) = %#v, want %#v", h, got, want)
		}
		for k, vv := range got {
			if len(vv) > 0 {
				vv[0] = "changed"
			}
			got[k] = append(vv, "more")
		}
		if len(h["X-Multi"]) > 0 && (h["X-Multi"][0] != "a" || h["Prefer"] != nil) {
			t.Fatal("the copy shares values with the original")
		}
		if h != nil && h.Get("Accept-Encoding") == "" && len(h) > 2 {
			t.Fatal("the original lost a header")
		}
	}
}

// allocWriter discards the body and keeps the status.
type allocWriter struct {
	h      http.Header
	status int
}

func (w *allocWriter) Header() http.Header         { return w.h }
func (w *allocWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *allocWriter) WriteHeader(s int)           { w.status = s }

// TestGuardAllocations holds the hot path to its allocation budget, over
// the bare handler in the same run: a cached system token's read costs one
// allocation (the request copy and its context, together), a cached
// patient token's verified read 6 (the target was at most 15; one more
// for the pools a collection may empty).
func TestGuardAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	obs := []byte(`{"resourceType":"Observation","id":"1","meta":{"versionId":"1","lastUpdated":"2024-01-01T00:00:00Z"},` +
		`"status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],` +
		`"code":{"coding":[{"system":"http://loinc.org","code":"2339-0","display":"Glucose"}]},"subject":{"reference":"Patient/123"},` +
		`"effectiveDateTime":"2024-01-01T10:00:00Z","valueQuantity":{"value":95.5,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"}}`)
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		_, _ = w.Write(obs)
	})
	g, err := New(Config{Authorize: AuthorizeConfig{BaseURL: testAudience, Logger: quietLogger()}, Auth: baseConfig(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	guarded := g.Handler(bare)
	for _, tc := range []struct {
		name, scopes string
		budget       float64
		bytes        float64 // bytes allocated over the bare handler's
	}{
		// One allocation: the request copy with its context, 352 bytes
		// (the Decision is not allocated unless asked for: 640 with it);
		// the rest of the budget is for pools a collection empties.
		{"system", "system/Observation.rs", 1, 400},
		// 6 allocations (1,360 bytes), and room for a pool emptied by a
		// collection.
		{"patient", "launch/patient patient/Observation.rs", 7, 1600},
	} {
		claims := validClaims()
		claims["scope"] = tc.scopes
		r := httptest.NewRequest(http.MethodGet, testAudience+"/Observation/1", nil)
		r.Header.Set("Authorization", "Bearer "+keyES.token(claims, nil))
		r.Header.Set("Accept-Encoding", "gzip")
		w := &allocWriter{h: http.Header{}}
		guarded.ServeHTTP(w, r)
		if w.status != 0 && w.status != http.StatusOK {
			t.Fatalf("%s: status %d", tc.name, w.status)
		}
		base := testing.AllocsPerRun(200, func() { bare.ServeHTTP(w, r) })
		got := testing.AllocsPerRun(200, func() { guarded.ServeHTTP(w, r) })
		if got-base > tc.budget {
			t.Errorf("%s: %v allocations over the bare handler's %v, budget %v", tc.name, got-base, base, tc.budget)
		}
		baseBytes := bytesPerRun(200, func() { bare.ServeHTTP(w, r) })
		gotBytes := bytesPerRun(200, func() { guarded.ServeHTTP(w, r) })
		if gotBytes-baseBytes > tc.bytes {
			t.Errorf("%s: %.0f bytes allocated over the bare handler's %.0f, budget %.0f", tc.name, gotBytes-baseBytes, baseBytes, tc.bytes)
		}
	}
}

// bytesPerRun is testing.AllocsPerRun for bytes: the heap bytes f
// allocates per call, averaged over runs calls after a warm-up call. The
// count is the process's, so a goroutine left by another test can add to
// it: the least of three measurements is taken (it can only be too high).
func bytesPerRun(runs int, f func()) float64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f()
	least := -1.0
	for range 3 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range runs {
			f()
		}
		runtime.ReadMemStats(&after)
		if b := float64(after.TotalAlloc-before.TotalAlloc) / float64(runs); least < 0 || b < least {
			least = b
		}
	}
	return least
}

// TestKnownTokenInvariant: the b64token check is skipped only for a token
// that is in a cache, and every token in a cache passes the check.
func TestKnownTokenInvariant(t *testing.T) {
	a := newAuth(t, baseConfig(t))
	good := keyRS.token(validClaims(), nil)
	expired := keyRS.token(claimsAt(time.Now().Add(-time.Hour)), nil)
	for _, tok := range []string{good, expired, "not.a.jwt", "bad!", "a=b", good + "x"} {
		doAuth(a, &recordHandler{}, tok)
	}
	known := func(tok string) bool { _, ok := a.knownToken(tok); return ok }
	if !known(good) || known(good+"x") || known("bad!") {
		t.Fatal("knownToken does not answer for exactly the cached tokens")
	}
	for _, k := range a.jwtCache.lru.Keys() {
		e, _ := a.jwtCache.lru.Peek(k)
		if err := a.checkToken(e.raw); err != nil {
			t.Fatalf("cached token %q fails the check: %v", e.raw, err)
		}
	}
}

// TestHeaderGetKeys: the keys headerGet is called with are canonical, so
// it answers as http.Header.Get.
func TestHeaderGetKeys(t *testing.T) {
	for _, k := range []string{"Authorization", "Origin", "Content-Type", "Content-Encoding"} {
		if http.CanonicalHeaderKey(k) != k {
			t.Fatalf("%q is not canonical", k)
		}
		h := http.Header{}
		h.Add(k, "v1")
		h.Add(k, "v2")
		if headerGet(h, k) != h.Get(k) || headerGet(http.Header{}, k) != "" {
			t.Fatalf("headerGet(%q) differs from Get", k)
		}
	}
}

// TestPlainPath: for a plain path (and no RawPath), EscapedPath is the path
// itself, for every byte and in every position.
func TestPlainPath(t *testing.T) {
	for c := 0; c < 256; c++ {
		for _, p := range []string{"/fhir/" + string(rune(c)), string([]byte{byte(c)}) + "/x", "/a" + string([]byte{byte(c)}) + "b"} {
			u := &url.URL{Path: p}
			if plainPath(p) && u.EscapedPath() != p {
				t.Fatalf("plainPath(%q) but EscapedPath %q", p, u.EscapedPath())
			}
		}
	}
	for _, p := range []string{"/fhir/Observation/1", "/fhir/Patient/a-b.c_d~e", "/", ""} {
		if !plainPath(p) {
			t.Fatalf("plainPath(%q) = false", p)
		}
	}
}

// TestPooledBodyLateWrite: a verified response's buffer is reused by later
// responses, so a handler that writes after it returned must not reach
// it: the late write fails, and the next response is exactly its own.
func TestPooledBodyLateWrite(t *testing.T) {
	a, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	var kept http.ResponseWriter
	bodies := []string{
		`{"resourceType":"Observation","id":"1","subject":{"reference":"Patient/123"},"note":[{"text":"first"}]}`,
		`{"resourceType":"Observation","id":"1","subject":{"reference":"Patient/123"}}`,
	}
	n := 0
	h := withToken(token("patient/Observation.rs", "123"), a.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if kept == nil {
			kept = w
		}
		w.Header().Set("Content-Type", "application/fhir+json")
		_, _ = io.WriteString(w, bodies[n%len(bodies)])
	})))
	for ; n < 6; n++ {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, testBase+"/Observation/1", nil))
		if rec.Code != http.StatusOK || rec.Body.String() != bodies[n%len(bodies)] {
			t.Fatalf("response %d: %d %q", n, rec.Code, rec.Body)
		}
		if _, err := kept.Write([]byte(`{"resourceType":"Observation","id":"1","subject":{"reference":"Patient/456"}}`)); err == nil {
			t.Fatalf("response %d: a write after the handler returned was accepted", n)
		}
	}
}
