package middleware

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/fhir"
)

// visibleIDs returns what a full search of target shows the token: the
// reference count a count must agree with.
func visibleIDs(t *testing.T, mod func(*AuthorizeConfig), tok *Token, target string) []string {
	t.Helper()
	r := newHarness(t, mod).do(tok, "GET", target, "")
	if r.Code != 200 {
		t.Fatalf("reference search %s: %d %s", target, r.Code, r.Body)
	}
	var ids []string
	entries, _ := r.doc["entry"].([]any)
	for _, e := range entries {
		entry, _ := e.(map[string]any)
		if entryMode(entry) == "include" {
			continue
		}
		res, _ := entry["resource"].(map[string]any)
		ids = append(ids, res["resourceType"].(string)+"/"+res["id"].(string))
	}
	return ids
}

// total returns Bundle.total, or -1 when absent.
func (r resp) total() int {
	v, ok := r.doc["total"].(float64)
	if !ok {
		return -1
	}
	return int(v)
}

// links returns the relations of Bundle.link.
func (r resp) links() []string {
	var out []string
	links, _ := r.doc["link"].([]any)
	for _, l := range links {
		lm, _ := l.(map[string]any)
		rel, _ := lm["relation"].(string)
		out = append(out, rel)
	}
	return out
}

func hasLink(r resp, rel string) bool {
	for _, l := range r.links() {
		if l == rel {
			return true
		}
	}
	return false
}

// TestCountOnlyCountedByGuard: a count-only search (_summary=count, _count
// of 0 or below, on a type, a compartment, every type of a compartment or
// $everything) under a verified token is answered with the number of
// matches the token may see, counted by the guard from a page of full
// entries: never the server's count of everything.
func TestCountOnlyCountedByGuard(t *testing.T) {
	type countCase struct {
		name, scopes, target, reference string
		mod                             func(*AuthorizeConfig)
		fhirUser                        string
	}
	rs, all := "patient/Observation.rs", "patient/*.rs"
	literal := func(c *AuthorizeConfig) { c.LiteralCompartments = true }
	cases := []countCase{
		{name: "_summary=count", scopes: rs, target: "/Observation?_summary=count", reference: "/Observation"},
		{name: "_count=0", scopes: rs, target: "/Observation?_count=0", reference: "/Observation"},
		{name: "negative _count", scopes: rs, target: "/Observation?_count=-3", reference: "/Observation"},
		{name: "_count with spaces", scopes: rs, target: "/Observation?_count=%200%20", reference: "/Observation"},
		{name: "count with an include", scopes: rs, target: "/Observation?_summary=count&_include=Observation:subject", reference: "/Observation"},
		{name: "count with _elements", scopes: rs, target: "/Observation?_summary=count&_elements=id", reference: "/Observation"},
		{name: "count with criteria", scopes: rs, target: "/Observation?_summary=count&code=http://loinc.org|2339-0", reference: "/Observation?code=http://loinc.org|2339-0"},
		{name: "compartment count", scopes: rs, target: "/Patient/123/Observation?_summary=count", reference: "/Patient/123/Observation"},
		{name: "every type of the compartment", scopes: all, target: "/Patient/123/*?_count=0", reference: "/Patient/123/*"},
		{name: "$everything count", scopes: all, target: "/Patient/123/$everything?_summary=count", reference: "/Patient/123/$everything"},
		{name: "granular count", scopes: "patient/Observation.rs?category=" + lab, target: "/Observation?_summary=count", reference: "/Observation"},
		{name: "literal compartments", scopes: rs, target: "/Observation?_summary=count", reference: "/Observation", mod: literal},
		{name: "user token of a patient", scopes: "user/Observation.rs", fhirUser: "Patient/123", target: "/Observation?_summary=count", reference: "/Observation"},
	}
	for _, c := range cases {
		for _, paging := range []bool{false, true} {
			t.Run(c.name+map[bool]string{false: "", true: " (paging server)"}[paging], func(t *testing.T) {
				tok := token(c.scopes, "123")
				tok.FHIRUser = c.fhirUser
				want := visibleIDs(t, c.mod, tok, c.reference)
				h := newHarness(t, c.mod)
				if paging {
					h.store.pageSize = countPageSize
				}
				r := h.do(tok, "GET", c.target, "")
				if r.Code != 200 {
					t.Fatalf("status %d: %s", r.Code, r.Body)
				}
				if got := r.total(); got != len(want) {
					t.Fatalf("total %d, want %d (%v): %s", got, len(want), want, r.Body)
				}
				if _, has := r.doc["entry"]; has || len(r.links()) > 0 {
					t.Fatalf("a count answer carries entries or links: %s", r.Body)
				}
				calls := h.store.calls()
				last := calls[len(calls)-1]
				if !strings.Contains(last, "_count=1000") || strings.Contains(last, "_summary") || strings.Contains(last, "_include") {
					t.Fatalf("the handler was not asked for entries: %s", last)
				}
			})
		}
	}
	// The reference counts themselves: the leaky server has 8 Observations,
	// 3 of them Patient/123's alone, 5 naming it in a compartment link.
	if n := len(visibleIDs(t, nil, token(rs, "123"), "/Observation")); n != 3 {
		t.Fatalf("visible observations %d", n)
	}
	if n := len(visibleIDs(t, literal, token(rs, "123"), "/Observation")); n != 5 {
		t.Fatalf("visible observations (literal) %d", n)
	}
}

