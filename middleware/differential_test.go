package middleware

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/internal/lenientfhir"
)

// Differential tests: the enforcement point in front of a lenient Go FHIR
// server (internal/lenientfhir) that decodes every body with encoding/json
// into typed structs (case-insensitive member names, 'ſ' and the Kelvin
// sign folded, last duplicate wins, invalid UTF-8 replaced, unknown members
// ignored). Whatever the guard lets through, the server must execute only
// what the guard judged, and nothing may touch another patient than the
// token's (123).
//
// Invariants checked for every request (diffCheck):
//
//   - I1: every write the server executed (any method but GET/HEAD, status
//     below 400) touched only Patient/123: the resources it wrote, replaced,
//     deleted or returned refer to no other patient.
//   - I2: the response the client received shows no other patient's data
//     (reads are verified by the guard on the response, so a read the
//     server executed but the guard withheld is not a leak).
//   - I3: when the guard refused (its decision hook reports a refusal), the
//     server executed no write at all.
//   - I4 (fuzz, and legitimate requests): for a 2xx answer, the server
//     executed exactly the interaction(s) the guard authorised: for a
//     Bundle, the same number of entries with the same methods and URLs
//     (queries may only have been narrowed by the guard).
//
// The guard's own read of the stored version before an update, patch or
// delete ("probe": a direct GET the server receives while the client's
// request is not a GET) is not the client's request and is left out.

// diffTarget is a request shape: the body is the variable part.
type diffTarget struct{ method, path, contentType string }

const (
	dtBundle = iota
	dtCreate
	dtUpdate
	dtPatch
	dtPatient
	dtCondUpdate
)

var diffTargets = [...]diffTarget{
	dtBundle:  {"POST", "/", "application/fhir+json"},
	dtCreate:  {"POST", "/Observation", "application/fhir+json"},
	dtUpdate:  {"PUT", "/Observation/o123", "application/fhir+json"},
	dtPatch:   {"PATCH", "/Observation/o123", "application/json-patch+json"},
	dtPatient: {"PUT", "/Patient/123", "application/fhir+json"},
	// Narrowed by the guard to patient 123: s123 (s456 shares the identifier).
	dtCondUpdate: {"PUT", "/Observation?identifier=urn:test|shared", "application/fhir+json"},
}

// diffCase is one request of the tables.
type diffCase struct {
	name   string
	target int
	body   string
}

const (
	diffObs123  = `{"resourceType":"Observation","status":"final","subject":{"reference":"Patient/123"}}`
	diffObs456  = `{"resourceType":"Observation","status":"final","subject":{"reference":"Patient/456"}}`
	diffDel456  = `{"request":{"method":"DELETE","url":"Observation/o456"}}`
	diffGetP456 = `{"request":{"method":"GET","url":"Patient/456"}}`
)

// diffBundle builds a Bundle; members is the raw text after "type".
func diffBundle(typ, members string) string {
	return `{"resourceType":"Bundle","type":"` + typ + `",` + members + `}`
}

// diffBinaryPatch wraps a JSON Patch in a Binary, as a Bundle carries it.
func diffBinaryPatch(patch string) string {
	return `{"resourceType":"Binary","contentType":"application/json-patch+json","data":"` + base64.StdEncoding.EncodeToString([]byte(patch)) + `"}`
}

// diffFocus is an Observation of patient 123 whose focus is ref.
func diffFocus(ref string) string {
	return `{"resourceType":"Observation","subject":{"reference":"Patient/123"},"focus":[{"reference":"` + ref + `"}]}`
}

func diffDeep(n int, inner string) string {
	return strings.Repeat("[", n) + inner + strings.Repeat("]", n)
}

