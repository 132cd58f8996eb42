//go:build unix

package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/smarttest"
)

// startDeadline bounds each start-up wait (build, engine, proxy). It only
// catches a hang: a busy CI machine may take long, never this long.
const startDeadline = 2 * time.Minute

var (
	// skipReason, when set, makes every test skip (missing node or engine).
	skipReason string
	// env is the running suite; nil when skipped.
	env *suite
)

func TestMain(m *testing.M) {
	if v := os.Getenv(plainProxyEnv); v != "" {
		os.Exit(runPlainProxy(v)) // BenchmarkGateway's bare reverse proxy
	}
	flag.Parse()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	require := os.Getenv("FHIRGUARD_GATEWAY_SUITE") == "require"
	if f := flag.Lookup("test.list"); f != nil && f.Value.String() != "" {
		skipReason = "listing tests only"
		return m.Run()
	}
	reason := prerequisites()
	if reason == "" && testing.Short() && !require {
		reason = "-short: the gateway suite starts a FHIR engine and the fhirguard proxy"
	}
	if reason != "" {
		if require {
			fmt.Fprintf(os.Stderr, "gateway suite: %s (FHIRGUARD_GATEWAY_SUITE=require)\n", reason)
			return 1
		}
		skipReason = "gateway suite skipped: " + reason + " (FHIRGUARD_GATEWAY_SUITE=require makes this a failure)"
		fmt.Fprintln(os.Stderr, skipReason)
		return m.Run()
	}
	s, err := startSuite()
	if s != nil {
		defer s.close()
		// Interrupted (^C, or interop/run.sh ending its process group):
		// end the children and remove the temporary directory first.
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(sig)
		go func() {
			if _, ok := <-sig; ok {
				fmt.Fprintln(os.Stderr, "gateway suite: interrupted, stopping the engine and the proxy")
				s.close()
				os.Exit(130)
			}
		}()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "gateway suite: start-up failed: %v\n", err)
		if s != nil {
			s.dumpLogs(os.Stderr)
		}
		return 1
	}
	env = s
	code := m.Run()
	s.printSummary(os.Stdout)
	// Built with -race, the proxy reports data races in its log.
	s.stopGateway()
	if b, err := os.ReadFile(filepath.Join(s.logDir, "proxy.log")); err == nil {
		if i := strings.Index(string(b), "WARNING: DATA RACE"); i >= 0 {
			fmt.Fprintf(os.Stderr, "gateway suite: the race detector found a data race in fhirguard proxy:\n%s\n", excerpt(string(b), i+2000, 4000))
			code = 1
		}
	}
	if code != 0 {
		s.dumpLogs(os.Stderr)
	}
	return code
}

// prerequisites says what is missing to run the suite ("" when nothing).
func prerequisites() string {
	root, err := moduleRoot()
	if err != nil {
		return err.Error()
	}
	if _, err := exec.LookPath("node"); err != nil {
		return "node is not installed (the engine needs Node.js 20 or newer)"
	}
	if _, err := os.Stat(filepath.Join(root, "interop", "engine", "node_modules", "@medplum", "fhir-router")); err != nil {
		return "the engine's packages are not installed (cd interop/engine && npm ci --omit=optional --omit=peer --no-audit --no-fund)"
	}
	return ""
}

// moduleRoot is the module's root directory (tests run in the package's).
func moduleRoot() (string, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("module root not found at %s", root)
	}
	return root, nil
}

// needSuite skips tb when the suite is not running.
func needSuite(tb testing.TB) *suite {
	tb.Helper()
	if env == nil {
		tb.Skip(skipReason)
	}
	return env
}

// seedIDs is the engine's "engine seed:" JSON (interop/engine/seed.js).
type seedIDs struct {
	Base         string                `json:"base"`
	Organization string                `json:"organization"`
	Practitioner string                `json:"practitioner"`
	Group        string                `json:"group"`
	Provenance   string                `json:"provenance"`
	Linking      string                `json:"linking"`
	Patients     map[string]patientIDs `json:"patients"`
}

type patientIDs struct {
	ID           string `json:"id"`
	Encounter    string `json:"encounter"`
	Condition    string `json:"condition"`
	Observations struct {
		Vitals     string `json:"vitals"`
		Laboratory string `json:"laboratory"`
		Social     string `json:"social"`
	} `json:"observations"`
}

