package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/fhirguard/fhirguard/discovery"
)

// exitFetch is the exit code of discovery lint when a document could not
// be fetched.
const exitFetch = 3

// maxMetadataBytes caps the size of /metadata (CapabilityStatements of
// large servers run to megabytes).
const maxMetadataBytes = 16 << 20

// Sources of lint problems, in the order they are printed.
const (
	sourceBase     = "base-url"
	sourceSMART    = "smart-configuration"
	sourceMetadata = "metadata"
)

// The SMART security block of a CapabilityStatement (SMART App Launch
// 1.0, read by v1 clients and Inferno's STU1 tests).
const (
	oauthURIsExtension = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
	smartServiceCode   = "SMART-on-FHIR"
	smartServiceSystem = "http://terminology.hl7.org/CodeSystem/restful-security-service"
)

// discoveryLintCommand returns the discovery lint command. transport,
// when not nil, replaces the HTTP transport (tests); --ca-file is then
// ignored.
func discoveryLintCommand(transport http.RoundTripper) command {
	return command{
		name:    "discovery lint",
		args:    "<FHIR base URL>",
		minArgs: 1,
		maxArgs: 1,
		summary: "check a FHIR server's SMART configuration and /metadata",
		help: `
Fetches <base>/.well-known/smart-configuration and <base>/metadata and
checks them as Inferno's SMART App Launch tests do:

  - the SMART configuration against SMART App Launch 2.2 (required
    members, PKCE S256 and not plain, absolute endpoint URLs, members the
    capabilities need, misspelt capabilities) and its response headers
    (application/json, CORS);
  - /metadata: a CapabilityStatement whose SMART security block (the
    SMART-on-FHIR service and the oauth-uris extension), when present,
    names the same endpoints as the SMART configuration.

Prints one problem a line (severity, source, field: detail), errors
first, then a summary line; --json prints a JSON report instead. An http
base URL is fetched, and reported as a warning.

Exit codes:
  0  no errors (warnings allowed)
  1  errors found
  2  usage error
  3  a document could not be fetched (network or TLS failure, HTTP
     status other than 200, not a JSON object)`,
		setup: func(fs *flag.FlagSet) runFunc {
			jsonOut := fs.Bool("json", false, "print a JSON report")
			timeout := fs.Duration("timeout", 30*time.Second, "give up after this `duration`, both fetches included")
			caFile := fs.String("ca-file", "", "also trust the CA certificates of this PEM `file` (a private CA)")
			return func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
				return runLint(ctx, args[0], lintOptions{
					json:      *jsonOut,
					timeout:   *timeout,
					caFile:    *caFile,
					transport: transport,
				}, stdout, stderr)
			}
		},
	}
}

// lintOptions holds the flags of discovery lint.
type lintOptions struct {
	json      bool
	timeout   time.Duration
	caFile    string
	transport http.RoundTripper
}

// lintReport is the result of discovery lint; --json prints it.
type lintReport struct {
	// BaseURL is the FHIR base URL linted, as given.
	BaseURL string `json:"base_url"`
	// Documents says what was fetched: the SMART configuration, then
	// /metadata.
	Documents []fetchResult `json:"documents"`
	// Problems lists every problem found, sorted (errors first).
	Problems []lintProblem `json:"problems"`
	// Errors and Warnings count the problems.
	Errors   int `json:"errors"`
	Warnings int `json:"warnings"`
	// ExitCode is the exit code of the command.
	ExitCode int `json:"exit_code"`
}

// fetchResult describes the fetch of one document.
type fetchResult struct {
	// Name is sourceSMART or sourceMetadata.
	Name string `json:"name"`
	URL  string `json:"url"`
	// Status is the HTTP status, 0 when no response arrived.
	Status int `json:"status,omitempty"`
	// Fetched says the document was read and checked.
	Fetched bool `json:"fetched"`
	// Error says why it could not be read.
	Error string `json:"error,omitempty"`
}

// lintProblem is one problem found.
type lintProblem struct {
	Severity string `json:"severity"` // "error" or "warning"
	Source   string `json:"source"`   // sourceBase, sourceSMART or sourceMetadata
	Field    string `json:"field"`    // JSON member, HTTP header or CapabilityStatement path
	Detail   string `json:"detail"`
}

