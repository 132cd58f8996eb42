package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// maxTokenInput bounds a token read from stdin.
const maxTokenInput = 1 << 20

// exitToken is the exit code of token inspect for a token that cannot be
// decoded, or a server check that could not get the keys or an
// introspection answer (the code discovery lint uses for fetch failures).
const exitToken = exitFetch

// tokenInspectCommand returns the token inspect command. stdin is read for
// the "-" argument, now is the clock of relative times and of the server
// check, transport (when not nil) replaces the network of the server
// check (tests; --ca-file is then ignored).
func tokenInspectCommand(stdin io.Reader, now func() time.Time, transport http.RoundTripper) command {
	return command{
		name:    "token inspect",
		args:    "<JWT> | -",
		minArgs: 1,
		maxArgs: 1,
		summary: "decode an access token and say whether this server would accept it",
		help: `
Decodes an access token without trusting it: the JOSE header (alg, typ,
kid, and a warning for the members a lax verifier could be tricked by:
jwk, jku, x5u, x5c, crit, b64, alg none, HMAC), the claims (times in
RFC 3339 with "expires in 42m" or "expired 3h ago", and what the scopes
grant, as "scope explain" says), and what is wrong with its structure
(not three parts, bad base64url, JSON serialization, an encrypted JWT,
an opaque token that only introspection can resolve). "-" reads the
token from stdin (one trailing line ending removed); put "--" before a
token that starts with "-". A "Bearer " prefix is removed. The signature is never printed, and the token is sent
nowhere, except to an introspection endpoint you name.

With --base-url (and --issuer with --jwks-url or --jwks-file, and/or the
--introspection flags), it also says whether a fhirguard server with
this configuration would accept the token and, if not, exactly why: the
token goes, in memory, through the fhirguard middleware itself (the JWKS
is fetched once). With --request "GET /Observation/123" and an accepted
token, it also previews the authorization of that request (against a
stub FHIR server that holds no data). --json prints a JSON report
instead of text (stable lowerCamelCase fields). Secrets are better put
in the --config file than on the command line.

Exit codes:
  0  the token was decoded; with a server check, it was accepted
  1  the server check refused the token
  2  usage error
  3  the token could not be decoded (malformed, or encrypted or opaque
     without a server check to judge it), or the server check could not
     get the keys or an introspection answer`,
		setup: func(fs *flag.FlagSet) runFunc {
			jsonOut := fs.Bool("json", false, "print a JSON report (stable lowerCamelCase fields)")
			o := &checkOptions{transport: transport}
			fs.StringVar(&o.baseURL, "base-url", "", "check against the FHIR server at this base `URL` (the audience its tokens carry)")
			fs.StringVar(&o.issuer, "issuer", "", "the `iss` value the server accepts (its authorization server)")
			fs.StringVar(&o.jwksURL, "jwks-url", "", "verify JWTs with the JWK Set at this https `URL` (fetched once)")
			fs.StringVar(&o.jwksFile, "jwks-file", "", "verify JWTs with the JWK Set in this `file`")
			fs.StringVar(&o.introspectionURL, "introspection-url", "", "introspect opaque tokens at this RFC 7662 endpoint `URL` (the token is sent there)")
			fs.StringVar(&o.introspectionID, "introspection-client-id", "", "the server's client `id` at the introspection endpoint")
			fs.StringVar(&o.introspectionSecret, "introspection-client-secret", "", "the server's client `secret` at the introspection endpoint")
			fs.StringVar(&o.caFile, "ca-file", "", "also trust the CA certificates of this PEM `file` (a private CA)")
			fs.BoolVar(&o.insecureHTTPKeyURLs, "insecure-allow-http-key-urls", false, "allow http JWKS and introspection URLs on loopback (local development only)")
			fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "give up the server check after this `duration`")
			fs.StringVar(&o.request, "request", "", "with an accepted token, preview the authorization of this `request` (\"GET /Observation/123\")")
			return func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
				return runTokenInspect(ctx, args[0], *jsonOut, o, stdin, now, stdout, stderr)
			}
		},
	}
}

