//go:build unix

package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"
)

// reply is one exchange with the gateway (or the engine).
type reply struct {
	holder  string
	method  string
	url     string
	reqBody string
	status  int
	header  http.Header
	body    []byte
}

func (r reply) ok() bool { return r.status >= 200 && r.status < 300 }

// String describes the exchange for failure messages.
func (r reply) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s (token: %s)", r.method, r.url, r.holder)
	if r.reqBody != "" {
		fmt.Fprintf(&b, "\n  request body: %s", excerpt(r.reqBody, 0, 400))
	}
	fmt.Fprintf(&b, "\n  -> %d", r.status)
	for _, k := range []string{"Location", "Content-Location", "Content-Type", "WWW-Authenticate"} {
		if v := r.header.Get(k); v != "" {
			fmt.Fprintf(&b, "\n  %s: %s", k, v)
		}
	}
	fmt.Fprintf(&b, "\n  body: %s", excerpt(string(r.body), 0, 600))
	return b.String()
}

// excerpt is up to n bytes of s around offset at.
func excerpt(s string, at, n int) string {
	start := max(0, at-n/2)
	end := min(len(s), start+n)
	out := s[start:end]
	if start > 0 {
		out = "…" + out
	}
	if end < len(s) {
		out += "…"
	}
	return out
}

// request describes a request to the gateway. Target is relative to the
// public base ("Observation?patient=…"), or an absolute URL.
type request struct {
	method string
	target string
	body   string
	header map[string]string
}

// do sends req to the gateway with holder's token and checks the reply
// against the rules that hold for every request: no engine address in a
// header or the body, and, for tokens held to patient A, none of B's ids
// or values in a 2xx body. The rules' failures are reported on t; do
// returns the reply for the probe's own checks.
func (s *suite) do(t testing.TB, holder string, req request) reply {
	t.Helper()
	target := req.target
	if target == "" {
		target = s.publicBase // batch and transaction
	} else if !strings.HasPrefix(target, "http://") && !strings.HasPrefix(target, "https://") {
		target = s.publicBase + "/" + strings.TrimPrefix(target, "/")
	}
	hdr := map[string]string{"Accept": "application/fhir+json"}
	if req.body != "" {
		hdr["Content-Type"] = "application/fhir+json"
	}
	if tok := s.tokens[holder]; tok != "" {
		hdr["Authorization"] = "Bearer " + tok
	}
	for k, v := range req.header {
		hdr[k] = v
	}
	r, err := s.send(req.method, target, req.body, hdr)
	r.holder = holder
	s.count(holder, r)
	if err != nil {
		t.Fatalf("%s %s: %v", req.method, target, err)
	}
	if !s.checkUpstream(t, r) {
		s.leak("upstream address")
	}
	if heldToA(holder) && r.ok() && !s.checkNoB(t, r) {
		s.leak("patient B data")
	}
	return r
}

// engineDo sends a request to the engine directly (no token, no checks).
func (s *suite) engineDo(method, target, body string) (reply, error) {
	hdr := map[string]string{"Accept": "application/fhir+json"}
	if body != "" {
		hdr["Content-Type"] = "application/fhir+json"
	}
	return s.send(method, s.engineBase+"/"+strings.TrimPrefix(target, "/"), body, hdr)
}

func (s *suite) send(method, target, body string, hdr map[string]string) (reply, error) {
	r := reply{method: method, url: target, reqBody: body}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return r, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	r.status, r.header = resp.StatusCode, resp.Header
	r.body, err = io.ReadAll(resp.Body)
	return r, err
}

// upstreamMarks are the strings that give the engine's address away.
func (s *suite) upstreamMarks() []string {
	port := s.engineHost[strings.LastIndexByte(s.engineHost, ':')+1:]
	return []string{s.engineBase, s.engineHost, "localhost:" + port, ":" + port + "/fhir"}
}

// checkUpstream fails t when a header or the body of r names the engine;
// it says whether r passed.
func (s *suite) checkUpstream(t testing.TB, r reply) bool {
	t.Helper()
	ok := true
	for _, m := range s.upstreamMarks() {
		for k, vs := range r.header {
			for _, v := range vs {
				if strings.Contains(v, m) {
					ok = false
					t.Errorf("engine address %q in response header %s: %s\n%s", m, k, v, r)
				}
			}
		}
		if i := bytes.Index(r.body, []byte(m)); i >= 0 {
			ok = false
			t.Errorf("engine address %q in the response body (%s)\n%s", m, excerpt(string(r.body), i, 200), r)
		}
	}
	return ok
}

// bValues are the strings that only patient B's data (or data naming B)
// contains: ids of B's resources, of the Group listing A and B, of the
// Observation linking them and of the Provenance about B, and B-only
// values of the seed (family name, birth date, identifiers).
func (s *suite) bValues() []string {
	b := s.b
	return []string{
		b.ID, b.Encounter, b.Condition, b.Observations.Vitals, b.Observations.Laboratory, b.Observations.Social,
		s.provenanceB, s.absoluteB, s.seed.Group, s.seed.Linking, "absolute-B",
		"Bravo", "1980-02-02", "patient-B", "encounter-B", "obs-B-", "condition-B", "provenance-B",
		"reported by patient B",
	}
}

