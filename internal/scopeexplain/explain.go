package scopeexplain

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/fhirguard/fhirguard/fhir"
	"github.com/fhirguard/fhirguard/fhirrest"
	"github.com/fhirguard/fhirguard/scope"
	"github.com/fhirguard/fhirguard/searchparam"
)

// Report is the explanation of one scope string (see the package doc for
// its JSON form).
type Report struct {
	Input     string        `json:"input"`
	Valid     bool          `json:"valid"`
	Canonical string        `json:"canonical"`
	Scopes    []ScopeReport `json:"scopes"`
	Effective []Effective   `json:"effective"`
	Warnings  []string      `json:"warnings"`
}

// ScopeReport explains one scope of the string.
type ScopeReport struct {
	Position    int       `json:"position"`
	Raw         string    `json:"raw"`
	Valid       bool      `json:"valid"`
	Kind        string    `json:"kind"`
	Canonical   string    `json:"canonical"`
	Summary     string    `json:"summary"`
	Error       string    `json:"error,omitempty"`
	Suggestions []string  `json:"suggestions"`
	DuplicateOf int       `json:"duplicateOf,omitempty"`
	Redundant   bool      `json:"redundant"`
	Resource    *Resource `json:"resource,omitempty"`
	Launch      *Launch   `json:"launch,omitempty"`
	Notes       []string  `json:"notes"`
}

// Resource details a resource scope (patient/, user/, system/).
type Resource struct {
	Context        string       `json:"context"`
	ContextMeaning string       `json:"contextMeaning"`
	ResourceType   string       `json:"resourceType"`
	AllTypes       bool         `json:"allTypes"`
	KnownType      bool         `json:"knownType"`
	Releases       []string     `json:"releases"`
	Syntax         string       `json:"syntax"`
	Permissions    string       `json:"permissions"`
	Letters        []Letter     `json:"letters"`
	Constraints    []Constraint `json:"constraints"`
	V2             string       `json:"v2"`
	V1             string       `json:"v1"`
}

// Letter is one permission letter and the FHIR interactions it covers.
type Letter struct {
	Letter       string   `json:"letter"`
	Name         string   `json:"name"`
	Interactions []string `json:"interactions"`
}

// Constraint is one granular param=value constraint of a v2 scope.
type Constraint struct {
	Text        string   `json:"text"`
	Parameter   string   `json:"parameter"`
	Modifier    string   `json:"modifier"`
	Chained     bool     `json:"chained"`
	Value       string   `json:"value"`
	AnyOf       []string `json:"anyOf"`
	ParamType   string   `json:"paramType"`
	EvaluableIn []string `json:"evaluableIn"`
}

// Launch details a launch scope.
type Launch struct {
	Context      string `json:"context"`
	Role         string `json:"role"`
	ResourceType string `json:"resourceType"`
}

// Effective is what the whole string grants in one context on one type
// (resourceType "*": every type without an entry of its own).
type Effective struct {
	Context       string              `json:"context"`
	ResourceType  string              `json:"resourceType"`
	Permissions   string              `json:"permissions"`
	Unconstrained string              `json:"unconstrained"`
	Constrained   []ConstrainedLetter `json:"constrained"`
}

// ConstrainedLetter is a letter granted only under granular constraints: a
// resource must satisfy every constraint of one of the AnyOf sets.
type ConstrainedLetter struct {
	Letter string   `json:"letter"`
	AnyOf  []string `json:"anyOf"`
}

var contexts = []scope.Context{scope.Patient, scope.User, scope.System}

var letters = []scope.Permission{scope.Create, scope.Read, scope.Update, scope.Delete, scope.Search}

var letterNames = map[scope.Permission]string{
	scope.Create: "create", scope.Read: "read", scope.Update: "update", scope.Delete: "delete", scope.Search: "search",
}

