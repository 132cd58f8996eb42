package scopeexplain

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/fhirrest"
	"github.com/fhirguard/fhirguard/scope"
)

// TestLettersFollowFHIRREST checks the interactions listed per letter
// against the classifier's own mapping, and against the SMART text
// (smart-spec-notes §1.3).
func TestLettersFollowFHIRREST(t *testing.T) {
	want := map[scope.Permission][]string{}
	for k := fhirrest.Kind(1); k != 0 && k.String() != "unknown"; k++ {
		if p := k.Permission(); p != 0 {
			want[p] = append(want[p], k.String())
		}
	}
	for _, l := range letters {
		got := slices.Clone(interactions[l])
		slices.Sort(got)
		w := slices.Clone(want[l])
		slices.Sort(w)
		if !slices.Equal(got, w) {
			t.Errorf("letter %s: interactions %v, fhirrest maps %v", l, got, w)
		}
	}
	spec := map[scope.Permission][]string{
		scope.Create: {"create"},
		scope.Read:   {"read", "vread", "history-instance"},
		scope.Update: {"update", "patch"},
		scope.Delete: {"delete"},
		scope.Search: {"search-type", "search-system", "history-type", "history-system"},
	}
	for l, names := range spec {
		for _, n := range names {
			if !slices.Contains(interactions[l], n) {
				t.Errorf("letter %s does not list %s", l, n)
			}
		}
	}
	r := Explain("patient/Observation.cruds")
	if got := len(r.Scopes[0].Resource.Letters); got != 5 {
		t.Fatalf("%d letters for cruds", got)
	}
}

// TestSplitsLikeScope checks that the scopes explained are the tokens
// package scope reads, and that the valid ones are exactly its Set.
func TestSplitsLikeScope(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		s := randomScopeString(rng)
		checkAgainstScope(t, s)
	}
}

func checkAgainstScope(t *testing.T, s string) {
	t.Helper()
	r := Explain(s)
	set := scope.ParseSet(s)
	if r.Canonical != set.String() {
		t.Fatalf("%q: canonical %q, scope.ParseSet %q", s, r.Canonical, set.String())
	}
	var canon, invalid []string
	for _, sr := range r.Scopes {
		if sr.DuplicateOf != 0 {
			continue
		}
		if sr.Kind == "invalid" {
			invalid = append(invalid, sr.Raw)
		} else {
			canon = append(canon, sr.Canonical)
		}
	}
	var want []string
	for _, sc := range set.Scopes() {
		want = append(want, sc.String())
	}
	if !slices.Equal(canon, want) {
		t.Fatalf("%q: scopes %q, scope.ParseSet %q", s, canon, want)
	}
	var wantInvalid []string
	for _, iv := range set.Invalid() {
		wantInvalid = append(wantInvalid, iv.Raw)
	}
	if !slices.Equal(invalid, wantInvalid) {
		t.Fatalf("%q: invalid %q, scope.ParseSet %q", s, invalid, wantInvalid)
	}
	n := 0
	for tok := range strings.SplitSeq(s, " ") {
		if tok != "" {
			n++
		}
	}
	if n != len(r.Scopes) {
		t.Fatalf("%q: %d scope reports for %d tokens", s, len(r.Scopes), n)
	}
	valid := true
	for _, sr := range r.Scopes {
		if !sr.Valid {
			valid = false
			if sr.Error == "" {
				t.Fatalf("%q: scope %q invalid without an error", s, sr.Raw)
			}
		}
		for _, sug := range sr.Suggestions {
			for piece := range strings.SplitSeq(sug, " ") {
				if !works(piece) {
					t.Fatalf("%q: suggestion %q for %q does not work", s, sug, sr.Raw)
				}
			}
		}
	}
	if valid != r.Valid {
		t.Fatalf("%q: Valid %v, scopes say %v", s, r.Valid, valid)
	}
}

// TestEffectiveAgreesWithCompile checks, for random scope strings, that the
// effective permissions of the report are what scope.Compile enforces, for
// every context, type and letter.
func TestEffectiveAgreesWithCompile(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, s := range fixedStrings {
		checkEffective(t, s)
	}
	for range 1000 {
		checkEffective(t, randomScopeString(rng))
	}
}

var fixedStrings = []string{
	"", "patient/*.rs", "patient/Observation.rs?category=a patient/Observation.r?category=b patient/*.s?_tag=x",
	"user/*.cruds?_security=N user/Observation.rs", "system/*.read system/Observation.write",
}

