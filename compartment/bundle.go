package compartment

import (
	"errors"
	"sort"
	"strconv"
)

// ErrNotBundle reports JSON that is a resource but not a Bundle.
var ErrNotBundle = errors.New("compartment: not a Bundle")

// Entry is one element of Bundle.entry as read by CheckBundle.
type Entry struct {
	// Start and End are the byte offsets of the entry in the Bundle.
	Start, End int
	// ResourceType and ID are those of entry.resource ("" when absent).
	ResourceType, ID string
	// Mode is entry.search.mode: "match", "include", "outcome" or "".
	Mode string
	// HasResource is set when the entry holds a resource with a resourceType.
	HasResource bool
	// Member is set when entry.resource is in the compartment instance.
	Member bool
}

// Bundle is a JSON Bundle read by CheckBundle: the entries with the
// membership of their resources, and what Without needs to rewrite it.
type Bundle struct {
	// Entries lists Bundle.entry in order.
	Entries []Entry

	data []byte
	// total value span, -1 when absent or not a non-negative integer
	totalStart, totalEnd int
	total                int64
	// entry member: key start, array start and end (after ']'), end of the
	// previous member's value and start of the next member's key (-1: none)
	entryKey, arrStart, arrEnd, prevEnd, nextKey int
}

// CheckBundle reads a JSON Bundle (a search result, history or batch
// response) in one validating pass and reports, for every entry, where it
// is and whether entry.resource is in the compartment instance t/id, by the
// same rules as Member. Only entry.resource is checked; nested Bundles are
// not entered. The errors are those of Member, plus ErrNotBundle.
func (c *Checker) CheckBundle(bundle []byte, t Type, id string) (*Bundle, error) {
	d, err := c.prepare(t, id)
	if err != nil {
		return nil, err
	}
	s := scanner{data: bundle}
	b := &Bundle{data: bundle, totalStart: -1, totalEnd: -1, entryKey: -1, arrStart: -1, prevEnd: -1, nextKey: -1}
	if s.peek() != '{' {
		s.skip()
		s.end()
		if s.err == nil {
			s.err = ErrNotResource
		}
		return nil, s.err
	}
	s.pos++
	s.depth++
	var (
		rt                        []byte
		haveRT, haveTotal, haveEn bool
		lastEnd                   = -1
		afterEntry                bool
	)
	if s.peek() == '}' {
		s.pos++
	} else {
		for s.err == nil {
			s.ws()
			keyStart := s.pos
			key := s.key()
			if s.err != nil {
				break
			}
			if afterEntry {
				b.nextKey, afterEntry = keyStart, false
			}
			switch string(key) {
			case "resourceType":
				if haveRT {
					s.fail("duplicate resourceType")
					break
				}
				haveRT = true
				if s.peek() == '"' {
					rt = s.strCopy()
				} else {
					s.skip()
				}
			case "total":
				if haveTotal {
					s.fail("duplicate total")
					break
				}
				haveTotal = true
				s.ws()
				start := s.pos
				s.skip()
				if n, err := strconv.ParseInt(string(s.data[start:s.pos]), 10, 64); err == nil && n >= 0 {
					b.totalStart, b.totalEnd, b.total = start, s.pos, n
				}
			case "entry":
				if haveEn {
					s.fail("duplicate entry")
					break
				}
				haveEn = true
				b.entryKey, b.prevEnd = keyStart, lastEnd
				if s.peek() != '[' {
					s.skip()
					break
				}
				b.arrStart = s.pos
				s.entries(c, d, t, id, b)
				b.arrEnd = s.pos
				afterEntry = true
			default:
				s.skip()
			}
			lastEnd = s.pos
			if !s.next('}') {
				break
			}
		}
	}
	s.depth--
	s.end()
	if s.err != nil {
		return nil, s.err
	}
	if rt == nil {
		return nil, ErrNotResource
	}
	if string(rt) != "Bundle" {
		return nil, ErrNotBundle
	}
	return b, nil
}

// entries reads the Bundle.entry array at s.pos.
func (s *scanner) entries(c *Checker, d *Definition, t Type, id string, b *Bundle) {
	s.pos++
	s.depth++
	if s.peek() == ']' {
		s.pos++
		s.depth--
		return
	}
	for s.err == nil {
		s.ws()
		e := Entry{Start: s.pos}
		if s.peek() == '{' {
			s.entry(c, d, t, id, &e)
		} else {
			s.skip()
		}
		e.End = s.pos
		b.Entries = append(b.Entries, e)
		if !s.next(']') {
			break
		}
	}
	s.depth--
}

