package middleware

import (
	"fmt"
	"slices"

	"github.com/fhirguard/fhirguard/fhir"
	"github.com/fhirguard/fhirguard/fhirrest"
	"github.com/fhirguard/fhirguard/scope"
)

// OperationResponse says how Authorize treats an operation's response.
type OperationResponse uint8

// Operation responses.
const (
	// ResponseUnchecked passes the response on as it is: for operations
	// that return no patient data (an OperationOutcome, Parameters about the
	// request itself).
	ResponseUnchecked OperationResponse = iota
	// ResponseResource verifies a single resource, as a read.
	ResponseResource
	// ResponseBundle verifies a Bundle entry by entry, as a search.
	ResponseBundle
)

// Operation is a rule for an extended operation ($name). Operations not in
// the table are refused: SMART assigns them no permission letter.
type Operation struct {
	// Name is the operation name without '$'.
	Name string
	// Levels are the levels the operation may be invoked at.
	Levels []fhirrest.Level
	// Types limits the resource types at type and instance level; empty
	// means any type.
	Types []string
	// Permission is the letter (or letters) needed on the resource type; at
	// system level, on every type (an unconstrained wildcard scope). Zero
	// means the operation reads and writes no stored data ($validate): a
	// create or update grant on the type is enough.
	Permission scope.Permission
	// Search treats the operation as a search of its type: the query is
	// narrowed to the patient's compartment like a search.
	Search bool
	// OwnPatient requires, at instance level on Patient, that the instance
	// be the token's patient when the token is held to one (as for
	// $everything), and refuses the type level for such tokens.
	OwnPatient bool
	// Stored checks, at instance level, that the token may see the stored
	// instance (an internal GET through the handler) before the operation
	// runs.
	Stored bool
	// Response says how the response is verified for tokens held to a
	// patient or to granular constraints.
	Response OperationResponse
}

// DefaultOperations returns the operation table used when
// AuthorizeConfig.Operations is nil: Patient/[id]/$everything (the token's
// own patient only, response verified as a search), Observation/$lastn (a
// search), $validate at type level and $meta at instance level.
//
// Each call returns a new table, Levels and Types included: changing it
// changes no default. To permit another operation, append it to the copy
// and pass the result as AuthorizeConfig.Operations.
func DefaultOperations() []Operation {
	return []Operation{
		{Name: "everything", Levels: []fhirrest.Level{fhirrest.LevelInstance}, Types: []string{"Patient"},
			Permission: scope.Read, OwnPatient: true, Response: ResponseBundle},
		{Name: "lastn", Levels: []fhirrest.Level{fhirrest.LevelType}, Types: []string{"Observation"},
			Permission: scope.Search, Search: true, Response: ResponseBundle},
		{Name: "validate", Levels: []fhirrest.Level{fhirrest.LevelType},
			Permission: 0, Response: ResponseUnchecked},
		{Name: "meta", Levels: []fhirrest.Level{fhirrest.LevelInstance},
			Permission: scope.Read, Stored: true, Response: ResponseUnchecked},
	}
}

func (a *authorizer) setOperations(ops []Operation) error {
	if ops == nil {
		ops = DefaultOperations()
	}
	a.ops = map[string]*Operation{}
	for i := range ops {
		// A deep copy: the caller keeps its table, Levels and Types included.
		op := ops[i]
		op.Levels = slices.Clone(op.Levels)
		op.Types = slices.Clone(op.Types)
		if op.Name == "" || op.Name[0] == '$' || len(op.Levels) == 0 {
			return fmt.Errorf("middleware: operation %q needs a name without '$' and at least one level", op.Name)
		}
		if op.Name == "graphql" {
			return fmt.Errorf("middleware: $graphql cannot be authorised by the kit")
		}
		if _, dup := a.ops[op.Name]; dup {
			return fmt.Errorf("middleware: operation %q listed twice", op.Name)
		}
		for _, l := range op.Levels {
			if l < fhirrest.LevelSystem || l > fhirrest.LevelInstance {
				return fmt.Errorf("middleware: operation %q: unknown level %d", op.Name, l)
			}
		}
		if op.Permission&^scope.All != 0 {
			// Bits without a letter would be checked against no grant.
			return fmt.Errorf("middleware: operation %q: Permission %#x has bits that are no SMART permission", op.Name, uint8(op.Permission))
		}
		if op.Response > ResponseBundle {
			return fmt.Errorf("middleware: operation %q: unknown Response %d", op.Name, op.Response)
		}
		for _, t := range op.Types {
			if !fhir.IsResourceType(t) {
				return fmt.Errorf("middleware: operation %q: %q is not a resource type", op.Name, t)
			}
		}
		a.ops[op.Name] = &op
	}
	return nil
}

