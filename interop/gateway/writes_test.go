//go:build unix

package gateway

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// TestWrites writes patient A's data with every token (create, update,
// If-Match, JSON Patch, conditional update and create, batch, transaction,
// delete) and checks each write in the engine itself: conditional writes
// and PATCH must reach it with their body. Tokens held to A then try the
// writes that target or name patient B, which must all be refused; at the
// end, B's data in the engine is exactly as seeded.
// writesRuns counts the runs of TestWrites in this process.
var writesRuns atomic.Int64

func TestWrites(t *testing.T) {
	s := needSuite(t)
	before := s.bSnapshot(t)
	// The engine outlives one run of the test (go test -count=N): each
	// run writes identifiers of its own, so that conditional creates
	// create again.
	run := writesRuns.Add(1)
	for _, holder := range []string{holderPatient, holderUserPatient, holderPractitioner, holderSystem} {
		t.Run(holder, func(t *testing.T) {
			w := &writer{s: s, holder: holder, tag: fmt.Sprintf("w%d-%s", run, holder)}
			t.Run("own", w.own)
			if heldToA(holder) {
				t.Run("other-patient", w.other)
			}
		})
	}
	t.Run("engine-unchanged-for-B", func(t *testing.T) {
		after := s.bSnapshot(t)
		for k, v := range before {
			if after[k] != v {
				t.Errorf("engine: %s changed: %s, was %s", k, after[k], v)
			}
		}
		s.outcome(t, "engine", "verify", "")
	})
}

// bSnapshot reads, from the engine, the version of every resource naming B
// and the number of resources its searches for B find.
func (s *suite) bSnapshot(t *testing.T) map[string]string {
	b, seed := s.b, s.seed
	out := map[string]string{}
	for _, ref := range []string{"Patient/" + b.ID, "Encounter/" + b.Encounter, "Condition/" + b.Condition,
		"Observation/" + b.Observations.Vitals, "Observation/" + b.Observations.Laboratory,
		"Observation/" + b.Observations.Social, "Group/" + seed.Group, "Observation/" + seed.Linking,
		"Provenance/" + s.provenanceB, "Observation/" + s.absoluteB} {
		out[ref] = s.versionOf(t, ref)
	}
	for _, q := range []string{"Observation?subject=Patient/" + b.ID, "Observation?performer=Patient/" + b.ID,
		"Observation?focus=Patient/" + b.ID, "Condition?subject=Patient/" + b.ID, "Encounter?subject=Patient/" + b.ID,
		"Group?member=Patient/" + b.ID, "Provenance?target=Patient/" + b.ID, "Patient?family=Bravo"} {
		out[q] = strings.Join(s.engineSearch(t, q), " ")
	}
	return out
}

// engineSearch returns the "Type/id" of a search's matches in the engine.
func (s *suite) engineSearch(t *testing.T, q string) []string {
	t.Helper()
	r, err := s.engineDo(http.MethodGet, q, "")
	if err != nil || r.status != http.StatusOK {
		t.Fatalf("engine: GET %s: %v %d %s", q, err, r.status, r.body)
	}
	return parse(t, r).refs()
}

// engineResource reads ref from the engine (nil when it answers 404).
func (s *suite) engineResource(t *testing.T, ref string) map[string]any {
	t.Helper()
	r, err := s.engineDo(http.MethodGet, ref, "")
	if err != nil {
		t.Fatalf("engine: GET %s: %v", ref, err)
	}
	if r.status == http.StatusNotFound || r.status == http.StatusGone {
		return nil
	}
	var v map[string]any
	if r.status != http.StatusOK || json.Unmarshal(r.body, &v) != nil {
		t.Fatalf("engine: GET %s: %d %s", ref, r.status, r.body)
	}
	return v
}