// suite is the running system: engine, authorization server, proxy.
type suite struct {
	tmp    string // temporary directory (binary, CA file, logs unless kept)
	logDir string
	bin    string // the fhirguard binary

	engine     *proc
	engineBase string // http://127.0.0.1:PORT/fhir
	engineHost string // 127.0.0.1:PORT
	seed       seedIDs
	a, b       patientIDs
	// Created by the suite directly in the engine: a Provenance targeting
	// B's vitals Observation (the seed has one for A only), and an
	// Observation of each patient whose subject is the engine's absolute
	// URL of the patient, as some servers write references.
	provenanceB          string
	absoluteA, absoluteB string

	authTLS *httptest.Server
	auth    *smarttest.Server
	caFile  string

	proxy      *proc
	publicBase string // http://127.0.0.1:PORT/fhir
	origin     string // http://127.0.0.1:PORT

	tokens map[string]string // by holder name
	client *http.Client      // to the gateway (and, for checks, the engine)

	mu        sync.Mutex
	stats     stats
	closeOnce sync.Once
}

// startSuite starts everything. On error the returned suite (when not nil)
// holds what was started, for close and dumpLogs.
func startSuite() (*suite, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "fhirguard-gwsuite-")
	if err != nil {
		return nil, err
	}
	s := &suite{tmp: tmp, logDir: tmp, tokens: map[string]string{}}
	if d := os.Getenv("FHIRGUARD_GATEWAY_LOG_DIR"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return s, err
		}
		s.logDir = d
	}
	s.client = &http.Client{
		Timeout: time.Minute,
		Transport: &http.Transport{
			Proxy:               nil, // never an HTTP(S)_PROXY from the environment
			MaxIdleConnsPerHost: 8,
			IdleConnTimeout:     time.Minute,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	// Build the command while the engine loads its definitions.
	built := make(chan error, 1)
	s.bin = filepath.Join(tmp, "fhirguard")
	go func() { built <- buildCommand(root, s.bin) }()

	engineErr := s.startEngine(root)
	buildErr := <-built
	if err := errors.Join(engineErr, buildErr); err != nil {
		return s, err
	}
	if err := s.addEngineData(); err != nil {
		return s, err
	}
	if err := s.startGateway(); err != nil {
		return s, err
	}
	return s, s.mintTokens()
}

func buildCommand(root, out string) error {
	ctx, cancel := context.WithTimeout(context.Background(), startDeadline)
	defer cancel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("go is not in PATH: %v", err)
	}
	args := []string{"build", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, goBin, append(args, "./cmd/fhirguard")...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/fhirguard: %v\n%s", err, b)
	}
	return nil
}

