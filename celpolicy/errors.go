package celpolicy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/fhirguard/fhirguard/middleware"
)

// Kinds of failure. They are unexported: callers branch on the typed
// errors (*CompileError, *EvalError); the texts stay in the messages.
var (
	// errInvalidPolicy marks a policy file or rule that breaks the schema:
	// unknown keys, a missing name, effect, when or message, duplicate names.
	errInvalidPolicy = errors.New("celpolicy: invalid policy")
	// errCompile marks a rule expression that does not parse or type-check,
	// is not of type bool, or has a bad constant argument.
	errCompile = errors.New("celpolicy: rule does not compile")
	// errCostTooHigh marks a rule whose estimated worst-case cost exceeds
	// Config.MaxEstimatedCost.
	errCostTooHigh = errors.New("celpolicy: estimated rule cost over the limit")
	// errCostLimit marks an evaluation stopped by the runtime cost limit.
	errCostLimit = errors.New("celpolicy: runtime cost limit exceeded")
)

// CompileError is a rule that cannot be used, with where it is: the file
// (empty for rules built in Go), the rule's name, the field ("when",
// "match", "effect", ...) and the 1-based line and column in the file (or,
// for rules built in Go, in the expression). New, Reload and ParseFile
// return them, joined with errors.Join when there are several; find them
// with errors.As.
type CompileError struct {
	File    string
	Rule    string
	Field   string
	Line    int
	Column  int
	Message string

	kind error // errInvalidPolicy, errCompile or errCostTooHigh
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

// As fills a **middleware.PolicyDenial with the denial the failure implies.
func (e *EvalError) As(target any) bool {
	if pd, ok := target.(**middleware.PolicyDenial); ok {
		*pd = &middleware.PolicyDenial{Rule: e.Rule, Message: evalDenialMessage}
		return true
	}
	return false
}
