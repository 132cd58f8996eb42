package fhirstore

import (
	"encoding/json"
	"sort"
	"strconv"
)

// Bundle shapes, in FHIR element order.
type bundle struct {
	ResourceType string        `json:"resourceType"`
	Type         string        `json:"type"`
	Total        *int          `json:"total,omitempty"`
	Link         []bundleLink  `json:"link,omitempty"`
	Entry        []bundleEntry `json:"entry,omitempty"`
}

type bundleLink struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

type bundleEntry struct {
	FullURL  string          `json:"fullUrl,omitempty"`
	Resource json.RawMessage `json:"resource,omitempty"`
	Search   *entrySearch    `json:"search,omitempty"`
	Request  *entryRequest   `json:"request,omitempty"`
	Response *entryResponse  `json:"response,omitempty"`
}

type entrySearch struct {
	Mode string `json:"mode"`
}

type entryRequest struct {
	Method string `json:"method"`
	URL    string `json:"url"`
}

type entryResponse struct {
	Status       string          `json:"status"`
	Location     string          `json:"location,omitempty"`
	Etag         string          `json:"etag,omitempty"`
	LastModified string          `json:"lastModified,omitempty"`
	Outcome      json.RawMessage `json:"outcome,omitempty"`
}

// hit is one resource of a search result.
type hit struct {
	typ, id string
	v       *version
}

// inCompartment reports whether a resource is in the compartment of
// Patient/pid.
func inCompartment(typ string, obj map[string]any, pid, base string) bool {
	if typ == "Patient" && obj["id"] == pid {
		return true
	}
	for _, name := range patientCompartment[typ] {
		d, _ := lookupParam(typ, name)
		for _, r := range refsOf(obj, d, base) {
			if r.typ == "Patient" && r.id == pid {
				return true
			}
		}
	}
	return false
}

// compartmentTypes are the types a Patient compartment search covers.
func compartmentTypes() []string { return sortedKeys(patientCompartment) }

// run returns every live resource matching the query, sorted by type and id.
func (s *Store) run(q *searchQuery, base string) []hit {
	var out []hit
	types := append([]string(nil), q.types...)
	sort.Strings(types)
	for _, typ := range types {
		byID := s.res[typ]
		for _, id := range sortedKeys(byID) {
			v := byID[id].current()
			if v.deleted {
				continue
			}
			if q.compartment != "" && !inCompartment(typ, v.obj, q.compartment, base) {
				continue
			}
			ok := true
			for _, f := range q.filters {
				if !matchFilter(typ, v.obj, f, base) {
					ok = false
					break
				}
			}
			if ok {
				out = append(out, hit{typ, id, v})
			}
		}
	}
	return out
}

// resolveIncludes returns the _include and _revinclude resources of a page,
// excluding the page itself, sorted by type and id.
func (s *Store) resolveIncludes(q *searchQuery, page []hit, base string) []hit {
	if len(q.includes) == 0 && len(q.revincludes) == 0 {
		return nil
	}
	seen := make(map[localRef]bool, len(page))
	for _, h := range page {
		seen[localRef{h.typ, h.id}] = true
	}
	var extra []hit
	add := func(r localRef) bool {
		if seen[r] {
			return false
		}
		v := s.lookup(r.typ, r.id)
		if v == nil {
			return false
		}
		seen[r] = true
		extra = append(extra, hit{r.typ, r.id, v})
		return true
	}
	// _include, repeated over the new resources for :iterate.
	frontier := page
	for round := 0; len(frontier) > 0; round++ {
		var next []hit
		for _, inc := range q.includes {
			if round > 0 && !inc.iterate {
				continue
			}
			for _, h := range frontier {
				var refs []localRef
				switch {
				case inc.all && (inc.src == "" || inc.src == h.typ):
					refs = allRefs(h.v.obj, base)
				case inc.src == h.typ:
					d, _ := lookupParam(h.typ, inc.param)
					refs = refsOf(h.v.obj, d, base)
				}
				for _, r := range refs {
					if inc.target != "" && r.typ != inc.target {
						continue
					}
					if add(r) {
						next = append(next, extra[len(extra)-1])
					}
				}
			}
		}
		frontier = next
	}
	// _revinclude: resources of src whose param points at a page resource.
	if len(q.revincludes) > 0 {
		targets := make(map[localRef]bool, len(page))
		for _, h := range page {
			targets[localRef{h.typ, h.id}] = true
		}
		for _, inc := range q.revincludes {
			d, _ := lookupParam(inc.src, inc.param)
			byID := s.res[inc.src]
			for _, id := range sortedKeys(byID) {
				v := byID[id].current()
				if v.deleted {
					continue
				}
				for _, r := range refsOf(v.obj, d, base) {
					if targets[r] && (inc.target == "" || inc.target == r.typ) {
						add(localRef{inc.src, id})
						break
					}
				}
			}
		}
	}
	sort.Slice(extra, func(i, j int) bool {
		if extra[i].typ != extra[j].typ {
			return extra[i].typ < extra[j].typ
		}
		return extra[i].id < extra[j].id
	})
	return extra
}

