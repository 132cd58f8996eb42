//go:build unix

package gateway

import (
	"fmt"
	"net/http"
	"testing"
)

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

// TestDetectors is the suite's control: its leak checks do fail on the
// engine's own answers (no gateway in between), and do not fail on a
// client's request echoed back.
func TestDetectors(t *testing.T) {
	s := needSuite(t)
	direct := func(target string) reply {
		r, err := s.engineDo(http.MethodGet, target, "")
		if err != nil || r.status != http.StatusOK {
			t.Fatalf("engine: GET %s: %v %d", target, err, r.status)
		}
		r.holder = "engine"
		return r
	}
	for _, c := range []struct {
		name     string
		r        reply
		upstream bool // checkUpstream must fail
		b        bool // checkNoB must fail
	}{
		{"engine-search-patient-B", direct("Observation?patient=" + s.b.ID), true, true},
		{"engine-search-patient-A", direct("Observation?patient=" + s.a.ID), true, true}, // holds the linking Observation
		{"engine-read-patient-B", direct("Patient/" + s.b.ID), false, true},
		{"engine-read-observation-A", direct("Observation/" + s.a.Observations.Vitals), false, false},
		{"engine-read-absolute-A", direct("Observation/" + s.absoluteA), true, false},
		{"echoed-request", reply{method: http.MethodGet, url: s.publicBase + "/Observation?patient=" + s.b.ID, status: 200,
			body: []byte(`{"resourceType":"Bundle","link":[{"relation":"self","url":"` + s.publicBase +
				`/Observation?patient=` + s.b.ID + `"}]}`)}, false, false},
		{"location-header", reply{method: http.MethodPost, url: s.publicBase + "/Observation", status: 201,
			header: http.Header{"Location": {s.engineBase + "/Observation/1/_history/1"}}, body: []byte(`{}`)}, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			up, b := &recorder{TB: t}, &recorder{TB: t}
			s.checkUpstream(up, c.r)
			s.checkNoB(b, c.r)
			if (len(up.errors) > 0) != c.upstream {
				t.Errorf("checkUpstream reported %q, want a report: %v", up.errors, c.upstream)
			}
			if (len(b.errors) > 0) != c.b {
				t.Errorf("checkNoB reported %q, want a report: %v", b.errors, c.b)
			}
		})
	}
}