// entry reads one entry object.
func (s *scanner) entry(c *Checker, d *Definition, t Type, id string, e *Entry) {
	s.pos++
	s.depth++
	if s.peek() == '}' {
		s.pos++
		s.depth--
		return
	}
	var haveRes, haveSearch bool
	for s.err == nil {
		key := s.key()
		if s.err != nil {
			break
		}
		switch string(key) {
		case "resource":
			if haveRes {
				s.fail("duplicate resource")
				break
			}
			haveRes = true
			if s.peek() != '{' {
				s.skip()
				break
			}
			m := matcher{c: c, typ: typeNames[t], id: id}
			ok, rt, rid := s.resourceObject(c, d, &m)
			if rt != nil {
				e.HasResource, e.Member = true, ok
				e.ResourceType = string(rt)
				e.ID = string(rid)
			}
		case "search":
			if haveSearch {
				s.fail("duplicate search")
				break
			}
			haveSearch = true
			e.Mode = s.searchMode()
		default:
			s.skip()
		}
		if !s.next('}') {
			break
		}
	}
	s.depth--
}

// searchMode reads entry.search and returns its mode.
func (s *scanner) searchMode() string {
	if s.peek() != '{' {
		s.skip()
		return ""
	}
	s.pos++
	s.depth++
	mode := ""
	if s.peek() == '}' {
		s.pos++
		s.depth--
		return ""
	}
	seen := false
	for s.err == nil {
		key := s.key()
		if s.err != nil {
			break
		}
		if string(key) == "mode" {
			if seen {
				s.fail("duplicate mode")
				break
			}
			seen = true
			if s.peek() == '"' {
				b, _ := s.str()
				switch string(b) {
				case "match":
					mode = "match"
				case "include":
					mode = "include"
				case "outcome":
					mode = "outcome"
				default:
					mode = string(b)
				}
			} else {
				s.skip()
			}
		} else {
			s.skip()
		}
		if !s.next('}') {
			break
		}
	}
	s.depth--
	return mode
}

// edit replaces data[start:end] with repl followed by the entries.
type edit struct {
	start, end int
	repl       []byte
	entries    []*Entry
}

// Without returns the Bundle JSON without the entries for which drop
// returns true. Bundle.total, when present, is reduced by the number of
// dropped entries whose mode is "match" or empty; when no entry is left the
// entry member is removed (FHIR JSON has no empty arrays). Other bytes are
// copied unchanged.
func (b *Bundle) Without(drop func(e *Entry) bool) []byte {
	keep := make([]*Entry, 0, len(b.Entries))
	matches := int64(0)
	for i := range b.Entries {
		e := &b.Entries[i]
		if drop(e) {
			if e.Mode == "match" || e.Mode == "" {
				matches++
			}
			continue
		}
		keep = append(keep, e)
	}
	if len(keep) == len(b.Entries) {
		return append([]byte(nil), b.data...)
	}
	var edits []edit
	if b.totalStart >= 0 {
		n := b.total - matches
		if n < 0 {
			n = 0
		}
		edits = append(edits, edit{start: b.totalStart, end: b.totalEnd, repl: strconv.AppendInt(nil, n, 10)})
	}
	switch {
	case len(keep) > 0:
		edits = append(edits, edit{start: b.arrStart + 1, end: b.arrEnd - 1, entries: keep})
	case b.prevEnd >= 0:
		edits = append(edits, edit{start: b.prevEnd, end: b.arrEnd})
	case b.nextKey >= 0:
		edits = append(edits, edit{start: b.entryKey, end: b.nextKey})
	default:
		edits = append(edits, edit{start: b.entryKey, end: b.arrEnd})
	}
	sort.Slice(edits, func(i, j int) bool { return edits[i].start < edits[j].start })
	out := make([]byte, 0, len(b.data))
	pos := 0
	for _, e := range edits {
		out = append(out, b.data[pos:e.start]...)
		out = append(out, e.repl...)
		for i, k := range e.entries {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, b.data[k.Start:k.End]...)
		}
		pos = e.end
	}
	return append(out, b.data[pos:]...)
}
