//go:build unix

package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// probe is one request and what the gateway must answer.
type probe struct {
	name string
	req  request
	// expect: own (2xx, with want in the body), refuse (a 4xx: writes
	// for B must never succeed), other (a 4xx, or a 2xx filtered: the
	// rules of do already reject any B value in a 2xx body) or byDesign
	// (a request for A's data that the guard refuses by a documented rule:
	// a 4xx is listed in the summary with the guard's reason, a 2xx is
	// checked like other).
	expect expectation
	// status, when set, is the exact status an own request must get.
	status int
	// want lists "Type/id" that an own response must contain (as the
	// resource, a Bundle entry, or nested in a batch response).
	want []string
	// check runs further checks on a 2xx reply (on every reply of an own
	// request).
	check func(t *testing.T, r reply)
}

type expectation uint8

const (
	own expectation = iota
	other
	refuse
	byDesign
)

func get(target string) request { return request{method: http.MethodGet, target: target} }

func (s *suite) run(t *testing.T, holder, kind string, probes []probe) {
	t.Helper()
	seen := map[string]bool{}
	for _, p := range probes {
		if seen[p.name] {
			t.Fatalf("duplicate probe name %q", p.name)
		}
		seen[p.name] = true
		t.Run(p.name, func(t *testing.T) { s.runProbe(t, holder, kind, p) })
	}
}

func (s *suite) runProbe(t *testing.T, holder, kind string, p probe) {
	r := s.do(t, holder, p.req)
	how := ""
	switch p.expect {
	case own:
		switch {
		case !r.ok():
			t.Errorf("refused (a false refusal unless the engine itself failed):\n%s", r)
		case p.status != 0 && r.status != p.status:
			t.Errorf("status %d, want %d\n%s", r.status, p.status, r)
		}
		if r.ok() {
			for _, ref := range p.want {
				if !mentions(r.body, ref) {
					t.Errorf("%s missing from the response\n%s", ref, r)
				}
			}
		}
	case refuse:
		how = "refused"
		if r.ok() {
			t.Errorf("accepted, want a refusal\n%s", r)
		} else if r.status >= 500 {
			t.Errorf("server error, want a refusal (4xx)\n%s", r)
		}
	case byDesign:
		if r.status >= 500 {
			t.Errorf("server error, want an answer or a refusal (4xx)\n%s", r)
		} else if !r.ok() {
			how = "refused"
			s.designRefusal(t, r)
		}
	case other:
		how = "refused"
		if r.ok() {
			how = "filtered"
		} else if r.status >= 500 {
			t.Errorf("server error, want a refusal (4xx) or a filtered answer\n%s", r)
		}
	}
	if p.check != nil && !t.Failed() && (p.expect == own || r.ok()) {
		p.check(t, r)
	}
	t.Logf("%s %s -> %d %s", p.req.method, p.req.target, r.status, how)
	s.outcome(t, holder, kind, how)
}

// mentions says whether the JSON body holds a resource ref ("Type/id"):
// the body itself, a Bundle entry, or a resource nested in a response.
func mentions(body []byte, ref string) bool {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return false
	}
	var walk func(any) bool
	walk = func(v any) bool {
		switch x := v.(type) {
		case map[string]any:
			if t, _ := x["resourceType"].(string); t != "" {
				if id, _ := x["id"].(string); t+"/"+id == ref {
					return true
				}
			}
			for _, c := range x {
				if walk(c) {
					return true
				}
			}
		case []any:
			for _, c := range x {
				if walk(c) {
					return true
				}
			}
		}
		return false
	}
	return walk(v)
}

// versionOf reads a resource's versionId from the engine.
func (s *suite) versionOf(t testing.TB, ref string) string {
	t.Helper()
	r, err := s.engineDo(http.MethodGet, ref, "")
	if err != nil || r.status != http.StatusOK {
		t.Fatalf("engine: GET %s: %v %d %s", ref, err, r.status, r.body)
	}
	return parse(t, r).Meta.VersionID
}

func batch(kind string, entries ...string) string {
	return `{"resourceType":"Bundle","type":"` + kind + `","entry":[` + strings.Join(entries, ",") + `]}`
}

func getEntry(u string) string { return `{"request":{"method":"GET","url":"` + u + `"}}` }

// wantText checks that the body holds text.
func wantText(text string) func(t *testing.T, r reply) {
	return func(t *testing.T, r reply) {
		if !strings.Contains(string(r.body), text) {
			t.Errorf("%q missing from the response\n%s", text, r)
		}
	}
}

