package celpolicy

import (
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"

	"github.com/fhirguard/fhirguard/fhirrest"
	"github.com/fhirguard/fhirguard/middleware"
)

// evalState is the activation of one request: a fixed set of variables
// whose fields are read lazily, when a rule asks for them, straight from the
// request, the token and the decision. Nothing is copied into maps.
// An evalState belongs to one goroutine at a time; states are pooled.
type evalState struct {
	r        *http.Request
	t        *middleware.Token
	d        *middleware.Decision
	now      time.Time
	nowVal   ref.Val // now as a CEL value, made on first use
	resource ref.Val // nil for request rules
	phase    ref.Val

	urlQuery url.Values // parsed on first use when no decision holds the query
	parsed   bool

	checked, within inputGroup // input groups checked against the bounds, and those within
}

var (
	noToken       = &middleware.Token{}
	noInteraction = &fhirrest.Interaction{}
	statePool     = sync.Pool{New: func() any { return new(evalState) }}
)

func newState(r *http.Request, t *middleware.Token, d *middleware.Decision, now time.Time) *evalState {
	s := statePool.Get().(*evalState)
	if t == nil {
		t = noToken
	}
	s.r, s.t, s.d = r, t, d
	s.now = now
	return s
}

func (s *evalState) release() {
	*s = evalState{}
	statePool.Put(s)
}

// ResolveName implements interpreter.Activation.
func (s *evalState) ResolveName(name string) (any, bool) {
	switch name {
	case variableRequest:
		return (*requestObj)(s), true
	case variableToken:
		return (*tokenObj)(s), true
	case variableNow:
		if s.nowVal == nil {
			s.nowVal = types.Timestamp{Time: s.now.UTC()}
		}
		return s.nowVal, true
	case variableResource:
		if s.resource != nil {
			return s.resource, true
		}
	case variablePhase:
		if s.phase != nil {
			return s.phase, true
		}
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (s *evalState) Parent() interpreter.Activation { return nil }

func (s *evalState) in() *fhirrest.Interaction {
	if s.d == nil {
		return noInteraction
	}
	return &s.d.Interaction
}

func (s *evalState) method() string {
	if s.d != nil && s.d.Interaction.Method != "" {
		return s.d.Interaction.Method
	}
	if s.r.Method == http.MethodHead {
		return http.MethodGet
	}
	return s.r.Method
}

func (s *evalState) interaction() string {
	if s.d == nil || s.d.Interaction.Kind == fhirrest.KindUnknown {
		return ""
	}
	return s.d.Interaction.Kind.String()
}

// compartment returns the compartment the decision holds the request to or,
// when none, the compartment a compartment search names in its path.
func (s *evalState) compartment() (typ, id string) {
	if s.d == nil {
		return "", ""
	}
	if s.d.CompartmentType != "" {
		return s.d.CompartmentType, s.d.CompartmentID
	}
	return s.d.Interaction.CompartmentType, s.d.Interaction.CompartmentID
}

func (s *evalState) grantContext() string {
	if s.d == nil {
		return ""
	}
	return s.d.Context.String()
}

// query returns the classified search parameters when the enforcement point
// ran, otherwise the URL query.
func (s *evalState) query() url.Values {
	if s.d != nil && s.d.Interaction.Query != nil {
		return s.d.Interaction.Query
	}
	if !s.parsed {
		s.parsed = true
		if s.r.URL != nil {
			s.urlQuery, _ = url.ParseQuery(s.r.URL.RawQuery)
		}
	}
	return s.urlQuery
}

// withinBounds reports whether the inputs of the groups are within the
// bounds a statically bounded rule was proven with. Each group is checked
// at most once per request.
func (s *evalState) withinBounds(groups inputGroup) bool {
	if todo := groups &^ s.checked; todo != 0 {
		for g := inputGroup(1); g != 0 && g <= todo; g <<= 1 {
			if todo&g != 0 && s.groupWithin(g) {
				s.within |= g
			}
		}
		s.checked |= todo
	}
	return s.within&groups == groups
}

func (s *evalState) groupWithin(g inputGroup) bool {
	short := func(strs ...string) bool {
		for _, x := range strs {
			if len(x) > boundStrings {
				return false
			}
		}
		return true
	}
	switch g {
	case groupRequestStrings:
		in := s.in()
		ct, cid := s.compartment()
		return s.r.URL != nil && short(s.method(), s.r.URL.Path, in.ResourceType, in.ID, in.VersionID, in.Operation, ct, cid, s.r.RemoteAddr)
	case groupTokenStrings:
		t := s.t
		return short(t.Subject, t.ClientID, t.Issuer, t.Patient, t.Encounter, t.FHIRUser, t.Tenant)
	case groupScopes:
		e := scopeEntryOf(s.t.Scopes)
		return len(e.strs) <= boundEntries && e.maxLen <= boundStrings
	case groupAudience:
		return len(s.t.Audience) <= boundEntries && short(s.t.Audience...)
	case groupQuery:
		q := s.query()
		if len(q) > boundEntries {
			return false
		}
		for k, v := range q {
			if len(k) > boundStrings || len(v) > boundEntries || !short(v...) {
				return false
			}
		}
		return true
	case groupHeaders:
		h := s.r.Header
		if len(h) > boundEntries {
			return false
		}
		for k, v := range h {
			n := 2 * len(v) // the ", " separators
			for _, x := range v {
				n += len(x)
			}
			if len(k) > boundStrings || n > boundStrings {
				return false
			}
		}
		return true
	}
	return false
}
