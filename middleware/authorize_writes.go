package middleware

import (
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	jsonpatch "github.com/evanphx/json-patch/v5"

	"github.com/fhirguard/fhirguard/compartment"
	"github.com/fhirguard/fhirguard/fhir"
	"github.com/fhirguard/fhirguard/fhirrest"
	"github.com/fhirguard/fhirguard/internal/fhirjson"
	"github.com/fhirguard/fhirguard/scope"
	"github.com/fhirguard/fhirguard/searchparam"
)

// Writes under a grant that needs verification (held to a patient,
// granular constraints, resource policies) are judged on the state they
// produce: the new body, the stored version of the id that will really be
// written, and for PATCH the stored version with the patch applied. Every
// body is read by the strict FHIR JSON reader, and the handler receives the
// bytes that were read.

// Reader options: request bodies nest less deeply than the responses the
// guard verifies, so that nothing written through it can make a verified
// read fail.
var (
	writeJSON = fhirjson.Options{Mode: fhirjson.FHIR, MaxDepth: fhirjson.MaxWriteDepth}
	readJSON  = fhirjson.Options{Mode: fhirjson.Plain, MaxDepth: fhirjson.MaxReadDepth}
)

// create: POST [type] (letter c), conditional with If-None-Exist.
func (x *exchange) create() *refusal {
	it := &x.d.Interaction
	if pass, e := x.begin(scope.Create, false); e != nil || pass {
		return x.passWrite(e)
	}
	if it.Conditional {
		if e := x.narrowHeaderCriteria(); e != nil {
			return e
		}
	}
	res, e := x.resourceBody()
	if e != nil {
		return e
	}
	// The server assigns the id of a created resource: the body's id never
	// decides membership (a Patient whose id is the token's patient is a
	// new Patient, not the token's own record).
	if _, has := res["id"]; has {
		res = maps.Clone(res)
		delete(res, "id")
	}
	if e := x.judgeWritten(res); e != nil {
		return e
	}
	return x.serveWrite()
}

// update: PUT [type]/[id] or conditional, and PATCH (letter u).
func (x *exchange) update() *refusal {
	it := &x.d.Interaction
	if pass, e := x.begin(scope.Update, false); e != nil || pass {
		return x.passWrite(e)
	}
	if it.Kind == fhirrest.Patch {
		return x.patch()
	}
	res, e := x.resourceBody()
	if e != nil {
		return e
	}
	bodyID, hasID := res["id"].(string)
	if _, present := res["id"]; present && (!hasID || !fhir.ValidID(bodyID)) {
		return badRequest("the id of the body is not a FHIR id", nil)
	}
	if !it.Conditional && bodyID != it.ID {
		return badRequest("the id of the body does not match the URL", nil)
	}
	// The new body first: a refused body needs no read of the server.
	if e := x.judgeWritten(res); e != nil {
		return e
	}
	if !it.Conditional {
		if _, e := x.storedVersion(it.ID, true); e != nil {
			return e
		}
	} else {
		if e := x.narrowURLCriteria(); e != nil {
			return e
		}
		// Whatever the criteria match is overwritten; with no match, a
		// server that supports update-as-create writes the body's id.
		if _, e := x.conditionalMatches(); e != nil {
			return e
		}
		if hasID {
			if _, e := x.storedVersion(bodyID, true); e != nil {
				return e
			}
		}
	}
	return x.serveWrite()
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
		if _, e := x.conditionalMatches(); e != nil {
			return e
		}
		return x.serveWrite()
	}
	if _, e := x.storedVersion(it.ID, false); e != nil {
		return e
	}
	return x.serveWrite()
}

