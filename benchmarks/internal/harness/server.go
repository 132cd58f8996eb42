package harness

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/fhirguard/fhirguard/middleware"
)

// Mode says what stands in front of the benchmark FHIR handler.
type Mode uint8

// Server modes.
const (
	// Bare serves the FHIR handler alone: the baseline.
	Bare Mode = iota + 1
	// Guarded serves it behind middleware.Guard (CORS, public endpoints,
	// Authenticate, Authorize).
	Guarded
)

// String returns "bare" or "guard".
func (m Mode) String() string {
	switch m {
	case Bare:
		return "bare"
	case Guarded:
		return "guard"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// ParseMode parses the names String returns.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "bare":
		return Bare, nil
	case "guard":
		return Guarded, nil
	}
	return 0, fmt.Errorf("harness: unknown server mode %q (want bare or guard)", s)
}

// ServerConfig configures NewServer.
type ServerConfig struct {
	// Mode is Bare or Guarded. Required.
	Mode Mode
	// Issuer provides the key set a Guarded server trusts. Required for
	// Guarded.
	Issuer *Issuer
	// OnDecision, when set, is given every authentication outcome of a
	// Guarded server (middleware.AuthConfig.OnDecision).
	OnDecision func(middleware.AuthEvent)
}

// Server is the benchmark FHIR server: FHIRHandler, alone or behind the
// Guard. Close it to stop the Guard's background work.
type Server struct {
	http.Handler
	guard *middleware.Guard
}

// Close releases the Guard, if any.
func (s *Server) Close() {
	if s.guard != nil {
		s.guard.Close()
	}
}

// NewServer builds the benchmark server. A Guarded server accepts bearer
// tokens over plain HTTP (InsecureAllowHTTP): it is meant for loopback load
// tests only, where TLS would measure the TLS stack rather than the
// middleware. Refusals are not logged.
func NewServer(cfg ServerConfig) (*Server, error) {
	h := FHIRHandler()
	switch cfg.Mode {
	case Bare:
		return &Server{Handler: h}, nil
	case Guarded:
	default:
		return nil, fmt.Errorf("harness: unknown server mode %d", cfg.Mode)
	}
	if cfg.Issuer == nil {
		return nil, errors.New("harness: a guarded server needs an Issuer")
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	g, err := middleware.New(middleware.Config{
		Authorize: middleware.AuthorizeConfig{BaseURL: BaseURL, Logger: quiet},
		Auth: middleware.AuthConfig{
			Issuers:           []string{IssuerURL},
			PublicKeys:        cfg.Issuer.PublicKeys(),
			InsecureAllowHTTP: true,
			Logger:            quiet,
			OnDecision:        cfg.OnDecision,
		},
	})
	if err != nil {
		return nil, err
	}
	return &Server{Handler: g.Handler(h), guard: g}, nil
}

// ObservationJSON is the body FHIRHandler returns for GET
// /fhir/Observation/{id}: a laboratory result in patient 123's compartment.
func ObservationJSON(id string) []byte {
	return []byte(`{"resourceType":"Observation","id":"` + id + `","meta":{"versionId":"1","lastUpdated":"2024-01-01T00:00:00Z"},` +
		`"status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],` +
		`"code":{"coding":[{"system":"http://loinc.org","code":"2339-0","display":"Glucose"}]},"subject":{"reference":"Patient/123"},` +
		`"effectiveDateTime":"2024-01-01T10:00:00Z","valueQuantity":{"value":95.5,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"}}`)
}

// FHIRHandler is a minimal FHIR server for load tests: it answers a read of
// any Observation with ObservationJSON (subject Patient/123), a search of
// Observation with a one-entry searchset, and /metadata with a small
// CapabilityStatement. Anything else is 404. It does no authorisation of
// its own: that is the Guard's job.
func FHIRHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+BasePath+"/Observation/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		_, _ = w.Write(ObservationJSON(r.PathValue("id")))
	})
	mux.HandleFunc("GET "+BasePath+"/Observation", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		var b strings.Builder
		b.WriteString(`{"resourceType":"Bundle","type":"searchset","total":1,"entry":[{"fullUrl":"` + BaseURL + `/Observation/1","resource":`)
		b.Write(ObservationJSON("1"))
		b.WriteString(`,"search":{"mode":"match"}}]}`)
		_, _ = io.WriteString(w, b.String())
	})
	mux.HandleFunc("GET "+BasePath+"/metadata", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		_, _ = io.WriteString(w, `{"resourceType":"CapabilityStatement","status":"active","kind":"instance","fhirVersion":"4.0.1","format":["json"]}`)
	})
	return mux
}

// Scope strings of the load test's tokens.
const (
	// SystemScopes is a backend service's grant: no compartment, no
	// response verification.
	SystemScopes = "system/Observation.rs system/Patient.rs system/Condition.rs"
	// PatientScopes is a patient app's grant: Authorize holds it to the
	// token's patient and verifies every response.
	PatientScopes = "launch/patient openid fhirUser patient/Patient.rs patient/Observation.rs patient/Condition.rs"
)