// engineByIdentifier returns the engine's Observations with the suite's
// identifier value v.
func (s *suite) engineByIdentifier(t *testing.T, v string) []map[string]any {
	t.Helper()
	r, err := s.engineDo(http.MethodGet, "Observation?"+identifierQuery(v), "")
	if err != nil || r.status != http.StatusOK {
		t.Fatalf("engine: search identifier %s: %v %d %s", v, err, r.status, r.body)
	}
	var out []map[string]any
	for _, e := range parse(t, r).Entry {
		var m map[string]any
		if json.Unmarshal(e.Resource, &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// writer runs one holder's writes.
type writer struct {
	s      *suite
	holder string
	tag    string // prefix of the identifiers this holder writes
}

// step runs one write as a subtest and returns its reply.
func (w *writer) step(t *testing.T, name string, p probe, verify func(t *testing.T, r reply)) {
	t.Run(name, func(t *testing.T) {
		p.name = name
		if verify != nil {
			check := p.check
			p.check = func(t *testing.T, r reply) {
				if check != nil {
					check(t, r)
				}
				verify(t, r)
			}
		}
		w.s.runProbe(t, w.holder, kindOf(p.expect, "writes"), p)
	})
}

func kindOf(e expectation, what string) string {
	if e == own {
		return "own-" + what
	}
	return "other-" + what
}

// wantValue checks, in the engine, that ref's valueString is v.
func (w *writer) wantValue(t *testing.T, ref, v string) {
	t.Helper()
	got := w.s.engineResource(t, ref)
	if got == nil {
		t.Fatalf("engine: %s does not exist", ref)
	}
	if got["valueString"] != v {
		t.Errorf("engine: %s valueString = %v, want %q (the write did not reach the engine with its body)", ref, got["valueString"], v)
	}
}

// wantOne checks, in the engine, that exactly one Observation has the
// identifier value ident, with valueString v; it returns its id.
func (w *writer) wantOne(t *testing.T, ident, v string) string {
	t.Helper()
	got := w.s.engineByIdentifier(t, ident)
	if len(got) != 1 {
		t.Fatalf("engine: %d Observations with identifier %s, want 1", len(got), ident)
	}
	if got[0]["valueString"] != v {
		t.Errorf("engine: identifier %s: valueString = %v, want %q (the write did not reach the engine with its body)",
			ident, got[0]["valueString"], v)
	}
	id, _ := got[0]["id"].(string)
	return id
}

func (w *writer) own(t *testing.T) {
	s, a := w.s, w.s.a
	var id string // the Observation created first
	w.step(t, "create", probe{req: request{method: http.MethodPost, target: "Observation",
		body: s.observation(a.ID, w.tag+"-created", "", "")}, status: http.StatusCreated},
		func(t *testing.T, r reply) {
			id = parse(t, r).ID
			if loc := r.header.Get("Location"); !strings.HasPrefix(loc, s.publicBase+"/Observation/"+id) {
				t.Errorf("Location %q, want %s/Observation/%s/…", loc, s.publicBase, id)
			}
			w.wantValue(t, "Observation/"+id, "value of "+w.tag+"-created")
		})
	if id == "" {
		t.Fatal("create failed: the other writes need its resource")
	}
	ref := "Observation/" + id
	var etag string
	w.step(t, "update", probe{req: request{method: http.MethodPut, target: ref,
		body: withID(s.observation(a.ID, w.tag+"-created", "updated by "+w.holder, ""), id)}, status: http.StatusOK},
		func(t *testing.T, r reply) {
			etag = r.header.Get("ETag")
			w.wantValue(t, ref, "updated by "+w.holder)
		})
	w.step(t, "update-if-match", probe{req: request{method: http.MethodPut, target: ref,
		body:   withID(s.observation(a.ID, w.tag+"-created", "if-match by "+w.holder, ""), id),
		header: map[string]string{"If-Match": etag}}, status: http.StatusOK},
		func(t *testing.T, r reply) {
			if etag == "" {
				t.Error("the update's response had no ETag")
			}
			w.wantValue(t, ref, "if-match by "+w.holder)
		})
	w.step(t, "json-patch", probe{req: request{method: http.MethodPatch, target: ref,
		body:   `[{"op":"replace","path":"/valueString","value":"patched by ` + w.holder + `"}]`,
		header: map[string]string{"Content-Type": "application/json-patch+json"}}, status: http.StatusOK},
		func(t *testing.T, r reply) { w.wantValue(t, ref, "patched by "+w.holder) })
	cu := w.tag + "-cond-update"
	w.step(t, "conditional-update-creates", probe{req: request{method: http.MethodPut,
		target: "Observation?" + identifierQuery(cu), body: s.observation(a.ID, cu, "first", "")}, status: http.StatusCreated},
		func(t *testing.T, r reply) { w.wantOne(t, cu, "first") })
	w.step(t, "conditional-update-updates", probe{req: request{method: http.MethodPut,
		target: "Observation?" + identifierQuery(cu), body: s.observation(a.ID, cu, "second", "")}, status: http.StatusOK},
		func(t *testing.T, r reply) { w.wantOne(t, cu, "second") })
	w.step(t, "conditional-json-patch", probe{req: request{method: http.MethodPatch,
		target: "Observation?" + identifierQuery(cu),
		body:   `[{"op":"replace","path":"/valueString","value":"conditionally patched"}]`,
		header: map[string]string{"Content-Type": "application/json-patch+json"}}, status: http.StatusOK},
		func(t *testing.T, r reply) { w.wantOne(t, cu, "conditionally patched") })
	cc := w.tag + "-cond-create"
	ifNone := map[string]string{"If-None-Exist": identifierQuery(cc)}
	w.step(t, "conditional-create-creates", probe{req: request{method: http.MethodPost, target: "Observation",
		body: s.observation(a.ID, cc, "first", ""), header: ifNone}, status: http.StatusCreated},
		func(t *testing.T, r reply) { w.wantOne(t, cc, "first") })
	w.step(t, "conditional-create-exists", probe{req: request{method: http.MethodPost, target: "Observation",
		body: s.observation(a.ID, cc, "second", ""), header: ifNone}, status: http.StatusOK},
		func(t *testing.T, r reply) { w.wantOne(t, cc, "first") })
	bc, bu := w.tag+"-batch-create", w.tag+"-batch-cond-update"
	w.step(t, "batch-writes", probe{req: request{method: http.MethodPost, target: "", body: batch("batch",
		`{"resource":`+s.observation(a.ID, bc, "", "")+`,"request":{"method":"POST","url":"Observation"}}`,
		`{"resource":`+s.observation(a.ID, bu, "", "")+`,"request":{"method":"PUT","url":"Observation?`+identifierQuery(bu)+`"}}`,
		`{"request":{"method":"PATCH","url":"`+ref+`"},"resource":{"resourceType":"Binary","contentType":"application/json-patch+json",`+
			`"data":"`+b64(`[{"op":"replace","path":"/valueString","value":"batch-patched"}]`)+`"}}`,
	)}, status: http.StatusOK, check: entryStatuses("201", "201", "200")},
		func(t *testing.T, r reply) {
			w.wantOne(t, bc, "value of "+bc)
			w.wantOne(t, bu, "value of "+bu)
			w.wantValue(t, ref, "batch-patched")
		})
	tc := w.tag + "-transaction"
	w.step(t, "transaction-writes", probe{req: request{method: http.MethodPost, target: "", body: batch("transaction",
		`{"fullUrl":"urn:uuid:6b1c3f7e-6a57-4d6c-9f5b-0c8e2a1d3b4f","resource":`+s.observation(a.ID, tc, "", "")+
			`,"request":{"method":"POST","url":"Observation","ifNoneExist":"`+identifierQuery(tc)+`"}}`,
	)}, status: http.StatusOK, check: entryStatuses("201")},
		func(t *testing.T, r reply) { w.wantOne(t, tc, "value of "+tc) })
	w.step(t, "delete", probe{req: request{method: http.MethodDelete, target: ref}},
		func(t *testing.T, r reply) {
			if w.s.engineResource(t, ref) != nil {
				t.Errorf("engine: %s still exists", ref)
			}
		})
}

// other tries, with a token held to A, the writes that target patient B or
// name B. Each must be refused; the engine must not see them.
func (w *writer) other(t *testing.T) {
	s, a, b, seed := w.s, w.s.a, w.s.b, w.s.seed
	vitalsB := "Observation/" + b.Observations.Vitals
	// A resource of A's, made in the engine directly, for the writes
	// that would make it name B.
	victimIdent := w.tag + "-victim"
	vr, err := s.engineDo(http.MethodPost, "Observation", s.observation(a.ID, victimIdent, "untouched", ""))
	if err != nil || vr.status != http.StatusCreated {
		t.Fatalf("engine: create %s: %v %d %s", victimIdent, err, vr.status, vr.body)
	}
	victimID := parse(t, vr).ID
	victim := "Observation/" + victimID
	bObs := s.engineResource(t, vitalsB)
	bObs["valueQuantity"] = map[string]any{"value": 999, "unit": "/min"}
	altered, _ := json.Marshal(bObs)
	seedB := func(name string) string { return "identifier=" + "urn:fhirguard:interop:seed%7C" + name }
	patch := map[string]string{"Content-Type": "application/json-patch+json"}
	refusals := []probe{
		{name: "update-B", req: request{method: http.MethodPut, target: vitalsB, body: string(altered)}},
		{name: "update-B-to-A", req: request{method: http.MethodPut, target: vitalsB,
			body: withID(s.observation(a.ID, w.tag+"-takeover", "", ""), b.Observations.Vitals)}},
		{name: "update-patient-B", req: request{method: http.MethodPut, target: "Patient/" + b.ID,
			body: `{"resourceType":"Patient","id":"` + b.ID + `","active":false}`}},
		{name: "create-for-B", req: request{method: http.MethodPost, target: "Observation",
			body: s.observation(b.ID, w.tag+"-for-B", "", "")}},
		{name: "create-condition-for-B", req: request{method: http.MethodPost, target: "Condition",
			body: `{"resourceType":"Condition","subject":{"reference":"Patient/` + b.ID + `"}}`}},
		{name: "create-performer-B", req: request{method: http.MethodPost, target: "Observation",
			body: s.observation(a.ID, w.tag+"-performer-B", "", `,"performer":[{"reference":"Patient/`+b.ID+`"}]`)}},
		{name: "create-focus-B", req: request{method: http.MethodPost, target: "Observation",
			body: s.observation(a.ID, w.tag+"-focus-B", "", `,"focus":[{"reference":"Patient/`+b.ID+`"}]`)}},
		{name: "create-group-with-B", req: request{method: http.MethodPost, target: "Group",
			body: `{"resourceType":"Group","type":"person","actual":true,"member":[{"entity":{"reference":"Patient/` +
				a.ID + `"}},{"entity":{"reference":"Patient/` + b.ID + `"}}]}`}},
		{name: "create-provenance-for-B", req: request{method: http.MethodPost, target: "Provenance",
			body: `{"resourceType":"Provenance","recorded":"2024-03-04T10:00:00Z","target":[{"reference":"Patient/` + b.ID +
				`"}],"agent":[{"who":{"reference":"Patient/` + a.ID + `"}}]}`}},
		{name: "delete-B", req: request{method: http.MethodDelete, target: vitalsB}},
		{name: "delete-linking", req: request{method: http.MethodDelete, target: "Observation/" + seed.Linking}},
		{name: "patch-B", req: request{method: http.MethodPatch, target: vitalsB, header: patch,
			body: `[{"op":"replace","path":"/status","value":"entered-in-error"}]`}},
		{name: "patch-B-subject-to-A", req: request{method: http.MethodPatch, target: vitalsB, header: patch,
			body: `[{"op":"replace","path":"/subject/reference","value":"Patient/` + a.ID + `"}]`}},
		{name: "patch-own-add-performer-B", req: request{method: http.MethodPatch, target: victim, header: patch,
			body: `[{"op":"add","path":"/performer","value":[{"reference":"Patient/` + b.ID + `"}]}]`}},
		{name: "patch-own-subject-to-B", req: request{method: http.MethodPatch, target: victim, header: patch,
			body: `[{"op":"replace","path":"/subject/reference","value":"Patient/` + b.ID + `"}]`}},
		{name: "update-own-to-B", req: request{method: http.MethodPut, target: victim,
			body: withID(s.observation(b.ID, victimIdent, "moved to B", ""), victimID)}},
		{name: "conditional-patch-B", req: request{method: http.MethodPatch, target: "Observation?" + seedB("obs-B-vitals"),
			header: patch, body: `[{"op":"replace","path":"/status","value":"entered-in-error"}]`}},
		{name: "transaction-with-B", req: request{method: http.MethodPost, target: "", body: batch("transaction",
			`{"resource":`+s.observation(a.ID, w.tag+"-tx-mixed", "", "")+`,"request":{"method":"POST","url":"Observation"}}`,
			`{"resource":`+s.observation(b.ID, w.tag+"-tx-B", "", "")+`,"request":{"method":"POST","url":"Observation"}}`)}},
	}
	for _, p := range refusals {
		p.expect = refuse
		w.step(t, p.name, p, nil)
	}
	// Conditional writes whose criteria match B (or a resource naming B):
	// refused, or run with the criteria narrowed to A's compartment (then
	// they match nothing of B's: the update or create makes a new
	// resource for A, the delete deletes nothing). Either way B's data is
	// untouched (engine-unchanged-for-B) and nothing of B's is answered.
	narrowed := []probe{
		{name: "conditional-update-matching-B", req: request{method: http.MethodPut,
			target: "Observation?" + seedB("obs-B-vitals"), body: s.observation(a.ID, w.tag+"-cu-B", "", "")}},
		{name: "conditional-update-patient-B", req: request{method: http.MethodPut,
			target: "Observation?patient=" + b.ID + "&code=8867-4", body: s.observation(a.ID, w.tag+"-cu-pB", "", "")}},
		{name: "conditional-update-linking", req: request{method: http.MethodPut,
			target: "Observation?" + seedB("linking-observation"), body: s.observation(a.ID, w.tag+"-cu-link", "", "")}},
		{name: "conditional-delete-B", req: request{method: http.MethodDelete, target: "Observation?" + seedB("obs-B-vitals")}},
		{name: "conditional-create-matching-B", req: request{method: http.MethodPost,
			target: "Observation", body: s.observation(a.ID, w.tag+"-cc-B", "", ""),
			header: map[string]string{"If-None-Exist": seedB("obs-B-vitals")}}},
	}
	for _, p := range narrowed {
		p.expect = other
		w.step(t, p.name, p, nil)
	}
	w.step(t, "batch-writes-B", probe{expect: other, req: request{method: http.MethodPost, target: "", body: batch("batch",
		`{"resource":`+s.observation(b.ID, w.tag+"-batch-B", "", "")+`,"request":{"method":"POST","url":"Observation"}}`,
		`{"resource":`+string(altered)+`,"request":{"method":"PUT","url":"`+vitalsB+`"}}`,
		`{"request":{"method":"DELETE","url":"Observation/`+b.Observations.Laboratory+`"}}`,
		`{"resource":`+s.observation(a.ID, w.tag+"-batch-cu-B", "", "")+`,"request":{"method":"PUT","url":"Observation?`+seedB("obs-B-social")+`"}}`,
	)}, check: entryStatuses("", "", "", "*")}, nil)

	t.Run("engine-saw-none", func(t *testing.T) {
		if got := s.engineResource(t, victim); got == nil || got["valueString"] != "untouched" ||
			got["performer"] != nil || !strings.Contains(mustJSON(got["subject"]), a.ID) {
			t.Errorf("engine: %s changed: %v", victim, got)
		}
		for _, ident := range []string{"-takeover", "-for-B", "-performer-B", "-focus-B", "-tx-mixed", "-tx-B", "-batch-B"} {
			if got := s.engineByIdentifier(t, w.tag+ident); len(got) != 0 {
				t.Errorf("engine: a refused write was executed: %d Observation(s) with identifier %s%s", len(got), w.tag, ident)
			}
		}
		// The narrowed conditional writes may have created A's resources.
		for _, ident := range []string{"-cu-B", "-cu-pB", "-cu-link", "-cc-B", "-batch-cu-B"} {
			for _, got := range s.engineByIdentifier(t, w.tag+ident) {
				if subj := mustJSON(got["subject"]); !strings.Contains(subj, "Patient/"+a.ID) || strings.Contains(mustJSON(got), b.ID) {
					t.Errorf("engine: conditional write %s%s made %s", w.tag, ident, mustJSON(got))
				}
			}
		}
		s.outcome(t, w.holder, "verify", "")
	})
}

func withID(resource, id string) string {
	return strings.Replace(resource, `{"resourceType":"Observation",`, `{"resourceType":"Observation","id":"`+id+`",`, 1)
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