// interactions lists, per permission letter, the FHIR interactions that
// need it, as package fhirrest maps them (Kind.Permission).
var interactions = func() map[scope.Permission][]string {
	m := map[scope.Permission][]string{}
	for k := fhirrest.Kind(1); k != 0 && k.String() != "unknown"; k++ {
		if p := k.Permission(); p != 0 {
			m[p] = append(m[p], k.String())
		}
	}
	// Searches before histories, otherwise in fhirrest's order.
	for _, list := range m {
		slices.SortStableFunc(list, func(a, b string) int {
			return cmp.Compare(historyRank(a), historyRank(b))
		})
	}
	return m
}()

func historyRank(interaction string) int {
	if strings.HasPrefix(interaction, "history") {
		return 1
	}
	return 0
}

// allTypes is every resource type of R4 or R5, sorted.
var allTypes = func() []string {
	t := append(fhir.ResourceTypes(fhir.R4), fhir.ResourceTypes(fhir.R5)...)
	slices.Sort(t)
	return slices.Compact(t)
}()

// allTypeIDs are the TypeIDs of allTypes.
var allTypeIDs = func() []scope.TypeID {
	ids := make([]scope.TypeID, 0, len(allTypes))
	for _, name := range allTypes {
		if t, ok := scope.LookupType(name); ok {
			ids = append(ids, t)
		}
	}
	return ids
}()

var contextMeaning = map[scope.Context]string{
	scope.Patient: "only the data of the patient in the launch context (the token's patient)",
	scope.User:    "what the signed-in user may see, still limited by the server's own permissions for that user (a user whose fhirUser is a Patient sees only that patient's data)",
	scope.System:  "what the backend client was authorised for (no user; the server's policy for that client)",
}

var contextShort = map[scope.Context]string{
	scope.Patient: "of the patient in context",
	scope.User:    "that the user may see",
	scope.System:  "that the client is authorised for",
}

// maxRedundancyScopes bounds the redundancy check, which compiles the string
// once per resource scope.
const maxRedundancyScopes = 32

// Explain explains a scope string. It never fails: invalid scopes are
// explained, and the Report's Valid says whether there were any.
func Explain(scopeString string) Report {
	r := Report{
		Input:     scopeString,
		Valid:     true,
		Scopes:    []ScopeReport{},
		Effective: []Effective{},
		Warnings:  []string{},
	}
	set := scope.ParseSet(scopeString)
	m := scope.Compile(set)
	r.Canonical = set.String()

	first := map[string]int{} // canonical form (or "\x00"+raw when invalid) -> position
	pos := 0
	for tok := range strings.SplitSeq(scopeString, " ") {
		if tok == "" {
			continue
		}
		pos++
		sr := explainScope(pos, tok)
		key := sr.Canonical
		if !sr.parsed() {
			key = "\x00" + tok
		}
		if p, ok := first[key]; ok {
			sr.DuplicateOf = p
			sr.Notes = append(sr.Notes, fmt.Sprintf("duplicate of scope #%d: it adds nothing", p))
		} else {
			first[key] = pos
		}
		if !sr.Valid {
			r.Valid = false
		}
		r.Scopes = append(r.Scopes, sr)
	}
	markEquivalents(r.Scopes)
	markRedundant(set, m, r.Scopes)
	r.Effective = effective(set, m)
	r.Warnings = warnings(set, m, r.Scopes, scopeString)
	return r
}

// parsed reports whether package scope accepted the scope (it is then in the
// Set, even when it names an unknown type).
func (sr *ScopeReport) parsed() bool { return sr.Kind != "invalid" }

