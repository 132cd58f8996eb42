package demotest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/examples/internal/demo"
	"github.com/fhirguard/fhirguard/smarttest"
)

// testHardening checks end to end that the guard judges exactly what the
// store will execute, for a patient token of Patient/123 that may create,
// read, update, delete and search every type: each attack is refused and
// leaves the store as it was; each legitimate variant works and the store
// shows its effect.
func testHardening(t *testing.T, s *Started, router demo.Router) {
	h := newHardening(t, s)
	h.fixtures(t)
	t.Run("bundle parser differentials", h.testBundles)
	t.Run("create bodies", h.testCreates)
	t.Run("conditional update body id", h.testConditionalUpdate)
	t.Run("stored version held to the reference rule", h.testStoredVersion)
	t.Run("patch applied then judged", h.testPatch)
	t.Run("reference normalisation", func(t *testing.T) {
		// The default base (http://127.0.0.1:port/fhir) has no letter in its
		// host: a second server named localhost gives the host a case too.
		other := Start(t, router, "-addr", "localhost:0")
		t.Run("127.0.0.1 base, scheme in upper case", h.testReferences)
		t.Run("localhost base, scheme and host in upper case", newHardening(t, other).testReferences)
	})
	t.Run("write answers verified", h.testAnswers)
	t.Run("bodies preserved", h.testBodies)
	t.Run("depth", h.testDepth)
	t.Run("count, total, paging and history oracles", h.testOracles)
	t.Run("scope splitting and token methods", func(t *testing.T) { h.testTokenEdges(t, s) })
	t.Run("encounter enforcement (-enforce-encounter)", func(t *testing.T) { testEncounter(t, router) })
}

// hardening sends the requests of testHardening to one demo server.
type hardening struct {
	base     string
	patient  string // patient/*.cruds, patient 123
	sysRead  string // the banner's system/*.rs token
	sysWrite string // system/*.cruds, for the fixtures only
}

