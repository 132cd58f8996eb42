package compartment

import (
	"encoding/json"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/fhirguard/fhirguard/fhir"
)

// refBases are the bases of the reference tests: a plain one, one with a
// port and a trailing slash, one written in upper case with a default port
// and trailing slashes (New normalises it to https://upper.example/R4), and
// an IP literal.
var refBases = []string{testBase, "http://other.example.com:8080/fhir/", "HTTPS://Upper.Example:443/R4//", "http://[::1]/fhir"}

func refChecker(t testing.TB) *Checker {
	t.Helper()
	return newChecker(t, Config{FHIRVersion: fhir.R4, BaseURLs: refBases})
}

var id64 = strings.Repeat("a", 64)

func local(typ, id, ver string) Ref { return Ref{Kind: RefLocal, Type: typ, ID: id, Version: ver} }
func external(typ, id, ver string) Ref {
	return Ref{Kind: RefExternal, Type: typ, ID: id, Version: ver}
}

var (
	invalid     = Ref{Kind: RefInvalid}
	contained   = Ref{Kind: RefContained}
	urn         = Ref{Kind: RefURN}
	externalURL = Ref{Kind: RefExternal}
)

// TestParseReference has, for every rule, the legitimate form that is
// accepted and the attack forms that are refused.
func TestParseReference(t *testing.T) {
	c := refChecker(t)
	tests := []struct {
		name string
		ref  string
		want Ref
	}{
		// Relative references.
		{"relative", "Patient/123", local("Patient", "123", "")},
		{"relative versioned", "Patient/123/_history/2", local("Patient", "123", "2")},
		{"relative dotted ids", "Patient/a.b-1/_history/x.Y-2", local("Patient", "a.b-1", "x.Y-2")},
		{"relative other type", "Group/9", local("Group", "9", "")},
		{"relative camel-case type", "RelatedPerson/r1", local("RelatedPerson", "r1", "")},
		{"relative 64-byte id", "Patient/" + id64, local("Patient", id64, "")},
		{"relative 65-byte id", "Patient/" + id64 + "a", invalid},
		{"relative 65-byte version", "Patient/1/_history/" + id64 + "a", invalid},
		{"lower-case type", "patient/123", invalid},
		{"type with a digit", "Patient2/123", invalid},
		{"type with underscore", "Pat_ient/123", invalid},
		{"leading slash", "/Patient/123", invalid},
		{"dot slash", "./Patient/123", invalid},
		{"dot dot", "../Patient/123", invalid},
		{"dot dot inside", "Patient/../Patient/123", invalid},
		{"dot segment inside", "Patient/./123", invalid},
		{"dot id", "Patient/.", invalid},
		{"dot dot id", "Patient/..", invalid},
		{"dot dot version", "Patient/123/_history/..", invalid},
		{"dots in id", "Patient/.../_history/a..b", local("Patient", "...", "a..b")},
		{"empty segment", "Patient//123", invalid},
		{"trailing slash", "Patient/123/", invalid},
		{"extra segment after", "Patient/123/x", invalid},
		{"extra segment before", "x/Patient/123", invalid},
		{"type as path", "Group/Patient/123", invalid},
		{"empty id", "Patient/", invalid},
		{"empty version", "Patient/123/_history/", invalid},
		{"history twice", "Patient/123/_history/1/_history/2", invalid},
		{"history without version", "Patient/123/_history", invalid},
		{"percent-encoded id", "Patient/%31%32%33", invalid},
		{"percent-encoded slash", "Patient%2F123", invalid},
		{"backslash", `Patient\123`, invalid},
		{"trailing backslash", `Patient/123\`, invalid},
		{"leading space", " Patient/123", invalid},
		{"trailing space", "Patient/123 ", invalid},
		{"inner space", "Patient/12 3", invalid},
		{"tab", "Patient/123\t", invalid},
		{"newline", "Patient/123\n", invalid},
		{"NUL", "Patient/123\x00", invalid},
		{"DEL", "Patient/123\x7f", invalid},
		{"non-ASCII id", "Patient/12３", invalid},
		{"fragment", "Patient/123#x", invalid},
		{"query", "Patient/123?x=1", invalid},
		{"bare id", "123", invalid},
		{"bare type", "Patient", invalid},
		{"empty", "", invalid},
		// Absolute references under our bases.
		{"own base", testBase + "/Patient/123", local("Patient", "123", "")},
		{"own base versioned", testBase + "/Patient/123/_history/7", local("Patient", "123", "7")},
		{"scheme case", "HTTPS://fhir.example.org/r4/Patient/123", local("Patient", "123", "")},
		{"host case", "https://FHIR.Example.ORG/r4/Patient/123", local("Patient", "123", "")},
		{"default port", "https://fhir.example.org:443/r4/Patient/123", local("Patient", "123", "")},
		{"empty port", "https://fhir.example.org:/r4/Patient/123", local("Patient", "123", "")},
		{"configured port", "http://other.example.com:8080/fhir/Patient/123", local("Patient", "123", "")},
		{"configured port, host case", "HTTP://OTHER.example.com:8080/fhir/Patient/123", local("Patient", "123", "")},
		{"configured port missing", "http://other.example.com/fhir/Patient/123", external("Patient", "123", "")},
		{"normalised base", "https://upper.example/R4/Patient/123", local("Patient", "123", "")},
		{"normalised base, port", "https://UPPER.example:443/R4/Patient/123", local("Patient", "123", "")},
		{"normalised base, path case", "https://upper.example/r4/Patient/123", external("Patient", "123", "")},
		{"IP literal base", "http://[::1]/fhir/Patient/123", local("Patient", "123", "")},
		{"IP literal base, default port", "http://[::1]:80/fhir/Patient/123", local("Patient", "123", "")},
		{"IP literal unterminated", "http://[::1/fhir/Patient/123", invalid},
		{"IP literal empty", "http://[]/fhir/Patient/123", invalid},
		{"IP literal not IPv6", "http://[000]/fhir/Patient/123", invalid},
		{"IP literal IPv4", "http://[127.0.0.1]/fhir/Patient/123", invalid},
		{"IP literal two ellipses", "http://[1::2::3]/fhir/Patient/123", invalid},
		{"IP literal long group", "http://[::12345]/fhir/Patient/123", invalid},
		{"IP literal zone", "http://[fe80::1%25eth0]/fhir/Patient/123", invalid},
		{"IP literal other spelling", "http://[0:0:0:0:0:0:0:1]/fhir/Patient/123", external("Patient", "123", "")},
		{"IP literal mapped IPv4", "https://[::ffff:192.0.2.1]/Patient/9", external("Patient", "9", "")},
		{"https port on http", "http://[::1]:443/fhir/Patient/123", external("Patient", "123", "")},
		{"http port on https", "https://fhir.example.org:80/r4/Patient/123", external("Patient", "123", "")},
		{"other port", "https://fhir.example.org:8443/r4/Patient/123", external("Patient", "123", "")},
		{"leading-zero port", "https://fhir.example.org:0443/r4/Patient/123", invalid},
		{"zero port", "https://fhir.example.org:0/r4/Patient/123", invalid},
		{"port too large", "https://fhir.example.org:65536/r4/Patient/123", invalid},
		{"port too long", "https://fhir.example.org:000443/r4/Patient/123", invalid},
		{"port not digits", "https://fhir.example.org:44x/r4/Patient/123", invalid},
		{"path case", "https://fhir.example.org/R4/Patient/123", external("Patient", "123", "")},
		{"http on https base", "http://fhir.example.org/r4/Patient/123", external("Patient", "123", "")},
		{"base itself", testBase, invalid},
		{"base with trailing slash", testBase + "/", invalid},
		{"base type only", testBase + "/Patient", invalid},
		{"deeper path under base", testBase + "/x/Patient/123", invalid},
		{"lower-case type under base", testBase + "/patient/123", invalid},
		{"trailing slash under base", testBase + "/Patient/123/", invalid},
		{"operation under base", testBase + "/Patient/123/$everything", invalid},
		{"base as prefix", "https://fhir.example.org/r4evil/Patient/123", external("Patient", "123", "")},
		{"no slash after base", testBase + "Patient/123", externalURL},
		{"host suffix", "https://fhir.example.org.evil/r4/Patient/123", external("Patient", "123", "")},
		{"host with trailing dot", "https://fhir.example.org./r4/Patient/123", external("Patient", "123", "")},
		{"userinfo", "https://x@fhir.example.org/r4/Patient/123", invalid},
		{"userinfo with our host", "https://fhir.example.org@evil.example/r4/Patient/123", invalid},
		{"userinfo after port", "https://fhir.example.org:443@evil.example/r4/Patient/123", invalid},
		{"query", testBase + "/Patient/123?x=1", invalid},
		{"empty query", testBase + "/Patient/123?", invalid},
		{"fragment", testBase + "/Patient/123#x", invalid},
		{"percent-encoded path", testBase + "/Patient/%31%32%33", invalid},
		{"percent-encoded host", "https://fhir%2Eexample.org/r4/Patient/123", invalid},
		{"percent-encoded base path", "https://fhir.example.org/%72%34/Patient/123", invalid},
		{"dot dot segment", testBase + "/x/../Patient/123", invalid},
		{"dot segment", testBase + "/./Patient/123", invalid},
		{"double slash", testBase + "//Patient/123", invalid},
		{"double slash in base", "https://fhir.example.org//r4/Patient/123", invalid},
		{"backslash path", `https://fhir.example.org/r4\Patient\123`, invalid},
		{"backslash authority", `https:\\fhir.example.org/r4/Patient/123`, invalid},
		{"space", testBase + "/Patient/123 ", invalid},
		{"space in host", "https://fhir.example.org /r4/Patient/123", invalid},
		{"non-ASCII host", "https://fhir.exämple.org/r4/Patient/123", invalid},
		{"non-ASCII path", "https://evil.example/fhïr/Patient/123", invalid},
		{"missing slashes", "https:fhir.example.org/r4/Patient/123", invalid},
		{"one slash", "https:/fhir.example.org/r4/Patient/123", invalid},
		{"empty host", "https:///r4/Patient/123", invalid},
		{"other scheme", "ftp://fhir.example.org/r4/Patient/123", invalid},
		{"file scheme", "file:///r4/Patient/123", invalid},
		{"scheme with digits", "h2://fhir.example.org/r4/Patient/123", invalid},
		{"scheme only", "https:", invalid},
		// Other servers.
		{"external", "https://evil.example/fhir/Patient/123", external("Patient", "123", "")},
		{"external versioned", "https://evil.example/fhir/Patient/9/_history/2", external("Patient", "9", "2")},
		{"external lower-case type", "http://evil.example/patient/9", external("patient", "9", "")},
		{"external port", "https://evil.example:8443/Patient/9", external("Patient", "9", "")},
		{"external sub-delims", "https://evil.example/a;b=c/Patient/9", external("Patient", "9", "")},
		{"external no resource", "https://evil.example/metadata", externalURL},
		{"external any two segments", "https://evil.example/fhir/metadata", external("fhir", "metadata", "")},
		{"external history list", "https://evil.example/fhir/Patient/9/_history", externalURL},
		{"external operation", "https://evil.example/fhir/Patient/9/$everything", externalURL},
		{"external bad version", "https://evil.example/fhir/Patient/9/_history/$x", externalURL},
		{"external root", "https://evil.example", externalURL},
		{"external root slash", "https://evil.example/", externalURL},
		{"external trailing slash", "https://evil.example/fhir/Patient/9/", invalid},
		// Contained, URN, conditional.
		{"contained", "#123", contained},
		{"contained empty", "#", contained},
		{"contained odd", "#Patient/9", contained},
		{"urn uuid", "urn:uuid:c757873d-ec9a-4326-a141-556f43239520", urn},
		{"urn uuid upper", "URN:UUID:C757873D-EC9A-4326-A141-556F43239520", urn},
		{"urn oid", "urn:oid:1.2.840.10008", urn},
		{"urn oid mixed case", "Urn:Oid:1.2.3", urn},
		{"urn uuid with path", "urn:uuid:Patient/123", invalid},
		{"urn uuid empty", "urn:uuid:", invalid},
		{"urn uuid space", "urn:uuid:c757873d ", invalid},
		{"urn oid letters", "urn:oid:1.2.x", invalid},
		{"urn other namespace", "urn:isbn:0451450523", invalid},
		{"urn bare", "urn:", invalid},
		{"conditional", "Patient?identifier=http://acme.org/mrn|123", Ref{Kind: RefConditional, Type: "Patient"}},
		{"conditional other type", "Observation?subject=Patient/9", Ref{Kind: RefConditional, Type: "Observation"}},
		{"conditional encoded", "Patient?name=J%C3%B6rg", Ref{Kind: RefConditional, Type: "Patient"}},
		{"conditional upper-case type", "PATIENT?identifier=x", Ref{Kind: RefConditional, Type: "PATIENT"}},
		{"conditional lower-case type", "patient?identifier=x", invalid},
		{"conditional empty", "Patient?", invalid},
		{"conditional space", "Patient?name=a b", invalid},
		{"conditional fragment", "Patient?name=a#b", invalid},
		{"conditional leading slash", "/Patient?name=a", invalid},
		{"conditional after id", "Patient/123?name=a", invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.ParseReference(tt.ref); got != tt.want {
				t.Errorf("ParseReference(%q) = %+v, want %+v", tt.ref, got, tt.want)
			}
			if got := modelParse(c, tt.ref); got != tt.want {
				t.Errorf("model(%q) = %+v, want %+v (the test model is wrong)", tt.ref, got, tt.want)
			}
		})
	}
}

