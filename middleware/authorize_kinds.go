package middleware

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/fhirguard/fhirguard/compartment"
	"github.com/fhirguard/fhirguard/fhirrest"
	"github.com/fhirguard/fhirguard/scope"
)

// begin grants the interaction's letter p on its type. pass is true when
// the grant needs no verification, so the request goes straight to the
// handler; otherwise the patient-held accesses that can never reach the
// type (reading says whether shared types count) are dropped.
func (x *exchange) begin(p scope.Permission, reading bool) (pass bool, e *refusal) {
	it := &x.d.Interaction
	if e := x.grant(it.ResourceType, it.Type, p); e != nil {
		return false, e
	}
	// Policies deny before anything reaches the handler, even the internal
	// read of a stored version.
	if e := x.policies(); e != nil {
		return false, e
	}
	if !x.needsVerification() {
		return true, nil
	}
	return false, x.dropUnreachable(it.ResourceType, reading)
}

// read: read, vread and instance history (letter r).
func (x *exchange) read() *refusal {
	it := &x.d.Interaction
	if pass, e := x.begin(scope.Read, true); e != nil || pass {
		return x.passUnless(e)
	}
	// A patient's own record: any other Patient id is answered without
	// asking the handler, so existence is never revealed.
	if it.ResourceType == "Patient" && x.allPatientHeld() && !x.patientIs(it.ID) && x.a.excludeLinked {
		return x.a.notFound()
	}
	if e := x.checkRepresentation(false); e != nil {
		return e
	}
	return x.serveVerified(it.Kind == fhirrest.HistoryInstance)
}

// passUnless returns e, or sends the request to the handler when e is nil.
func (x *exchange) passUnless(e *refusal) *refusal {
	if e != nil {
		return e
	}
	return x.pass()
}

// allPatientHeld reports whether every access is held to a patient.
func (x *exchange) allPatientHeld() bool {
	for _, ac := range x.acs {
		if ac.patient == "" {
			return false
		}
	}
	return len(x.acs) > 0
}

func (x *exchange) patientIs(id string) bool {
	for _, ac := range x.acs {
		if ac.patient == id {
			return true
		}
	}
	return false
}

// dropUnreachable removes patient-held accesses that can never reach type
// rt (not in the Patient compartment and not a shared type for reading), and
// refuses when nothing is left.
func (x *exchange) dropUnreachable(rt string, reading bool) *refusal {
	if rt == "" || rt == "*" || x.a.memberType(rt) || (reading && x.a.shared[rt]) {
		return nil
	}
	kept := x.acs[:0:0]
	for _, ac := range x.acs {
		if ac.patient == "" {
			kept = append(kept, ac)
		}
	}
	if len(kept) == 0 {
		return forbidden("", rt+" resources are outside the patient's compartment")
	}
	x.acs = kept
	x.d.record(kept)
	return nil
}

// controlParamsRefused lists search parameters the kit cannot verify under
// patient or granular grants: they would let the server's answer depend on
// data the token may not see.
var controlParamsRefused = []string{"_filter", "_query", "_contained", "_containedType", "_list", "_has", "_text", "_content"}

// checkSearchParams refuses, for verified searches, parameters whose effect
// cannot be verified on the response: _has, chains, _filter, _query.
func (x *exchange) checkSearchParams() *refusal {
	for key := range x.d.Interaction.Query {
		name, _, _ := strings.Cut(key, ":")
		for _, bad := range controlParamsRefused {
			if name == bad {
				return forbidden("", name+" is not allowed for this token")
			}
		}
		if strings.HasPrefix(name, "_has") {
			return forbidden("", "_has is not allowed for this token")
		}
		if !strings.HasPrefix(name, "_") && strings.Contains(key, ".") {
			return forbidden("", "chained search parameters are not allowed for this token")
		}
	}
	return x.checkIncludes()
}

