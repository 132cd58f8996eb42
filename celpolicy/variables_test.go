package celpolicy

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/fhirrest"
	"github.com/fhirguard/fhirguard/middleware"
)

// TestVariables checks every variable and field against the request, token
// and decision of the tests. Each case is an expression that must be true;
// the negated expression must then deny, so every case can fail both ways.
func TestVariables(t *testing.T) {
	noDecision := func(*http.Request, *middleware.Token, *middleware.Decision) (*http.Request, *middleware.Token, *middleware.Decision) {
		r, tok, _ := testRequest(), testToken(), testDecision()
		return r, tok, nil
	}
	noToken := func(*http.Request, *middleware.Token, *middleware.Decision) (*http.Request, *middleware.Token, *middleware.Decision) {
		return testRequest(), nil, testDecision()
	}
	type mod func(*http.Request, *middleware.Token, *middleware.Decision) (*http.Request, *middleware.Token, *middleware.Decision)
	cases := []struct {
		name string
		expr string
		mod  mod
	}{
		{"method", `request.method == 'GET'`, nil},
		{"method from request without decision", `request.method == 'GET'`, noDecision},
		{"head reads as get", `request.method == 'GET'`, func(r *http.Request, tok *middleware.Token, d *middleware.Decision) (*http.Request, *middleware.Token, *middleware.Decision) {
			r.Method = http.MethodHead
			return r, tok, nil
		}},
		{"method from decision wins", `request.method == 'POST'`, func(r *http.Request, tok *middleware.Token, d *middleware.Decision) (*http.Request, *middleware.Token, *middleware.Decision) {
			d.Interaction.Method = "POST"
			return r, tok, d
		}},
		{"path", `request.path == '/fhir/Observation'`, nil},
		{"interaction", `request.interaction == 'search-type'`, nil},
		{"interaction empty without decision", `request.interaction == '' && !has(request.interaction)`, noDecision},
		{"resourceType", `request.resourceType == 'Observation'`, nil},
		{"resourceType empty without decision", `request.resourceType == ''`, noDecision},
		{"id and versionId", `request.id == 'o1' && request.versionId == '2' && request.interaction == 'vread'`, func(r *http.Request, tok *middleware.Token, d *middleware.Decision) (*http.Request, *middleware.Token, *middleware.Decision) {
			d.Interaction = fhirrest.Interaction{Kind: fhirrest.VRead, Method: "GET", ResourceType: "Observation", ID: "o1", VersionID: "2"}
			return r, tok, d
		}},
		{"has id", `!has(request.id)`, nil},
		{"operation", `request.operation == 'everything' && request.interaction == 'operation'`, func(r *http.Request, tok *middleware.Token, d *middleware.Decision) (*http.Request, *middleware.Token, *middleware.Decision) {
			d.Interaction = fhirrest.Interaction{Kind: fhirrest.Operation, Method: "GET", ResourceType: "Patient", ID: "123", Operation: "everything", OperationLevel: fhirrest.LevelInstance}
			return r, tok, d
		}},
		{"compartment from decision", `request.compartmentType == 'Patient' && request.compartmentId == '123'`, nil},
		{"compartment from path", `request.compartmentType == 'Encounter' && request.compartmentId == 'e1'`, func(r *http.Request, tok *middleware.Token, d *middleware.Decision) (*http.Request, *middleware.Token, *middleware.Decision) {
			d.CompartmentType, d.CompartmentID = "", ""
			d.Interaction.Kind = fhirrest.SearchCompartment
			d.Interaction.CompartmentType, d.Interaction.CompartmentID = "Encounter", "e1"
			return r, tok, d
		}},
		{"context", `request.context == 'patient'`, nil},
		{"query list", `request.query['code'] == ['a', 'b'] && request.query['patient'][0] == '123'`, nil},
		{"query in", `'patient' in request.query && !('subject' in request.query)`, nil},
		{"query size and keys", `size(request.query) == 2 && request.query.all(k, k in ['code', 'patient'])`, nil},
		{"query keys sorted", `request.query.map(k, k) == ['code', 'patient']`, nil},
		{"query from url without decision", `request.query['code'] == ['a', 'b'] && request.query['patient'] == ['123']`, noDecision},
		{"query from decision, not url", `request.query['patient'] == ['999']`, func(r *http.Request, tok *middleware.Token, d *middleware.Decision) (*http.Request, *middleware.Token, *middleware.Decision) {
			d.Interaction.Query = map[string][]string{"patient": {"999"}}
			return r, tok, d
		}},
		{"query equality", `request.query == {'patient': ['123'], 'code': ['a', 'b']}`, nil},
		{"headers lower-case", `request.headers['x-tenant'] == 'acme' && request.headers['accept'] == 'application/fhir+json'`, nil},
		{"headers any case", `request.headers['X-TENANT'] == 'acme'`, nil},
		{"headers repeated joined", `request.headers['x-multi'] == 'one, two'`, nil},
		{"headers keys lower-case", `request.headers.exists(k, k == 'x-tenant') && !request.headers.exists(k, k == 'X-Tenant')`, nil},
		{"headers in", `'x-tenant' in request.headers && !('x-absent' in request.headers)`, nil},
		{"headers non-canonical key", `request.headers['x_odd'] == 'v'`, func(r *http.Request, tok *middleware.Token, d *middleware.Decision) (*http.Request, *middleware.Token, *middleware.Decision) {
			r.Header["x_odd"] = []string{"v"}
			return r, tok, d
		}},
		{"remoteAddr", `request.remoteAddr == '192.0.2.7:5050' && request.remoteIp == '192.0.2.7'`, nil},
		{"remoteIp v6", `request.remoteIp == '2001:db8::1'`, func(r *http.Request, tok *middleware.Token, d *middleware.Decision) (*http.Request, *middleware.Token, *middleware.Decision) {
			r.RemoteAddr = "[2001:db8::1]:443"
			return r, tok, d
		}},
		{"token strings", `token.sub == 'user-1' && token.clientId == 'app-1' && token.issuer == 'https://as.example.org' && token.patient == '123' && token.encounter == 'enc-9' && token.tenant == 'acme'`, nil},
		{"token fhirUser", `token.fhirUser == 'https://fhir.example.org/Practitioner/77'`, nil},
		{"token scopes canonical", `token.scopes == ['launch/patient', 'openid', 'fhirUser', 'patient/Observation.rs', 'patient/Patient.read', 'user/Encounter.cruds?status=finished']`, nil},
		{"token audience", `token.audience == ['https://fhir.example.org']`, nil},
		{"token exp", `token.exp == timestamp('2026-03-12T11:00:00Z') && token.exp > now && token.exp - now == duration('30m')`, nil},
		{"token exp unset", `!has(token.exp)`, func(r *http.Request, tok *middleware.Token, d *middleware.Decision) (*http.Request, *middleware.Token, *middleware.Decision) {
			tok.Expiry = time.Time{}
			return r, tok, d
		}},
		{"token fhirContext", `size(token.fhirContext) == 2 && token.fhirContext[0].reference == 'Encounter/enc-9' && token.fhirContext[0].role == 'launch' && token.fhirContext[1].type == 'Questionnaire' && token.fhirContext[1].canonical == 'http://example.org/Questionnaire/q1' && token.fhirContext[1].identifier.value == 'v1'`, nil},
		{"token fhirContext exists", `token.fhirContext.exists(c, refType(c.reference) == 'Encounter' && refId(c.reference) == token.encounter)`, nil},
		{"token fhirContext has", `!has(token.fhirContext[0].canonical) && has(token.fhirContext[1].canonical)`, nil},
		{"token claims", `token.claims.tenant == 'acme' && 'admin' in token.claims.roles && token.claims.level == 3.0 && token.claims.break_glass == true`, nil},
		{"token claims optional", `token.claims.?missing.orValue('x') == 'x'`, nil},
		{"no token: fields empty", `token.sub == '' && token.scopes == [] && !token.hasScope('openid') && !token.allows('Observation', 'r') && size(token.claims) == 0 && !has(token.exp)`, noToken},
		{"now", `now == timestamp('2026-03-12T10:30:00Z') && now.getHours() == 10 && now.getDayOfWeek() == 4`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, tok, d := testRequest(), testToken(), testDecision()
			if tc.mod != nil {
				r, tok, d = tc.mod(r, tok, d)
			}
			if got := outcome(t, newTestPolicy(t, requireRule(tc.expr)), r, tok, d); got != "allow" {
				t.Errorf("%s: got %s, want allow", tc.expr, got)
			}
			if got := outcome(t, newTestPolicy(t, requireRule("!("+tc.expr+")")), r, tok, d); got != "deny" {
				t.Errorf("!(%s): got %s, want deny", tc.expr, got)
			}
		})
	}
}