// entryStatuses checks a batch response's entries against want (a prefix
// of each entry's response.status, "" for "any 4xx", "*" for any).
func entryStatuses(want ...string) func(t *testing.T, r reply) {
	return func(t *testing.T, r reply) {
		v := parse(t, r)
		if len(v.Entry) != len(want) {
			t.Fatalf("%d entries, want %d\n%s", len(v.Entry), len(want), r)
		}
		for i, e := range v.Entry {
			st := ""
			if e.Response != nil {
				st = e.Response.Status
			}
			switch {
			case want[i] == "*":
			case want[i] == "" && !(strings.HasPrefix(st, "4")):
				t.Errorf("entry %d: status %q, want a refusal (4xx)\n%s", i, st, r)
			case want[i] != "" && !strings.HasPrefix(st, want[i]):
				t.Errorf("entry %d: status %q, want %s\n%s", i, st, want[i], r)
			}
		}
	}
}

// TestPatientAccess runs patient A's own requests and the probes for
// patient B with the tokens held to A: a patient/ token with launch
// patient A, and a user/ token of fhirUser Patient/A.
func TestPatientAccess(t *testing.T) {
	s := needSuite(t)
	for _, holder := range []string{holderPatient, holderUserPatient} {
		t.Run(holder, func(t *testing.T) {
			t.Run("own", func(t *testing.T) { s.run(t, holder, "own", s.ownProbes(t)) })
			t.Run("other-patient", func(t *testing.T) { s.run(t, holder, "other-patient", s.otherProbes(t)) })
		})
	}
}