// TestCountOnlyUnverifiable: when the server's page cannot be counted (it
// pages below the guard's page size, or answers with a count of its own
// instead of entries) the count is refused, and no number reaches the
// client.
func TestCountOnlyUnverifiable(t *testing.T) {
	rs := "patient/Observation.rs"
	t.Run("more matches than one page", func(t *testing.T) {
		h := newHarness(t, nil)
		h.store.pageSize = 2
		r := h.do(token(rs, "123"), "GET", "/Observation?_summary=count", "")
		if r.Code != 403 || strings.Contains(r.Body.String(), "total") {
			t.Fatalf("status %d: %s", r.Code, r.Body)
		}
	})
	for _, answer := range []string{
		`{"resourceType":"Bundle","type":"searchset","total":8}`,
		`{"resourceType":"Bundle","type":"searchset","total":8,"entry":[{"resource":{"resourceType":"Observation","id":"lab1","subject":{"reference":"Patient/123"}},"search":{"mode":"match"}}]}`,
	} {
		t.Run("server counts by itself", func(t *testing.T) {
			a, err := newAuthorizer(AuthorizeConfig{BaseURL: testBase, Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			stubborn := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/fhir+json")
				_, _ = w.Write([]byte(answer))
			})
			rec := httptest.NewRecorder()
			withToken(token(rs, "123"), a.Handler(stubborn)).ServeHTTP(rec, httptest.NewRequest("GET", testBase+"/Observation?_count=0", nil))
			if rec.Code != 403 || strings.Contains(rec.Body.String(), "8") {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		})
	}
	t.Run("open token: the server counts", func(t *testing.T) {
		h := newHarness(t, nil)
		h.store.pageSize = 2
		r := h.do(token("system/Observation.rs", ""), "GET", "/Observation?_summary=count", "")
		if r.Code != 200 || r.total() != 8 {
			t.Fatalf("status %d: %s", r.Code, r.Body)
		}
		if calls := h.store.calls(); !strings.Contains(calls[0], "_summary=count") {
			t.Fatalf("an open token's count was rewritten: %v", calls)
		}
	})
}

// TestTotalAndPagingLinks: Bundle.total and the paging links reach the
// client only when they cannot count resources the token may not see.
func TestTotalAndPagingLinks(t *testing.T) {
	rs := "patient/Observation.rs"
	type setup struct {
		honest bool
		mod    func(*AuthorizeConfig)
	}
	literal := func(c *AuthorizeConfig) { c.LiteralCompartments = true }
	declared := func(c *AuthorizeConfig) { c.NarrowingHonoured = true }
	run := func(t *testing.T, s setup, tok *Token, target string) resp {
		t.Helper()
		h := newHarness(t, s.mod)
		h.store.pageSize = 2
		h.store.honest = s.honest
		r := h.do(tok, "GET", target, "")
		if r.Code != 200 {
			t.Fatalf("status %d: %s", r.Code, r.Body)
		}
		return r
	}
	t.Run("server ignores the narrowing: no total, no paging links", func(t *testing.T) {
		r := run(t, setup{}, token(rs, "123"), "/Observation")
		if r.total() != -1 || hasLink(r, "next") || !hasLink(r, "self") {
			t.Fatalf("total %d links %v: %s", r.total(), r.links(), r.Body)
		}
	})
	t.Run("self link confirms the narrowing: paging kept, total withheld", func(t *testing.T) {
		r := run(t, setup{honest: true}, token(rs, "123"), "/Observation")
		if r.total() != -1 || !hasLink(r, "next") {
			t.Fatalf("total %d links %v: %s", r.total(), r.links(), r.Body)
		}
		// Following the link stays in the compartment.
		next := ""
		for _, l := range r.doc["link"].([]any) {
			if l.(map[string]any)["relation"] == "next" {
				next = l.(map[string]any)["url"].(string)
			}
		}
		u, _ := url.Parse(next)
		r2 := run(t, setup{honest: true}, token(rs, "123"), "/Observation?"+u.RawQuery)
		for _, id := range r2.ids() {
			if id != "Observation/lab1" && id != "Observation/vs1" {
				t.Fatalf("page 2 holds %s", id)
			}
		}
	})
	t.Run("literal compartments and a confirmed narrowing: the server's total", func(t *testing.T) {
		r := run(t, setup{honest: true, mod: literal}, token(rs, "123"), "/Observation")
		if r.total() != 3 || !hasLink(r, "next") {
			t.Fatalf("total %d links %v: %s", r.total(), r.links(), r.Body)
		}
	})
	t.Run("literal compartments, unconfirmed narrowing: no total", func(t *testing.T) {
		r := run(t, setup{mod: literal}, token(rs, "123"), "/Observation")
		if r.total() != -1 || hasLink(r, "next") {
			t.Fatalf("total %d links %v: %s", r.total(), r.links(), r.Body)
		}
	})
	t.Run("declared narrowing keeps the links", func(t *testing.T) {
		r := run(t, setup{mod: declared}, token(rs, "123"), "/Observation")
		if r.total() != -1 || !hasLink(r, "next") {
			t.Fatalf("total %d links %v: %s", r.total(), r.links(), r.Body)
		}
	})
	t.Run("a self link for another patient confirms nothing", func(t *testing.T) {
		h := newHarness(t, nil)
		h.store.pageSize = 2
		h.store.honest = true
		// The client's own patient=456 is kept next to the guard's; an
		// honest server then finds nothing, and says it applied both.
		r := h.do(token(rs, "123"), "GET", "/Observation?subject=Patient/456", "")
		if r.Code != 200 || len(r.ids()) != 0 {
			t.Fatalf("status %d: %s", r.Code, r.Body)
		}
	})
	t.Run("compartment search: bound by its path", func(t *testing.T) {
		r := run(t, setup{}, token(rs, "123"), "/Patient/123/Observation")
		if !hasLink(r, "next") || r.total() != -1 {
			t.Fatalf("total %d links %v: %s", r.total(), r.links(), r.Body)
		}
	})
	t.Run("open token: untouched", func(t *testing.T) {
		r := run(t, setup{}, token("system/Observation.rs", ""), "/Observation")
		if r.total() != 8 || !hasLink(r, "next") {
			t.Fatalf("total %d links %v: %s", r.total(), r.links(), r.Body)
		}
	})
	t.Run("granular user token: constrained, not patient-held", func(t *testing.T) {
		r := run(t, setup{}, token("user/Observation.rs?category="+lab, ""), "/Observation")
		if r.total() != -1 {
			t.Fatalf("total %d: %s", r.total(), r.Body)
		}
	})
	t.Run("one page: total recomputed from the visible matches", func(t *testing.T) {
		h := newHarness(t, nil)
		r := h.do(token(rs, "123"), "GET", "/Observation", "")
		if r.total() != len(r.ids()) || r.total() != 3 {
			t.Fatalf("total %d ids %v", r.total(), r.ids())
		}
	})
	t.Run("encounter-held token: total never trusted", func(t *testing.T) {
		tok := token(rs, "123")
		tok.Encounter = "e1"
		r := run(t, setup{honest: true, mod: func(c *AuthorizeConfig) { c.LiteralCompartments, c.EnforceEncounter = true, true }}, tok, "/Observation")
		if r.total() != -1 {
			t.Fatalf("total %d: %s", r.total(), r.Body)
		}
	})
}

// TestHistoryCounts: a count of an instance history is the number of the
// versions the token may see, and the history of a resource it may not see
// answers like an absent id, count or not.
func TestHistoryCounts(t *testing.T) {
	rs := "patient/Observation.rs"
	absent := newHarness(t, nil).do(token(rs, "123"), "GET", "/Observation/nope/_history?_count=0", "")
	if absent.Code != 404 {
		t.Fatalf("absent: %d", absent.Code)
	}
	for _, target := range []string{
		"/Observation/o456/_history?_count=0", "/Observation/o456/_history?_summary=count",
		"/Observation/mixed123/_history?_count=0", "/Observation/perf123/_history?_summary=count",
		"/Observation/o456/_history?_count=x", "/Observation/o456/_history/1?_count=0",
	} {
		r := newHarness(t, nil).do(token(rs, "123"), "GET", target, "")
		if r.Code != absent.Code || r.Body.String() != absent.Body.String() {
			t.Fatalf("%s: %d %s, absent %d %s", target, r.Code, r.Body, absent.Code, absent.Body)
		}
	}
	r := newHarness(t, nil).do(token(rs, "123"), "GET", "/Observation/lab1/_history?_count=0", "")
	if r.Code != 200 || r.total() != 1 || r.doc["type"] != "history" {
		t.Fatalf("own history count: %d %s", r.Code, r.Body)
	}
}

// FuzzAuthorizeCounts drives count, summary, paging and history parameters
// through Authorize against the leaky server in its paging modes, with a
// token held to Patient/123: no answer may carry another patient's
// resource, a total larger than what the token may see of the type, or a
// paging link from a server that did not confirm the narrowing.
func FuzzAuthorizeCounts(f *testing.F) {
	for _, seed := range []struct {
		path, query, scopes string
		mode                byte
	}{
		{"/Observation", "_summary=count", "patient/Observation.rs", 0},
		{"/Observation", "_count=0", "patient/*.rs", 1},
		{"/Observation", "_count=1", "patient/*.rs", 2},
		{"/Observation", "_count=1&_offset=1", "patient/*.rs", 3},
		{"/Observation/o456/_history", "_count=0", "patient/*.rs", 4},
		{"/Observation/lab1/_history", "_summary=count", "patient/*.rs", 5},
		{"/Patient/123/*", "_count=0", "patient/*.rs", 6},
		{"/Patient/123/$everything", "_summary=count", "patient/*.rs", 7},
		{"/Observation", "_total=accurate&_count=2", "user/*.rs", 8},
		{"/Observation", "_summary=data&_count=1", "patient/Observation.rs?category=" + url.QueryEscape(lab), 9},
		{"/Condition", "_summary=count&patient=456", "patient/*.rs", 10},
		{"/Observation", "_count=1&subject=Patient/123", "patient/*.rs", 11},
	} {
		f.Add(seed.path, seed.query, seed.scopes, seed.mode)
	}
	f.Fuzz(func(t *testing.T, path, query, scopes string, mode byte) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path+query, " \t\r\n#") {
			return
		}
		mod := func(c *AuthorizeConfig) {
			c.LiteralCompartments = mode&8 != 0
			c.NarrowingHonoured = mode&16 != 0 && mode&2 != 0 // only declared for honest servers
		}
		tok := token(scopes, "123")
		tok.FHIRUser = "Patient/123"
		h := newHarness(t, mod)
		h.store.honest = mode&2 != 0
		h.store.pageSize = []int{0, 1, 2, 1000}[mode&1|(mode>>5)&2]
		target := path
		if query != "" {
			target += "?" + query
		}
		if _, err := url.ParseRequestURI(testBase + target); err != nil {
			return
		}
		r := httptest.NewRequest("GET", testBase+target, nil)
		rec := httptest.NewRecorder()
		withToken(tok, h.authz.Handler(h.store)).ServeHTTP(rec, r)
		if rec.Code < 200 || rec.Code > 299 {
			return
		}
		out := rec.Body.String()
		leaks := []string{`"o456"`, `"c456"`, `"prov456"`, `"evil123"`, `"grp"`}
		if mode&8 == 0 { // literal compartments show resources naming 456 next to 123
			leaks = append(leaks, `"Patient/456"`, `"456"`)
		}
		for _, other := range leaks {
			if strings.Contains(out, other) {
				t.Fatalf("%s with %q leaked %s: %s", target, scopes, other, out)
			}
		}
		doc, err := decodeJSONObject(rec.Body.Bytes())
		if err != nil || doc["resourceType"] != "Bundle" {
			return
		}
		// What the token may see of the type searched (every type for a
		// compartment-wide search), read one by one through the guard: a
		// total may never exceed it.
		segs := strings.Split(strings.Trim(path, "/"), "/")
		typ := segs[0]
		if len(segs) >= 3 && segs[0] == "Patient" {
			typ = segs[2]
		}
		read, search := 0, 0
		for key, res := range fixtures() {
			if typ != "*" && !strings.HasPrefix(typ, "$") && res["resourceType"] != typ {
				continue
			}
			rr := httptest.NewRecorder()
			withToken(tok, h.authz.Handler(newLeaky())).ServeHTTP(rr, httptest.NewRequest("GET", testBase+"/"+key, nil))
			if rr.Code == 200 {
				read++
			}
		}
		all := "/" + typ
		if typ == "*" || strings.HasPrefix(typ, "$") {
			all = "/Patient/123/*"
		}
		if fhir.IsResourceType(typ) || all == "/Patient/123/*" {
			rr := httptest.NewRecorder()
			withToken(tok, h.authz.Handler(newLeaky())).ServeHTTP(rr, httptest.NewRequest("GET", testBase+all, nil))
			if d, err := decodeJSONObject(rr.Body.Bytes()); err == nil && rr.Code == 200 {
				entries, _ := d["entry"].([]any)
				search = len(entries)
			}
		}
		visible := max(read, search)
		if n, ok := doc["total"]; ok {
			total, err := strconv.Atoi(fmtNumber(n))
			if err != nil || total > visible {
				t.Fatalf("%s with %q: total %v, but the token may see %d: %s", target, scopes, n, visible, out)
			}
		}
		shared := false
		for _, st := range defaultSharedTypes {
			shared = shared || typ == st
		}
		// A paging link is allowed when the server applied the narrowing
		// (honest), the path binds the compartment, or nothing was narrowed.
		exempt := strings.Contains(scopes, "system/") || h.store.honest || shared || typ == "" ||
			strings.HasPrefix(path, "/Patient/123/") || strings.Contains(path, "/_history")
		if !exempt {
			for _, l := range (resp{doc: doc}).links() {
				if isPagingLink(map[string]any{"relation": l}) {
					t.Fatalf("%s with %q: paging link %q from a server that ignored the narrowing: %s", target, scopes, l, out)
				}
			}
		}
	})
}

