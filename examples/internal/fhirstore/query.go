package fhirstore

import (
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// kv is one query parameter, in request order.
type kv struct{ key, value string }

// parsePairs splits a query string (or a form body) into parameters. Unlike
// url.ParseQuery it keeps the order and rejects nothing but bad escapes.
func parsePairs(raw string) ([]kv, error) {
	var out []kv
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return nil, errorf(ErrInvalid, "bad escape in query parameter name")
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return nil, errorf(ErrInvalid, "bad escape in the value of %q", key)
		}
		out = append(out, kv{key, val})
	}
	return out, nil
}

// encodePairs renders parameters for a Bundle link, keeping ':' ',' and '$'
// readable.
func encodePairs(pairs []kv) string {
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(readableEscape(p.key))
		b.WriteByte('=')
		b.WriteString(readableEscape(p.value))
	}
	return b.String()
}

var readable = strings.NewReplacer("%3A", ":", "%2C", ",", "%24", "$", "%2F", "/")

func readableEscape(s string) string { return readable.Replace(url.QueryEscape(s)) }

// splitValues splits a parameter value on unescaped commas and removes the
// FHIR escapes (\, \| \$ \\) from each part.
func splitValues(s string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case c == ',':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(out, cur.String())
}

// splitToken splits "system|code" at the first unescaped '|'.
func splitToken(s string) (system, code string, hasBar bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			continue
		}
		if s[i] == '|' {
			return unescapeValue(s[:i]), unescapeValue(s[i+1:]), true
		}
	}
	return "", unescapeValue(s), false
}

func unescapeValue(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// splitValuesRaw splits on unescaped commas but keeps escapes, for token
// values whose '|' must still be told apart from an escaped one.
func splitValuesRaw(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			continue
		}
		if s[i] == ',' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// filter is one search parameter, all of whose values are alternatives.
type filter struct {
	name, modifier string
	values         []string    // raw values (escapes kept for tokens)
	dates          []dateQuery // parsed values of date parameters
}

// include is an _include or _revinclude.
type include struct {
	src, param, target string
	all                bool // _include=*
	iterate            bool
}

// searchQuery is a parsed search.
type searchQuery struct {
	types       []string
	filters     []filter
	compartment string // patient id of a compartment search, or ""
	count       int
	countGiven  bool
	offset      int
	summary     string
	elements    []string
	includes    []include
	revincludes []include
	used        []kv // parameters that took effect, for links
}

// resultParams are search control parameters that are never filters.
var ignoredResultParams = map[string]bool{
	"_sort": true, "_total": true, "_format": true, "_pretty": true,
	"_contained": true, "_containedType": true,
}

// parseSearch parses search parameters for the given resource types. A
// parameter no type defines is ignored (strict: 400); one that only some of
// several types define is refused, since it could not be applied to all.
func (s *Store) parseSearch(pairs []kv, types []string, strict bool) (*searchQuery, error) {
	q := &searchQuery{types: types, count: s.defCount}
	for _, p := range pairs {
		name, mod, _ := strings.Cut(p.key, ":")
		switch name {
		case "_count":
			n, err := strconv.Atoi(p.value)
			if err != nil || n < 0 || mod != "" {
				return nil, errorf(ErrInvalid, "_count must be a non-negative integer")
			}
			q.count, q.countGiven = min(n, s.maxCount), true
			continue
		case "_offset":
			n, err := strconv.Atoi(p.value)
			if err != nil || n < 0 || mod != "" {
				return nil, errorf(ErrInvalid, "_offset must be a non-negative integer")
			}
			q.offset = n
			continue
		case "_summary":
			switch p.value {
			case "count", "true", "false", "text", "data":
				q.summary = p.value
			default:
				return nil, errorf(ErrInvalid, "_summary must be one of true, false, text, data, count")
			}
		case "_elements":
			q.elements = append(q.elements, elementNames(p.value)...)
		case "_include", "_revinclude":
			if mod != "" && mod != "iterate" && mod != "recurse" {
				return nil, errorf(ErrInvalid, "unknown modifier %s:%s", name, mod)
			}
			inc, err := parseInclude(p.value, name == "_revinclude")
			if err != nil {
				return nil, err
			}
			inc.iterate = mod != ""
			if name == "_include" {
				q.includes = append(q.includes, inc)
			} else {
				q.revincludes = append(q.revincludes, inc)
			}
		case "_type":
			// handled by the caller for system searches; meaningless elsewhere
			continue
		case "_has":
			return nil, errorf(ErrUnsupported, "_has is not supported")
		default:
			if ignoredResultParams[name] {
				continue
			}
			if strings.Contains(name, ".") {
				return nil, errorf(ErrUnsupported, "chained parameter %q is not supported", p.key)
			}
			f, use, err := parseFilter(name, mod, p.value, types, strict)
			if err != nil {
				return nil, err
			}
			if !use {
				continue
			}
			q.filters = append(q.filters, f)
		}
		q.used = append(q.used, p)
	}
	sort.SliceStable(q.used, func(i, j int) bool { return q.used[i].key < q.used[j].key })
	return q, nil
}

func elementNames(v string) []string {
	var out []string
	for _, e := range strings.Split(v, ",") {
		e = strings.TrimSpace(e)
		if i := strings.IndexByte(e, '.'); i >= 0 {
			e = e[:i]
		}
		if e != "" {
			out = append(out, e)
		}
	}
	return out
}

// parseInclude parses "Type:param[:Target]" or "*".
func parseInclude(v string, rev bool) (include, error) {
	if v == "*" && !rev {
		return include{all: true}, nil
	}
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return include{}, errorf(ErrInvalid, "include %q must be Type:parameter[:TargetType]", v)
	}
	inc := include{src: parts[0], param: parts[1]}
	if !isR4Type(inc.src) {
		return include{}, errorf(ErrInvalid, "include %q: unknown resource type", v)
	}
	if inc.param == "*" && !rev {
		inc.all = true
	} else if d, ok := lookupParam(inc.src, inc.param); !ok || d.kind != referenceParam {
		return include{}, errorf(ErrInvalid, "include %q: %s has no reference parameter %q", v, inc.src, inc.param)
	}
	if len(parts) == 3 {
		inc.target = parts[2]
		if !isR4Type(inc.target) {
			return include{}, errorf(ErrInvalid, "include %q: unknown target type", v)
		}
	}
	return inc, nil
}