// ownProbes are patient A's own reads, searches, includes, history and
// batch: a token held to A must get them.
func (s *suite) ownProbes(t *testing.T) []probe {
	a, seed := s.a, s.seed
	pA, vitals := "Patient/"+a.ID, "Observation/"+a.Observations.Vitals
	obsA := []string{vitals, "Observation/" + a.Observations.Laboratory, "Observation/" + a.Observations.Social}
	vitalsVersion := s.versionOf(t, vitals)
	return []probe{
		{name: "read-patient", req: get(pA), want: []string{pA}},
		{name: "read-observation", req: get(vitals), want: []string{vitals}},
		{name: "read-encounter", req: get("Encounter/" + a.Encounter), want: []string{"Encounter/" + a.Encounter}},
		{name: "read-condition", req: get("Condition/" + a.Condition), want: []string{"Condition/" + a.Condition}},
		{name: "read-provenance", req: get("Provenance/" + seed.Provenance), want: []string{"Provenance/" + seed.Provenance}},
		{name: "read-practitioner-shared", req: get("Practitioner/" + seed.Practitioner)},
		{name: "read-organization-shared", req: get("Organization/" + seed.Organization)},
		{name: "read-absolute-reference", req: get("Observation/" + s.absoluteA), want: []string{"Observation/" + s.absoluteA},
			check: wantText(s.publicBase + "/Patient/" + a.ID)},
		{name: "vread-observation", req: get(vitals + "/_history/" + vitalsVersion), want: []string{vitals}},
		{name: "search-patient", req: get("Observation?patient=" + a.ID), want: obsA},
		{name: "search-patient-reference", req: get("Observation?patient=Patient/" + a.ID), want: obsA},
		{name: "search-subject", req: get("Observation?subject=Patient/" + a.ID), want: obsA},
		{name: "search-patient-category", req: get("Observation?patient=" + a.ID + "&category=laboratory"),
			want: []string{"Observation/" + a.Observations.Laboratory}},
		{name: "search-unnarrowed-observations", req: get("Observation"), want: obsA},
		{name: "search-unnarrowed-code", req: get("Observation?code=8867-4"), want: []string{vitals}},
		{name: "search-patient-by-id", req: get("Patient?_id=" + a.ID), want: []string{pA}},
		{name: "search-patients", req: get("Patient"), want: []string{pA}},
		{name: "search-encounter", req: get("Encounter?patient=" + a.ID), want: []string{"Encounter/" + a.Encounter}},
		{name: "search-condition", req: get("Condition?patient=" + a.ID), want: []string{"Condition/" + a.Condition}},
		{name: "search-provenance", req: get("Provenance?patient=" + a.ID), want: []string{"Provenance/" + seed.Provenance}},
		{name: "search-post", req: request{method: http.MethodPost, target: "Observation/_search",
			body: "patient=" + a.ID, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, want: obsA},
		{name: "include-patient", req: get("Observation?patient=" + a.ID + "&_include=Observation:patient"),
			want: append([]string{pA}, obsA...)},
		{name: "include-encounter", req: get("Observation?patient=" + a.ID + "&_include=Observation:encounter"),
			want: []string{"Encounter/" + a.Encounter}},
		{name: "include-performer", req: get("Observation?subject=Patient/" + a.ID + "&_include=Observation:performer"),
			want: []string{"Practitioner/" + seed.Practitioner}},
		{name: "revinclude-observations", req: get("Patient?_id=" + a.ID + "&_revinclude=Observation:subject"),
			want: append([]string{pA}, obsA...)},
		{name: "revinclude-encounter-observations", req: get("Encounter?patient=" + a.ID + "&_revinclude=Observation:encounter"),
			want: append([]string{"Encounter/" + a.Encounter}, obsA...)},
		{name: "revinclude-provenance", req: get("Observation?_id=" + a.Observations.Vitals + "&_revinclude=Provenance:target"),
			want: []string{vitals, "Provenance/" + seed.Provenance}},
		{name: "history-patient", req: get(pA + "/_history"), want: []string{pA}},
		{name: "history-observation", req: get(vitals + "/_history"), want: []string{vitals}},
		{name: "paging", req: get("Observation?patient=" + a.ID + "&_count=1"), check: s.checkPaging(obsA)},
		{name: "paging-narrowed-by-the-guard", req: get("Observation?code=8867-4&_count=1"), check: s.checkDroppedNarrowing},
		{name: "batch-reads", req: request{method: http.MethodPost, target: "", body: batch("batch",
			getEntry(pA), getEntry("Observation?patient="+a.ID), getEntry(vitals), getEntry("Practitioner/"+seed.Practitioner))},
			want: append([]string{pA}, obsA...), check: entryStatuses("200", "200", "200", "200")},
		{name: "metadata", req: get("metadata")},
		{name: "smart-configuration", req: get(".well-known/smart-configuration")},
		// A's own data through parameters the guard refuses to patient-held
		// tokens, and a batch mixing A's and B's reads.
		{name: "chained-own", expect: byDesign, req: get("Observation?subject:Patient.family=Alpha")},
		{name: "has-own", expect: byDesign, req: get("Patient?_has:Observation:patient:_id=" + a.Observations.Vitals)},
		{name: "batch-mixed-A-and-B", expect: byDesign, req: request{method: http.MethodPost, target: "",
			body: batch("batch", getEntry(pA), getEntry("Patient/"+s.b.ID))}},
	}
}

// checkPaging follows the next links (through the gateway) and wants every
// page's links on the public base and all of want across the pages.
func (s *suite) checkPaging(want []string) func(t *testing.T, r reply) {
	return func(t *testing.T, r reply) {
		found := map[string]bool{}
		for page := 1; ; page++ {
			v := parse(t, r)
			for _, ref := range v.refs() {
				found[ref] = true
			}
			next := ""
			for _, l := range v.Link {
				if !strings.HasPrefix(l.URL, s.publicBase+"/") && !strings.HasPrefix(l.URL, s.publicBase+"?") {
					t.Errorf("page %d: link %s %s is not on the public base %s", page, l.Relation, l.URL, s.publicBase)
				}
				if l.Relation == "next" {
					next = l.URL
				}
			}
			if next == "" || page >= 10 {
				break
			}
			r = s.do(t, r.holder, get(next))
			if !r.ok() {
				t.Fatalf("page %d refused:\n%s", page+1, r)
			}
		}
		for _, ref := range want {
			if !found[ref] {
				t.Errorf("%s not on any page (the gateway kept no next link, or a page lost it): found %v", ref, found)
			}
		}
	}
}

// checkDroppedNarrowing follows the paging links of a search the guard
// narrowed to patient A with every patient, subject and _id parameter
// removed from them, as a client might to drop the narrowing: the pages
// must stay A's (do checks them for B's values).
func (s *suite) checkDroppedNarrowing(t *testing.T, r reply) {
	v := parse(t, r)
	followed := 0
	for _, l := range v.Link {
		u, err := url.Parse(l.URL)
		if err != nil || l.Relation == "self" {
			continue
		}
		q := u.Query()
		for k := range q {
			if name, _, _ := strings.Cut(k, ":"); name == "patient" || name == "subject" || name == "_id" {
				q.Del(k)
			}
		}
		u.RawQuery = q.Encode()
		for _, offset := range []string{"0", "1", "2", "3"} {
			q.Set("_offset", offset)
			u.RawQuery = q.Encode()
			if p := s.do(t, r.holder, get(u.String())); !p.ok() {
				t.Errorf("link %s without its narrowing refused:\n%s", l.Relation, p)
			}
			followed++
		}
	}
	if followed == 0 {
		t.Errorf("no paging link to follow\n%s", r)
	}
}

// otherProbes are requests for patient B, or for data naming B, that a
// token held to A must not get.
func (s *suite) otherProbes(t *testing.T) []probe {
	a, b, seed := s.a, s.b, s.seed
	pB, vitalsB := "Patient/"+b.ID, "Observation/"+b.Observations.Vitals
	vitalsBVersion := s.versionOf(t, vitalsB)
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	p := func(name, target string) probe { return probe{name: name, req: get(target), expect: other} }
	return []probe{
		p("read-patient-B", pB),
		p("read-observation-B", vitalsB),
		p("read-encounter-B", "Encounter/"+b.Encounter),
		p("read-condition-B", "Condition/"+b.Condition),
		p("read-provenance-B", "Provenance/"+s.provenanceB),
		p("read-group-of-both", "Group/"+seed.Group),
		p("read-linking-observation", "Observation/"+seed.Linking),
		p("read-absolute-reference-B", "Observation/"+s.absoluteB),
		p("search-absolute-references", "Observation?_id="+s.absoluteA+","+s.absoluteB),
		p("vread-observation-B", vitalsB+"/_history/"+vitalsBVersion),
		p("history-patient-B", pB+"/_history"),
		p("history-observation-B", vitalsB+"/_history"),
		p("history-linking-observation", "Observation/"+seed.Linking+"/_history"),
		p("history-group", "Group/"+seed.Group+"/_history"),
		p("compartment-search-B", pB+"/Observation"),
		p("everything-B", pB+"/$everything"),
		p("search-patient-B", "Observation?patient="+b.ID),
		p("search-patient-reference-B", "Observation?patient=Patient/"+b.ID),
		p("search-subject-B", "Observation?subject=Patient/"+b.ID),
		p("search-subject-bare-id-B", "Observation?subject="+b.ID),
		p("search-patient-A-and-B", "Observation?patient="+a.ID+","+b.ID),
		p("search-patient-A-then-B", "Observation?patient="+a.ID+"&patient="+b.ID),
		p("search-id-B", "Observation?_id="+b.Observations.Vitals),
		p("search-id-A-and-B", "Observation?_id="+a.Observations.Vitals+","+b.Observations.Vitals),
		p("search-id-B-with-patient-A", "Observation?_id="+b.Observations.Vitals+"&patient="+a.ID),
		p("search-id-linking", "Observation?_id="+seed.Linking),
		p("search-patient-resource-B", "Patient?_id="+b.ID),
		p("search-patients-A-and-B", "Patient?_id="+a.ID+","+b.ID),
		p("search-patient-family-B", "Patient?family=Bravo"),
		p("search-patient-identifier-B", "Patient?identifier=urn:fhirguard:interop:seed|patient-B"),
		p("search-encounter-B", "Encounter?patient="+b.ID),
		p("search-encounter-id-B", "Encounter?_id="+b.Encounter),
		p("search-condition-B", "Condition?subject=Patient/"+b.ID),
		p("search-observation-by-encounter-B", "Observation?encounter=Encounter/"+b.Encounter),
		p("search-performer-B", "Observation?performer=Patient/"+b.ID),
		p("search-focus-B", "Observation?focus=Patient/"+b.ID),
		p("search-provenance-B", "Provenance?patient="+b.ID),
		p("search-provenance-target-B", "Provenance?target=Observation/"+b.Observations.Vitals),
		p("search-provenance-id-B", "Provenance?_id="+s.provenanceB),
		p("chained-subject-family", "Observation?subject:Patient.family=Bravo"),
		p("chained-patient-family", "Observation?patient.family=Bravo"),
		p("chained-subject-identifier", "Observation?subject:Patient.identifier=urn:fhirguard:interop:seed|patient-B"),
		p("has-observation-code", "Patient?_has:Observation:subject:code=2339-0"),
		p("has-observation-id-B", "Patient?_has:Observation:patient:_id="+b.Observations.Vitals),
		p("has-linking-performer", "Patient?_has:Observation:performer:code=10157-6"),
		p("group-by-member-A", "Group?member=Patient/"+a.ID),
		p("group-by-member-B", "Group?member=Patient/"+b.ID),
		p("group-by-id", "Group?_id="+seed.Group),
		p("groups", "Group"),
		p("include-performer-patient", "Observation?patient="+a.ID+"&_include=Observation:performer"),
		p("include-focus", "Observation?subject=Patient/"+a.ID+"&_include=Observation:focus"),
		p("include-linking-focus", "Observation?_id="+seed.Linking+"&_include=Observation:focus"),
		p("include-group-members", "Group?member=Patient/"+a.ID+"&_include=Group:member"),
		p("include-iterate-members", "Observation?patient="+a.ID+"&_revinclude:iterate=Group:member"),
		p("revinclude-group", "Patient?_id="+a.ID+"&_revinclude=Group:member"),
		p("revinclude-organization-patients", "Organization?_id="+seed.Organization+"&_revinclude=Patient:organization"),
		p("revinclude-practitioner-observations", "Practitioner?_id="+seed.Practitioner+"&_revinclude=Observation:performer"),
		p("revinclude-practitioner-patients", "Practitioner?_id="+seed.Practitioner+"&_revinclude=Patient:general-practitioner"),
		p("revinclude-provenance-B", "Observation?patient="+a.ID+"&_revinclude=Provenance:target&_revinclude=Provenance:patient"),
		p("unnarrowed-code-B-only-offset", "Observation?code=8867-4&_offset=1"),
		{name: "search-post-B", expect: other, req: request{method: http.MethodPost, target: "Observation/_search",
			body: "patient=" + b.ID, header: form}},
		{name: "search-post-A-url-B", expect: other, req: request{method: http.MethodPost,
			target: "Observation/_search?patient=" + b.ID, body: "patient=" + a.ID, header: form}},
		{name: "batch-read-patient-B", expect: other, req: request{method: http.MethodPost, target: "",
			body: batch("batch", getEntry(pB))}},
		{name: "batch-search-B", expect: other, req: request{method: http.MethodPost, target: "",
			body: batch("batch", getEntry("Observation?patient="+b.ID), getEntry("Observation?subject=Patient/"+b.ID))}},
		{name: "batch-read-observation-B", expect: other, req: request{method: http.MethodPost, target: "",
			body: batch("batch", getEntry(vitalsB), getEntry("Observation/"+seed.Linking), getEntry("Group/"+seed.Group))}},
		{name: "batch-history-B", expect: other, req: request{method: http.MethodPost, target: "",
			body: batch("batch", getEntry(pB+"/_history"))}},
		{name: "transaction-read-B", expect: other, req: request{method: http.MethodPost, target: "",
			body: batch("transaction", getEntry(pB), getEntry("Observation?patient="+b.ID))}},
	}
}

// TestBroadAccess checks that tokens not held to a patient (a practitioner
// user and a backend system) read both patients' data through the gateway:
// no false refusals, and no engine address (checked by do).
func TestBroadAccess(t *testing.T) {
	s := needSuite(t)
	a, b, seed := s.a, s.b, s.seed
	probes := func(t *testing.T) []probe {
		pA, pB := "Patient/"+a.ID, "Patient/"+b.ID
		obs := func(p patientIDs) []string {
			return []string{"Observation/" + p.Observations.Vitals, "Observation/" + p.Observations.Laboratory,
				"Observation/" + p.Observations.Social}
		}
		vitalsB := "Observation/" + b.Observations.Vitals
		return []probe{
			{name: "read-patient-A", req: get(pA), want: []string{pA}},
			{name: "read-patient-B", req: get(pB), want: []string{pB}},
			{name: "read-group", req: get("Group/" + seed.Group), want: []string{"Group/" + seed.Group}},
			{name: "read-linking", req: get("Observation/" + seed.Linking), want: []string{"Observation/" + seed.Linking}},
			{name: "read-absolute-reference-B", req: get("Observation/" + s.absoluteB), want: []string{"Observation/" + s.absoluteB},
				check: wantText(s.publicBase + "/Patient/" + b.ID)},
			{name: "vread-observation-B", req: get(vitalsB + "/_history/" + s.versionOf(t, vitalsB)), want: []string{vitalsB}},
			{name: "search-patient-B", req: get("Observation?patient=" + b.ID), want: obs(b)},
			{name: "search-all-vitals", req: get("Observation?code=8867-4"),
				want: []string{"Observation/" + a.Observations.Vitals, vitalsB}},
			{name: "search-patients", req: get("Patient"), want: []string{pA, pB}},
			{name: "chained", req: get("Observation?subject:Patient.family=Bravo"), want: obs(b)},
			{name: "has", req: get("Patient?_has:Observation:subject:code=2339-0"), want: []string{pA, pB}},
			{name: "include-members", req: get("Group?_id=" + seed.Group + "&_include=Group:member"),
				want: []string{"Group/" + seed.Group, pA, pB}},
			{name: "revinclude-observations", req: get("Patient?_id=" + b.ID + "&_revinclude=Observation:subject"),
				want: append([]string{pB}, obs(b)...)},
			{name: "history-patient-B", req: get(pB + "/_history"), want: []string{pB}},
			{name: "paging", req: get("Observation?code=8867-4&_count=1"),
				check: s.checkPaging([]string{"Observation/" + a.Observations.Vitals, vitalsB})},
			{name: "batch", req: request{method: http.MethodPost, target: "", body: batch("batch",
				getEntry(pA), getEntry(pB), getEntry("Observation?patient="+b.ID))},
				want: append([]string{pA, pB}, obs(b)...), check: entryStatuses("200", "200", "200")},
			{name: "metadata", req: get("metadata")},
		}
	}
	for _, holder := range []string{holderPractitioner, holderSystem} {
		t.Run(holder, func(t *testing.T) { s.run(t, holder, "broad", probes(t)) })
	}
}

// TestPublicEndpoints checks requests without a token (and with a bad one):
// the public documents answer, FHIR interactions are refused, and nothing
// names the engine.
func TestPublicEndpoints(t *testing.T) {
	s := needSuite(t)
	bad := map[string]string{"Authorization": "Bearer not-a-token"}
	probes := []probe{
		{name: "metadata", req: get("metadata")},
		{name: "smart-configuration", req: get(".well-known/smart-configuration")},
		{name: "healthz", req: get(s.origin + "/healthz")},
		{name: "readyz", req: get(s.origin + "/readyz")},
		{name: "read-without-token", req: get("Patient/" + s.a.ID), expect: refuse},
		{name: "search-without-token", req: get("Observation?patient=" + s.a.ID), expect: refuse},
		{name: "read-bad-token", req: request{method: http.MethodGet, target: "Patient/" + s.a.ID, header: bad}, expect: refuse},
		{name: "create-without-token", req: request{method: http.MethodPost, target: "Observation",
			body: s.observation(s.a.ID, "unauthenticated", "", "")}, expect: refuse},
		{name: "unknown-path", req: get(s.origin + "/elsewhere"), expect: other},
		{name: "engine-root-path", req: get(s.origin + "/"), expect: other},
	}
	s.run(t, holderNone, "public", probes)
}

// observationAbout is an Observation whose subject is the reference ref.
func (s *suite) observationAbout(ref, ident string) string {
	return fmt.Sprintf(`{"resourceType":"Observation","status":"final",`+
		`"identifier":[{"system":%q,"value":%q}],`+
		`"code":{"coding":[{"system":"http://loinc.org","code":"8310-5","display":"Body temperature"}]},`+
		`"subject":{"reference":%q},"valueString":%q}`, suiteSystem, ident, ref, "value of "+ident)
}

// observation is an Observation about patient (subject) with identifier
// ident in the suite's system, valueString value (default "value of
// <ident>") and extra JSON members (",…" or "").
func (s *suite) observation(patient, ident, value, extra string) string {
	if value == "" {
		value = "value of " + ident
	}
	return fmt.Sprintf(`{"resourceType":"Observation","status":"final",`+
		`"identifier":[{"system":%q,"value":%q}],`+
		`"code":{"coding":[{"system":"http://loinc.org","code":"8310-5","display":"Body temperature"}]},`+
		`"subject":{"reference":"Patient/%s"},"valueString":%q%s}`,
		suiteSystem, ident, patient, value, extra)
}

// suiteSystem is the identifier system of the resources the suite writes.
const suiteSystem = "urn:fhirguard:interop:gwsuite"

// identifierQuery is the search for the suite's identifier value v.
func identifierQuery(v string) string {
	return "identifier=" + url.QueryEscape(suiteSystem+"|"+v)
}