func explainScope(pos int, tok string) ScopeReport {
	sr := ScopeReport{Position: pos, Raw: tok, Suggestions: []string{}, Notes: []string{}}
	sc, err := scope.Parse(tok)
	if err != nil {
		sr.Kind = "invalid"
		sr.Error = err.Error()
		sr.Summary = "invalid: grants nothing (the other scopes still apply)"
		sr.Suggestions = suggest(tok)
		sr.Notes = append(sr.Notes, invalidNotes(tok)...)
		return sr
	}
	sr.Valid = true
	sr.Kind = sc.Kind.String()
	sr.Canonical = sc.String()
	if sr.Canonical != tok {
		sr.Notes = append(sr.Notes, "canonical form: "+sr.Canonical)
	}
	switch sc.Kind {
	case scope.KindResource:
		explainResource(&sr, sc)
	case scope.KindLaunch:
		explainLaunch(&sr, sc)
	case scope.KindIdentity:
		explainIdentity(&sr, sc)
	case scope.KindRefresh:
		if sc.Name == "offline_access" {
			sr.Summary = "asks for a refresh token usable even after the user is no longer online; grants no data access"
		} else {
			sr.Summary = "asks for a refresh token usable while the user remains online; grants no data access"
		}
	default:
		explainExtension(&sr, tok)
	}
	return sr
}

func explainResource(sr *ScopeReport, sc scope.Scope) {
	res := &Resource{
		Context:        sc.Context.String(),
		ContextMeaning: contextMeaning[sc.Context],
		ResourceType:   sc.ResourceType,
		AllTypes:       sc.Wildcard(),
		KnownType:      sc.KnownType,
		Releases:       releasesOf(sc.ResourceType),
		Syntax:         "v2",
		Permissions:    sc.Permissions.String(),
		Letters:        []Letter{},
		Constraints:    []Constraint{},
	}
	if sc.V1 {
		res.Syntax = "v1"
	}
	for _, l := range letters {
		if sc.Permissions&l != 0 {
			res.Letters = append(res.Letters, Letter{Letter: l.String(), Name: letterNames[l], Interactions: slices.Clone(interactions[l])})
		}
	}
	v2 := sc
	v2.V1 = false
	res.V2 = v2.String()
	if len(sc.Constraints) == 0 {
		switch sc.Permissions {
		case scope.Read | scope.Search, scope.Create | scope.Update | scope.Delete, scope.All:
			v1 := sc
			v1.V1 = true
			res.V1 = v1.String()
		}
	}
	for _, c := range sc.Constraints {
		res.Constraints = append(res.Constraints, explainConstraint(sc.ResourceType, c))
	}
	sr.Resource = res

	what := "resources of every type"
	if !sc.Wildcard() {
		what = sc.ResourceType + " resources"
	}
	var names []string
	for _, l := range res.Letters {
		names = append(names, l.Name)
	}
	sr.Summary = fmt.Sprintf("%s %s %s", joinAnd(names), what, contextShort[sc.Context])
	if len(sc.Constraints) > 0 {
		sr.Summary += ", only those matching " + sc.Constraints.String()
	}

	if !sc.KnownType {
		sr.Valid = false
		sr.Error = fmt.Sprintf("unknown resource type %q: FHIR R4 and R5 define no such type (names are case-sensitive); the scope parses but matches nothing", sc.ResourceType)
		sr.Summary = "grants nothing: unknown resource type"
		sr.Suggestions = suggest(sr.Raw)
		return
	}
	if sc.Wildcard() {
		sr.Notes = append(sr.Notes, "wildcard type: every resource type, now and in future releases")
	}
	if len(res.Releases) == 1 {
		sr.Notes = append(sr.Notes, fmt.Sprintf("%s is a FHIR %s type only: a server on the other release has no such type", sc.ResourceType, res.Releases[0]))
	}
	if sc.Permissions&(scope.Create|scope.Update|scope.Delete) != 0 && sc.Permissions&scope.Read == 0 {
		sr.Notes = append(sr.Notes, "write access does not imply read access: this scope grants no read")
	}
	if len(sc.Constraints) > 1 {
		sr.Notes = append(sr.Notes, "granular: a resource must match every constraint (AND); comma-separated values of one constraint are alternatives (OR)")
	} else if len(sc.Constraints) == 1 {
		sr.Notes = append(sr.Notes, "granular: only resources matching the constraint; comma-separated values are alternatives (OR)")
	}
	for _, c := range res.Constraints {
		switch {
		case c.Modifier != "" || c.Chained:
			sr.Notes = append(sr.Notes, fmt.Sprintf("constraint %s uses a modifier or chain (experimental in SMART 2.2): the middleware cannot evaluate it, so this scope grants nothing", c.Text))
		case c.ParamType == "":
			sr.Notes = append(sr.Notes, fmt.Sprintf("constraint %s: %q is not a search parameter of %s in R4 or R5: this scope grants nothing", c.Text, c.Parameter, typeWord(sc.ResourceType)))
		case len(c.EvaluableIn) == 0:
			sr.Notes = append(sr.Notes, fmt.Sprintf("constraint %s: the middleware cannot evaluate a %s parameter here, so this scope grants nothing", c.Text, c.ParamType))
		case len(c.EvaluableIn) < len(res.Releases):
			sr.Notes = append(sr.Notes, fmt.Sprintf("constraint %s can be evaluated in FHIR %s only", c.Text, strings.Join(c.EvaluableIn, ", ")))
		}
	}
}

