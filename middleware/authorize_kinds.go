package middleware

import (
	"strings"

	"github.com/fhirguard/fhirguard/fhirrest"
	"github.com/fhirguard/fhirguard/scope"
)

// begin grants the interaction's letter p on its type. pass is true when
// the grant needs no verification, so the request goes straight to the
// handler; otherwise the patient-held accesses that can never reach the
// type (reading says whether shared types count) are dropped.
func (x *exchange) begin(p scope.Permission, reading bool) (pass bool, e *refusal) {
	it := &x.d.Interaction
	if e := x.grant(it.ResourceType, it.Type, p); e != nil {
		return false, e
	}
	// Policies deny before anything reaches the handler, even the internal
	// read of a stored version.
	if e := x.policies(); e != nil {
		return false, e
	}
	if !x.needsVerification() {
		return true, nil
	}
	return false, x.dropUnreachable(it.ResourceType, reading)
}

// read: read, vread and instance history (letter r).
func (x *exchange) read() *refusal {
	it := &x.d.Interaction
	if pass, e := x.begin(scope.Read, true); e != nil || pass {
		return x.passUnless(e)
	}
	// A patient's own record: any other Patient id is answered without
	// asking the handler, so existence is never revealed.
	if it.ResourceType == "Patient" && x.allPatientHeld() && !x.patientIs(it.ID) && x.a.excludeLinked {
		return x.a.notFound()
	}
	if e := x.checkRepresentation(false); e != nil {
		return e
	}
	if it.Kind == fhirrest.HistoryInstance && countOnly(it.Query) {
		// A page without versions cannot show whether the token may see
		// the resource: the guard reads the versions and counts the
		// visible ones (none: answered like an absent id).
		if e := x.countSelf(); e != nil {
			return e
		}
	}
	return x.serveVerified(it.Kind == fhirrest.HistoryInstance)
}

// passUnless returns e, or sends the request to the handler when e is nil.
func (x *exchange) passUnless(e *refusal) *refusal {
	if e != nil {
		return e
	}
	return x.pass()
}

// allPatientHeld reports whether every access is held to a patient.
func (x *exchange) allPatientHeld() bool {
	for _, ac := range x.acs {
		if ac.patient == "" {
			return false
		}
	}
	return len(x.acs) > 0
}

func (x *exchange) patientIs(id string) bool {
	for _, ac := range x.acs {
		if ac.patient == id {
			return true
		}
	}
	return false
}

// dropUnreachable removes patient-held accesses that can never reach type
// rt (not in the Patient compartment and not a shared type for reading), and
// refuses when nothing is left.
func (x *exchange) dropUnreachable(rt string, reading bool) *refusal {
	if rt == "" || rt == "*" || x.a.memberType(rt) || (reading && x.a.shared[rt]) {
		return nil
	}
	kept := x.acs[:0:0]
	for _, ac := range x.acs {
		if ac.patient == "" {
			kept = append(kept, ac)
		}
	}
	if len(kept) == 0 {
		return forbidden("", rt+" resources are outside the patient's compartment")
	}
	x.acs = kept
	x.d.record(kept)
	return nil
}

// controlParamsRefused lists search parameters the kit cannot verify under
// patient or granular grants: they would let the server's answer depend on
// data the token may not see.
var controlParamsRefused = []string{"_filter", "_query", "_contained", "_containedType", "_list", "_has", "_text", "_content"}

// checkSearchParams refuses, for verified searches, parameters whose effect
// cannot be verified on the response: _has, chains, _filter, _query.
func (x *exchange) checkSearchParams() *refusal {
	for key := range x.d.Interaction.Query {
		name, _, _ := strings.Cut(key, ":")
		for _, bad := range controlParamsRefused {
			if name == bad {
				return forbidden("", name+" is not allowed for this token")
			}
		}
		if strings.HasPrefix(name, "_has") {
			return forbidden("", "_has is not allowed for this token")
		}
		if !strings.HasPrefix(name, "_") && strings.Contains(key, ".") {
			return forbidden("", "chained search parameters are not allowed for this token")
		}
	}
	return x.checkIncludes()
}

// searchType: type search and type history (letter s).
func (x *exchange) searchType() *refusal {
	it := &x.d.Interaction
	if pass, e := x.begin(scope.Search, true); e != nil || pass {
		return x.passUnless(e)
	}
	if it.Kind == fhirrest.HistoryType && x.patientHeld() {
		x.dropPatientHeld()
		if len(x.acs) == 0 {
			return forbidden("", "type history is not available to patient-scoped tokens")
		}
	}
	if e := x.checkSearchParams(); e != nil {
		return e
	}
	if e := x.narrowSearch(it.ResourceType); e != nil {
		return e
	}
	return x.serveVerifiedSearch()
}

func (x *exchange) dropPatientHeld() {
	kept := x.acs[:0:0]
	for _, ac := range x.acs {
		if ac.patient == "" {
			kept = append(kept, ac)
		}
	}
	x.acs = kept
	x.d.record(kept)
}