// TestQueryEncodings checks that, without a decision, rules see the URL
// query decoded the way net/http handlers see it, so an encoded spelling
// cannot slip a parameter past a rule.
func TestQueryEncodings(t *testing.T) {
	p := newTestPolicy(t, Config{Rules: []Rule{{Name: "no-subject", Effect: Deny,
		When: "'subject' in request.query || request.query.exists(k, request.query[k].exists(v, v.startsWith('Patient/9')))", Message: "m"}}})
	cases := []struct {
		name, query string
		deny        bool
	}{
		{"plain", "subject=Patient/1", true},
		{"encoded key", "%73ubject=Patient/1", true},
		{"encoded upper hex key", "%73UBJECT=x", false},
		{"plus in value", "code=a+b", false},
		{"encoded value", "code=Patient%2F9", true},
		{"repeated key", "code=a&code=Patient/9", true},
		{"empty value", "subject=", true},
		{"key only", "subject", true},
		{"bad escape elsewhere", "code=%zz&subject=x", true},
		{"semicolon separator refused like net/http", "code=a;subject=x", false},
		{"legitimate", "patient=123&code=x", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/fhir/Observation?"+tc.query, nil)
			handlerSees := r.URL.Query()
			_, subj := handlerSees["subject"]
			got := outcome(t, p, r, testToken(), nil)
			if want := map[bool]string{true: "deny", false: "allow"}[tc.deny]; got != want {
				t.Errorf("?%s: got %s, want %s (handler sees subject: %v)", tc.query, got, want, subj)
			}
		})
	}
}