func runLint(ctx context.Context, base string, o lintOptions, stdout, stderr io.Writer) int {
	const name = "fhirguard discovery lint"
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.ContainsAny(base, "?#") {
		fmt.Fprintf(stderr, "%s: %q is not a FHIR base URL (an absolute http or https URL without query or fragment)\n", name, base)
		return exitUsage
	}
	if o.timeout <= 0 {
		fmt.Fprintf(stderr, "%s: --timeout must be positive\n", name)
		return exitUsage
	}
	client, err := lintClient(o)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return exitUsage
	}
	rep := lint(ctx, base, client, o.timeout)
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		_ = enc.Encode(rep)
	} else {
		writeLintText(stdout, rep)
	}
	return rep.ExitCode
}

// lintClient returns the HTTP client of the lint: o.transport, or the
// default transport trusting the system CAs and those of o.caFile.
func lintClient(o lintOptions) (*http.Client, error) {
	if o.transport != nil {
		return &http.Client{Transport: o.transport}, nil
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-file: no PEM certificate in %s", o.caFile)
		}
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: t}, nil
}

// lint fetches and checks the SMART configuration and /metadata of the
// FHIR endpoint base.
func lint(ctx context.Context, base string, client *http.Client, timeout time.Duration) *lintReport {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rep := &lintReport{BaseURL: base, Problems: []lintProblem{}}
	trimmed := strings.TrimSuffix(base, "/")
	if strings.HasPrefix(strings.ToLower(base), "http:") {
		rep.Problems = append(rep.Problems, lintProblem{
			Severity: discovery.SeverityWarning.String(),
			Source:   sourceBase,
			Field:    "scheme",
			Detail:   `"http": SMART requires TLS; tokens and health data would cross the network in clear`,
		})
	}

	smart := fetchResult{Name: sourceSMART, URL: trimmed + "/.well-known/smart-configuration"}
	doc, ps, err := discovery.FetchDocument(ctx, base, discovery.FetchConfig{
		Client:                client,
		Timeout:               timeout,
		InsecureAllowHTTPURLs: true, // reported above as a warning
	})
	if err != nil {
		doc = nil
		var fe *discovery.FetchError
		if errors.As(err, &fe) {
			smart.Status = fe.StatusCode
		}
		smart.Error = describeFetchError(err)
	} else {
		smart.Status, smart.Fetched = http.StatusOK, true
		for _, p := range ps {
			rep.Problems = append(rep.Problems, lintProblem{
				Severity: p.Severity.String(),
				Source:   sourceSMART,
				Field:    p.Field,
				Detail:   p.Detail,
			})
		}
	}

	cs, meta := fetchMetadata(ctx, client, trimmed+"/metadata")
	if meta.Fetched {
		rep.Problems = append(rep.Problems, checkMetadata(cs, doc)...)
	}
	rep.Documents = []fetchResult{smart, meta}

	sortProblems(rep.Problems)
	for _, p := range rep.Problems {
		if p.Severity == discovery.SeverityError.String() {
			rep.Errors++
		} else {
			rep.Warnings++
		}
	}
	switch {
	case !smart.Fetched || !meta.Fetched:
		rep.ExitCode = exitFetch
	case rep.Errors > 0:
		rep.ExitCode = exitFail
	default:
		rep.ExitCode = exitOK
	}
	return rep
}

// describeFetchError says why a document could not be read, without the
// URL (printed next to it).
func describeFetchError(err error) string {
	var fe *discovery.FetchError
	if errors.As(err, &fe) {
		if fe.StatusCode != 0 && fe.StatusCode != http.StatusOK {
			return httpStatus(fe.StatusCode)
		}
		err = fe.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer within the timeout (--timeout)"
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		err = ue.Err
	}
	return err.Error()
}

func httpStatus(code int) string {
	if text := http.StatusText(code); text != "" {
		return fmt.Sprintf("HTTP status %d %s", code, text)
	}
	return fmt.Sprintf("HTTP status %d", code)
}