func newHardening(t testing.TB, s *Started) *hardening {
	t.Helper()
	mint := func(o smarttest.TokenOptions) string {
		tok, err := s.AuthServer().MintToken(o)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	return &hardening{
		base:     s.BaseURL(),
		patient:  mint(smarttest.TokenOptions{Scopes: "launch/patient patient/*.cruds", Patient: "123"}),
		sysRead:  s.SystemToken(),
		sysWrite: mint(smarttest.TokenOptions{Scopes: "system/*.cruds"}),
	}
}

// Fixtures (Observations written with the system token; "h-mixed" is
// another patient's record naming Patient/123 only as performer).
const (
	ownPerformer = `,"performer":[{"reference":"Practitioner/9"}]`
	mixedObs     = `{"resourceType":"Observation","id":"h-mixed","status":"final","code":{"text":"hardening"},` +
		`"subject":{"reference":"Patient/456"},"performer":[{"reference":"Patient/123"}]}`
)

func (h *hardening) fixtures(t testing.TB) {
	t.Helper()
	for _, body := range []string{
		mixedObs,
		obs("h-own3", "Patient/123", ident("own3")),
		obs("h-own4", "Patient/123", ownPerformer),
		obs("h-own4b", "Patient/123", ident("own4b")),
		obs("h-own5", "Patient/123", ownPerformer),
		obs("h-own8", "Patient/123", ident("own8")),
	} {
		var head struct{ ID string }
		if err := json.Unmarshal([]byte(body), &head); err != nil {
			t.Fatal(err)
		}
		if a := h.send(t, "PUT", "/Observation/"+head.ID, h.sysWrite, fhirJSON, body); a.code != 201 && a.code != 200 {
			t.Fatalf("fixture %s: %d %.300s", head.ID, a.code, a.body)
		}
	}
}

const (
	fhirJSON  = "application/fhir+json"
	jsonPatch = "application/json-patch+json"
)

// obs returns an Observation of subject; extra is raw JSON members, each
// starting with a comma.
func obs(id, subject, extra string) string {
	s := `{"resourceType":"Observation",`
	if id != "" {
		s += `"id":"` + id + `",`
	}
	return s + `"status":"final","code":{"text":"hardening"},"subject":{"reference":"` + subject + `"}` + extra + `}`
}

// ident is an identifier member in the system urn:hardening.
func ident(value string) string {
	return `,"identifier":[{"system":"urn:hardening","value":"` + value + `"}]`
}

func bundle(typ, members string) string {
	return `{"resourceType":"Bundle","type":"` + typ + `",` + members + `}`
}

// answer is an HTTP response.
type answer struct {
	code   int
	body   []byte
	header http.Header
}

// send sends body (raw bytes, with Content-Type ctype when not empty) and
// header, pairs of name and value.
func (h *hardening) send(t testing.TB, method, path, token, ctype, body string, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, h.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return answer{code: res.StatusCode, body: b, header: res.Header}
}

// state is what the system token reads of some resources ("Type/id") and
// the number of versions the store holds (the total of the system history,
// which any write increases).
type state struct {
	reads    map[string]string
	versions int
}

func (h *hardening) state(t testing.TB, refs ...string) state {
	t.Helper()
	st := state{reads: map[string]string{}}
	for _, ref := range refs {
		a := h.send(t, "GET", "/"+ref, h.sysRead, "", "")
		st.reads[ref] = string(a.body)
		if a.code != 200 {
			t.Fatalf("GET %s with the system token: %d %.300s", ref, a.code, a.body)
		}
	}
	a := h.send(t, "GET", "/_history?_count=1", h.sysRead, "", "")
	var b struct{ Total *int }
	if a.code != 200 || json.Unmarshal(a.body, &b) != nil || b.Total == nil {
		t.Fatalf("system history: %d %.300s", a.code, a.body)
	}
	st.versions = *b.Total
	return st
}

// unchanged fails unless the store is as before.
func (h *hardening) unchanged(t testing.TB, before state) {
	t.Helper()
	var refs []string
	for ref := range before.reads {
		refs = append(refs, ref)
	}
	after := h.state(t, refs...)
	for _, ref := range refs {
		if after.reads[ref] != before.reads[ref] {
			t.Errorf("%s changed:\nbefore %.300s\nafter  %.300s", ref, before.reads[ref], after.reads[ref])
		}
	}
	if after.versions != before.versions {
		t.Errorf("the store holds %d versions, %d before: something was written", after.versions, before.versions)
	}
}

// read returns the resource ref as the system token reads it.
func (h *hardening) read(t testing.TB, ref string) map[string]any {
	t.Helper()
	a := h.send(t, "GET", "/"+ref, h.sysRead, "", "")
	if a.code != 200 {
		t.Fatalf("GET %s with the system token: %d %.300s", ref, a.code, a.body)
	}
	return decode(t, a.body)
}

func decode(t testing.TB, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("not a JSON object (%v): %.300s", err, b)
	}
	return m
}

// holds fails unless the stored resource has every member of sent (its id
// and meta aside) with the same value.
func holds(t testing.TB, stored map[string]any, sent string) {
	t.Helper()
	for k, v := range decode(t, []byte(sent)) {
		if k != "id" && k != "meta" && !reflect.DeepEqual(stored[k], v) {
			t.Errorf("stored %s is %v, sent %v", k, stored[k], v)
		}
	}
}

// created returns "Type/id" of the Location of a create.
func created(t testing.TB, a answer) string {
	t.Helper()
	loc := a.header.Get("Location")
	if i := strings.Index(loc, "/_history/"); i >= 0 {
		loc = loc[:i]
	}
	parts := strings.Split(loc, "/")
	if len(parts) < 2 {
		t.Fatalf("no Location in the answer: %q", loc)
	}
	return parts[len(parts)-2] + "/" + parts[len(parts)-1]
}