// searchBundle runs a search and renders one page as a searchset Bundle.
// path is the request path below the base used in links ("Observation",
// "Patient/123/*", "").
func (s *Store) searchBundle(q *searchQuery, base, path string) []byte {
	matches := s.run(q, base)
	total := len(matches)
	b := bundle{ResourceType: "Bundle", Type: "searchset", Total: &total}
	link := func(rel string, offset int, withCount bool) bundleLink {
		pairs := append([]kv(nil), q.used...)
		if withCount {
			pairs = append(pairs, kv{"_count", strconv.Itoa(q.count)})
		}
		if offset > 0 {
			pairs = append(pairs, kv{"_offset", strconv.Itoa(offset)})
		}
		u := base
		if path != "" {
			u += "/" + path
		}
		if len(pairs) > 0 {
			u += "?" + encodePairs(pairs)
		}
		return bundleLink{Relation: rel, URL: u}
	}
	b.Link = append(b.Link, link("self", q.offset, q.countGiven))
	if q.summary == "count" || q.count == 0 {
		return mustEncode(b)
	}
	start := min(q.offset, total)
	end := min(start+q.count, total)
	page := matches[start:end]
	if end < total {
		b.Link = append(b.Link, link("next", end, true))
	}
	if start > 0 {
		b.Link = append(b.Link, link("previous", max(start-q.count, 0), true))
	}
	for _, h := range page {
		b.Entry = append(b.Entry, s.searchEntry(h, base, "match", q))
	}
	for _, h := range s.resolveIncludes(q, page, base) {
		b.Entry = append(b.Entry, s.searchEntry(h, base, "include", q))
	}
	return mustEncode(b)
}

func (s *Store) searchEntry(h hit, base, mode string, q *searchQuery) bundleEntry {
	return bundleEntry{
		FullURL:  base + "/" + h.typ + "/" + h.id,
		Resource: subset(h.v, q.summary, q.elements),
		Search:   &entrySearch{Mode: mode},
	}
}

// subset applies _summary (text, data, true) and _elements to a resource.
// The result carries the SUBSETTED tag. Elements are top-level only.
func subset(v *version, summary string, elements []string) json.RawMessage {
	if (summary == "" || summary == "false" || summary == "count") && len(elements) == 0 {
		return v.body
	}
	out := make(map[string]any, len(v.obj))
	switch {
	case summary == "text":
		for _, k := range []string{"resourceType", "id", "meta", "text"} {
			if x, ok := v.obj[k]; ok {
				out[k] = x
			}
		}
	case summary == "data" || summary == "true":
		for k, x := range v.obj {
			if k != "text" {
				out[k] = x
			}
		}
	default: // _elements
		for _, k := range append([]string{"resourceType", "id", "meta"}, elements...) {
			if x, ok := v.obj[k]; ok {
				out[k] = x
			}
		}
	}
	meta, _ := out["meta"].(map[string]any)
	nm := make(map[string]any, len(meta)+1)
	for k, x := range meta {
		nm[k] = x
	}
	tags, _ := nm["tag"].([]any)
	nm["tag"] = append(append([]any(nil), tags...), map[string]any{
		"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
		"code":   "SUBSETTED",
	})
	out["meta"] = nm
	return encodeResource(out)
}