// diffAttacks are requests that try to make the server do something for
// another patient than 123 which the guard does not see.
var diffAttacks = []diffCase{
	// Bundle member names the guard matches case-sensitively.
	{"Entry batch GET Patient/456", dtBundle, diffBundle("batch", `"Entry":[`+diffGetP456+`]`)},
	{"ENTRY transaction DELETE o456", dtBundle, diffBundle("transaction", `"ENTRY":[`+diffDel456+`]`)},
	{"eNtry batch DELETE o456", dtBundle, diffBundle("batch", `"eNtry":[`+diffDel456+`]`)},
	{"Entry batch conditional DELETE identifier shared", dtBundle, diffBundle("batch", `"Entry":[{"request":{"method":"DELETE","url":"Observation?identifier=urn:test|shared"}}]`)},
	{"entry [] and Entry", dtBundle, diffBundle("batch", `"entry":[],"Entry":[`+diffDel456+`]`)},
	{"escaped \\u0065ntry (entry)", dtBundle, diffBundle("batch", `"\u0065ntry":[`+diffGetP456+`]`)},
	{"escaped \\u0045ntry (Entry)", dtBundle, diffBundle("transaction", `"\u0045ntry":[`+diffDel456+`]`)},
	{"Request in entry", dtBundle, diffBundle("batch", `"entry":[{"Request":{"method":"DELETE","url":"Observation/o456"}}]`)},
	{"request and escaped \\u0052equest", dtBundle, diffBundle("batch", `"entry":[{"request":{"method":"GET","url":"Patient/123"},"\u0052equest":{"method":"DELETE","url":"Observation/o456"}}]`)},
	{"Method in request", dtBundle, diffBundle("batch", `"entry":[{"request":{"Method":"DELETE","url":"Observation/o456"}}]`)},
	{"URL in request", dtBundle, diffBundle("batch", `"entry":[{"request":{"method":"DELETE","URL":"Observation/o456"}}]`)},
	{"url and Url in request", dtBundle, diffBundle("batch", `"entry":[{"request":{"method":"GET","url":"Patient/123","Url":"Patient/456"}}]`)},
	{"method and METHOD in request", dtBundle, diffBundle("transaction", `"entry":[{"request":{"method":"GET","url":"Observation/o456","METHOD":"DELETE"}}]`)},
	{"Resource in POST entry", dtBundle, diffBundle("transaction", `"entry":[{"Resource":`+diffObs456+`,"request":{"method":"POST","url":"Observation"}}]`)},
	{"resource and Resource in POST entry", dtBundle, diffBundle("transaction", `"entry":[{"resource":`+diffObs123+`,"Resource":`+diffObs456+`,"request":{"method":"POST","url":"Observation"}}]`)},
	{"Type instead of type", dtBundle, `{"resourceType":"Bundle","Type":"batch","entry":[` + diffGetP456 + `]}`},
	// Folded keys: 'ſ' (U+017F) and the Kelvin sign (U+212A).
	{"ſ in requeſt", dtBundle, diffBundle("batch", `"entry":[{"requeſt":{"method":"DELETE","url":"Observation/o456"}}]`)},
	{"escaped ſ in reque\\u017ft", dtBundle, diffBundle("batch", `"entry":[{"reque\u017ft":{"method":"DELETE","url":"Observation/o456"}}]`)},
	{"ſ in reſourceType", dtBundle, `{"reſourceType":"Bundle","type":"batch","Entry":[` + diffDel456 + `]}`},
	{"Kelvin in transaction Patient lin\\u212a", dtBundle, diffBundle("transaction", `"entry":[{"resource":{"resourceType":"Patient","id":"123","lin\u212a":[{"other":{"reference":"Patient/456"},"type":"seealso"}]},"request":{"method":"PUT","url":"Patient/123"}}]`)},
	{"Kelvin in Patient lin\\u212a", dtPatient, `{"resourceType":"Patient","id":"123","lin\u212a":[{"other":{"reference":"Patient/456"},"type":"seealso"}]}`},
	{"Kelvin in Patient linK with Reference", dtPatient, `{"resourceType":"Patient","id":"123","linK":[{"other":{"Reference":"Patient/456"},"type":"seealso"}]}`},
	{"ſubject after subject in create", dtCreate, `{"resourceType":"Observation","subject":{"reference":"Patient/123"},"ſubject":{"reference":"Patient/456"}}`},
	// Duplicates.
	{"duplicate entry, second malicious", dtBundle, diffBundle("batch", `"entry":[{"request":{"method":"GET","url":"Observation?patient=123"}}],"entry":[`+diffDel456+`]`)},
	{"duplicate url in request", dtBundle, diffBundle("batch", `"entry":[{"request":{"method":"GET","url":"Patient/123","url":"Patient/456"}}]`)},
	{"duplicate request in entry", dtBundle, diffBundle("transaction", `"entry":[{"request":{"method":"GET","url":"Patient/123"},"request":{"method":"DELETE","url":"Observation/o456"}}]`)},
	{"duplicate subject in transaction resource", dtBundle, diffBundle("transaction", `"entry":[{"resource":{"resourceType":"Observation","subject":{"reference":"Patient/123"},"subject":{"reference":"Patient/456"}},"request":{"method":"POST","url":"Observation"}}]`)},
	// Unknown members of entry.request.
	{"IfNoneExist in batch POST", dtBundle, diffBundle("batch", `"entry":[{"resource":`+diffObs123+`,"request":{"method":"POST","url":"Observation","IfNoneExist":"identifier=urn:test|o456"}}]`)},
	{"IfNoneExist in transaction POST", dtBundle, diffBundle("transaction", `"entry":[{"resource":`+diffObs123+`,"request":{"method":"POST","url":"Observation","IfNoneExist":"identifier=urn:test|o456"}}]`)},
	{"ifNoneExist and IfNoneExist", dtBundle, diffBundle("batch", `"entry":[{"resource":`+diffObs123+`,"request":{"method":"POST","url":"Observation","ifNoneExist":"identifier=urn:test|o123","IfNoneExist":"identifier=urn:test|o456"}}]`)},
	// Encoding.
	{"BOM before Bundle", dtBundle, "\ufeff" + diffBundle("batch", `"entry":[`+diffGetP456+`]`)},
	{"BOM before create", dtCreate, "\ufeff" + diffObs123},
	{"invalid UTF-8 in entry key", dtBundle, diffBundle("batch", "\"entr\xff\":["+diffDel456+"]")},
	{"invalid UTF-8 in request key", dtBundle, diffBundle("batch", "\"entry\":[{\"request\xff\":{\"method\":\"DELETE\",\"url\":\"Observation/o456\"}}]")},
	{"invalid UTF-8 in create key", dtCreate, "{\"resourceType\":\"Observation\",\"subject\":{\"reference\":\"Patient/123\"},\"focus\xff\":[{\"reference\":\"Patient/456\"}]}"},
	// Depth.
	{"deep unknown member in Bundle", dtBundle, diffBundle("batch", `"x":`+diffDeep(200, "1")+`,"entry":[{"request":{"method":"GET","url":"Observation?patient=123"}}]`)},
	{"excess depth in Bundle then Entry", dtBundle, diffBundle("batch", `"x":`+diffDeep(10001, "1")+`,"Entry":[`+diffDel456+`]`)},
	{"excess depth in create", dtCreate, `{"resourceType":"Observation","subject":{"reference":"Patient/123"},"x":` + diffDeep(10001, "1") + `}`},
	// Resource bodies: case variants the guard's reference walk misses.
	{"subject then Subject", dtCreate, `{"resourceType":"Observation","subject":{"reference":"Patient/123"},"Subject":{"reference":"Patient/456"}}`},
	{"Subject then subject", dtCreate, `{"resourceType":"Observation","Subject":{"reference":"Patient/456"},"subject":{"reference":"Patient/123"}}`},
	{"Subject with Reference", dtCreate, `{"resourceType":"Observation","subject":{"reference":"Patient/123"},"Subject":{"Reference":"Patient/456"}}`},
	{"reference and Reference in subject", dtCreate, `{"resourceType":"Observation","subject":{"reference":"Patient/123","Reference":"Patient/456"}}`},
	{"escaped sub\\u006aect duplicate", dtCreate, `{"resourceType":"Observation","subject":{"reference":"Patient/456"},"sub\u006aect":{"reference":"Patient/123"}}`},
	{"focus with Reference", dtCreate, `{"resourceType":"Observation","subject":{"reference":"Patient/123"},"focus":[{"Reference":"Patient/456"}]}`},
	{"Focus with reference", dtCreate, `{"resourceType":"Observation","subject":{"reference":"Patient/123"},"Focus":[{"reference":"Patient/456"}]}`},
	{"update o123 with Reference in subject", dtUpdate, `{"resourceType":"Observation","id":"o123","subject":{"reference":"Patient/123","Reference":"Patient/456"}}`},
	{"update o123 with ID o456", dtUpdate, `{"resourceType":"Observation","id":"o123","ID":"o456","subject":{"reference":"Patient/123"}}`},
	{"transaction POST with Reference in subject", dtBundle, diffBundle("transaction", `"entry":[{"resource":{"resourceType":"Observation","subject":{"reference":"Patient/123","Reference":"Patient/456"}},"request":{"method":"POST","url":"Observation"}}]`)},
	{"batch POST with focus Reference", dtBundle, diffBundle("batch", `"entry":[{"resource":{"resourceType":"Observation","subject":{"reference":"Patient/123"},"focus":[{"Reference":"Patient/456"}]},"request":{"method":"POST","url":"Observation"}}]`)},
	// Reference forms a lenient server may resolve to Patient/456.
	{"focus /Patient/456", dtCreate, diffFocus("/Patient/456")},
	{"focus Patient/456/", dtCreate, diffFocus("Patient/456/")},
	{"focus PATIENT/456", dtCreate, diffFocus("PATIENT/456")},
	{"focus Patient/456/_history/1", dtCreate, diffFocus("Patient/456/_history/1")},
	{"focus base/Patient/456", dtCreate, diffFocus(testBase + "/Patient/456")},
	{"focus http base/Patient/456", dtCreate, diffFocus("http://ehr.example.org/fhir/Patient/456")},
	{"focus upper-case host base/Patient/456", dtCreate, diffFocus("https://EHR.example.org/fhir/Patient/456")},
	{"focus base//Patient/456", dtCreate, diffFocus(testBase + "//Patient/456")},
	// Criteria, URLs and methods of entries.
	{"batch conditional DELETE of a shared identifier", dtBundle, diffBundle("batch", `"entry":[{"request":{"method":"DELETE","url":"Observation?identifier=urn:test|shared"}}]`)},
	{"transaction conditional DELETE with Identifier", dtBundle, diffBundle("transaction", `"entry":[{"request":{"method":"DELETE","url":"Observation?Identifier=urn:test|shared"}}]`)},
	{"batch ifNoneExist naming o456", dtBundle, diffBundle("batch", `"entry":[{"resource":`+diffObs123+`,"request":{"method":"POST","url":"Observation","ifNoneExist":"identifier=urn:test|o456"}}]`)},
	{"batch conditional PUT of a shared identifier", dtBundle, diffBundle("batch", `"entry":[{"resource":`+diffObs123+`,"request":{"method":"PUT","url":"Observation?identifier=urn:test|shared"}}]`)},
	{"conditional PUT of a shared identifier", dtCondUpdate, diffObs123},
	{"conditional PUT with id s456", dtCondUpdate, `{"resourceType":"Observation","id":"s456","subject":{"reference":"Patient/123"}}`},
	{"percent-encoded id in entry URL", dtBundle, diffBundle("batch", `"entry":[{"request":{"method":"DELETE","url":"Observation/o%34%35%36"}}]`)},
	{"percent-encoded slash in entry URL", dtBundle, diffBundle("batch", `"entry":[{"request":{"method":"DELETE","url":"Observation%2Fo456"}}]`)},
	{"trailing slash in entry URL", dtBundle, diffBundle("batch", `"entry":[{"request":{"method":"DELETE","url":"Observation/o456/"}}]`)},
	{"absolute entry URL", dtBundle, diffBundle("batch", `"entry":[{"request":{"method":"DELETE","url":"https://ehr.example.org/fhir/Observation/o456"}}]`)},
	{"lower-case entry method", dtBundle, diffBundle("batch", `"entry":[{"request":{"method":"delete","url":"Observation/o456"}}]`)},
	{"null entry before a search", dtBundle, diffBundle("batch", `"entry":[null,{"request":{"method":"GET","url":"Observation?patient=123"}}]`)},
	{"batch Binary patch with Data", dtBundle, diffBundle("batch", `"entry":[{"resource":{"resourceType":"Binary","contentType":"application/json-patch+json","data":"W10=","Data":"`+base64.StdEncoding.EncodeToString([]byte(`[{"op":"replace","path":"/subject/reference","value":"Patient/456"}]`))+`"},"request":{"method":"PATCH","url":"Observation/o123"}}]`)},
	// JSON Patch.
	{"patch move subject to focus", dtPatch, `[{"op":"add","path":"/focus","value":[]},{"op":"move","from":"/subject","path":"/focus/-"}]`},
	{"patch copy subject to focus then replace", dtPatch, `[{"op":"add","path":"/focus","value":[{"reference":"Patient/123"}]},{"op":"replace","path":"/focus/0/reference","value":"Patient/456"}]`},
	{"patch PATH only", dtPatch, `[{"op":"replace","PATH":"/subject/reference","value":"Patient/456"}]`},
	{"patch path and Path", dtPatch, `[{"op":"replace","path":"/status","Path":"/subject/reference","value":"Patient/456"}]`},
	{"patch value and Value", dtPatch, `[{"op":"add","path":"/focus","value":[],"Value":[{"reference":"Patient/456"}]}]`},
	{"patch op and Op", dtPatch, `[{"op":"test","Op":"add","path":"/focus","value":[{"Reference":"Patient/456"}]}]`},
	{"patch add focus then focus/0/reference", dtPatch, `[{"op":"add","path":"/focus","value":[{}]},{"op":"add","path":"/focus/0/reference","value":"Patient/456"}]`},
	{"patch add focus with Reference", dtPatch, `[{"op":"add","path":"/focus","value":[{"Reference":"Patient/456"}]}]`},
	{"patch add /ſubject with Reference", dtPatch, `[{"op":"add","path":"/ſubject","value":{"Reference":"Patient/456"}}]`},
	{"patch add /Subject with reference", dtPatch, `[{"op":"add","path":"/Subject","value":{"reference":"Patient/456"}}]`},
	{"batch Binary patch focus Reference", dtBundle, diffBundle("batch", `"entry":[{"resource":`+diffBinaryPatch(`[{"op":"add","path":"/focus","value":[{"Reference":"Patient/456"}]}]`)+`,"request":{"method":"PATCH","url":"Observation/o123"}}]`)},
	{"batch Binary patch Path", dtBundle, diffBundle("batch", `"entry":[{"resource":`+diffBinaryPatch(`[{"op":"replace","path":"/status","Path":"/subject/reference","value":"Patient/456"}]`)+`,"request":{"method":"PATCH","url":"Observation/o123"}}]`)},
}