// patch applies a JSON Patch to the stored version (or the one resource the
// conditional criteria match) and judges the result like an update body;
// the handler receives the original patch only when the result passes.
// FHIRPath Patch (a Parameters body) is refused with 415 for these tokens.
func (x *exchange) patch() *refusal {
	it := &x.d.Interaction
	p, e := x.patchBody()
	if e != nil {
		return e
	}
	var stored map[string]any
	if it.Conditional {
		if e := x.narrowURLCriteria(); e != nil {
			return e
		}
		ms, e := x.conditionalMatches()
		if e != nil {
			return e
		}
		switch len(ms) {
		case 0:
			return x.serveWrite() // the server answers that nothing matched
		case 1:
			stored = ms[0]
		default:
			return statusRefusal(http.StatusPreconditionFailed, "the criteria match more than one resource", nil)
		}
	} else {
		var e *refusal
		if stored, e = x.storedVersion(it.ID, false); e != nil {
			return e
		}
	}
	before, err := json.Marshal(stored)
	if err != nil {
		return statusRefusal(http.StatusBadGateway, "the stored resource could not be checked", err)
	}
	opts := jsonpatch.NewApplyOptions()
	opts.SupportNegativeIndices = false // RFC 6901: "-1" is not an index
	opts.AccumulatedCopySizeLimit = x.a.maxBody
	after, err := p.ApplyWithOptions(before, opts)
	if err != nil {
		return statusRefusal(http.StatusUnprocessableEntity, "the patch cannot be applied to the stored resource", err)
	}
	res, err := fhirjson.Decode(after, writeJSON)
	if err != nil {
		return statusRefusal(http.StatusUnprocessableEntity, "the patched resource is not valid FHIR JSON: "+err.Error(), err)
	}
	if rt, _ := res["resourceType"].(string); rt != it.ResourceType || res["id"] != stored["id"] {
		return forbidden("", "the patch changes the type or the id of the resource")
	}
	if e := x.judgeWritten(res); e != nil {
		return e
	}
	return x.serveWrite()
}

// passWrite sends a write that needs no verification to the handler, after
// holding a JSON body to the reader's rules (so that nothing stored through
// the guard can make a verified read fail). Bodies in other formats pass.
func (x *exchange) passWrite(e *refusal) *refusal {
	if e != nil {
		return e
	}
	it := &x.d.Interaction
	ct := x.r.Header.Get("Content-Type")
	if (it.Kind == fhirrest.Create || it.Kind == fhirrest.Update) && (ct == "" || isJSONMediaType(ct)) {
		b, e := x.readBody()
		if e != nil {
			return e
		}
		if len(b) > 0 {
			if _, e := decodeWriteBody(b); e != nil {
				return e
			}
		}
	}
	return x.pass()
}

// resourceBody reads the request body strictly as a resource of the
// interaction's type.
func (x *exchange) resourceBody() (map[string]any, *refusal) {
	it := &x.d.Interaction
	if ct := x.r.Header.Get("Content-Type"); ct != "" && !isJSONMediaType(ct) {
		return nil, statusRefusal(http.StatusUnsupportedMediaType, "only FHIR JSON bodies can be checked for this token", nil)
	}
	b, e := x.readBody()
	if e != nil {
		return nil, e
	}
	if len(b) == 0 {
		return nil, badRequest("a resource body is required", nil)
	}
	res, e := decodeWriteBody(b)
	if e != nil {
		return nil, e
	}
	if rt, _ := res["resourceType"].(string); rt != it.ResourceType {
		return nil, badRequest("the resource type of the body does not match the URL", nil)
	}
	if len(x.urns) > 0 {
		res = resolveURNs(res, x.urns).(map[string]any)
	}
	return res, nil
}

// decodeWriteBody reads a resource body by the strict FHIR rules; the
// refusal names what broke them.
func decodeWriteBody(b []byte) (map[string]any, *refusal) {
	res, err := fhirjson.Decode(b, writeJSON)
	if err != nil {
		return nil, badRequest("the resource body is not valid FHIR JSON: "+err.Error(), err)
	}
	return res, nil
}