// operation authorises an extended operation through the operation table.
func (x *exchange) operation() *refusal {
	it := &x.d.Interaction
	op := x.a.ops[it.Operation]
	if op == nil || !slices.Contains(op.Levels, it.OperationLevel) ||
		(it.ResourceType != "" && len(op.Types) > 0 && !slices.Contains(op.Types, it.ResourceType)) {
		return forbidden("", "the operation $"+it.Operation+" is not permitted here")
	}
	if it.OperationLevel == fhirrest.LevelSystem {
		if op.Permission != 0 && x.openWildcard(op.Permission) {
			return x.pass()
		}
		if op.Permission == 0 {
			// Touches no stored data: any system or user resource scope
			// not held to a patient will do.
			for _, ctx := range [...]scope.Context{scope.System, scope.User} {
				if id, ok := x.a.patientOf(x.tok, ctx); ok && id == "" && x.tok.Scopes.HasContext(ctx) {
					x.d.Context = ctx
					return x.pass()
				}
			}
		}
		return forbidden(neededScope(x.tok, "*", op.Permission), "the operation needs an unconstrained system or user wildcard scope")
	}
	if op.Permission == 0 {
		// No data is read or written: a scope that could write the type
		// (create or update) will do.
		granted := false
		for _, p := range [...]scope.Permission{scope.Create, scope.Update} {
			if acs, _ := x.a.accesses(x.tok, it.Type, p, nil); len(acs) > 0 {
				granted = true
				break
			}
		}
		if !granted {
			return forbidden(neededScope(x.tok, it.ResourceType, scope.Create), "the operation needs a create or update grant on "+it.ResourceType)
		}
		return x.pass()
	}
	for _, p := range [...]scope.Permission{scope.Create, scope.Read, scope.Update, scope.Delete, scope.Search} {
		if op.Permission&p == 0 {
			continue
		}
		if e := x.grant(it.ResourceType, it.Type, p); e != nil {
			return e
		}
	}
	if !x.needsVerification() {
		return x.pass()
	}
	if e := x.dropUnreachable(it.ResourceType, true); e != nil {
		return e
	}
	if op.OwnPatient && x.patientHeld() {
		if it.OperationLevel != fhirrest.LevelInstance || it.ResourceType != "Patient" || !x.allPatientHeld() || !x.patientIs(it.ID) {
			return forbidden("", "the operation is only available on the token's own patient")
		}
	}
	if op.Search && it.OperationLevel == fhirrest.LevelType {
		if e := x.checkSearchParams(); e != nil {
			return e
		}
		if e := x.narrowSearch(it.ResourceType); e != nil {
			return e
		}
	}
	if op.Stored && it.OperationLevel == fhirrest.LevelInstance {
		if e := x.checkStored(false); e != nil {
			return e
		}
	}
	switch op.Response {
	case ResponseResource:
		if e := x.checkRepresentation(false); e != nil {
			return e
		}
		return x.serveVerified(false)
	case ResponseBundle:
		if !op.Search && len(it.Query["_elements"]) > 0 {
			// The answer holds many types: no _elements can be restored.
			return forbidden("", "_elements cannot be verified on $"+it.Operation+" for this token")
		}
		// Result parameters shape the Bundle as for a search (_summary=count
		// is counted by the guard).
		if e := x.checkRepresentation(true); e != nil {
			return e
		}
		return x.serveVerified(true)
	}
	return x.pass()
}
