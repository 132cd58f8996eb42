package middleware

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/fhirguard/fhirguard/compartment"
	"github.com/fhirguard/fhirguard/internal/fhirjson"
)

// benchObservation is the load test's Observation (benchmarks/internal/harness).
var benchObservation = []byte(`{"resourceType":"Observation","id":"1","meta":{"versionId":"1","lastUpdated":"2024-01-01T00:00:00Z"},` +
	`"status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],` +
	`"code":{"coding":[{"system":"http://loinc.org","code":"2339-0","display":"Glucose"}]},"subject":{"reference":"Patient/123"},` +
	`"effectiveDateTime":"2024-01-01T10:00:00Z","valueQuantity":{"value":95.5,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"}}`)

// BenchmarkVerifyRead is a read of one Observation through Authorize, the
// request already authenticated (a fresh token context per request, as
// Authenticate makes), against the bare handler in the same run:
//
//	bare            the handler alone
//	system          a system token: no verification
//	patient         a patient token: the response is verified, building
//	                only its references (the default path)
//	patient-whole   the same with a resource policy that allows
//	                everything, which makes Authorize read the whole
//	                resource (the path before fhirjson.Options.References)
//
// BenchmarkVerifyReadParts splits the patient path into its steps.
func BenchmarkVerifyRead(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		_, _ = w.Write(benchObservation)
	})
	plain, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	whole, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, Logger: quietLogger(), Policies: []Policy{allowResources{}}})
	if err != nil {
		b.Fatal(err)
	}
	system := token("system/Observation.rs", "")
	patient := token("patient/Observation.rs", "123")
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{
		{"bare", withToken(patient, h)},
		{"system", withToken(system, plain.Handler(h))},
		{"patient", withToken(patient, plain.Handler(h))},
		{"patient-whole", withToken(patient, whole.Handler(h))},
	} {
		r := httptest.NewRequest(http.MethodGet, testBase+"/Observation/1", nil)
		r.Header.Set("Accept-Encoding", "gzip")
		w := &allocWriter{h: http.Header{}}
		tc.h.ServeHTTP(w, r)
		if w.status != 0 && w.status != http.StatusOK {
			b.Fatalf("%s: status %d", tc.name, w.status)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(benchObservation)))
			for b.Loop() {
				tc.h.ServeHTTP(w, r)
			}
		})
	}
}

// BenchmarkVerifyReadParts: the steps of a verified read, one by one.
func BenchmarkVerifyReadParts(b *testing.B) {
	a, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	whole, err := decodeJSONObject(benchObservation)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("decode/whole", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(benchObservation)))
		for b.Loop() {
			if _, err := decodeJSONObject(benchObservation); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/references", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(benchObservation)))
		for b.Loop() {
			if _, err := fhirjson.Decode(benchObservation, readRefsJSON); err != nil {
				b.Fatal(err)
			}
		}
	})
	refs, err := fhirjson.Decode(benchObservation, readRefsJSON)
	if err != nil {
		b.Fatal(err)
	}
	for _, doc := range []struct {
		name string
		m    map[string]any
	}{{"whole", whole}, {"references", refs}} {
		b.Run("member/"+doc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if ok, err := a.checker.MemberMap(doc.m, compartment.Patient, "123"); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
		b.Run("otherPatient/"+doc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if ref := a.otherPatientRef(doc.m, "123"); ref != "" {
					b.Fatal(ref)
				}
			}
		})
	}
	r := httptest.NewRequest(http.MethodGet, testBase+"/Observation/1", nil)
	r.Header.Set("Accept-Encoding", "gzip")
	b.Run("requestHeader", func(b *testing.B) {
		var vals [8]string
		b.ReportAllocs()
		for b.Loop() {
			_ = verifiedRequestHeader(r.Header, vals[:])
		}
	})
	b.Run("recordAndWrite", func(b *testing.B) {
		w := &allocWriter{h: http.Header{}}
		b.ReportAllocs()
		for b.Loop() {
			rec := &recorder{header: http.Header{}, limit: defaultMaxResponseBytes}
			rec.Header().Set("Content-Type", "application/fhir+json")
			_, _ = rec.Write(benchObservation)
			if !isJSONMediaType(rec.header.Get("Content-Type")) {
				b.Fatal("not JSON")
			}
			writeRecorded(w, r, rec, rec.body.Bytes())
		}
	})
}

// BenchmarkGuardRead is the whole Guard (CORS, public paths, Authenticate
// from its cache, Authorize) reading one Observation, against the bare
// handler in the same run: system (no verification) and patient (the
// response verified) tokens. benchmarks.BenchmarkGuard is the same with the
// load test's server; this one needs no RSA key generation per run.
func BenchmarkGuardRead(b *testing.B) {
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		_, _ = w.Write(benchObservation)
	})
	cfg := baseConfig(b)
	g, err := New(Config{Authorize: AuthorizeConfig{BaseURL: testAudience, Logger: quietLogger()}, Auth: cfg})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(g.Close)
	guarded := g.Handler(bare)
	for _, tc := range []struct{ name, scopes string }{
		{"system", "system/Observation.rs"},
		{"patient", "launch/patient patient/Observation.rs"},
	} {
		claims := validClaims()
		claims["scope"] = tc.scopes
		r := httptest.NewRequest(http.MethodGet, testAudience+"/Observation/1", nil)
		r.Header.Set("Authorization", "Bearer "+keyES.token(claims, nil))
		r.Header.Set("Accept-Encoding", "gzip")
		w := &allocWriter{h: http.Header{}}
		guarded.ServeHTTP(w, r)
		if w.status != 0 && w.status != http.StatusOK {
			b.Fatalf("%s: status %d", tc.name, w.status)
		}
		for _, impl := range []struct {
			name string
			h    http.Handler
		}{{"baseline", bare}, {"fhirguard", guarded}} {
			b.Run("token="+tc.name+"/impl="+impl.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					impl.h.ServeHTTP(w, r)
				}
			})
		}
	}
}
