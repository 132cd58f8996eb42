//go:build unix

package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkGateway compares, in the same run and interleaved request by
// request, the engine reached directly with the engine behind the
// fhirguard proxy (a system token, whose responses the gateway passes on,
// and a patient token, whose responses it verifies against patient A's
// compartment), and behind a bare httputil.ReverseProxy in a process of its
// own (this test binary started again: no guard, no rewriting, no logs;
// what any extra HTTP hop in Go costs on this machine). Each iteration
// sends one request in every mode, the modes in a rotating order, each
// mode on its own keep-alive connection; latency is measured from sending
// the request to reading the whole body. Reported per mode: median and p99
// in µs, and the added latency in % of direct access; then, from separate
// runs of b.N requests per mode, the CPU time per request of the proxy
// processes.
//
//	go test -run '^$' -bench Gateway -benchtime 3000x ./interop/gateway
func BenchmarkGateway(b *testing.B) {
	s := needSuite(b)
	hop, err := startPlainProxy(s.engineBase)
	if err != nil {
		b.Fatal(err)
	}
	defer hop.stop()
	for _, bc := range []struct{ name, target string }{
		{"read", "Observation/" + s.a.Observations.Vitals},
		{"search", "Observation?patient=" + s.a.ID},
	} {
		b.Run(bc.name, func(b *testing.B) {
			runBenchModes(b, []benchMode{
				{name: "direct", url: s.engineBase + "/" + bc.target},
				{name: "reverse-proxy", url: hop.base + "/" + bc.target, pid: hop.pid()},
				{name: "gateway-system", url: s.publicBase + "/" + bc.target, token: s.tokens[holderSystem], pid: s.proxy.pid()},
				{name: "gateway-patient", url: s.publicBase + "/" + bc.target, token: s.tokens[holderPatient], pid: s.proxy.pid()},
			})
		})
	}
}

// runBenchModes measures modes (the first one is direct access, the
// baseline) interleaved, then the CPU time of their proxy processes, and
// reports both (see BenchmarkGateway).
func runBenchModes(b *testing.B, modes []benchMode) {
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
			b.Logf("%-16s p50 %7.0f µs  p99 %7.0f µs   added to direct: p50 %+6.0f µs (%+.1f %%), p99 %+6.0f µs (%+.1f %%)",
				m.name, us(sm.p50), us(sm.p99), us(sm.p50-direct.p50), pct(sm.p50, direct.p50),
				us(sm.p99-direct.p99), pct(sm.p99, direct.p99))
		default:
			b.Logf("%-16s p50 %7.0f µs  p99 %7.0f µs   (%d requests per mode)", m.name, us(sm.p50), us(sm.p99), len(m.lat))
		}
		for _, d := range m.lat {
			total += d
		}
		if m.name != "direct" {
			b.ReportMetric(pct(sm.p50, direct.p50), key+"_added_p50_pct")
		}
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/op")
	benchCPU(b, modes)
}

type benchMode struct {
	name, url, token string
	header           http.Header // more request headers (nil: none)
	pid              int         // the proxy process in between (0: none)
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
	for k, v := range m.header {
		req.Header[k] = v
	}
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

// plainProxyEnv, set to "<upstream base> <listen address>", makes the test
// binary a bare reverse proxy (see TestMain).
const plainProxyEnv = "FHIRGUARD_GATEWAY_PLAIN_PROXY"

// runPlainProxy serves a bare httputil.ReverseProxy to the upstream until
// the process is ended.
func runPlainProxy(v string) int {
	upstream, addr, _ := strings.Cut(v, " ")
	u, err := url.Parse(upstream)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.Out.URL.Scheme, pr.Out.URL.Host, pr.Out.Host = u.Scheme, u.Host, u.Host
	}}
	srv := &http.Server{Addr: addr, Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintln(os.Stderr, srv.ListenAndServe())
	return 1
}

// hopProc is the bare reverse proxy process.
type hopProc struct {
	*proc
	base string // its FHIR base
}

// startPlainProxy starts the test binary again as a bare reverse proxy to
// the engine and waits until it answers. Its FHIR base has the engine's
// path.
func startPlainProxy(engineBase string) (*hopProc, error) {
	u, err := url.Parse(engineBase)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	envv := append(os.Environ(), plainProxyEnv+"="+engineBase+" "+addr)
	p, err := startProc("reverse-proxy", io.Discard, os.Stderr, envv, os.Args[0])
	if err != nil {
		return nil, err
	}
	h := &hopProc{proc: p, base: "http://" + addr + strings.TrimRight(u.EscapedPath(), "/")}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	for deadline := time.Now().Add(startDeadline); ; {
		resp, err := client.Get(h.base + "/metadata")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return h, nil
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("reverse proxy exited: %v", p.err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			h.stop()
			return nil, fmt.Errorf("reverse proxy not ready after %v: %v", startDeadline, err)
		}
	}
}

// benchCPU sends b.N more requests in each mode with a proxy process, one
// mode after the other, and reports that process's CPU time per request
// (Linux: /proc/PID/stat, 10 ms ticks). At one request at a time this
// includes the Go runtime's cost of waking up for each request.
func benchCPU(b *testing.B, modes []benchMode) {
	if b.N < 10 {
		return
	}
	for _, m := range modes {
		if m.pid == 0 {
			continue
		}
		t0, ok1 := cpuTime(m.pid)
		for i := 0; i < b.N; i++ {
			if _, err := m.send(); err != nil {
				b.Fatalf("%s: %v", m.name, err)
			}
		}
		t1, ok2 := cpuTime(m.pid)
		if !ok1 || !ok2 {
			return
		}
		perReq := us(t1-t0) / float64(b.N)
		b.ReportMetric(perReq, strings.ReplaceAll(m.name, "-", "_")+"_proxy_cpu_us")
		b.Logf("%-16s CPU of the proxy process per request: %.0f µs (%d requests)", m.name, perReq, b.N)
	}
}
