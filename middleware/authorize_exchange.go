package middleware

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"sync"

	"github.com/fhirguard/fhirguard/compartment"
	"github.com/fhirguard/fhirguard/fhirrest"
	"github.com/fhirguard/fhirguard/internal/fhirjson"
	"github.com/fhirguard/fhirguard/scope"
)

// exchange is one request going through the enforcement point.
type exchange struct {
	a    *authorizer
	next http.Handler
	w    http.ResponseWriter
	r    *http.Request
	tok  *Token
	d    *Decision

	acs      []access // how the token grants the interaction on its type
	accBuf   [3]access
	dctx     *decisionContext // carries d when the request context had no link
	link     *decisionLink    // the request context's link, d attached to it
	dbuf     *Decision        // d when linked; kept across requests unless published
	typeAcs  map[typeAccessKey][]access
	inner    *http.Request // the request passed to the handler
	readMode bool          // resources are being read (shared types allowed)

	// dry is set for the entries of a batch or transaction: every check
	// runs, the handler is not called; verify records whether the entry's
	// response must be verified, and bundleResp whether it is a Bundle.
	dry        bool
	verify     bool
	bundleResp bool
	writeResp  bool              // the entry is a write: its answer may hold a resource
	urns       map[string]string // a Bundle's urn fullUrls and what their entries write

	body []byte // the request body, once read (nil: not read)

	policiesRun bool
	why         string // why the last resource was not accepted, for the log

	// counting is set when the guard counts a count-only search itself;
	// filterBundle records the matches of the page and the visible ones.
	counting                   bool
	matchesBefore, matchesKept int
}

// published returns x.d for code that may keep it: a Decision attached to
// the request context's link is published, so that it is never recycled.
func (x *exchange) published() *Decision {
	if x.link != nil {
		x.link.publish()
	}
	return x.d
}

// hookDecision is x.d for a refusal: published when an OnDecision hook
// will be given it, as is for the log.
func (x *exchange) hookDecision() *Decision {
	if x.a.onDecision != nil {
		return x.published()
	}
	return x.d
}

// release ends the request: the link no longer answers with an unpublished
// Decision, which is cleared for the next request; a published one is left
// to whoever keeps it. x is reset and pooled.
func (x *exchange) release() {
	d := x.dbuf
	if x.link != nil && x.link.detach(d) {
		d = nil
	} else if d != nil {
		*d = Decision{}
	}
	*x = exchange{dbuf: d}
	exchangePool.Put(x)
}

func (x *exchange) authorize() *refusal {
	it := &x.d.Interaction
	switch it.Kind {
	case fhirrest.Read, fhirrest.VRead, fhirrest.HistoryInstance:
		return x.read()
	case fhirrest.SearchType, fhirrest.HistoryType:
		return x.searchType()
	case fhirrest.SearchCompartment:
		return x.searchCompartment()
	case fhirrest.SearchSystem, fhirrest.HistorySystem:
		return x.searchSystem()
	case fhirrest.Create:
		return x.create()
	case fhirrest.Update, fhirrest.Patch:
		return x.update()
	case fhirrest.Delete:
		return x.delete()
	case fhirrest.Batch, fhirrest.Transaction:
		return x.bundle()
	case fhirrest.Operation:
		return x.operation()
	}
	return badRequest("unsupported FHIR interaction", nil)
}

// grant computes the accesses for the interaction's own type and letter, or
// the refusal when there are none.
func (x *exchange) grant(typ string, t scope.TypeID, p scope.Permission) *refusal {
	acs, missing := x.a.accesses(x.tok, t, p, x.accBuf[:0])
	if len(acs) == 0 {
		if missing {
			desc := "the token has patient scopes but no valid patient context"
			switch {
			case len(x.tok.unreadable) > 0:
				desc = "the token's launch context cannot be read (" + strings.Join(x.tok.unreadable, "; ") + ")"
			case x.a.requireEncounter && x.tok.Encounter == "":
				desc = "the token has no encounter context"
			}
			return forbidden(neededScope(x.tok, typ, p), desc)
		}
		return forbidden(neededScope(x.tok, typ, p), "the token does not grant this interaction")
	}
	x.acs = acs
	x.d.record(acs)
	return nil
}