// diffLegit are legitimate requests: they must succeed and execute what
// was sent.
var diffLegit = []struct {
	diffCase
	want []string // executed operations, diffOpString form
}{
	{diffCase{"batch search Observation?patient=123", dtBundle, diffBundle("batch", `"entry":[{"request":{"method":"GET","url":"Observation?patient=123"}}]`)},
		[]string{"#0 GET Observation?patient=123 -> 200"}},
	{diffCase{"batch read o123", dtBundle, diffBundle("batch", `"entry":[{"request":{"method":"GET","url":"Observation/o123"}}]`)},
		[]string{"#0 GET Observation/o123 -> 200"}},
	{diffCase{"create Observation for 123", dtCreate, diffObs123},
		[]string{"POST Observation -> 201"}},
	{diffCase{"JSON Patch on o123", dtPatch, `[{"op":"replace","path":"/status","value":"amended"},{"op":"add","path":"/note","value":[{"text":"ok"}]}]`},
		[]string{"PATCH Observation/o123 -> 200"}},
	{diffCase{"transaction create and update for 123", dtBundle, diffBundle("transaction", `"entry":[{"resource":`+diffObs123+`,"request":{"method":"POST","url":"Observation"}},{"resource":{"resourceType":"Observation","id":"o123","status":"amended","subject":{"reference":"Patient/123"}},"request":{"method":"PUT","url":"Observation/o123"}}]`)},
		[]string{"#0 POST Observation -> 201", "#1 PUT Observation/o123 -> 200"}},
}