// patchBody reads a JSON Patch document strictly: an array of operations
// with only op, path, from and value.
func (x *exchange) patchBody() (jsonpatch.Patch, *refusal) {
	if mt := mediaType(x.r.Header.Get("Content-Type")); mt != "application/json-patch+json" {
		return nil, statusRefusal(http.StatusUnsupportedMediaType, "only JSON Patch (application/json-patch+json) can be checked for this token", nil)
	}
	b, e := x.readBody()
	if e != nil {
		return nil, e
	}
	ops, err := fhirjson.DecodeArray(b, writeJSON)
	if err != nil {
		return nil, badRequest("the JSON Patch document is not valid: "+err.Error(), err)
	}
	if len(ops) == 0 {
		return nil, badRequest("the JSON Patch document has no operation", nil)
	}
	for i, o := range ops {
		op, ok := o.(map[string]any)
		if !ok {
			return nil, badRequest("a JSON Patch operation is not an object", nil)
		}
		if err := fhirjson.Only(op, "["+strconv.Itoa(i)+"]", "op", "path", "from", "value"); err != nil {
			return nil, badRequest("the JSON Patch document is not valid: "+err.Error(), err)
		}
		name, _ := op["op"].(string)
		_, hasPath := op["path"].(string)
		_, hasFrom := op["from"].(string)
		_, hasValue := op["value"]
		switch {
		case !hasPath:
			return nil, badRequest("a JSON Patch operation has no path", nil)
		case name == "add" || name == "replace" || name == "test":
			if !hasValue {
				return nil, badRequest("a JSON Patch "+name+" operation has no value", nil)
			}
		case name == "move" || name == "copy":
			if !hasFrom {
				return nil, badRequest("a JSON Patch "+name+" operation has no from", nil)
			}
		case name == "remove":
		default:
			return nil, badRequest("unknown JSON Patch operation", nil)
		}
	}
	p, err := jsonpatch.DecodePatch(b)
	if err != nil {
		return nil, badRequest("the JSON Patch document is not valid", err)
	}
	return p, nil
}

// judgeWritten refuses a resource the token may not write: outside its
// compartment or its constraints, denied by a resource policy, or holding a
// reference to another patient.
func (x *exchange) judgeWritten(res map[string]any) *refusal {
	x.readMode = false
	if !x.accept(res, false) {
		return forbidden("", "the resource is outside what the token may write")
	}
	if ref := x.otherPatientReference(res); ref != "" {
		x.a.log.LogAttrs(x.r.Context(), slog.LevelInfo, "fhirguard: write refers to another patient", slog.String("reference", logTrunc(ref, 200)))
		return forbidden("", "the resource refers to another patient")
	}
	return nil
}

// judgeStored reports whether the token may overwrite or delete the stored
// resource: the same rules as for what it writes.
func (x *exchange) judgeStored(res map[string]any) bool {
	x.readMode = false
	if rt, _ := res["resourceType"].(string); rt != x.d.Interaction.ResourceType || !x.accept(res, false) {
		return false
	}
	return x.otherPatientReference(res) == ""
}

// storedVersion fetches the stored version of id through the handler (an
// internal GET) and refuses when the token may not write it. upsert says
// whether an absent resource may be created (update-as-create); then the
// result is nil.
func (x *exchange) storedVersion(id string, upsert bool) (map[string]any, *refusal) {
	rec := x.internalGet(id, nil)
	switch status := rec.code(); {
	case status == http.StatusNotFound || status == http.StatusGone:
		if upsert {
			return nil, nil
		}
		return nil, x.a.notFound()
	case status != http.StatusOK || rec.overflow:
		return nil, statusRefusal(http.StatusBadGateway, "the stored resource could not be checked", nil)
	}
	res, err := recordedJSON(rec)
	if err != nil {
		return nil, statusRefusal(http.StatusBadGateway, "the stored resource could not be checked", err)
	}
	if !x.judgeStored(res) {
		x.logRemoved(res, "stored version")
		if upsert {
			return nil, forbidden("", "the stored resource is outside what the token may write")
		}
		return nil, x.a.notFound()
	}
	return res, nil
}

