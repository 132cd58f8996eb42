package fhirstore

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MediaType is the media type of every response body.
const MediaType = "application/fhir+json"

// Paging defaults of Config.
const (
	DefaultCount = 20   // page size when a search has no _count
	MaxCount     = 1000 // largest page size a client may ask for
)

// maxBody bounds request bodies.
const maxBody = 8 << 20

// Config configures a Store. The zero Config is usable: the store is served
// at the root of the handler, links are built from the request's Host, and
// the clock is time.Now.
type Config struct {
	// BasePath is the URL path the handler is mounted at, such as "/fhir".
	// Requests whose path does not start with it get 404. Empty means "/".
	// It is matched against the request's full path, as http.ServeMux and
	// chi's Mount pass it; behind http.StripPrefix, leave it empty.
	BasePath string

	// BaseURL is the absolute FHIR base used in fullUrl, Location and
	// Bundle links, such as "https://ehr.example.org/fhir". It must be an
	// absolute http(s) URL without query or fragment. When empty, the base
	// is built from each request: http or https (by r.TLS), r.Host and
	// BasePath. Forwarding headers are never trusted.
	BaseURL string

	// Security, when set, is inserted as CapabilityStatement.rest[0].security
	// in /metadata. It must be a JSON object; it is not otherwise checked.
	// The examples put the SMART block here (the oauth-uris extension and the
	// SMART-on-FHIR service coding).
	Security json.RawMessage

	// DefaultCount is the page size of searches without _count; 0 means
	// DefaultCount. MaxCount caps _count; 0 means MaxCount.
	DefaultCount, MaxCount int

	// Now is the clock used for meta.lastUpdated; nil means time.Now.
	Now func() time.Time
}

// Store is an in-memory FHIR R4 server. It is an http.Handler and safe for
// concurrent use. It performs no authorization at all: it serves whatever it
// is asked, which is exactly what the fhirguard middleware in front of it
// must prevent.
type Store struct {
	basePath string
	baseURL  string
	security json.RawMessage
	defCount int
	maxCount int
	now      func() time.Time

	mu      sync.RWMutex
	res     map[string]map[string]*record // type → id → record
	history []histRef                     // every version, oldest first
	seq     int                           // last server-assigned id number
	journal *[]undo                       // non-nil inside a transaction
}

// record is every version of one resource.
type record struct {
	typ, id  string
	versions []*version
}

// version is one stored version. A deleted version has no body.
type version struct {
	vid      int
	deleted  bool
	method   string // POST, PUT, PATCH or DELETE
	modified time.Time
	body     []byte         // encoded resource
	obj      map[string]any // parsed body; never mutated
}

type histRef struct {
	rec *record
	idx int
}

type undo struct {
	rec     *record
	prevLen int
}

func (r *record) current() *version { return r.versions[len(r.versions)-1] }