// searchType: type search and type history (letter s).
func (x *exchange) searchType() *refusal {
	it := &x.d.Interaction
	if pass, e := x.begin(scope.Search, true); e != nil || pass {
		return x.passUnless(e)
	}
	if it.Kind == fhirrest.HistoryType && x.patientHeld() {
		x.dropPatientHeld()
		if len(x.acs) == 0 {
			return forbidden("", "type history is not available to patient-scoped tokens")
		}
	}
	if e := x.checkSearchParams(); e != nil {
		return e
	}
	if id := commonPatient(x.acs); id != "" && x.a.memberType(it.ResourceType) {
		if e := x.narrowTo(it.ResourceType, id); e != nil {
			return e
		}
	}
	return x.serveVerifiedSearch()
}

func (x *exchange) dropPatientHeld() {
	kept := x.acs[:0:0]
	for _, ac := range x.acs {
		if ac.patient == "" {
			kept = append(kept, ac)
		}
	}
	x.acs = kept
	x.d.record(kept)
}

// searchCompartment: /Patient/123/Observation and /Patient/123/*.
func (x *exchange) searchCompartment() *refusal {
	it := &x.d.Interaction
	if it.ResourceType == "*" {
		return x.searchCompartmentAll()
	}
	if pass, e := x.begin(scope.Search, true); e != nil || pass {
		return x.passUnless(e)
	}
	if e := x.compartmentBinds(); e != nil {
		return e
	}
	if e := x.checkSearchParams(); e != nil {
		return e
	}
	return x.serveVerifiedSearch()
}

// compartmentBinds refuses a compartment search that a patient-held token
// makes of another compartment than its own patient's.
func (x *exchange) compartmentBinds() *refusal {
	it := &x.d.Interaction
	if !x.allPatientHeld() {
		return nil
	}
	if it.CompartmentType != "Patient" || !x.patientIs(it.CompartmentID) {
		return forbidden("", "the token may only search its own patient's compartment")
	}
	return nil
}

// openWildcard reports whether an unconstrained system or user wildcard
// scope grants p on every type without holding the token to a patient, and
// records that access.
func (x *exchange) openWildcard(p scope.Permission) bool {
	for _, ctx := range [...]scope.Context{scope.System, scope.User} {
		if !x.tok.Scopes.AllowsAllTypes(ctx, p) {
			continue
		}
		if id, ok := x.a.patientOf(x.tok, ctx); ok && id == "" {
			x.acs = []access{{ctx: ctx, grant: scope.Grant{Allowed: true, Unconstrained: true}}}
			x.d.record(x.acs)
			return true
		}
	}
	return false
}

// serveOpenSearch serves a search under an open access: straight to the
// handler, or verified when resource policies must see the results.
func (x *exchange) serveOpenSearch() *refusal {
	if len(x.a.resPols) == 0 {
		return x.pass()
	}
	return x.serveVerified(true)
}

func (x *exchange) searchCompartmentAll() *refusal {
	it := &x.d.Interaction
	if x.openWildcard(scope.Search) {
		return x.serveOpenSearch()
	}
	// Held to a patient: the compartment must be the token's patient, and
	// each entry is checked against the grants of its own type.
	id, ok := x.a.patientOf(x.tok, scope.Patient)
	if !ok || !x.tok.Scopes.HasContext(scope.Patient) {
		if uid, isPatient := x.a.fhirUserPatient(x.tok.FHIRUser); isPatient && x.tok.Scopes.HasContext(scope.User) {
			id, ok = uid, true
		} else {
			return forbidden(neededScope(x.tok, "*", scope.Search), "the token does not grant a search of every type")
		}
	}
	if !ok || it.CompartmentType != "Patient" || it.CompartmentID != id {
		return forbidden("", "the token may only search its own patient's compartment")
	}
	x.d.Context, x.d.CompartmentType, x.d.CompartmentID = scope.Patient, "Patient", id
	if e := x.checkSearchParams(); e != nil {
		return e
	}
	return x.serveVerifiedSearch()
}