// checkStored is storedVersion for the interaction's own id.
func (x *exchange) checkStored(upsert bool) *refusal {
	_, e := x.storedVersion(x.d.Interaction.ID, upsert)
	return e
}

// conditionalMatches runs the (narrowed) criteria of a conditional update,
// patch or delete as a search through the handler, and refuses when the
// token may not write one of the matches. More matches than one page shows
// are refused with 412, as they cannot all be checked.
func (x *exchange) conditionalMatches() ([]map[string]any, *refusal) {
	src := x.r
	if x.inner != nil {
		src = x.inner
	}
	rec := x.internalGet("", src.URL.Query())
	if status := rec.code(); status != http.StatusOK || rec.overflow {
		return nil, statusRefusal(http.StatusPreconditionFailed, "the conditional criteria could not be checked", nil)
	}
	doc, err := recordedJSON(rec)
	if err != nil {
		return nil, statusRefusal(http.StatusBadGateway, "the conditional criteria could not be checked", err)
	}
	if rt, _ := doc["resourceType"].(string); rt != "Bundle" || pagedBundle(doc) {
		return nil, statusRefusal(http.StatusPreconditionFailed, "the conditional criteria match more resources than can be checked", nil)
	}
	var out []map[string]any
	entries, _ := doc["entry"].([]any)
	for _, e := range entries {
		entry, _ := e.(map[string]any)
		res, _ := entry["resource"].(map[string]any)
		if res == nil || entryMode(entry) == "include" || entryMode(entry) == "outcome" {
			continue
		}
		if !x.judgeStored(res) {
			x.logRemoved(res, "conditional match")
			return nil, forbidden("", "the criteria match a resource outside what the token may write")
		}
		out = append(out, res)
	}
	return out, nil
}

// entryMode returns entry.search.mode.
func entryMode(entry map[string]any) string {
	s, _ := entry["search"].(map[string]any)
	mode, _ := s["mode"].(string)
	return mode
}

// internalGet reads the resource id of the interaction's type, or with id
// "" searches the type with query, through the handler, with the decision
// of that read or search in the context, and records the answer.
func (x *exchange) internalGet(id string, query url.Values) *recorder {
	it := &x.d.Interaction
	in := fhirrest.Interaction{Kind: fhirrest.Read, Method: http.MethodGet, ResourceType: it.ResourceType, Type: it.Type, ID: id}
	path := x.a.basePath + "/" + it.ResourceType + "/" + id
	if id == "" {
		in.Kind, in.Query = fhirrest.SearchType, query
		path = x.a.basePath + "/" + it.ResourceType
	}
	get := x.r.Clone(newContextWithDecision(x.r.Context(), &Decision{
		Interaction: in,
		Context:     x.d.Context, Grant: x.d.Grant, CompartmentType: x.d.CompartmentType, CompartmentID: x.d.CompartmentID,
	}))
	get.Method = http.MethodGet
	get.URL.Path = path
	get.URL.RawPath = ""
	get.URL.RawQuery = query.Encode()
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
	return rec
}

// recordedJSON decodes a recorded JSON answer.
func recordedJSON(rec *recorder) (map[string]any, error) {
	if !isJSONMediaType(rec.header.Get("Content-Type")) {
		return nil, errNotJSON
	}
	body, err := rec.decodedBody()
	if err != nil {
		return nil, err
	}
	return decodeJSONObject(body)
}