// patientHeld reports whether some access holds the request to a patient.
func (x *exchange) patientHeld() bool {
	for _, ac := range x.acs {
		if ac.patient != "" {
			return true
		}
	}
	return false
}

// needsVerification reports whether the response must be checked.
func (x *exchange) needsVerification() bool {
	return !isOpen(x.acs) || len(x.a.resPols) > 0
}

// policies runs the request policies, once.
func (x *exchange) policies() *refusal {
	if x.policiesRun {
		return nil
	}
	x.policiesRun = true
	for _, p := range x.a.policies {
		if err := p.AuthorizeRequest(x.r, x.tok, x.published()); err != nil {
			return x.policyRefusal(err)
		}
	}
	return nil
}

func (x *exchange) policyRefusal(err error) *refusal {
	var pd *PolicyDenial
	if errors.As(err, &pd) {
		x.d.Rule = pd.Rule
		msg := pd.Message
		if msg == "" {
			msg = "denied by policy"
		}
		return &refusal{status: http.StatusForbidden, msg: msg, cause: err,
			ae: &AuthError{Status: http.StatusForbidden, Code: CodeInsufficientScope, Description: msg, Err: err}}
	}
	x.a.log.LogAttrs(x.r.Context(), slog.LevelError, "fhirguard: policy failed; denying", slog.String("error", err.Error()))
	return &refusal{status: http.StatusForbidden, msg: "denied by policy", cause: err,
		ae: &AuthError{Status: http.StatusForbidden, Code: CodeInsufficientScope, Description: "denied by policy", Err: err}}
}

// innerRequest prepares the request the handler sees: the decision in its
// context and, when the response will be verified, JSON without content
// coding and without conditional headers (a 304 could not be verified).
func (x *exchange) innerRequest(verify bool) *http.Request {
	return x.innerRequestInto(nil, nil, verify)
}

// innerRequestInto is innerRequest, the copy made in *dst when dst is not
// nil, its header's values in vals when they fit.
func (x *exchange) innerRequestInto(dst *http.Request, vals []string, verify bool) *http.Request {
	src := x.r
	if x.inner != nil {
		src = x.inner
	}
	if !verify && x.link != nil && src == x.r {
		return src
	}
	var ctx context.Context
	switch {
	case x.link != nil && src.Context() == x.r.Context():
		ctx = src.Context()
	case x.dctx != nil && src.Context() == x.dctx.Context:
		ctx = x.dctx // one allocation holds the decision and the context node
	default:
		ctx = newContextWithDecision(src.Context(), x.d)
	}
	var r *http.Request
	if dst != nil {
		*dst = *src.WithContext(ctx) // WithContext's own copy stays on the stack
		r = dst
	} else {
		r = src.WithContext(ctx)
	}
	if x.body != nil && src != x.r {
		// The request was copied before its body was read: the handler
		// gets the bytes that were read and checked.
		r.Body = io.NopCloser(bytes.NewReader(x.body))
		r.ContentLength = int64(len(x.body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(x.body)), nil }
	}
	if !verify {
		return r
	}
	r.Header = verifiedRequestHeader(src.Header, vals)
	if r.Method == http.MethodHead {
		r.Method = http.MethodGet
	}
	return r
}

// pass calls the handler without verification.
func (x *exchange) pass() *refusal {
	if e := x.policies(); e != nil {
		return e
	}
	if x.dry {
		return nil
	}
	x.next.ServeHTTP(x.w, x.innerRequest(false))
	return nil
}

