package middleware

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/fhirguard/fhirguard/compartment"
	"github.com/fhirguard/fhirguard/fhir"
	"github.com/fhirguard/fhirguard/fhirrest"
	"github.com/fhirguard/fhirguard/scope"
)

// defaultSharedTypes is the default of AuthorizeConfig.SharedTypes. It is
// never handed out, so no code outside the package can widen it.
var defaultSharedTypes = [...]string{"Medication", "Organization", "Location", "Practitioner", "PractitionerRole", "Substance"}

// defaultMaxResponseBytes is the default of AuthorizeConfig.MaxResponseBytes.
const defaultMaxResponseBytes = 32 << 20

// AuthorizeConfig configures the Guard's enforcement point
// (Config.Authorize), which classifies each request, checks the token's
// scopes and launch context, narrows searches, checks request bodies and
// verifies responses.
type AuthorizeConfig struct {
	// BaseURL is the absolute URL of the FHIR base, such as
	// "https://ehr.example.org/fhir". Its path is the prefix below which
	// requests are FHIR interactions; absolute references that start with it
	// (or with one of AlternateBaseURLs) name this server's resources.
	// Required.
	BaseURL string
	// AlternateBaseURLs are other absolute URLs under which the same server
	// is reached (their paths must equal BaseURL's).
	AlternateBaseURLs []string
	// UpstreamBaseURL is the base URL of the FHIR server behind a reverse
	// proxy (such as package gateway), whose path may differ from BaseURL's:
	// absolute references that start with it name this server's resources,
	// in request bodies and in anything a response rewriting missed. It is
	// never a prefix of FHIR interactions. Empty means none.
	UpstreamBaseURL string
	// FHIRVersion is the server's release: fhir.R4 (the default, also for
	// the zero value) or fhir.R5.
	FHIRVersion fhir.Release
	// DenyStatus is the status of a read of an instance outside the token's
	// compartment or constraints: 404 (default; indistinguishable from an
	// absent id) or 403.
	DenyStatus int
	// SharedTypes lists the types outside every patient compartment that
	// patient-scoped apps routinely need to read (what an Observation's
	// performer or a MedicationRequest's medication points to): patient
	// grants may read and search them (subject to the grant's type and
	// letters), never write them. nil means the default list: Medication,
	// Organization, Location, Practitioner, PractitionerRole and Substance;
	// to extend it, list those and yours. An empty non-nil slice allows
	// none. New copies the slice: changing it afterwards changes nothing.
	SharedTypes []string
	// IncludeLinkedPatients makes Patient.link a path into a patient's
	// compartment, as the FHIR CompartmentDefinition lists it: a patient
	// token then also sees the Patient resources that link to its patient.
	// By default a patient token sees its own Patient resource only (no
	// transitive access through links; SMART asks servers to document this).
	IncludeLinkedPatients bool
	// LiteralCompartments follows the FHIR CompartmentDefinition
	// literally: a resource is visible to a patient-held token when any of
	// its compartment links names the patient, even if it also names other
	// patients (an Observation about another patient performed by this one,
	// a Group listing several). By default such resources are withheld like
	// any resource outside the compartment, for reads, searches, includes,
	// history and writes alike; the operator log says which reference
	// withheld them. Writes are always refused when they name another
	// patient, whatever this setting.
	LiteralCompartments bool
	// NarrowingHonoured declares that the wrapped server applies every
	// search parameter the guard adds to confine a search to the patient's
	// compartment (docs/primary-patient-links.md lists them) and never
	// ignores one. Without it, the paging links of a narrowed search are
	// passed on only when the Bundle's self link, where FHIR servers state
	// the parameters they applied, binds the search to the patient; else
	// they are removed (the client sees the first page): a server that
	// ignored the parameter would page through, and so count, other
	// patients' resources.
	NarrowingHonoured bool
	// EnforceEncounter holds tokens that carry an encounter in their launch
	// context to that encounter: every access held to a patient (patient/
	// grants, user/ grants of a Patient fhirUser) also requires the
	// resource to be in the Encounter compartment of the token's encounter.
	// The patient's own Patient resource and the shared types stay readable;
	// other types outside the Encounter compartment are not. Searches are
	// narrowed on the encounter as on the patient; reads, includes,
	// history, writes, Bundles and operations are verified alike. SMART
	// says an encounter in the launch context does not by itself restrict
	// access: this is an opt-in for deployments that want it. Grants not
	// held to a patient (system/, user/ of a practitioner) are unaffected.
	EnforceEncounter bool
	// RequireEncounter, with EnforceEncounter, refuses patient-held access
	// to tokens whose launch context has no encounter (403), instead of
	// holding them to the patient alone.
	RequireEncounter bool
	// Policies run after scopes and compartments have allowed a request; each
	// may deny, none may widen. A ResourcePolicy also judges every resource
	// returned or written. New copies the slice: replacing an
	// element afterwards changes nothing.
	Policies []Policy
	// StrictGranularSearch refuses a search under granular (constrained)
	// scopes whose query does not already hold every constraint of one
	// granted constraint set (ONC allows treating a query syntactically
	// outside the granted scopes as unauthorised). By default the guard
	// adds the constraint parameters to the search when the grant has one
	// constraint set (or several on the same parameter, as an OR list).
	// Results are verified either way: resources outside the constraints
	// are removed from the response.
	StrictGranularSearch bool
	// Operations is the table of permitted extended operations; nil means
	// DefaultOperations(). Operations not listed are refused, and $graphql
	// is always refused. New copies the table, Levels and Types
	// included: changing it afterwards changes nothing.
	Operations []Operation
	// MaxResponseBytes caps a response body buffered for verification
	// (default 32 MiB); a larger one is refused with 502.
	MaxResponseBytes int64
	// MaxBodyBytes caps a request body Authorize reads to check a write
	// (default 16 MiB, or half of MaxResponseBytes when that is smaller).
	// It must be below MaxResponseBytes, so that whatever is written
	// through the guard can be read back through it: request bodies also
	// nest at most 100 levels, responses at most 128.
	MaxBodyBytes int64
	// Logger receives a record for every refusal and every resource removed
	// from a response. Default: slog.Default().
	Logger *slog.Logger
	// OnDecision, when set, is called once per request with the decision
	// (nil when the request was refused before one was made) and the
	// refusal (nil when allowed). For metrics and audit; it must not block.
	OnDecision func(r *http.Request, d *Decision, refusal error)
}

