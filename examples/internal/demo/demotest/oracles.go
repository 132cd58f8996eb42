package demotest

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// testOracles checks end to end that counts, totals, paging links and
// instance histories tell a patient token nothing about resources it may
// not see, while its own counts and pages still work.
func (h *hardening) testOracles(t *testing.T) {
	type page struct {
		Total *int
		Link  []struct{ Relation, URL string }
		Entry []struct {
			Resource map[string]any
			Search   struct{ Mode string }
		}
	}
	get := func(t *testing.T, path, token string) (int, page, string) {
		t.Helper()
		a := h.send(t, "GET", path, token, "", "")
		var p page
		if a.code == 200 {
			if err := json.Unmarshal(a.body, &p); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}
		return a.code, p, string(a.body)
	}
	matches := func(p page) (n int, ids []string) {
		for _, e := range p.Entry {
			if e.Search.Mode != "include" {
				n++
				ids = append(ids, e.Resource["resourceType"].(string)+"/"+e.Resource["id"].(string))
			}
		}
		return n, ids
	}
	count := func(t *testing.T, path, token string) int {
		t.Helper()
		code, p, body := get(t, path, token)
		if code != 200 || p.Total == nil || len(p.Entry) != 0 {
			t.Fatalf("%s: %d %.300s", path, code, body)
		}
		return *p.Total
	}

	t.Run("count-only searches count what the token may see", func(t *testing.T) {
		_, full, _ := get(t, "/Observation?_count=1000", h.patient)
		own, ids := matches(full)
		all := count(t, "/Observation?_summary=count", h.sysRead)
		if own == 0 || own >= all {
			t.Fatalf("fixtures: %d own observations of %d", own, all)
		}
		for _, q := range []string{"_summary=count", "_count=0", "_summary=count&_include=Observation:subject", "_count=0&_elements=id"} {
			if got := count(t, "/Observation?"+q, h.patient); got != own {
				t.Errorf("%s: %d, want %d (%v)", q, got, own, ids)
			}
		}
		if got := count(t, "/Patient/123/Observation?_summary=count", h.patient); got != own {
			t.Errorf("compartment count %d, want %d", got, own)
		}
		_, every, _ := get(t, "/Patient/123/$everything?_count=1000", h.patient)
		n, _ := matches(every)
		if got := count(t, "/Patient/123/$everything?_summary=count", h.patient); got != n {
			t.Errorf("$everything count %d, want %d", got, n)
		}
	})
	t.Run("a count of another patient's data is refused or empty", func(t *testing.T) {
		for _, path := range []string{"/Observation?_summary=count&patient=456", "/Observation?_count=0&subject=Patient/456"} {
			code, p, body := get(t, path, h.patient)
			if code == 200 && (p.Total == nil || *p.Total != 0) {
				t.Errorf("%s: %s", path, body)
			}
		}
	})
	t.Run("instance history of a hidden resource answers like an absent id", func(t *testing.T) {
		for _, q := range []string{"", "?_count=0", "?_summary=count", "?_count=1"} {
			absent := h.send(t, "GET", "/Observation/no-such-id/_history"+q, h.patient, "", "")
			hidden := h.send(t, "GET", "/Observation/h-mixed/_history"+q, h.patient, "", "")
			if absent.code != 404 || hidden.code != absent.code || string(hidden.body) != string(absent.body) {
				t.Errorf("%s: hidden %d %.200s, absent %d %.200s", q, hidden.code, hidden.body, absent.code, absent.body)
			}
		}
		if got := count(t, "/Observation/h-own3/_history?_count=0", h.patient); got < 1 {
			t.Errorf("own history count %d", got)
		}
	})
	t.Run("paging through the own compartment", func(t *testing.T) {
		_, full, _ := get(t, "/Observation?_count=1000", h.patient)
		own, _ := matches(full)
		if full.Total == nil || *full.Total != own {
			t.Fatalf("one page: total %v, %d matches", full.Total, own)
		}
		// The store states the parameters it applied in the self link, so
		// the guard keeps its paging links; the total it cannot verify.
		path, seen := "/Observation?_count=2", 0
		for i := 0; path != "" && i < 100; i++ {
			code, p, body := get(t, path, h.patient)
			if code != 200 || p.Total != nil {
				t.Fatalf("%s: %d %.300s", path, code, body)
			}
			n, _ := matches(p)
			seen += n
			path = ""
			for _, l := range p.Link {
				if l.Relation == "next" {
					u, err := url.Parse(l.URL)
					if err != nil || !strings.HasPrefix(l.URL, h.base) {
						t.Fatalf("next link %q", l.URL)
					}
					path = strings.TrimPrefix(u.Path, strings.TrimPrefix(h.base, "http://"+u.Host)) + "?" + u.RawQuery
				}
			}
		}
		if seen != own {
			t.Fatalf("pages held %d matches, one page %d", seen, own)
		}
	})
}