// serveVerifiedSearch applies the granular constraints and the
// representation rules to a search, then serves it with its results
// verified.
func (x *exchange) serveVerifiedSearch() *refusal {
	if e := x.checkConstraintsSearch(); e != nil {
		return e
	}
	if e := x.checkRepresentation(true); e != nil {
		return e
	}
	return x.serveVerified(true)
}

// searchSystem: GET [base]?_type=... and [base]/_history.
func (x *exchange) searchSystem() *refusal {
	it := &x.d.Interaction
	if len(it.Types) == 0 {
		if x.openWildcard(scope.Search) {
			return x.serveOpenSearch()
		}
		return forbidden(neededScope(x.tok, "*", scope.Search), "a search of every type needs an unconstrained system or user wildcard scope")
	}
	// _type lists the types: each must be granted, never through a patient.
	open := true
	for _, typ := range it.Types {
		t, _ := scope.LookupType(typ)
		acs, _ := x.a.accesses(x.tok, t, scope.Search, nil)
		kept := acs[:0:0]
		for _, ac := range acs {
			if ac.patient == "" {
				kept = append(kept, ac)
			}
		}
		if len(kept) == 0 {
			return forbidden(neededScope(x.tok, typ, scope.Search), "the token does not grant a system-level search of "+typ)
		}
		if !isOpen(kept) {
			open = false
		}
		if x.typeAcs == nil {
			x.typeAcs = map[string][]access{}
		}
		x.typeAcs[typ] = kept
	}
	x.d.Context = scope.System
	if !x.tok.Scopes.HasContext(scope.System) {
		x.d.Context = scope.User
	}
	if open && len(x.a.resPols) == 0 {
		return x.pass()
	}
	if e := x.checkSearchParams(); e != nil {
		return e
	}
	return x.serveVerifiedSearch()
}

// create: POST [type] (letter c), conditional with If-None-Exist.
func (x *exchange) create() *refusal {
	it := &x.d.Interaction
	if pass, e := x.begin(scope.Create, false); e != nil || pass {
		return x.passUnless(e)
	}
	if it.Conditional {
		if e := x.narrowHeaderCriteria(); e != nil {
			return e
		}
	}
	if e := x.checkBody(""); e != nil {
		return e
	}
	return x.pass()
}

// narrowHeaderCriteria confines If-None-Exist criteria to the compartment.
func (x *exchange) narrowHeaderCriteria() *refusal {
	it := &x.d.Interaction
	id := commonPatient(x.acs)
	if id == "" {
		if x.patientHeld() {
			return forbidden("", "conditional criteria cannot be confined for this token")
		}
		return x.checkConstraintsCriteria()
	}
	if e := x.checkConstraintsCriteria(); e != nil {
		return e
	}
	if x.a.checker.Binds(it.ResourceType, it.Query, compartment.Patient, id) {
		return nil
	}
	q, err := x.a.checker.Narrow(it.ResourceType, it.Query, compartment.Patient, id)
	if err != nil {
		return forbidden("", "conditional criteria cannot be confined to the patient's compartment")
	}
	if x.inner == nil {
		x.inner = x.r.Clone(x.r.Context())
	}
	x.inner.Header.Set("If-None-Exist", q.Encode())
	x.d.Narrowed = true
	return nil
}

// checkBody reads the request body and checks the new resource: its type,
// its id (for an update), its compartment, references to other patients,
// constraints and resource policies.
func (x *exchange) checkBody(id string) *refusal {
	it := &x.d.Interaction
	b, e := x.readBody()
	if e != nil {
		return e
	}
	if len(b) == 0 {
		return badRequest("a resource body is required", nil)
	}
	res, err := decodeJSONObject(b)
	if err != nil {
		return badRequest("the resource body is not a JSON object", err)
	}
	if rt, _ := res["resourceType"].(string); rt != it.ResourceType {
		return badRequest("the resource type of the body does not match the URL", nil)
	}
	if id != "" {
		if got, _ := res["id"].(string); got != id {
			return badRequest("the id of the body does not match the URL", nil)
		}
	}
	x.readMode = false
	if !x.accept(res, false) {
		return forbidden("", "the resource is outside what the token may write")
	}
	if x.otherPatientReference(res) {
		return forbidden("", "the resource refers to another patient")
	}
	return nil
}

