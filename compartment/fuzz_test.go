package compartment

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/fhir"
	"github.com/fhirguard/fhirguard/internal/fhirjson"
)

func memberSeeds() []string {
	return []string{
		obs(`"Patient/123"`),
		obs(`"Patient/123/_history/2"`),
		obs(`"https://fhir.example.org/r4/Patient/123"`),
		obs(`"Patient\/123"`),
		obs(`"Patient/1234"`),
		`{"resourceType":"Patient","id":"123"}`,
		`{"resourceType":"Patient","id":"9","link":[{"other":{"reference":"Patient/123"}}]}`,
		`{"id":"o","subject":{"reference":"Patient/123"},"resourceType":"Observation"}`,
		`{"resourceType":"Appointment","participant":[{"actor":{"reference":"Patient/123"}}]}`,
		`{"resourceType":"Observation","subject":{"reference":{"reference":"Patient/123"}}}`,
		`{"resourceType":"Observation","subject":{"reference":"Patient/123"},"subject":{"reference":"Patient/9"}}`,
		`{"resourceType":"Observation","contained":[{"resourceType":"Patient","id":"123"}],"subject":{"reference":"#123"}}`,
		`{"resourceType":"Observation","x":[1,-2.5e+3,true,false,null,"\u00e9\ud83d\ude00"]}`,
		`[1]`, `{`, `{"resourceType":"Observation","subject":{"reference":"Patient/123"}`, ``,
	}
}

// FuzzMember checks that Member never panics, reports invalid JSON exactly
// when encoding/json does, agrees with MemberMap, and gives the same answer
// for relative references and the same references under our base, while a
// foreign base never adds membership.
func FuzzMember(f *testing.F) {
	for _, s := range memberSeeds() {
		f.Add([]byte(s))
	}
	c, err := New(Config{FHIRVersion: fhir.R4, BaseURLs: []string{testBase}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := c.Member(data, Patient, "123")
		strict := fhirjson.Valid(data, fhirjson.Options{MaxDepth: fhirjson.MaxReadDepth})
		switch {
		case !json.Valid(data) && !errors.Is(err, errMalformed):
			t.Fatalf("invalid JSON: err = %v", err)
		case strict != nil && err == nil:
			t.Fatalf("accepted what the strict reader refuses (%v)", strict)
		case strict == nil && errors.Is(err, errMalformed):
			t.Fatalf("the strict reader accepts what Member reports malformed: %v", err)
		case err != nil && got:
			t.Fatal("member with an error")
		}
		if err != nil {
			return
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("Member accepted what Unmarshal refuses: %v", err)
		}
		got2, err2 := c.MemberMap(m, Patient, "123")
		if err2 != nil || got2 != got {
			t.Fatalf("Member = %v, MemberMap = %v, %v", got, got2, err2)
		}
		abs := bytes.ReplaceAll(data, []byte(`"Patient/`), []byte(`"`+testBase+`/Patient/`))
		if got3, err3 := c.Member(abs, Patient, "123"); err3 == nil && got3 != got {
			t.Fatalf("relative %v, absolute %v", got, got3)
		}
		foreign := bytes.ReplaceAll(data, []byte(`"Patient/`), []byte(`"https://evil.example/fhir/Patient/`))
		if got4, err4 := c.Member(foreign, Patient, "123"); err4 == nil && got4 && !got {
			t.Fatal("a foreign base made the resource a member")
		}
	})
}

// FuzzRefersTo compares RefersTo with a plain model of the accepted forms.
func FuzzRefersTo(f *testing.F) {
	for _, s := range []string{"Patient/123", "Patient/123/_history/1", testBase + "/Patient/123", "Patient/1234",
		"Patient/123/_history/", "patient/123", "x/Patient/123", "Patient/123/_history/1/_history/2",
		"HTTPS://FHIR.example.org:443/r4/Patient/123", "https://fhir.example.org:/r4/Patient/123/_history/2",
		"Patient/../_history/1", "Patient/123/_history/.."} {
		f.Add(s, "123")
	}
	f.Add("Patient/..", "..")
	c, err := New(Config{FHIRVersion: fhir.R4, BaseURLs: []string{testBase}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, ref, id string) {
		got := c.RefersTo(ref, Patient, id)
		want := false
		// A reference names ids and versions other than the dot segments.
		named := fhir.ValidID
		if named(id) {
			rel := ref
			// The scheme and host of a base compare case-insensitively, and
			// the default port (or an empty one) equals none.
			if host := len("https://fhir.example.org"); len(ref) > host && strings.EqualFold(ref[:host], testBase[:host]) {
				rest := ref[host:]
				if p, ok := strings.CutPrefix(rest, ":443"); ok {
					rest = p
				} else if p, ok := strings.CutPrefix(rest, ":"); ok {
					rest = p
				}
				if p, ok := strings.CutPrefix(rest, testBase[host:]+"/"); ok {
					rel = p
				}
			}
			want = rel == "Patient/"+id
			if v, ok := strings.CutPrefix(rel, "Patient/"+id+"/_history/"); ok && named(v) {
				want = true
			}
		}
		if got != want {
			t.Fatalf("RefersTo(%q, %q) = %v, model %v", ref, id, got, want)
		}
		if !strings.Contains(ref, "://") && got != c.RefersTo(testBase+"/"+ref, Patient, id) {
			t.Fatalf("relative and absolute forms of %q disagree", ref)
		}
		if c.RefersTo("https://evil.example/"+ref, Patient, id) {
			t.Fatalf("foreign base accepted for %q", ref)
		}
	})
}

