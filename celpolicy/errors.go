package celpolicy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/fhirguard/fhirguard/middleware"
)

// Sentinel errors. Compile and evaluation failures wrap them; test with
// errors.Is.
var (
	// ErrInvalidPolicy marks a policy file or rule that breaks the schema:
	// unknown keys, a missing name, effect, when or message, duplicate names.
	ErrInvalidPolicy = errors.New("celpolicy: invalid policy")
	// ErrCompile marks a rule expression that does not parse or type-check,
	// or is not of type bool.
	ErrCompile = errors.New("celpolicy: rule does not compile")
	// ErrCostTooHigh marks a rule whose estimated worst-case cost exceeds
	// Config.MaxEstimatedCost.
	ErrCostTooHigh = errors.New("celpolicy: estimated rule cost over the limit")
	// ErrEvaluation marks a rule that failed while evaluating; the request
	// is denied.
	ErrEvaluation = errors.New("celpolicy: rule evaluation failed")
	// ErrCostLimit marks an evaluation stopped by the runtime cost limit;
	// it also matches ErrEvaluation.
	ErrCostLimit = errors.New("celpolicy: runtime cost limit exceeded")
)

// CompileError is a rule that cannot be used, with where it is: the file
// (empty for rules built in Go), the rule's name, the field ("when",
// "match", "effect", ...) and the 1-based line and column in the file (or,
// for rules built in Go, in the expression). Err is ErrInvalidPolicy,
// ErrCompile or ErrCostTooHigh.
type CompileError struct {
	File    string
	Rule    string
	Field   string
	Line    int
	Column  int
	Message string
	Err     error
}

// Error formats the error as "file:line:column: rule "name": field: message",
// leaving out the parts that are unknown.
func (e *CompileError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:%d:", e.Line, e.Column)
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	if e.Rule != "" {
		fmt.Fprintf(&b, "rule %q: ", e.Rule)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Unwrap returns the sentinel the error wraps.
func (e *CompileError) Unwrap() error { return e.Err }

// EvalError is a rule that failed during evaluation (a missing map key, a
// wrong dynamic type, the cost limit, a cancelled request, an error of a
// server function). The request is denied: errors.As also finds a
// *middleware.PolicyDenial in it, naming the rule with a generic message, so
// an enforcement point renders it like any denial, while the cause stays
// in the log.
type EvalError struct {
	Rule string // the rule that failed ("" when the inputs were unusable)
	Err  error  // the cause
}

// evalDenialMessage is what the client sees when a rule fails to evaluate.
const evalDenialMessage = "access denied by policy"

// Error names the rule and the cause; it is for logs, not for clients.
func (e *EvalError) Error() string {
	return fmt.Sprintf("celpolicy: rule %q: evaluation failed, denied: %v", e.Rule, e.Err)
}

// Unwrap returns the cause.
func (e *EvalError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrEvaluation) true.
func (e *EvalError) Is(target error) bool { return target == ErrEvaluation }

// As fills a **middleware.PolicyDenial with the denial the failure implies.
func (e *EvalError) As(target any) bool {
	if pd, ok := target.(**middleware.PolicyDenial); ok {
		*pd = &middleware.PolicyDenial{Rule: e.Rule, Message: evalDenialMessage}
		return true
	}
	return false
}