// authorizer is the policy enforcement point: it classifies each request,
// checks the token's scopes and launch context, narrows searches, checks
// request bodies and verifies responses. Build it with newAuthorizer.
type authorizer struct {
	classifier *fhirrest.Classifier
	checker    *compartment.Checker
	patientDef *compartment.Definition
	realm      string
	// resourceMetadata: as Authenticator.resourceMetadata.
	resourceMetadata string
	basePath         string
	bases            []string // absolute base URLs, without trailing slash
	denyStatus       int
	shared           map[string]bool
	maxResp          int64
	maxBody          int64
	policies         []Policy
	resPols          []ResourcePolicy
	log              *slog.Logger
	onDecision       func(*http.Request, *Decision, error)

	excludeLinked     bool
	literal           bool
	narrowingHonoured bool
	enforceEncounter  bool
	requireEncounter  bool
	encounterDef      *compartment.Definition
	ops               map[string]*Operation
	strictGranular    bool
	spVersion         fhir.Release
}

// newAuthorizer validates cfg and returns its authorizer.
func newAuthorizer(cfg AuthorizeConfig) (*authorizer, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("middleware: AuthorizeConfig.BaseURL %q must be an absolute http(s) URL", cfg.BaseURL)
	}
	a := &authorizer{
		realm:      strings.TrimRight(cfg.BaseURL, "/"),
		basePath:   strings.TrimRight(u.EscapedPath(), "/"),
		denyStatus: cfg.DenyStatus,
		maxResp:    cfg.MaxResponseBytes,
		maxBody:    cfg.MaxBodyBytes,
		policies:   slices.Clone(cfg.Policies), // the caller keeps its slice
		log:        cfg.Logger,
		onDecision: cfg.OnDecision,
		shared:     map[string]bool{},

		excludeLinked:     !cfg.IncludeLinkedPatients,
		literal:           cfg.LiteralCompartments,
		narrowingHonoured: cfg.NarrowingHonoured,
		enforceEncounter:  cfg.EnforceEncounter,
		requireEncounter:  cfg.RequireEncounter,
	}
	if a.requireEncounter && !a.enforceEncounter {
		return nil, errors.New("middleware: AuthorizeConfig.RequireEncounter needs EnforceEncounter")
	}
	switch a.denyStatus {
	case 0:
		a.denyStatus = http.StatusNotFound
	case http.StatusNotFound, http.StatusForbidden:
	default:
		return nil, fmt.Errorf("middleware: AuthorizeConfig.DenyStatus must be 404 or 403, not %d", cfg.DenyStatus)
	}
	if a.maxResp <= 0 {
		a.maxResp = defaultMaxResponseBytes
	}
	switch {
	case a.maxBody <= 0:
		a.maxBody = min(16<<20, a.maxResp/2)
	case a.maxBody >= a.maxResp:
		return nil, fmt.Errorf("middleware: AuthorizeConfig.MaxBodyBytes (%d) must be below MaxResponseBytes (%d), so that what is written can be read back", a.maxBody, a.maxResp)
	}
	if err := checkLogger("AuthorizeConfig.Logger", a.log); err != nil {
		return nil, err
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	version := cfg.FHIRVersion
	if version == 0 {
		version = fhir.R4
	}
	a.bases = append(a.bases, a.realm)
	for _, b := range cfg.AlternateBaseURLs {
		if au, err := url.Parse(b); err != nil || strings.TrimRight(au.EscapedPath(), "/") != a.basePath {
			return nil, fmt.Errorf("middleware: AuthorizeConfig.AlternateBaseURLs: %q must be an absolute http(s) URL with the path of BaseURL, %q", b, a.basePath)
		}
		a.bases = append(a.bases, strings.TrimRight(b, "/"))
	}
	if cfg.UpstreamBaseURL != "" {
		if uu, err := url.Parse(cfg.UpstreamBaseURL); err != nil || (uu.Scheme != "https" && uu.Scheme != "http") || uu.Host == "" || uu.RawQuery != "" || uu.Fragment != "" || uu.User != nil {
			return nil, fmt.Errorf("middleware: AuthorizeConfig.UpstreamBaseURL %q must be an absolute http(s) URL", cfg.UpstreamBaseURL)
		}
		a.bases = append(a.bases, strings.TrimRight(cfg.UpstreamBaseURL, "/"))
	}
	if a.checker, err = compartment.New(compartment.Config{FHIRVersion: version, BaseURLs: a.bases, IncludeLinkedPatients: cfg.IncludeLinkedPatients}); err != nil {
		return nil, fmt.Errorf("middleware: %w", err)
	}
	a.patientDef = a.checker.Definition(compartment.Patient)
	a.encounterDef = a.checker.Definition(compartment.Encounter)
	a.spVersion = version
	a.strictGranular = cfg.StrictGranularSearch
	if a.classifier, err = fhirrest.New(fhirrest.Config{Base: a.basePath, BaseURL: a.realm, MaxBundleBytes: a.maxBody}); err != nil {
		return nil, fmt.Errorf("middleware: %w", err)
	}
	shared := cfg.SharedTypes
	if shared == nil {
		shared = defaultSharedTypes[:] // only read: a.shared is a copy
	}
	for _, t := range shared {
		if !fhir.IsResourceType(t) {
			return nil, fmt.Errorf("middleware: SharedTypes: %q is not a resource type", t)
		}
		if _, member := a.patientDef.Resource(t); member || t == "Patient" {
			return nil, fmt.Errorf("middleware: SharedTypes: %q is in the Patient compartment", t)
		}
		a.shared[t] = true
	}
	if err := a.setOperations(cfg.Operations); err != nil {
		return nil, err
	}
	for _, p := range a.policies {
		if p == nil || isNil(p) {
			return nil, fmt.Errorf("middleware: AuthorizeConfig.Policies holds a nil Policy (%T)", p)
		}
		if rp, ok := p.(ResourcePolicy); ok {
			a.resPols = append(a.resPols, rp)
		}
	}
	return a, nil
}