// checkRepresentation refuses, before the handler runs, representations the
// verification cannot read and result shapes that would hide what it needs.
func (x *exchange) checkRepresentation(search bool) *refusal {
	q := x.d.Interaction.Query
	for key := range q {
		// Result parameters take no modifier: a server that ignored one
		// (_summary:x=count read as _summary=count) would shape the answer
		// in a way verification does not expect.
		name, mod, found := strings.Cut(key, ":")
		switch {
		case !found:
		case name == "_summary" || name == "_count" || name == "_elements" || name == "_format" ||
			name == "_total" || name == "_contained" || name == "_containedType":
			return badRequest("the result parameter "+name+" takes no modifier", nil)
		case (name == "_include" || name == "_revinclude") && mod != "iterate" && mod != "recurse":
			return badRequest("unknown modifier of "+name, nil)
		}
	}
	for _, f := range q["_format"] {
		switch strings.ToLower(strings.TrimSpace(f)) {
		case "json", "application/json", "application/fhir+json", "application/json+fhir":
		default:
			return statusRefusal(http.StatusNotAcceptable, "only JSON can be returned to this token", nil)
		}
	}
	if !search {
		return nil
	}
	for _, s := range q["_summary"] {
		switch s {
		case "false", "data", "count":
		default:
			return forbidden("", "_summary="+s+" cannot be verified for this token")
		}
	}
	if countOnly(q) {
		// The server's count may include resources the token may not see:
		// the guard counts the visible matches itself.
		return x.countSelf()
	}
	if len(q["_elements"]) > 0 {
		return x.restoreElements()
	}
	return nil
}

// restoreElements adds to _elements the elements verification reads, so the
// client cannot hide them.
func (x *exchange) restoreElements() *refusal {
	it := &x.d.Interaction
	if it.ResourceType == "" || it.ResourceType == "*" {
		return forbidden("", "_elements cannot be verified on a multi-type search for this token")
	}
	need := x.a.elementsFor(it.ResourceType, x.acs)
	if need == nil {
		return forbidden("", "_elements cannot be verified for this token")
	}
	have := map[string]bool{}
	for _, v := range it.Query["_elements"] {
		for e := range strings.SplitSeq(v, ",") {
			have[strings.TrimSpace(e)] = true
		}
	}
	var add []string
	for _, e := range need {
		if !have[e] {
			add = append(add, e)
		}
	}
	if len(add) > 0 {
		x.addQuery("_elements", strings.Join(add, ","))
	}
	return nil
}

// elementsFor lists the top-level elements of type rt that verification
// reads for these accesses: the compartment links and the constrained
// parameters' elements. nil means some element is unknown.
func (a *authorizer) elementsFor(rt string, acs []access) []string {
	set := map[string]bool{}
	for _, ac := range acs {
		if ac.patient != "" && rt != "Patient" {
			res, ok := a.patientDef.Resource(rt)
			if !ok {
				continue
			}
			for _, p := range res.Params {
				for _, path := range p.Paths {
					top, _, _ := strings.Cut(path.Elements, ".")
					set[top] = true
				}
			}
		}
		if !ac.grant.Unconstrained {
			for _, cs := range ac.grant.Constraints {
				for _, c := range cs {
					els, ok := a.constraintElements(rt, c.Name)
					if !ok {
						return nil
					}
					for _, e := range els {
						set[e] = true
					}
				}
			}
		}
	}
	out := make([]string, 0, len(set))
	for e := range set {
		out = append(out, e)
	}
	return out
}

// addQuery adds a parameter to the URL query of the request the handler
// will see (form bodies are left alone: FHIR combines both).
func (x *exchange) addQuery(name, value string) {
	if x.inner == nil {
		x.inner = x.r.Clone(x.r.Context())
	}
	q := x.inner.URL.Query()
	q[name] = append([]string{value}, q[name]...)
	x.inner.URL.RawQuery = q.Encode()
	x.inner.RequestURI = ""
}

// narrowTo confines a search (or conditional criteria in the URL) of type
// rt to the Patient compartment of id.
func (x *exchange) narrowTo(rt, id string) *refusal {
	q := x.d.Interaction.Query
	if x.a.checker.Binds(rt, q, compartment.Patient, id) {
		return nil
	}
	name, ok := x.a.patientDef.NarrowParam(rt)
	value := "Patient/" + id
	if rt == "Patient" {
		name, value, ok = "_id", id, true
	}
	if !ok {
		return forbidden("", "the search cannot be confined to the patient's compartment")
	}
	x.addQuery(name, value)
	x.d.Narrowed = true
	return nil
}

