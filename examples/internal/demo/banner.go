package demo

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/fhirguard/fhirguard/internal/statuswriter"
	"github.com/fhirguard/fhirguard/smarttest"
)

// Scopes of the banner's tokens.
const (
	PatientScopes = "launch/patient patient/*.rs"
	SystemScopes  = "system/*.rs"
)

// tokenLifetime is the lifetime of the banner's tokens (the middleware
// refuses tokens living longer than an hour).
const tokenLifetime = 55 * time.Minute

// Shell variables the banner sets to its tokens; its curl commands use
// them, so that each token is printed once.
const (
	PatientTokenVar = "PATIENT_TOKEN"
	SystemTokenVar  = "SYSTEM_TOKEN"
)

// prepareBanner mints the banner's tokens (embedded server only) and
// builds its curl commands. Every command ends the body with a newline on
// the terminal: -w '\n' unless the body ends with one already (the
// discovery documents do).
func (s *Server) prepareBanner() error {
	base := s.base.String()
	s.curls = []Curl{{Title: "The SMART configuration (public, no token)", Status: http.StatusOK,
		Command: "curl -sS " + quote(s.discovery)}}
	if s.auth == nil {
		s.curls = append(s.curls, Curl{Title: "Any FHIR request without a token is refused", Status: http.StatusUnauthorized,
			Command: `curl -sS -i -w '\n' ` + quote(base+"/Patient")})
		return nil
	}
	var err error
	s.patient, err = s.auth.MintToken(smarttest.TokenOptions{ClientID: "demo-app", Scopes: PatientScopes,
		Patient: "123", Lifetime: tokenLifetime})
	if err != nil {
		return err
	}
	s.system, err = s.auth.MintToken(smarttest.TokenOptions{ClientID: "demo-backend", Scopes: SystemScopes,
		Lifetime: tokenLifetime})
	if err != nil {
		return err
	}
	// The variable is expanded inside double quotes: one word, whatever
	// the token holds, in sh, bash and zsh alike.
	bearer := func(variable string) string { return `-H "Authorization: Bearer $` + variable + `" ` }
	own := http.StatusOK
	if s.cfg.Empty {
		own = http.StatusNotFound
	}
	const body, head = `curl -sS -w '\n' `, `curl -sS -i -w '\n' `
	s.curls = append(s.curls,
		Curl{Title: "Patient token: its own patient", Status: own,
			Command: body + bearer(PatientTokenVar) + quote(base+"/Patient/123")},
		Curl{Title: "Patient token: a search, narrowed to patient 123's laboratory results", Status: http.StatusOK,
			Command: body + bearer(PatientTokenVar) + quote(base+"/Observation?category=laboratory")},
		Curl{Title: "Patient token: another patient's record is refused (404, as if it did not exist)", Status: http.StatusNotFound,
			Command: head + bearer(PatientTokenVar) + quote(base+"/Patient/456")},
		Curl{Title: "Patient token: a delete is refused (403 insufficient_scope: the token only reads and searches)", Status: http.StatusForbidden,
			Command: head + "-X DELETE " + bearer(PatientTokenVar) + quote(base+"/Observation/lab1")},
		Curl{Title: "System token: a search across patients", Status: http.StatusOK,
			Command: body + bearer(SystemTokenVar) + quote(base+"/Patient?name=smith")},
		Curl{Title: "No token: refused (401)", Status: http.StatusUnauthorized,
			Command: head + quote(base+"/Patient")},
	)
	return nil
}