// tokenReport is the result of token inspect; --json prints it.
type tokenReport struct {
	// Format is jwt, jwsJson, jwe, opaque or malformed; Description says
	// it in words.
	Format      string `json:"format"`
	Description string `json:"description"`
	// Length is the token's length in bytes; Parts the number of its
	// dot-separated parts.
	Length int `json:"length"`
	Parts  int `json:"parts"`
	// Decoded says the header and the claims could be read.
	Decoded bool `json:"decoded"`
	// Header and Claims are the decoded JOSE header and claims, null when
	// unreadable. The signature is never shown: SignatureBytes is its
	// length.
	Header         map[string]any `json:"header"`
	SignatureBytes int            `json:"signatureBytes"`
	Claims         map[string]any `json:"claims"`
	// Times are exp, iat and nbf in readable form, relative to Now.
	Times []timeClaim `json:"times"`
	// Scope is the scope claim and what it grants (null without one).
	Scope *scopeGrant `json:"scope"`
	// Problems lists what is wrong or worth knowing, most serious first.
	Problems []tokenProblem `json:"problems"`
	// Check is the server check (null when not asked).
	Check *checkReport `json:"check"`
	// Now is the time relative times refer to, RFC 3339.
	Now string `json:"now"`
	// ExitCode is the exit code of the command.
	ExitCode int `json:"exitCode"`
}

func runTokenInspect(ctx context.Context, arg string, asJSON bool, o *checkOptions, stdin io.Reader, clock func() time.Time, stdout, stderr io.Writer) int {
	const name = "fhirguard token inspect"
	tok := arg
	if arg == "-" {
		if stdin == nil {
			fmt.Fprintf(stderr, "%s: no stdin\n", name)
			return exitUsage
		}
		data, err := io.ReadAll(io.LimitReader(stdin, maxTokenInput+1))
		if err != nil {
			fmt.Fprintf(stderr, "%s: reading stdin: %v\n", name, err)
			return exitUsage
		}
		if len(data) > maxTokenInput {
			fmt.Fprintf(stderr, "%s: stdin holds more than %d bytes\n", name, maxTokenInput)
			return exitUsage
		}
		tok = string(data)
		if s, ok := strings.CutSuffix(tok, "\n"); ok {
			tok = strings.TrimSuffix(s, "\r")
		}
	}
	if o.requested() {
		if err := o.validate(); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", name, err)
			return exitUsage
		}
	}

	nowT := clock()
	now := func() time.Time { return nowT }
	var prefixNote *tokenProblem
	if len(tok) > 7 && strings.EqualFold(tok[:7], "bearer ") {
		tok = tok[7:]
		prefixNote = &tokenProblem{Severity: sevInfo, Field: "token", Message: `the "Bearer " prefix was removed (the token is what follows it)`}
	}
	d := decodeToken(tok, nowT)
	if prefixNote != nil {
		d.problems = append(d.problems, *prefixNote)
	}
	rep := &tokenReport{
		Format: d.format, Description: d.description, Length: len(tok), Parts: d.parts, Decoded: d.decoded,
		Header: d.header, SignatureBytes: d.signatureBytes, Claims: d.claims,
		Times: d.times, Scope: d.scope, Problems: sortedProblems(d.problems),
		Now: nowT.UTC().Format(time.RFC3339),
	}
	if rep.Times == nil {
		rep.Times = []timeClaim{}
	}

	if o.requested() {
		check, err := checkToken(ctx, tok, d, o, now)
		var ce errConfig
		if errors.As(err, &ce) {
			fmt.Fprintf(stderr, "%s: %v\n", name, ce.err)
			return exitUsage
		}
		rep.Check = check
	}
	rep.ExitCode = exitCodeOf(d, rep.Check)

	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", name, err)
			return exitUsage
		}
	} else {
		writeTokenText(stdout, rep, d)
	}
	return rep.ExitCode
}

// exitCodeOf is the exit code for what was decoded and the server check.
func exitCodeOf(d *decoded, c *checkReport) int {
	if c == nil {
		if d.decoded {
			return exitOK
		}
		return exitToken
	}
	switch c.Outcome {
	case outcomeAccepted:
		return exitOK
	case outcomeUnavailable:
		return exitToken
	}
	if !d.decoded && d.format != formatOpaque && d.format != formatJWE {
		return exitToken
	}
	return exitFail
}

var severityRank = map[string]int{sevDanger: 0, sevError: 1, sevWarning: 2, sevInfo: 3}

func sortedProblems(ps []tokenProblem) []tokenProblem {
	out := slices.Clone(ps)
	if out == nil {
		out = []tokenProblem{}
	}
	slices.SortStableFunc(out, func(a, b tokenProblem) int { return severityRank[a.Severity] - severityRank[b.Severity] })
	return out
}

// The claims shown in the Claims section, in order; the others are
// "other claims".
var knownClaims = []string{"iss", "sub", "aud", "exp", "iat", "nbf", "client_id", "scope", "scp", "patient", "encounter", "fhirUser", "fhirContext"}