func typeWord(t string) string {
	if t == "*" {
		return "any type"
	}
	return t
}

// explainConstraint describes a constraint and whether the middleware can
// evaluate it: a token, reference or string parameter the kit resolves,
// without modifier or chain (the middleware's constraintParam rule). For a
// wildcard type the parameter must hold for every type of the release.
func explainConstraint(rt string, c scope.Constraint) Constraint {
	out := Constraint{
		Text:        c.String(),
		Parameter:   c.Name,
		Modifier:    c.Modifier,
		Chained:     c.Chained(),
		Value:       c.Value,
		AnyOf:       slices.Clone(c.Values),
		EvaluableIn: []string{},
	}
	if out.AnyOf == nil {
		out.AnyOf = []string{}
	}
	for _, rel := range []fhir.Release{fhir.R4, fhir.R5} {
		types := []string{rt}
		if rt == "*" {
			types = fhir.ResourceTypes(rel)
		} else if !fhir.IsResourceType(rt, rel) {
			continue
		}
		evaluable, known := true, true
		for _, t := range types {
			p, ok := searchparam.Lookup(rel, t, c.Name)
			if !ok {
				known, evaluable = false, false
				break
			}
			if out.ParamType == "" {
				out.ParamType = p.Type.String()
			}
			if p.Unresolved || c.Modifier != "" || c.Chained() {
				evaluable = false
				continue
			}
			switch p.Type {
			case searchparam.Token, searchparam.Reference, searchparam.String:
			default:
				evaluable = false
			}
		}
		if known && evaluable {
			out.EvaluableIn = append(out.EvaluableIn, rel.String())
		}
	}
	return out
}

func releasesOf(t string) []string {
	out := []string{}
	for _, rel := range []fhir.Release{fhir.R4, fhir.R5} {
		if t == "*" || fhir.IsResourceType(t, rel) {
			out = append(out, rel.String())
		}
	}
	return out
}

