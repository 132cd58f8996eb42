//go:build unix

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/smarttest"
)

// runMainEnv makes the test binary run main (the fhirguard command) with
// its arguments: TestProxySIGTERM starts it as a process of its own.
const runMainEnv = "FHIRGUARD_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestProxySIGTERM runs fhirguard proxy as a process, sends it requests,
// then SIGTERM: it exits 0 and its log holds every request's access line,
// in order, before the last line ("stopped"), although the log is
// buffered.
func TestProxySIGTERM(t *testing.T) {
	up := newFakeUpstream(t)
	up.up.Store(true)
	p := startProxyProcess(t, up)
	cmd, stderr, exited, base, as := p.cmd, p.stderr, p.exited, p.base, p.as

	tok, err := as.MintToken(smarttest.TokenOptions{Scopes: "system/*.rs"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	for i := range n {
		if code, _, body := get(t, fmt.Sprintf("%s/Patient/p%d", base, i), tok); code != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, code, body)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, stderr)
		}
	case <-time.After(time.Minute): // bounds a hang only
		t.Fatalf("no exit after SIGTERM:\n%s", stderr)
	}

	var paths []string
	var last string
	sc := bufio.NewScanner(strings.NewReader(stderr.String()))
	for sc.Scan() {
		var l struct{ Msg, Path string }
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("a log line is not JSON: %s", sc.Text())
		}
		if l.Msg == "access" {
			paths = append(paths, l.Path)
		}
		last = l.Msg
	}
	if len(paths) != n || last != "stopped" {
		t.Fatalf("%d access lines (want %d), last line %q:\n%s", len(paths), n, last, stderr)
	}
	for i, p := range paths {
		if want := fmt.Sprintf("/fhir/Patient/p%d", i); p != want {
			t.Fatalf("access line %d for %s, want %s", i, p, want)
		}
	}
}

// proxyProcess is fhirguard proxy running as a process of its own (the
// test binary started again), in front of a fake upstream, with smarttest
// as its authorization server.
type proxyProcess struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	exited chan error // gets cmd.Wait's result
	base   string     // the public FHIR base
	as     *smarttest.Server
}

// startProxyProcess starts fhirguard proxy (with extra flags) and waits
// until it is healthy; the process is killed when the test ends, if it
// still runs.
func startProxyProcess(t *testing.T, up *fakeUpstream, extra ...string) *proxyProcess {
	t.Helper()
	p := &proxyProcess{}
	for attempt := 0; ; attempt++ { // the port found free may be taken meanwhile
		ln := loopbackListener(t)
		addr := ln.Addr().String()
		_ = ln.Close()
		p.base = "http://" + addr + "/fhir"
		p.as = newTestAS(t, p.base, false)
		p.stderr = &syncBuffer{}
		args := append([]string{"proxy", "--upstream", up.base, "--base-url", p.base, "--listen", addr,
			"--issuer", p.as.SMARTConfiguration().Issuer, "--insecure-allow-http"}, extra...)
		p.cmd = exec.Command(os.Args[0], args...)
		p.cmd.Env = append(os.Environ(), runMainEnv+"=1")
		p.cmd.Stdout, p.cmd.Stderr = io.Discard, p.stderr
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p.exited = make(chan error, 1)
		go func() { p.exited <- p.cmd.Wait() }()
		if waitHealthy(t, "http://"+addr+"/healthz", p.exited) {
			break
		}
		if attempt == 2 || !strings.Contains(p.stderr.String(), "address already in use") {
			t.Fatalf("fhirguard proxy did not start:\n%s", p.stderr)
		}
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// TestProxySecondSignal: a second SIGTERM during a graceful shutdown that
// waits for a request in flight ends the process at once (exit 1), long
// before --shutdown-timeout.
func TestProxySecondSignal(t *testing.T) {
	up := newFakeUpstream(t)
	up.up.Store(true)
	hold := make(chan struct{})
	up.mu.Lock()
	up.hold = hold
	up.mu.Unlock()
	defer close(hold)
	p := startProxyProcess(t, up, "--shutdown-timeout", "10m")
	tok, err := p.as.MintToken(smarttest.TokenOptions{Scopes: "system/*.rs"})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		req, _ := http.NewRequest(http.MethodGet, p.base+"/Patient/held", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
		}
	}()
	<-up.entered // the request is in flight: a graceful shutdown waits for it
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// A second signal sent while the first is still pending would merge
	// with it (the kernel does not queue them): wait until the shutdown
	// has begun.
	deadline := time.Now().Add(time.Minute) // bounds a hang only
	for !strings.Contains(p.stderr.String(), "shutting down") {
		if time.Now().After(deadline) {
			t.Fatalf("no shutdown after SIGTERM:\n%s", p.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitFail || !strings.Contains(p.stderr.String(), "again: exiting at once") {
			t.Fatalf("exit: %v\n%s", err, p.stderr)
		}
	case <-time.After(2 * time.Minute): // bounds a hang only (the graceful path would take 10 minutes)
		t.Fatalf("no exit after a second SIGTERM:\n%s", p.stderr)
	}
}

// waitHealthy waits until url answers 200 (true) or the process exits
// (false).
func waitHealthy(t *testing.T, url string, exited chan error) bool {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(time.Minute) // bounds a hang only
	for {
		if resp, err := client.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		select {
		case err := <-exited:
			exited <- err
			return false
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("fhirguard proxy not healthy after a minute")
		}
	}
}