// attack is a request of the patient token that must get status and leave
// the store as it was, watch included. When names is set, the answer's
// OperationOutcome must name it.
type attack struct {
	name, method, path, ctype, body string
	header                          []string
	status                          int
	names                           string
	watch                           []string
}

func (h *hardening) refuse(t *testing.T, cases []attack) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := h.state(t, c.watch...)
			a := h.send(t, c.method, c.path, h.patient, c.ctype, c.body, c.header...)
			if a.code != c.status {
				t.Errorf("%s %s = %d, want %d: %.400s", c.method, c.path, a.code, c.status, a.body)
			}
			if a.code >= 400 {
				if diag, ok := outcome(a.body); !ok {
					t.Errorf("the refusal is not an OperationOutcome: %.300s", a.body)
				} else if c.names != "" && !strings.Contains(diag, strconv.Quote(c.names)) {
					t.Errorf("the OperationOutcome does not name %q: %s", c.names, diag)
				}
			}
			h.unchanged(t, before)
		})
	}
}

// outcome returns the diagnostics of an OperationOutcome.
func outcome(b []byte) (string, bool) {
	var oo struct {
		ResourceType string
		Issue        []struct{ Diagnostics string }
	}
	if json.Unmarshal(b, &oo) != nil || oo.ResourceType != "OperationOutcome" {
		return "", false
	}
	var diags []string
	for _, i := range oo.Issue {
		diags = append(diags, i.Diagnostics)
	}
	return strings.Join(diags, "; "), true
}

// expectStatus fails unless a has status want.
func expectStatus(t testing.TB, what string, a answer, want int) {
	t.Helper()
	if a.code != want {
		t.Fatalf("%s: %d, want %d: %.400s", what, a.code, want, a.body)
	}
}