// writeTokenText prints the report for people.
func writeTokenText(w io.Writer, rep *tokenReport, d *decoded) {
	var b strings.Builder
	fmt.Fprintf(&b, "Token: %s, %s", rep.Description, plural(rep.Length, "byte"))
	if rep.Format == formatJWT || rep.Format == formatJWSJSON {
		if rep.SignatureBytes > 0 {
			fmt.Fprintf(&b, "; signature %s, not shown, not verified", plural(rep.SignatureBytes, "byte"))
		} else {
			b.WriteString("; no signature")
		}
	}
	b.WriteString("\n")

	if rep.Header != nil {
		b.WriteString("\nHeader\n")
		var rows [][2]string
		order := []string{"alg", "typ", "kid"}
		for _, n := range d.headerOrder {
			if !slices.Contains(order, n) {
				order = append(order, n)
			}
		}
		for n := range rep.Header { // members memberOrder missed
			if !slices.Contains(order, n) {
				order = append(order, n)
			}
		}
		for _, n := range order {
			if v, ok := rep.Header[n]; ok {
				rows = append(rows, [2]string{n, displayValue(v)})
			}
		}
		writeRows(&b, rows)
	}

	if rep.Claims != nil {
		b.WriteString("\nClaims\n")
		var rows [][2]string
		for _, n := range knownClaims {
			v, ok := rep.Claims[n]
			if !ok {
				continue
			}
			switch n {
			case "exp", "iat", "nbf":
				s := displayValue(v)
				for _, t := range rep.Times {
					if t.Claim == n {
						s = t.Time + "  " + t.Relative
					}
				}
				rows = append(rows, [2]string{n, s})
			case "scope", "scp":
				rows = append(rows, [2]string{n, displayValue(v)})
				if rep.Scope != nil && rep.Scope.Claim == n {
					for _, line := range scopeLines(rep.Scope) {
						rows = append(rows, [2]string{"", line})
					}
				}
			case "fhirContext":
				items, isArr := v.([]any)
				if !isArr || len(items) == 0 {
					rows = append(rows, [2]string{n, displayValue(v)})
					continue
				}
				for i, it := range items {
					label := ""
					if i == 0 {
						label = n
					}
					rows = append(rows, [2]string{label, displayValue(it)})
				}
			default:
				rows = append(rows, [2]string{n, displayValue(v)})
			}
		}
		var others []string
		for n := range rep.Claims {
			if !slices.Contains(knownClaims, n) {
				others = append(others, n)
			}
		}
		slices.Sort(others)
		if len(rep.Claims) == 0 {
			rows = append(rows, [2]string{"(none)", ""})
		}
		writeRows(&b, rows)
		if len(others) > 0 {
			b.WriteString("\nOther claims\n")
			rows = rows[:0]
			for _, n := range others {
				rows = append(rows, [2]string{oneLine(n), displayValue(rep.Claims[n])})
			}
			writeRows(&b, rows)
		}
	}

	b.WriteString("\nProblems\n")
	if len(rep.Problems) == 0 {
		b.WriteString("  none found\n")
	}
	for _, p := range rep.Problems {
		label := p.Severity
		if p.Severity == sevDanger {
			label = "DANGER"
		}
		fmt.Fprintf(&b, "  %-7s  %s: %s\n", label, oneLine(p.Field), oneLine(p.Message))
	}

	if c := rep.Check; c != nil {
		writeCheckText(&b, c)
	}
	_, _ = io.WriteString(w, b.String())
}

// scopeLines summarizes what a scope claim grants.
func scopeLines(g *scopeGrant) []string {
	var out []string
	if len(g.Effective) == 0 {
		out = append(out, "grants no access to FHIR data")
	}
	width := 0
	for _, e := range g.Effective {
		width = max(width, len(e.Context)+1+len(e.ResourceType))
	}
	for _, e := range g.Effective {
		line := fmt.Sprintf("grants %-*s  %s", width, e.Context+"/"+e.ResourceType, e.Permissions)
		for _, c := range e.Constrained {
			line += fmt.Sprintf("; %s only where %s", c.Letter, strings.Join(c.AnyOf, " or "))
		}
		out = append(out, line)
	}
	for _, inv := range g.Invalid {
		out = append(out, fmt.Sprintf("invalid %s: %s", displayValue(inv.Scope), oneLine(inv.Error)))
	}
	return out
}

// displayValue shows a header or claim value on one line: a string as
// it is (control characters escaped), anything else as compact JSON,
// shortened when long.
func displayValue(v any) string {
	s, isStr := v.(string)
	if !isStr {
		s = compactJSON(v)
	} else if s == "" || strings.TrimSpace(s) != s {
		s = fmt.Sprintf("%q", s)
	}
	return truncate(oneLine(s), 200)
}

