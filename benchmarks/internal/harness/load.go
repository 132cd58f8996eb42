package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Limits of a load run.
const (
	// MaxConcurrency bounds LoadConfig.Concurrency.
	MaxConcurrency = 1024
	// MaxDuration bounds LoadConfig.Duration.
	MaxDuration = 10 * time.Minute
	// maxSamples bounds the latencies kept per run (about 80 MB).
	maxSamples = 10_000_000
)

// ErrNotLoopback is returned when a load run targets anything but a
// loopback address.
var ErrNotLoopback = errors.New("harness: load target is not a loopback address")

// LoadConfig configures a load run.
type LoadConfig struct {
	// URL is the request target; its host must be a loopback address
	// (127.0.0.0/8, ::1 or localhost).
	URL string
	// Token, when set, is sent as "Authorization: Bearer <Token>".
	Token string
	// Concurrency is the number of workers, each with its own keep-alive
	// connection, sending one request after the other (closed loop).
	// Default 1, at most MaxConcurrency.
	Concurrency int
	// Duration is how long the run lasts (default 1 s, at most
	// MaxDuration). Warmup is extra.
	Duration time.Duration
	// MaxRequests, when positive, ends the run after that many requests.
	MaxRequests int64
	// Warmup is a run before the measured one, to open the connections and
	// fill caches (default none).
	Warmup time.Duration
	// Client, when set, sends the requests; its transport should keep at
	// least Concurrency idle connections per host. Default: a client made
	// for the run.
	Client *http.Client
}

// LoadResult is the outcome of a load run.
type LoadResult struct {
	Requests int64         // requests answered with a 2xx status
	Errors   int64         // transport errors and non-2xx answers
	Elapsed  time.Duration // wall time of the measured run
	// Throughput is Requests per second of Elapsed.
	Throughput float64
	// P50, P99 and Max are latencies of the answered requests (send to body
	// fully read), nearest-rank.
	P50, P99, Max time.Duration
	// FirstError describes the first error, empty when none.
	FirstError string
}

func (c *LoadConfig) validate() error {
	u, err := url.Parse(c.URL)
	if err != nil {
		return fmt.Errorf("harness: load URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("harness: load URL scheme %q", u.Scheme)
	}
	if !isLoopback(u.Hostname()) {
		return fmt.Errorf("%w: %q", ErrNotLoopback, u.Hostname())
	}
	switch {
	case c.Concurrency == 0:
		c.Concurrency = 1
	case c.Concurrency < 0 || c.Concurrency > MaxConcurrency:
		return fmt.Errorf("harness: Concurrency %d outside 1..%d", c.Concurrency, MaxConcurrency)
	}
	switch {
	case c.Duration == 0:
		c.Duration = time.Second
	case c.Duration < 0 || c.Duration > MaxDuration:
		return fmt.Errorf("harness: Duration %v outside (0, %v]", c.Duration, MaxDuration)
	}
	if c.Warmup < 0 || c.Warmup > MaxDuration || c.MaxRequests < 0 {
		return errors.New("harness: negative or too long Warmup, or negative MaxRequests")
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Run drives the target with Concurrency closed-loop workers over
// keep-alive connections for Duration (or MaxRequests) and measures
// throughput and latency. It refuses targets that are not on loopback.
// Cancelling ctx ends the run early with the figures so far.
func Run(ctx context.Context, cfg LoadConfig) (LoadResult, error) {
	if err := cfg.validate(); err != nil {
		return LoadResult{}, err
	}
	client := cfg.Client
	if client == nil {
		tr := &http.Transport{
			MaxIdleConns:        cfg.Concurrency,
			MaxIdleConnsPerHost: cfg.Concurrency,
			DisableCompression:  true,
			IdleConnTimeout:     time.Minute,
		}
		defer tr.CloseIdleConnections()
		client = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	}
	if cfg.Warmup > 0 {
		w := cfg
		w.Duration, w.Warmup, w.MaxRequests = cfg.Warmup, 0, 0
		w.Client = client
		if _, err := Run(ctx, w); err != nil {
			return LoadResult{}, err
		}
	}

	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var (
		sent     atomic.Int64
		errCount atomic.Int64
		okCount  atomic.Int64
		firstErr atomic.Value
		wg       sync.WaitGroup
	)
	perWorker := make([][]time.Duration, cfg.Concurrency)
	sampleCap := maxSamples / cfg.Concurrency
	start := time.Now()
	for w := range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, min(sampleCap, 1<<16))
			defer func() { perWorker[w] = lat }()
			for ctx.Err() == nil {
				if cfg.MaxRequests > 0 && sent.Add(1) > cfg.MaxRequests {
					return
				}
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.URL, nil)
				if err != nil {
					firstErr.CompareAndSwap(nil, err.Error())
					errCount.Add(1)
					return
				}
				if cfg.Token != "" {
					req.Header.Set("Authorization", "Bearer "+cfg.Token)
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() != nil {
						return // the run ended during the request
					}
					firstErr.CompareAndSwap(nil, err.Error())
					errCount.Add(1)
					continue
				}
				_, cerr := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				d := time.Since(t0)
				if cerr != nil && ctx.Err() != nil {
					return
				}
				if resp.StatusCode/100 != 2 || cerr != nil {
					firstErr.CompareAndSwap(nil, fmt.Sprintf("status %d (%v)", resp.StatusCode, cerr))
					errCount.Add(1)
					continue
				}
				okCount.Add(1)
				if len(lat) < sampleCap {
					lat = append(lat, d)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	var all []time.Duration
	for _, l := range perWorker {
		all = append(all, l...)
	}
	slices.Sort(all)
	res := LoadResult{Requests: okCount.Load(), Errors: errCount.Load(), Elapsed: elapsed}
	if s, ok := firstErr.Load().(string); ok {
		res.FirstError = s
	}
	if len(all) > 0 {
		res.Throughput = float64(res.Requests) / elapsed.Seconds()
		res.P50 = percentile(all, 50)
		res.P99 = percentile(all, 99)
		res.Max = all[len(all)-1]
	}
	return res, nil
}

// percentile returns the nearest-rank p-th percentile of sorted.
func percentile(sorted []time.Duration, p int) time.Duration {
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 · n)
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}
