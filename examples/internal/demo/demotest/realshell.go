package demotest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// argvDumper replaces curl in testBannerShells: it prints the arguments
// it is called with, each ended by a NUL byte, and a record "\1" after the
// last.
const argvDumper = `curl() { printf '%s\0' curl "$@"; printf '\1\0'; }`

// testBannerShells runs the banner's shell lines as printed (the
// assignments and the curl commands) through each shell installed, sh,
// bash and zsh, with curl replaced by a function that prints its
// arguments, and checks that the shell hands curl exactly the words
// ReadBanner computed: the emulation the HTTP checks rely on is what the
// shells do.
func testBannerShells(t *testing.T, bs *BannerScript) {
	for _, name := range []string{"sh", "bash", "zsh"} {
		t.Run(name, func(t *testing.T) {
			path, err := exec.LookPath(name)
			if err != nil {
				t.Skipf("%s is not installed", name)
			}
			script := argvDumper + "\n" + strings.Join(bs.Lines, "\n") + "\n"
			out, err := shellCommand(t, path, script).Output()
			if err != nil {
				t.Fatalf("%s: %v: %s", name, err, stderrOf(err))
			}
			got := splitArgvDump(out)
			if len(got) != len(bs.Commands) {
				t.Fatalf("%s ran curl %d times, want %d", name, len(got), len(bs.Commands))
			}
			for i, c := range bs.Commands {
				if !slices.Equal(got[i], c.Args) {
					t.Errorf("%s: %s: the shell passes curl\n%q\nReadBanner says\n%q", name, c.Title, got[i], c.Args)
				}
			}
		})
	}
}

// testBannerCurl runs each curl command as printed, after the banner's
// assignments, through sh with the real curl when both are installed:
// the command succeeds, what it writes ends with one newline, and with -i
// it starts with the status line the banner announces.
func testBannerCurl(t *testing.T, bs *BannerScript) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("sh is not installed")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	var assignments []string
	for _, l := range bs.Lines {
		if !strings.HasPrefix(l, "curl ") {
			assignments = append(assignments, l)
		}
	}
	for _, c := range bs.Commands {
		script := strings.Join(append(slices.Clone(assignments), c.Command), "\n") + "\n"
		out, err := shellCommand(t, sh, script).Output()
		if err != nil {
			t.Errorf("%s: %v: %s", c.Title, err, stderrOf(err))
			continue
		}
		if !bytes.HasSuffix(out, []byte("\n")) || bytes.HasSuffix(out, []byte("\n\n")) {
			t.Errorf("%s: the output ends with %q, want one newline", c.Title, out[max(0, len(out)-20):])
		}
		if call, err := ParseCurl(c.Args); err == nil && call.Include {
			if status := fmt.Sprintf("HTTP/1.1 %d ", c.Status); !bytes.HasPrefix(out, []byte(status)) {
				t.Errorf("%s: the output starts with %.40q, want %q", c.Title, out, status)
			}
		}
	}
}

// shellCommand runs script with the shell at path in a clean environment:
// no start-up files, no proxies, no curl configuration. Its deadline only
// ends a hang.
func shellCommand(t *testing.T, path, script string) *exec.Cmd {
	home := t.TempDir()
	args := []string{"-c", script}
	if strings.HasSuffix(path, "zsh") {
		args = append([]string{"-f"}, args...) // no start-up files
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "CURL_HOME=" + home, "XDG_CONFIG_HOME=" + home, "LC_ALL=C"}
	return cmd
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// splitArgvDump splits argvDumper's output into the argument lists.
func splitArgvDump(out []byte) [][]string {
	var calls [][]string
	var cur []string
	for _, f := range strings.SplitAfter(string(out), "\x00") {
		if f == "" {
			continue
		}
		f = strings.TrimSuffix(f, "\x00")
		if f == "\x01" {
			calls = append(calls, cur)
			cur = nil
			continue
		}
		cur = append(cur, f)
	}
	return calls
}