// Handler wraps next, the FHIR server, with the enforcement point.
func (a *authorizer) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.serve(next, w, r)
	})
}

// access is one way the token grants the interaction: a context, how its
// scopes grant the permission, and the compartment it is held to.
type access struct {
	ctx       scope.Context
	grant     scope.Grant
	patient   string // the Patient compartment id; "" when none
	encounter string // the Encounter compartment id (EnforceEncounter); "" when none
}

// open reports whether the access needs no verification at all.
func (ac *access) open() bool { return ac.patient == "" && ac.grant.Unconstrained }

// refusal is an error answered to the client.
type refusal struct {
	status int
	ae     *AuthError // for 400, 401, 403 and 503
	msg    string     // for other statuses
	cause  error
}

func (e *refusal) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%d: %s: %v", e.status, e.msg, e.cause)
	}
	return fmt.Sprintf("%d: %s", e.status, e.msg)
}

func (e *refusal) Unwrap() error { return e.cause }

func forbidden(scopeNeeded, desc string) *refusal {
	return &refusal{status: http.StatusForbidden, msg: desc, ae: &AuthError{
		Status: http.StatusForbidden, Code: CodeInsufficientScope, Description: desc, scopeNeeded: scopeNeeded,
	}}
}

func badRequest(desc string, cause error) *refusal {
	return &refusal{status: http.StatusBadRequest, msg: desc, cause: cause, ae: invalidRequest(desc, cause)}
}

