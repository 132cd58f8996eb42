package harness

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/fhirguard/fhirguard/fhir"
	"github.com/fhirguard/fhirguard/middleware"
	"github.com/fhirguard/fhirguard/scope"
)

// ScaleConfig configures Scale.
type ScaleConfig struct {
	// Tokens is the number of distinct live tokens (default 10,000).
	Tokens int
	// ScopeStrings is the number of distinct scope strings they share
	// (default 100, at most Tokens).
	ScopeStrings int
	// Alg is the signature algorithm of the tokens (default EdDSA, the
	// cheapest to sign).
	Alg string
	// CacheSize is middleware.AuthConfig.CacheSize (default: Tokens, so
	// that every token fits).
	CacheSize int
	// Issuer signs the tokens; default a new one.
	Issuer *Issuer
}

// ScaleResult is what Scale measured.
type ScaleResult struct {
	Tokens, ScopeStrings, CacheSize int
	// BytesPerToken is the growth of the live heap after the first pass
	// (every token seen once and cached), divided by Tokens. It includes the
	// Token values, their claims, the cache entries and the shared compiled
	// matchers (amortised), not the token strings, which the caller holds.
	BytesPerToken float64
	// FirstPass and SecondPass are the mean times per request of the pass
	// that verifies every token and of the pass (in another order) that
	// should find them all in the cache.
	FirstPass, SecondPass time.Duration
	// HitRatio is the share of second-pass requests answered from the
	// cache.
	HitRatio float64
	// Matchers is the number of distinct compiled scope matchers the tokens
	// of the second pass carry: ScopeStrings when the scope cache shares
	// them.
	Matchers int
}

// scaleScopes returns the i-th of the distinct scope strings: a typical
// patient app's scopes plus one varying resource scope.
func scaleScopes(i int) string {
	types := fhir.ResourceTypes(fhir.R4)
	letters := []string{"rs", "r", "s", "cruds"}
	return fmt.Sprintf("launch/patient openid fhirUser patient/Patient.rs patient/Observation.rs patient/%s.%s",
		types[i%len(types)], letters[(i/len(types))%len(letters)])
}

// Scale sends Tokens distinct tokens, spread over ScopeStrings scope
// strings, through Authenticate twice and reports the memory each cached
// token costs, the second pass's cache hit ratio and how many compiled
// matchers the tokens share. It runs in the calling process: call it from a
// process doing nothing else for a meaningful BytesPerToken.
func Scale(cfg ScaleConfig) (ScaleResult, error) {
	if cfg.Tokens == 0 {
		cfg.Tokens = 10_000
	}
	if cfg.ScopeStrings == 0 {
		cfg.ScopeStrings = min(100, cfg.Tokens)
	}
	if cfg.Alg == "" {
		cfg.Alg = "EdDSA"
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = cfg.Tokens
	}
	if cfg.Tokens < 0 || cfg.ScopeStrings <= 0 || cfg.ScopeStrings > cfg.Tokens || cfg.CacheSize < 0 {
		return ScaleResult{}, errors.New("harness: Scale needs 0 < ScopeStrings ≤ Tokens and CacheSize ≥ 0")
	}
	for i := 1; i < cfg.ScopeStrings; i++ {
		if scaleScopes(i) == scaleScopes(0) {
			return ScaleResult{}, fmt.Errorf("harness: at most %d distinct scope strings", i)
		}
	}
	iss := cfg.Issuer
	if iss == nil {
		var err error
		if iss, err = NewIssuer(); err != nil {
			return ScaleResult{}, err
		}
	}
	toks := make([]string, cfg.Tokens)
	for i := range toks {
		var err error
		toks[i], err = iss.Sign(TokenSpec{Alg: cfg.Alg, Scopes: scaleScopes(i % cfg.ScopeStrings), Patient: "123", ID: i})
		if err != nil {
			return ScaleResult{}, err
		}
	}

	var cached atomic.Int64
	a, err := middleware.NewAuthenticator(middleware.AuthConfig{
		Audience:          BaseURL,
		Issuers:           []string{IssuerURL},
		PublicKeys:        iss.PublicKeys(),
		InsecureAllowHTTP: true,
		CacheSize:         cfg.CacheSize,
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnDecision: func(e middleware.AuthEvent) {
			if e.Cached {
				cached.Add(1)
			}
		},
	})
	if err != nil {
		return ScaleResult{}, err
	}
	defer a.Close()
	matchers := map[*scope.Matcher]struct{}{}
	collect := false
	h := a.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t, ok := middleware.TokenFromContext(r.Context()); ok && collect {
			matchers[t.Scopes] = struct{}{}
		}
	}))
	w := &discardWriter{h: http.Header{}}
	send := func(order []int) (time.Duration, error) {
		start := time.Now()
		for _, i := range order {
			r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1"+BasePath+"/Observation/1", nil)
			r.Header.Set("Authorization", "Bearer "+toks[i])
			w.status = 0
			h.ServeHTTP(w, r)
			if w.status != 0 && w.status != http.StatusOK {
				return 0, fmt.Errorf("harness: token %d refused with %d", i, w.status)
			}
		}
		return time.Since(start) / time.Duration(len(order)), nil
	}

	order := make([]int, cfg.Tokens)
	for i := range order {
		order[i] = i
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	first, err := send(order)
	if err != nil {
		return ScaleResult{}, err
	}
	runtime.GC()
	runtime.ReadMemStats(&after)

	rand.New(rand.NewPCG(1, 2)).Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	cached.Store(0)
	collect = true
	second, err := send(order)
	if err != nil {
		return ScaleResult{}, err
	}
	runtime.KeepAlive(h)
	return ScaleResult{
		Tokens: cfg.Tokens, ScopeStrings: cfg.ScopeStrings, CacheSize: cfg.CacheSize,
		BytesPerToken: (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(cfg.Tokens),
		FirstPass:     first, SecondPass: second,
		HitRatio: float64(cached.Load()) / float64(cfg.Tokens),
		Matchers: len(matchers),
	}, nil
}

// discardWriter is a ResponseWriter that keeps only the status.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(s int)           { w.status = s }
