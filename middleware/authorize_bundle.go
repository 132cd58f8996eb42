package middleware

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/fhirguard/fhirguard/fhirrest"
	"github.com/fhirguard/fhirguard/internal/fhirjson"
)

// bundle authorises a batch or transaction: every entry as if it were sent
// alone (scopes, compartment, body, stored version, conditional criteria,
// policies). Any refused entry refuses the whole Bundle with 403 and an
// OperationOutcome naming the entries (400 when an entry is malformed:
// the client must fix it whatever the token); a transaction must be all-or-nothing
// and this version treats a batch the same way. Entries whose criteria were
// narrowed are rewritten, and the response Bundle is verified entry by
// entry.
func (x *exchange) bundle() *refusal {
	b := x.d.Interaction.Bundle
	if b == nil {
		return badRequest("the Bundle could not be read", nil)
	}
	subs := make([]*exchange, len(b.Entries))
	urns := bundleURNs(b)
	var refused []string
	malformed := false // an entry the client must fix, whatever the token
	for i := range b.Entries {
		e := &b.Entries[i]
		if e.Err != nil {
			refused = append(refused, entryReason(i, "the entry is not a valid FHIR request"))
			malformed = true
			continue
		}
		sub, err := x.entryExchange(e)
		if err != nil {
			refused = append(refused, entryReason(i, "the entry could not be read"))
			malformed = true
			continue
		}
		sub.urns = urns
		if rf := sub.authorize(); rf != nil {
			refused = append(refused, entryReason(i, rf.msg))
			malformed = malformed || rf.status == http.StatusBadRequest
			continue
		}
		subs[i] = sub
	}
	if len(refused) > 0 {
		msg := "the " + b.Type + " was refused: " + strings.Join(refused, "; ")
		if malformed {
			// 400 invalid_request, as the entry alone would be answered.
			return badRequest(msg, nil)
		}
		return &refusal{status: http.StatusForbidden, msg: msg,
			ae: &AuthError{Status: http.StatusForbidden, Code: CodeInsufficientScope, Description: msg}}
	}
	if err := x.rewriteBundle(subs); err != nil {
		return badRequest("the Bundle could not be rewritten", err)
	}
	if e := x.policies(); e != nil {
		return e
	}
	verify := false
	for _, s := range subs {
		verify = verify || s.verify
	}
	if !verify {
		x.next.ServeHTTP(x.w, x.innerRequest(false))
		return nil
	}
	return x.serveBundleVerified(subs)
}

// bundleURNs maps the urn:uuid: and urn:oid: fullUrls of the entries that
// write to what the server will make of a reference to them: T/id for an
// update of T/id, the criteria for a conditional update, and "T/" plus a
// placeholder id that names no stored resource for a create.
func bundleURNs(b *fhirrest.Bundle) map[string]string {
	var urns map[string]string
	for _, e := range b.Entries {
		if e.Err != nil || !strings.HasPrefix(strings.ToLower(e.FullURL), "urn:") {
			continue
		}
		it := &e.Interaction
		target := ""
		switch {
		case it.Kind == fhirrest.Create:
			target = it.ResourceType + "/" + newResourceID
		case (it.Kind == fhirrest.Update || it.Kind == fhirrest.Patch) && !it.Conditional:
			target = it.ResourceType + "/" + it.ID
		case it.Kind == fhirrest.Update || it.Kind == fhirrest.Patch:
			target = it.ResourceType + "?" + it.Query.Encode()
		default:
			continue
		}
		if urns == nil {
			urns = map[string]string{}
		}
		urns[e.FullURL] = target
	}
	return urns
}

// newResourceID stands for the id a server assigns to a resource created in
// a Bundle; it is not a FHIR id, so it never names a stored resource.
const newResourceID = "(new)"

func entryReason(i int, why string) string {
	return "entry " + strconv.Itoa(i) + ": " + why
}