// otherPatientReference reports whether the resource holds, anywhere
// (contained resources and extensions included), a reference to a Patient of
// this server other than the patient every access is held to.
func (x *exchange) otherPatientReference(res map[string]any) bool {
	id := commonPatient(x.acs)
	if id == "" {
		return false
	}
	var walk func(v any) bool
	walk = func(v any) bool {
		switch t := v.(type) {
		case map[string]any:
			for k, c := range t {
				if s, ok := c.(string); ok && k == "reference" && x.refersToOtherPatient(s, id) {
					return true
				}
				if walk(c) {
					return true
				}
			}
		case []any:
			for _, c := range t {
				if walk(c) {
					return true
				}
			}
		}
		return false
	}
	return walk(res)
}

func (x *exchange) refersToOtherPatient(ref, id string) bool {
	if x.a.checker.RefersTo(ref, compartment.Patient, id) {
		return false
	}
	rest := ref
	for _, b := range x.a.bases {
		if strings.HasPrefix(rest, b+"/") {
			rest = rest[len(b)+1:]
			break
		}
	}
	return strings.HasPrefix(rest, "Patient/")
}

// update: PUT and PATCH [type]/[id] or conditional (letter u).
func (x *exchange) update() *refusal {
	it := &x.d.Interaction
	if pass, e := x.begin(scope.Update, false); e != nil || pass {
		return x.passUnless(e)
	}
	if it.Conditional {
		if e := x.narrowURLCriteria(); e != nil {
			return e
		}
	} else if e := x.checkStored(it.Kind == fhirrest.Update); e != nil {
		return e
	}
	if it.Kind == fhirrest.Patch {
		if e := x.checkPatch(); e != nil {
			return e
		}
		return x.pass()
	}
	if e := x.checkBody(it.ID); e != nil {
		return e
	}
	return x.pass()
}

// delete: DELETE [type]/[id] or conditional (letter d).
func (x *exchange) delete() *refusal {
	it := &x.d.Interaction
	if pass, e := x.begin(scope.Delete, false); e != nil || pass {
		return x.passUnless(e)
	}
	if it.Conditional {
		if e := x.narrowURLCriteria(); e != nil {
			return e
		}
		return x.pass()
	}
	if e := x.checkStored(false); e != nil {
		return e
	}
	return x.pass()
}

// narrowURLCriteria confines the criteria of a conditional update, patch
// or delete (in the URL query) to the compartment.
func (x *exchange) narrowURLCriteria() *refusal {
	id := commonPatient(x.acs)
	if id == "" {
		if x.patientHeld() {
			return forbidden("", "conditional criteria cannot be confined for this token")
		}
		return x.checkConstraintsCriteria()
	}
	if e := x.checkConstraintsCriteria(); e != nil {
		return e
	}
	if e := x.checkSearchParams(); e != nil {
		return e
	}
	return x.narrowTo(x.d.Interaction.ResourceType, id)
}