func checkEffective(t *testing.T, s string) {
	t.Helper()
	r := Explain(s)
	m := scope.Compile(scope.ParseSet(s))
	for _, ctx := range contexts {
		var star *Effective
		rows := map[string]*Effective{}
		for i := range r.Effective {
			e := &r.Effective[i]
			if e.Context != ctx.String() {
				continue
			}
			if e.ResourceType == "*" {
				star = e
			} else {
				rows[e.ResourceType] = e
			}
		}
		if (len(rows) > 0 || star != nil) != m.HasContext(ctx) {
			t.Fatalf("%q: context %s has rows %v, HasContext %v", s, ctx, len(rows) > 0 || star != nil, m.HasContext(ctx))
		}
		for _, name := range allTypes {
			tid, _ := scope.LookupType(name)
			e := rows[name]
			if e == nil {
				e = star
			}
			for _, l := range letters {
				g := m.Lookup(ctx, tid, l)
				var allowed, open bool
				var sets []string
				if e != nil {
					allowed = strings.Contains(e.Permissions, l.String())
					open = strings.Contains(e.Unconstrained, l.String())
					for _, c := range e.Constrained {
						if c.Letter == l.String() {
							sets = c.AnyOf
						}
					}
				}
				if allowed != g.Allowed || open != g.Unconstrained {
					t.Fatalf("%q: %s/%s.%s: report allowed=%v unconstrained=%v, Lookup %+v", s, ctx, name, l, allowed, open, g)
				}
				if want := setStrings(g.Constraints); g.Allowed && !g.Unconstrained && !slices.Equal(sets, want) {
					t.Fatalf("%q: %s/%s.%s: report constraints %q, Lookup %q", s, ctx, name, l, sets, want)
				}
				if g.Unconstrained && sets != nil {
					t.Fatalf("%q: %s/%s.%s: unconstrained but constraints listed %q", s, ctx, name, l, sets)
				}
			}
		}
	}
}

// randomScopeString builds scope strings from valid and invalid pieces.
func randomScopeString(rng *rand.Rand) string {
	ctxs := []string{"patient", "user", "system", "Patient", "*"}
	types := []string{"Observation", "Condition", "Patient", "*", "*", "Encounter", "observation", "Observations", "Transport", "Media"}
	perms := []string{"r", "s", "rs", "c", "cu", "cud", "cruds", "d", "read", "write", "*", "sr", "rr", "", "x"}
	cons := []string{"", "", "", "?category=a", "?category=a,b", "?category=b&code=c", "?_tag=x", "?", "?code:in=v", "?a"}
	others := []string{"launch", "launch/patient", "launch/encounter", "openid", "fhirUser", "offline_access", "__x", "Openid", "launch/Patient", "openid\tfhirUser"}
	n := rng.IntN(7)
	var parts []string
	for range n {
		if rng.IntN(4) == 0 {
			parts = append(parts, others[rng.IntN(len(others))])
			continue
		}
		p := ctxs[rng.IntN(len(ctxs))] + "/" + types[rng.IntN(len(types))] + "." + perms[rng.IntN(len(perms))] + cons[rng.IntN(len(cons))]
		parts = append(parts, p)
	}
	sep := []string{" ", " ", " ", "  ", "\t"}
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteString(sep[rng.IntN(len(sep))])
		}
		b.WriteString(p)
	}
	return b.String()
}

func TestSuggestions(t *testing.T) {
	for in, want := range map[string]string{
		"patient/Observation.sr":                           "patient/Observation.rs",
		"patient/Observation.dus":                          "patient/Observation.uds",
		"patient/Observation.RS":                           "patient/Observation.rs",
		"patient/Observations.rs":                          "patient/Observation.rs",
		"patient/observation.rs":                           "patient/Observation.rs",
		"patient/OBSERVATION.read":                         "patient/Observation.read",
		"patient/AllergyIntolerances.rs":                   "patient/AllergyIntolerance.rs",
		"patient/FamilyMemberHistories.rs":                 "patient/FamilyMemberHistory.rs",
		"patient/Obsevation.rs":                            "patient/Observation.rs",
		"Patient/Observation.rs":                           "patient/Observation.rs",
		"patients/Observation.rs":                          "patient/Observation.rs",
		"patient/Observation.read?category=x":              "patient/Observation.rs?category=x",
		"patient/Observation.write?category=x":             "patient/Observation.cud?category=x",
		"patient/Observation.rs?":                          "patient/Observation.rs",
		"patient/Observation.rs?a=1&&b=2&":                 "patient/Observation.rs?a=1&b=2",
		"patient/Observation.rs\tlaunch/patient":           "patient/Observation.rs launch/patient",
		"openid,fhirUser":                                  "openid fhirUser",
		"openid+fhirUser":                                  "openid fhirUser",
		`"openid"`:                                         "openid",
		"offline-access":                                   "offline_access",
		"FHIRUSER":                                         "fhirUser",
		"launch/Patient":                                   "launch/patient",
		"launch/patients":                                  "launch/patient",
		"http://smarthealthit.org/fhir/scopes/patient/*.r": "patient/*.r",
	} {
		r := Explain(in)
		if len(r.Scopes) != 1 {
			t.Fatalf("%q: %d scopes", in, len(r.Scopes))
		}
		if got := r.Scopes[0].Suggestions; !slices.Equal(got, []string{want}) {
			t.Errorf("%q: suggestions %q, want %q", in, got, want)
		}
	}
	// No suggestion where the fix is not obvious.
	for _, in := range []string{"patient/Observation.", "patient/Observation.rsx", "*/Observation.rs", "patient/Foo.rs", "patient/Observation", "a,b", "patient/Observation.rs?category", "__x", "openid"} {
		if got := Explain(in).Scopes[0].Suggestions; len(got) != 0 {
			t.Errorf("%q: unexpected suggestions %q", in, got)
		}
	}
}