// entryExchange builds the request an entry would be if sent alone.
func (x *exchange) entryExchange(e *fhirrest.Entry) (*exchange, error) {
	target := x.a.realm + "/" + strings.TrimPrefix(e.Request.URL, "/")
	var body io.Reader = http.NoBody
	if len(e.Resource) > 0 {
		body = bytes.NewReader(e.Resource)
	}
	r, err := http.NewRequestWithContext(x.r.Context(), e.Interaction.Method, target, body)
	if err != nil {
		return nil, err
	}
	r.Header = x.r.Header.Clone()
	r.Header.Del("Content-Length")
	r.Header.Del("If-None-Exist")
	r.Header.Del("If-Match")
	r.Header.Set("Content-Type", "application/fhir+json")
	if e.Interaction.Kind == fhirrest.Patch {
		// A batch carries a patch as a Binary or Parameters resource; only
		// JSON Patch in a Binary can be checked.
		if p, ok := jsonPatchFromBinary(e.Resource); ok {
			r.Body = io.NopCloser(bytes.NewReader(p))
			r.Header.Set("Content-Type", "application/json-patch+json")
		}
	}
	if e.Request.IfNoneExist != "" {
		r.Header.Set("If-None-Exist", e.Request.IfNoneExist)
	}
	d := &Decision{Interaction: e.Interaction}
	return &exchange{a: x.a, next: x.next, r: r, tok: x.tok, d: d, dry: true}, nil
}

// jsonPatchFromBinary extracts a JSON Patch carried in a Binary resource.
func jsonPatchFromBinary(raw json.RawMessage) ([]byte, bool) {
	bin, err := fhirjson.Decode(raw, writeJSON)
	if err != nil || bin["resourceType"] != "Binary" {
		return nil, false
	}
	ct, _ := bin["contentType"].(string)
	data, _ := bin["data"].(string)
	if mediaType(ct) != "application/json-patch+json" {
		return nil, false
	}
	p, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return nil, false
	}
	return p, true
}

