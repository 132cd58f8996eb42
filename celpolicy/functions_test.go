package celpolicy

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"

	"github.com/fhirguard/fhirguard/scope"
)

func TestFunctions(t *testing.T) {
	cases := []struct {
		name   string
		expr   string
		scopes string // token scopes; default testToken's
		want   string // allow, deny or error
	}{
		{"hasScope exact", `token.hasScope('patient/Observation.rs')`, "", "allow"},
		{"hasScope v1 exact", `token.hasScope('patient/Patient.read')`, "", "allow"},
		{"hasScope v1 is not v2", `token.hasScope('patient/Patient.rs')`, "", "deny"},
		{"hasScope absent", `token.hasScope('patient/Observation.cruds')`, "", "deny"},
		{"hasScope subset is not the scope", `token.hasScope('patient/Observation.r')`, "", "deny"},
		{"hasScope launch", `token.hasScope('launch/patient') && token.hasScope('openid')`, "", "allow"},
		{"hasScope granular", `token.hasScope('user/Encounter.cruds?status=finished')`, "", "allow"},
		{"hasScope granular without constraint", `token.hasScope('user/Encounter.cruds')`, "", "deny"},
		{"hasScope dynamic", `token.hasScope(token.claims.s1)`, "", "allow"},
		{"hasScope dynamic invalid is false", `token.hasScope(token.claims.bad)`, "", "deny"},
		{"hasScope empty token", `token.hasScope('openid')`, " ", "deny"},
		{"allows read", `token.allows('Observation', 'r')`, "", "allow"},
		{"allows rs", `token.allows('Observation', 'rs')`, "", "allow"},
		{"allows letters from two scopes", `token.allows('Observation', 'rs')`, "patient/Observation.r patient/Observation.s", "allow"},
		{"allows not create", `token.allows('Observation', 'c')`, "", "deny"},
		{"allows v1 read", `token.allows('Patient', 'rs') && !token.allows('Patient', 'u')`, "", "allow"},
		{"allows other type", `token.allows('Condition', 'r')`, "", "deny"},
		{"allows wildcard", `token.allows('Condition', 'r') && token.allows('Observation', 'cruds')`, "system/*.cruds", "allow"},
		{"allows constrained counts", `token.allows('Encounter', 'r')`, "", "allow"},
		{"allows with context", `token.allows('patient', 'Observation', 'r') && !token.allows('user', 'Observation', 'r')`, "", "allow"},
		{"allows user context", `token.allows('user', 'Encounter', 'cruds')`, "", "allow"},
		{"allows dynamic bad letters errors", `token.allows('Observation', token.claims.letters)`, "", "error"},
		{"allows dynamic bad context errors", `token.allows(token.claims.ctx, 'Observation', 'r')`, "", "error"},
		{"allows dynamic unknown type is false", `token.allows(token.claims.typ, 'r')`, "", "deny"},
		{"refType relative", `refType('Patient/123') == 'Patient' && refId('Patient/123') == '123'`, "", "allow"},
		{"refType absolute", `refType(token.fhirUser) == 'Practitioner' && refId(token.fhirUser) == '77'`, "", "allow"},
		{"refType history", `refType('Observation/o1/_history/3') == 'Observation' && refId('Observation/o1/_history/3') == 'o1'`, "", "allow"},
		{"refType contained", `refType('#c1') == '' && refId('#c1') == ''`, "", "allow"},
		{"zone hours", `now.getHours('Europe/Berlin') == 11 && now.getHours('America/New_York') == 6 && now.getHours('+05:30') == 16 && now.getMinutes('+05:30') == 0`, "", "allow"},
		{"zone other accessors", `now.getDayOfWeek('Pacific/Kiritimati') == 5 && now.getFullYear('UTC') == 2026 && now.getMonth('UTC') == 2 && now.getDate('UTC') == 12 && now.getDayOfMonth('UTC') == 11 && now.getDayOfYear('UTC') == 70 && now.getSeconds('UTC') == 0 && now.getMilliseconds('UTC') == 0`, "", "allow"},
		{"zone negative offset", `now.getHours('-03:00') == 7`, "", "allow"},
		{"zone dynamic unknown errors", `now.getHours(token.claims.zone) == 1`, "", "error"},
		{"strings extension", `token.clientId.upperAscii() == 'APP-1' && 'a,b'.split(',') == ['a', 'b']`, "", "allow"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := testToken()
			if tc.scopes != "" {
				tok.Scopes = scope.Compile(scope.ParseSet(tc.scopes))
			}
			tok.Claims = map[string]any{"s1": "patient/Observation.rs", "bad": "patient/Observation.xx",
				"letters": "sr", "ctx": "admin", "typ": "Nope", "zone": "Mars/Olympus"}
			p := newTestPolicy(t, requireRule(tc.expr))
			if got := outcome(t, p, testRequest(), tok, testDecision()); got != tc.want {
				t.Errorf("%s: got %s, want %s", tc.expr, got, tc.want)
			}
		})
	}
}