// New validates cfg and returns an empty store. Call Seed to load the demo
// data.
func New(cfg Config) (*Store, error) {
	s := &Store{
		res:      make(map[string]map[string]*record),
		defCount: cfg.DefaultCount,
		maxCount: cfg.MaxCount,
		now:      cfg.Now,
	}
	bp := cfg.BasePath
	if bp == "/" {
		bp = ""
	}
	if bp != "" && (!strings.HasPrefix(bp, "/") || strings.HasSuffix(bp, "/") || strings.ContainsAny(bp, "?#%\\") || strings.Contains(bp, "//")) {
		return nil, fmt.Errorf("%w: BasePath %q must start with / and not end with /", ErrConfig, cfg.BasePath)
	}
	s.basePath = bp
	if cfg.BaseURL != "" {
		u, err := url.Parse(cfg.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("%w: BaseURL %q must be an absolute http(s) URL without query, fragment or user info", ErrConfig, cfg.BaseURL)
		}
		s.baseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	}
	if len(cfg.Security) > 0 {
		m, err := decodeObject(cfg.Security)
		if err != nil {
			return nil, fmt.Errorf("%w: Security must be a JSON object: %v", ErrConfig, err)
		}
		s.security = json.RawMessage(mustEncode(m))
	}
	if s.defCount < 0 || s.maxCount < 0 {
		return nil, fmt.Errorf("%w: DefaultCount and MaxCount must not be negative", ErrConfig)
	}
	if s.maxCount == 0 {
		s.maxCount = MaxCount
	}
	if s.defCount == 0 {
		s.defCount = min(DefaultCount, s.maxCount)
	}
	if s.defCount > s.maxCount {
		return nil, fmt.Errorf("%w: DefaultCount %d is above MaxCount %d", ErrConfig, s.defCount, s.maxCount)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Get returns the current version of a resource, as the store would serve
// it. It fails with ErrNotFound or ErrGone.
func (s *Store) Get(resourceType, id string) (json.RawMessage, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, err := s.currentVersion(resourceType, id)
	if err != nil {
		return nil, err
	}
	return append(json.RawMessage(nil), v.body...), nil
}

// Put stores a resource under the id it carries, creating it or adding a
// new version, as an update (PUT) would. It returns the new version id.
func (s *Store) Put(resource json.RawMessage) (versionID string, err error) {
	obj, err := decodeObject(resource)
	if err != nil {
		return "", errorf(ErrInvalid, "resource: %v", err)
	}
	typ, _ := obj["resourceType"].(string)
	id, _ := obj["id"].(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	v, _, err := s.update(typ, id, obj, "")
	if err != nil {
		return "", err
	}
	return strconv.Itoa(v.vid), nil
}

// Len returns the number of resources that exist (are not deleted).
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, byID := range s.res {
		for _, r := range byID {
			if !r.current().deleted {
				n++
			}
		}
	}
	return n
}

// currentVersion returns the live current version or ErrNotFound / ErrGone.
func (s *Store) currentVersion(typ, id string) (*version, error) {
	r := s.res[typ][id]
	if r == nil {
		return nil, errorf(ErrNotFound, "%s/%s is not known", typ, id)
	}
	v := r.current()
	if v.deleted {
		return nil, errorf(ErrGone, "%s/%s has been deleted", typ, id)
	}
	return v, nil
}

// lookup returns the live current version or nil.
func (s *Store) lookup(typ, id string) *version {
	r := s.res[typ][id]
	if r == nil || r.current().deleted {
		return nil
	}
	return r.current()
}

// checkResource validates the body of a create or update.
func checkResource(typ string, obj map[string]any) error {
	rt, ok := obj["resourceType"].(string)
	if !ok {
		return errorf(ErrInvalid, "the resource has no resourceType")
	}
	if rt != typ {
		return errorf(ErrInvalid, "resourceType %q does not match the URL type %q", rt, typ)
	}
	if !isR4Type(typ) {
		return errorf(ErrNotFound, "unknown resource type %q", typ)
	}
	if m, ok := obj["meta"]; ok {
		if _, ok := m.(map[string]any); !ok {
			return errorf(ErrInvalid, "meta must be an object")
		}
	}
	return nil
}

// newID returns an unused server-assigned id for typ.
func (s *Store) newID(typ string) string {
	for {
		s.seq++
		id := strconv.Itoa(s.seq)
		if s.res[typ][id] == nil {
			return id
		}
	}
}

// write appends a version to the resource. obj is owned by the store
// afterwards; its id and meta are set here.
func (s *Store) write(typ, id, method string, obj map[string]any) *version {
	byID := s.res[typ]
	if byID == nil {
		byID = make(map[string]*record)
		s.res[typ] = byID
	}
	r := byID[id]
	if r == nil {
		r = &record{typ: typ, id: id}
		byID[id] = r
	}
	if s.journal != nil {
		*s.journal = append(*s.journal, undo{rec: r, prevLen: len(r.versions)})
	}
	vid := 1
	if n := len(r.versions); n > 0 {
		vid = r.versions[n-1].vid + 1
	}
	v := &version{vid: vid, method: method, modified: s.now().UTC().Truncate(time.Millisecond)}
	if obj != nil {
		obj["id"] = id
		meta, _ := obj["meta"].(map[string]any)
		nm := make(map[string]any, len(meta)+2)
		for k, x := range meta {
			nm[k] = x
		}
		nm["versionId"] = strconv.Itoa(vid)
		nm["lastUpdated"] = formatInstant(v.modified)
		obj["meta"] = nm
		v.obj = obj
		v.body = encodeResource(obj)
	} else {
		v.deleted = true
	}
	r.versions = append(r.versions, v)
	s.history = append(s.history, histRef{rec: r, idx: len(r.versions) - 1})
	return v
}

// rollback undoes the writes recorded in journal (newest first).
func (s *Store) rollback(journal []undo, histLen, seq int) {
	for i := len(journal) - 1; i >= 0; i-- {
		u := journal[i]
		u.rec.versions = u.rec.versions[:u.prevLen]
		if u.prevLen == 0 {
			delete(s.res[u.rec.typ], u.rec.id)
			if len(s.res[u.rec.typ]) == 0 {
				delete(s.res, u.rec.typ)
			}
		}
	}
	s.history = s.history[:histLen]
	s.seq = seq
}

// create stores a new resource with a server-assigned id (or forcedID,
// chosen by a transaction).
func (s *Store) create(typ string, obj map[string]any, forcedID string) (*version, string, error) {
	if err := checkResource(typ, obj); err != nil {
		return nil, "", err
	}
	id := forcedID
	if id == "" {
		id = s.newID(typ)
	}
	return s.write(typ, id, "POST", obj), id, nil
}

// update stores a new version under a client-chosen id, creating the
// resource when it does not exist (update-as-create). ifMatch, when set, is
// an ETag the current version must have. created reports update-as-create.
func (s *Store) update(typ, id string, obj map[string]any, ifMatch string) (v *version, created bool, err error) {
	if err := checkResource(typ, obj); err != nil {
		return nil, false, err
	}
	if !validID(id) {
		return nil, false, errorf(ErrInvalid, "invalid resource id %q", id)
	}
	bodyID, ok := obj["id"].(string)
	if !ok || bodyID != id {
		return nil, false, errorf(ErrInvalid, "the resource id must be present and equal the URL id %q", id)
	}
	r := s.res[typ][id]
	if ifMatch != "" {
		if err := checkIfMatch(r, ifMatch); err != nil {
			return nil, false, err
		}
	}
	created = r == nil || r.current().deleted
	return s.write(typ, id, "PUT", obj), created, nil
}

// remove deletes a resource. Deleting a deleted resource changes nothing.
func (s *Store) remove(typ, id, ifMatch string) error {
	r := s.res[typ][id]
	if r == nil {
		return errorf(ErrNotFound, "%s/%s is not known", typ, id)
	}
	if ifMatch != "" {
		if err := checkIfMatch(r, ifMatch); err != nil {
			return err
		}
	}
	if !r.current().deleted {
		s.write(typ, id, "DELETE", nil)
	}
	return nil
}

// checkIfMatch compares an If-Match header with the current version.
func checkIfMatch(r *record, ifMatch string) error {
	if r == nil || r.current().deleted {
		return errorf(ErrPrecondition, "If-Match given but the resource does not exist")
	}
	want := strings.TrimSpace(ifMatch)
	want = strings.TrimPrefix(want, "W/")
	want = strings.Trim(want, `"`)
	if want != strconv.Itoa(r.current().vid) {
		return errorf(ErrPrecondition, "If-Match %s does not match the current version %d", ifMatch, r.current().vid)
	}
	return nil
}

func etag(v *version) string { return `W/"` + strconv.Itoa(v.vid) + `"` }

// formatInstant renders a FHIR instant with millisecond precision.
func formatInstant(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}