// startEngine starts interop/engine/server.js --port 0 --seed and reads the
// seed JSON and the ready line from its standard output.
func (s *suite) startEngine(root string) error {
	logf, err := os.Create(filepath.Join(s.logDir, "engine.log"))
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	p, err := startProc("engine", pw, logf, nil, "node",
		filepath.Join(root, "interop", "engine", "server.js"), "--port", "0", "--seed")
	if err != nil {
		logf.Close()
		return err
	}
	p.closers = append(p.closers, pw, logf)
	s.engine = p
	type line struct {
		seed, base string
	}
	lines := make(chan line, 2)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			t := sc.Text()
			fmt.Fprintln(logf, t)
			if v, ok := strings.CutPrefix(t, "engine seed: "); ok {
				lines <- line{seed: v}
			} else if v, ok := strings.CutPrefix(t, "engine listening on "); ok {
				lines <- line{base: strings.TrimSpace(v)}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	deadline := time.After(startDeadline)
	for s.engineBase == "" {
		select {
		case l := <-lines:
			if l.seed != "" {
				if err := json.Unmarshal([]byte(l.seed), &s.seed); err != nil {
					return fmt.Errorf("engine seed: %v", err)
				}
			}
			s.engineBase = l.base
		case <-p.done:
			return fmt.Errorf("engine exited before it was ready: %v", p.err)
		case <-deadline:
			return fmt.Errorf("engine not ready after %v", startDeadline)
		}
	}
	if s.seed.Base != s.engineBase {
		return fmt.Errorf("engine seed missing or for another base (%q, ready at %q)", s.seed.Base, s.engineBase)
	}
	a, okA := s.seed.Patients["A"]
	b, okB := s.seed.Patients["B"]
	if !okA || !okB || a.ID == "" || b.ID == "" {
		return fmt.Errorf("engine seed has no patients A and B: %+v", s.seed)
	}
	s.a, s.b = a, b
	s.engineHost = strings.TrimPrefix(strings.TrimSuffix(s.engineBase, "/fhir"), "http://")
	return nil
}

// addEngineData adds what the seed lacks, directly in the engine.
func (s *suite) addEngineData() error {
	for _, c := range []struct {
		id        *string
		typ, body string
	}{
		{&s.provenanceB, "Provenance", `{"resourceType":"Provenance",
		"policy":["` + suiteSystem + `:provenance-B"],
		"target":[{"reference":"Observation/` + s.b.Observations.Vitals + `"},{"reference":"Patient/` + s.b.ID + `"}],
		"recorded":"2024-03-03T09:31:00Z",
		"agent":[{"who":{"reference":"Practitioner/` + s.seed.Practitioner + `"}}]}`},
		{&s.absoluteA, "Observation", s.observationAbout(s.engineBase+"/Patient/"+s.a.ID, "absolute-A")},
		{&s.absoluteB, "Observation", s.observationAbout(s.engineBase+"/Patient/"+s.b.ID, "absolute-B")},
	} {
		r, err := s.engineDo(http.MethodPost, c.typ, c.body)
		if err != nil {
			return err
		}
		var v struct{ ID string }
		if r.status != http.StatusCreated || json.Unmarshal(r.body, &v) != nil || v.ID == "" {
			return fmt.Errorf("engine: create %s: %d %s", c.typ, r.status, r.body)
		}
		*c.id = v.ID
	}
	return nil
}

// startGateway starts the authorization server and the proxy on a free
// loopback port (retrying when another process took the port first).
func (s *suite) startGateway() error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var port int
		if port, err = freePort(); err != nil {
			return err
		}
		s.origin = fmt.Sprintf("http://127.0.0.1:%d", port)
		s.publicBase = s.origin + "/fhir"
		if err = s.startAuth(); err != nil {
			return err
		}
		err = s.startProxy(port)
		if err == nil || !errors.Is(err, errPortTaken) {
			return err
		}
		s.stopGateway()
	}
	return err
}

var errPortTaken = errors.New("gateway port taken")

// startAuth starts smarttest over TLS (httptest's certificate, whose CA
// the proxy gets through SSL_CERT_FILE): the proxy fetches its keys over
// https, as in production.
func (s *suite) startAuth() error {
	var h http.Handler = http.NotFoundHandler()
	ready := make(chan struct{})
	s.authTLS = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-ready
		h.ServeHTTP(w, r)
	}))
	s.authTLS.StartTLS()
	user := "" // smarttest's default
	if s.seed.Practitioner != "" {
		user = "Practitioner/" + s.seed.Practitioner
	}
	auth, err := smarttest.New(smarttest.Config{
		Issuer:   s.authTLS.URL,
		FHIRBase: s.publicBase,
		User:     user,
	})
	if err == nil {
		s.auth, h = auth, auth
	}
	close(ready)
	if err != nil {
		return err
	}
	s.caFile = filepath.Join(s.tmp, "smarttest-ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.authTLS.Certificate().Raw})
	return os.WriteFile(s.caFile, ca, 0o600)
}

// proxyArgs are the flags of `fhirguard proxy`, then those of
// FHIRGUARD_GATEWAY_PROXY_FLAGS (space-separated; for benchmarks).
func (s *suite) proxyArgs(port int) []string {
	return append([]string{
		"proxy",
		"--upstream", s.engineBase,
		"--base-url", s.publicBase,
		"--listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--issuer", s.authTLS.URL,
		"--jwks-url", s.authTLS.URL + "/jwks",
		"--insecure-allow-http",
		"--log-format", "json",
	}, strings.Fields(os.Getenv("FHIRGUARD_GATEWAY_PROXY_FLAGS"))...)
}

