package discovery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Identifiers of the CapabilityStatement rest.security block.
const (
	// oauthURIsExtension is the URL of the SMART extension listing the
	// OAuth endpoints in CapabilityStatement.rest.security.
	oauthURIsExtension = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
	// securityServiceSystem is the R4 code system of
	// CapabilityStatement.rest.security.service.
	securityServiceSystem = "http://terminology.hl7.org/CodeSystem/restful-security-service"
	// securityServiceSMART is the code for SMART on FHIR in securityServiceSystem.
	securityServiceSMART = "SMART-on-FHIR"

	// securityServiceSystemSTU3 is the pre-R4 URL of the same code system,
	// recognised when patching an existing statement.
	securityServiceSystemSTU3 = "http://hl7.org/fhir/restful-security-service"
)

// restSecurity is the R4 CapabilityStatement.rest.security element as SMART
// App Launch 1.0 defined it (deprecated by 2.x, still read by v1 clients and
// Inferno's STU1 tests): the SMART-on-FHIR service coding and the oauth-uris
// extension with the authorize, token, register, manage, introspect and
// revoke endpoints. It marshals to FHIR R4 JSON.
type restSecurity struct {
	// Extension holds the oauth-uris extension.
	Extension []fhirExtension `json:"extension,omitempty"`
	// CORS says the FHIR API answers cross-origin requests (FHIR: "Server
	// adds CORS headers when responding to requests"). Only the server
	// knows: PatchCapabilityStatement takes it as an argument. The public
	// discovery documents allow any origin either way.
	CORS bool `json:"cors,omitempty"`
	// Service holds the SMART-on-FHIR coding.
	Service []codeableConcept `json:"service,omitempty"`
	// Description is free text.
	Description string `json:"description,omitempty"`
}

// fhirExtension is a FHIR Extension with a valueUri or nested extensions.
type fhirExtension struct {
	// URL names the extension (a sub-extension's short name inside
	// oauth-uris).
	URL string `json:"url"`
	// Extension holds nested extensions.
	Extension []fhirExtension `json:"extension,omitempty"`
	// ValueURI is the value of a sub-extension.
	ValueURI string `json:"valueUri,omitempty"`
}

// codeableConcept is a FHIR CodeableConcept.
type codeableConcept struct {
	// Coding holds the codes.
	Coding []coding `json:"coding,omitempty"`
	// Text is a plain-text rendering.
	Text string `json:"text,omitempty"`
}

// coding is a FHIR Coding.
type coding struct {
	// System is the code system URL.
	System string `json:"system,omitempty"`
	// Code is the code within System.
	Code string `json:"code,omitempty"`
	// Display is the code's display text.
	Display string `json:"display,omitempty"`
}

// restSecurity returns the CapabilityStatement rest.security block carrying
// d's endpoints: authorize, token, register, manage, introspect and
// revoke, each only when set. Its CORS is false: set it when the FHIR API
// answers cross-origin requests.
func (d *Document) restSecurity() *restSecurity {
	var uris []fhirExtension
	for _, e := range []struct{ name, url string }{
		{"authorize", d.AuthorizationEndpoint},
		{"token", d.TokenEndpoint},
		{"register", d.RegistrationEndpoint},
		{"manage", d.ManagementEndpoint},
		{"introspect", d.IntrospectionEndpoint},
		{"revoke", d.RevocationEndpoint},
	} {
		if e.url != "" {
			uris = append(uris, fhirExtension{URL: e.name, ValueURI: e.url})
		}
	}
	return &restSecurity{
		Extension: []fhirExtension{{URL: oauthURIsExtension, Extension: uris}},
		Service: []codeableConcept{{
			Coding: []coding{{System: securityServiceSystem, Code: securityServiceSMART, Display: securityServiceSMART}},
			Text:   "OAuth 2.0 with the SMART App Launch profile",
		}},
	}
}

// oauthURI returns the URL of one oauth-uris sub-extension ("authorize",
// "token", "register", "manage", "introspect", "revoke"), or "".
func (s *restSecurity) oauthURI(name string) string {
	for _, e := range s.Extension {
		if e.URL != oauthURIsExtension {
			continue
		}
		for _, sub := range e.Extension {
			if sub.URL == name {
				return sub.ValueURI
			}
		}
	}
	return ""
}

// errNotCapabilityStatement is wrapped by PatchCapabilityStatement when
// its input is not a JSON CapabilityStatement.
var errNotCapabilityStatement = errors.New("discovery: not a CapabilityStatement")

// PatchCapabilityStatement returns the JSON CapabilityStatement cs (a
// FHIR server's /metadata) with the SMART security block of doc merged in,
// so that /metadata and the well-known document agree: the SMART-on-FHIR
// service coding and the oauth-uris extension of SMART App Launch 1.0
// (still read by v1 clients and Inferno's STU1 tests) listing doc's
// authorize, token, register, manage, introspect and revoke endpoints.
// middleware.Guard does it for you with Config.PatchCapabilities.
//
// The block goes into the security element of every server rest entry
// (mode "server" or no mode); a statement without one gets a server rest
// entry. In each security element an existing oauth-uris extension and
// SMART-on-FHIR service coding are replaced, cors is set to cors (whether
// the FHIR API itself answers cross-origin requests; what the statement
// said before is not kept), and every other member, here and elsewhere
// in the statement, is kept as it was, in its order. Objects with a
// repeated member name are refused (JSON parsers disagree on which one
// counts). The output is indented when the input spans several lines,
// compact otherwise.
func PatchCapabilityStatement(cs []byte, doc *Document, cors bool) ([]byte, error) {
	if doc == nil {
		return nil, errors.New("discovery: PatchCapabilityStatement: nil document")
	}
	sec := doc.restSecurity()
	sec.CORS = cors
	return patchSecurity(cs, sec)
}