func TestParseReferenceNoBases(t *testing.T) {
	c := newChecker(t, Config{FHIRVersion: fhir.R4})
	for _, tt := range []struct {
		ref  string
		want Ref
	}{
		{"Patient/123", local("Patient", "123", "")},
		{testBase + "/Patient/123", external("Patient", "123", "")},
		{testBase, externalURL},
	} {
		if got := c.ParseReference(tt.ref); got != tt.want {
			t.Errorf("ParseReference(%q) = %+v, want %+v", tt.ref, got, tt.want)
		}
	}
}

func TestRefKindString(t *testing.T) {
	if RefLocal.String() != "RefLocal" || RefConditional.String() != "RefConditional" || RefKind(9).String() != "RefKind(9)" {
		t.Error(RefLocal, RefConditional, RefKind(9))
	}
}

func TestRefersToOther(t *testing.T) {
	c := refChecker(t)
	tests := []struct {
		name string
		ref  string
		typ  Type
		id   string
		want bool
	}{
		{"local same", "Patient/123", Patient, "123", false},
		{"local same versioned", "Patient/123/_history/2", Patient, "123", false},
		{"local other", "Patient/9", Patient, "123", true},
		{"local other versioned", "Patient/9/_history/1", Patient, "123", true},
		{"local longer id", "Patient/1234", Patient, "123", true},
		{"local id case", "Patient/ABC", Patient, "abc", true},
		{"local upper-case type other", "PATIENT/9", Patient, "123", true},
		{"local upper-case type same", "PATIENT/123", Patient, "123", false},
		{"local other type", "Group/9", Patient, "123", false},
		{"own base other", testBase + "/Patient/9", Patient, "123", true},
		{"own base same", "HTTPS://FHIR.EXAMPLE.ORG:443/r4/Patient/123", Patient, "123", false},
		{"own base other type", testBase + "/Practitioner/9", Patient, "123", false},
		{"external other", "https://evil.example/fhir/Patient/9", Patient, "123", true},
		{"external other versioned", "https://evil.example/fhir/Patient/9/_history/2", Patient, "123", true},
		{"external same id", "https://alias.example/fhir/Patient/123", Patient, "123", false},
		{"external lower-case type", "https://alias.example/fhir/patient/9", Patient, "123", true},
		{"external other type", "https://evil.example/fhir/Group/9", Patient, "123", false},
		{"external no resource", "https://evil.example/fhir/metadata", Patient, "123", false},
		{"external operation", "https://evil.example/fhir/Patient/9/$everything", Patient, "123", false},
		{"conditional", "Patient?identifier=http://acme.org/mrn|9", Patient, "123", true},
		{"conditional upper-case", "PATIENT?identifier=9", Patient, "123", true},
		{"conditional other type", "Observation?subject=Patient/9", Patient, "123", false},
		{"invalid lower-case type", "patient/9", Patient, "123", true},
		{"invalid lower-case type, our id", "patient/123", Patient, "123", true},
		{"invalid padded", "Patient/9 ", Patient, "123", true},
		{"invalid leading slash", "/Patient/9", Patient, "123", true},
		{"invalid encoded id", "Patient/%39", Patient, "123", true},
		{"invalid encoded type", "Pati%65nt/9", Patient, "123", true},
		{"invalid encoded type, lower hex", "%70atient/9", Patient, "123", true},
		{"invalid fully encoded", "%50%41%54%49%45%4e%54%2f9", Patient, "123", true},
		{"invalid under our base", testBase + "/x/Patient/9", Patient, "123", true},
		{"invalid external trailing slash", "https://evil.example/Patient/9/", Patient, "123", true},
		{"invalid conditional", "patient?identifier=9", Patient, "123", true},
		{"invalid urn", "urn:uuid:Patient", Patient, "123", true},
		{"invalid other type", "Group/9 ", Patient, "123", false},
		{"invalid garbage", "garbage", Patient, "123", false},
		{"invalid broken escape", "Pati%6", Patient, "123", false},
		{"invalid double encoding", "Pati%2565nt/9", Patient, "123", false},
		{"empty", "", Patient, "123", false},
		{"contained", "#Patient/9", Patient, "123", false},
		{"contained id", "#9", Patient, "123", false},
		{"urn", "urn:uuid:c757873d-ec9a-4326-a141-556f43239520", Patient, "123", false},
		{"other compartment", "Encounter/e2", Encounter, "e1", true},
		{"other compartment same", "Encounter/e1", Encounter, "e1", false},
		{"invalid compartment type", "Patient/9", Type(0), "123", false},
		{"invalid id: every local one is other", "Patient/123", Patient, "12 3", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.RefersToOther(tt.ref, tt.typ, tt.id); got != tt.want {
				t.Errorf("RefersToOther(%q, %v, %q) = %v, want %v", tt.ref, tt.typ, tt.id, got, tt.want)
			}
			if tt.typ.valid() {
				if got := modelOther(modelParse(c, tt.ref), tt.ref, tt.typ, tt.id); got != tt.want {
					t.Errorf("model says %v (the test model is wrong)", got)
				}
			}
		})
	}
}

