package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fhirguard/fhirguard/internal/statuswriter"
	"github.com/fhirguard/fhirguard/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Decisions, in the access line and the requests metric.
const (
	decisionNone            = "none" // not authorized: a public document, a path outside the base
	decisionAllowed         = "allowed"
	decisionRefused         = "refused"         // by the enforcement point (scopes, compartment, policy, request rules)
	decisionUnauthenticated = "unauthenticated" // no token, or a token refused
	decisionUnavailable     = "unavailable"     // keys or introspection unreachable (503)
)

// reqInfo gathers what one request's access line says. The middleware's
// hooks and the upstream transport fill it through the request context.
type reqInfo struct {
	mu            sync.Mutex
	clientID      string
	patient       string
	interaction   string
	decision      string
	reason        string
	rule          string
	withheld      []string
	upstream      time.Duration
	upstreamCalls int
}

type reqInfoKey struct{}

func infoFrom(ctx context.Context) *reqInfo {
	ri, _ := ctx.Value(reqInfoKey{}).(*reqInfo)
	return ri
}

// observe wraps the server's handler: the request body limit, one access
// line per request, and the request metrics. The health, readiness and
// metrics endpoints are neither logged nor counted.
func (s *proxyServer) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case healthzPath, readyzPath, metricsPath:
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		ri := &reqInfo{}
		r = r.WithContext(context.WithValue(r.Context(), reqInfoKey{}, ri))
		sw := &statuswriter.Writer{ResponseWriter: w}
		if r.ContentLength > s.cfg.maxBodyBytes {
			ri.decision, ri.reason = decisionRefused, "request body larger than --max-body-bytes"
			w.Header().Set("Connection", "close")
			writeOutcome(sw, http.StatusRequestEntityTooLarge, "too-costly", "the request body is too large")
		} else {
			if r.Body != nil && r.Body != http.NoBody {
				r.Body = http.MaxBytesReader(sw, r.Body, s.cfg.maxBodyBytes)
			}
			next.ServeHTTP(sw, r)
		}
		end := time.Now()
		// An HTTP/1 response leaves now rather than when this handler
		// returns: the access line and the metrics are not on the client's
		// path. (HTTP/2 would send one frame more.)
		if f, ok := w.(http.Flusher); ok && r.ProtoMajor == 1 {
			f.Flush()
		}
		s.access(r, ri, sw, end, end.Sub(start))
	})
}

