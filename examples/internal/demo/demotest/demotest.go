// Package demotest holds the end-to-end tests of the fhirguard examples.
// Each example's test calls Suite with its own router, so the same flows
// run through real HTTP against the standard-library router and the chi
// router: EHR launch, standalone launch, backend services, refresh, opaque
// tokens through introspection (embedded and external authorization
// server), key rotation while serving, and the curl commands the banner
// prints.
package demotest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/examples/internal/demo"
)

// Started is a demo server started by Start.
type Started struct {
	*demo.Server
	// Banner is what the server printed at start-up.
	Banner string
	// Logs returns what the server has logged so far.
	Logs func() string
}

// Start runs the demo with router and args on a new listener on
// 127.0.0.1:0 and waits until it serves. The server is shut down when the
// test ends, and the test fails unless Run then returns nil.
func Start(t testing.TB, router demo.Router, args ...string) *Started {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return StartOn(t, ln, router, args...)
}

// StartOn is Start on a given listener (for tests that need the address
// before the server exists).
func StartOn(t testing.TB, ln net.Listener, router demo.Router, args ...string) *Started {
	t.Helper()
	var out, logs syncBuffer
	ready := make(chan *demo.Server, 1)
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		done <- demo.Run(ctx, args, router, demo.Options{Name: "test", Stdout: &out, Stderr: &logs, Listener: ln,
			Ready: func(s *demo.Server) { ready <- s }})
	}()
	var s *demo.Server
	select {
	case s = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("demo.Run %v: %v\n%s", args, err, logs.String())
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatalf("demo.Run %v: not ready\n%s", args, logs.String())
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("demo.Run returned %v after shutdown", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("demo.Run did not return after shutdown")
		}
	})
	return &Started{Server: s, Banner: out.String(), Logs: logs.String}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// BannerCommand is a curl command read from the banner with the status
// its comment line announces.
type BannerCommand struct {
	Title   string
	Status  int
	Command string
}

// BannerCommands reads the curl commands of a banner: each is a line
// starting with "curl " right after a comment line "# <title>: HTTP <status>".
func BannerCommands(banner string) ([]BannerCommand, error) {
	var cmds []BannerCommand
	var last string
	sc := bufio.NewScanner(strings.NewReader(banner))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "curl ") {
			title, status, ok := strings.Cut(strings.TrimPrefix(last, "# "), ": HTTP ")
			if !strings.HasPrefix(last, "# ") || !ok {
				return nil, fmt.Errorf("curl command without a status comment: %.60q", line)
			}
			code, err := strconv.Atoi(status)
			if err != nil {
				return nil, fmt.Errorf("bad status in %q", last)
			}
			cmds = append(cmds, BannerCommand{Title: title, Status: code, Command: line})
		}
		last = line
	}
	return cmds, sc.Err()
}

// ErrCurl reports a curl command line that ParseCurl does not understand.
var ErrCurl = errors.New("demotest: unsupported curl command")

// ParseCurl turns a curl command line, as the banner prints it, into the
// HTTP request curl would send. It understands POSIX shell quoting
// (single quotes, double quotes without expansions, backslashes) and the
// options -s, -S, -sS, -i, -X METHOD and -H 'Name: value'; anything else
// is an error wrapping ErrCurl, so that a banner the test cannot replay
// fails the test.
func ParseCurl(line string) (*http.Request, error) {
	words, err := SplitShell(line)
	if err != nil {
		return nil, err
	}
	if len(words) == 0 || words[0] != "curl" {
		return nil, fmt.Errorf("%w: not a curl command", ErrCurl)
	}
	method := http.MethodGet
	header := http.Header{}
	var target string
	for i := 1; i < len(words); i++ {
		switch w := words[i]; w {
		case "-s", "-S", "-sS", "-Ss", "-i", "-si", "-sSi":
		case "-X", "-H":
			if i+1 == len(words) {
				return nil, fmt.Errorf("%w: %s without a value", ErrCurl, w)
			}
			i++
			if w == "-X" {
				method = words[i]
				continue
			}
			name, value, ok := strings.Cut(words[i], ":")
			if !ok || strings.TrimSpace(name) == "" {
				return nil, fmt.Errorf("%w: bad header %q", ErrCurl, words[i])
			}
			header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
		default:
			if strings.HasPrefix(w, "-") || target != "" {
				return nil, fmt.Errorf("%w: unexpected word %q", ErrCurl, w)
			}
			target = w
		}
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return nil, fmt.Errorf("%w: bad URL %q", ErrCurl, target)
	}
	req, err := http.NewRequest(method, target, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCurl, err)
	}
	req.Header = header
	return req, nil
}

// SplitShell splits a command line into words as a POSIX shell does for
// quoting (no expansions): single quotes keep everything literally, double
// quotes keep everything but \" and \\, a backslash outside quotes escapes
// the next character. Characters the demo never prints and a shell would
// interpret ($ ` ; | & < > ( ) * ? ~ and newlines) outside single quotes
// are refused.
func SplitShell(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("%w: unterminated single quote", ErrCurl)
			}
			cur.WriteString(line[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				if strings.IndexByte("$`\n", line[i]) >= 0 {
					return nil, fmt.Errorf("%w: shell expansion in double quotes", ErrCurl)
				}
				if line[i] == '\\' && i+1 < len(line) && (line[i+1] == '"' || line[i+1] == '\\') {
					i++
				}
				cur.WriteByte(line[i])
			}
			if i == len(line) {
				return nil, fmt.Errorf("%w: unterminated double quote", ErrCurl)
			}
			inWord = true
		case c == '\\':
			if i+1 == len(line) || line[i+1] == '\n' {
				return nil, fmt.Errorf("%w: trailing backslash", ErrCurl)
			}
			i++
			cur.WriteByte(line[i])
			inWord = true
		case strings.IndexByte("$`;|&<>()*?~\n#{}[]!", c) >= 0 && !(c == '#' && inWord):
			return nil, fmt.Errorf("%w: shell metacharacter %q", ErrCurl, c)
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// do sends a request and returns the status and body.
func do(t testing.TB, req *http.Request) (int, []byte) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	return res.StatusCode, b
}