// fetchMetadata GETs the CapabilityStatement at u and returns it decoded,
// when it is a JSON object.
func fetchMetadata(ctx context.Context, client *http.Client, u string) (map[string]any, fetchResult) {
	res := fetchResult{Name: sourceMetadata, URL: u}
	fail := func(err error) (map[string]any, fetchResult) {
		res.Error = describeFetchError(err)
		return nil, res
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fail(err)
	}
	req.Header.Set("Accept", "application/fhir+json")
	resp, err := client.Do(req)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	res.Status = resp.StatusCode
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		res.Error = httpStatus(resp.StatusCode)
		return nil, res
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes+1))
	if err != nil {
		return fail(err)
	}
	if len(body) > maxMetadataBytes {
		return fail(fmt.Errorf("larger than %d MiB", maxMetadataBytes>>20))
	}
	var cs map[string]any
	if b := bytes.TrimLeft(body, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		err = errors.New("not a JSON object")
	} else if err = json.Unmarshal(body, &cs); err != nil {
		err = fmt.Errorf("not a JSON object: %w", err)
	}
	if err != nil {
		if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "" && !strings.HasSuffix(mt, "json") {
			err = fmt.Errorf("%w (Content-Type %s)", err, mt)
		}
		return fail(err)
	}
	res.Fetched = true
	return cs, res
}

// checkMetadata checks the CapabilityStatement cs: its resource type, and
// that its SMART security blocks agree with doc (when it was fetched).
func checkMetadata(cs map[string]any, doc *discovery.Document) []lintProblem {
	var out []lintProblem
	add := func(sev discovery.Severity, field, format string, args ...any) {
		out = append(out, lintProblem{Severity: sev.String(), Source: sourceMetadata, Field: field, Detail: fmt.Sprintf(format, args...)})
	}
	if rt, ok := cs["resourceType"].(string); !ok || rt != "CapabilityStatement" {
		found := "missing"
		if ok {
			found = fmt.Sprintf("%q", rt)
		} else if _, present := cs["resourceType"]; present {
			found = "not a string"
		}
		add(discovery.SeverityError, "resourceType", "%s: /metadata must return a CapabilityStatement", found)
		return out
	}

	found := false
	for i, r := range asArray(cs["rest"]) {
		entry := asObject(r)
		if mode, ok := entry["mode"]; ok && mode != "server" {
			continue
		}
		sec := asObject(entry["security"])
		if sec == nil {
			continue
		}
		field := fmt.Sprintf("rest[%d].security", i)
		service := hasSMARTService(sec)
		uris, hasURIs := oauthURIs(sec)
		if !service && !hasURIs {
			continue
		}
		found = true
		if !hasURIs {
			add(discovery.SeverityWarning, field+".extension", "no oauth-uris extension (%s): SMART App Launch 1.0 clients read the authorize and token endpoints there", oauthURIsExtension)
			continue
		}
		if !service {
			add(discovery.SeverityWarning, field+".service", "no %s service coding (system %s) next to the oauth-uris extension", smartServiceCode, smartServiceSystem)
		}
		if doc == nil {
			continue
		}
		for _, e := range []struct {
			name, member, want string
			required           bool
		}{
			{"authorize", "authorization_endpoint", doc.AuthorizationEndpoint, true},
			{"token", "token_endpoint", doc.TokenEndpoint, true},
			{"register", "registration_endpoint", doc.RegistrationEndpoint, false},
			{"manage", "management_endpoint", doc.ManagementEndpoint, false},
			{"introspect", "introspection_endpoint", doc.IntrospectionEndpoint, false},
			{"revoke", "revocation_endpoint", doc.RevocationEndpoint, false},
		} {
			got := uris[e.name]
			sev := discovery.SeverityWarning
			if e.required {
				sev = discovery.SeverityError
			}
			f := field + ".oauth-uris." + e.name
			switch {
			case got == e.want, got == "" && !e.required:
			case got == "":
				add(sev, f, "missing; the SMART configuration's %s is %q", e.member, e.want)
			case e.want == "":
				add(sev, f, "%q, but the SMART configuration has no %s", got, e.member)
			default:
				add(sev, f, "%q disagrees with the SMART configuration's %s %q: clients would use different endpoints", got, e.member, e.want)
			}
		}
	}
	if !found {
		add(discovery.SeverityWarning, "rest.security", "no SMART security block (the %s service and the oauth-uris extension): SMART App Launch 1.0 clients and Inferno's STU1 tests read the OAuth endpoints there", smartServiceCode)
	}
	return out
}

