// Command fhirguard-bench runs fhirguard's load and scale tests and prints
// Markdown tables (run.sh puts them into benchmarks/README.md).
//
//	fhirguard-bench load  [-duration 3s] [-warmup 1s] [-concurrency 1,16,64] [-rounds 5]
//	fhirguard-bench scale [-tokens 10000] [-scopes 100]
//	fhirguard-bench serve -mode bare|guard
//	fhirguard-bench requests -url URL [-token T] [-n 1000]
//
// load starts two server processes (this command in serve mode): the
// benchmark FHIR server bare, and behind middleware.Guard. It then drives
// them on loopback with keep-alive connections at each concurrency, round by
// round, interleaving the scenarios:
//
//	bare           the bare server (the request carries the system token,
//	               which it ignores; serve pads the system token to the
//	               patient token's length, so that every scenario sends
//	               requests of the same size)
//	guard-system   the Guard with a cached system token: no response
//	               verification (the target scenario)
//	guard-patient  the Guard with a cached patient token: the response is
//	               verified against the patient's compartment (for
//	               information)
//
// and reports medians over the rounds of requests/s, p50 and p99 latency,
// server CPU time and heap allocations per request and the servers' resident
// memory. The
// ratio to bare and the p99 added are medians of per-round pairs (each
// scenario against the bare run just before it), which keeps a neighbour's
// load on a shared machine from deciding the comparison.
//
// serve listens on a loopback port and prints one JSON line with its address
// and (guard) a system and a patient token, then serves until its standard
// input closes.
//
// requests sends n GET requests to url, one after the other on one
// keep-alive connection, and fails on any answer but 200: the client of
// server-instructions.sh, which counts a serve process's instructions per
// request under valgrind.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fhirguard/fhirguard/benchmarks/internal/harness"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	switch os.Args[1] {
	case "load":
		err = load(ctx, os.Args[2:], os.Stdout)
	case "scale":
		err = scale(os.Args[2:], os.Stdout)
	case "serve":
		err = serve(os.Args[2:])
	case "requests":
		err = requests(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fhirguard-bench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: fhirguard-bench load|scale|serve|requests [flags]")
	os.Exit(2)
}

// requests sends -n sequential GETs to -url on one keep-alive connection.
func requests(args []string) error {
	fs := flag.NewFlagSet("requests", flag.ExitOnError)
	target := fs.String("url", "", "the URL to GET (required)")
	token := fs.String("token", "", "bearer token sent with every request")
	n := fs.Int("n", 1000, "number of requests")
	_ = fs.Parse(args)
	if *target == "" || *n < 0 {
		return errors.New("requests: -url is required and -n must not be negative")
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	for i := range *n {
		req, err := http.NewRequest(http.MethodGet, *target, nil)
		if err != nil {
			return err
		}
		if *token != "" {
			req.Header.Set("Authorization", "Bearer "+*token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("request %d: status %d", i+1, resp.StatusCode)
		}
	}
	return nil
}

// hello is the line a serve process prints.
type hello struct {
	Addr    string `json:"addr"`
	System  string `json:"system,omitempty"`
	Patient string `json:"patient,omitempty"`
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	modeName := fs.String("mode", "bare", "bare or guard")
	_ = fs.Parse(args)
	mode, err := harness.ParseMode(*modeName)
	if err != nil {
		return err
	}
	var (
		iss *harness.Issuer
		hi  hello
	)
	if mode == harness.Guarded {
		if iss, err = harness.NewIssuer(); err != nil {
			return err
		}
		if hi.Patient, err = iss.Sign(harness.TokenSpec{Alg: "ES256", Scopes: harness.PatientScopes, Patient: "123"}); err != nil {
			return err
		}
		// As long as the patient token: the three scenarios send requests
		// of the same size.
		if hi.System, err = iss.SignAsLong(harness.TokenSpec{Alg: "ES256", Scopes: harness.SystemScopes}, hi.Patient); err != nil {
			return err
		}
	}
	srv, err := harness.NewServer(harness.ServerConfig{Mode: mode, Issuer: iss})
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: harness.WithStats(srv), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin) // the parent closes stdin to stop us
		_ = hs.Close()
	}()
	hi.Addr = ln.Addr().String()
	if err := json.NewEncoder(os.Stdout).Encode(hi); err != nil {
		return err
	}
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// child is a running serve process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	hello hello
}

func startChild(mode string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "serve", "-mode", mode)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &c.hello)
	}
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("%s server did not start: %w", mode, err)
	}
	return c, nil
}