func (s *suite) startProxy(port int) error {
	logf, err := os.Create(filepath.Join(s.logDir, "proxy.log"))
	if err != nil {
		return err
	}
	envv := append(os.Environ(), "SSL_CERT_FILE="+s.caFile)
	p, err := startProc("proxy", logf, logf, envv, s.bin, s.proxyArgs(port)...)
	if err != nil {
		logf.Close()
		return err
	}
	p.closers = append(p.closers, logf)
	s.proxy = p
	return s.waitReady(p.done, func() error {
		b, _ := os.ReadFile(logf.Name())
		if strings.Contains(string(b), "address already in use") {
			return errPortTaken
		}
		return fmt.Errorf("fhirguard proxy exited before it was ready: %v", p.err)
	})
}

// waitReady polls the gateway's /readyz until it answers 200.
func (s *suite) waitReady(exited <-chan struct{}, onExit func() error) error {
	deadline := time.Now().Add(startDeadline)
	for {
		req, _ := http.NewRequest(http.MethodGet, s.origin+"/readyz", nil)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := s.client.Do(req.WithContext(ctx))
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		cancel()
		if err == nil && resp.StatusCode == http.StatusOK {
			return nil
		}
		select {
		case <-exited:
			return onExit()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
			return fmt.Errorf("gateway not ready after %v: /readyz: %v", startDeadline, err)
		}
	}
}

func (s *suite) stopGateway() {
	if s.proxy != nil {
		s.proxy.stop()
		s.proxy = nil
	}
	if s.auth != nil {
		s.auth.Close()
		s.auth = nil
	}
	if s.authTLS != nil {
		s.authTLS.Close()
		s.authTLS = nil
	}
}

// close stops everything and removes the temporary directory (once).
func (s *suite) close() {
	s.closeOnce.Do(func() {
		s.stopGateway()
		if s.engine != nil {
			s.engine.stop()
		}
		if s.client != nil {
			s.client.CloseIdleConnections()
		}
		os.RemoveAll(s.tmp)
	})
}

// dumpLogs prints the last lines of the engine's and the proxy's logs.
func (s *suite) dumpLogs(w io.Writer) {
	for _, name := range []string{"engine.log", "proxy.log"} {
		b, err := os.ReadFile(filepath.Join(s.logDir, name))
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		fmt.Fprintf(w, "--- last lines of %s\n", name)
		for _, l := range lines {
			if len(l) > 600 {
				l = l[:600] + "…"
			}
			fmt.Fprintf(w, "  | %s\n", l)
		}
	}
}

// mintTokens mints the suite's tokens.
func (s *suite) mintTokens() error {
	for name, o := range map[string]smarttest.TokenOptions{
		holderPatient: {ClientID: "gwsuite-app", Scopes: "launch/patient patient/*.cruds", Patient: s.a.ID},
		holderUserPatient: {ClientID: "gwsuite-portal", Scopes: "openid fhirUser user/*.cruds",
			FHIRUser: "Patient/" + s.a.ID},
		holderPractitioner: {ClientID: "gwsuite-ehr", Scopes: "openid fhirUser user/*.cruds",
			FHIRUser: "Practitioner/" + s.seed.Practitioner},
		holderSystem: {ClientID: "gwsuite-backend", Scopes: "system/*.cruds"},
	} {
		tok, err := s.auth.MintToken(o)
		if err != nil {
			return fmt.Errorf("mint %s token: %v", name, err)
		}
		s.tokens[name] = tok
	}
	return nil
}

// Token holders.
const (
	holderPatient      = "patient"           // patient/*.cruds, launch patient A
	holderUserPatient  = "user-patient"      // user/*.cruds, fhirUser Patient/A
	holderPractitioner = "user-practitioner" // user/*.cruds, fhirUser Practitioner
	holderSystem       = "system"            // system/*.cruds
	holderNone         = "no-token"
)

// heldToA says whether a holder's access is held to patient A.
func heldToA(holder string) bool { return holder == holderPatient || holder == holderUserPatient }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// proc is a child process in its own process group.
type proc struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{} // closed once Wait returned
	err     error         // Wait's result
	closers []io.Closer   // closed after Wait
}

func startProc(name string, stdout, stderr io.Writer, envv []string, bin string, args ...string) (*proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Env = envv
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		for _, c := range p.closers {
			c.Close()
		}
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop ends the process group: SIGTERM, then SIGKILL after five seconds.
func (p *proc) stop() {
	select {
	case <-p.done:
		return // reaped: its group id may be reused, send nothing
	default:
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(5 * time.Second):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.done
}