// diffCapture receives the guard's decision for one request.
type diffCapture struct {
	called  bool
	d       *Decision
	refusal error
}

type diffCaptureKey struct{}

// diffConfig configures the guard under test, reporting decisions to the
// diffCapture in each request's context.
func diffConfig() AuthorizeConfig {
	return AuthorizeConfig{BaseURL: testBase, Logger: quietLogger(), OnDecision: diffOnDecision}
}

func diffOnDecision(r *http.Request, d *Decision, refusal error) {
	c, ok := r.Context().Value(diffCaptureKey{}).(*diffCapture)
	if !ok {
		return
	}
	c.called, c.refusal = true, refusal
	if d != nil {
		dc := *d
		c.d = &dc
	}
}

// diffOutcome is what happened to one request.
type diffOutcome struct {
	target  diffTarget
	status  int
	body    []byte
	capture diffCapture
	ops     []lenientfhir.Op // what the server executed for the client
	probes  []lenientfhir.Op // the guard's own reads of stored versions
	srv     *lenientfhir.Server
}

// diffDo sends body to target through a with a patient/*.cruds token for
// patient 123, in front of a fresh lenient server.
func diffDo(a *authorizer, target int, body []byte) *diffOutcome {
	tg := diffTargets[target]
	srv := lenientfhir.New(testBase)
	out := &diffOutcome{target: tg, srv: srv}
	r := httptest.NewRequest(tg.method, testBase+tg.path, bytes.NewReader(body))
	r.Header.Set("Content-Type", tg.contentType)
	r = r.WithContext(context.WithValue(r.Context(), diffCaptureKey{}, &out.capture))
	rec := httptest.NewRecorder()
	withToken(token("patient/*.cruds", "123"), a.Handler(srv)).ServeHTTP(rec, r)
	out.status, out.body = rec.Code, rec.Body.Bytes()
	for _, op := range srv.Log() {
		if op.Entry < 0 && op.HTTPMethod == http.MethodGet && tg.method != http.MethodGet && tg.method != http.MethodHead {
			out.probes = append(out.probes, op)
			continue
		}
		out.ops = append(out.ops, op)
	}
	return out
}

