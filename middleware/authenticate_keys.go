package middleware

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/big"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// rocaPrimes are small primes dividing the primorial used by the key
// generator with the ROCA weakness (CVE-2017-15361). Its primes have the
// form k·M + (65537^a mod M), so a modulus N made of two of them is, modulo
// every prime r dividing M, a power of 65537. A random modulus passes that
// test for all of these primes with negligible probability.
var rocaPrimes = []int64{3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167}

// rocaPowers[i][x] is true when x is a power of 65537 modulo rocaPrimes[i].
var rocaPowers = func() [][]bool {
	out := make([][]bool, len(rocaPrimes))
	for i, p := range rocaPrimes {
		set := make([]bool, p)
		x := int64(1)
		g := int64(65537) % p
		for range p {
			set[x] = true
			x = x * g % p
		}
		out[i] = set
	}
	return out
}()

// rocaVulnerable reports whether n has the ROCA fingerprint.
func rocaVulnerable(n *big.Int) bool {
	var m, r big.Int
	for i, p := range rocaPrimes {
		m.SetInt64(p)
		r.Mod(n, &m)
		if !rocaPowers[i][r.Int64()] {
			return false
		}
	}
	return true
}

// remoteKeys is a key set fetched from a JWKS URL.
//
// Fetches: one at start-up, in the background; a scheduled one when the
// refresh interval of the latest successful fetch has passed (its
// Cache-Control max-age clamped into [minRefresh, maxRefresh]), or the
// cooldown after a failed one; and token-caused ones (refetch), at most
// one per cooldown and none while the latest fetch failed (the schedule
// retries). Only token-caused fetches count against the cooldown.
// A successful fetch replaces the whole set; a failed one keeps it. One
// fetch runs at a time and concurrent callers share it.
//
// The schedule follows the configured clock: a background goroutine starts
// a due fetch on time, and a request that finds the set due starts it too
// (without waiting for it).
type remoteKeys struct {
	url        string
	client     *http.Client
	policy     *keyPolicy
	log        *slog.Logger
	now        func() time.Time
	minRefresh time.Duration
	maxRefresh time.Duration
	cooldown   time.Duration
	timeout    time.Duration // FetchTimeout; r.mu guards it (tests change it)

	ctx    context.Context // cancelled by close
	cancel context.CancelFunc
	wake   chan struct{}  // the schedule changed
	tasks  sync.WaitGroup // the schedule and the fetches; close waits for them

	cur  atomic.Pointer[keySet]
	gens atomic.Uint64
	// next is when the scheduled fetch is due (Unix nanoseconds of now);
	// math.MaxInt64 while a fetch runs.
	next atomic.Int64

	mu       sync.Mutex
	inflight *flight
	closed   bool
	lastErr  error     // outcome of the latest completed fetch
	lastKid  time.Time // start of the latest token-caused fetch
}

// flight is one fetch; done is closed when it completed, err set before.
type flight struct {
	timeout time.Duration // bounds the fetch
	done    chan struct{}
	err     error
}

type remoteOptions struct {
	url        string
	client     *http.Client
	minRefresh time.Duration
	maxRefresh time.Duration
	cooldown   time.Duration
	timeout    time.Duration
}

// newRemoteKeys starts the first fetch and the refresh schedule; it does
// not wait for the authorisation server.
func newRemoteKeys(p *keyPolicy, o remoteOptions, log *slog.Logger, now func() time.Time) *remoteKeys {
	ctx, cancel := context.WithCancel(context.Background())
	r := &remoteKeys{
		url: o.url, client: o.client, policy: p, log: log, now: now,
		minRefresh: o.minRefresh, maxRefresh: o.maxRefresh, cooldown: o.cooldown, timeout: o.timeout,
		ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1),
	}
	r.mu.Lock()
	r.startLocked()
	r.mu.Unlock()
	r.tasks.Add(1)
	go func() {
		defer r.tasks.Done()
		r.schedule()
	}()
	return r
}

// close stops the schedule and cuts a fetch in flight, waits for both to
// end, and closes the idle connections of the source's own client. The
// keys already loaded stay in use.
func (r *remoteKeys) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.tasks.Wait()
	r.client.CloseIdleConnections()
}

// startLocked starts a fetch; r.mu is held, no fetch is in flight and r is
// not closed.
func (r *remoteKeys) startLocked() *flight {
	f := &flight{timeout: r.timeout, done: make(chan struct{})}
	r.inflight = f
	r.next.Store(math.MaxInt64)
	r.tasks.Add(1)
	go func() {
		defer r.tasks.Done()
		r.run(f)
	}()
	return f
}