// serveWrite sends a write to the handler with its answer buffered: a
// resource in it (Prefer: return=representation, the match of a
// conditional create) must be one the token may see; an OperationOutcome
// always passes. Otherwise the answer is withheld with 403.
func (x *exchange) serveWrite() *refusal {
	if e := x.policies(); e != nil {
		return e
	}
	if x.dry {
		x.verify, x.bundleResp, x.writeResp = true, false, true
		return nil
	}
	rec := newRecorder(x.a.maxResp)
	x.next.ServeHTTP(rec, x.innerRequest(true))
	if rec.overflow {
		return statusRefusal(http.StatusBadGateway, "the response is too large to verify", errResponseTooLarge)
	}
	if status := rec.code(); status < 200 || status > 299 || rec.body.Len() == 0 {
		writeRecorded(x.w, x.r, rec, rec.body.Bytes())
		return nil
	}
	doc, err := recordedJSON(rec)
	if err != nil || !x.visibleAnswer(doc) {
		x.a.log.LogAttrs(x.r.Context(), slog.LevelWarn, "fhirguard: the answer to a write was withheld",
			slog.String("interaction", x.d.Interaction.Kind.String()), slog.Int("status", rec.code()))
		return forbidden("", "the server's answer holds a resource the token may not see")
	}
	body, _ := rec.decodedBody()
	writeRecorded(x.w, x.r, rec, body)
	return nil
}

// visibleAnswer reports whether the resource in the answer to a write may
// be shown to the token.
func (x *exchange) visibleAnswer(res map[string]any) bool {
	rt, _ := res["resourceType"].(string)
	if rt == "OperationOutcome" {
		return true
	}
	x.readMode = true
	if rt != x.d.Interaction.ResourceType || !x.accept(res, false) || x.otherPatientReference(res) != "" {
		x.logRemoved(res, "write answer")
		return false
	}
	return true
}

// criteriaLink checks the criteria of a conditional interaction and
// returns the parameter and value that confine them to the patient's
// compartment on the resource's primary patient link; name is "" when they
// need no narrowing (not held to a patient, or already bound).
func (x *exchange) criteriaLink() (name, value string, e *refusal) {
	it := &x.d.Interaction
	if e := x.checkConstraintsCriteria(); e != nil {
		return "", "", e
	}
	id := commonPatient(x.acs)
	if id == "" {
		if x.patientHeld() {
			return "", "", forbidden("", "conditional criteria cannot be confined for this token")
		}
		return "", "", nil
	}
	if e := x.checkSearchParams(); e != nil {
		return "", "", e
	}
	if e := x.knownCriteria(); e != nil {
		return "", "", e
	}
	name, value, bound, ok := x.primaryLink(it.ResourceType, it.Query, id)
	if !ok {
		return "", "", forbidden("", "conditional criteria cannot be confined to the patient's compartment")
	}
	if bound {
		return "", "", nil
	}
	return name, value, nil
}

// narrowHeaderCriteria confines If-None-Exist criteria to the compartment
// on the resource's primary patient link.
func (x *exchange) narrowHeaderCriteria() *refusal {
	name, value, e := x.criteriaLink()
	if e != nil || name == "" {
		return e
	}
	it := &x.d.Interaction
	q := make(url.Values, len(it.Query)+1)
	for k, v := range it.Query {
		q[k] = append([]string(nil), v...)
	}
	q[name] = append([]string{value}, q[name]...)
	if x.inner == nil {
		x.inner = x.r.Clone(x.r.Context())
	}
	x.inner.Header.Set("If-None-Exist", q.Encode())
	x.d.Narrowed = true
	return nil
}

// narrowURLCriteria confines the criteria of a conditional update, patch
// or delete (in the URL query) to the compartment on the resource's primary
// patient link.
func (x *exchange) narrowURLCriteria() *refusal {
	name, value, e := x.criteriaLink()
	if e != nil || name == "" {
		return e
	}
	x.addQuery(name, value)
	x.d.Narrowed = true
	return nil
}