func diffIsWrite(op lenientfhir.Op) bool {
	return op.Method != http.MethodGet && op.Method != http.MethodHead && op.Status < 400
}

func diffOpString(op lenientfhir.Op) string {
	s := ""
	if op.Entry >= 0 {
		s = fmt.Sprintf("#%d ", op.Entry)
	}
	s += op.Method + " " + op.URL
	if op.IfNoneExist != "" {
		s += " [If-None-Exist: " + op.IfNoneExist + "]"
	}
	return s + fmt.Sprintf(" -> %d", op.Status)
}

func (o *diffOutcome) describe() string {
	var b strings.Builder
	refused := "allowed"
	if o.capture.refusal != nil {
		refused = "refused: " + o.capture.refusal.Error()
	} else if !o.capture.called {
		refused = "no decision"
	}
	fmt.Fprintf(&b, "%s %s -> %d (guard %s)\n", o.target.method, o.target.path, o.status, refused)
	for _, op := range o.ops {
		fmt.Fprintf(&b, "  executed %s touched=%v patients=%v\n", diffOpString(op), op.Touched, op.Patients)
	}
	for _, op := range o.probes {
		fmt.Fprintf(&b, "  probe    %s touched=%v\n", diffOpString(op), op.Touched)
	}
	body := o.body
	if len(body) > 600 {
		body = body[:600]
	}
	fmt.Fprintf(&b, "  response %s", body)
	return b.String()
}