// access writes the access line (ending at end) and counts the request.
func (s *proxyServer) access(r *http.Request, ri *reqInfo, sw *statuswriter.Writer, end time.Time, d time.Duration) {
	status := sw.Status
	if status == 0 {
		status = http.StatusOK
	}
	ri.mu.Lock()
	defer ri.mu.Unlock()
	decision := ri.decision
	if decision == "" {
		decision = decisionNone
	}
	s.metrics.requestCounter(decision, status).Inc()
	s.metrics.duration.Observe(d.Seconds())

	h := s.log.Handler()
	if !h.Enabled(r.Context(), slog.LevelInfo) {
		return
	}
	var buf [16]slog.Attr // at most 15: on the stack
	attrs := append(buf[:0],
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
	)
	if names := queryNames(r.URL.RawQuery); len(names) > 0 {
		attrs = append(attrs, slog.Any("query_params", names))
	}
	attrs = append(attrs,
		slog.Int("status", status),
		slog.Float64("duration_ms", ms(d)),
		slog.Int64("bytes", sw.Bytes),
		slog.String("remote", r.RemoteAddr),
	)
	if ri.upstreamCalls > 0 {
		attrs = append(attrs, slog.Float64("upstream_ms", ms(ri.upstream)), slog.Int("upstream_calls", ri.upstreamCalls))
	}
	attrs = append(attrs, slog.String("decision", decision))
	for _, a := range [...]struct{ k, v string }{
		{"client_id", ri.clientID}, {"patient", ri.patient}, {"interaction", ri.interaction},
		{"reason", ri.reason}, {"rule", ri.rule},
	} {
		if a.v != "" {
			attrs = append(attrs, slog.String(a.k, a.v))
		}
	}
	if len(ri.withheld) > 0 {
		attrs = append(attrs, slog.Any("withheld", ri.withheld))
	}
	// The record is built here rather than by Logger.LogAttrs, which
	// records the caller's program counter (runtime.Callers) for a source
	// the handlers are not asked to print.
	rec := slog.NewRecord(end, slog.LevelInfo, "access", 0)
	rec.AddAttrs(attrs...)
	_ = h.Handle(r.Context(), rec)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// queryNames returns the distinct names of the query parameters, sorted;
// their values (which may identify a patient) are never logged.
func queryNames(raw string) []string {
	if raw == "" {
		return nil
	}
	var names []string
	for part := range strings.SplitSeq(raw, "&") {
		name, _, _ := strings.Cut(part, "=")
		if n, err := url.QueryUnescape(name); err == nil {
			name = n
		}
		if name != "" && !slices.Contains(names, name) && len(names) < 50 {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// onAuth is AuthConfig.OnDecision.
func (s *proxyServer) onAuth(ev middleware.AuthEvent) {
	m := s.metrics
	switch {
	case ev.Cached:
		m.tokenCache.WithLabelValues("hit").Inc()
	case ev.Token != nil || ev.Introspected:
		m.tokenCache.WithLabelValues("miss").Inc()
	}
	if ev.Err != nil {
		switch {
		case errors.Is(ev.Err, middleware.ErrKeysUnavailable):
			m.keyFailures.WithLabelValues("jwks").Inc()
		case errors.Is(ev.Err, middleware.ErrIntrospectionUnavailable):
			m.keyFailures.WithLabelValues("introspection").Inc()
		}
	}
	if ev.Token != nil && !ev.Introspected {
		s.keysLoaded.Store(true) // a JWT verified: the keys are there
	}
	if ev.Request == nil {
		return
	}
	ri := infoFrom(ev.Request.Context())
	if ri == nil {
		return
	}
	ri.mu.Lock()
	defer ri.mu.Unlock()
	if ev.Token != nil {
		ri.clientID, ri.patient = ev.Token.ClientID, ev.Token.Patient
		return
	}
	if ev.Err != nil {
		ri.decision, ri.reason = decisionUnauthenticated, ev.Err.Error()
		if ev.Err.Status == http.StatusServiceUnavailable {
			ri.decision = decisionUnavailable
		}
	}
}

// onAuthorize is AuthorizeConfig.OnDecision.
func (s *proxyServer) onAuthorize(r *http.Request, d *middleware.Decision, refusal error) {
	ri := infoFrom(r.Context())
	if ri == nil {
		return
	}
	ri.mu.Lock()
	defer ri.mu.Unlock()
	if d != nil {
		ri.interaction = d.Interaction.String()
		if d.CompartmentType == "Patient" && d.CompartmentID != "" {
			ri.patient = d.CompartmentID
		}
		ri.rule = d.Rule
		ri.withheld = slices.Clone(d.Withheld)
	}
	if refusal != nil {
		ri.decision, ri.reason = decisionRefused, refusal.Error()
		return
	}
	ri.decision = decisionAllowed
}

// writeOutcome answers with a FHIR OperationOutcome (code and msg are
// constants).
func writeOutcome(w http.ResponseWriter, status int, code, msg string) {
	body := `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"` + code + `","diagnostics":"` + msg + `"}]}`
	w.Header().Set("Content-Type", "application/fhir+json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// timedTransport measures the upstream's latency (to the response
// headers) of the requests made for a client's request.
type timedTransport struct {
	base http.RoundTripper
	m    *proxyMetrics
}

func (t *timedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(r)
	d := time.Since(start)
	if ri := infoFrom(r.Context()); ri != nil { // not the readiness probe
		ri.mu.Lock()
		ri.upstream += d
		ri.upstreamCalls++
		ri.mu.Unlock()
		t.m.upstream.Observe(d.Seconds())
		if err != nil {
			t.m.upstreamErrors.Inc()
		}
	}
	return resp, err
}

// CloseIdleConnections lets gateway.Proxy.Close reach the transport.
func (t *timedTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// proxyMetrics are the Prometheus metrics of one server (a registry of its
// own: tests run several).
type proxyMetrics struct {
	reg            *prometheus.Registry
	requests       *prometheus.CounterVec
	requestsMu     sync.RWMutex
	requestsByKey  map[requestKey]prometheus.Counter // requests' counters resolved so far
	duration       prometheus.Histogram
	upstream       prometheus.Histogram
	upstreamErrors prometheus.Counter
	tokenCache     *prometheus.CounterVec
	keyFailures    *prometheus.CounterVec
	policyReloads  *prometheus.CounterVec
}

func newProxyMetrics(process bool) *proxyMetrics {
	m := &proxyMetrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fhirguard_requests_total",
			Help: "Requests, by decision (allowed, refused, unauthenticated, unavailable, none) and HTTP status.",
		}, []string{"decision", "status"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fhirguard_request_duration_seconds",
			Help:    "Time to answer a request, upstream included.",
			Buckets: prometheus.DefBuckets,
		}),
		upstream: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fhirguard_upstream_latency_seconds",
			Help:    "Time from sending a request to the upstream FHIR server to its response headers.",
			Buckets: prometheus.DefBuckets,
		}),
		upstreamErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fhirguard_upstream_errors_total",
			Help: "Requests to the upstream FHIR server that got no response (unreachable, timeout).",
		}),
		tokenCache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fhirguard_token_cache_total",
			Help: "Token verifications and introspections, by result: hit (answered from the cache) or miss.",
		}, []string{"result"}),
		keyFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fhirguard_key_source_failures_total",
			Help: "Requests answered 503 because the JWK Set (jwks) or the introspection endpoint (introspection) was unavailable.",
		}, []string{"source"}),
		policyReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fhirguard_policy_reloads_total",
			Help: "Reloads of the CEL policy file, by result (ok, failed).",
		}, []string{"result"}),
	}
	m.requestsByKey = map[requestKey]prometheus.Counter{}
	m.reg.MustRegister(m.requests, m.duration, m.upstream, m.upstreamErrors, m.tokenCache, m.keyFailures, m.policyReloads)
	if process {
		m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m
}

type requestKey struct {
	decision string
	status   int
}

// requestCounter returns the requests counter of decision and status,
// resolved once (CounterVec.WithLabelValues hashes the labels and formats
// the status on every call).
func (m *proxyMetrics) requestCounter(decision string, status int) prometheus.Counter {
	k := requestKey{decision, status}
	m.requestsMu.RLock()
	c, ok := m.requestsByKey[k]
	m.requestsMu.RUnlock()
	if ok {
		return c
	}
	m.requestsMu.Lock()
	defer m.requestsMu.Unlock()
	if c, ok = m.requestsByKey[k]; !ok {
		c = m.requests.WithLabelValues(decision, strconv.Itoa(status))
		m.requestsByKey[k] = c
	}
	return c
}

func (m *proxyMetrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