func TestNewNormalisesBases(t *testing.T) {
	const ref = "https://fhir.example.org/r4/Patient/123"
	for _, b := range []string{
		"https://fhir.example.org/r4",
		"https://fhir.example.org/r4/",
		"https://fhir.example.org/r4///",
		"HTTPS://FHIR.EXAMPLE.ORG/r4",
		"https://fhir.example.org:443/r4",
		"https://fhir.example.org:/r4",
	} {
		t.Run(b, func(t *testing.T) {
			c := newChecker(t, Config{FHIRVersion: fhir.R4, BaseURLs: []string{b}})
			if got := c.ParseReference(ref); got != local("Patient", "123", "") {
				t.Errorf("base %q: ParseReference(%q) = %+v", b, ref, got)
			}
		})
	}
	// The example of the brief: one spelling of the base, another of the
	// reference.
	c := newChecker(t, Config{FHIRVersion: fhir.R4, BaseURLs: []string{"http://ehr.example.org:80/fhir"}})
	if got := c.ParseReference("HTTP://EHR.example.org/fhir/Patient/456"); got != local("Patient", "456", "") {
		t.Errorf("got %+v", got)
	}
	for _, b := range []string{
		"https://fhir.example.org/r4/../x",
		"https://fhir.example.org/./r4",
		"https://fhir.example.org//r4",
		"https://fhir.example.org:0443/r4",
		"https://fhir.example.org:65536/r4",
		"https://fhir.example.org/r4 ",
		"https://fhir.example.org/r%34",
		"https://fhir.example.org\\r4",
		"https://[::1/r4",
		"https:///r4",
		"https:fhir.example.org/r4",
		"urn:uuid:c757873d-ec9a-4326-a141-556f43239520",
		"fhir.example.org/r4",
		"",
	} {
		t.Run(b, func(t *testing.T) {
			if _, err := New(Config{FHIRVersion: fhir.R4, BaseURLs: []string{b}}); err == nil {
				t.Errorf("New accepted base %q", b)
			}
		})
	}
}

