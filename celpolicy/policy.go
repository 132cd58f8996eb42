package celpolicy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"

	"github.com/fhirguard/fhirguard/fhir"
	"github.com/fhirguard/fhirguard/middleware"
	"github.com/fhirguard/fhirguard/scope"
)

// Effect is what a rule does with its when expression.
type Effect string

// Effects.
const (
	// Deny denies the request when the rule's when expression is true.
	Deny Effect = "deny"
	// Require denies the request when the rule's when expression is false.
	Require Effect = "require"
)

// Target says what a rule judges.
type Target string

// Targets.
const (
	// OnRequest rules (the default, also the zero Target) run once per
	// request, in AuthorizeRequest.
	OnRequest Target = "request"
	// OnResource rules run on every resource read (after the handler) or
	// written (before it), in AuthorizeResource, and see the resource.
	OnResource Target = "resource"
)

// Rule is one policy rule. Rules come from a policy file (ParseFile) or are
// built in Go.
type Rule struct {
	// Name identifies the rule in errors, logs and denials; unique.
	Name string
	// Description is for people; it is not used.
	Description string
	// Effect is Deny or Require.
	Effect Effect
	// On is OnRequest (or empty) or OnResource.
	On Target
	// Match is an optional CEL bool expression: the rule applies only to
	// requests (or resources) for which it is true.
	Match string
	// When is the rule's CEL bool expression.
	When string
	// Message is the reason shown to the client when the rule denies. Keep
	// it free of request data.
	Message string

	src *source // set by ParseFile
}

// Defaults of Config.
const (
	defaultCostLimit        = 1_000_000
	defaultMaxEstimatedCost = 1_000_000
)

// Config configures a Policy.
type Config struct {
	// File is the path of a YAML policy file (see ParseFile for the
	// schema). Its rules come first; Reload reads it again, and Watch can
	// make the Policy reload it by itself. Optional when Rules is set; to
	// use policy bytes from elsewhere (go:embed, a database), give
	// ParseFile's rules as Rules.
	File string
	// Rules are rules built in Go, evaluated after the file's.
	Rules []Rule
	// EnvOptions extend the CEL environment, typically with the server's
	// own functions (cel.Function with typed overloads) or constants. They
	// are applied after the package's declarations.
	EnvOptions []cel.EnvOption
	// CostLimit is the runtime cost limit of one expression evaluation, in
	// CEL cost units; an evaluation over it fails and denies. 0 means
	// 1,000,000 (roughly 0.1 s of work).
	CostLimit uint64
	// InsecureNoCostLimit evaluates without a runtime cost limit: faster
	// for rules that cannot be proven bounded, but a costly rule can hold a
	// request. The estimated-cost check at compile time still applies.
	InsecureNoCostLimit bool
	// MaxEstimatedCost is the highest estimated worst-case cost a rule
	// expression may have; a rule over it is a compile error. 0 means
	// 1,000,000.
	MaxEstimatedCost uint64
	// AssumedMaxSize is the number of elements (or characters) assumed for
	// lists, maps and strings of unknown size (claims, the resource, results
	// of server functions) when estimating the cost; request and token
	// fields are assumed to hold at most 256 entries of 4096 characters.
	// 0 means 1024.
	AssumedMaxSize uint64
	// Logger receives evaluation failures (error level), denials (debug)
	// and reloads (info). nil means slog.Default().
	Logger *slog.Logger
	// Now returns the time given to rules as `now`. nil means time.Now.
	Now func() time.Time
	// Watch makes the Policy reload File by itself, on signals and when the
	// file changes, until Close. The zero value watches nothing.
	Watch WatchConfig
}

// Policy is a compiled set of CEL rules. It implements
// middleware.ResourcePolicy. It is safe for concurrent use; Reload swaps the
// rule set atomically. A Policy that watches its file (Config.Watch) runs a
// goroutine until Close.
type Policy struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	reqEnv *cel.Env
	resEnv *cel.Env
	cur    atomic.Pointer[ruleSet]
	mu     sync.Mutex // serialises Reload

	watch     *watcher // nil when not watching
	closeOnce sync.Once
}