func explainLaunch(sr *ScopeReport, sc scope.Scope) {
	l := &Launch{Context: sc.LaunchContext, Role: sc.LaunchRole}
	sr.Launch = l
	switch sc.LaunchContext {
	case "":
		sr.Summary = "EHR launch: the app was started from the EHR and asks for the EHR's current context (patient, encounter, ...); grants no data access"
		return
	case "patient":
		l.ResourceType = "Patient"
		sr.Summary = "asks for a patient in context at launch (outside the EHR: a patient picker); the token then carries \"patient\"; grants no data access"
	case "encounter":
		l.ResourceType = "Encounter"
		sr.Summary = "asks for an encounter in context at launch; the token then carries \"encounter\"; grants no data access"
		sr.Notes = append(sr.Notes, "encounter context does not restrict access in SMART (only a server policy can)")
	default:
		for _, t := range allTypes {
			if strings.EqualFold(t, sc.LaunchContext) {
				l.ResourceType = t
				break
			}
		}
		if l.ResourceType == "" {
			if t, ok := typeFix(sc.LaunchContext); ok {
				ls := sc
				ls.LaunchContext = strings.ToLower(t)
				sr.Suggestions = append(sr.Suggestions, ls.String())
			}
			sr.Summary = fmt.Sprintf("asks for launch context %q, which names no FHIR resource type (a server-specific context); grants no data access", sc.LaunchContext)
			break
		}
		sr.Summary = fmt.Sprintf("asks for a launch context of type %s (in fhirContext); grants no data access", l.ResourceType)
		if low := strings.ToLower(l.ResourceType); low != sc.LaunchContext {
			ls := sc
			ls.LaunchContext = low
			sr.Suggestions = append(sr.Suggestions, ls.String())
			sr.Notes = append(sr.Notes, "launch context names are resource types in lowercase: a server may not recognise "+sc.String())
		}
	}
	if sc.LaunchRole != "" {
		sr.Summary += fmt.Sprintf("; role %s: a context of that role (SMART 2.2)", sc.LaunchRole)
	}
}

func explainIdentity(sr *ScopeReport, sc scope.Scope) {
	switch sc.Name {
	case "openid":
		sr.Summary = "OpenID Connect sign-in: the app receives an id_token identifying the user; grants no data access"
	case "fhirUser":
		sr.Summary = "asks for the fhirUser claim in the id_token: the FHIR resource of the user (Practitioner, Patient, RelatedPerson or Person); grants no data access"
	case "profile":
		sr.Summary = "OpenID Connect profile claims; SMART v1's deprecated alias of fhirUser; grants no data access"
		sr.Notes = append(sr.Notes, "deprecated in SMART v2: ask for fhirUser")
	}
}

var knownNames = []string{"openid", "fhirUser", "profile", "offline_access", "online_access", "launch"}

func explainExtension(sr *ScopeReport, tok string) {
	switch {
	case strings.HasPrefix(tok, "http://smarthealthit.org/fhir/scopes/"):
		inner := strings.TrimPrefix(tok, "http://smarthealthit.org/fhir/scopes/")
		sr.Summary = "URI form of the SMART scope " + inner + ", for exchanging scope lists; fhirguard reads it as an extension scope and grants nothing through it"
		if sc, err := scope.Parse(inner); err == nil && (sc.Kind != scope.KindResource || sc.KnownType) {
			sr.Suggestions = append(sr.Suggestions, sc.String())
		}
		return
	case strings.HasPrefix(tok, "http://openid.net/specs/openid-connect-core-1_0#"):
		sr.Summary = "URI form of an OpenID scope; fhirguard reads it as an extension scope and grants nothing through it"
		return
	case strings.HasPrefix(tok, "__") || strings.Contains(tok, "://") || strings.HasPrefix(tok, "urn:"):
		sr.Summary = "extension scope (a URI or a __ name, as SMART allows): its meaning is the server's; fhirguard grants nothing through it"
		return
	}
	sr.Summary = "not a SMART scope: kept as an extension scope, whose meaning is the server's; fhirguard grants nothing through it"
	if !strings.Contains(tok, "/") && works("patient/"+tok) {
		sr.Notes = append(sr.Notes, "looks like a resource scope without its context: write patient/"+tok+", user/"+tok+" or system/"+tok)
	}
	if strings.HasPrefix(tok, "launch/") {
		sr.Notes = append(sr.Notes, "looks like a launch scope but is not one: launch/<context> is letters and digits, with at most ?role=<value>")
	}
	sr.Suggestions = suggest(tok)
}