// referenceCorpus generates reference variants: absolute URLs over schemes,
// hosts, ports, base paths, resource paths and suffixes; relative forms with
// prefixes and suffixes; contained, URN, conditional and garbage values.
func referenceCorpus() []string {
	var out []string
	schemes := []string{"https", "HTTPS", "hTTp", "ftp"}
	hosts := []string{"fhir.example.org", "FHIR.Example.ORG", "evil.example", "x@fhir.example.org", "other.example.com", "[::1]"}
	ports := []string{"", ":", ":443", ":80", ":8080", ":0443"}
	paths := []string{"/r4", "/R4", "/r4/", "", "/fhir", "/r4/x"}
	rests := []string{"Patient/123", "Patient/123/_history/2", "Patient/1234", "Patient/9", "patient/123", "PATIENT/123",
		"Patient/123/", "Patient/%31%32%33", "Patient/12 3", "Group/123", "Patient/../Patient/123", "Patient/123/_history/",
		"Patient", "metadata"}
	suffixes := []string{"", "?x=1", "#f"}
	for _, s := range schemes {
		for _, h := range hosts {
			for _, p := range ports {
				for _, bp := range paths {
					for _, r := range rests {
						for _, x := range suffixes {
							out = append(out, s+"://"+h+p+bp+"/"+r+x)
						}
					}
				}
			}
		}
	}
	for _, pre := range []string{"", "/", "./", "../", " ", "\t", "x/", "%2F"} {
		for _, r := range rests {
			for _, x := range []string{"", " ", "\n", "/", "#x", "?x", "\\"} {
				out = append(out, pre+r+x)
			}
		}
	}
	return append(out,
		"#123", "#", "#Patient/123", "urn:uuid:c757873d-ec9a-4326-a141-556f43239520", "URN:UUID:C757873D-EC9A-4326-A141-556F43239520",
		"urn:oid:1.2.3", "urn:uuid:Patient/123", "urn:isbn:123", "Patient?identifier=x|123", "patient?identifier=123",
		"Patient?", "Observation?patient=Patient/123", "123", "", "Patient/", "/", "https:", "https://", "https:///Patient/123",
		"Pati%65nt/123", "Patient/123\x00", "Patient\\123", "javascript:alert(1)", "data:,Patient/123", "//fhir.example.org/r4/Patient/123",
	)
}