// FuzzBinds checks that Binds and Narrow never panic, that a binding query
// names the id, that Narrow never drops what the client asked for, and that
// a narrowed query binds unless the client already gave the narrowing
// parameter other values.
func FuzzBinds(f *testing.F) {
	for _, s := range []string{"patient=123", "subject:Patient=123", "patient=123,456", "patient:missing=true",
		"subject=Patient/123&patient=9", "_id=123", "patient=" + testBase + "/Patient/123", "patient.name=x"} {
		f.Add("Observation", s)
		f.Add("Patient", s)
	}
	c, err := New(Config{FHIRVersion: fhir.R4, BaseURLs: []string{testBase}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, resource, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		if c.Binds(resource, q, Patient, "123") && !strings.Contains(fmt.Sprint(q), "123") {
			t.Fatalf("%s?%s binds without naming the id", resource, query)
		}
		n, err := c.Narrow(resource, q, Patient, "123")
		if err != nil {
			return
		}
		for k, vs := range q {
			for _, v := range vs {
				if !slices.Contains(n[k], v) {
					t.Fatalf("Narrow dropped %s=%s", k, v)
				}
			}
		}
		name, _ := c.Definition(Patient).NarrowParam(resource)
		if resource == "Patient" {
			name = "_id"
		}
		if len(q[name]) == 0 && !c.Binds(resource, n, Patient, "123") {
			t.Fatalf("narrowed %v does not bind", n)
		}
	})
}

// checkMemberRefs fails unless MemberRefs, given the references
// fhirjson.ReadRefs finds, answers as MemberMap does for every compartment
// of the release and a few ids; it reports whether ReadRefs answered.
func checkMemberRefs(t *testing.T, c *Checker, data []byte) bool {
	t.Helper()
	var d fhirjson.RefDoc
	if !fhirjson.ReadRefs(data, fhirjson.MaxReadDepth, &d) {
		return false
	}
	m, err := fhirjson.Decode(data, fhirjson.Options{MaxDepth: fhirjson.MaxReadDepth, References: true})
	if err != nil {
		t.Fatalf("ReadRefs read what Decode refuses: %v", err)
	}
	for _, typ := range []Type{Patient, Encounter, RelatedPerson, Practitioner, Device} {
		for _, id := range []string{"123", "9", "e1", "o"} {
			want, werr := c.MemberMap(m, typ, id)
			got, gerr := c.MemberRefs(d.ResourceType, d.ID, &d, typ, id)
			if got != want || (gerr == nil) != (werr == nil) && d.ResourceType != "" {
				t.Fatalf("%s %s/%s: MemberRefs = %v, %v; MemberMap = %v, %v", data, typ, id, got, gerr, want, werr)
			}
		}
	}
	return true
}

// TestMemberRefs: MemberRefs agrees with MemberMap on the seeds and on a
// resource of every member type of the Patient compartment with a
// reference in each of its linking elements.
func TestMemberRefs(t *testing.T) {
	c, err := New(Config{FHIRVersion: fhir.R4, BaseURLs: []string{testBase}})
	if err != nil {
		t.Fatal(err)
	}
	answered := 0
	for _, s := range memberSeeds() {
		if checkMemberRefs(t, c, []byte(s)) {
			answered++
		}
	}
	def := c.Definition(Patient)
	for _, rt := range def.ResourceTypes() {
		r, _ := def.Resource(rt)
		for _, p := range r.Params {
			for _, path := range p.Paths {
				full := strings.Split(path.Elements, ".")
				// The reference at the linking element, and one level up
				// (an element that leads to links but holds none: no link).
				for _, elems := range [][]string{full, full[:len(full)-1]} {
					if len(elems) == 0 {
						continue
					}
					for _, target := range []string{"Patient/123", "Patient/9", testBase + "/Patient/123", "Group/123"} {
						v := any(map[string]any{"reference": target})
						for i := len(elems) - 1; i >= 1; i-- {
							v = map[string]any{elems[i]: []any{v}}
						}
						doc, _ := json.Marshal(map[string]any{"resourceType": rt, "id": "x", elems[0]: v})
						if !checkMemberRefs(t, c, doc) {
							t.Errorf("ReadRefs declined %s", doc)
						}
						answered++
					}
				}
			}
		}
	}
	if answered < 100 {
		t.Fatalf("only %d documents compared", answered)
	}
	if _, err := c.MemberRefs("", "x", &fhirjson.RefDoc{}, Patient, "123"); err == nil {
		t.Error("no resourceType: no error")
	}
	if _, err := c.MemberRefs("Observation", "x", &fhirjson.RefDoc{}, Patient, "../x"); err == nil {
		t.Error("invalid id: no error")
	}
}

// FuzzMemberRefs: for any resource ReadRefs reads, MemberRefs answers as
// MemberMap does.
func FuzzMemberRefs(f *testing.F) {
	for _, s := range memberSeeds() {
		f.Add([]byte(s))
	}
	c, err := New(Config{FHIRVersion: fhir.R4, BaseURLs: []string{testBase}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkMemberRefs(t, c, data)
	})
}