// invalidNotes adds hints for invalid scopes that have no obvious fix.
func invalidNotes(tok string) []string {
	var notes []string
	if prefix, _, ok := strings.Cut(tok, "/"); ok && prefix == "*" {
		notes = append(notes, "SMART has no */ context: write patient/, user/ or system/")
	}
	if prefix, rest, ok := strings.Cut(tok, "/"); ok && (prefix == "patient" || prefix == "user" || prefix == "system") {
		head, _, _ := strings.Cut(rest, "?")
		if _, perms, _ := strings.Cut(head, "."); perms == "" {
			notes = append(notes, "no permission letters: end the scope with a subset of cruds in this order (.rs for read and search), or a v1 .read, .write or .*")
		}
	}
	return notes
}

// markEquivalents notes scopes that differ in text but not in meaning from
// an earlier one (patient/Observation.read and patient/Observation.rs).
func markEquivalents(srs []ScopeReport) {
	seen := map[string]int{}
	for i := range srs {
		sr := &srs[i]
		if sr.Resource == nil || !sr.Valid || sr.DuplicateOf != 0 {
			continue
		}
		if p, ok := seen[sr.Resource.V2]; ok {
			sr.Notes = append(sr.Notes, fmt.Sprintf("same as scope #%d (%s): it adds nothing", p, sr.Resource.V2))
			sr.Redundant = true
			continue
		}
		seen[sr.Resource.V2] = sr.Position
	}
}

// markRedundant marks the resource scopes whose removal leaves the compiled
// permissions unchanged.
func markRedundant(set scope.Set, m *scope.Matcher, srs []ScopeReport) {
	var res []scope.Scope
	var others []string
	for _, sc := range set.Scopes() {
		if sc.Kind == scope.KindResource && sc.KnownType {
			res = append(res, sc)
		} else {
			others = append(others, sc.String())
		}
	}
	if len(res) < 2 || len(res) > maxRedundancyScopes {
		return
	}
	// Scopes of the same v2 form (.read and .rs) are removed together.
	v2 := func(sc scope.Scope) string {
		sc.V1 = false
		return sc.String()
	}
	redundant := map[string]bool{}
	for _, sc := range res {
		var parts []string
		for _, o := range res {
			if v2(o) != v2(sc) {
				parts = append(parts, o.String())
			}
		}
		without := scope.Compile(scope.ParseSet(strings.Join(append(parts, others...), " ")))
		if sameGrants(m, without) {
			redundant[sc.String()] = true
		}
	}
	for i := range srs {
		sr := &srs[i]
		if sr.Resource == nil || !sr.Valid || sr.DuplicateOf != 0 || sr.Redundant || !redundant[sr.Canonical] {
			continue
		}
		sr.Redundant = true
		sr.Notes = append(sr.Notes, "redundant: the other scopes already grant everything it grants")
	}
}

func sameGrants(a, b *scope.Matcher) bool {
	for _, ctx := range contexts {
		for _, t := range allTypeIDs {
			for _, l := range letters {
				ga, gb := a.Lookup(ctx, t, l), b.Lookup(ctx, t, l)
				if ga.Allowed != gb.Allowed || ga.Unconstrained != gb.Unconstrained || !slices.Equal(setStrings(ga.Constraints), setStrings(gb.Constraints)) {
					return false
				}
			}
		}
	}
	return true
}

func setStrings(sets []scope.ConstraintSet) []string {
	out := make([]string, 0, len(sets))
	for _, cs := range sets {
		out = append(out, cs.String())
	}
	return out
}