// TestReferenceCorpus checks, over the generated corpus, that ParseReference
// agrees with the model of the rules and that every check of the package
// that reads references — RefersTo, Member and MemberMap, Binds
// and RefersToOther — agrees with ParseReference.
func TestReferenceCorpus(t *testing.T) {
	c := refChecker(t)
	kinds := map[RefKind]int{}
	for _, ref := range referenceCorpus() {
		r := c.ParseReference(ref)
		kinds[r.Kind]++
		if m := modelParse(c, ref); r != m {
			t.Errorf("ParseReference(%q) = %+v, model %+v", ref, r, m)
			continue
		}
		ours := r.Kind == RefLocal && r.Type == "Patient" && r.ID == "123"
		if got := c.RefersTo(ref, Patient, "123"); got != ours {
			t.Errorf("RefersTo(%q) = %v, ParseReference %+v", ref, got, r)
		}
		lit, _ := json.Marshal(ref)
		doc := obs(string(lit))
		if got, err := member(t, c, doc, Patient, "123"); err != nil || got != ours {
			t.Errorf("Member(%q) = %v, %v, ParseReference %+v", ref, got, err, r)
		}
		if got := c.Binds("Observation", url.Values{"subject": {ref}}, Patient, "123"); got != (ours && r.Version == "") {
			t.Errorf("Binds(subject=%q) = %v, ParseReference %+v", ref, got, r)
		}
		other := c.RefersToOther(ref, Patient, "123")
		if want := modelOther(r, ref, Patient, "123"); other != want {
			t.Errorf("RefersToOther(%q) = %v, model %v (%+v)", ref, other, want, r)
		}
		if ours && (other || !c.RefersToOther(ref, Patient, "9")) {
			t.Errorf("RefersToOther(%q) disagrees with membership", ref)
		}
	}
	for k := RefInvalid; k <= RefConditional; k++ {
		if kinds[k] == 0 {
			t.Errorf("the corpus has no %v", k)
		}
	}
}