// checkNoB fails t when the 2xx reply r to a token held to A carries one of
// B's values that the request itself did not contain (echoing the client's
// own query, in a search's self link say, reveals nothing). It says
// whether r passed.
func (s *suite) checkNoB(t testing.TB, r reply) bool {
	t.Helper()
	ok := true
	sent := r.url + "\n" + r.reqBody
	if u, err := url.QueryUnescape(r.url); err == nil {
		sent += "\n" + u
	}
	for _, v := range s.bValues() {
		if v == "" || strings.Contains(sent, v) {
			continue
		}
		if i := bytes.Index(r.body, []byte(v)); i >= 0 {
			ok = false
			t.Errorf("patient B's %q in a %d response to a token held to A (%s)\n%s",
				v, r.status, excerpt(string(r.body), i, 200), r)
		}
		for k, vs := range r.header {
			for _, hv := range vs {
				if strings.Contains(hv, v) {
					ok = false
					t.Errorf("patient B's %q in response header %s: %s\n%s", v, k, hv, r)
				}
			}
		}
	}
	return ok
}

// resource is the generic shape of the JSON the suite looks into.
type resource struct {
	ResourceType string                     `json:"resourceType"`
	ID           string                     `json:"id"`
	Meta         struct{ VersionID string } `json:"meta"`
	Type         string                     `json:"type"`
	Total        *int                       `json:"total"`
	Link         []struct {
		Relation string `json:"relation"`
		URL      string `json:"url"`
	} `json:"link"`
	Entry []struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
		Response *struct {
			Status   string          `json:"status"`
			Location string          `json:"location"`
			Outcome  json.RawMessage `json:"outcome"`
		} `json:"response"`
	} `json:"entry"`
	Raw json.RawMessage `json:"-"`
}

func parse(t testing.TB, r reply) resource {
	t.Helper()
	var v resource
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("response is not JSON: %v\n%s", err, r)
	}
	v.Raw = r.body
	return v
}

// refs lists "Type/id" of the entries' resources (a Bundle).
func (v resource) refs() []string {
	var out []string
	for _, e := range v.Entry {
		var x struct{ ResourceType, ID string }
		if len(e.Resource) > 0 && json.Unmarshal(e.Resource, &x) == nil && x.ID != "" {
			out = append(out, x.ResourceType+"/"+x.ID)
		}
	}
	sort.Strings(out)
	return out
}

// stats counts what the suite did, for the summary.
type stats struct {
	requests map[string]int    // by holder
	statuses map[string]int    // "holder status"
	leaks    map[string]int    // by kind
	probes   map[string]*tally // by "holder kind"
	failed   []string          // failed probe names
	byDesign []string          // refusals by a documented rule
}

type tally struct{ passed, failed, refused, filtered int }

func (s *suite) count(holder string, r reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stats.requests == nil {
		s.stats.requests = map[string]int{}
		s.stats.statuses = map[string]int{}
	}
	s.stats.requests[holder]++
	s.stats.statuses[fmt.Sprintf("%s %d", holder, r.status)]++
}

func (s *suite) leak(kind string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stats.leaks == nil {
		s.stats.leaks = map[string]int{}
	}
	s.stats.leaks[kind]++
}

// designRefusal records a refusal by a documented rule of the guard, with
// the reason its OperationOutcome gives.
func (s *suite) designRefusal(t testing.TB, r reply) {
	var oo struct {
		Issue []struct{ Diagnostics string }
	}
	reason := "no OperationOutcome"
	if json.Unmarshal(r.body, &oo) == nil && len(oo.Issue) > 0 {
		reason = oo.Issue[0].Diagnostics
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.byDesign = append(s.stats.byDesign, fmt.Sprintf("%s: %d %s", t.Name(), r.status, reason))
}

// outcome records a probe's result; how is "refused", "filtered" or "".
func (s *suite) outcome(t testing.TB, holder, kind, how string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stats.probes == nil {
		s.stats.probes = map[string]*tally{}
	}
	key := holder + "\t" + kind
	c := s.stats.probes[key]
	if c == nil {
		c = &tally{}
		s.stats.probes[key] = c
	}
	switch {
	case t.Failed():
		c.failed++
		s.stats.failed = append(s.stats.failed, t.Name())
	case how == "refused":
		c.passed++
		c.refused++
	case how == "filtered":
		c.passed++
		c.filtered++
	default:
		c.passed++
	}
}

func (s *suite) printSummary(w io.Writer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	if len(st.probes) == 0 {
		return
	}
	fmt.Fprintln(w, "gateway suite summary (fhirguard proxy in front of @medplum/fhir-router):")
	keys := make([]string, 0, len(st.probes))
	for k := range st.probes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(w, "  %-18s %-12s %6s %6s %8s %8s\n", "token", "probes", "passed", "failed", "refused", "filtered")
	for _, k := range keys {
		holder, kind, _ := strings.Cut(k, "\t")
		c := st.probes[k]
		fmt.Fprintf(w, "  %-18s %-12s %6d %6d %8d %8d\n", holder, kind, c.passed, c.failed, c.refused, c.filtered)
	}
	total, holders := 0, make([]string, 0, len(st.requests))
	for h, n := range st.requests {
		total += n
		holders = append(holders, fmt.Sprintf("%s %d", h, n))
	}
	sort.Strings(holders)
	fmt.Fprintf(w, "  requests through the gateway: %d (%s), each checked for the engine's address\n",
		total, strings.Join(holders, ", "))
	if len(st.leaks) == 0 {
		fmt.Fprintln(w, "  leaks: none")
	} else {
		fmt.Fprintf(w, "  LEAKS: %v\n", st.leaks)
	}
	for _, d := range st.byDesign {
		fmt.Fprintf(w, "  refused by design: %s\n", d)
	}
	for _, f := range st.failed {
		fmt.Fprintf(w, "  FAILED: %s\n", f)
	}
}
