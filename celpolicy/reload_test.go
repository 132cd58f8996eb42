package celpolicy

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

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

func TestWatchPolling(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "p.yaml", policyA)
	p := newTestPolicy(t, Config{File: path})
	results := make(chan error, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- p.Watch(ctx, WatchConfig{Signals: []os.Signal{}, Interval: 10 * time.Millisecond, OnReload: func(err error) { results <- err }})
	}()
	// The watcher may take its first look after a write; rewrite with
	// fresh content until it reports.
	if err := writeUntilReload(t, dir, policyB, results); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if got := denyingRule(t, p); got != "only-post" {
		t.Fatalf("rule %q, want only-post", got)
	}
	if err := writeUntilReload(t, dir, broken, results); err == nil {
		t.Fatal("broken file reloaded")
	}
	if got := denyingRule(t, p); got != "only-post" {
		t.Fatalf("broken file replaced the rules: %q", got)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Watch returned %v", err)
	}
}

func writeUntilReload(t *testing.T, dir, content string, results chan error) error {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for i := 0; ; i++ {
		writeFile(t, dir, "p.yaml", content+strings.Repeat("#\n", i))
		select {
		case err := <-results:
			return err
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatal("no reload")
		}
	}
}

func TestWatchNeedsFile(t *testing.T) {
	p := newTestPolicy(t, requireRule("true"))
	if err := p.Watch(context.Background(), WatchConfig{}); err == nil {
		t.Fatal("Watch without a file succeeded")
	}
}

// TestWatchWaitsForStableFile writes a file in place, in two steps: the
// watcher must not reload the first, incomplete version.
func TestWatchWaitsForStableFile(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "p.yaml", policyA)
	p := newTestPolicy(t, Config{File: path})
	results := make(chan error, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_ = p.Watch(ctx, WatchConfig{Signals: []os.Signal{}, Interval: 200 * time.Millisecond, OnReload: func(err error) { results <- err }})
	}()
	time.Sleep(300 * time.Millisecond)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	half := len(policyB) / 2
	if _, err := f.WriteString(policyB[:half]); err != nil {
		t.Fatal(err)
	}
	// Shorter than one interval: the half file is seen at most once.
	time.Sleep(10 * time.Millisecond)
	if _, err := f.WriteString(policyB[half:]); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-results:
		if err != nil {
			t.Fatalf("half-written file reloaded: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reload")
	}
	if got := denyingRule(t, p); got != "only-post" {
		t.Fatalf("rule %q, want only-post", got)
	}
}