// fmtNumber renders a decoded JSON number.
func fmtNumber(v any) string {
	switch n := v.(type) {
	case interface{ String() string }:
		return n.String()
	case float64:
		return strconv.FormatFloat(n, 'f', -1, 64)
	}
	return ""
}

// TestCountOnlyInBatch: a count-only search inside a batch is counted by
// the guard like one sent alone.
func TestCountOnlyInBatch(t *testing.T) {
	h := newHarness(t, nil)
	body := `{"resourceType":"Bundle","type":"batch","entry":[` +
		`{"request":{"method":"GET","url":"Observation?_summary=count"}},` +
		`{"request":{"method":"GET","url":"Observation?_count=1000"}}]}`
	r := h.do(token("patient/Observation.rs", "123"), "POST", "/", body)
	if r.Code != 200 {
		t.Fatalf("status %d: %s", r.Code, r.Body)
	}
	entries := r.doc["entry"].([]any)
	counted := entries[0].(map[string]any)["resource"].(map[string]any)
	full := entries[1].(map[string]any)["resource"].(map[string]any)
	n := 0
	for range full["entry"].([]any) {
		n++
	}
	if counted["total"] != float64(n) || n != 3 || counted["entry"] != nil {
		t.Fatalf("count %v, full search %d: %s", counted["total"], n, r.Body)
	}
	if calls := h.store.bodies; !strings.Contains(calls[len(calls)-1], "_count=1000") || strings.Contains(calls[len(calls)-1], "_summary") {
		t.Fatalf("the handler was asked %s", calls[len(calls)-1])
	}
}

