package smarttest

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

// launchRecord is a registered EHR launch: its context and, for the launch
// simulator's values, the limits on its use.
type launchRecord struct {
	ctx     LaunchContext
	once    bool      // consumed by the first authorization request that uses it
	expires time.Time // zero: never
	origin  string    // non-empty: the redirect URI must have this origin
}

// maxLaunchURI bounds the launch_uri parameter of the launch simulator.
const maxLaunchURI = 2048

// EHRLaunchURL returns a URL of the EHR launch simulator that, opened in a
// browser, launches the app at launchURI as an EHR would (SMART App Launch
// "EHR launch"): the simulator registers a launch context for patient
// (Config.Patient when empty) and encounter (none when empty) and
// redirects to launchURI with iss (the FHIR base) and launch added to its
// query.
//
// The simulator is GET <issuer>/launch with the parameters
//
//	launch_uri  the app's launch URL: absolute http(s), no user info or
//	            fragment, no iss or launch parameter of its own; its origin
//	            must be the origin of a registered redirect URI. Required.
//	patient     the patient id of the context; absent: Config.Patient;
//	            empty: no patient.
//	encounter   the encounter id of the context; absent or empty: none.
//
// A launch value it makes can be used once, within
// five minutes, and only by an authorization request whose
// redirect URI has the origin of launch_uri. Only launch URLs at the
// origin of a registered redirect URI are accepted, so that the simulator
// is not an open redirector. Anyone who can reach the simulator can start
// a launch for any patient: it is a test fixture, like the rest of the
// package.
func (s *Server) EHRLaunchURL(launchURI, patient, encounter string) string {
	q := url.Values{"launch_uri": {launchURI}}
	if patient != "" {
		q.Set("patient", patient)
	}
	if encounter != "" {
		q.Set("encounter", encounter)
	}
	return s.endpoint(pathLaunch) + "?" + q.Encode()
}

// launchRefused answers a launch simulator request that cannot be
// redirected.
func launchRefused(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write([]byte("smarttest: launch refused: " + msg + "\n"))
}

func (s *Server) handleLaunch(w http.ResponseWriter, r *http.Request) {
	q, err := parseParams(r.URL.RawQuery)
	if err != nil {
		launchRefused(w, "malformed or repeated parameters")
		return
	}
	target, origin, msg := s.checkLaunchURI(q.Get("launch_uri"))
	if msg != "" {
		launchRefused(w, msg)
		return
	}
	lc := LaunchContext{Patient: s.cfg.Patient, Encounter: q.Get("encounter"), NeedPatientBanner: true}
	if q.Has("patient") {
		lc.Patient = q.Get("patient")
	}
	if lc.Patient != "" && !validID(lc.Patient) {
		launchRefused(w, "patient is not a FHIR id")
		return
	}
	if lc.Encounter != "" && !validID(lc.Encounter) {
		launchRefused(w, "encounter is not a FHIR id")
		return
	}
	id := randomString(24)
	rec := &launchRecord{ctx: lc, once: true, expires: s.cfg.Now().Add(simulatedLaunchLifetime), origin: origin}
	s.mu.Lock()
	s.sweepLocked()
	s.launches[id] = rec
	s.mu.Unlock()
	tq, _ := url.ParseQuery(target.RawQuery) // checked by checkLaunchURI
	tq.Set("iss", s.fhirBase)
	tq.Set("launch", id)
	target.RawQuery = tq.Encode()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, target.String(), http.StatusFound)
}

// checkLaunchURI validates the launch_uri of the launch simulator and
// returns it parsed with its origin, or a reason to refuse it.
func (s *Server) checkLaunchURI(raw string) (target *url.URL, origin, refusal string) {
	if raw == "" {
		return nil, "", "launch_uri is required"
	}
	if len(raw) > maxLaunchURI {
		return nil, "", "launch_uri too long"
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, "", "launch_uri is not a URL"
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, "", "launch_uri must be an absolute http(s) URL"
	case u.Host == "" || u.Opaque != "":
		return nil, "", "launch_uri must be an absolute http(s) URL"
	case u.User != nil:
		return nil, "", "launch_uri may not carry user info"
	case strings.Contains(raw, "#"):
		return nil, "", "launch_uri may not carry a fragment"
	}
	tq, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, "", "launch_uri has a malformed query"
	}
	if tq.Has("iss") || tq.Has("launch") {
		return nil, "", "launch_uri may not carry iss or launch parameters of its own"
	}
	origin = originOf(raw)
	s.mu.Lock()
	known := origin != "" && s.origins[origin]
	s.mu.Unlock()
	if !known {
		return nil, "", "the origin of launch_uri is not the origin of a registered redirect URI"
	}
	return u, origin, ""
}

// takeLaunch resolves the launch value of an authorization request whose
// redirect URI is redirectURI; a single-use value is consumed. It returns
// nil and a reason when the value cannot be used.
func (s *Server) takeLaunch(value, redirectURI string) (*LaunchContext, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.launches[value]
	if rec == nil {
		return nil, "unknown launch value"
	}
	if !rec.expires.IsZero() && !s.cfg.Now().Before(rec.expires) {
		delete(s.launches, value)
		return nil, "launch value expired"
	}
	if rec.origin != "" && originOf(redirectURI) != rec.origin {
		return nil, "the launch value was issued for an app at another origin"
	}
	if rec.once {
		delete(s.launches, value)
	}
	lc := rec.ctx
	return &lc, ""
}