// diffForeignPatients returns the patients other than 123 that the value
// shows: Patient resources and references, wherever they are. Member names
// are compared case-insensitively, as the client's own parser may.
func diffForeignPatients(v any) []string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			var rt, id string
			for k, c := range t {
				switch s, _ := c.(string); strings.ToLower(k) {
				case "resourcetype":
					rt = s
				case "id":
					id = s
				case "reference":
					if p, ok := lenientfhir.PatientOf(s); ok && p != "Patient/123" {
						out = append(out, p)
					}
				}
				walk(c)
			}
			if rt == "Patient" && id != "" && id != "123" {
				out = append(out, "Patient/"+id)
			}
		case []any:
			for _, c := range t {
				walk(c)
			}
		}
	}
	walk(v)
	return out
}

// diffCheck returns the violations of I1–I3.
func diffCheck(o *diffOutcome) []string {
	var bad []string
	for _, op := range o.ops {
		if !diffIsWrite(op) {
			continue
		}
		for _, p := range op.Patients {
			if p != "Patient/123" {
				bad = append(bad, fmt.Sprintf("I1: the server executed %s touching %v (%v)", diffOpString(op), op.Touched, op.Patients))
				break
			}
		}
		if o.capture.refusal != nil {
			bad = append(bad, fmt.Sprintf("I3: the guard refused but the server executed %s", diffOpString(op)))
		}
	}
	var doc any
	if json.Unmarshal(o.body, &doc) == nil {
		if f := diffForeignPatients(doc); len(f) > 0 {
			bad = append(bad, fmt.Sprintf("I2: the response shows %v", f))
		}
	}
	return bad
}

// diffQuerySuperset reports whether query got holds every value of want
// (the guard may only add criteria).
func diffQuerySuperset(got, want string) bool {
	g, err1 := url.ParseQuery(got)
	w, err2 := url.ParseQuery(want)
	if err1 != nil || err2 != nil {
		return got == want
	}
	for k, vs := range w {
		for _, v := range vs {
			if !slices.Contains(g[k], v) {
				return false
			}
		}
	}
	return true
}

// diffSameURL compares the URL the server ran with the one the guard
// authorised; narrowed says the guard may have added criteria.
func diffSameURL(ran, authorised string, narrowed bool) bool {
	if ran == authorised {
		return true
	}
	rp, rq, _ := strings.Cut(ran, "?")
	ap, aq, _ := strings.Cut(authorised, "?")
	return narrowed && rp == ap && diffQuerySuperset(rq, aq)
}

// diffCheckAuthorised returns the violations of I4 for a 2xx answer.
func diffCheckAuthorised(o *diffOutcome) []string {
	if o.status < 200 || o.status > 299 || !o.capture.called || o.capture.refusal != nil || o.capture.d == nil {
		return nil
	}
	it := o.capture.d.Interaction
	narrowed := o.capture.d.Narrowed
	var bad []string
	if it.Bundle != nil {
		entries := it.Bundle.Entries
		if len(o.ops) != len(entries) {
			bad = append(bad, fmt.Sprintf("I4: the guard authorised %d entries, the server ran %d", len(entries), len(o.ops)))
		}
		for i := 0; i < len(o.ops) && i < len(entries); i++ {
			op, e := o.ops[i], entries[i]
			switch {
			case op.Entry != i:
				bad = append(bad, fmt.Sprintf("I4: operation %d ran entry %d", i, op.Entry))
			case op.Method != e.Request.Method:
				bad = append(bad, fmt.Sprintf("I4: entry %d: the guard authorised %s, the server ran %s", i, e.Request.Method, op.Method))
			case !diffSameURL(op.URL, e.Request.URL, narrowed):
				bad = append(bad, fmt.Sprintf("I4: entry %d: the guard authorised URL %q, the server ran %q", i, e.Request.URL, op.URL))
			case op.IfNoneExist != e.Request.IfNoneExist && !(narrowed && e.Request.IfNoneExist != "" && diffQuerySuperset(op.IfNoneExist, e.Request.IfNoneExist)):
				bad = append(bad, fmt.Sprintf("I4: entry %d: the guard authorised ifNoneExist %q, the server ran %q", i, e.Request.IfNoneExist, op.IfNoneExist))
			}
		}
		return bad
	}
	if len(o.ops) != 1 {
		return append(bad, fmt.Sprintf("I4: the guard authorised one %s, the server ran %d operations", it, len(o.ops)))
	}
	op := o.ops[0]
	if op.Method != it.Method || op.Type != it.ResourceType || (it.ID != "" && op.ID != it.ID) {
		bad = append(bad, fmt.Sprintf("I4: the guard authorised %s, the server ran %s", it, diffOpString(op)))
	}
	return bad
}