func (h *hardening) testBundles(t *testing.T) {
	const (
		getP456 = `{"request":{"method":"GET","url":"Patient/456"}}`
		delO456 = `{"request":{"method":"DELETE","url":"Observation/o456"}}`
	)
	p456, o456 := []string{"Patient/456"}, []string{"Observation/o456"}
	post := func(name, body, names string, watch []string) attack {
		return attack{name: name, method: "POST", path: "", ctype: fhirJSON, body: body, status: 400, names: names, watch: watch}
	}
	t.Run("refused", func(t *testing.T) {
		h.refuse(t, []attack{
			post("Entry in a batch reading Patient/456", bundle("batch", `"Entry":[`+getP456+`]`), "Entry", p456),
			post("ENTRY in a transaction deleting o456", bundle("transaction", `"ENTRY":[`+delO456+`]`), "ENTRY", o456),
			post("IfNoneExist in entry.request", bundle("batch", `"entry":[{"resource":`+obs("", "Patient/123", "")+
				`,"request":{"method":"POST","url":"Observation","IfNoneExist":"_id=o456"}}]`), "IfNoneExist", o456),
			post("duplicate url in request", bundle("batch", `"entry":[{"request":{"method":"GET","url":"Patient/123","url":"Patient/456"}}]`), "url", p456),
			post("Request in an entry", bundle("batch", `"entry":[{"Request":{"method":"DELETE","url":"Observation/o456"}}]`), "Request", o456),
			post("byte order mark", "\ufeff"+bundle("transaction", `"entry":[`+delO456+`]`), "", o456),
			post("invalid UTF-8", bundle("batch", "\"entry\":[{\"request\xff\":{\"method\":\"DELETE\",\"url\":\"Observation/o456\"}}]"), "", o456),
		})
	})
	t.Run("batch of its own data", func(t *testing.T) {
		a := h.send(t, "POST", "", h.patient, fhirJSON, bundle("batch",
			`"entry":[{"request":{"method":"GET","url":"Patient/123"}},{"request":{"method":"GET","url":"Observation?code=4548-4"}}]`))
		expectStatus(t, "batch", a, 200)
		var b struct {
			Type  string
			Entry []struct {
				Resource map[string]any
				Response struct{ Status string }
			}
		}
		if err := json.Unmarshal(a.body, &b); err != nil || b.Type != "batch-response" || len(b.Entry) != 2 {
			t.Fatalf("batch-response: %v %.400s", err, a.body)
		}
		for i, e := range b.Entry {
			if !strings.HasPrefix(e.Response.Status, "200") || e.Resource == nil {
				t.Errorf("entry %d: %q %v", i, e.Response.Status, e.Resource)
			}
		}
		if got := bundleIDs(t, mustJSON(t, b.Entry[1].Resource)); !reflect.DeepEqual(got, []string{"Observation/lab1"}) {
			t.Errorf("search entry returned %v, want [Observation/lab1]", got)
		}
	})
	t.Run("transaction of its own data", func(t *testing.T) {
		create := obs("", "Patient/123", `,"note":[{"text":"created in a transaction"}]`)
		update := obs("h-tx", "Patient/123", `,"note":[{"text":"update-as-create in a transaction"}]`)
		a := h.send(t, "POST", "", h.patient, fhirJSON, bundle("transaction", `"entry":[`+
			`{"fullUrl":"urn:uuid:8f3c0c52-3b1e-4c59-9b3c-8f6d2b7a1e01","resource":`+create+`,"request":{"method":"POST","url":"Observation"}},`+
			`{"resource":`+update+`,"request":{"method":"PUT","url":"Observation/h-tx"}}]`))
		expectStatus(t, "transaction", a, 200)
		var b struct {
			Entry []struct {
				Response struct{ Status, Location string }
			}
		}
		if err := json.Unmarshal(a.body, &b); err != nil || len(b.Entry) != 2 {
			t.Fatalf("transaction-response: %v %.400s", err, a.body)
		}
		loc, _, _ := strings.Cut(b.Entry[0].Response.Location, "/_history/")
		if !strings.HasPrefix(b.Entry[0].Response.Status, "201") || !strings.HasPrefix(loc, "Observation/") {
			t.Fatalf("create entry: %+v", b.Entry[0].Response)
		}
		holds(t, h.read(t, loc), create)
		holds(t, h.read(t, "Observation/h-tx"), update)
	})
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (h *hardening) testCreates(t *testing.T) {
	create := func(name, body string, status int, names string) attack {
		return attack{name: name, method: "POST", path: "/Observation", ctype: fhirJSON, body: body, status: status, names: names}
	}
	t.Run("refused", func(t *testing.T) {
		h.refuse(t, []attack{
			create("Subject next to subject", obs("", "Patient/123", `,"Subject":{"reference":"Patient/456"}`), 400, "Subject"),
			create("lone sUbject", `{"resourceType":"Observation","status":"final","code":{"text":"hardening"},"sUbject":{"reference":"Patient/456"}}`, 400, "sUbject"),
			create("Reference inside focus", obs("", "Patient/123", `,"focus":[{"Reference":"Patient/456"}]`), 400, "Reference"),
			{name: "Patient whose body id is 123", method: "POST", path: "/Patient", ctype: fhirJSON,
				body: `{"resourceType":"Patient","id":"123","name":[{"family":"Hardening"}]}`, status: 403, watch: []string{"Patient/123"}},
		})
	})
	t.Run("Observation of its own patient", func(t *testing.T) {
		body := obs("", "Patient/123", `,"note":[{"text":"created by the patient"}]`)
		a := h.send(t, "POST", "/Observation", h.patient, fhirJSON, body)
		expectStatus(t, "create", a, 201)
		holds(t, h.read(t, created(t, a)), body)
	})
}

func (h *hardening) testConditionalUpdate(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		h.refuse(t, []attack{{name: "no match, body id of another patient's Observation", method: "PUT",
			path: "/Observation?identifier=urn:hardening|no-match", ctype: fhirJSON,
			body: obs("o456", "Patient/123", `,"note":[{"text":"taken over"}]`), status: 403, watch: []string{"Observation/o456"}}})
	})
	t.Run("own match updated", func(t *testing.T) {
		body := obs("", "Patient/123", ident("own3")+`,"note":[{"text":"conditionally updated"}]`)
		a := h.send(t, "PUT", "/Observation?identifier=urn:hardening|own3", h.patient, fhirJSON, body)
		expectStatus(t, "conditional update", a, 200)
		stored := h.read(t, "Observation/h-own3")
		holds(t, stored, body)
		if v := stored["meta"].(map[string]any)["versionId"]; v != "2" {
			t.Errorf("Observation/h-own3 is at version %v, want 2", v)
		}
	})
	t.Run("no match creates", func(t *testing.T) {
		body := obs("", "Patient/123", ident("new3"))
		a := h.send(t, "PUT", "/Observation?identifier=urn:hardening|new3", h.patient, fhirJSON, body)
		expectStatus(t, "conditional update", a, 201)
		holds(t, h.read(t, created(t, a)), body)
	})
}