func TestReferenceNoAllocs(t *testing.T) {
	c := refChecker(t)
	refs := []string{"Patient/123", "Patient/123/_history/2", "HTTPS://FHIR.example.org:443/r4/Patient/123",
		"https://evil.example/fhir/Patient/9/_history/1", "http://[::1]/fhir/Patient/9", "Patient?identifier=x",
		"urn:uuid:c757873d-ec9a-4326-a141-556f43239520", "#x", "Pati%65nt/9 ", testBase + "/x/Patient/9"}
	for _, ref := range refs {
		if n := testing.AllocsPerRun(50, func() {
			c.ParseReference(ref)
			c.RefersTo(ref, Patient, "123")
			c.RefersToOther(ref, Patient, "123")
		}); n != 0 {
			t.Errorf("%q: %v allocations", ref, n)
		}
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(`{"resourceType":"Observation","performer":[{"reference":"https://evil.example/fhir/Patient/123"},`+
		`{"reference":"Patient/9"},{"reference":"HTTPS://FHIR.EXAMPLE.ORG:443/r4/Patient/123/_history/3"}]}`), &doc); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(50, func() {
		if ok, err := c.MemberMap(doc, Patient, "123"); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}); n != 0 {
		t.Errorf("MemberMap: %v allocations", n)
	}
}

