package celpolicy

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	"github.com/google/cel-go/common/overloads"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"

	"github.com/fhirguard/fhirguard/compartment"
	"github.com/fhirguard/fhirguard/fhir"
	"github.com/fhirguard/fhirguard/scope"
)

// Overload ids of the functions the package adds.
const (
	overloadHasScope    = "fhirguard_token_has_scope_string"
	overloadAllows      = "fhirguard_token_allows_string_string"
	overloadAllowsCtx   = "fhirguard_token_allows_string_string_string"
	overloadRefType     = "fhirguard_ref_type_string"
	overloadRefID       = "fhirguard_ref_id_string"
	functionHasScope    = "hasScope"
	functionAllows      = "allows"
	functionRefType     = "refType"
	functionRefID       = "refId"
	variableRequest     = "request"
	variableToken       = "token"
	variableNow         = "now"
	variableResource    = "resource"
	variablePhase       = "phase"
	defaultAssumedSize  = 1024
	zoneCacheMaxEntries = 256
)

// provider declares the policy object types to CEL and reads their fields
// without reflection. It wraps the environment's own provider and adapter.
type provider struct {
	types.Provider
	adapter types.Adapter
	objects map[string]*objectType
}

func typesOption() cel.EnvOption {
	return func(e *cel.Env) (*cel.Env, error) {
		p := &provider{
			Provider: e.CELTypeProvider(),
			adapter:  e.CELTypeAdapter(),
			objects: map[string]*objectType{
				requestTypeName:     requestFields,
				tokenTypeName:       tokenFields,
				contextItemTypeName: contextItemFields,
			},
		}
		e, err := cel.CustomTypeAdapter(p)(e)
		if err != nil {
			return nil, err
		}
		return cel.CustomTypeProvider(p)(e)
	}
}

// FindStructType implements types.Provider.
func (p *provider) FindStructType(name string) (*types.Type, bool) {
	if o, ok := p.objects[name]; ok {
		return types.NewTypeTypeWithParam(o.typ), true
	}
	return p.Provider.FindStructType(name)
}

// FindStructFieldNames implements types.Provider.
func (p *provider) FindStructFieldNames(name string) ([]string, bool) {
	if o, ok := p.objects[name]; ok {
		return append([]string(nil), o.names...), true
	}
	return p.Provider.FindStructFieldNames(name)
}

// FindStructFieldType implements types.Provider.
func (p *provider) FindStructFieldType(name, fieldName string) (*types.FieldType, bool) {
	if o, ok := p.objects[name]; ok {
		f, ok := o.fields[fieldName]
		return f, ok
	}
	return p.Provider.FindStructFieldType(name, fieldName)
}

// NewValue implements types.Provider: policy objects cannot be built in CEL.
func (p *provider) NewValue(name string, fields map[string]ref.Val) ref.Val {
	if _, ok := p.objects[name]; ok {
		return types.NewErr("celpolicy: %s values cannot be constructed", name)
	}
	return p.Provider.NewValue(name, fields)
}

// NativeToValue implements types.Adapter.
func (p *provider) NativeToValue(v any) ref.Val {
	if rv, ok := v.(ref.Val); ok {
		return rv
	}
	return p.adapter.NativeToValue(v)
}