// hasSMARTService reports whether the security element sec lists the
// SMART-on-FHIR service (any code system: STU3 used another URL).
func hasSMARTService(sec map[string]any) bool {
	for _, cc := range asArray(sec["service"]) {
		for _, c := range asArray(asObject(cc)["coding"]) {
			if asObject(c)["code"] == smartServiceCode {
				return true
			}
		}
	}
	return false
}

// oauthURIs returns the endpoints of the first oauth-uris extension of
// the security element sec, by sub-extension name (the first of each
// name), and whether there is one.
func oauthURIs(sec map[string]any) (map[string]string, bool) {
	for _, e := range asArray(sec["extension"]) {
		ext := asObject(e)
		if ext["url"] != oauthURIsExtension {
			continue
		}
		uris := map[string]string{}
		for _, s := range asArray(ext["extension"]) {
			sub := asObject(s)
			name, _ := sub["url"].(string)
			value, _ := sub["valueUri"].(string)
			if _, dup := uris[name]; !dup && name != "" {
				uris[name] = value
			}
		}
		return uris, true
	}
	return nil, false
}

func asArray(v any) []any {
	a, _ := v.([]any)
	return a
}

func asObject(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// sortProblems sorts ps: errors first, then by source (base URL, SMART
// configuration, metadata), field (numbers in it compared as numbers) and
// detail.
func sortProblems(ps []lintProblem) {
	rank := map[string]int{sourceBase: 0, sourceSMART: 1, sourceMetadata: 2}
	slices.SortStableFunc(ps, func(a, b lintProblem) int {
		if a.Severity != b.Severity {
			if a.Severity == discovery.SeverityError.String() {
				return -1
			}
			if b.Severity == discovery.SeverityError.String() {
				return 1
			}
			return strings.Compare(a.Severity, b.Severity)
		}
		if c := rank[a.Source] - rank[b.Source]; c != 0 {
			return c
		}
		if c := naturalCompare(a.Field, b.Field); c != 0 {
			return c
		}
		return strings.Compare(a.Detail, b.Detail)
	})
}

// naturalCompare compares a and b with runs of ASCII digits compared as
// numbers ("capabilities[2]" < "capabilities[10]").
func naturalCompare(a, b string) int {
	isDigit := func(c byte) bool { return '0' <= c && c <= '9' }
	for a != "" && b != "" {
		if isDigit(a[0]) && isDigit(b[0]) {
			i, j := 0, 0
			for i < len(a) && isDigit(a[i]) {
				i++
			}
			for j < len(b) && isDigit(b[j]) {
				j++
			}
			na, nb := strings.TrimLeft(a[:i], "0"), strings.TrimLeft(b[:j], "0")
			if c := len(na) - len(nb); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			if c := i - j; c != 0 { // "01" after "1"
				return c
			}
			a, b = a[i:], b[j:]
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

// writeLintText prints rep as text: the documents that could not be
// fetched, one problem a line, and a summary line.
func writeLintText(w io.Writer, rep *lintReport) {
	var failed []string
	for _, d := range rep.Documents {
		if !d.Fetched {
			failed = append(failed, d.Name)
			fmt.Fprintf(w, "%-7s  %-19s  could not fetch %s: %s\n", "failed", d.Name, oneLine(d.URL), oneLine(d.Error))
		}
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "%-7s  %-19s  %s: %s\n", p.Severity, p.Source, oneLine(p.Field), oneLine(p.Detail))
	}
	summary := fmt.Sprintf("%s: %s, %s", oneLine(rep.BaseURL), plural(rep.Errors, "error"), plural(rep.Warnings, "warning"))
	if len(failed) > 0 {
		summary += "; could not fetch " + strings.Join(failed, " and ")
	}
	fmt.Fprintln(w, summary)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// oneLine escapes the control characters of s, so that each problem
// stays on one line whatever the server sent.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == 0x85 || r == 0x2028 || r == 0x2029 }) {
		return s
	}
	q := fmt.Sprintf("%q", s)
	return q[1 : len(q)-1]
}