// writeRows writes label-value rows, labels aligned, control characters
// escaped (labels and values may come from the token).
func writeRows(b *strings.Builder, rows [][2]string) {
	width := 0
	for _, r := range rows {
		width = max(width, len(oneLine(r[0])))
	}
	for _, r := range rows {
		b.WriteString(strings.TrimRight(fmt.Sprintf("  %-*s  %s", width, oneLine(r[0]), oneLine(r[1])), " ") + "\n")
	}
}

func writeCheckText(b *strings.Builder, c *checkReport) {
	fmt.Fprintf(b, "\nServer check: would %s accept it?\n", oneLine(c.BaseURL))
	var rows [][2]string
	if c.Issuer != "" {
		rows = append(rows, [2]string{"issuer", oneLine(c.Issuer)})
	}
	if c.Keys != "" {
		keys := oneLine(c.Keys)
		if len(c.KeyIDs) > 0 {
			keys += " (kid " + strings.Join(c.KeyIDs, ", ") + ")"
		}
		rows = append(rows, [2]string{"keys", keys})
	}
	if c.Introspection != "" {
		rows = append(rows, [2]string{"introspection", oneLine(c.Introspection)})
	}
	switch c.Outcome {
	case outcomeAccepted:
		how := "verified as a JWT"
		if c.Introspected {
			how = "introspected"
		}
		rows = append(rows, [2]string{"verdict", "ACCEPTED (" + how + ")"})
		if t := c.Token; t != nil {
			for _, r := range [][2]string{
				{"subject", t.Subject}, {"client", t.ClientID}, {"patient", t.Patient},
				{"encounter", t.Encounter}, {"fhirUser", t.FHIRUser}, {"scopes", t.Scopes}, {"expires", t.ExpiresAt},
			} {
				if r[1] != "" {
					rows = append(rows, [2]string{r[0], displayValue(r[1])})
				}
				if r[0] == "scopes" && t.Scope != nil {
					for _, line := range scopeLines(t.Scope) {
						rows = append(rows, [2]string{"", line})
					}
				}
			}
			for _, u := range t.Unreadable {
				rows = append(rows, [2]string{"unreadable", oneLine(u) + " (its grants are refused)"})
			}
		}
	default:
		verdict := "REFUSED"
		if c.Outcome == outcomeUnavailable {
			verdict = "NO VERDICT"
		}
		verdict += fmt.Sprintf(": %d", c.Status)
		if c.Error != "" {
			verdict += " " + c.Error
		}
		if c.Description != "" {
			verdict += fmt.Sprintf(" %q", c.Description)
		}
		rows = append(rows, [2]string{"verdict", verdict})
		if c.Explanation != "" {
			rows = append(rows, [2]string{"why", c.Explanation})
		}
		if c.Cause != "" {
			rows = append(rows, [2]string{"cause", oneLine(c.Cause)})
		}
	}
	for _, n := range c.Notes {
		rows = append(rows, [2]string{"note", oneLine(n)})
	}
	writeRows(b, rows)

	if p := c.Request; p != nil {
		fmt.Fprintf(b, "\nRequest preview: %s\n", oneLine(p.Request))
		rows = rows[:0]
		if p.Allowed {
			rows = append(rows, [2]string{"verdict", "ALLOWED: the FHIR server receives " + oneLine(p.Forwarded)})
		} else {
			v := fmt.Sprintf("REFUSED: %d", p.Status)
			if p.Error != "" {
				v += " " + p.Error
			}
			rows = append(rows, [2]string{"verdict", v})
			if p.ScopeNeeded != "" {
				rows = append(rows, [2]string{"scope needed", oneLine(p.ScopeNeeded)})
			}
		}
		if p.Reason != "" {
			rows = append(rows, [2]string{"why", oneLine(p.Reason)})
		}
		for _, r := range [][2]string{{"interaction", p.Interaction}, {"grant", p.Context}, {"held to", p.Compartment}} {
			if r[1] != "" {
				rows = append(rows, [2]string{r[0], oneLine(r[1])})
			}
		}
		if p.Narrowed {
			rows = append(rows, [2]string{"narrowed", "yes: the guard added parameters to the search"})
		}
		if p.Allowed && p.Interaction != "" {
			rows = append(rows, [2]string{"then", "the guard verifies the response: resources the token may not see are withheld (the preview's stub server holds no data)"})
		}
		writeRows(b, rows)
	}
}
