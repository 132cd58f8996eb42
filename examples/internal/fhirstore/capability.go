package fhirstore

import "encoding/json"

// capabilityDate is the fixed CapabilityStatement.date, so /metadata is
// deterministic.
const capabilityDate = "2026-01-01"

type capabilityStatement struct {
	ResourceType   string           `json:"resourceType"`
	Status         string           `json:"status"`
	Date           string           `json:"date"`
	Publisher      string           `json:"publisher"`
	Kind           string           `json:"kind"`
	Software       map[string]any   `json:"software"`
	Implementation map[string]any   `json:"implementation"`
	FHIRVersion    string           `json:"fhirVersion"`
	Format         []string         `json:"format"`
	PatchFormat    []string         `json:"patchFormat"`
	Rest           []capabilityRest `json:"rest"`
}

type capabilityRest struct {
	Mode        string               `json:"mode"`
	Security    json.RawMessage      `json:"security,omitempty"`
	Resource    []capabilityResource `json:"resource"`
	Interaction []code               `json:"interaction"`
	SearchParam []capabilityParam    `json:"searchParam"`
}

type capabilityResource struct {
	Type              string            `json:"type"`
	Interaction       []code            `json:"interaction"`
	Versioning        string            `json:"versioning"`
	ReadHistory       bool              `json:"readHistory"`
	UpdateCreate      bool              `json:"updateCreate"`
	ConditionalCreate bool              `json:"conditionalCreate"`
	ConditionalUpdate bool              `json:"conditionalUpdate"`
	ConditionalDelete string            `json:"conditionalDelete"`
	SearchInclude     []string          `json:"searchInclude,omitempty"`
	SearchRevInclude  []string          `json:"searchRevInclude,omitempty"`
	SearchParam       []capabilityParam `json:"searchParam"`
	Operation         []capabilityOp    `json:"operation,omitempty"`
}

type code struct {
	Code string `json:"code"`
}

type capabilityParam struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

type capabilityOp struct {
	Name       string `json:"name"`
	Definition string `json:"definition"`
}

var kindNames = map[paramKind]string{
	tokenParam: "token", referenceParam: "reference", stringParam: "string", dateParam: "date",
}

var commonParams = []capabilityParam{{Name: "_id", Type: "token"}, {Name: "_lastUpdated", Type: "date"}}

// capabilities renders the CapabilityStatement of /metadata.
func (s *Store) capabilities(base string) []byte {
	codes := func(names ...string) []code {
		out := make([]code, len(names))
		for i, n := range names {
			out[i] = code{n}
		}
		return out
	}
	cs := capabilityStatement{
		ResourceType:   "CapabilityStatement",
		Status:         "active",
		Date:           capabilityDate,
		Publisher:      "fhirguard examples",
		Kind:           "instance",
		Software:       map[string]any{"name": "fhirguard fhirstore (in-memory demo FHIR server)"},
		Implementation: map[string]any{"description": "In-memory FHIR R4 store of the fhirguard examples", "url": base},
		FHIRVersion:    "4.0.1",
		Format:         []string{"json", MediaType},
		PatchFormat:    []string{"application/json-patch+json"},
	}
	rest := capabilityRest{
		Mode:        "server",
		Security:    s.security,
		Interaction: codes("transaction", "batch", "search-system", "history-system"),
		SearchParam: commonParams,
	}
	for _, typ := range sortedKeys(searchParams) {
		r := capabilityResource{
			Type:              typ,
			Interaction:       codes("read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create", "search-type"),
			Versioning:        "versioned",
			ReadHistory:       true,
			UpdateCreate:      true,
			ConditionalCreate: true,
			ConditionalUpdate: true,
			ConditionalDelete: "multiple",
			SearchParam:       append([]capabilityParam(nil), commonParams...),
		}
		for _, name := range sortedKeys(searchParams[typ]) {
			d := searchParams[typ][name]
			r.SearchParam = append(r.SearchParam, capabilityParam{Name: name, Type: kindNames[d.kind]})
			if d.kind == referenceParam {
				r.SearchInclude = append(r.SearchInclude, typ+":"+name)
			}
		}
		for _, src := range sortedKeys(searchParams) {
			for _, name := range sortedKeys(searchParams[src]) {
				d := searchParams[src][name]
				if d.kind == referenceParam && (d.targets == nil || contains(d.targets, typ)) {
					r.SearchRevInclude = append(r.SearchRevInclude, src+":"+name)
				}
			}
		}
		if typ == "Patient" {
			r.Operation = []capabilityOp{{Name: "everything", Definition: "http://hl7.org/fhir/OperationDefinition/Patient-everything"}}
		}
		rest.Resource = append(rest.Resource, r)
	}
	cs.Rest = []capabilityRest{rest}
	return mustEncode(cs)
}
