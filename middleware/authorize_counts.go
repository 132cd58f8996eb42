package middleware

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/fhirguard/fhirguard/compartment"
	"github.com/fhirguard/fhirguard/fhirrest"
)

// Counts and paging links are oracles: a server that counts or pages
// resources the token may not see tells the client how many there are,
// without ever sending one. The rules here decide what of the server's
// Bundle.total and Bundle.link the client may see, and answer count-only
// searches from verified entries.

// countPageSize is the page size the guard asks for when it counts the
// matches of a count-only search itself.
const countPageSize = 1000

// countOnly reports whether a query asks only for the number of matches
// (_summary=count, or a _count below 1).
func countOnly(q url.Values) bool {
	for _, s := range q["_summary"] {
		if s == "count" {
			return true
		}
	}
	for _, c := range q["_count"] {
		if n, err := strconv.Atoi(strings.TrimSpace(c)); err == nil && n < 1 {
			return true
		}
	}
	return false
}

// countSelf turns a count-only search the guard must verify into a search
// of entries: the handler is asked for one page of up to countPageSize
// full matches, which countAnswer then counts.
func (x *exchange) countSelf() *refusal {
	x.counting = true
	return x.editQuery(func(q url.Values) {
		for k := range q {
			switch name, _, _ := strings.Cut(k, ":"); name {
			case "_summary", "_count", "_elements", "_total", "_include", "_revinclude", "_sort":
				delete(q, k)
			}
		}
		q.Set("_count", strconv.Itoa(countPageSize))
	})
}

// editQuery changes the search parameters of the request the handler will
// see: those of its URL and, for a POST _search, those of its form body
// (FHIR combines both, so a parameter left in the form would still act).
func (x *exchange) editQuery(edit func(url.Values)) *refusal {
	if x.inner == nil {
		x.inner = x.r.Clone(x.r.Context())
	}
	q := x.inner.URL.Query()
	edit(q)
	x.inner.URL.RawQuery = q.Encode()
	x.inner.RequestURI = ""
	if x.dry || x.r.Method != http.MethodPost || !isFormBody(x.r) {
		return nil // a batch entry's parameters are all in its URL
	}
	// The classifier read the form (at most its limit) and gave it back:
	// read it again, edit it, and send the handler the edited form.
	b, err := io.ReadAll(io.LimitReader(x.r.Body, x.a.maxBody+1))
	if err != nil || int64(len(b)) > x.a.maxBody {
		return badRequest("the request body could not be read", err)
	}
	form, err := url.ParseQuery(string(b))
	if err != nil {
		return badRequest("the form body could not be read", err)
	}
	edit(form)
	enc := form.Encode()
	x.inner.Body = io.NopCloser(strings.NewReader(enc))
	x.inner.ContentLength = int64(len(enc))
	x.inner.GetBody = nil
	x.inner.Header.Del("Content-Length")
	return nil
}

// countAnswer replaces the verified page of a count-only search by the
// answer the client asked for: a Bundle holding only the number of
// visible matches. before and kept are the matches in the server's page
// and those the token may see.
func (x *exchange) countAnswer(doc map[string]any, before, kept int) (map[string]any, *refusal) {
	if pagedBundle(doc) {
		return nil, forbidden("", "the search matches more resources than the guard can count for this token (at most "+
			strconv.Itoa(countPageSize)+"); add criteria")
	}
	if t, ok := doc["total"]; ok && !numberIs(t, before) {
		// The server answered something else than the page asked for (it
		// ignored _count, or counted without returning entries).
		return nil, forbidden("", "the count cannot be verified for this token")
	}
	typ, _ := doc["type"].(string)
	if typ == "" {
		typ = "searchset"
	}
	return map[string]any{"resourceType": "Bundle", "type": typ, "total": json.Number(strconv.Itoa(kept))}, nil
}

// numberIs reports whether a decoded JSON value is the integer n.
func numberIs(v any, n int) bool {
	num, ok := v.(json.Number)
	if !ok {
		return false
	}
	i, err := strconv.Atoi(num.String())
	return err == nil && i == n
}