// serveVerified runs the handler with a buffered response and verifies it.
// bundle says whether the body is a Bundle (search, history) or a resource.
func (x *exchange) serveVerified(bundle bool) *refusal {
	if e := x.policies(); e != nil {
		return e
	}
	if x.dry {
		x.verify, x.bundleResp = true, bundle
		return nil
	}
	// One allocation holds the request the handler gets, the recorder of
	// its answer and the request header's values.
	vc := new(verifiedCall)
	inner := x.innerRequestInto(&vc.req, vc.vals[:], true)
	vc.rec = recorder{limit: x.a.maxResp}
	rec := &vc.rec
	// The handler sets its headers in the response's own map: nothing
	// leaves before the verified answer's WriteHeader, and a refusal puts
	// the map back as it was, so no header of a withheld answer (an ETag,
	// a Location) reaches the client.
	var before http.Header
	if h := x.w.Header(); h != nil {
		if len(h) > 0 {
			before = h.Clone()
		}
		rec.header, rec.direct = h, true
	} else {
		rec.header = http.Header{}
	}
	rec.usePooledBody()
	x.next.ServeHTTP(rec, inner)
	e := x.judgeResponse(rec, bundle)
	if e != nil && rec.direct {
		clear(rec.header)
		maps.Copy(rec.header, before)
	}
	return e
}

// judgeResponse verifies the answer rec recorded for a read (bundle:
// a Bundle) and sends it, or returns why it is refused.
func (x *exchange) judgeResponse(rec *recorder, bundle bool) *refusal {
	if rec.overflow {
		return statusRefusal(http.StatusBadGateway, "the response is too large to verify", errResponseTooLarge)
	}
	status := rec.code()
	if (!bundle || x.d.Interaction.Kind == fhirrest.HistoryInstance) && (status == http.StatusNotFound || status == http.StatusGone) {
		return x.a.notFound()
	}
	if status < 200 || status > 299 || status == http.StatusNoContent || rec.body.Len() == 0 {
		writeRecorded(x.w, x.r, rec, rec.body.Bytes())
		rec.releaseBody()
		return nil
	}
	if !isJSONMediaType(headerGet(rec.header, "Content-Type")) {
		return statusRefusal(http.StatusNotAcceptable, "the response cannot be verified: only JSON can be returned to this token", errNotJSON)
	}
	body, err := rec.decodedBody()
	if err != nil {
		return statusRefusal(http.StatusBadGateway, "the response could not be verified", err)
	}
	if !bundle && x.referencesSuffice() {
		// The common verified read: the resource read flat, no map built.
		// ReadRefs declines anything it cannot hold, and the map path
		// below decides.
		rd := refDocs.Get().(*fhirjson.RefDoc)
		defer func() { rd.Reset(); refDocs.Put(rd) }()
		if fhirjson.ReadRefs(body, fhirjson.MaxReadDepth, rd) {
			x.readMode = true
			if rd.ResourceType != x.d.Interaction.ResourceType || !x.acceptJudged(judged{refs: rd}, false) {
				x.logRemovedAs(rd.ResourceType, rd.ID, "read")
				return x.a.notFound()
			}
			writeRecorded(x.w, x.r, rec, body)
			rd.Reset()
			rec.releaseBody()
			return nil
		}
	}
	var doc map[string]any
	if !bundle && x.referencesSuffice() {
		// The whole body is read under the same rules; only what the
		// checks read is built.
		doc, err = fhirjson.Decode(body, readRefsJSON)
	} else {
		doc, err = decodeJSONObject(body)
	}
	if err != nil {
		return statusRefusal(http.StatusBadGateway, "the response could not be verified", err)
	}
	x.readMode = true
	if !bundle {
		if rt, _ := doc["resourceType"].(string); rt != x.d.Interaction.ResourceType || !x.accept(doc, false) {
			x.logRemoved(doc, "read")
			return x.a.notFound()
		}
		writeRecorded(x.w, x.r, rec, body)
		rec.releaseBody() // doc, which may hold views of body, is not used again
		return nil
	}
	changed, err := x.filterBundle(doc)
	if err != nil {
		return statusRefusal(http.StatusBadGateway, "the response could not be verified", err)
	}
	if x.d.Interaction.Kind == fhirrest.HistoryInstance {
		// The history of a resource the token may not see (no version of
		// it visible) is answered exactly like an absent id.
		if entries, _ := doc["entry"].([]any); len(entries) == 0 {
			return x.a.notFound()
		}
	}
	if x.counting {
		out, e := x.countAnswer(doc, x.matchesBefore, x.matchesKept)
		if e != nil {
			return e
		}
		doc, changed = out, true
	}
	if changed {
		if body, err = json.Marshal(doc); err != nil {
			return statusRefusal(http.StatusBadGateway, "the response could not be verified", err)
		}
		rec.header.Del("ETag")
		rec.header.Del("Content-MD5")
	}
	writeRecorded(x.w, x.r, rec, body)
	rec.releaseBody() // a whole-document decode copies its strings
	return nil
}