// effective lists what the compiled matcher grants: per context, a row for
// every type a scope names, and a "*" row for the other types when a
// wildcard scope applies (read from a type no scope names).
func effective(set scope.Set, m *scope.Matcher) []Effective {
	out := []Effective{}
	for _, ctx := range contexts {
		if !m.HasContext(ctx) {
			continue
		}
		var named []string
		wildcard := false
		for _, sc := range set.Scopes() {
			if sc.Kind != scope.KindResource || sc.Context != ctx || !sc.KnownType {
				continue
			}
			if sc.Wildcard() {
				wildcard = true
			} else if !slices.Contains(named, sc.ResourceType) {
				named = append(named, sc.ResourceType)
			}
		}
		slices.Sort(named)
		for _, name := range named {
			t, _ := scope.LookupType(name)
			out = append(out, row(m, ctx, name, t))
		}
		if wildcard {
			if t, ok := unnamedType(named); ok {
				out = append(out, row(m, ctx, "*", t))
			}
		}
	}
	return out
}

// unnamedType returns a type that is not in named (sorted): every such type
// is granted only by wildcard scopes, all alike.
func unnamedType(named []string) (scope.TypeID, bool) {
	for _, name := range allTypes {
		if _, found := slices.BinarySearch(named, name); !found {
			return scope.LookupType(name)
		}
	}
	return 0, false
}

func row(m *scope.Matcher, ctx scope.Context, name string, t scope.TypeID) Effective {
	e := Effective{Context: ctx.String(), ResourceType: name, Constrained: []ConstrainedLetter{}}
	var any, open scope.Permission
	for _, l := range letters {
		g := m.Lookup(ctx, t, l)
		if !g.Allowed {
			continue
		}
		any |= l
		if g.Unconstrained {
			open |= l
			continue
		}
		e.Constrained = append(e.Constrained, ConstrainedLetter{Letter: l.String(), AnyOf: setStrings(g.Constraints)})
	}
	e.Permissions, e.Unconstrained = any.String(), open.String()
	return e
}

func warnings(set scope.Set, m *scope.Matcher, srs []ScopeReport, input string) []string {
	w := []string{}
	if len(srs) == 0 {
		return append(w, "the scope string is empty: no scopes, no access")
	}
	invalid := 0
	for _, sr := range srs {
		if !sr.Valid {
			invalid++
		}
	}
	switch invalid {
	case 0:
	case 1:
		w = append(w, "1 scope is invalid and grants nothing; the other scopes still apply")
	default:
		w = append(w, fmt.Sprintf("%d scopes are invalid and grant nothing; the other scopes still apply", invalid))
	}
	if strings.ContainsAny(input, "\t\n\r\v\f") || strings.Contains(input, "\u00a0") {
		w = append(w, "the string holds white space other than the ASCII space: only the space separates scopes, so a scope holding a tab or a new line is invalid")
	}
	if m.HasContext(scope.Patient) && !set.LaunchContext("patient") {
		if set.LaunchContext("") {
			w = append(w, "patient/ scopes need a patient in the token: this string has launch (EHR launch) but not launch/patient, so the EHR must supply the patient; without one the middleware refuses every patient/ request")
		} else {
			w = append(w, "patient/ scopes need a patient in the token (launch/patient, or a launch with a patient in context); without one the middleware refuses every patient/ request")
		}
	}
	if set.FHIRUser() && !set.OpenID() {
		w = append(w, "fhirUser (or profile) without openid: no id_token is issued, so the app learns no user")
	}
	if set.OfflineAccess() && set.OnlineAccess() {
		w = append(w, "both offline_access and online_access: a server grants one of them")
	}
	if m.Empty() && invalid < len(srs) {
		w = append(w, "no valid resource scope: this string grants no access to FHIR data (launch, identity, refresh and extension scopes grant none)")
	}
	if m.HasContext(scope.Patient) && (m.HasContext(scope.User) || m.HasContext(scope.System)) {
		w = append(w, "patient/ scopes mixed with user/ or system/ scopes: a request is allowed when any context allows it, and user/ and system/ grants are not held to the patient in context")
	}
	return w
}

func joinAnd(words []string) string {
	switch len(words) {
	case 0:
		return ""
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}