func TestUnknownTypeIsInvalid(t *testing.T) {
	r := Explain("patient/Observations.rs")
	sr := r.Scopes[0]
	if r.Valid || sr.Valid || sr.Kind != "resource" || sr.Resource == nil || sr.Resource.KnownType {
		t.Fatalf("unknown type: %+v", sr)
	}
	if r.Canonical != "patient/Observations.rs" {
		t.Fatalf("scope.ParseSet keeps unknown types: canonical %q", r.Canonical)
	}
	if len(r.Effective) != 0 {
		t.Fatalf("unknown type grants %+v", r.Effective)
	}
}

func TestWarnings(t *testing.T) {
	has := func(s, frag string) bool {
		for _, w := range Explain(s).Warnings {
			if strings.Contains(w, frag) {
				return true
			}
		}
		return false
	}
	for _, c := range []struct {
		in, frag string
		want     bool
	}{
		{"patient/Observation.rs", "patient/ scopes need a patient", true},
		{"launch patient/Observation.rs", "has launch (EHR launch) but not launch/patient", true},
		{"launch/patient patient/Observation.rs", "patient/ scopes need a patient", false},
		{"launch/Patient patient/Observation.rs", "patient/ scopes need a patient", true},
		{"user/Observation.rs", "patient/ scopes need a patient", false},
		{"patient/Observation.sr", "patient/ scopes need a patient", false},
		{"fhirUser", "without openid", true},
		{"openid fhirUser", "without openid", false},
		{"openid", "no valid resource scope", true},
		{"", "empty", true},
		{"launch/patient patient/Observation.rs user/Condition.r", "mixed with user/ or system/", true},
		{"a\tb", "white space other than the ASCII space", true},
	} {
		if got := has(c.in, c.frag); got != c.want {
			t.Errorf("%q: warning %q present %v, want %v (warnings %q)", c.in, c.frag, got, c.want, Explain(c.in).Warnings)
		}
	}
}

func TestRedundant(t *testing.T) {
	r := Explain("patient/*.rs patient/Observation.rs patient/Observation.c patient/Condition.rs?category=x user/Observation.rs")
	got := map[string]bool{}
	for _, sr := range r.Scopes {
		got[sr.Raw] = sr.Redundant
	}
	want := map[string]bool{
		"patient/*.rs": false, "patient/Observation.rs": true, "patient/Observation.c": false,
		"patient/Condition.rs?category=x": true, "user/Observation.rs": false,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: redundant %v, want %v", k, got[k], v)
		}
	}
}

func TestExitCodes(t *testing.T) {
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"openid"}, 0},
		{[]string{""}, 0},
		{[]string{"patient/Observation.sr"}, 1},
		{[]string{"patient/Observations.rs"}, 1},
		{[]string{"--json", "patient/Observation.sr"}, 1},
		{nil, 2},
		{[]string{"--json"}, 2},
		{[]string{"-x", "openid"}, 2},
		{[]string{"-h"}, 0},
		{[]string{"--help"}, 0},
	} {
		var out, errOut bytes.Buffer
		if got := run(c.args, strings.NewReader(""), &out, &errOut); got != c.want {
			t.Errorf("%q: exit %d, want %d (stderr %q)", c.args, got, c.want, errOut.String())
		}
	}
}

func TestStdinLimit(t *testing.T) {
	var out, errOut bytes.Buffer
	big := strings.Repeat("openid ", maxStdin/7+1)
	if got := run([]string{"-"}, strings.NewReader(big), &out, &errOut); got != exitUsage {
		t.Fatalf("exit %d for %d bytes on stdin", got, len(big))
	}
}

func TestJSONFieldsAlwaysPresent(t *testing.T) {
	var out, errOut bytes.Buffer
	run([]string{"--json", "patient/Observation.rs launch openid patient/Observation.sr"}, nil, &out, &errOut)
	var top map[string]json.RawMessage
	if err := json.Unmarshal(out.Bytes(), &top); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"input", "valid", "canonical", "scopes", "effective", "warnings"} {
		if v, ok := top[k]; !ok || string(v) == "null" {
			t.Errorf("top-level %q missing or null", k)
		}
	}
	var scopes []map[string]json.RawMessage
	if err := json.Unmarshal(top["scopes"], &scopes); err != nil {
		t.Fatal(err)
	}
	for _, sc := range scopes {
		for _, k := range []string{"position", "raw", "valid", "kind", "canonical", "summary", "suggestions", "redundant", "notes"} {
			if v, ok := sc[k]; !ok || string(v) == "null" {
				t.Errorf("scope field %q missing or null in %v", k, sc)
			}
		}
	}
	if strings.Contains(out.String(), "null") {
		t.Errorf("JSON holds null:\n%s", out.String())
	}
}
