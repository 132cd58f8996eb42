package gateway

import (
	"encoding/json"
	"strings"
	"testing"
)

func testMatcher(t testing.TB, upstream, public string) *matcher {
	t.Helper()
	up, err := parseBase("Upstream", upstream)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := parseBase("BaseURL", public)
	if err != nil {
		t.Fatal(err)
	}
	m, err := newMatcher(up, pub)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRewriteText(t *testing.T) {
	m := testMatcher(t, "http://up/fhir", "https://gw.example.org/api")
	const pub = "https://gw.example.org/api"
	for _, tc := range []struct{ in, want string }{
		{"http://up/fhir", pub},
		{"http://up/fhir/", pub + "/"},
		{"http://up/fhir/Patient/1", pub + "/Patient/1"},
		{"http://up/fhir?_count=1", pub + "?_count=1"},
		{"http://up/fhir#x", pub + "#x"},
		{"HTTP://UP/fhir/Patient/1", pub + "/Patient/1"},
		{"http://Up:80/fhir/Patient/1", pub + "/Patient/1"},
		{"http://up:0080/fhir/Patient/1", pub + "/Patient/1"},
		{"http://up:/fhir/Patient/1", pub + "/Patient/1"},
		{"see http://up/fhir/Patient/1 and (http://up/fhir).", "see " + pub + "/Patient/1 and (" + pub + ")."},
		{`<a href="http://up/fhir/Patient/1">x</a>`, `<a href="` + pub + `/Patient/1">x</a>`},
		{"xhttp://up/fhir/a", "x" + pub + "/a"},
		{"http://up/fhirhttp://up/fhir", "http://up/fhirhttp://up/fhir"[:14] + pub},
		// Not the upstream base.
		{"http://up/fhir2", ""},
		{"http://up/fhir2/Patient/1", ""},
		{"http://up/fhir.v2/Patient/1", ""},
		{"http://up/fhir-x", ""},
		{"http://up/fhir%2FPatient", ""},
		{"http://up/FHIR/Patient/1", ""},
		{"http://up.example/fhir/Patient/1", ""},
		{"http://upx/fhir/Patient/1", ""},
		{"http://up:8080/fhir/Patient/1", ""},
		{"https://up/fhir/Patient/1", ""},
		{"http://user@up/fhir/Patient/1", ""},
		{"http://up//fhir/Patient/1", ""},
		{"http://up/other/fhir", ""},
		{"ttp://up/fhir", ""},
	} {
		want := tc.want
		if want == "" {
			want = tc.in
		}
		if got := m.rewriteString(tc.in); got != want {
			t.Errorf("%q: got %q, want %q", tc.in, got, want)
		}
	}
}

func TestRewritePorts(t *testing.T) {
	for _, tc := range []struct{ upstream, in, want string }{
		{"http://up:8080/fhir", "http://up:8080/fhir/a", "P/a"},
		{"http://up:8080/fhir", "http://up/fhir/a", ""},
		{"http://up:8080/fhir", "http://up:80/fhir/a", ""},
		{"http://up:8080/fhir", "http://up:18080/fhir/a", ""},
		{"http://up:8080/fhir", "http://up:8080", ""},
		{"https://up:443/fhir", "https://up/fhir/a", "P/a"},
		{"https://up/fhir", "https://up:443/fhir/a", "P/a"},
		{"https://up/fhir", "https://up:80/fhir/a", ""},
		{"http://UP.Example.ORG/fhir", "http://up.example.org/fhir/a", "P/a"},
		{"http://[::1]:9000/fhir", "http://[::1]:9000/fhir/a", "P/a"},
		{"http://[::1]:9000/fhir", "http://[::2]:9000/fhir/a", ""},
		// A base at the root: the host must end.
		{"http://up", "http://up/Patient/1", "P/Patient/1"},
		{"http://up", "http://up", "P"},
		{"http://up", "http://up?x", "P?x"},
		{"http://up", "http://up.example/Patient/1", ""},
		{"http://up", "http://up-2/Patient/1", ""},
		{"http://up:8000", "http://up:8000/Patient/1", "P/Patient/1"},
		{"http://up:8000", "http://up:80001/Patient/1", ""},
	} {
		m := testMatcher(t, tc.upstream, "https://gw/fhir")
		want := tc.in
		if tc.want != "" {
			want = strings.Replace(tc.want, "P", "https://gw/fhir", 1)
		}
		if got := m.rewriteString(tc.in); got != want {
			t.Errorf("upstream %s, %q: got %q, want %q", tc.upstream, tc.in, got, want)
		}
	}
}

// TestRewriteJSON: every string position, the escaped forms, and
// everything else byte for byte.
func TestRewriteJSON(t *testing.T) {
	m := testMatcher(t, "http://up:8080/fhir", "https://gw/r4")
	for _, tc := range []struct{ name, in, want string }{
		{"bundle", `{"resourceType":"Bundle",
  "link": [ {"relation":"self","url":"http://up:8080/fhir/Observation?patient=1"},
            {"relation":"next","url":"http://UP:8080/fhir/Observation?patient=1&_offset=20"} ],
  "entry":[{"fullUrl":"http://up:8080/fhir/Observation/1","resource":{"resourceType":"Observation","id":"1",
     "subject":{"reference":"http://up:8080/fhir/Patient/1"},"valueQuantity":{"value":1.50e+0},
     "identifier":[{"system":"http://up:8080/fhir2","value":"http://up:8080/fhir/x"}],
     "text":{"div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><a href=\"http://up:8080/fhir/Patient/1\">P</a></div>"}}}]}`,
			`{"resourceType":"Bundle",
  "link": [ {"relation":"self","url":"https://gw/r4/Observation?patient=1"},
            {"relation":"next","url":"https://gw/r4/Observation?patient=1&_offset=20"} ],
  "entry":[{"fullUrl":"https://gw/r4/Observation/1","resource":{"resourceType":"Observation","id":"1",
     "subject":{"reference":"https://gw/r4/Patient/1"},"valueQuantity":{"value":1.50e+0},
     "identifier":[{"system":"http://up:8080/fhir2","value":"https://gw/r4/x"}],
     "text":{"div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><a href=\"https://gw/r4/Patient/1\">P</a></div>"}}}]}`},
		{"escaped slashes", `{"url":"http:\/\/up:8080\/fhir\/Patient\/1"}`, `{"url":"https://gw/r4\/Patient\/1"}`},
		{"unicode escapes", `{"url":"\u0068ttp://up\u003a8080/fhir/Patient/1\u00e9"}`, `{"url":"https://gw/r4/Patient/1\u00e9"}`},
		{"escaped boundary", `{"url":"http://up:8080/fhir\u0032"}`, `{"url":"http://up:8080/fhir\u0032"}`},
		{"escaped quote after", `"a \"http://up:8080/fhir\" b"`, `"a \"https://gw/r4\" b"`},
		{"member name", `{"http://up:8080/fhir/a":1}`, `{"https://gw/r4/a":1}`},
		{"top-level string", ` "http://up:8080/fhir" `, ` "https://gw/r4" `},
		{"array", `["http://up:8080/fhir/a",true,null,false,-0.5E-3,[],{}]`, `["https://gw/r4/a",true,null,false,-0.5E-3,[],{}]`},
		{"nothing", `{"a":"http://up:8081/fhir","b":"up:8080/fhir"}`, `{"a":"http://up:8081/fhir","b":"up:8080/fhir"}`},
		{"non-ASCII kept", "{\"a\":\"é http://up:8080/fhir ü\xff\"}", "{\"a\":\"é https://gw/r4 ü\xff\"}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := m.rewriteJSON([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
	for _, bad := range []string{``, ` `, `{`, `{"a"}`, `{"a":1,}`, `[1,]`, `[1 2]`, `01`, `-`, `1.`, `1e`, `"a`, "\"a\x01\"", `"\x"`, `"\u12"`, `nul`, `{} {}`, `{"a":1}x`, `'a'`} {
		if _, err := m.rewriteJSON([]byte(bad)); err == nil {
			t.Errorf("%q: accepted", bad)
		}
		if json.Valid([]byte(bad)) {
			t.Errorf("%q: the test's invalid JSON is valid", bad)
		}
	}
}

func TestRewriteJSONSeq(t *testing.T) {
	m := testMatcher(t, "http://up/fhir", "https://gw/fhir")
	in := "{\"id\":\"1\",\"subject\":{\"reference\":\"http://up/fhir/Patient/1\"}}\n{\"id\":\"2\"}\n"
	got, err := m.rewriteJSONSeq([]byte(in))
	if err != nil || string(got) != strings.ReplaceAll(in, "http://up", "https://gw") {
		t.Fatalf("%s, %v", got, err)
	}
	for _, bad := range []string{"", "\n", "{}{}", "{}\n{", "{}\nx"} {
		if _, err := m.rewriteJSONSeq([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestRewriteDepth(t *testing.T) {
	m := testMatcher(t, "http://up/fhir", "https://gw/fhir")
	ok := strings.Repeat("[", maxDepth) + `"http://up/fhir"` + strings.Repeat("]", maxDepth)
	if got, err := m.rewriteJSON([]byte(ok)); err != nil || !strings.Contains(string(got), "https://gw/fhir") {
		t.Fatalf("depth %d: %v", maxDepth, err)
	}
	deep := "[" + ok + "]"
	if _, err := m.rewriteJSON([]byte(deep)); err == nil || json.Valid([]byte(deep)) {
		t.Fatalf("depth %d accepted (json.Valid %v)", maxDepth+1, json.Valid([]byte(deep)))
	}
}

func TestMayContain(t *testing.T) {
	m := testMatcher(t, "http://Localhost:9/fhir", "https://gw/fhir")
	for in, want := range map[string]bool{
		`{"a":"http://LOCALHOST:9/fhir"}`: true,
		`{"a":"http://lOcalhost:9/fhir"}`: true,
		`{"a":"\u0068"}`:                  true,
		`{"a":"http://localhos/fhir"}`:    false,
		`lllllllllLLLLLLLLocalhosT`:       true,
		`lllllllllLLLLLLLLocalhos`:        false,
		``:                                false,
	} {
		if got := m.mayContain([]byte(in)); got != want {
			t.Errorf("%q: %v", in, got)
		}
	}
}

func TestBases(t *testing.T) {
	for _, tc := range []struct{ upstream, public, want string }{
		{"up/fhir", "https://gw/fhir", "Upstream"},
		{"ftp://up/fhir", "https://gw/fhir", "Upstream"},
		{"http://up/fhir?x=1", "https://gw/fhir", "Upstream"},
		{"http://up/fhir#x", "https://gw/fhir", "Upstream"},
		{"http://u:p@up/fhir", "https://gw/fhir", "Upstream"},
		{"http://up/fh%20ir", "https://gw/fhir", "Upstream"},
		{"http://up/a//b", "https://gw/fhir", "Upstream"},
		{"http://up:/fhir", "https://gw/fhir", "Upstream"},
		{"http://up/fhir", "https://gw/fh:ir", "BaseURL"},
		{"http://up/fhir", "", "BaseURL"},
		{"http://up/fhir", "http://UP:80/fhir/", "nested"},
		{"http://up/fhir", "http://up/fhir/public", "nested"},
		{"http://up/fhir/r4", "http://up/fhir", "nested"},
		{"http://up", "http://up/fhir", "nested"},
	} {
		_, err := New(Config{Upstream: tc.upstream, BaseURL: tc.public})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s, %s: %v", tc.upstream, tc.public, err)
		}
	}
	for _, tc := range [][2]string{
		{"http://up/fhir", "http://up/public"},
		{"http://up/fhir", "http://up/fhir2"},
		{"http://up:8080/fhir", "http://up/fhir"},
		{"http://up/fhir/", "https://gw.example.org/"},
		{"http://10.0.0.1:8080/hapi-fhir-jpaserver/fhir", "https://gw.example.org/fhir/R4"},
	} {
		p, err := New(Config{Upstream: tc[0], BaseURL: tc[1]})
		if err != nil {
			t.Errorf("%s, %s: %v", tc[0], tc[1], err)
			continue
		}
		p.Close()
	}
}