// newEnvs builds the environment of request rules and, extending it, the
// environment of resource rules.
func newEnvs(extra []cel.EnvOption) (req, res *cel.Env, err error) {
	opts := []cel.EnvOption{
		cel.Variable(variableRequest, requestType),
		cel.Variable(variableToken, tokenType),
		cel.Variable(variableNow, cel.TimestampType),
		cel.DefaultUTCTimeZone(true),
		ext.Strings(),
		cel.OptionalTypes(),
		cel.Function(functionHasScope,
			cel.MemberOverload(overloadHasScope, []*cel.Type{tokenType, cel.StringType}, cel.BoolType,
				cel.BinaryBinding(hasScope))),
		cel.Function(functionAllows,
			cel.MemberOverload(overloadAllows, []*cel.Type{tokenType, cel.StringType, cel.StringType}, cel.BoolType,
				cel.FunctionBinding(allows)),
			cel.MemberOverload(overloadAllowsCtx, []*cel.Type{tokenType, cel.StringType, cel.StringType, cel.StringType}, cel.BoolType,
				cel.FunctionBinding(allows))),
		cel.Function(functionRefType,
			cel.Overload(overloadRefType, []*cel.Type{cel.StringType}, cel.StringType,
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					s, ok := v.(types.String)
					if !ok {
						return types.MaybeNoSuchOverloadErr(v)
					}
					t, _ := parseReference(string(s))
					return types.String(t)
				}))),
		cel.Function(functionRefID,
			cel.Overload(overloadRefID, []*cel.Type{cel.StringType}, cel.StringType,
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					s, ok := v.(types.String)
					if !ok {
						return types.MaybeNoSuchOverloadErr(v)
					}
					_, id := parseReference(string(s))
					return types.String(id)
				}))),
	}
	opts = append(opts, zoneOverloads()...)
	opts = append(opts, extra...)
	// The object types go last: options that register types (cel.Types,
	// the optional-types library) need the environment's own registry.
	opts = append(opts, typesOption())
	req, err = cel.NewEnv(opts...)
	if err != nil {
		return nil, nil, err
	}
	res, err = req.Extend(
		cel.Variable(variableResource, cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable(variablePhase, cel.StringType),
	)
	if err != nil {
		return nil, nil, err
	}
	return req, res, nil
}

// hasScope reports whether the token holds the scope, compared in canonical
// form.
func hasScope(lhs, rhs ref.Val) ref.Val {
	t, ok := lhs.(*tokenObj)
	if !ok {
		return types.MaybeNoSuchOverloadErr(lhs)
	}
	want, ok := rhs.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(rhs)
	}
	list := scopeStrings(t.t.Scopes)
	for _, s := range list {
		if s == string(want) {
			return types.True
		}
	}
	sc, err := scope.Parse(string(want))
	if err != nil {
		return types.False
	}
	canon := sc.String()
	if canon == string(want) {
		return types.False
	}
	for _, s := range list {
		if s == canon {
			return types.True
		}
	}
	return types.False
}

// allows reports whether the token's scopes grant the permission letters on
// the resource type: token.allows(type, letters) in any context, or
// token.allows(context, type, letters) in one.
func allows(args ...ref.Val) ref.Val {
	t, ok := args[0].(*tokenObj)
	if !ok {
		return types.MaybeNoSuchOverloadErr(args[0])
	}
	strs := [3]string{}
	for i, a := range args[1:] {
		s, ok := a.(types.String)
		if !ok {
			return types.MaybeNoSuchOverloadErr(a)
		}
		strs[i] = string(s)
	}
	var ctx scope.Context
	typ, letters := strs[0], strs[1]
	if len(args) == 4 {
		c, err := parseContext(strs[0])
		if err != nil {
			return types.WrapErr(err)
		}
		ctx, typ, letters = c, strs[1], strs[2]
	}
	perm, err := scope.ParsePermission(letters)
	if err != nil {
		return types.WrapErr(err)
	}
	m := t.t.Scopes
	if m == nil {
		return types.False
	}
	if ctx != 0 {
		return types.Bool(m.Allows(ctx, typ, perm))
	}
	return types.Bool(m.Allows(scope.Patient, typ, perm) || m.Allows(scope.User, typ, perm) || m.Allows(scope.System, typ, perm))
}

func parseContext(s string) (scope.Context, error) {
	switch s {
	case "patient":
		return scope.Patient, nil
	case "user":
		return scope.User, nil
	case "system":
		return scope.System, nil
	}
	return 0, fmt.Errorf("celpolicy: scope context must be patient, user or system, not %q", s)
}

// scopeCache holds the canonical scope strings of each Matcher seen, as a
// CEL list, until the Matcher is garbage collected. Tokens that carry the
// same scope string share one Matcher, so the list is built once per scope
// string, not per request.
var scopeCache sync.Map // weak.Pointer[scope.Matcher] → *scopeEntry

type scopeEntry struct {
	strs   []string
	maxLen int
	list   ref.Val
}

var emptyScopes = &scopeEntry{list: types.NewStringList(types.DefaultTypeAdapter, nil)}