var _ middleware.ResourcePolicy = (*Policy)(nil)

type ruleSet struct {
	rules    []Rule
	request  []*compiled
	resource []*compiled
	loaded   time.Time
}

type compiled struct {
	name    string
	file    string
	effect  Effect
	message string
	match   *program // nil when the rule has no match
	when    *program
}

// program is one compiled expression. prg runs under the runtime cost limit
// (unless InsecureNoCostLimit). fast, when set, is the same expression
// without cost tracking, for requests whose inputs in groups are within the
// bounds under which the expression's worst-case cost is below the limit.
type program struct {
	prg    cel.Program
	fast   cel.Program
	groups inputGroup
}

// New reads and compiles the policies. Every rule is parsed and type-checked
// once, here; a rule that does not compile, or whose estimated cost is over
// the limit, makes New fail with *CompileError values (joined) naming the
// rule, the file and the position. With Config.Watch set, New starts
// watching the file; call Close to stop.
func New(cfg Config) (*Policy, error) {
	if cfg.File == "" && cfg.Rules == nil {
		return nil, fmt.Errorf("%w: Config needs a File or Rules", errInvalidPolicy)
	}
	if cfg.Watch.enabled() && cfg.File == "" {
		return nil, fmt.Errorf("%w: Config.Watch needs a File", errInvalidPolicy)
	}
	if cfg.Watch.Interval < 0 {
		return nil, fmt.Errorf("%w: Config.Watch.Interval is negative", errInvalidPolicy)
	}
	cfg.Rules = append([]Rule(nil), cfg.Rules...) // the caller keeps its slice
	cfg.Watch.Signals = append([]os.Signal(nil), cfg.Watch.Signals...)
	if cfg.CostLimit == 0 {
		cfg.CostLimit = defaultCostLimit
	}
	if cfg.MaxEstimatedCost == 0 {
		cfg.MaxEstimatedCost = defaultMaxEstimatedCost
	}
	if cfg.AssumedMaxSize == 0 {
		cfg.AssumedMaxSize = defaultAssumedSize
	}
	p := &Policy{cfg: cfg, log: cfg.Logger, now: cfg.Now}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.now == nil {
		p.now = time.Now
	}
	var err error
	p.reqEnv, p.resEnv, err = newEnvs(cfg.EnvOptions)
	if err != nil {
		return nil, fmt.Errorf("celpolicy: building the CEL environment: %w", err)
	}
	rs, err := p.load()
	if err != nil {
		return nil, err
	}
	p.cur.Store(rs)
	if cfg.Watch.enabled() {
		p.startWatch(cfg.Watch)
	}
	return p, nil
}

// Rules returns the rules in force, in evaluation order.
func (p *Policy) Rules() []Rule {
	rs := p.cur.Load()
	return append([]Rule(nil), rs.rules...)
}

// Reload reads the policy file again and, when every rule compiles, swaps
// the new rule set in atomically. On any error the rules in force stay and
// the error says why. Requests being evaluated finish with the set they
// started with.
func (p *Policy) Reload() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	rs, err := p.load()
	if err != nil {
		p.log.Error("celpolicy: reload failed; keeping the policies in force", slog.String("file", p.cfg.File), slog.Any("error", err))
		return err
	}
	p.cur.Store(rs)
	p.log.Info("celpolicy: policies reloaded", slog.String("file", p.cfg.File), slog.Int("rules", len(rs.rules)))
	return nil
}

func (p *Policy) load() (*ruleSet, error) {
	var rules []Rule
	if p.cfg.File != "" {
		data, err := os.ReadFile(p.cfg.File)
		if err != nil {
			return nil, fmt.Errorf("celpolicy: %w", err)
		}
		rules, err = ParseFile(data, p.cfg.File)
		if err != nil {
			return nil, err
		}
	}
	rules = append(rules, p.cfg.Rules...)
	return p.compile(rules)
}