// TestDifferentialAttacks sends each attack with a patient/*.cruds token
// for patient 123: the guard must refuse it (and the server execute no
// write), or the server must touch only patient 123.
func TestDifferentialAttacks(t *testing.T) {
	h := newHarness(t, func(c *AuthorizeConfig) { c.OnDecision = diffOnDecision })
	for _, c := range diffAttacks {
		t.Run(c.name, func(t *testing.T) {
			o := diffDo(h.authz, c.target, []byte(c.body))
			if bad := diffCheck(o); len(bad) > 0 {
				t.Errorf("%s\n%s", strings.Join(bad, "\n"), o.describe())
			} else {
				t.Logf("ok: %s", o.describe())
			}
		})
	}
	for _, c := range diffLegit {
		t.Run("legit/"+c.name, func(t *testing.T) {
			o := diffDo(h.authz, c.target, []byte(c.body))
			var got []string
			for _, op := range o.ops {
				got = append(got, diffOpString(op))
			}
			bad := append(diffCheck(o), diffCheckAuthorised(o)...)
			if o.status < 200 || o.status > 299 || o.capture.refusal != nil {
				bad = append(bad, fmt.Sprintf("a legitimate request was not served: %d", o.status))
			}
			if !slices.Equal(got, c.want) {
				bad = append(bad, fmt.Sprintf("executed %q, want %q", got, c.want))
			}
			if len(bad) > 0 {
				t.Errorf("%s\n%s", strings.Join(bad, "\n"), o.describe())
			}
		})
	}
	t.Run("legit/patch applied", func(t *testing.T) {
		o := diffDo(h.authz, dtPatch, []byte(`[{"op":"replace","path":"/status","value":"amended"}]`))
		if r := o.srv.Get("Observation", "o123"); o.status != 200 || r == nil || r.Status != "amended" || r.Subject == nil || r.Subject.Reference != "Patient/123" {
			t.Fatalf("the patch was not applied as sent: %+v\n%s", r, o.describe())
		}
	})
}

// FuzzBundleDifferential mutates Bundle, resource and JSON Patch bodies
// (re-cased, escaped, folded, duplicated or unknown members, depth, BOM,
// invalid UTF-8, another patient's ids) and checks I1–I4 for each.
//
// The seed corpus holds the attack table, so the fuzz target fails on its
// seeds for as long as TestDifferentialAttacks fails. To explore beyond
// them meanwhile, FHIRGUARD_DIFF_SEEDS=legit seeds only the legitimate
// bodies and their mutations (the invariants are the same).
func FuzzBundleDifferential(f *testing.F) {
	legitOnly := os.Getenv("FHIRGUARD_DIFF_SEEDS") == "legit"
	if !legitOnly {
		for _, c := range diffAttacks {
			f.Add(uint8(c.target), []byte(c.body), []byte(nil))
		}
	}
	for _, c := range diffLegit {
		f.Add(uint8(c.target), []byte(c.body), []byte(nil))
		for k := range uint8(diffMutationKinds) {
			f.Add(uint8(c.target), []byte(c.body), []byte{k, 1, 3, k, 4, 7})
		}
	}
	a, err := newAuthorizer(diffConfig())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, target uint8, body, muts []byte) {
		if len(body) > 1<<16 || len(muts) > 64 {
			return
		}
		body = diffMutate(body, muts)
		o := diffDo(a, int(target)%len(diffTargets), body)
		if bad := append(diffCheck(o), diffCheckAuthorised(o)...); len(bad) > 0 {
			t.Fatalf("%s\nbody: %q\n%s", strings.Join(bad, "\n"), body, o.describe())
		}
	})
}

// diffMember is a member found in a (possibly broken) JSON text: the
// spans of its key (with quotes) and of its value.
type diffMember struct{ keyStart, keyEnd, valStart, valEnd int }

// diffScanMembers finds the members of every object in b, nested ones
// included, without requiring b to be valid JSON.
func diffScanMembers(b []byte) []diffMember {
	var out []diffMember
	for i := 0; i < len(b); {
		if b[i] != '"' {
			i++
			continue
		}
		end := diffSkipString(b, i)
		j := end
		for j < len(b) && (b[j] == ' ' || b[j] == '\t' || b[j] == '\n' || b[j] == '\r') {
			j++
		}
		if j < len(b) && b[j] == ':' {
			vs := j + 1
			for vs < len(b) && (b[vs] == ' ' || b[vs] == '\t' || b[vs] == '\n' || b[vs] == '\r') {
				vs++
			}
			out = append(out, diffMember{i, end, vs, diffSkipValue(b, vs)})
		}
		i = end
	}
	return out
}

func diffSkipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

func diffSkipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return diffSkipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = diffSkipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(b) && !strings.ContainsRune(",}] \t\r\n", rune(b[i])) {
		i++
	}
	return i
}

// diffUnknown are members the fuzzer may add next to any member.
var diffUnknown = []string{
	`"IfNoneExist":"identifier=urn:test|o456"`,
	`"ifNoneExist":"identifier=urn:test|o456"`,
	`"Entry":[{"request":{"method":"DELETE","url":"Observation/o456"}}]`,
	`"Request":{"method":"DELETE","url":"Observation/o456"}`,
	`"Method":"DELETE"`,
	`"URL":"Observation/o456"`,
	`"Reference":"Patient/456"`,
	`"Subject":{"Reference":"Patient/456"}`,
	`"Focus":[{"reference":"Patient/456"}]`,
	`"Path":"/subject/reference"`,
	`"Value":"Patient/456"`,
	`"Resource":` + diffObs456,
	`"ID":"o456"`,
}

const diffMutationKinds = 10

// diffMutate applies the mutations muts describes to body: each three
// bytes are a kind, a member selector and an argument.
func diffMutate(body, muts []byte) []byte {
	b := append([]byte(nil), body...)
	for i := 0; i+2 < len(muts) && len(b) < 1<<17; i += 3 {
		kind, sel, arg := muts[i]%diffMutationKinds, int(muts[i+1]), int(muts[i+2])
		if kind == 7 { // BOM
			b = append([]byte("\ufeff"), b...)
			continue
		}
		ms := diffScanMembers(b)
		if len(ms) == 0 {
			continue
		}
		m := ms[sel%len(ms)]
		key := b[m.keyStart+1 : max(m.keyStart+1, m.keyEnd-1)]
		val := b[m.valStart:m.valEnd]
		switch kind {
		case 0: // re-case the key
			nk := append([]byte(nil), key...)
			for j := range nk {
				if arg&(1<<(j%8)) != 0 {
					nk[j] = diffFlipCase(nk[j])
				}
			}
			b = diffSplice(b, m.keyStart+1, m.keyStart+1+len(key), nk)
		case 1: // escape one letter of the key
			if len(key) > 0 {
				j := arg % len(key)
				if c := key[j]; c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
					b = diffSplice(b, m.keyStart+1+j, m.keyStart+2+j, fmt.Appendf(nil, `\u%04x`, c))
				}
			}
		case 2: // fold: 's' to U+017F, 'k' to U+212A, raw or escaped
			if j := bytes.IndexAny(key, "sk"); j >= 0 {
				rep := map[byte][2]string{'s': {"ſ", `\u017f`}, 'k': {"\u212a", `\u212a`}}[key[j]][arg%2]
				b = diffSplice(b, m.keyStart+1+j, m.keyStart+2+j, []byte(rep))
			}
		case 3: // duplicate the member after itself, with another patient's ids
			dup := append(append(append([]byte(","), b[m.keyStart:m.keyEnd]...), ':'), diffEvil(val)...)
			b = diffSplice(b, m.valEnd, m.valEnd, dup)
		case 4: // add a case variant of the member, with another patient's ids
			nk := append([]byte(nil), key...)
			if len(nk) > 0 {
				nk[0] = diffFlipCase(nk[0])
			}
			sib := append(append(append([]byte(`,"`), nk...), `":`...), diffEvil(val)...)
			b = diffSplice(b, m.valEnd, m.valEnd, sib)
		case 5: // add an unknown member
			b = diffSplice(b, m.valEnd, m.valEnd, []byte(","+diffUnknown[arg%len(diffUnknown)]))
		case 6: // wrap the value in arrays
			n := arg%64 + 1
			if arg >= 250 {
				n = 10001
			}
			b = diffSplice(b, m.valStart, m.valEnd, []byte(diffDeep(n, string(val))))
		case 8: // invalid UTF-8 inside the key
			j := m.keyStart + 1 + arg%(len(key)+1)
			b = diffSplice(b, j, j, []byte{0xff})
		case 9: // another patient's ids in the value
			b = diffSplice(b, m.valStart, m.valEnd, diffEvil(val))
		}
	}
	return b
}

func diffSplice(b []byte, from, to int, with []byte) []byte {
	out := make([]byte, 0, len(b)-(to-from)+len(with))
	return append(append(append(out, b[:from]...), with...), b[to:]...)
}

func diffFlipCase(c byte) byte {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
		return c ^ 0x20
	}
	return c
}

// diffEvil rewrites patient 123's ids in v into patient 456's.
func diffEvil(v []byte) []byte {
	return bytes.ReplaceAll(v, []byte("123"), []byte("456"))
}