// knownCriteria refuses conditional criteria that name a search parameter
// the type does not define ("Identifier", "identifer"): a server that
// ignores it would match, and overwrite or delete, more than the client
// meant.
func (x *exchange) knownCriteria() *refusal {
	rt := x.d.Interaction.ResourceType
	for key := range x.d.Interaction.Query {
		name, _, _ := strings.Cut(key, ":")
		if _, ok := searchparam.Lookup(x.a.spVersion, rt, name); !ok {
			return badRequest("the conditional criteria use a search parameter "+rt+" does not define: "+logTrunc(name, 64), nil)
		}
	}
	return nil
}

// primaryLink returns the search parameter of type rt that names whose
// record a resource is (Definition.NarrowParam: patient or subject for most
// types, _id for Patient), the value that binds it to the Patient id, and
// whether the criteria q already bind it. Conditional criteria are held to
// this link, not to any compartment parameter: a resource in the compartment
// only as performer may be another patient's record.
func (x *exchange) primaryLink(rt string, q url.Values, id string) (name, value string, bound, ok bool) {
	if rt == "Patient" {
		name, value = "_id", id
	} else if name, ok = x.a.patientDef.NarrowParam(rt); !ok {
		return "", "", false, false
	} else {
		value = "Patient/" + id
	}
	sub := url.Values{name: q[name], name + ":Patient": q[name+":Patient"]}
	return name, value, x.a.checker.Binds(rt, sub, compartment.Patient, id), true
}

// otherPatientReference returns a reference of res that names, or may
// name, a Patient of this server other than the patient every access is
// held to; "" when there is none or no such patient.
func (x *exchange) otherPatientReference(res map[string]any) string {
	id := commonPatient(x.acs)
	if id == "" {
		return ""
	}
	return x.a.otherPatientRef(res, id)
}

// otherPatientRef returns a reference res holds, anywhere (contained
// resources and extensions included), that names or may name a Patient of
// this server other than Patient/id; "" when there is none. With
// IncludeLinkedPatients, a Patient's own links do not count.
func (a *authorizer) otherPatientRef(res map[string]any, id string) string {
	var walk func(v any) string
	walk = func(v any) string {
		switch t := v.(type) {
		case map[string]any:
			for k, c := range t {
				if s, ok := c.(string); ok && k == "reference" {
					if a.refersToOtherPatient(s, id) {
						return s
					}
					continue
				}
				if r := walk(c); r != "" {
					return r
				}
			}
		case []any:
			for _, c := range t {
				if r := walk(c); r != "" {
					return r
				}
			}
		}
		return ""
	}
	if !a.excludeLinked && res["resourceType"] == "Patient" {
		if _, has := res["link"]; has {
			res = maps.Clone(res)
			delete(res, "link")
		}
	}
	return walk(res)
}

// otherPatientRefFlat is otherPatientRef for a resource read flat.
func (a *authorizer) otherPatientRefFlat(d *fhirjson.RefDoc, id string) string {
	skipLinks := !a.excludeLinked && d.ResourceType == "Patient"
	for i := range d.Len() {
		path, ref := d.Ref(i)
		if skipLinks && len(path) > 0 && path[0] == "link" {
			continue // a Patient's own links (IncludeLinkedPatients)
		}
		if a.refersToOtherPatient(ref, id) {
			return ref
		}
	}
	return ""
}

// resolveURNs returns a copy of v in which every reference to the fullUrl
// of another entry of the same Bundle (urn:uuid:, urn:oid:) is replaced by
// what that entry writes, as the server will resolve it.
func resolveURNs(v any, urns map[string]string) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, c := range t {
			if s, ok := c.(string); ok && k == "reference" {
				if target, ok := urns[s]; ok {
					out[k] = target
					continue
				}
			}
			out[k] = resolveURNs(c, urns)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, c := range t {
			out[i] = resolveURNs(c, urns)
		}
		return out
	}
	return v
}

// refersToOtherPatient reports whether ref names, or may name, a Patient
// of this server other than id (see compartment.Checker.RefersToOther).
func (a *authorizer) refersToOtherPatient(ref, id string) bool {
	return a.checker.RefersToOther(ref, compartment.Patient, id)
}