// FuzzParseReference checks that ParseReference never panics, agrees with
// the model of the rules, is consistent with RefersTo, RefersToOther and
// Member, and is stable when its result is rendered again.
func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"Patient/123", "Patient/123/_history/2", testBase + "/Patient/123", "HTTPS://FHIR.example.org:443/r4/Patient/123",
		"http://other.example.com:8080/fhir/Encounter/e1", "https://evil.example/fhir/Patient/9/_history/1", "http://[::1]:80/fhir/Device/d",
		"#x", "urn:uuid:c757873d-ec9a-4326-a141-556f43239520", "urn:oid:1.2.3", "Patient?identifier=x|1", "patient/9", "Pati%65nt/9",
		testBase + "/x/Patient/9", "https://x@evil.example/Patient/9", "Patient/../Patient/123", "https://upper.example/R4/Practitioner/p"} {
		f.Add(s)
	}
	c := refChecker(f)
	f.Fuzz(func(t *testing.T, ref string) {
		r := c.ParseReference(ref)
		if m := modelParse(c, ref); r != m {
			t.Fatalf("ParseReference(%q) = %+v, model %+v", ref, r, m)
		}
		for _, typ := range Types() {
			name := typ.String()
			ours := r.Kind == RefLocal && r.Type == name
			if ours {
				if !c.RefersTo(ref, typ, r.ID) || c.RefersToOther(ref, typ, r.ID) {
					t.Fatalf("%q: a RefLocal %s/%s does not refer to %[3]s, or refers to another", ref, name, r.ID)
				}
				other := "x"
				if r.ID == other {
					other = "y"
				}
				if !c.RefersToOther(ref, typ, other) {
					t.Fatalf("%q: does not refer to another %s than %s", ref, name, other)
				}
			}
			if got := c.RefersTo(ref, typ, "123"); got != (ours && r.ID == "123") {
				t.Fatalf("RefersTo(%q, %s, 123) = %v, ParseReference %+v", ref, name, got, r)
			}
			if got, want := c.RefersToOther(ref, typ, "123"), modelOther(r, ref, typ, "123"); got != want {
				t.Fatalf("RefersToOther(%q, %s, 123) = %v, model %v", ref, name, got, want)
			}
		}
		// Rendered again, a local reference parses to itself, relative and
		// under every base.
		if r.Kind == RefLocal {
			rel := r.Type + "/" + r.ID
			if r.Version != "" {
				rel += history + r.Version
			}
			for _, s := range append([]string{rel}, prefixed(refBases, rel)...) {
				if got := c.ParseReference(s); got != r {
					t.Fatalf("%q parsed %+v, its rendering %q %+v", ref, r, s, got)
				}
			}
		}
		// The scheme and host in lower case change nothing.
		if i := strings.Index(ref, "://"); i > 0 && (asciiLower(ref[:i]) == "https" || asciiLower(ref[:i]) == "http") {
			j := strings.IndexByte(ref[i+3:], '/')
			if j < 0 {
				j = len(ref)
			} else {
				j += i + 3
			}
			if got := c.ParseReference(asciiLower(ref[:j]) + ref[j:]); got != r {
				t.Fatalf("%q parsed %+v, in lower case %+v", ref, r, got)
			}
		}
		if utf8.ValidString(ref) {
			lit, _ := json.Marshal(ref)
			if got, err := c.Member([]byte(obs(string(lit))), Patient, "123"); err != nil || got != c.RefersTo(ref, Patient, "123") {
				t.Fatalf("Member(%q) = %v, %v, RefersTo disagrees", ref, got, err)
			}
		}
	})
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = toLower(c)
	}
	return string(b)
}

func prefixed(bases []string, rel string) []string {
	var out []string
	for _, b := range bases {
		out = append(out, strings.TrimRight(b, "/")+"/"+rel)
	}
	return out
}

// The model of the reference rules: an independent reading with net/url,
// regular expressions and plain string functions, for the tests to compare
// the parser with.
var (
	modelLocal   = regexp.MustCompile(`^([A-Z][A-Za-z]*)/([A-Za-z0-9.-]{1,64})(?:/_history/([A-Za-z0-9.-]{1,64}))?$`)
	modelCond    = regexp.MustCompile(`^([A-Z][A-Za-z]*)\?[^\x00-\x20\x7f#]+$`)
	modelTail    = regexp.MustCompile(`/([A-Za-z]+)/([A-Za-z0-9.-]{1,64})(?:/_history/([A-Za-z0-9.-]{1,64}))?$`)
	modelHost    = regexp.MustCompile(`^(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])$`)
	modelPort    = regexp.MustCompile(`^(?:[1-9][0-9]{0,4})?$`)
	modelPath    = regexp.MustCompile(`^(?:/[A-Za-z0-9._~!$&'()*+,;=:@-]+)*$`)
	modelUUID    = regexp.MustCompile(`^[0-9A-Fa-f-]+$`)
	modelOID     = regexp.MustCompile(`^[0-9.]+$`)
	modelBadByte = regexp.MustCompile(`[^\x21-\x7e]|[%\\?#]`)
)

