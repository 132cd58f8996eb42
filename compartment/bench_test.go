package compartment

import (
	"encoding/json"
	"net/url"
	"testing"
)

// The baselines (Unmarshal…) run in the same benchmark run as the checks:
// the target for response verification is at most twice a plain
// json.Unmarshal of the same document.

func BenchmarkObservationUnmarshal(b *testing.B) {
	doc := []byte(observation("obs-1", "pat-1"))
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		var m map[string]any
		if err := json.Unmarshal(doc, &m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkObservationMember(b *testing.B) {
	c := newChecker(b, Config{Version: R4, BaseURLs: []string{testBase}})
	doc := []byte(observation("obs-1", "pat-1"))
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if ok, err := c.Member(doc, Patient, "pat-1"); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkObservationMemberMap(b *testing.B) {
	c := newChecker(b, Config{Version: R4})
	var m map[string]any
	if err := json.Unmarshal([]byte(observation("obs-1", "pat-1")), &m); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := c.MemberMap(m, Patient, "pat-1"); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkBundle100Unmarshal(b *testing.B) {
	doc := []byte(searchBundle(100, true))
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		var m map[string]any
		if err := json.Unmarshal(doc, &m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBundle100Check reads the Bundle, checks every entry and removes
// the 50 entries of another patient: the whole verification of a search
// response.
func BenchmarkBundle100Check(b *testing.B) {
	c := newChecker(b, Config{Version: R4, BaseURLs: []string{testBase}})
	doc := []byte(searchBundle(100, true))
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		bundle, err := c.CheckBundle(doc, Patient, "pat-1")
		if err != nil || len(bundle.Entries) != 100 {
			b.Fatal(err)
		}
		if out := bundle.Without(func(e *Entry) bool { return !e.Member }); len(out) >= len(doc) {
			b.Fatal("nothing removed")
		}
	}
}

// BenchmarkBundle100UnmarshalMemberMap is the decode-once alternative:
// Unmarshal, then MemberMap on every entry.
func BenchmarkBundle100UnmarshalMemberMap(b *testing.B) {
	c := newChecker(b, Config{Version: R4})
	doc := []byte(searchBundle(100, true))
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		var m map[string]any
		if err := json.Unmarshal(doc, &m); err != nil {
			b.Fatal(err)
		}
		n := 0
		for _, e := range m["entry"].([]any) {
			r := e.(map[string]any)["resource"].(map[string]any)
			if ok, _ := c.MemberMap(r, Patient, "pat-1"); ok {
				n++
			}
		}
		if n != 50 {
			b.Fatal(n)
		}
	}
}

func BenchmarkBinds(b *testing.B) {
	c := newChecker(b, Config{Version: R4})
	q := url.Values{"patient": {"Patient/pat-1"}, "code": {"1234-5"}}
	b.ReportAllocs()
	for b.Loop() {
		if !c.Binds("Observation", q, Patient, "pat-1") {
			b.Fatal("not bound")
		}
	}
}