// rewriteBundle writes narrowed criteria back into the entries' request.url
// and request.ifNoneExist, and replaces the request body when anything
// changed.
func (x *exchange) rewriteBundle(subs []*exchange) error {
	changed := false
	for _, s := range subs {
		changed = changed || s.inner != nil
	}
	if !changed {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(x.r.Body, x.a.maxBody+1))
	if err != nil {
		return err
	}
	doc, err := fhirjson.Decode(body, writeJSON)
	if err != nil {
		return err
	}
	entries, _ := doc["entry"].([]any)
	if len(entries) != len(subs) {
		return errors.New("entry count changed")
	}
	for i, s := range subs {
		if s.inner == nil {
			continue
		}
		entry, _ := entries[i].(map[string]any)
		req, _ := entry["request"].(map[string]any)
		if req == nil {
			return errors.New("entry without request")
		}
		u, _ := req["url"].(string)
		path, _, _ := strings.Cut(u, "?")
		if s.inner.URL.RawQuery != "" {
			path += "?" + s.inner.URL.RawQuery
		}
		req["url"] = path
		if v := s.inner.Header.Get("If-None-Exist"); v != "" {
			req["ifNoneExist"] = v
		}
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	x.inner = x.r.Clone(x.r.Context())
	x.inner.Body = io.NopCloser(bytes.NewReader(out))
	x.inner.ContentLength = int64(len(out))
	x.inner.Header.Set("Content-Length", strconv.Itoa(len(out)))
	x.d.Narrowed = true
	return nil
}

// serveBundleVerified runs the handler and verifies each entry of the
// batch-response or transaction-response Bundle against its own request.
func (x *exchange) serveBundleVerified(subs []*exchange) *refusal {
	rec := newRecorder(x.a.maxResp)
	x.next.ServeHTTP(rec, x.innerRequest(true))
	if rec.overflow {
		return statusRefusal(http.StatusBadGateway, "the response is too large to verify", errResponseTooLarge)
	}
	if status := rec.code(); status < 200 || status > 299 || rec.body.Len() == 0 {
		writeRecorded(x.w, x.r, rec, rec.body.Bytes())
		return nil
	}
	if !isJSONMediaType(rec.header.Get("Content-Type")) {
		return statusRefusal(http.StatusNotAcceptable, "the response cannot be verified: only JSON can be returned to this token", errNotJSON)
	}
	body, err := rec.decodedBody()
	if err != nil {
		return statusRefusal(http.StatusBadGateway, "the response could not be verified", err)
	}
	doc, err := decodeJSONObject(body)
	if err != nil {
		return statusRefusal(http.StatusBadGateway, "the response could not be verified", err)
	}
	entries, _ := doc["entry"].([]any)
	if len(entries) != len(subs) {
		return statusRefusal(http.StatusBadGateway, "the response Bundle does not match the request", nil)
	}
	changed := false
	for i, s := range subs {
		if !s.verify {
			continue
		}
		entry, _ := entries[i].(map[string]any)
		if s.writeResp {
			if !s.visibleEntryAnswer(entry) {
				entries[i] = refusedEntry()
				changed = true
			}
			continue
		}
		res, _ := entry["resource"].(map[string]any)
		if res == nil {
			continue
		}
		s.readMode = true
		if s.bundleResp {
			c, err := s.filterBundle(res)
			if err != nil {
				return statusRefusal(http.StatusBadGateway, "the response could not be verified", err)
			}
			changed = changed || c
			if s.counting {
				out, e := s.countAnswer(res, s.matchesBefore, s.matchesKept)
				if e != nil {
					entries[i] = refusedSearchEntry(e.msg)
				} else {
					entry["resource"] = out
				}
				changed = true
			}
			continue
		}
		if rt, _ := res["resourceType"].(string); rt != s.d.Interaction.ResourceType || !s.accept(res, false) {
			s.logRemoved(res, "batch entry")
			entries[i] = map[string]any{"response": map[string]any{"status": "404 Not Found"}}
			changed = true
		}
	}
	if changed {
		if body, err = json.Marshal(doc); err != nil {
			return statusRefusal(http.StatusBadGateway, "the response could not be verified", err)
		}
		rec.header.Del("ETag")
	}
	writeRecorded(x.w, x.r, rec, body)
	return nil
}

// visibleEntryAnswer reports whether the answer to a write entry may be
// shown: its resource and its outcome must be an OperationOutcome or a
// resource the token may see.
func (x *exchange) visibleEntryAnswer(entry map[string]any) bool {
	if res, ok := entry["resource"]; ok {
		m, _ := res.(map[string]any)
		if m == nil || !x.visibleAnswer(m) {
			return false
		}
	}
	resp, _ := entry["response"].(map[string]any)
	if out, ok := resp["outcome"]; ok {
		m, _ := out.(map[string]any)
		if rt, _ := m["resourceType"].(string); rt != "OperationOutcome" {
			return false
		}
	}
	return true
}

// refusedSearchEntry answers a search entry whose count could not be
// verified.
func refusedSearchEntry(msg string) map[string]any {
	return map[string]any{"response": map[string]any{"status": "403 Forbidden", "outcome": map[string]any{
		"resourceType": "OperationOutcome",
		"issue":        []any{map[string]any{"severity": "error", "code": "forbidden", "diagnostics": msg}},
	}}}
}

// refusedEntry answers a write entry whose answer was withheld.
func refusedEntry() map[string]any {
	return map[string]any{"response": map[string]any{"status": "403 Forbidden", "outcome": map[string]any{
		"resourceType": "OperationOutcome",
		"issue": []any{map[string]any{"severity": "error", "code": "forbidden",
			"diagnostics": "the server's answer holds a resource the token may not see"}},
	}}}
}