// quote single-quotes a word for POSIX shells (and bash and zsh, where
// nothing inside single quotes is special either).
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (s *Server) printBanner(w io.Writer) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nfhirguard demo FHIR server\n\n")
	fmt.Fprintf(&b, "  FHIR base:  %s\n", s.base)
	fmt.Fprintf(&b, "  discovery:  %s\n", s.discovery)
	if s.auth != nil {
		fmt.Fprintf(&b, "  issuer:     %s (embedded smarttest authorization server)\n", s.issuer)
	} else {
		fmt.Fprintf(&b, "  issuer:     %s (external)\n", s.issuer)
	}
	s.printInsecure(&b)
	if s.auth != nil {
		fmt.Fprintf(&b, "\nTokens: paste these two lines once into sh, bash or zsh; the commands below use them.\n")
		fmt.Fprintf(&b, "Patient 123 (%s) and system (%s), valid %v:\n\n", PatientScopes, SystemScopes, tokenLifetime)
		fmt.Fprintf(&b, "%s=%s\n%s=%s\n", PatientTokenVar, quote(s.patient), SystemTokenVar, quote(s.system))
	} else {
		fmt.Fprintf(&b, "\nTokens come from %s; send them as \"Authorization: Bearer <token>\".\n", s.issuer)
	}
	fmt.Fprintf(&b, "\nTry it")
	if s.cfg.PolicyFile != "" {
		fmt.Fprintf(&b, " (the statuses shown assume the policies in %s refuse none of these)", s.cfg.PolicyFile)
	}
	fmt.Fprintf(&b, ":\n")
	for _, c := range s.curls {
		fmt.Fprintf(&b, "\n# %s: HTTP %d\n%s\n", c.Title, c.Status, c.Command)
	}
	if s.auth != nil {
		s.printApps(&b)
	}
	fmt.Fprintf(&b, "\nStop with Ctrl-C.\n\n")
	_, _ = io.WriteString(w, b.String())
}

// printInsecure prints the one warning about everything insecure the demo
// turned on, each with the flags that turn it off.
func (s *Server) printInsecure(b *strings.Builder) {
	if len(s.insecureOn) == 0 {
		return
	}
	fmt.Fprintf(b, "\n  !! INSECURE, for local development only (never in production). Turned on:\n")
	for _, in := range s.insecureOn {
		fmt.Fprintf(b, "  !!   - %s: %s\n  !!     off: %s\n", in.setting, in.what, in.off)
	}
}

// logRequests logs one line per request: method, path (without the query,
// which may hold patient data), status, bytes and duration. Headers, and so
// tokens, are never logged.
func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statuswriter.Writer{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.Status == 0 {
			sw.Status = http.StatusOK
		}
		log.LogAttrs(r.Context(), slog.LevelInfo, "request", slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.Int("status", sw.Status), slog.Int64("bytes", sw.Bytes),
			slog.Duration("duration", time.Since(start).Round(time.Microsecond)))
	})
}

// printApps prints how a browser SMART app (npm fhirclient, for example)
// launches against the embedded authorization server.
func (s *Server) printApps(b *strings.Builder) {
	cfg := s.cfg
	fmt.Fprintf(b, "\nSMART apps (embedded authorization server; change with -app-redirect-uris, -app-launch-url, -app-confidential-secret, -patient, -consent):\n\n")
	fmt.Fprintf(b, "  client_id:      %s (public: PKCE S256, no secret)\n", AppClientID)
	if cfg.AppConfidentialSecret != "" {
		fmt.Fprintf(b, "  client_id:      %s (confidential: the secret given with -app-confidential-secret)\n", ConfidentialAppClientID)
	}
	for i, r := range cfg.AppRedirectURIs {
		label := "redirect URIs:"
		if i > 0 {
			label = ""
		}
		fmt.Fprintf(b, "  %-15s %s\n", label, r)
	}
	fmt.Fprintf(b, "  (matched exactly; npm fhirclient's default redirectUri is the app page's directory with a trailing slash)\n")
	origins := cfg.corsOrigins()
	fmt.Fprintf(b, "  CORS origins:   %s (token endpoint and FHIR API; add more with -cors-origins)\n", strings.Join(origins, " "))
	who := "approved automatically"
	if cfg.Consent {
		who = "shown on a consent page (approve or deny; standalone launches pick the patient there)"
	}
	fmt.Fprintf(b, "  requests:       %s; user %s\n", who, "Practitioner/9")
	fmt.Fprintf(b, "\nEHR launch: open this URL in a browser. Playing the EHR, it makes a single-use launch for patient %s\n", cfg.Patient)
	fmt.Fprintf(b, "and sends the browser to %s?iss=...&launch=... (change patient=, add &encounter=<id>;\n", cfg.AppLaunchURL)
	fmt.Fprintf(b, "its launch_uri= may name any page at the origin of a redirect URI):\n\n")
	fmt.Fprintf(b, "  %s\n", s.launchURL)
	pick := "launch/patient gets patient " + cfg.Patient
	if cfg.Consent {
		pick = "for launch/patient the consent page offers patient " + cfg.Patient
	}
	fmt.Fprintf(b, "\nStandalone launch, from a page of the app (%s):\n\n", pick)
	fmt.Fprintf(b, "  FHIR.oauth2.authorize({ iss: %q, clientId: %q, scope: %q })\n", s.base.String(), AppClientID, StandaloneScopes)
}