// settleTotalAndLinks applies the count and paging rules to a verified
// Bundle whose page held before matches, kept of them visible. It reports
// whether the Bundle changed.
//
//   - Bundle.total is passed on only when countTrusted; otherwise it is
//     recomputed from the visible matches when the page holds every match,
//     and removed when it does not.
//   - Paging links are passed on only when pagingTrusted; otherwise they
//     are removed, and the client sees the first page only.
func (x *exchange) settleTotalAndLinks(doc map[string]any, before, kept int) bool {
	changed := false
	paged := pagedBundle(doc)
	if t, has := doc["total"]; has && !x.countTrusted(doc) {
		switch {
		case !paged && numberIs(t, before):
			if !numberIs(t, kept) {
				doc["total"] = json.Number(strconv.Itoa(kept))
				changed = true
			}
		default:
			delete(doc, "total")
			changed = true
		}
	}
	if paged && !x.pagingTrusted(doc) {
		links, _ := doc["link"].([]any)
		out := links[:0:0]
		for _, l := range links {
			if !isPagingLink(l) {
				out = append(out, l)
			}
		}
		if len(out) == 0 {
			delete(doc, "link")
		} else {
			doc["link"] = out
		}
		x.a.log.LogAttrs(x.r.Context(), slog.LevelWarn, "fhirguard: paging links removed",
			slog.String("reason", "the server did not confirm the compartment narrowing"),
			slog.String("interaction", x.d.Interaction.Kind.String()))
		changed = true
	}
	return changed
}

// countTrusted reports whether the server's count can be passed on: every
// resource it counted is one the token may see. That holds when one access
// sees the whole type, or when every access is held to the same patient,
// without constraints, encounter or resource policies, compartments are
// read literally (the "no other patient" rule is not applied: the server
// cannot apply it) and the server confirmed the narrowing.
func (x *exchange) countTrusted(doc map[string]any) bool {
	it := &x.d.Interaction
	if len(x.a.resPols) > 0 || it.ResourceType == "" || it.ResourceType == "*" || len(x.acs) == 0 {
		return false
	}
	switch it.Kind {
	case fhirrest.SearchType, fhirrest.SearchCompartment:
	case fhirrest.Operation:
		if op := x.a.ops[it.Operation]; op == nil || !op.Search || it.OperationLevel != fhirrest.LevelType {
			return false
		}
	default:
		return false
	}
	patient := ""
	for _, ac := range x.acs {
		if ac.open() {
			return true
		}
		if !ac.grant.Unconstrained || ac.patient == "" || ac.encounter != "" || (patient != "" && ac.patient != patient) {
			return false
		}
		patient = ac.patient
	}
	return x.a.literal && x.pagingTrusted(doc)
}

// pagingTrusted reports whether the server's paging links can be passed
// on: they may reveal how many resources match, so the server must have
// applied the compartment the token is held to. That is known when the
// compartment is in the path (a compartment search, $everything, an
// instance history), when the Bundle's self link (which FHIR servers use
// to state the parameters they applied) binds the search to the patient,
// or when AuthorizeConfig.NarrowingHonoured declares that the server never
// ignores a narrowing parameter.
func (x *exchange) pagingTrusted(doc map[string]any) bool {
	it := &x.d.Interaction
	patient := ""
	for _, ac := range x.acs {
		if ac.patient == "" {
			return true
		}
		patient = ac.patient
	}
	if patient == "" {
		return true // system searches: patient-held accesses were dropped
	}
	switch it.Kind {
	case fhirrest.SearchCompartment, fhirrest.HistoryInstance:
		return true
	case fhirrest.Operation:
		if op := x.a.ops[it.Operation]; op == nil || !op.Search || it.OperationLevel != fhirrest.LevelType {
			return true // $everything: bound by the path
		}
	case fhirrest.SearchType:
	default:
		return false
	}
	if commonPatient(x.acs) == "" {
		return false
	}
	rt := it.ResourceType
	if !x.a.memberType(rt) && rt != "Patient" {
		return true // a shared type: not narrowed, every instance visible
	}
	if x.a.narrowingHonoured {
		return true
	}
	self := selfLink(doc)
	if self == nil {
		return false
	}
	q := self.Query()
	if !x.a.checker.Binds(rt, q, compartment.Patient, patient) {
		return false
	}
	enc := commonEncounter(x.acs)
	return enc == "" || rt == "Patient" || x.a.checker.Binds(rt, q, compartment.Encounter, enc)
}

// selfLink returns the parsed URL of the Bundle's self link, or nil.
func selfLink(doc map[string]any) *url.URL {
	links, _ := doc["link"].([]any)
	for _, l := range links {
		lm, _ := l.(map[string]any)
		if rel, _ := lm["relation"].(string); rel != "self" {
			continue
		}
		s, _ := lm["url"].(string)
		u, err := url.Parse(s)
		if err != nil {
			return nil
		}
		return u
	}
	return nil
}

// isPagingLink reports whether a Bundle.link element leads to another page.
func isPagingLink(l any) bool {
	lm, _ := l.(map[string]any)
	switch rel, _ := lm["relation"].(string); rel {
	case "next", "previous", "prev", "first", "last":
		return true
	}
	return false
}