func (h *hardening) testStoredVersion(t *testing.T) {
	mixed := []string{"Observation/h-mixed"}
	takeover := obs("h-mixed", "Patient/123", `,"performer":[{"reference":"Patient/123"}]`)
	t.Run("refused", func(t *testing.T) {
		h.refuse(t, []attack{
			{name: "update", method: "PUT", path: "/Observation/h-mixed", ctype: fhirJSON, body: takeover, status: 403, watch: mixed},
			{name: "delete", method: "DELETE", path: "/Observation/h-mixed", status: 404, watch: mixed},
			{name: "patch", method: "PATCH", path: "/Observation/h-mixed", ctype: jsonPatch,
				body: `[{"op":"replace","path":"/status","value":"cancelled"}]`, status: 404, watch: mixed},
			{name: "conditional update through performer", method: "PUT", path: "/Observation?performer=Patient/123",
				ctype: fhirJSON, body: takeover, status: 403, watch: mixed},
			// Narrowed to the subject: it matches nothing, and deletes nothing.
			{name: "conditional delete through performer", method: "DELETE", path: "/Observation?performer=Patient/123",
				status: 204, watch: mixed},
		})
	})
	t.Run("own data updated and deleted", func(t *testing.T) {
		body := obs("h-own4", "Patient/123", ownPerformer+`,"note":[{"text":"updated by the patient"}]`)
		expectStatus(t, "update", h.send(t, "PUT", "/Observation/h-own4", h.patient, fhirJSON, body), 200)
		holds(t, h.read(t, "Observation/h-own4"), body)
		expectStatus(t, "delete", h.send(t, "DELETE", "/Observation/h-own4", h.patient, "", ""), 204)
		expectStatus(t, "conditional delete", h.send(t, "DELETE", "/Observation?identifier=urn:hardening|own4b", h.patient, "", ""), 204)
		for _, ref := range []string{"Observation/h-own4", "Observation/h-own4b"} {
			expectStatus(t, "read of deleted "+ref, h.send(t, "GET", "/"+ref, h.sysRead, "", ""), 410)
		}
	})
}

