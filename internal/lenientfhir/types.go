// Package lenientfhir is a small in-memory FHIR server FOR TESTS ONLY. It
// behaves like a typical Go FHIR server that trusts encoding/json: every
// JSON body (resources, batch and transaction Bundles, JSON Patch
// documents) is decoded into typed structs, so member names match
// case-insensitively (with encoding/json's folding of 'ſ' to 's' and of the
// Kelvin sign to 'k'), the last of duplicate members wins, invalid UTF-8 is
// replaced by U+FFFD and unknown members are ignored. It authorises
// nothing.
//
// Its purpose is differential testing of an enforcement point placed in
// front of it: the server records, for every operation it executes, what it
// did and which patients the resources it read, wrote or deleted refer to
// (as its own typed view sees them), so a test can compare that log with
// what the enforcement point believed it allowed.
//
// It supports read, a simple search (_id, patient, subject, identifier;
// other parameters are ignored, as lenient servers do), create (conditional
// with If-None-Exist), update (conditional with criteria), JSON Patch
// (add, replace and remove; conditional with criteria), delete (conditional
// deletes remove every match) and batch or transaction Bundles posted to the
// base (entry URLs are percent-decoded and entry methods upper-cased; a
// transaction is undone, log included, when an entry fails; entries run in
// order). A JSON Patch is applied to the stored resource's JSON as a map,
// which is then decoded into the typed view again. It is not a conformant
// FHIR server and must not be used as one.
package lenientfhir

import (
	"encoding/json"
	"strings"
)

// Reference is a FHIR Reference.
type Reference struct {
	Reference string `json:"reference,omitempty"`
	Display   string `json:"display,omitempty"`
}

// Identifier is a FHIR Identifier.
type Identifier struct {
	System string `json:"system,omitempty"`
	Value  string `json:"value,omitempty"`
}

// Annotation is a FHIR Annotation (text only).
type Annotation struct {
	Text string `json:"text,omitempty"`
}

// PatientLink is Patient.link.
type PatientLink struct {
	Other Reference `json:"other"`
	Type  string    `json:"type,omitempty"`
}

// Resource is the server's typed view of every resource: the elements it
// understands, the reference-bearing ones in particular. Everything else is
// dropped, as a typed server drops unknown members.
type Resource struct {
	ResourceType string        `json:"resourceType"`
	ID           string        `json:"id,omitempty"`
	Status       string        `json:"status,omitempty"`
	Identifier   []Identifier  `json:"identifier,omitempty"`
	Subject      *Reference    `json:"subject,omitempty"`
	Patient      *Reference    `json:"patient,omitempty"`
	Encounter    *Reference    `json:"encounter,omitempty"`
	Performer    []Reference   `json:"performer,omitempty"`
	Focus        []Reference   `json:"focus,omitempty"`
	HasMember    []Reference   `json:"hasMember,omitempty"`
	Author       []Reference   `json:"author,omitempty"`
	Target       []Reference   `json:"target,omitempty"`
	Link         []PatientLink `json:"link,omitempty"`
	Note         []Annotation  `json:"note,omitempty"`
	// Binary.
	ContentType string `json:"contentType,omitempty"`
	Data        []byte `json:"data,omitempty"`
}

// References returns every Reference.reference of the resource.
func (r *Resource) References() []string {
	var out []string
	one := func(ref *Reference) {
		if ref != nil && ref.Reference != "" {
			out = append(out, ref.Reference)
		}
	}
	many := func(refs []Reference) {
		for i := range refs {
			one(&refs[i])
		}
	}
	one(r.Subject)
	one(r.Patient)
	one(r.Encounter)
	many(r.Performer)
	many(r.Focus)
	many(r.HasMember)
	many(r.Author)
	many(r.Target)
	for i := range r.Link {
		one(&r.Link[i].Other)
	}
	return out
}

// Patients returns, sorted and without duplicates, "Patient/<id>" for the
// resource itself when it is a Patient and for every reference PatientOf
// counts (relative or absolute, versioned or not).
func (r *Resource) Patients() []string {
	set := map[string]bool{}
	if r.ResourceType == "Patient" && r.ID != "" {
		set["Patient/"+r.ID] = true
	}
	for _, ref := range r.References() {
		if p, ok := PatientOf(ref); ok {
			set[p] = true
		}
	}
	return sortedKeys(set)
}

// PatientOf returns "Patient/<id>" when the reference names a Patient: its
// last segments (before any /_history/ and trailing slash) are Patient/<id>,
// the type compared case-insensitively. The server is generous, so that a
// test counts every reference a lenient server might resolve to a patient.
func PatientOf(ref string) (string, bool) {
	if i := strings.Index(ref, "/_history/"); i >= 0 {
		ref = ref[:i]
	}
	segs := strings.Split(strings.TrimRight(ref, "/"), "/")
	if len(segs) < 2 || !strings.EqualFold(segs[len(segs)-2], "Patient") || segs[len(segs)-1] == "" {
		return "", false
	}
	return "Patient/" + segs[len(segs)-1], true
}

// Bundle is a batch or transaction Bundle as the server decodes it.
type Bundle struct {
	ResourceType string  `json:"resourceType"`
	Type         string  `json:"type"`
	Entry        []Entry `json:"entry"`
}

// Entry is Bundle.entry.
type Entry struct {
	FullURL  string          `json:"fullUrl"`
	Resource json.RawMessage `json:"resource"`
	Request  EntryRequest    `json:"request"`
}

// EntryRequest is Bundle.entry.request.
type EntryRequest struct {
	Method          string `json:"method"`
	URL             string `json:"url"`
	IfNoneExist     string `json:"ifNoneExist"`
	IfMatch         string `json:"ifMatch"`
	IfNoneMatch     string `json:"ifNoneMatch"`
	IfModifiedSince string `json:"ifModifiedSince"`
}

// PatchOp is one JSON Patch (RFC 6902) operation as the server decodes it.
type PatchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	From  string          `json:"from"`
	Value json.RawMessage `json:"value"`
}

// Op is one operation the server executed (or attempted, for the entries of
// a batch: every entry is logged with its outcome).
type Op struct {
	// Call numbers the HTTP request that carried the operation (from 1), and
	// HTTPMethod is that request's method.
	Call       int
	HTTPMethod string
	// Entry is the index of the Bundle entry, -1 for a direct request;
	// BundleType is "batch" or "transaction" for entries.
	Entry      int
	BundleType string
	// Method and URL are the FHIR request: the HTTP method and the URL
	// relative to the base ("Observation/o123", "Observation?patient=123"),
	// or entry.request.method and entry.request.url as received.
	Method string
	URL    string
	// IfNoneExist is the conditional create criteria (header or
	// entry.request.ifNoneExist).
	IfNoneExist string
	// Type and ID name the target; ID is the id written for a create.
	Type string
	ID   string
	// Criteria are the search or conditional criteria, encoded.
	Criteria string
	// Status is the HTTP status of the outcome.
	Status int
	// Touched lists "Type/id" of the resources returned, written or
	// deleted; Patients the "Patient/<id>" those resources refer to (old and
	// new versions of an updated resource), in the server's typed view.
	Touched  []string
	Patients []string
}