// maxWithheld caps Decision.Withheld.
const maxWithheld = 100

// logRemoved tells the operator which resource was withheld and why (the
// client only sees the neutral answer).
func (x *exchange) logRemoved(res map[string]any, where string) {
	rt, _ := res["resourceType"].(string)
	id, _ := res["id"].(string)
	x.logRemovedAs(rt, id, where)
}

// logRemovedAs is logRemoved for the resource rt/id.
func (x *exchange) logRemovedAs(rt, id, where string) {
	why := x.why
	if why == "" {
		why = "denied by a resource policy"
	}
	x.a.log.LogAttrs(x.r.Context(), slog.LevelWarn, "fhirguard: resource withheld",
		slog.String("where", where), slog.String("resourceType", rt), slog.String("id", id),
		slog.String("reason", why), slog.String("interaction", x.d.Interaction.Kind.String()))
	if len(x.d.Withheld) < maxWithheld {
		x.d.Withheld = append(x.d.Withheld, logTrunc(rt+"/"+id, 140)+": "+why)
	}
	x.why = ""
}

// accessesFor returns the accesses for a resource of type rt found in a
// response: the interaction's own for its type, else what the token grants
// for reading (r, then s) that type.
//
// The matches of a search of several types (Patient/X/*, a system search)
// need the search letter on their own type: a read grant does not let a
// token search a type.
func (x *exchange) accessesFor(rt string, include bool) []access {
	if !include && rt == x.d.Interaction.ResourceType && x.acs != nil {
		return x.acs
	}
	perms := []scope.Permission{scope.Read, scope.Search}
	key := typeAccessKey{rt: rt}
	switch x.d.Interaction.Kind {
	case fhirrest.SearchType, fhirrest.SearchCompartment, fhirrest.SearchSystem:
		if !include {
			perms, key.searchOnly = perms[1:], true
		}
	}
	if acs, ok := x.typeAcs[key]; ok {
		return acs
	}
	var acs []access
	if t, ok := scope.LookupType(rt); ok {
		for _, p := range perms {
			more, _ := x.a.accesses(x.tok, t, p, nil)
			acs = append(acs, more...)
		}
	}
	if x.typeAcs == nil {
		x.typeAcs = map[typeAccessKey][]access{}
	}
	x.typeAcs[key] = acs
	return acs
}

// typeAccessKey keys exchange.typeAcs: the accesses for a resource type,
// for reading it (r or s) or as the match of a search (s only).
type typeAccessKey struct {
	rt         string
	searchOnly bool
}

// refDocs holds the RefDocs of verified reads (2.6 KiB each, reset
// before they return).
var refDocs = sync.Pool{New: func() any { return new(fhirjson.RefDoc) }}

// judged is the resource a verification judges: decoded into a map, or,
// for a verified read whose checks read nothing but the resourceType, id
// and references (referencesSuffice), read flat into refs.
type judged struct {
	m    map[string]any
	refs *fhirjson.RefDoc
}

func (j judged) resourceType() string {
	if j.refs != nil {
		return j.refs.ResourceType
	}
	rt, _ := j.m["resourceType"].(string)
	return rt
}