func (h *hardening) testPatch(t *testing.T) {
	own5 := []string{"Observation/h-own5"}
	patch := func(name, body string, status int, names string) attack {
		return attack{name: name, method: "PATCH", path: "/Observation/h-own5", ctype: jsonPatch, body: body,
			status: status, names: names, watch: own5}
	}
	t.Run("refused", func(t *testing.T) {
		h.refuse(t, []attack{
			patch("reference built piece by piece",
				`[{"op":"add","path":"/focus","value":[{}]},{"op":"add","path":"/focus/0/reference","value":"Patient/456"}]`, 403, ""),
			patch("subject replaced", `[{"op":"replace","path":"/subject/reference","value":"Patient/456"}]`, 403, ""),
			patch("performer moved into subject", `[{"op":"move","from":"/performer/0","path":"/subject"}]`, 403, ""),
			patch("PATH", `[{"op":"replace","PATH":"/subject/reference","value":"Patient/456"}]`, 400, "PATH"),
			{name: "FHIRPath Patch", method: "PATCH", path: "/Observation/h-own5", ctype: fhirJSON, status: 415, watch: own5,
				body: `{"resourceType":"Parameters","parameter":[{"name":"operation","part":[{"name":"type","valueCode":"replace"},` +
					`{"name":"path","valueString":"Observation.subject"},{"name":"value","valueReference":{"reference":"Patient/456"}}]}]}`},
		})
	})
	t.Run("status replaced", func(t *testing.T) {
		a := h.send(t, "PATCH", "/Observation/h-own5", h.patient, jsonPatch, `[{"op":"replace","path":"/status","value":"amended"}]`)
		expectStatus(t, "patch", a, 200)
		holds(t, h.read(t, "Observation/h-own5"),
			`{"status":"amended","subject":{"reference":"Patient/123"},"performer":[{"reference":"Practitioner/9"}]}`)
	})
}

// testReferences writes references to this server's own base spelled with
// an upper-case scheme and host.
func (h *hardening) testReferences(t *testing.T) {
	u, err := url.Parse(h.base)
	if err != nil {
		t.Fatal(err)
	}
	upper := strings.ToUpper(u.Scheme) + "://" + strings.ToUpper(u.Host) + u.Path
	t.Run("refused", func(t *testing.T) {
		h.refuse(t, []attack{
			{name: "subject", method: "POST", path: "/Observation", ctype: fhirJSON,
				body: obs("", upper+"/Patient/456", ""), status: 403},
			{name: "focus", method: "POST", path: "/Observation", ctype: fhirJSON,
				body: obs("", "Patient/123", `,"focus":[{"reference":"`+upper+`/Patient/456"}]`), status: 403},
		})
	})
	t.Run("own patient", func(t *testing.T) {
		body := obs("", upper+"/Patient/123", "")
		a := h.send(t, "POST", "/Observation", h.patient, fhirJSON, body)
		expectStatus(t, "create", a, 201)
		holds(t, h.read(t, created(t, a)), body)
	})
}

func (h *hardening) testAnswers(t *testing.T) {
	rep := []string{"Prefer", "return=representation"}
	t.Run("create returns the resource", func(t *testing.T) {
		body := obs("", "Patient/123", `,"note":[{"text":"returned"}]`)
		a := h.send(t, "POST", "/Observation", h.patient, fhirJSON, body, rep...)
		expectStatus(t, "create", a, 201)
		got := decode(t, a.body)
		holds(t, got, body)
		if ref := created(t, a); "Observation/"+got["id"].(string) != ref {
			t.Errorf("returned id %v, Location %s", got["id"], ref)
		}
	})
	t.Run("conditional create returns its own match", func(t *testing.T) {
		a := h.send(t, "POST", "/Observation", h.patient, fhirJSON, obs("", "Patient/123", ""),
			"Prefer", "return=representation", "If-None-Exist", "_id=lab1")
		expectStatus(t, "conditional create", a, 200)
		if got := decode(t, a.body); got["id"] != "lab1" {
			t.Errorf("returned %v, want Observation/lab1", got["id"])
		}
	})
	// Criteria naming another patient's resource are narrowed to the
	// patient: they match nothing, so a new resource is created and the
	// other one is neither returned nor changed.
	t.Run("conditional create naming another patient's resource", func(t *testing.T) {
		before := h.state(t, "Observation/o456")
		body := obs("", "Patient/123", `,"note":[{"text":"not o456"}]`)
		a := h.send(t, "POST", "/Observation", h.patient, fhirJSON, body, "Prefer", "return=representation", "If-None-Exist", "_id=o456")
		expectStatus(t, "conditional create", a, 201)
		got := decode(t, a.body)
		if got["id"] == "o456" || strings.Contains(string(a.body), "Patient/456") {
			t.Errorf("the answer shows another patient's resource: %.300s", a.body)
		}
		holds(t, got, body)
		after := h.state(t, "Observation/o456")
		if after.reads["Observation/o456"] != before.reads["Observation/o456"] || after.versions != before.versions+1 {
			t.Errorf("the create wrote something else than one new version (%d -> %d versions)", before.versions, after.versions)
		}
	})
}