func TestParseReference(t *testing.T) {
	cases := []struct {
		name, in, typ, id string
	}{
		{"relative", "Patient/123", "Patient", "123"},
		{"versioned", "Patient/123/_history/4", "Patient", "123"},
		{"absolute", "https://fhir.example.org/r4/Patient/123", "Patient", "123"},
		{"absolute versioned", "http://x/Observation/o.1/_history/2", "Observation", "o.1"},
		{"id with dash and dot", "Observation/a-b.c", "Observation", "a-b.c"},
		{"contained", "#p1", "", ""},
		{"conditional", "Patient?identifier=x|1", "", ""},
		{"urn uuid", "urn:uuid:9d2e1c9c-7a8c-4c5b-9d3a-1a2b3c4d5e6f", "", ""},
		{"urn oid", "urn:oid:1.2.3", "", ""},
		{"type only", "Patient", "", ""},
		{"trailing slash", "Patient/", "", ""},
		{"leading slash", "/Patient/123", "", ""},
		{"unknown type", "Foo/123", "", ""},
		{"lower-case type", "patient/123", "", ""},
		{"dot segments", "Patient/123/../Patient/456", "", ""},
		{"relative with path prefix", "fhir/Patient/123", "", ""},
		{"encoded slash", "Patient/1%2F2", "", ""},
		{"space", "Patient/ 1", "", ""},
		{"fragment", "Patient/1#x", "", ""},
		{"id too long", "Patient/" + strings.Repeat("a", 65), "", ""},
		{"id max length", "Patient/" + strings.Repeat("a", 64), "Patient", strings.Repeat("a", 64)},
		{"bad history", "Patient/1/_history/", "", ""},
		{"empty", "", "", ""},
		{"unicode id", "Patient/ü", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			typ, id := parseReference(tc.in)
			if typ != tc.typ || id != tc.id {
				t.Errorf("parseReference(%q) = %q, %q; want %q, %q", tc.in, typ, id, tc.typ, tc.id)
			}
		})
	}
}