func (c *child) stop() {
	_ = c.stdin.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

func (c *child) stats() (harness.ProcessStats, error) {
	var s harness.ProcessStats
	resp, err := http.Get("http://" + c.hello.Addr + harness.StatsPath)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// sample is one scenario's measurement in one round.
type sample struct {
	rps, allocs  float64
	cpu          float64 // server CPU time per request, ns
	p50, p99     time.Duration
	rss          uint64
	errors       int64
	firstProblem string
}

func load(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	duration := fs.Duration("duration", 3*time.Second, "measured time per scenario, concurrency and round")
	warmup := fs.Duration("warmup", time.Second, "warm-up before each measurement")
	concList := fs.String("concurrency", "1,16,64", "comma-separated concurrency levels")
	rounds := fs.Int("rounds", 5, "rounds (medians are reported)")
	_ = fs.Parse(args)
	var levels []int
	for _, f := range strings.Split(*concList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > harness.MaxConcurrency {
			return fmt.Errorf("bad concurrency %q", f)
		}
		levels = append(levels, n)
	}
	if *rounds < 1 {
		return errors.New("rounds must be positive")
	}

	bare, err := startChild("bare")
	if err != nil {
		return err
	}
	defer bare.stop()
	guard, err := startChild("guard")
	if err != nil {
		return err
	}
	defer guard.stop()

	type scenario struct {
		name  string
		srv   *child
		token string
	}
	scenarios := []scenario{
		{"bare", bare, guard.hello.System},
		{"guard-system", guard, guard.hello.System},
		{"guard-patient", guard, guard.hello.Patient},
	}
	results := map[string]map[int][]sample{}
	for _, s := range scenarios {
		results[s.name] = map[int][]sample{}
	}
	for round := range *rounds {
		for _, c := range levels {
			for _, s := range scenarios {
				fmt.Fprintf(os.Stderr, "round %d, concurrency %d, %s\n", round+1, c, s.name)
				res, before, after, err := measure(ctx, s.srv, s.token, c, *duration, *warmup)
				if err != nil {
					return err
				}
				n := res.Requests + res.Errors
				if n == 0 {
					return fmt.Errorf("%s at concurrency %d: no requests (%s)", s.name, c, res.FirstError)
				}
				// The stats request's own few allocations are noise at these counts.
				results[s.name][c] = append(results[s.name][c], sample{
					rps: res.Throughput, p50: res.P50, p99: res.P99,
					allocs: float64(after.Mallocs-before.Mallocs) / float64(n),
					cpu:    float64(after.CPU-before.CPU) / float64(n),
					rss:    after.RSS, errors: res.Errors, firstProblem: res.FirstError,
				})
			}
		}
	}

	fmt.Fprintf(out, "Load test: `fhirguard-bench load -duration %v -warmup %v -concurrency %s -rounds %d`; "+
		"GET %s/Observation/1 on loopback, keep-alive, closed loop; medians of %d rounds "+
		"(spread: min–max); the vs-bare ratio and the p99 added are medians of per-round pairs. Server and load generator share the machine's %d CPUs.\n\n",
		*duration, *warmup, *concList, *rounds, harness.BasePath, *rounds, runtime.NumCPU())
	fmt.Fprintln(out, "| concurrency | scenario | requests/s | vs bare | p50 | p99 | p99 added | server CPU/req | CPU added | server allocs/req | server RSS | errors |")
	fmt.Fprintln(out, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	var verdicts []string
	for _, c := range levels {
		bareSS := results["bare"][c]
		for _, s := range scenarios {
			ss := results[s.name][c]
			rps := median(ss, func(s sample) float64 { return s.rps })
			lo, hi := spread(ss, func(s sample) float64 { return s.rps })
			var errs int64
			for _, x := range ss {
				errs += x.errors
			}
			ratioText, addedText, cpuText := "—", "—", "—"
			var ratio, added, cpuAdded float64
			if s.name != "bare" {
				// Pair each round with the bare run next to it in time, so that
				// a neighbour's load on the shared machine hits both.
				ratios := make([]float64, len(ss))
				diffs := make([]float64, len(ss))
				cpus := make([]float64, len(ss))
				for i := range ss {
					ratios[i] = ss[i].rps / bareSS[i].rps
					diffs[i] = float64(ss[i].p99 - bareSS[i].p99)
					cpus[i] = ss[i].cpu - bareSS[i].cpu
				}
				ratio, added, cpuAdded = medianOf(ratios), medianOf(diffs), medianOf(cpus)
				cpuText = fmt.Sprintf("%.1f µs", cpuAdded/1e3)
				rlo, rhi := slices.Min(ratios), slices.Max(ratios)
				ratioText = fmt.Sprintf("%.1f %% (%.0f–%.0f)", 100*ratio, 100*rlo, 100*rhi)
				addedText = fmt.Sprintf("%s (%s–%s)", us(time.Duration(added)), us(time.Duration(slices.Min(diffs))), us(time.Duration(slices.Max(diffs))))
			}
			fmt.Fprintf(out, "| %d | %s | %.0f (%.0f–%.0f) | %s | %s | %s | %s | %.1f µs | %s | %.1f | %.1f MiB | %d |\n",
				c, s.name, rps, lo, hi, ratioText,
				us(time.Duration(median(ss, func(s sample) float64 { return float64(s.p50) }))),
				us(time.Duration(median(ss, func(s sample) float64 { return float64(s.p99) }))), addedText,
				median(ss, func(s sample) float64 { return s.cpu })/1e3, cpuText,
				median(ss, func(s sample) float64 { return s.allocs }),
				median(ss, func(s sample) float64 { return float64(s.rss) })/(1<<20), errs)
			if errs > 0 {
				fmt.Fprintf(os.Stderr, "%s at concurrency %d: %d errors, first: %s\n", s.name, c, errs, ss[0].firstProblem)
			}
			if s.name == "guard-system" {
				okRPS, okP99 := ratio >= 0.9, added <= float64(100*time.Microsecond)
				bareCPU := median(bareSS, func(s sample) float64 { return s.cpu })
				verdicts = append(verdicts, fmt.Sprintf("concurrency %d: throughput %.1f %% of bare (target ≥ 90 %%: %s), p99 added %s (target ≤ 100 µs: %s); "+
					"server CPU per request +%.1f µs (+%.0f %% of bare's %.1f µs)",
					c, 100*ratio, passFail(okRPS), us(time.Duration(added)), passFail(okP99), cpuAdded/1e3, 100*cpuAdded/bareCPU, bareCPU/1e3))
			}
		}
	}
	fmt.Fprintln(out, "\nTargets for guard-system (cached token, no response verification):")
	fmt.Fprintln(out)
	for _, v := range verdicts {
		fmt.Fprintln(out, "- "+v)
	}
	return nil
}

// measure warms the server up, then runs the measured load over the same
// connections and returns the result with the server's stats around it.
func measure(ctx context.Context, srv *child, token string, c int, duration, warmup time.Duration) (harness.LoadResult, harness.ProcessStats, harness.ProcessStats, error) {
	var before, after harness.ProcessStats
	tr := &http.Transport{MaxIdleConns: c, MaxIdleConnsPerHost: c, DisableCompression: true}
	defer tr.CloseIdleConnections()
	cfg := harness.LoadConfig{
		URL:   "http://" + srv.hello.Addr + harness.BasePath + "/Observation/1",
		Token: token, Concurrency: c, Duration: warmup,
		Client: &http.Client{Transport: tr, Timeout: 30 * time.Second},
	}
	if warmup > 0 {
		if _, err := harness.Run(ctx, cfg); err != nil {
			return harness.LoadResult{}, before, after, err
		}
	}
	before, err := srv.stats()
	if err != nil {
		return harness.LoadResult{}, before, after, err
	}
	cfg.Duration = duration
	res, err := harness.Run(ctx, cfg)
	if err != nil {
		return res, before, after, err
	}
	after, err = srv.stats()
	return res, before, after, err
}

func scale(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("scale", flag.ExitOnError)
	tokens := fs.Int("tokens", 10_000, "distinct live tokens")
	scopes := fs.Int("scopes", 100, "distinct scope strings")
	_ = fs.Parse(args)
	res, err := harness.Scale(harness.ScaleConfig{Tokens: *tokens, ScopeStrings: *scopes})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Scale test: `fhirguard-bench scale -tokens %d -scopes %d`; EdDSA tokens through Authenticate, "+
		"a first pass in order, then a second in shuffled order (one run).\n\n", *tokens, *scopes)
	fmt.Fprintln(out, "| tokens | scope strings | token cache size | memory per cached token | compiled matchers | 2nd-pass hit ratio | 1st pass (verify) | 2nd pass (cache) |")
	fmt.Fprintln(out, "|---:|---:|---:|---:|---:|---:|---:|---:|")
	fmt.Fprintf(out, "| %d | %d | %d | %.1f KiB | %d | %.1f %% | %s/token | %s/token |\n",
		res.Tokens, res.ScopeStrings, res.CacheSize, res.BytesPerToken/1024, res.Matchers,
		100*res.HitRatio, us(res.FirstPass), us(res.SecondPass))
	return nil
}

func median(ss []sample, f func(sample) float64) float64 {
	v := make([]float64, len(ss))
	for i, s := range ss {
		v[i] = f(s)
	}
	return medianOf(v)
}

// medianOf returns the median of v, which it sorts.
func medianOf(v []float64) float64 {
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func spread(ss []sample, f func(sample) float64) (lo, hi float64) {
	v := make([]float64, len(ss))
	for i, s := range ss {
		v[i] = f(s)
	}
	return slices.Min(v), slices.Max(v)
}

func us(d time.Duration) string {
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}

func passFail(ok bool) string {
	if ok {
		return "**pass**"
	}
	return "**FAIL**"
}