// patchSecurity merges sec into the CapabilityStatement cs (see
// PatchCapabilityStatement).
func patchSecurity(cs []byte, sec *restSecurity) ([]byte, error) {
	root, err := parseObject(cs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotCapabilityStatement, err)
	}
	var rt string
	if raw, ok := root.get("resourceType"); !ok || json.Unmarshal(raw, &rt) != nil || rt != "CapabilityStatement" {
		return nil, fmt.Errorf("%w: resourceType is not CapabilityStatement", errNotCapabilityStatement)
	}

	var rests []json.RawMessage
	if raw, ok := root.get("rest"); ok {
		if err := json.Unmarshal(raw, &rests); err != nil {
			return nil, fmt.Errorf("%w: rest is not an array", errNotCapabilityStatement)
		}
	}
	patched := false
	for i, raw := range rests {
		entry, err := parseObject(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: rest[%d] is not an object", errNotCapabilityStatement, i)
		}
		var mode string
		if m, ok := entry.get("mode"); ok {
			_ = json.Unmarshal(m, &mode)
		}
		if mode != "" && mode != "server" {
			continue
		}
		var secObj object
		if s, ok := entry.get("security"); ok {
			if secObj, err = parseObject(s); err != nil {
				return nil, fmt.Errorf("%w: rest[%d].security is not an object", errNotCapabilityStatement, i)
			}
		}
		if secObj, err = mergeSecurity(secObj, sec); err != nil {
			return nil, fmt.Errorf("%w: rest[%d].security: %v", errNotCapabilityStatement, i, err)
		}
		entry.set("security", secObj.marshal())
		rests[i] = entry.marshal()
		patched = true
	}
	if !patched {
		secObj, err := mergeSecurity(nil, sec)
		if err != nil {
			return nil, err
		}
		entry := object{{"mode", json.RawMessage(`"server"`)}, {"security", secObj.marshal()}}
		rests = append(rests, entry.marshal())
	}
	restJSON, err := json.Marshal(rests)
	if err != nil {
		return nil, err
	}
	root.set("rest", restJSON)
	out := root.marshal()
	var buf bytes.Buffer
	if bytes.Contains(cs, []byte("\n")) {
		err = json.Indent(&buf, out, "", "  ")
		buf.WriteByte('\n')
	} else {
		err = json.Compact(&buf, out)
	}
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// mergeSecurity merges sec into an existing security element.
func mergeSecurity(o object, sec *restSecurity) (object, error) {
	// extension: drop existing oauth-uris, ours first.
	var exts []json.RawMessage
	for _, e := range sec.Extension {
		b, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		exts = append(exts, b)
	}
	if raw, ok := o.get("extension"); ok {
		var old []json.RawMessage
		if err := json.Unmarshal(raw, &old); err != nil {
			return nil, errors.New("extension is not an array")
		}
		for _, e := range old {
			var head struct {
				URL string `json:"url"`
			}
			if json.Unmarshal(e, &head) == nil && head.URL == oauthURIsExtension {
				continue
			}
			exts = append(exts, e)
		}
	}
	if len(exts) > 0 {
		b, _ := json.Marshal(exts)
		o.set("extension", b)
	}
	if sec.CORS {
		o.set("cors", json.RawMessage("true"))
	} else {
		o.set("cors", json.RawMessage("false"))
	}
	// service: drop existing SMART-on-FHIR codings, ours first.
	var svcs []json.RawMessage
	for _, s := range sec.Service {
		b, err := json.Marshal(s)
		if err != nil {
			return nil, err
		}
		svcs = append(svcs, b)
	}
	if raw, ok := o.get("service"); ok {
		var old []json.RawMessage
		if err := json.Unmarshal(raw, &old); err != nil {
			return nil, errors.New("service is not an array")
		}
		for _, s := range old {
			var cc codeableConcept
			if json.Unmarshal(s, &cc) == nil && isSMARTService(cc) {
				continue
			}
			svcs = append(svcs, s)
		}
	}
	if len(svcs) > 0 {
		b, _ := json.Marshal(svcs)
		o.set("service", b)
	}
	if sec.Description != "" {
		if _, ok := o.get("description"); !ok {
			b, _ := json.Marshal(sec.Description)
			o.set("description", b)
		}
	}
	return o, nil
}

func isSMARTService(cc codeableConcept) bool {
	for _, c := range cc.Coding {
		if c.Code == securityServiceSMART && (c.System == securityServiceSystem || c.System == securityServiceSystemSTU3) {
			return true
		}
	}
	return false
}

// object is a JSON object that keeps its members' order and raw values.
type object []member

type member struct {
	key string
	val json.RawMessage
}

// parseObject reads one JSON object and nothing after it.
func parseObject(data []byte) (object, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	o := object{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errors.New("object key is not a string")
		}
		if _, dup := o.get(key); dup {
			// Parsers disagree on which duplicate wins; refuse the ambiguity.
			return nil, fmt.Errorf("member %q appears twice", key)
		}
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, err
		}
		o = append(o, member{key, val})
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return o, nil
}

// get returns the value of the first member named k.
func (o object) get(k string) (json.RawMessage, bool) {
	for _, m := range o {
		if m.key == k {
			return m.val, true
		}
	}
	return nil, false
}

// set replaces the member named k or appends it.
func (o *object) set(k string, v json.RawMessage) {
	for i := range *o {
		if (*o)[i].key == k {
			(*o)[i].val = v
			return
		}
	}
	*o = append(*o, member{k, v})
}

func (o object) marshal() json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(m.key)
		b.Write(kb)
		b.WriteByte(':')
		b.Write(m.val)
	}
	b.WriteByte('}')
	return b.Bytes()
}
