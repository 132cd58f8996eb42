//go:build unix

package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkGateway compares, in the same run and interleaved request by
// request, the engine reached directly with the engine behind the
// fhirguard proxy (a system token, whose responses the gateway passes on,
// and a patient token, whose responses it verifies against patient A's
// compartment), and behind a plain httputil.ReverseProxy in the test
// process (no guard: what any extra HTTP hop costs). Each iteration sends
// one request in every mode, the modes in a rotating order, each mode on
// its own keep-alive connection; latency is measured from sending the
// request to reading the whole body. Reported per mode: median and p99 in
// µs, and the added latency of the gateway in % of direct access; then,
// from separate runs of b.N requests per token, the proxy process's CPU
// time per request.
//
//	go test -run '^$' -bench Gateway -benchtime 3000x ./interop/gateway
func BenchmarkGateway(b *testing.B) {
	s := needSuite(b)
	plain := httptest.NewServer(plainProxy(s.engineBase))
	defer plain.Close()
	plainBase := plain.URL + "/fhir"
	for _, bc := range []struct{ name, target string }{
		{"read", "Observation/" + s.a.Observations.Vitals},
		{"search", "Observation?patient=" + s.a.ID},
	} {
		b.Run(bc.name, func(b *testing.B) {
			modes := []benchMode{
				{name: "direct", url: s.engineBase + "/" + bc.target},
				{name: "plain-proxy", url: plainBase + "/" + bc.target},
				{name: "gateway-system", url: s.publicBase + "/" + bc.target, token: s.tokens[holderSystem]},
				{name: "gateway-patient", url: s.publicBase + "/" + bc.target, token: s.tokens[holderPatient]},
			}
			for i := range modes {
				modes[i].client = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1}}
				defer modes[i].client.CloseIdleConnections()
				for range 50 { // warm-up: connections, caches, JIT
					if _, err := modes[i].send(); err != nil {
						b.Fatalf("%s: %v", modes[i].name, err)
					}
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := range modes {
					m := &modes[(i+j)%len(modes)]
					d, err := m.send()
					if err != nil {
						b.Fatalf("%s: %v", m.name, err)
					}
					m.lat = append(m.lat, d)
				}
			}
			b.StopTimer()
			direct := modes[0].summary()
			var total time.Duration
			for _, m := range modes {
				sm := m.summary()
				key := strings.ReplaceAll(m.name, "-", "_")
				b.ReportMetric(us(sm.p50), key+"_p50_us")
				b.ReportMetric(us(sm.p99), key+"_p99_us")
				switch {
				case b.N < 10: // the framework's probing run
				case m.name != "direct":
					b.Logf("%-16s p50 %7.0f µs  p99 %7.0f µs   added to direct: p50 %+6.0f µs (%+.0f %%), p99 %+6.0f µs (%+.0f %%)",
						m.name, us(sm.p50), us(sm.p99), us(sm.p50-direct.p50), pct(sm.p50, direct.p50),
						us(sm.p99-direct.p99), pct(sm.p99, direct.p99))
				default:
					b.Logf("%-16s p50 %7.0f µs  p99 %7.0f µs   (%d requests per mode)", m.name, us(sm.p50), us(sm.p99), len(m.lat))
				}
				for _, d := range m.lat {
					total += d
				}
			}
			s.benchCPU(b, modes)
			b.ReportMetric(pct(modes[2].summary().p50, direct.p50), "gateway_system_added_p50_pct")
			b.ReportMetric(pct(modes[3].summary().p50, direct.p50), "gateway_patient_added_p50_pct")
			b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/op")
		})
	}
}

type benchMode struct {
	name, url, token string
	client           *http.Client
	lat              []time.Duration
}

func (m *benchMode) send() (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/fhir+json")
	if m.token != "" {
		req.Header.Set("Authorization", "Bearer "+m.token)
	}
	start := time.Now()
	resp, err := m.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return d, err
}

type latency struct{ p50, p99 time.Duration }

func (m *benchMode) summary() latency {
	d := slices.Clone(m.lat)
	slices.Sort(d)
	if len(d) == 0 {
		return latency{}
	}
	at := func(q float64) time.Duration {
		i := int(q*float64(len(d))+0.999999) - 1
		return d[min(max(i, 0), len(d)-1)]
	}
	return latency{p50: at(0.50), p99: at(0.99)}
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

func pct(d, base time.Duration) float64 {
	if base == 0 {
		return 0
	}
	return 100 * float64(d-base) / float64(base)
}

// plainProxy is a reverse proxy to the engine with nothing else: the cost
// of an HTTP hop.
func plainProxy(engineBase string) http.Handler {
	u, _ := url.Parse(engineBase)
	return &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.Out.URL.Scheme, pr.Out.URL.Host, pr.Out.Host = u.Scheme, u.Host, u.Host
	}}
}

// benchCPU sends b.N more requests through the gateway with each token,
// one mode after the other, and reports the CPU time the proxy process used
// per request (Linux: /proc/PID/stat, 10 ms ticks). At one request at a
// time this includes the Go runtime's cost of waking up for each request.
func (s *suite) benchCPU(b *testing.B, modes []benchMode) {
	if s.proxy == nil || b.N < 10 {
		return
	}
	pid := s.proxy.cmd.Process.Pid
	for _, m := range modes {
		if !strings.HasPrefix(m.name, "gateway") {
			continue
		}
		t0, ok1 := cpuTime(pid)
		for i := 0; i < b.N; i++ {
			if _, err := m.send(); err != nil {
				b.Fatalf("%s: %v", m.name, err)
			}
		}
		t1, ok2 := cpuTime(pid)
		if !ok1 || !ok2 {
			return
		}
		perReq := us(t1-t0) / float64(b.N)
		b.ReportMetric(perReq, strings.ReplaceAll(m.name, "-", "_")+"_proxy_cpu_us")
		b.Logf("%-16s CPU of the fhirguard proxy per request: %.0f µs (%d requests)", m.name, perReq, b.N)
	}
}