// TestCountOnlyPostSearch: a POST _search whose form asks for a count only
// is counted by the guard like a GET: the parameters that would keep the
// server from returning entries are removed from the form body too (FHIR
// combines URL and form), and the handler gets the edited form. With a
// server that honours the form, leaving _summary=count there made the
// count unverifiable (a false refusal).
func TestCountOnlyPostSearch(t *testing.T) {
	rs := "patient/Observation.rs"
	want := len(visibleIDs(t, nil, token(rs, "123"), "/Observation"))
	h := newHarness(t, nil)
	var forms []url.Values
	// A server that honours the form: a count-only search gets a count and
	// no entries, as a real server answers.
	honouring := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		forms = append(forms, r.PostForm)
		if countOnly(r.Form) {
			w.Header().Set("Content-Type", "application/fhir+json")
			_, _ = io.WriteString(w, `{"resourceType":"Bundle","type":"searchset","total":8}`)
			return
		}
		h.store.ServeHTTP(w, r)
	})
	for _, tc := range []struct{ name, query, form string }{
		{"_summary=count in the form", "", "_summary=count"},
		{"_count=0 in the form", "", "_count=0&_include=Observation:subject"},
		{"criteria in the URL, count in the form", "?_elements=id", "_summary=count&_total=accurate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forms = nil
			r := httptest.NewRequest(http.MethodPost, "https://ehr.example.org/fhir/Observation/_search"+tc.query, strings.NewReader(tc.form))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := httptest.NewRecorder()
			withToken(token(rs, "123"), h.authz.Handler(honouring)).ServeHTTP(rec, r)
			var doc map[string]any
			_ = json.Unmarshal(rec.Body.Bytes(), &doc)
			if rec.Code != http.StatusOK || doc["total"] != float64(want) || doc["entry"] != nil {
				t.Fatalf("status %d, want a count of %d: %s", rec.Code, want, rec.Body)
			}
			if len(forms) != 1 {
				t.Fatalf("%d handler calls", len(forms))
			}
			for _, k := range []string{"_summary", "_count", "_include", "_elements", "_total"} {
				if _, has := forms[0][k]; has && k != "_count" || k == "_count" && forms[0].Get(k) != "" && forms[0].Get(k) != "1000" {
					t.Fatalf("the handler's form still has %s: %v", k, forms[0])
				}
			}
		})
	}
	// A form that is not a count search is forwarded unchanged.
	forms = nil
	r := httptest.NewRequest(http.MethodPost, "https://ehr.example.org/fhir/Observation/_search", strings.NewReader("code=http://loinc.org|2339-0"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	withToken(token(rs, "123"), h.authz.Handler(honouring)).ServeHTTP(rec, r)
	if rec.Code != http.StatusOK || len(forms) != 1 || forms[0].Get("code") != "http://loinc.org|2339-0" {
		t.Fatalf("plain POST _search: %d, forms %v", rec.Code, forms)
	}
}