// checkStored fetches the stored version through the handler (an internal
// GET) and refuses when the token may not write it. upsert says whether an
// absent resource may be created (update-as-create).
func (x *exchange) checkStored(upsert bool) *refusal {
	it := &x.d.Interaction
	get := x.r.Clone(NewContextWithDecision(x.r.Context(), &Decision{
		Interaction: fhirrest.Interaction{Kind: fhirrest.Read, Method: http.MethodGet, ResourceType: it.ResourceType, Type: it.Type, ID: it.ID},
		Context:     x.d.Context, Grant: x.d.Grant, CompartmentType: x.d.CompartmentType, CompartmentID: x.d.CompartmentID,
	}))
	get.Method = http.MethodGet
	get.URL.Path = x.a.basePath + "/" + it.ResourceType + "/" + it.ID
	get.URL.RawPath = ""
	get.URL.RawQuery = ""
	get.RequestURI = ""
	get.Body = http.NoBody
	get.GetBody = nil
	get.ContentLength = 0
	for _, h := range []string{"Content-Type", "Content-Length", "If-Match", "If-None-Match", "If-Modified-Since", "If-None-Exist", "Prefer", "Accept-Encoding"} {
		get.Header.Del(h)
	}
	get.Header.Set("Accept", "application/fhir+json")
	rec := newRecorder(x.a.maxResp)
	x.next.ServeHTTP(rec, get)
	switch status := rec.code(); {
	case status == http.StatusNotFound || status == http.StatusGone:
		if upsert {
			return nil
		}
		return x.a.notFound()
	case status != http.StatusOK || rec.overflow:
		return statusRefusal(http.StatusBadGateway, "the stored resource could not be checked", nil)
	}
	body, err := rec.decodedBody()
	if err != nil {
		return statusRefusal(http.StatusBadGateway, "the stored resource could not be checked", err)
	}
	res, err := decodeJSONObject(body)
	if err != nil {
		return statusRefusal(http.StatusBadGateway, "the stored resource could not be checked", err)
	}
	x.readMode = false
	if rt, _ := res["resourceType"].(string); rt != it.ResourceType || !x.accept(res, false) {
		x.logRemoved(res, "stored version")
		if upsert {
			return forbidden("", "the stored resource is outside what the token may write")
		}
		return x.a.notFound()
	}
	return nil
}

// checkPatch refuses JSON Patch operations that touch the elements linking
// the resource to its compartment, its id or type, or that add references
// to other patients. Other patch formats are refused for patient-held
// tokens.
func (x *exchange) checkPatch() *refusal {
	it := &x.d.Interaction
	b, e := x.readBody()
	if e != nil {
		return e
	}
	if mt := mediaType(x.r.Header.Get("Content-Type")); mt != "application/json-patch+json" {
		return statusRefusal(http.StatusUnsupportedMediaType, "only JSON Patch can be checked for this token", nil)
	}
	var ops []map[string]any
	if err := json.Unmarshal(b, &ops); err != nil || len(ops) == 0 {
		return badRequest("the JSON Patch document is malformed", err)
	}
	protected := map[string]bool{"": true, "id": true, "resourceType": true}
	if x.patientHeld() {
		if it.ResourceType == "Patient" {
			protected["link"] = true
		}
		if res, ok := x.a.patientDef.Resource(it.ResourceType); ok {
			for _, p := range res.Params {
				for _, path := range p.Paths {
					top, _, _ := strings.Cut(path.Elements, ".")
					protected[top] = true
				}
			}
		}
	}
	for _, acs := range x.acs {
		for _, cs := range acs.grant.Constraints {
			for _, c := range cs {
				els, _ := x.a.constraintElements(it.ResourceType, c.Name)
				for _, el := range els {
					protected[el] = true
				}
			}
		}
	}
	for _, op := range ops {
		for _, key := range []string{"path", "from"} {
			p, ok := op[key].(string)
			if !ok {
				if key == "path" {
					return badRequest("a JSON Patch operation has no path", nil)
				}
				continue
			}
			if protected[pointerHead(p)] {
				return forbidden("", "the patch changes elements that decide who the resource belongs to")
			}
		}
		if v, ok := op["value"]; ok {
			wrapped := map[string]any{"v": v}
			if x.otherPatientReference(wrapped) {
				return forbidden("", "the patch adds a reference to another patient")
			}
		}
	}
	return nil
}

// pointerHead returns the first token of a JSON Pointer, unescaped.
func pointerHead(p string) string {
	p = strings.TrimPrefix(p, "/")
	head, _, _ := strings.Cut(p, "/")
	head = strings.ReplaceAll(head, "~1", "/")
	return strings.ReplaceAll(head, "~0", "~")
}

func mediaType(ct string) string {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}
