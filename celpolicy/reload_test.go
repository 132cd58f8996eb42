package celpolicy

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fhirguard/fhirguard/middleware"
)

const (
	policyA = "rules:\n  - name: only-get\n    effect: require\n    when: request.method == 'GET'\n    message: read only\n"
	policyB = "rules:\n  - name: only-post\n    effect: require\n    when: request.method == 'POST'\n    message: write only\n"
	broken  = "rules:\n  - name: broken\n    effect: require\n    when: request.methd == 'GET'\n    message: m\n"
)

func denyingRule(t *testing.T, p *Policy) string {
	t.Helper()
	err := p.AuthorizeRequest(testRequest(), testToken(), nil)
	var pd *middleware.PolicyDenial
	if err == nil {
		return ""
	}
	if !errors.As(err, &pd) {
		t.Fatalf("unexpected error %v", err)
	}
	return pd.Rule
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "p.yaml", policyA)
	log, buf := testLogger()
	p := newTestPolicy(t, Config{File: path, Logger: log,
		Rules: []Rule{{Name: "go-rule", Effect: Deny, When: "request.path == '/forbidden'", Message: "m"}}})
	if got := denyingRule(t, p); got != "" {
		t.Fatalf("policy A denied GET by %q", got)
	}
	writeFile(t, dir, "p.yaml", policyB)
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := denyingRule(t, p); got != "only-post" {
		t.Fatalf("after reload: rule %q, want only-post", got)
	}
	if names := ruleNames(p.Rules()); names != "only-post,go-rule" {
		t.Errorf("rules %s", names)
	}
	for _, bad := range []string{broken, "", "rules: [", "rules:\n  - name: x\n"} {
		writeFile(t, dir, "p.yaml", bad)
		if err := p.Reload(); err == nil {
			t.Fatalf("reload of %q succeeded", bad)
		}
		if got := denyingRule(t, p); got != "only-post" {
			t.Fatalf("bad file %q replaced the rules: %q decided", bad, got)
		}
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := p.Reload(); err == nil || denyingRule(t, p) != "only-post" {
		t.Fatalf("missing file: %v", err)
	}
	if !containsAll(buf.String(), "reload failed", "keeping the policies") {
		t.Errorf("failed reload not logged: %s", buf.String())
	}
}

func ruleNames(rules []Rule) string {
	s := ""
	for i, r := range rules {
		if i > 0 {
			s += ","
		}
		s += r.Name
	}
	return s
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// TestReloadConcurrent swaps rules while requests are evaluated; run with
// -race. Every request sees either the old or the new set, never a mix.
func TestReloadConcurrent(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "p.yaml", policyA)
	p := newTestPolicy(t, Config{File: path})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				err := p.AuthorizeRequest(testRequest(), testToken(), testDecision())
				var pd *middleware.PolicyDenial
				if err != nil && (!errors.As(err, &pd) || pd.Rule != "only-post") {
					t.Errorf("unexpected result %v", err)
					return
				}
			}
		}()
	}
	for i := range 20 {
		content := policyA
		if i%2 == 0 {
			content = policyB
		}
		writeFile(t, dir, "p.yaml", content)
		if err := p.Reload(); err != nil {
			t.Error(err)
		}
	}
	cancel()
	wg.Wait()
}

// watchTicks drives the polling watcher of a Policy by hand: each call of
// the returned function delivers one tick and returns once the watcher has
// taken it; the previous tick (and any reload it made) is then complete.
func watchTicks() (chan time.Time, func()) {
	tick := make(chan time.Time)
	return tick, func() { tick <- time.Time{} }
}

func nextResult(t *testing.T, results chan error) error {
	t.Helper()
	select {
	case err := <-results:
		return err
	case <-time.After(time.Minute): // bounds a hang only
		t.Fatal("no reload")
		return nil
	}
}

func TestWatchPolling(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "p.yaml", policyA)
	results := make(chan error, 10)
	tick, step := watchTicks()
	p := newTestPolicy(t, Config{File: path, Watch: WatchConfig{Interval: time.Second, tick: tick,
		OnReload: func(err error) { results <- err }}})
	defer p.Close()

	step() // unchanged: nothing to do
	writeFile(t, dir, "p.yaml", policyB)
	step() // changed: wait one interval
	step() // stable: reload
	if err := nextResult(t, results); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if got := denyingRule(t, p); got != "only-post" {
		t.Fatalf("rule %q, want only-post", got)
	}
	writeFile(t, dir, "p.yaml", broken)
	step()
	step()
	if err := nextResult(t, results); err == nil {
		t.Fatal("broken file reloaded")
	}
	if got := denyingRule(t, p); got != "only-post" {
		t.Fatalf("broken file replaced the rules: %q", got)
	}
	step() // the broken version is the one seen: no new attempt
	step()
	select {
	case err := <-results:
		t.Fatalf("reloaded an unchanged file again: %v", err)
	default:
	}
}

func TestWatchNeedsFile(t *testing.T) {
	cfg := requireRule("true")
	cfg.Watch = WatchConfig{Signals: []os.Signal{os.Interrupt}}
	if _, err := New(cfg); err == nil || !isKind(err, errInvalidPolicy) {
		t.Fatalf("Watch without a file: %v", err)
	}
	cfg.File = writeFile(t, t.TempDir(), "p.yaml", policyA)
	cfg.Watch = WatchConfig{Interval: -time.Second}
	if _, err := New(cfg); err == nil {
		t.Fatal("negative interval accepted")
	}
}

// TestWatchWaitsForStableFile writes a file in place, in two steps: the
// watcher must not reload the first, incomplete version.
func TestWatchWaitsForStableFile(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "p.yaml", policyA)
	results := make(chan error, 10)
	tick, step := watchTicks()
	p := newTestPolicy(t, Config{File: path, Watch: WatchConfig{Interval: time.Second, tick: tick,
		OnReload: func(err error) { results <- err }}})
	defer p.Close()

	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	half := len(policyB) / 2
	if _, err := f.WriteString(policyB[:half]); err != nil {
		t.Fatal(err)
	}
	step() // sees the half file once
	if _, err := f.WriteString(policyB[half:]); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	step() // sees the whole file: changed again, wait
	step() // stable: reload
	if err := nextResult(t, results); err != nil {
		t.Fatalf("half-written file reloaded: %v", err)
	}
	if got := denyingRule(t, p); got != "only-post" {
		t.Fatalf("rule %q, want only-post", got)
	}
}

// TestCloseStopsWatcher checks that Close stops the watcher goroutine and
// its ticker and signal subscription.
func TestCloseStopsWatcher(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	path := writeFile(t, t.TempDir(), "p.yaml", policyA)
	p, err := New(Config{File: path, Logger: discardLogger(),
		Watch: WatchConfig{Signals: []os.Signal{os.Interrupt}, Interval: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	p.Close() // a second Close is harmless
	if err := p.AuthorizeRequest(testRequest(), testToken(), nil); err != nil {
		t.Fatalf("a closed Policy stopped evaluating: %v", err)
	}
	q, err := New(Config{File: path, Logger: discardLogger()}) // watches nothing
	if err != nil {
		t.Fatal(err)
	}
	q.Close()
}