type modelURL struct{ scheme, host, port, path string }

// modelSplit splits and normalises an absolute http(s) URL.
func modelSplit(s string) (modelURL, bool) {
	if modelBadByte.MatchString(s) || !strings.Contains(s, "://") {
		return modelURL{}, false
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return modelURL{}, false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" || !strings.HasPrefix(s[len(scheme)+1:], "//") {
		return modelURL{}, false
	}
	host, port := u.Host, ""
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		host, port = host[:i], host[i+1:]
	}
	if !modelHost.MatchString(host) || !modelPort.MatchString(port) {
		return modelURL{}, false
	}
	if n, _ := strconv.Atoi(port); n > 65535 {
		return modelURL{}, false
	}
	if port == map[string]string{"http": "80", "https": "443"}[scheme] {
		port = ""
	}
	path := strings.TrimSuffix(u.Path, "/")
	if u.Path != "/" && path != u.Path || !modelPath.MatchString(path) {
		return modelURL{}, false
	}
	for _, seg := range strings.Split(path, "/") {
		if seg == "." || seg == ".." {
			return modelURL{}, false
		}
	}
	return modelURL{scheme, strings.ToLower(host), port, path}, true
}

func modelParse(c *Checker, ref string) Ref {
	switch {
	case ref == "":
		return invalid
	case ref[0] == '#':
		return contained
	}
	if i := strings.IndexAny(ref, ":/?#"); i > 0 && ref[i] == ':' {
		switch rest := ref[i+1:]; strings.ToLower(ref[:i]) {
		case "urn":
			nid, nss, _ := strings.Cut(rest, ":")
			if strings.EqualFold(nid, "uuid") && modelUUID.MatchString(nss) || strings.EqualFold(nid, "oid") && modelOID.MatchString(nss) {
				return urn
			}
		case "http", "https":
			return modelAbs(c, ref)
		}
		return invalid
	}
	if m := modelCond.FindStringSubmatch(ref); m != nil {
		return Ref{Kind: RefConditional, Type: m[1]}
	}
	if m := modelLocalMatch(ref); m != nil {
		return local(m[1], m[2], m[3])
	}
	return invalid
}

// modelLocalMatch matches T/id{/_history/v}, id and v not "." or "..".
func modelLocalMatch(s string) []string {
	m := modelLocal.FindStringSubmatch(s)
	if m == nil || m[2] == "." || m[2] == ".." || m[3] == "." || m[3] == ".." {
		return nil
	}
	return m
}

func modelAbs(c *Checker, ref string) Ref {
	u, ok := modelSplit(ref)
	if !ok {
		return invalid
	}
	ours := false
	for _, raw := range c.bases {
		// Read the normalised base again, as a user would have written it.
		b, ok := modelSplit(raw.scheme + "://" + raw.host + ":" + raw.port + raw.path)
		if !ok {
			panic(raw)
		}
		if u.scheme != b.scheme || u.host != b.host || u.port != b.port {
			continue
		}
		if rest, ok := strings.CutPrefix(u.path, b.path+"/"); ok {
			if m := modelLocalMatch(rest); m != nil {
				return local(m[1], m[2], m[3])
			}
			ours = true
		} else if u.path == b.path {
			ours = true
		}
	}
	if ours {
		return invalid
	}
	if m := modelTail.FindStringSubmatch(u.path); m != nil {
		return external(m[1], m[2], m[3])
	}
	return externalURL
}

func modelOther(r Ref, ref string, t Type, id string) bool {
	name := strings.ToLower(t.String())
	switch r.Kind {
	case RefLocal, RefExternal:
		return r.Type != "" && strings.ToLower(r.Type) == name && r.ID != id
	case RefConditional:
		return strings.ToLower(r.Type) == name
	case RefInvalid:
		for i := range ref {
			// 3 bytes of ref a byte of name at most: a window suffices.
			if strings.HasPrefix(strings.ToLower(percentDecode(ref[i:min(len(ref), i+3*len(name))])), name) {
				return true
			}
		}
	}
	return false
}

// percentDecode decodes every well-formed %XX of s once, leaving the rest.
func percentDecode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil && !strings.ContainsAny(s[i+1:i+3], "+-") {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