func statusRefusal(status int, desc string, cause error) *refusal {
	return &refusal{status: status, msg: desc, cause: cause}
}

// write renders the refusal: RFC 6750 for 400/401/403, an OperationOutcome
// in every case.
func (a *authorizer) write(w http.ResponseWriter, e *refusal) {
	if e.ae != nil {
		writeError(w, challengeInfo{a.realm, a.resourceMetadata}, e.ae)
		return
	}
	writeOutcome(w, e.status, e.msg)
}

// writeOutcome writes an OperationOutcome with a status that is not an
// RFC 6750 error.
func writeOutcome(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/fhir+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	body := operationOutcome(issueCode(status), msg)
	h.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// notFound is the answer for instances the token may not see: identical
// for absent and hidden resources.
func (a *authorizer) notFound() *refusal {
	if a.denyStatus == http.StatusForbidden {
		return &refusal{status: http.StatusForbidden, msg: "access to the resource is not permitted",
			ae: &AuthError{Status: http.StatusForbidden, Code: CodeInsufficientScope, Description: "access to the resource is not permitted"}}
	}
	return statusRefusal(http.StatusNotFound, "resource not found", nil)
}

func (a *authorizer) refuse(w http.ResponseWriter, r *http.Request, d *Decision, e *refusal) {
	a.log.LogAttrs(r.Context(), slog.LevelInfo, "fhirguard: request refused",
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", e.status), slog.String("reason", e.Error()))
	if a.onDecision != nil {
		a.onDecision(r, d, e)
	}
	closeUnreadBody(w, r)
	a.write(w, e)
}

func (a *authorizer) serve(next http.Handler, w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodOptions {
		// CORS preflights are answered by the CORS middleware; any OPTIONS
		// that gets here is answered without the FHIR handler.
		w.Header().Set("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	it, err := a.classifier.Classify(r)
	if err != nil {
		if errors.Is(err, fhirrest.ErrWellKnown) {
			// The Guard serves the well-known documents it is given and
			// answers the other well-known paths before authentication;
			// none of them reaches the FHIR handler.
			a.refuse(w, r, nil, statusRefusal(http.StatusNotFound, "no such well-known document", err))
			return
		}
		status := fhirrest.StatusCode(err)
		switch status {
		case 0:
			a.refuse(w, r, nil, badRequest("the request could not be read", err))
		case http.StatusBadRequest:
			// The classifier's errors describe the client's own request
			// (for a Bundle, which member broke the rules), never a secret.
			a.refuse(w, r, nil, badRequest("not a valid FHIR request: "+strings.TrimPrefix(err.Error(), "fhirrest: "), err))
		default:
			a.refuse(w, r, nil, statusRefusal(status, http.StatusText(status), err))
		}
		return
	}
	if it.Kind == fhirrest.Capabilities {
		next.ServeHTTP(w, r)
		return
	}
	ctx := r.Context()
	var tok *Token
	var link *decisionLink
	if ac, ok := ctx.(*authContext); ok {
		// Authenticate's context, as it made it: read without Value's
		// switch over every key.
		tok, link = ac.e.tok, &ac.link
	} else {
		tok, _ = TokenFromContext(ctx)
		link, _ = ctx.Value(linkKey{}).(*decisionLink)
	}
	if tok == nil || tok.Scopes == nil {
		// Authorize without Authenticate in front: fail closed.
		closeUnreadBody(w, r)
		writeError(w, challengeInfo{a.realm, a.resourceMetadata}, unauthenticated())
		return
	}
	x := exchangePool.Get().(*exchange)
	// Pooled exchanges are zero but for their Decision (the deferred reset
	// below), so only the request's fields are set.
	x.a, x.next, x.w, x.r, x.tok = a, next, w, r, tok
	defer x.release()
	if link != nil {
		// The token's context answers DecisionFromContext through its link:
		// the handler gets the request as it came, and the Decision is
		// allocated only when something may keep it (decisionLink).
		d := x.dbuf
		if d == nil {
			d = new(Decision)
			x.dbuf = d
		}
		d.Interaction = it
		if link.attach(d) {
			x.d, x.link = d, link
		}
	}
	if x.link == nil {
		dc := &decisionContext{Context: r.Context()}
		dc.d.Interaction = it
		x.d, x.dctx = &dc.d, dc
	}
	if e := x.authorize(); e != nil {
		a.refuse(w, r, x.hookDecision(), e)
		return
	}
	if a.onDecision != nil {
		a.onDecision(r, x.published(), nil)
	}
}

// exchangePool recycles the per-request state of serve; nothing keeps a
// pointer to an exchange after serve returns, nor to its Decision unless it
// was published (release).
var exchangePool = sync.Pool{New: func() any { return new(exchange) }}

// neededScope names the scope that would have allowed the request, in the
// token's own context when it has resource scopes of only one kind.
func neededScope(tok *Token, typ string, p scope.Permission) string {
	ctx := scope.Patient
	switch {
	case tok.Scopes.HasContext(scope.Patient):
	case tok.Scopes.HasContext(scope.User):
		ctx = scope.User
	case tok.Scopes.HasContext(scope.System):
		ctx = scope.System
	}
	if typ == "" {
		typ = "*"
	}
	return ctx.String() + "/" + typ + "." + p.String()
}

// patientOf returns the patient a context holds the token to: the token's
// patient for patient grants, X for user grants whose fhirUser is
// Patient/X. ok is false when a patient grant has no valid patient.
func (a *authorizer) patientOf(tok *Token, ctx scope.Context) (id string, ok bool) {
	switch ctx {
	case scope.Patient:
		if tok.Patient == "" || !fhir.ValidID(tok.Patient) {
			return "", false
		}
		return tok.Patient, true
	case scope.User:
		if tok.badFHIRUser {
			return "", false // whom the grant is held to is unknown
		}
		if id, isPatient := a.fhirUserPatient(tok.FHIRUser); isPatient {
			if !fhir.ValidID(id) {
				return "", false
			}
			return id, true
		}
	}
	return "", true
}

// fhirUserPatient reports whether fhirUser names a Patient ("Patient/X" or
// "<base>/Patient/X" for any base: the user is a patient wherever the
// record lives) and returns X.
func (a *authorizer) fhirUserPatient(fhirUser string) (string, bool) {
	if fhirUser == "" {
		return "", false
	}
	ref := fhirUser
	if i := strings.LastIndex(ref, "/Patient/"); i >= 0 {
		ref = ref[i+1:]
	}
	id, ok := strings.CutPrefix(ref, "Patient/")
	if !ok {
		return "", false
	}
	return id, true
}

// accesses appends to dst how the token grants permission p on type t,
// broadest context first. missing is true when a patient grant exists but
// the token has no usable patient.
func (a *authorizer) accesses(tok *Token, t scope.TypeID, p scope.Permission, dst []access) (out []access, missing bool) {
	out = dst
	for _, ctx := range [...]scope.Context{scope.System, scope.User, scope.Patient} {
		g := tok.Scopes.Lookup(ctx, t, p)
		if !g.Allowed {
			continue
		}
		id, ok := a.patientOf(tok, ctx)
		if !ok {
			missing = true
			continue
		}
		ac := access{ctx: ctx, grant: g, patient: id}
		if id != "" && a.enforceEncounter {
			switch {
			case tok.Encounter != "" && fhir.ValidID(tok.Encounter):
				ac.encounter = tok.Encounter
			case tok.Encounter != "" || a.requireEncounter || tok.badEncounter:
				missing = true // no usable encounter
				continue
			}
		}
		if ac.open() {
			return append(dst, ac), false
		}
		out = append(out, ac)
	}
	return out, missing
}

// isOpen reports whether one of the accesses needs no verification.
func isOpen(acs []access) bool {
	return len(acs) == 1 && acs[0].open()
}

// commonPatient returns the patient every access is held to, or "" when
// some access is not held to a patient or they differ.
func commonPatient(acs []access) string {
	if len(acs) == 0 {
		return ""
	}
	id := acs[0].patient
	for _, ac := range acs[1:] {
		if ac.patient != id {
			return ""
		}
	}
	return id
}

func (d *Decision) record(acs []access) {
	if len(acs) == 0 {
		return
	}
	d.Context = acs[0].ctx
	d.Grant = acs[0].grant
	if id := commonPatient(acs); id != "" {
		d.CompartmentType, d.CompartmentID = "Patient", id
	}
}

// memberType reports whether resources of type rt can be in a Patient
// compartment (Patient itself included).
func (a *authorizer) memberType(rt string) bool {
	if rt == "Patient" {
		return true
	}
	_, ok := a.patientDef.NarrowParam(rt)
	return ok
}