// lastScopes remembers the most recent Matcher and its entry: most servers
// see few distinct scope strings, so this skips the weak-map look-up. It
// keeps that one Matcher alive; entries in scopeCache must not.
var lastScopes atomic.Pointer[lastScopeEntry]

type lastScopeEntry struct {
	m *scope.Matcher
	e *scopeEntry
}

func scopeEntryOf(m *scope.Matcher) *scopeEntry {
	if m == nil {
		return emptyScopes
	}
	if l := lastScopes.Load(); l != nil && l.m == m {
		return l.e
	}
	e := scopeEntryLookup(m)
	lastScopes.Store(&lastScopeEntry{m: m, e: e})
	return e
}

func scopeEntryLookup(m *scope.Matcher) *scopeEntry {
	key := weak.Make(m)
	if e, ok := scopeCache.Load(key); ok {
		return e.(*scopeEntry)
	}
	scs := m.Set().Scopes()
	strs := make([]string, len(scs))
	for i, sc := range scs {
		strs[i] = sc.String()
	}
	vals := make([]ref.Val, len(strs))
	maxLen := 0
	for i, s := range strs {
		vals[i] = types.String(s)
		maxLen = max(maxLen, len(s))
	}
	e := &scopeEntry{strs: strs, maxLen: maxLen, list: types.NewRefValList(types.DefaultTypeAdapter, vals)}
	if prev, loaded := scopeCache.LoadOrStore(key, e); loaded {
		return prev.(*scopeEntry)
	}
	runtime.AddCleanup(m, func(k weak.Pointer[scope.Matcher]) { scopeCache.Delete(k) }, key)
	return e
}

func scopeList(m *scope.Matcher) ref.Val     { return scopeEntryOf(m).list }
func scopeStrings(m *scope.Matcher) []string { return scopeEntryOf(m).strs }

// parseReference returns the resource type and id of a FHIR reference:
// relative ("Patient/123"), versioned ("Patient/123/_history/2") or absolute
// ("https://example.org/fhir/Patient/123"). Contained ("#x"), conditional
// ("Patient?identifier=x"), logical ("urn:uuid:...") and malformed references
// give two empty strings, as do unknown resource types and invalid ids. CEL
// rules reach it as refType(reference) and refId(reference).
func parseReference(ref string) (resourceType, id string) {
	// The kit's one reference normaliser, with no base of its own: an
	// absolute reference on any server is read for its type and id.
	r := refReader.ParseReference(ref)
	if (r.Kind == compartment.RefLocal || r.Kind == compartment.RefExternal) && r.ID != "" && fhir.IsResourceType(r.Type) {
		return r.Type, r.ID
	}
	return "", ""
}

// refReader parses references for parseReference.
var refReader = func() *compartment.Checker {
	c, err := compartment.New(compartment.Config{FHIRVersion: fhir.R4})
	if err != nil {
		panic(err)
	}
	return c
}()

// validID reports whether s is a FHIR id: 1 to 64 of [A-Za-z0-9-.].
func validID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// Time zones. CEL's timestamp accessors with a time-zone argument
// (now.getHours('Europe/Berlin')) load the zone from the system database on
// every call. The package replaces them with versions that cache loaded
// zones, so a rule pays the look-up once per process.

var zoneCache struct {
	sync.RWMutex
	m map[string]*time.Location
}

// loadZone returns the location named by an IANA name or a ±HH:MM offset.
func loadZone(name string) (*time.Location, error) {
	zoneCache.RLock()
	loc, ok := zoneCache.m[name]
	zoneCache.RUnlock()
	if ok {
		return loc, nil
	}
	loc, err := parseZone(name)
	if err != nil {
		return nil, err
	}
	zoneCache.Lock()
	if zoneCache.m == nil {
		zoneCache.m = map[string]*time.Location{}
	}
	if len(zoneCache.m) < zoneCacheMaxEntries {
		zoneCache.m[name] = loc
	}
	zoneCache.Unlock()
	return loc, nil
}