// rich is an Observation body with members of many kinds, a decimal whose
// trailing zero must survive, and characters JSON encoders escape.
func rich(identifier string) string {
	return obs("", "Patient/123", ident(identifier)+
		`,"valueQuantity":{"value":7.10,"unit":"%","system":"http://unitsofmeasure.org","code":"%"}`+
		`,"note":[{"text":"<b>kept</b> & \u00e9t\u00e9"}],"effectiveDateTime":"2024-05-01T10:00:00Z"`+
		`,"component":[{"code":{"text":"c"},"valueInteger":3}],"extension":[{"url":"urn:hardening:x","valueBoolean":true}]`)
}

func (h *hardening) testBodies(t *testing.T) {
	t.Run("conditional create", func(t *testing.T) {
		body := rich("c8")
		a := h.send(t, "POST", "/Observation", h.patient, fhirJSON, body, "If-None-Exist", "identifier=urn:hardening|c8")
		expectStatus(t, "conditional create", a, 201)
		holds(t, h.read(t, created(t, a)), body)
	})
	t.Run("conditional update", func(t *testing.T) {
		body := rich("own8")
		a := h.send(t, "PUT", "/Observation?identifier=urn:hardening|own8", h.patient, fhirJSON, body)
		expectStatus(t, "conditional update", a, 200)
		holds(t, h.read(t, "Observation/h-own8"), body)
	})
	t.Run("conditional create in a transaction", func(t *testing.T) {
		body := rich("t8")
		a := h.send(t, "POST", "", h.patient, fhirJSON, bundle("transaction",
			`"entry":[{"resource":`+body+`,"request":{"method":"POST","url":"Observation","ifNoneExist":"identifier=urn:hardening|t8"}}]`))
		expectStatus(t, "transaction", a, 200)
		var b struct {
			Entry []struct{ Response struct{ Location string } }
		}
		if err := json.Unmarshal(a.body, &b); err != nil || len(b.Entry) != 1 {
			t.Fatalf("transaction-response: %v %.400s", err, a.body)
		}
		ref, _, _ := strings.Cut(b.Entry[0].Response.Location, "/_history/")
		holds(t, h.read(t, ref), body)
	})
}

// nested returns an Observation with n extensions nested in each other:
// it nests 1+2n levels deep (each extension is an array and an object).
func nested(n int) string {
	ext := `{"url":"urn:hardening:leaf","valueString":"leaf"}`
	for range n - 1 {
		ext = `{"url":"urn:hardening:level","extension":[` + ext + `]}`
	}
	return obs("", "Patient/123", `,"extension":[`+ext+`]`)
}

func (h *hardening) testDepth(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		h.refuse(t, []attack{{name: "101 levels", method: "POST", path: "/Observation", ctype: fhirJSON, body: nested(50), status: 400}})
	})
	t.Run("81 levels", func(t *testing.T) {
		body := nested(40)
		a := h.send(t, "POST", "/Observation", h.patient, fhirJSON, body)
		expectStatus(t, "create", a, 201)
		ref := created(t, a)
		holds(t, h.read(t, ref), body)
		s := h.send(t, "GET", "/Observation?_id="+strings.TrimPrefix(ref, "Observation/"), h.patient, "", "")
		expectStatus(t, "patient search", s, 200)
		if got := bundleIDs(t, s.body); !reflect.DeepEqual(got, []string{ref}) {
			t.Errorf("patient search returned %v, want [%s]", got, ref)
		}
	})
}