// member reports whether the resource is in compartment t/id.
func (j judged) member(c *compartment.Checker, t compartment.Type, id string) (bool, error) {
	if j.refs != nil {
		return c.MemberRefs(j.refs.ResourceType, j.refs.ID, j.refs, t, id)
	}
	return c.MemberMap(j.m, t, id)
}

// accept reports whether the token may see (or write) the resource, and
// runs the resource policies.
func (x *exchange) accept(res map[string]any, include bool) bool {
	return x.acceptJudged(judged{m: res}, include)
}

func (x *exchange) acceptJudged(j judged, include bool) bool {
	rt := j.resourceType()
	if rt == "" {
		return false
	}
	if j.m == nil && len(x.a.resPols) > 0 {
		return false // never so: resource policies need the whole resource (referencesSuffice)
	}
	res := j.m
	ok := false
	for _, ac := range x.accessesFor(rt, include) {
		if x.inScope(&ac, rt, j) {
			ok = true
			break
		}
	}
	if !ok {
		return false
	}
	phase := ResourceRead
	if !x.readMode {
		phase = ResourceWritten
	}
	for _, p := range x.a.resPols {
		if err := p.AuthorizeResource(x.r, x.tok, x.published(), phase, res); err != nil {
			var pd *PolicyDenial
			if errors.As(err, &pd) {
				x.d.Rule = pd.Rule
			} else {
				x.a.log.LogAttrs(x.r.Context(), slog.LevelError, "fhirguard: resource policy failed; denying", slog.String("error", err.Error()))
			}
			return false
		}
	}
	return true
}

// inScope reports whether one access covers the resource: its compartment
// (and, unless LiteralCompartments, no reference to another patient) and
// its granular constraints. x.why says why not.
func (x *exchange) inScope(ac *access, rt string, j judged) bool {
	if ac.patient != "" {
		switch {
		case x.a.memberType(rt):
			member, err := j.member(x.a.checker, compartment.Patient, ac.patient)
			if err != nil || !member {
				x.why = "outside the compartment of Patient/" + ac.patient
				return false
			}
		case x.a.shared[rt] && x.readMode:
		default:
			x.why = rt + " is outside every patient compartment"
			return false
		}
		if !x.a.literal {
			ref := ""
			if j.refs != nil {
				ref = x.a.otherPatientRefFlat(j.refs, ac.patient)
			} else {
				ref = x.a.otherPatientRef(j.m, ac.patient)
			}
			if ref != "" {
				x.why = "references " + logTrunc(ref, 200)
				return false
			}
		}
		if ac.encounter != "" && !x.inEncounter(ac.encounter, rt, j) {
			return false
		}
	}
	if ac.grant.Unconstrained {
		return true
	}
	if j.m == nil {
		// Never so: constraints read other elements (referencesSuffice).
		x.why = "outside the granted constraints"
		return false
	}
	for _, cs := range ac.grant.Constraints {
		if x.a.matchConstraints(rt, j.m, cs) {
			return true
		}
	}
	x.why = "outside the granted constraints"
	return false
}

// inEncounter reports whether a resource of type rt is visible to an
// access held to encounter id (EnforceEncounter): in the encounter's
// compartment, the patient's own Patient resource (the caller checked the
// patient compartment), or a shared type being read.
func (x *exchange) inEncounter(id, rt string, j judged) bool {
	if rt == "Patient" || (x.readMode && x.a.shared[rt]) {
		return true
	}
	member, err := j.member(x.a.checker, compartment.Encounter, id)
	if err != nil || !member {
		x.why = "outside the compartment of Encounter/" + id
		return false
	}
	return true
}

// narrowToEncounter confines a search of type rt to the Encounter
// compartment of id, as narrowTo does for the patient's.
func (x *exchange) narrowToEncounter(rt, id string) *refusal {
	if rt == "Patient" || (x.a.shared[rt] && !x.a.memberType(rt)) {
		return nil
	}
	if x.a.checker.Binds(rt, x.d.Interaction.Query, compartment.Encounter, id) {
		return nil
	}
	name, ok := x.a.encounterDef.NarrowParam(rt)
	value := "Encounter/" + id
	if rt == "Encounter" {
		name, value, ok = "_id", id, true
	}
	if !ok {
		return forbidden("", rt+" resources are outside the compartment of the token's encounter")
	}
	x.addQuery(name, value)
	x.d.Narrowed = true
	return nil
}

