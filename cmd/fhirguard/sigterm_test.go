//go:build unix

package main

import (
	"bufio"
	"encoding/json"
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
	var (
		cmd    *exec.Cmd
		stderr *syncBuffer
		exited chan error
		base   string
		as     *smarttest.Server
	)
	for attempt := 0; ; attempt++ { // the port found free may be taken meanwhile
		ln := loopbackListener(t)
		addr := ln.Addr().String()
		_ = ln.Close()
		base = "http://" + addr + "/fhir"
		var err error
		if as, err = smarttest.New(smarttest.Config{FHIRBase: base}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(as.Close)
		stderr = &syncBuffer{}
		cmd = exec.Command(os.Args[0], "proxy", "--upstream", up.base, "--base-url", base, "--listen", addr,
			"--issuer", as.SMARTConfiguration().Issuer, "--insecure-allow-http")
		cmd.Env = append(os.Environ(), runMainEnv+"=1")
		cmd.Stdout, cmd.Stderr = io.Discard, stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited = make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		if waitHealthy(t, "http://"+addr+"/healthz", exited) {
			break
		}
		if attempt == 2 || !strings.Contains(stderr.String(), "address already in use") {
			t.Fatalf("fhirguard proxy did not start:\n%s", stderr)
		}
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	})

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
