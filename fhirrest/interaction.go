package fhirrest

import (
	"net/url"
	"strings"

	"github.com/fhirguard/fhirguard/scope"
)

// Kind is a FHIR RESTful interaction (R4 restful-interaction codes, plus
// R5's search-compartment).
type Kind uint8

// Interactions.
const (
	KindUnknown Kind = iota
	Read
	VRead
	Update
	Patch
	Delete
	HistoryInstance
	HistoryType
	HistorySystem
	Create
	SearchType
	SearchSystem
	SearchCompartment
	Capabilities
	Batch
	Transaction
	Operation
)

var kindNames = [...]string{
	KindUnknown:       "unknown",
	Read:              "read",
	VRead:             "vread",
	Update:            "update",
	Patch:             "patch",
	Delete:            "delete",
	HistoryInstance:   "history-instance",
	HistoryType:       "history-type",
	HistorySystem:     "history-system",
	Create:            "create",
	SearchType:        "search-type",
	SearchSystem:      "search-system",
	SearchCompartment: "search-compartment",
	Capabilities:      "capabilities",
	Batch:             "batch",
	Transaction:       "transaction",
	Operation:         "operation",
}

// String returns the FHIR code of the interaction ("read", "search-type").
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Permission returns the SMART v2 permission letter the interaction needs on
// its resource type (smart-spec-notes §1.3): r for read, vread and instance
// history; s for searches and type and system history; c, u (update and
// patch) and d. Capabilities, batch, transaction and operations need no
// single letter and return 0: batch entries are authorised one by one and
// operations through an operation table.
func (k Kind) Permission() scope.Permission {
	switch k {
	case Read, VRead, HistoryInstance:
		return scope.Read
	case Update, Patch:
		return scope.Update
	case Delete:
		return scope.Delete
	case Create:
		return scope.Create
	case SearchType, SearchSystem, SearchCompartment, HistoryType, HistorySystem:
		return scope.Search
	}
	return 0
}

// Level is where an operation is invoked.
type Level uint8

// Operation levels.
const (
	LevelSystem   Level = iota + 1 // [base]/$op
	LevelType                      // [base]/[type]/$op
	LevelInstance                  // [base]/[type]/[id]/$op
)

// Interaction is a classified FHIR request. (Its small fields come first,
// together: the struct is copied into every Decision.)
type Interaction struct {
	Kind Kind
	// Type is ResourceType resolved; valid when ResourceType is a known type.
	Type scope.TypeID
	// OperationLevel is the level of Operation.
	OperationLevel Level
	// Conditional is true for conditional create (If-None-Exist), update,
	// patch and delete (search parameters instead of an id).
	Conditional bool
	// Method is the HTTP method; HEAD is reported as GET.
	Method string
	// ResourceType is the type the interaction acts on ("" at system level).
	// For a compartment search it is the searched type ("*" for all types).
	ResourceType string
	// ID and VersionID of the instance, when the path names one.
	ID        string
	VersionID string
	// Operation is the operation name without '$'.
	Operation string
	// CompartmentType and CompartmentID name the compartment of a
	// compartment search (/Patient/123/Observation).
	CompartmentType string
	CompartmentID   string
	// Query holds the search or conditional parameters: the URL query merged
	// with a form body (POST _search), or the If-None-Exist criteria of a
	// conditional create. Result parameters (_format, _pretty, _summary,
	// _elements) stay in it. It is nil when there are none. Copy it before
	// changing it.
	Query url.Values
	// Types lists the resource types named by the _type parameter (comma
	// lists and repeated parameters, without duplicates), as a system search
	// or a compartment search on "*" uses it; nil without _type.
	Types []string
	// Bundle is the parsed body of a batch or transaction; nil otherwise.
	Bundle *Bundle
}

// Permission returns the SMART permission the interaction needs on its
// resource type: Kind.Permission.
func (it Interaction) Permission() scope.Permission { return it.Kind.Permission() }

// String describes the interaction for logs: its kind and target, such as
// "read Patient/123", "search-compartment Patient/123/Observation" or
// "operation Patient/123/$everything". It leaves out the query, which may
// hold personal data.
func (it Interaction) String() string {
	var b strings.Builder
	b.WriteString(it.Kind.String())
	if it.Method != "" {
		b.WriteString(" ")
		b.WriteString(it.Method)
	}
	target := ""
	add := func(seg string) {
		if seg != "" {
			if target != "" {
				target += "/"
			}
			target += seg
		}
	}
	add(it.CompartmentType)
	add(it.CompartmentID)
	add(it.ResourceType)
	add(it.ID)
	if it.VersionID != "" {
		add("_history")
		add(it.VersionID)
	}
	if it.Operation != "" {
		add("$" + it.Operation)
	}
	if target != "" {
		b.WriteString(" ")
		b.WriteString(target)
	}
	if it.Conditional {
		b.WriteString(" (conditional)")
	}
	return b.String()
}