// narrowSearch confines a search of type rt to what the accesses are held
// to: the patient's compartment and, under EnforceEncounter, the
// encounter's.
func (x *exchange) narrowSearch(rt string) *refusal {
	if id := commonPatient(x.acs); id != "" && x.a.memberType(rt) {
		if e := x.narrowTo(rt, id); e != nil {
			return e
		}
	}
	if enc := commonEncounter(x.acs); enc != "" {
		return x.narrowToEncounter(rt, enc)
	}
	return nil
}

// commonEncounter returns the encounter every access is held to, or "".
func commonEncounter(acs []access) string {
	if len(acs) == 0 {
		return ""
	}
	id := acs[0].encounter
	for _, ac := range acs[1:] {
		if ac.encounter != id {
			return ""
		}
	}
	return id
}

// filterBundle removes the entries the token may not see and applies the
// count and paging rules (settleTotalAndLinks). It reports whether the
// Bundle changed.
func (x *exchange) filterBundle(doc map[string]any) (bool, error) {
	if rt, _ := doc["resourceType"].(string); rt != "Bundle" {
		return false, errors.New("a Bundle was expected")
	}
	var entries []any
	if raw, present := doc["entry"]; present {
		var ok bool
		if entries, ok = raw.([]any); !ok {
			return false, errors.New("the entry member of the Bundle is not an array")
		}
	}
	kept := entries[:0:0]
	before, matches := 0, 0
	for _, e := range entries {
		entry, _ := e.(map[string]any)
		res, _ := entry["resource"].(map[string]any)
		mode := entryMode(entry)
		isMatch := mode != "include" && mode != "outcome"
		if isMatch {
			before++
		}
		switch {
		case res == nil:
		case mode == "outcome":
			if rt, _ := res["resourceType"].(string); rt == "OperationOutcome" {
				kept = append(kept, e)
				continue
			}
		case x.accept(res, mode == "include"):
			kept = append(kept, e)
			if isMatch {
				matches++
			}
			continue
		}
		if res != nil {
			x.logRemoved(res, "bundle entry")
		}
	}
	x.matchesBefore, x.matchesKept = before, matches
	changed := len(kept) != len(entries)
	if changed {
		if len(kept) == 0 {
			delete(doc, "entry")
		} else {
			doc["entry"] = kept
		}
	}
	if !x.counting && x.settleTotalAndLinks(doc, before, matches) {
		changed = true
	}
	return changed, nil
}

func pagedBundle(doc map[string]any) bool {
	links, _ := doc["link"].([]any)
	for _, l := range links {
		lm, _ := l.(map[string]any)
		switch rel, _ := lm["relation"].(string); rel {
		case "next", "previous", "prev":
			return true
		}
	}
	return false
}

// readBody reads the request body (bounded) once and puts it back for the
// handler, which receives exactly these bytes.
func (x *exchange) readBody() ([]byte, *refusal) {
	if x.body != nil {
		return x.body, nil
	}
	if x.r.Body == nil || x.r.Body == http.NoBody {
		return nil, nil
	}
	if ce := x.r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return nil, statusRefusal(http.StatusUnsupportedMediaType, "request bodies with a content coding cannot be checked", nil)
	}
	b, err := io.ReadAll(io.LimitReader(x.r.Body, x.a.maxBody+1))
	if err != nil {
		return nil, badRequest("the request body could not be read", err)
	}
	if int64(len(b)) > x.a.maxBody {
		return nil, statusRefusal(http.StatusRequestEntityTooLarge, "the request body is too large", nil)
	}
	if b == nil {
		b = []byte{}
	}
	x.body = b
	x.r.Body = io.NopCloser(bytes.NewReader(b))
	x.r.ContentLength = int64(len(b))
	x.r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	return b, nil
}