// searchCompartment: /Patient/123/Observation and /Patient/123/*.
func (x *exchange) searchCompartment() *refusal {
	it := &x.d.Interaction
	if it.ResourceType == "*" {
		return x.searchCompartmentAll()
	}
	if pass, e := x.begin(scope.Search, true); e != nil || pass {
		return x.passUnless(e)
	}
	if e := x.compartmentBinds(); e != nil {
		return e
	}
	if e := x.checkSearchParams(); e != nil {
		return e
	}
	if enc := commonEncounter(x.acs); enc != "" {
		if e := x.narrowToEncounter(it.ResourceType, enc); e != nil {
			return e
		}
	}
	return x.serveVerifiedSearch()
}

// compartmentBinds refuses a compartment search that a patient-held token
// makes of another compartment than its own patient's.
func (x *exchange) compartmentBinds() *refusal {
	it := &x.d.Interaction
	if !x.allPatientHeld() {
		return nil
	}
	if it.CompartmentType != "Patient" || !x.patientIs(it.CompartmentID) {
		return forbidden("", "the token may only search its own patient's compartment")
	}
	return nil
}

// openWildcard reports whether an unconstrained system or user wildcard
// scope grants p on every type without holding the token to a patient, and
// records that access.
func (x *exchange) openWildcard(p scope.Permission) bool {
	for _, ctx := range [...]scope.Context{scope.System, scope.User} {
		if !x.tok.Scopes.AllowsAllTypes(ctx, p) {
			continue
		}
		if id, ok := x.a.patientOf(x.tok, ctx); ok && id == "" {
			x.acs = []access{{ctx: ctx, grant: scope.Grant{Allowed: true, Unconstrained: true}}}
			x.d.record(x.acs)
			return true
		}
	}
	return false
}

// serveOpenSearch serves a search under an open access: straight to the
// handler, or verified when resource policies must see the results.
func (x *exchange) serveOpenSearch() *refusal {
	if len(x.a.resPols) == 0 {
		return x.pass()
	}
	return x.serveVerified(true)
}

func (x *exchange) searchCompartmentAll() *refusal {
	it := &x.d.Interaction
	if x.openWildcard(scope.Search) {
		return x.serveOpenSearch()
	}
	// Held to a patient: the compartment must be the token's patient, and
	// each entry is checked against the grants of its own type.
	id, ok := x.a.patientOf(x.tok, scope.Patient)
	if !ok || !x.tok.Scopes.HasContext(scope.Patient) {
		if uid, isPatient := x.a.fhirUserPatient(x.tok.FHIRUser); isPatient && x.tok.Scopes.HasContext(scope.User) {
			id, ok = uid, true
		} else {
			return forbidden(neededScope(x.tok, "*", scope.Search), "the token does not grant a search of every type")
		}
	}
	if !ok || it.CompartmentType != "Patient" || it.CompartmentID != id {
		return forbidden("", "the token may only search its own patient's compartment")
	}
	x.d.Context, x.d.CompartmentType, x.d.CompartmentID = scope.Patient, "Patient", id
	if e := x.checkSearchParams(); e != nil {
		return e
	}
	return x.serveVerifiedSearch()
}

// serveVerifiedSearch applies the granular constraints and the
// representation rules to a search, then serves it with its results
// verified.
func (x *exchange) serveVerifiedSearch() *refusal {
	if e := x.checkConstraintsSearch(); e != nil {
		return e
	}
	if e := x.checkRepresentation(true); e != nil {
		return e
	}
	return x.serveVerified(true)
}

// searchSystem: GET [base]?_type=... and [base]/_history.
func (x *exchange) searchSystem() *refusal {
	it := &x.d.Interaction
	if len(it.Types) == 0 {
		if x.openWildcard(scope.Search) {
			return x.serveOpenSearch()
		}
		return forbidden(neededScope(x.tok, "*", scope.Search), "a search of every type needs an unconstrained system or user wildcard scope")
	}
	// _type lists the types: each must be granted, never through a patient.
	open := true
	for _, typ := range it.Types {
		t, _ := scope.LookupType(typ)
		acs, _ := x.a.accesses(x.tok, t, scope.Search, nil)
		kept := acs[:0:0]
		for _, ac := range acs {
			if ac.patient == "" {
				kept = append(kept, ac)
			}
		}
		if len(kept) == 0 {
			return forbidden(neededScope(x.tok, typ, scope.Search), "the token does not grant a system-level search of "+typ)
		}
		if !isOpen(kept) {
			open = false
		}
		if x.typeAcs == nil {
			x.typeAcs = map[typeAccessKey][]access{}
		}
		x.typeAcs[typeAccessKey{rt: typ}], x.typeAcs[typeAccessKey{rt: typ, searchOnly: true}] = kept, kept
	}
	x.d.Context = scope.System
	if !x.tok.Scopes.HasContext(scope.System) {
		x.d.Context = scope.User
	}
	if open && len(x.a.resPols) == 0 {
		return x.pass()
	}
	if e := x.checkSearchParams(); e != nil {
		return e
	}
	return x.serveVerifiedSearch()
}

func mediaType(ct string) string {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}
