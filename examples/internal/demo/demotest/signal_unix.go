//go:build unix

package demotest

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testSignals starts the test binary again as the demo program (see
// RunChild), waits for its banner, makes a request, sends sig and expects a
// clean exit with status 0.
func testSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			args, _ := json.Marshal([]string{"-addr", "127.0.0.1:0", "-empty"})
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"="+string(args))
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// The reader hands over the banner once complete, then drains
			// the pipe.
			banners := make(chan string, 1)
			drained := make(chan struct{})
			// wait reaps the child once its output is read to the end
			// (exec.Cmd.Wait must follow the last read of StdoutPipe).
			wait := func() error {
				<-drained
				return cmd.Wait()
			}
			go func() {
				defer close(drained)
				var b strings.Builder
				sc := bufio.NewScanner(out)
				sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
				ready := false
				for sc.Scan() {
					b.WriteString(sc.Text() + "\n")
					if !ready && strings.HasPrefix(sc.Text(), "Stop with Ctrl-C") {
						ready = true
						banners <- b.String()
					}
				}
				if !ready {
					banners <- ""
				}
			}()
			var banner string
			select {
			case banner = <-banners:
				if banner == "" {
					err := errors.New("no banner")
					_ = cmd.Process.Kill()
					_ = wait()
					t.Fatalf("%v; stderr:\n%s", err, stderr.String())
				}
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				_ = wait()
				t.Fatal("the demo did not print its banner")
			}
			bs, err := ReadBanner(banner)
			if err != nil || len(bs.Commands) == 0 {
				t.Fatalf("banner: %v", err)
			}
			first := bs.Commands[0]
			call, err := ParseCurl(first.Args)
			if err != nil {
				t.Fatal(err)
			}
			if code, _ := do(t, call.Request); code != first.Status {
				t.Fatalf("%s: %d", first.Title, code)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("exit after %v: %v; stderr:\n%s", sig, err, stderr.String())
				}
			case <-time.After(15 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatalf("no exit after %v", sig)
			}
			if !strings.Contains(stderr.String(), "stopped") {
				t.Errorf("no clean shutdown logged:\n%s", stderr.String())
			}
		})
	}
}