// TestServerFunctions registers a typed Go function, as a server adds a
// care-team look-up, and checks that rules use it, are type-checked against
// it, and that its errors deny.
func TestServerFunctions(t *testing.T) {
	careTeam := map[string][]string{"Practitioner/77": {"123"}}
	inCareTeam := cel.Function("inCareTeam",
		cel.Overload("in_care_team_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
			cel.BinaryBinding(func(user, patient ref.Val) ref.Val {
				u, _ := user.(types.String)
				if u == "" {
					return types.NewErr("care team look-up failed: no user")
				}
				for _, p := range careTeam[string(u)] {
					if types.String(p) == patient {
						return types.True
					}
				}
				return types.False
			})))
	cfg := Config{
		Rules: []Rule{{Name: "care-team", Effect: Require,
			When:    `inCareTeam('Practitioner/' + refId(token.fhirUser), request.compartmentId)`,
			Message: "not in the care team"}},
		EnvOptions: []cel.EnvOption{inCareTeam},
	}
	p := newTestPolicy(t, cfg)
	tests := []struct {
		name    string
		patient string
		user    string
		want    string
	}{
		{"member", "123", "https://fhir.example.org/Practitioner/77", "allow"},
		{"not a member", "456", "https://fhir.example.org/Practitioner/77", "deny"},
		{"other practitioner", "123", "Practitioner/78", "deny"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, d := testToken(), testDecision()
			tok.FHIRUser = tc.user
			d.CompartmentID = tc.patient
			if got := outcome(t, p, testRequest(), tok, d); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
	t.Run("error from function denies", func(t *testing.T) {
		p := newTestPolicy(t, Config{
			Rules:      []Rule{{Name: "ct", Effect: Require, When: `inCareTeam(token.sub, '123')`, Message: "no"}},
			EnvOptions: []cel.EnvOption{inCareTeam},
		})
		tok := testToken()
		tok.Subject = ""
		err := p.AuthorizeRequest(testRequest(), tok, testDecision())
		if !isEvalError(err) {
			t.Fatalf("got %v, want ErrEvaluation", err)
		}
	})
	t.Run("type checked", func(t *testing.T) {
		_, err := New(Config{
			Rules:      []Rule{{Name: "ct", Effect: Require, When: `inCareTeam(token.sub, 123)`, Message: "no"}},
			EnvOptions: []cel.EnvOption{inCareTeam},
		})
		if !isKind(err, errCompile) || !strings.Contains(err.Error(), "inCareTeam") {
			t.Fatalf("got %v, want a compile error about inCareTeam", err)
		}
	})
	t.Run("unregistered", func(t *testing.T) {
		_, err := New(requireRule(`inCareTeam(token.sub, '1')`))
		if !isKind(err, errCompile) {
			t.Fatalf("got %v, want ErrCompile", err)
		}
	})
}

// TestZoneCache checks that zone accessors do not load the zone per call.
func TestZoneCache(t *testing.T) {
	a, err := loadZone("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := loadZone("Asia/Tokyo")
	if a != b {
		t.Error("zone loaded twice")
	}
	for _, bad := range []string{"", "Local", "local", "Nowhere/City", "+24:00", "+1:00", "05:00", "+05:60", "+aa:bb", "+-5:00", "++5:00", "+05:-1"} {
		if _, err := loadZone(bad); err == nil {
			t.Errorf("loadZone(%q) succeeded", bad)
		}
	}
	if loc, err := loadZone("-09:30"); err != nil || time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC).In(loc).Hour() != 2 {
		t.Errorf("-09:30: %v %v", loc, err)
	}
}

// TestScopeListShared checks that the scope list is built once per Matcher.
func TestScopeListShared(t *testing.T) {
	m := scope.Compile(scope.ParseSet("openid patient/Observation.rs"))
	if scopeList(m) != scopeList(m) {
		t.Error("scope list rebuilt for the same Matcher")
	}
	if got := scopeStrings(m); len(got) != 2 || got[1] != "patient/Observation.rs" {
		t.Errorf("scopeStrings = %q", got)
	}
}

// TestScopeCacheReleases checks that cached scope lists do not keep their
// Matchers alive.
func TestScopeCacheReleases(t *testing.T) {
	count := func() int {
		n := 0
		scopeCache.Range(func(any, any) bool { n++; return true })
		return n
	}
	before := count()
	for i := range 50 {
		m := scope.Compile(scope.ParseSet(fmt.Sprintf("patient/Observation.rs?code=%d", i)))
		_ = scopeList(m)
	}
	if count() < before+49 {
		t.Fatalf("cache did not grow: %d → %d", before, count())
	}
	for range 20 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
		if count() <= before+1 {
			return
		}
	}
	t.Errorf("cache still holds %d entries (had %d)", count(), before)
}