func parseZone(name string) (*time.Location, error) {
	i := strings.IndexByte(name, ':')
	if i < 0 {
		if name == "" || strings.EqualFold(name, "local") {
			// The server's local zone is not a stable policy input.
			return nil, fmt.Errorf("celpolicy: time zone %q: name an IANA zone or a ±HH:MM offset", name)
		}
		return time.LoadLocation(name)
	}
	// ±HH:MM
	if i != 3 || len(name) != 6 || (name[0] != '+' && name[0] != '-') {
		return nil, fmt.Errorf("celpolicy: time zone offset %q: want ±HH:MM", name)
	}
	digits := func(s string) bool { return len(s) == 2 && s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9' }
	hr, _ := strconv.Atoi(name[1:i])
	mn, _ := strconv.Atoi(name[i+1:])
	if !digits(name[1:i]) || !digits(name[i+1:]) || hr > 23 || mn > 59 {
		return nil, fmt.Errorf("celpolicy: time zone offset %q: want ±HH:MM", name)
	}
	off := hr*3600 + mn*60
	if name[0] == '-' {
		off = -off
	}
	return time.FixedZone(name, off), nil
}

func zoneOverloads() []cel.EnvOption {
	accessors := []struct {
		function, overload string
		get                func(time.Time) int
	}{
		{overloads.TimeGetFullYear, overloads.TimestampToYearWithTz, func(t time.Time) int { return t.Year() }},
		{overloads.TimeGetMonth, overloads.TimestampToMonthWithTz, func(t time.Time) int { return int(t.Month()) - 1 }},
		{overloads.TimeGetDayOfYear, overloads.TimestampToDayOfYearWithTz, func(t time.Time) int { return t.YearDay() - 1 }},
		{overloads.TimeGetDayOfMonth, overloads.TimestampToDayOfMonthZeroBasedWithTz, func(t time.Time) int { return t.Day() - 1 }},
		{overloads.TimeGetDate, overloads.TimestampToDayOfMonthOneBasedWithTz, func(t time.Time) int { return t.Day() }},
		{overloads.TimeGetDayOfWeek, overloads.TimestampToDayOfWeekWithTz, func(t time.Time) int { return int(t.Weekday()) }},
		{overloads.TimeGetHours, overloads.TimestampToHoursWithTz, func(t time.Time) int { return t.Hour() }},
		{overloads.TimeGetMinutes, overloads.TimestampToMinutesWithTz, func(t time.Time) int { return t.Minute() }},
		{overloads.TimeGetSeconds, overloads.TimestampToSecondsWithTz, func(t time.Time) int { return t.Second() }},
		{overloads.TimeGetMilliseconds, overloads.TimestampToMillisecondsWithTz, func(t time.Time) int { return t.Nanosecond() / 1e6 }},
	}
	opts := make([]cel.EnvOption, 0, len(accessors))
	for _, a := range accessors {
		get := a.get
		opts = append(opts, cel.Function(a.function,
			cel.MemberOverload(a.overload, []*cel.Type{cel.TimestampType, cel.StringType}, cel.IntType,
				cel.BinaryBinding(func(ts, tz ref.Val) ref.Val {
					t, ok := ts.(types.Timestamp)
					if !ok {
						return types.MaybeNoSuchOverloadErr(ts)
					}
					name, ok := tz.(types.String)
					if !ok {
						return types.MaybeNoSuchOverloadErr(tz)
					}
					loc, err := loadZone(string(name))
					if err != nil {
						return types.WrapErr(err)
					}
					return types.Int(get(t.Time.In(loc)))
				}))))
	}
	return opts
}

// estimator bounds the sizes CEL cannot know when it estimates the cost of
// a rule at compile time: request and token inputs are assumed within the
// input bounds (boundStrings, boundEntries), every other list, map and
// string is assumed to hold at most size elements (or characters).
type estimator struct{ size uint64 }

// EstimateSize implements checker.CostEstimator.
func (e estimator) EstimateSize(n checker.AstNode) *checker.SizeEstimate {
	if est := (&boundsEstimator{}).EstimateSize(n); est != nil {
		return est
	}
	return &checker.SizeEstimate{Min: 0, Max: e.size}
}

// EstimateCallCost implements checker.CostEstimator.
func (e estimator) EstimateCallCost(function, overloadID string, target *checker.AstNode, args []checker.AstNode) *checker.CallEstimate {
	return callCost(overloadID, e.size)
}

func callCost(overloadID string, size uint64) *checker.CallEstimate {
	switch overloadID {
	case overloadHasScope:
		// Compares with every scope of the token.
		return &checker.CallEstimate{CostEstimate: checker.CostEstimate{Min: 1, Max: 1 + size}}
	case overloadAllows, overloadAllowsCtx:
		return &checker.CallEstimate{CostEstimate: checker.CostEstimate{Min: 1, Max: 1}}
	case overloadRefType, overloadRefID:
		// A resource type name or a FHIR id: at most 64 characters.
		return &checker.CallEstimate{CostEstimate: checker.CostEstimate{Min: 1, Max: 1}, ResultSize: &checker.SizeEstimate{Min: 0, Max: 64}}
	}
	return nil
}

// Bounded inputs. A rule whose worst-case cost, computed with these bounds
// and with nothing assumed about other inputs, stays under the runtime cost
// limit cannot exceed the limit on a request whose inputs are within the
// bounds. Such a rule is evaluated without runtime cost tracking (which
// costs CEL an allocation per function call) whenever the request's inputs
// it reads are within the bounds, and with tracking otherwise.
const (
	boundStrings = 4096 // characters of any bounded string
	boundEntries = 256  // elements of a bounded list or map
)

// inputGroup is a set of request inputs checked together against the
// bounds.
type inputGroup uint8

const (
	groupRequestStrings inputGroup = 1 << iota
	groupTokenStrings
	groupScopes
	groupAudience
	groupQuery
	groupHeaders
)

// boundsEstimator is the estimator that proves a rule bounded: it gives
// sizes only for inputs whose size a request can be checked against, and
// records which input groups the estimate relied on.
type boundsEstimator struct{ groups inputGroup }

// EstimateSize implements checker.CostEstimator.
func (e *boundsEstimator) EstimateSize(n checker.AstNode) *checker.SizeEstimate {
	path := n.Path()
	if len(path) < 2 {
		if len(path) == 1 && path[0] == variablePhase {
			return &checker.SizeEstimate{Min: 0, Max: 5}
		}
		return nil
	}
	str := &checker.SizeEstimate{Min: 0, Max: boundStrings}
	ent := &checker.SizeEstimate{Min: 0, Max: boundEntries}
	rest := path[2:]
	switch path[0] {
	case variableRequest:
		switch path[1] {
		case "query":
			e.groups |= groupQuery
			switch {
			case len(rest) == 0, len(rest) == 1 && rest[0] == "@values":
				return ent
			case len(rest) == 1 && rest[0] == "@keys", len(rest) == 2 && rest[0] == "@values" && rest[1] == "@items":
				return str
			}
			return nil
		case "headers":
			e.groups |= groupHeaders
			switch {
			case len(rest) == 0:
				return ent
			case len(rest) == 1 && (rest[0] == "@keys" || rest[0] == "@values"):
				return str
			}
			return nil
		}
		if _, ok := requestFields.fields[path[1]]; ok && len(rest) == 0 {
			e.groups |= groupRequestStrings
			return str
		}
	case variableToken:
		switch path[1] {
		case "scopes", "audience":
			if path[1] == "scopes" {
				e.groups |= groupScopes
			} else {
				e.groups |= groupAudience
			}
			switch {
			case len(rest) == 0:
				return ent
			case len(rest) == 1 && rest[0] == "@items":
				return str
			}
			return nil
		case "claims", "fhirContext", "exp":
			return nil
		}
		if _, ok := tokenFields.fields[path[1]]; ok && len(rest) == 0 {
			e.groups |= groupTokenStrings
			return str
		}
	}
	return nil
}

// EstimateCallCost implements checker.CostEstimator.
func (e *boundsEstimator) EstimateCallCost(function, overloadID string, target *checker.AstNode, args []checker.AstNode) *checker.CallEstimate {
	if overloadID == overloadHasScope {
		e.groups |= groupScopes
	}
	return callCost(overloadID, boundEntries)
}