func (p *Policy) compile(rules []Rule) (*ruleSet, error) {
	rs := &ruleSet{rules: rules, loaded: time.Now()}
	var errs []error
	seen := map[string]bool{}
	for i := range rules {
		r := &rules[i]
		c, err := p.compileRule(r, seen)
		if err != nil {
			errs = append(errs, err...)
			continue
		}
		if r.On == OnResource {
			rs.resource = append(rs.resource, c)
		} else {
			rs.request = append(rs.request, c)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return rs, nil
}

func (p *Policy) compileRule(r *Rule, seen map[string]bool) (*compiled, []error) {
	src := r.src
	if src == nil {
		src = &source{}
	}
	fail := func(field, msg string, sentinel error) error {
		e := &CompileError{File: src.file, Rule: r.Name, Field: field, Message: msg, kind: sentinel}
		if pos, ok := src.fields[field]; ok {
			e.Line, e.Column = pos[0], pos[1]
		} else if src.line > 0 {
			e.Line, e.Column = src.line, src.col
		}
		return e
	}
	var errs []error
	switch {
	case r.Name == "":
		errs = append(errs, fail("name", "missing", errInvalidPolicy))
	case !validName(r.Name):
		errs = append(errs, fail("name", "use letters, digits and . _ : - (at most 128)", errInvalidPolicy))
	case seen[r.Name]:
		errs = append(errs, fail("name", "duplicate rule name", errInvalidPolicy))
	}
	seen[r.Name] = true
	if r.Effect != Deny && r.Effect != Require {
		errs = append(errs, fail("effect", fmt.Sprintf("must be deny or require, not %q", r.Effect), errInvalidPolicy))
	}
	env := p.reqEnv
	switch r.On {
	case "", OnRequest:
	case OnResource:
		env = p.resEnv
	default:
		errs = append(errs, fail("on", fmt.Sprintf("must be request or resource, not %q", r.On), errInvalidPolicy))
	}
	if r.When == "" {
		errs = append(errs, fail("when", "missing", errInvalidPolicy))
	}
	if r.Message == "" {
		errs = append(errs, fail("message", "missing", errInvalidPolicy))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	c := &compiled{name: r.Name, file: src.file, effect: r.Effect, message: r.Message}
	if r.Match != "" {
		prg, err := p.compileExpr(env, r, "match", r.Match, src.match)
		errs = append(errs, err...)
		c.match = prg
	}
	prg, err := p.compileExpr(env, r, "when", r.When, src.when)
	errs = append(errs, err...)
	c.when = prg
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

func (p *Policy) compileExpr(env *cel.Env, r *Rule, field, expr string, pos exprPos) (*program, []error) {
	file := ""
	if r.src != nil {
		file = r.src.file
	}
	at := func(line, col0 int, msg string, sentinel error) error {
		l, c := pos.filePos(line, col0)
		return &CompileError{File: file, Rule: r.Name, Field: field, Line: l, Column: c, Message: msg, kind: sentinel}
	}
	checked, iss := env.Compile(expr)
	if iss.Err() != nil {
		var errs []error
		for _, e := range iss.Errors() {
			errs = append(errs, at(e.Location.Line(), e.Location.Column(), e.Message, errCompile))
		}
		return nil, errs
	}
	if !checked.OutputType().IsExactType(types.BoolType) {
		return nil, []error{at(1, 0, fmt.Sprintf("must be of type bool, not %s (compare dynamic values explicitly, e.g. `== true`)", checked.OutputType()), errCompile)}
	}
	if errs := checkConstants(checked, func(id int64, msg string) error {
		loc := checked.NativeRep().SourceInfo().GetStartLocation(id)
		return at(loc.Line(), loc.Column(), msg, errCompile)
	}); len(errs) > 0 {
		return nil, errs
	}
	est, err := env.EstimateCost(checked, estimator{size: p.cfg.AssumedMaxSize})
	if err != nil {
		return nil, []error{at(1, 0, "cost estimate: "+err.Error(), errCostTooHigh)}
	}
	if est.Max > p.cfg.MaxEstimatedCost {
		return nil, []error{at(1, 0, fmt.Sprintf("estimated worst-case cost %d is over the limit %d (lists, maps and strings of unknown size are assumed to hold %d elements; see Config.AssumedMaxSize)", est.Max, p.cfg.MaxEstimatedCost, p.cfg.AssumedMaxSize), errCostTooHigh)}
	}
	out := &program{}
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	if !p.cfg.InsecureNoCostLimit {
		// Try to prove the expression bounded.
		be := &boundsEstimator{}
		if est, err := env.EstimateCost(checked, be); err == nil && est.Max <= p.cfg.CostLimit {
			fast, err := env.Program(checked, opts...)
			if err != nil {
				return nil, []error{at(1, 0, err.Error(), errCompile)}
			}
			out.fast, out.groups = fast, be.groups
		}
		opts = append(opts, cel.CostLimit(p.cfg.CostLimit))
	}
	prg, err := env.Program(checked, opts...)
	if err != nil {
		return nil, []error{at(1, 0, err.Error(), errCompile)}
	}
	out.prg = prg
	return out, nil
}

// checkConstants validates constant arguments at compile time: scopes
// given to hasScope (the SMART scope grammar, known resource types),
// contexts, types and letters given to allows, time zones given to
// timestamp accessors, and resource type names compared with a value that
// holds a resource type (request.resourceType, request.compartmentType,
// resource.resourceType, refType(...), a fhirContext item's type), and
// interaction codes and methods compared with request.interaction and
// request.method, by ==, != or in. A misspelt value in such a comparison
// would otherwise make a rule silently never match.
func checkConstants(a *cel.Ast, fail func(id int64, msg string) error) []error {
	native := a.NativeRep()
	var errs []error
	constArg := func(e ast.Expr) (string, bool) {
		if e.Kind() != ast.LiteralKind {
			return "", false
		}
		s, ok := e.AsLiteral().(types.String)
		return string(s), ok
	}
	// checkValue checks a constant compared with a value of a closed set.
	checkValue := func(e ast.Expr, k closedSet) {
		if s, ok := constArg(e); ok && s != "" && !k.valid(s) {
			errs = append(errs, fail(e.ID(), fmt.Sprintf("%s: unknown %s %q", k.what, k.noun, s)))
		}
	}
	ast.PreOrderVisit(native.Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if e.Kind() != ast.CallKind {
			return
		}
		call := e.AsCall()
		args := call.Args()
		switch fn := call.FunctionName(); {
		case fn == functionHasScope && call.IsMemberFunction() && len(args) == 1:
			if s, ok := constArg(args[0]); ok {
				if sc, err := scope.Parse(s); err != nil {
					errs = append(errs, fail(args[0].ID(), fmt.Sprintf("hasScope: %v", err)))
				} else if sc.Kind == scope.KindResource && !sc.KnownType {
					errs = append(errs, fail(args[0].ID(), fmt.Sprintf("hasScope: scope: unknown resource type: %q", sc.ResourceType)))
				}
			}
		case fn == functionAllows && call.IsMemberFunction() && (len(args) == 2 || len(args) == 3):
			if len(args) == 3 {
				if s, ok := constArg(args[0]); ok {
					if _, err := parseContext(s); err != nil {
						errs = append(errs, fail(args[0].ID(), fmt.Sprintf("allows: %v", err)))
					}
				}
				args = args[1:]
			}
			if s, ok := constArg(args[0]); ok && !fhir.IsResourceType(s) {
				errs = append(errs, fail(args[0].ID(), fmt.Sprintf("allows: unknown resource type %q", s)))
			}
			if s, ok := constArg(args[1]); ok {
				if _, err := scope.ParsePermission(s); err != nil {
					errs = append(errs, fail(args[1].ID(), fmt.Sprintf("allows: %v", err)))
				}
			}
		case call.IsMemberFunction() && len(args) == 1 && isZoneAccessor(fn):
			if s, ok := constArg(args[0]); ok {
				if _, err := loadZone(s); err != nil {
					errs = append(errs, fail(args[0].ID(), fmt.Sprintf("%s: %v", fn, err)))
				}
			}
		case (fn == operators.Equals || fn == operators.NotEquals) && len(args) == 2:
			for i, arg := range args {
				if k, ok := closedValued(native, arg); ok {
					checkValue(args[1-i], k)
				}
			}
		case fn == operators.In && len(args) == 2 && args[1].Kind() == ast.ListKind:
			if k, ok := closedValued(native, args[0]); ok {
				for _, el := range args[1].AsList().Elements() {
					checkValue(el, k)
				}
			}
		}
	}))
	return errs
}

// closedSet is what a value of a closed set of strings may be: what names
// the expression that holds it, noun the kind of value.
type closedSet struct {
	what, noun string
	valid      func(string) bool
}

// interactionCodes are the values of request.interaction besides "".
var interactionCodes = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range interactionNames() {
		m[n] = true
	}
	return m
}()

// methods are the values of request.method (HEAD is reported as GET).
var methods = map[string]bool{"GET": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "OPTIONS": true}

// closedValued reports whether the expression holds a value of a closed
// set (a resource type name, an interaction code, an HTTP method; or ""),
// and which.
func closedValued(a *ast.AST, e ast.Expr) (closedSet, bool) {
	resourceType := func(what string) (closedSet, bool) {
		return closedSet{what: what, noun: "resource type", valid: func(s string) bool { return fhir.IsResourceType(s) }}, true
	}
	switch e.Kind() {
	case ast.CallKind:
		if c := e.AsCall(); c.FunctionName() == functionRefType && !c.IsMemberFunction() {
			return resourceType(functionRefType + "()")
		}
	case ast.SelectKind:
		sel := e.AsSelect()
		if sel.IsTestOnly() {
			return closedSet{}, false
		}
		op := sel.Operand()
		opType := a.GetType(op.ID())
		switch field := sel.FieldName(); {
		case opType.IsExactType(requestType) && (field == "resourceType" || field == "compartmentType"):
			return resourceType("request." + field)
		case opType.IsExactType(requestType) && field == "interaction":
			return closedSet{what: "request.interaction", noun: "interaction", valid: func(s string) bool { return interactionCodes[s] }}, true
		case opType.IsExactType(requestType) && field == "method":
			return closedSet{what: "request.method", noun: "method (upper case: GET, POST, PUT, PATCH, DELETE)", valid: func(s string) bool { return methods[s] }}, true
		case opType.IsExactType(contextItemType) && field == "type":
			return resourceType("fhirContext type")
		case field == "resourceType" && op.Kind() == ast.IdentKind && op.AsIdent() == variableResource:
			return resourceType("resource.resourceType")
		}
	}
	return closedSet{}, false
}

func isZoneAccessor(fn string) bool {
	switch fn {
	case "getFullYear", "getMonth", "getDayOfYear", "getDayOfMonth", "getDate",
		"getDayOfWeek", "getHours", "getMinutes", "getSeconds", "getMilliseconds":
		return true
	}
	return false
}

// AuthorizeRequest evaluates the request rules in order and returns the
// first denial: a *middleware.PolicyDenial naming the rule, or an
// *EvalError when a rule fails to evaluate (which also denies). nil allows.
// t may be nil (no token: its fields are empty) and d may be nil (no
// enforcement point ran: the interaction fields are empty and the query
// is the URL's).
func (p *Policy) AuthorizeRequest(r *http.Request, t *middleware.Token, d *middleware.Decision) error {
	if r == nil || r.URL == nil {
		return &EvalError{Rule: "", Err: errors.New("no request")}
	}
	rs := p.cur.Load()
	if len(rs.request) == 0 {
		return nil
	}
	s := newState(r, t, d, p.now())
	defer s.release()
	return p.run(r.Context(), rs.request, s)
}

// AuthorizeResource evaluates the resource rules in order on one resource
// read (phase middleware.ResourceRead, after the handler) or written
// (middleware.ResourceWritten, before it) and returns the first denial, as
// AuthorizeRequest does. Rules see the resource as `resource` and the phase
// as `phase` ("read" or "write").
func (p *Policy) AuthorizeResource(r *http.Request, t *middleware.Token, d *middleware.Decision, phase middleware.ResourcePhase, resource map[string]any) error {
	if r == nil || r.URL == nil {
		return &EvalError{Rule: "", Err: errors.New("no request")}
	}
	rs := p.cur.Load()
	if len(rs.resource) == 0 {
		return nil
	}
	var ph string
	switch phase {
	case middleware.ResourceRead:
		ph = "read"
	case middleware.ResourceWritten:
		ph = "write"
	default:
		return &EvalError{Rule: rs.resource[0].name, Err: fmt.Errorf("unknown resource phase %d", phase)}
	}
	if resource == nil {
		return &EvalError{Rule: rs.resource[0].name, Err: errors.New("no resource")}
	}
	s := newState(r, t, d, p.now())
	defer s.release()
	s.resource = types.NewStringInterfaceMap(types.DefaultTypeAdapter, resource)
	s.phase = types.String(ph)
	return p.run(r.Context(), rs.resource, s)
}

func (p *Policy) run(ctx context.Context, rules []*compiled, s *evalState) error {
	for _, c := range rules {
		if c.match != nil {
			ok, err := p.eval(ctx, c.match, s)
			if err != nil {
				return p.failed(ctx, c, "match", err)
			}
			if !ok {
				continue
			}
		}
		ok, err := p.eval(ctx, c.when, s)
		if err != nil {
			return p.failed(ctx, c, "when", err)
		}
		if ok == (c.effect == Deny) {
			if p.log.Enabled(ctx, slog.LevelDebug) {
				p.log.LogAttrs(ctx, slog.LevelDebug, "celpolicy: request denied", slog.String("rule", c.name), slog.String("file", c.file))
			}
			return &middleware.PolicyDenial{Rule: c.name, Message: c.message}
		}
	}
	return nil
}

func (p *Policy) eval(ctx context.Context, prg *program, s *evalState) (bool, error) {
	var (
		out ref.Val
		err error
	)
	switch {
	case p.cfg.InsecureNoCostLimit:
		out, _, err = prg.prg.Eval(s)
	case prg.fast != nil && s.withinBounds(prg.groups):
		out, _, err = prg.fast.Eval(s)
	default:
		// Not ContextEval: the cost limit already bounds the evaluation,
		// and deriving a cancellable context from the request's for every
		// expression costs a tenth of a tracked evaluation. A request
		// whose context is done starts no tracked expression.
		if err := ctx.Err(); err != nil {
			return false, err
		}
		out, _, err = prg.prg.Eval(s)
	}
	if err != nil {
		var ce interpreter.EvalCancelledError
		if errors.As(err, &ce) && ce.Cause == interpreter.CostLimitExceeded {
			err = fmt.Errorf("%w: %w", errCostLimit, err)
		}
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("result is %s, not bool", out.Type().TypeName())
	}
	return bool(b), nil
}

func (p *Policy) failed(ctx context.Context, c *compiled, field string, err error) error {
	p.log.LogAttrs(ctx, slog.LevelError, "celpolicy: rule evaluation failed; denied",
		slog.String("rule", c.name), slog.String("file", c.file), slog.String("field", field), slog.Any("error", err))
	return &EvalError{Rule: c.name, Err: err}
}
