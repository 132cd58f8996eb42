// Package celpolicy adds the server's own authorisation rules to fhirguard,
// written in CEL (the Common Expression Language): underlying user
// permissions, tenants, hours, consent flags. A *Policy implements
// middleware.Policy and middleware.ResourcePolicy. Policies only narrow what
// scopes allow: the enforcement point decides scopes and compartments
// first, then asks the policies, which may deny but never widen.
//
// # Rules
//
// A rule has a name, an effect, an optional match expression, a when
// expression and a message. A deny rule denies when `when` is true; a
// require rule denies when `when` is false. Either applies only when
// `match` (if given) is true. Rules run in order and the first denial wins;
// its message goes to the client in a 403 OperationOutcome and its name to
// the decision hook (middleware.PolicyDenial.Rule). Rules live in a YAML
// file (see ParseFile for the schema, examples/policies/example.yaml for an
// example) or are built in Go (Config.Rules).
//
// Rules with `on: resource` run on every resource the handler returns
// (phase "read") and every resource a client sends (phase "write"), through
// AuthorizeResource.
//
// # Variables
//
//	request.method          string  HTTP method (HEAD reads as GET)
//	request.path            string  URL path
//	request.interaction     string  FHIR interaction: "read", "search-type", ... ("" without a decision)
//	request.resourceType    string  type the interaction acts on
//	request.id              string  instance id
//	request.versionId       string  version id (vread)
//	request.operation       string  operation name without '$'
//	request.compartmentType string  compartment the request is held to, else the one its path names
//	request.compartmentId   string
//	request.context         string  context of the grant used: "patient", "user", "system"
//	request.query           map(string, list(string))  search parameters
//	request.headers         map(string, string)  lower-case names; repeated headers joined with ", "
//	request.remoteAddr      string  as net/http gives it ("192.0.2.1:5050")
//	request.remoteIp        string  the host part of remoteAddr
//	token.sub, token.clientId, token.issuer, token.patient, token.encounter,
//	token.fhirUser, token.tenant  string
//	token.scopes            list(string)  granted scopes in canonical form
//	token.audience          list(string)
//	token.exp               timestamp
//	token.fhirContext       list(fhirguard.ContextItem) with reference, canonical,
//	                        type, role (string) and identifier (map(string, dyn))
//	token.claims            map(string, dyn)  every claim, as decoded from JSON
//	now                     timestamp (UTC)
//	resource                map(string, dyn)  the resource JSON (on: resource only)
//	phase                   string  "read" or "write" (on: resource only)
//
// Fields are read from the request, the token and the enforcement point's
// middleware.Decision when a rule asks for them; nothing is copied into maps
// per request. Without a decision the interaction fields are empty and
// request.query is the URL query. Without a token the token fields are
// empty. Missing map keys are evaluation errors (which deny): test them
// with `in`, `has()` or the optional syntax (`token.claims.?role.orValue("")`).
//
// # Functions
//
// Besides CEL's standard library, the string extensions and optional types:
//
//	token.hasScope('patient/Observation.rs')   the token holds this scope (compared in canonical form)
//	token.allows('Observation', 'rs')          some patient/, user/ or system/ scope grants these letters
//	token.allows('user', 'Observation', 'r')   the same, in one context
//	refType('Patient/123')                     "Patient" (relative, versioned or absolute references)
//	refId('Patient/123/_history/2')            "123"
//
// Constants are checked when the rule compiles: a scope given to hasScope
// must follow the SMART scope grammar and name a known resource type; the
// context, type and letters given to allows, a time zone given to a
// timestamp accessor, and a constant compared (==, != or in) with
// request.resourceType, request.compartmentType, resource.resourceType,
// refType(...) or a fhirContext item's type (a resource type), with
// request.interaction (an interaction code) or with request.method (GET,
// POST, PUT, PATCH, DELETE, OPTIONS) must be valid. A bad constant is a
// start-up error naming the function or field, the constant and its
// position: token.hasScope('patient/Obs.rs') and
// request.interaction == 'reed' do not compile, where they would otherwise
// make a rule silently never match. The server adds its own functions with Config.EnvOptions
// and cel.Function, with declared argument and result types, so the rules
// that use them are type-checked too.
//
// # Time zones
//
// now is in UTC. The timestamp accessors with a zone argument
// (now.getHours('Europe/Berlin'), getDayOfWeek, ...) accept IANA names and
// ±HH:MM offsets; the package caches loaded zones, so a rule does not read
// the zone database on every request as CEL's own accessors would.
//
// # Compilation, cost and failures
//
// New parses, type-checks and plans every rule once. A rule that does not
// compile, is not of type bool, or whose estimated worst-case cost exceeds
// Config.MaxEstimatedCost is a start-up error (*CompileError) naming the
// file, the line and column, and the rule. At run time each expression is
// evaluated under a cost limit (Config.CostLimit); once the request's
// context is done, no further tracked expression starts. Any evaluation
// error denies (fail closed) and is logged: AuthorizeRequest and
// AuthorizeResource return an *EvalError, which errors.As also reads as a
// *middleware.PolicyDenial with a generic message.
//
// CEL's runtime cost tracking observes every evaluation step and allocates
// on every function call, which makes a tracked rule several times slower
// than an untracked one. To keep typical rules near a microsecond, New also estimates each expression's
// worst case with fixed bounds on the request's inputs (strings of at most
// 4096 characters; scope, audience, query and header collections of at
// most 256 entries) and nothing assumed about the others (claims,
// fhirContext, the resource, results of server functions). When that
// estimate is within the cost limit, requests whose inputs are within the
// bounds are evaluated without tracking: they cannot exceed the limit.
// Other requests, and rules that cannot be bounded, are tracked.
//
// # Reload
//
// Reload reads the file again and swaps the compiled rules atomically; a
// file that does not compile keeps the old rules and returns the reason.
// With Config.Watch, the Policy reloads by itself on signals (typically
// SIGHUP) and, optionally, when the file changes, until Close.
package celpolicy