// parseFilter checks one search parameter against the searched types.
func parseFilter(name, mod, value string, types []string, strict bool) (filter, bool, error) {
	var kind paramKind
	known := 0
	for _, t := range types {
		if d, ok := lookupParam(t, name); ok {
			if kind != 0 && d.kind != kind {
				return filter{}, false, errorf(ErrInvalid, "parameter %q has different kinds across the searched types", name)
			}
			kind = d.kind
			known++
		}
	}
	switch {
	case known == 0 && strict:
		return filter{}, false, errorf(ErrInvalid, "unknown search parameter %q", name)
	case known == 0:
		return filter{}, false, nil
	case known < len(types):
		return filter{}, false, errorf(ErrInvalid, "parameter %q is not defined for every searched type", name)
	}
	if value == "" {
		return filter{}, false, nil // FHIR: parameters without a value are ignored
	}
	f := filter{name: name, modifier: mod}
	if mod == "missing" {
		if value != "true" && value != "false" {
			return filter{}, false, errorf(ErrInvalid, "%s:missing must be true or false", name)
		}
		f.values = []string{value}
		return f, true, nil
	}
	switch kind {
	case tokenParam:
		if mod != "" && mod != "not" {
			return filter{}, false, errorf(ErrUnsupported, "modifier :%s is not supported on token parameter %q", mod, name)
		}
		f.values = splitValuesRaw(value)
	case referenceParam:
		if mod != "" && !isR4Type(mod) {
			return filter{}, false, errorf(ErrUnsupported, "modifier :%s is not supported on reference parameter %q", mod, name)
		}
		f.values = splitValues(value)
	case stringParam:
		if mod != "" && mod != "exact" && mod != "contains" {
			return filter{}, false, errorf(ErrUnsupported, "modifier :%s is not supported on string parameter %q", mod, name)
		}
		f.values = splitValues(value)
	case dateParam:
		if mod != "" {
			return filter{}, false, errorf(ErrUnsupported, "modifier :%s is not supported on date parameter %q", mod, name)
		}
		for _, v := range splitValues(value) {
			dq, err := parseDateQuery(v)
			if err != nil {
				return filter{}, false, errorf(ErrInvalid, "parameter %q: %v", name, err)
			}
			f.dates = append(f.dates, dq)
		}
	}
	return f, true, nil
}

// dateQuery is a date search value: a prefix and the range the value's
// precision covers, [lo, hi).
type dateQuery struct {
	prefix string
	lo, hi time.Time
}

var datePrefixes = []string{"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"}

func parseDateQuery(v string) (dateQuery, error) {
	dq := dateQuery{prefix: "eq"}
	for _, pf := range datePrefixes {
		if strings.HasPrefix(v, pf) {
			dq.prefix, v = pf, v[len(pf):]
			break
		}
	}
	lo, hi, ok := dateRange(v)
	if !ok {
		return dq, errorf(ErrInvalid, "bad date %q", v)
	}
	dq.lo, dq.hi = lo, hi
	return dq, nil
}

// dateRange parses a FHIR date, dateTime or instant into the range its
// precision covers. Times without a zone are taken as UTC.
func dateRange(v string) (lo, hi time.Time, ok bool) {
	layouts := []struct {
		layout string
		next   func(time.Time) time.Time
	}{
		{"2006", func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }},
		{"2006-01", func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }},
		{"2006-01-02", func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }},
		{"2006-01-02T15:04Z07:00", func(t time.Time) time.Time { return t.Add(time.Minute) }},
		{"2006-01-02T15:04:05Z07:00", func(t time.Time) time.Time { return t.Add(time.Second) }},
		{"2006-01-02T15:04:05.999999999Z07:00", func(t time.Time) time.Time { return t.Add(time.Millisecond) }},
		{"2006-01-02T15:04", func(t time.Time) time.Time { return t.Add(time.Minute) }},
		{"2006-01-02T15:04:05", func(t time.Time) time.Time { return t.Add(time.Second) }},
	}
	for _, l := range layouts {
		if len(v) < 4 {
			break
		}
		t, err := time.Parse(l.layout, v)
		if err == nil {
			return t.UTC(), l.next(t).UTC(), true
		}
	}
	return time.Time{}, time.Time{}, false
}

// matches reports whether a stored range [tlo, thi) satisfies the query.
func (dq dateQuery) matches(tlo, thi time.Time) bool {
	within := !tlo.Before(dq.lo) && !thi.After(dq.hi)
	switch dq.prefix {
	case "ne":
		return !within
	case "gt":
		return thi.After(dq.hi)
	case "lt":
		return tlo.Before(dq.lo)
	case "ge":
		return within || thi.After(dq.hi)
	case "le":
		return within || tlo.Before(dq.lo)
	case "sa":
		return !tlo.Before(dq.hi)
	case "eb":
		return !thi.After(dq.lo)
	case "ap":
		return tlo.Before(dq.hi) && thi.After(dq.lo)
	}
	return within
}