// run performs f and records its outcome.
func (r *remoteKeys) run(f *flight) {
	ks, age, err := r.fetch(f.timeout)
	if err != nil {
		if r.ctx.Err() == nil { // not a fetch close cut
			r.log.Warn("fhirguard: JWKS fetch failed", "url", r.url, "error", err)
		}
		age = r.cooldown
	}
	now := r.now()
	r.mu.Lock()
	if err == nil {
		r.install(ks)
	}
	r.lastErr = err
	r.inflight = nil
	r.next.Store(now.Add(age).UnixNano())
	r.mu.Unlock()
	f.err = err
	close(f.done)
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// install makes ks the current set. A set with the same keys keeps the
// generation, so that verified tokens stay cached.
func (r *remoteKeys) install(ks *keySet) {
	if old := r.cur.Load(); old != nil && ks.sameKeys(old) {
		ks.gen = old.gen
	} else {
		ks.gen = r.gens.Add(1)
		r.log.Info("fhirguard: JWKS loaded", "url", r.url, "keys", len(ks.all), "generation", ks.gen)
	}
	r.cur.Store(ks)
}

// fetch downloads, parses and checks the JWKS; it returns the set and its
// refresh interval.
func (r *remoteKeys) fetch(timeout time.Duration) (*keySet, time.Duration, error) {
	ctx, cancel := context.WithTimeout(r.ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	res, err := r.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("status %s", res.Status)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, 0, fmt.Errorf("reading the JWKS: %w", err)
	}
	entries, err := parseJWKS(body, true)
	if err != nil {
		return nil, 0, fmt.Errorf("parsing the JWKS: %w", err)
	}
	ks, errs := r.policy.buildKeySet(entries)
	for _, err := range errs {
		r.log.Warn("fhirguard: JWKS key refused", "url", r.url, "error", err)
	}
	if len(ks.all) == 0 {
		return nil, 0, errors.New("the JWKS has no usable key")
	}
	age := r.maxRefresh
	if v, ok := cacheControlMaxAge(res.Header.Get("Cache-Control")); ok {
		age = v
	}
	return ks, min(max(age, r.minRefresh), r.maxRefresh), nil
}

// schedule starts each scheduled fetch when it is due, until close.
func (r *remoteKeys) schedule() {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		r.mu.Lock()
		f := r.inflight
		if f == nil && r.closed {
			r.mu.Unlock()
			return
		}
		if f == nil && r.now().UnixNano() >= r.next.Load() {
			f = r.startLocked()
		}
		r.mu.Unlock()
		if f != nil {
			select {
			case <-f.done:
			case <-r.ctx.Done():
				return
			}
			continue
		}
		t.Reset(time.Duration(r.next.Load() - r.now().UnixNano()))
		select {
		case <-t.C:
		case <-r.wake:
		case <-r.ctx.Done():
			return
		}
	}
}

// refreshIfDue starts the scheduled fetch when it is due.
func (r *remoteKeys) refreshIfDue(now int64) {
	if now < r.next.Load() {
		return
	}
	r.mu.Lock()
	if r.inflight == nil && !r.closed && now >= r.next.Load() {
		r.startLocked()
	}
	r.mu.Unlock()
}

func (r *remoteKeys) generation(now int64) uint64 {
	r.refreshIfDue(now)
	if ks := r.cur.Load(); ks != nil {
		return ks.gen
	}
	return 0
}

// keys returns the current set. Before the first successful fetch it
// waits for the fetch in flight, or starts one when due; otherwise it is a
// 503 until the next attempt.
func (r *remoteKeys) keys(ctx context.Context) (*keySet, error) {
	r.refreshIfDue(r.now().UnixNano())
	if ks := r.cur.Load(); ks != nil {
		return ks, nil
	}
	r.mu.Lock()
	f := r.inflight
	r.mu.Unlock()
	if f != nil {
		if err := r.wait(ctx, f); err != nil {
			return nil, err
		}
	}
	// Loaded again: a fetch may have completed since the first look.
	if ks := r.cur.Load(); ks != nil {
		return ks, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	retry := time.Duration(r.next.Load() - r.now().UnixNano())
	return nil, r.unavailableLocked(min(retry, r.cooldown))
}

// refetch is a token-caused fetch. A fetch in flight is joined first. If
// found still fails, a new fetch runs, unless a token-caused fetch ran
// less than the cooldown ago or the latest fetch failed (the schedule then
// retries after the cooldown). The error is a 503 when the latest fetch
// failed: the set may lack the key.
func (r *remoteKeys) refetch(ctx context.Context, found func(*keySet) bool) (*keySet, error) {
	r.mu.Lock()
	f := r.inflight
	r.mu.Unlock()
	if f != nil {
		if err := r.wait(ctx, f); err != nil {
			return r.cur.Load(), err
		}
		ks := r.cur.Load()
		if f.err != nil || (ks != nil && found(ks)) {
			return ks, r.outcome(f)
		}
	}
	r.mu.Lock()
	f = r.inflight // started after the caller saw the set: it may help
	if f == nil {
		now := r.now()
		if r.lastErr != nil {
			// The server is failing: the schedule retries it.
			err := r.unavailableLocked(time.Duration(r.next.Load() - now.UnixNano()))
			r.mu.Unlock()
			return r.cur.Load(), err
		}
		if r.closed || (!r.lastKid.IsZero() && now.Sub(r.lastKid) < r.cooldown) {
			r.mu.Unlock()
			return r.cur.Load(), nil
		}
		r.lastKid = now
		f = r.startLocked()
	}
	r.mu.Unlock()
	if err := r.wait(ctx, f); err != nil {
		return r.cur.Load(), err
	}
	return r.cur.Load(), r.outcome(f)
}

// outcome is nil when f succeeded, else a 503.
func (r *remoteKeys) outcome(f *flight) error {
	if f.err == nil {
		return nil
	}
	return unavailable("the authorization server's keys are unavailable", r.cooldown, fmt.Errorf("%w: %v", ErrKeysUnavailable, f.err))
}

// wait waits for f, or for the end of ctx (a 503).
func (r *remoteKeys) wait(ctx context.Context, f *flight) error {
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return unavailable("the authorization server's keys are unavailable", time.Second, fmt.Errorf("%w: waiting for the fetch: %w", ErrKeysUnavailable, ctx.Err()))
	}
}

// unavailableLocked is the 503 for a failed fetch; r.mu is held.
func (r *remoteKeys) unavailableLocked(retry time.Duration) *AuthError {
	cause := r.lastErr
	switch {
	case r.closed:
		cause = errors.New("the key source is closed")
	case cause == nil:
		cause = errors.New("no key set fetched yet")
	}
	return unavailable("the authorization server's keys are unavailable", retry, fmt.Errorf("%w: %v", ErrKeysUnavailable, cause))
}
