package compartment

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/fhir"
)

const testBase = "https://fhir.example.org/r4"

func newChecker(t testing.TB, cfg Config) *Checker {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// member runs Member and, for valid JSON, MemberMap, and fails when they
// disagree.
func member(t *testing.T, c *Checker, doc string, typ Type, id string) (bool, error) {
	t.Helper()
	got, err := c.Member([]byte(doc), typ, id)
	var m map[string]any
	if json.Unmarshal([]byte(doc), &m) == nil && !errors.Is(err, errMalformed) {
		got2, err2 := c.MemberMap(m, typ, id)
		if got2 != got || (err == nil) != (err2 == nil) {
			t.Errorf("Member = %v, %v but MemberMap = %v, %v", got, err, got2, err2)
		}
	}
	return got, err
}

func obs(subject string) string {
	return `{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"},"subject":{"reference":` +
		strings.TrimSpace(subject) + `}}`
}

func TestMemberReferenceForms(t *testing.T) {
	c := newChecker(t, Config{FHIRVersion: fhir.R4, BaseURLs: []string{testBase, "http://other.example.com/fhir/"}})
	tests := []struct {
		name string
		ref  string // JSON string literal for subject.reference
		want bool
	}{
		{"relative", `"Patient/123"`, true},
		{"versioned", `"Patient/123/_history/2"`, true},
		{"versioned dotted", `"Patient/123/_history/a.b-1"`, true},
		{"own base", `"https://fhir.example.org/r4/Patient/123"`, true},
		{"own base versioned", `"https://fhir.example.org/r4/Patient/123/_history/7"`, true},
		{"own base host case", `"HTTPS://FHIR.Example.ORG/r4/Patient/123"`, true},
		{"second base", `"http://other.example.com/fhir/Patient/123"`, true},
		{"escaped slash", `"Patient\/123"`, true},
		{"unicode escape", `"Patient\u002f123"`, true},
		{"longer id", `"Patient/1234"`, false},
		{"shorter id", `"Patient/12"`, false},
		{"leading zero", `"Patient/0123"`, false},
		{"id as prefix", `"Patient/123x"`, false},
		{"id as suffix of other", `"Patient/x123"`, false},
		{"trailing slash", `"Patient/123/"`, false},
		{"empty version", `"Patient/123/_history/"`, false},
		{"path after version", `"Patient/123/_history/2/x"`, false},
		{"bad version", `"Patient/123/_history/2 "`, false},
		{"lower-case type", `"patient/123"`, false},
		{"upper-case type", `"PATIENT/123"`, false},
		{"id case", `"Patient/ABC"`, false},
		{"leading space", `" Patient/123"`, false},
		{"trailing space", `"Patient/123 "`, false},
		{"newline", `"Patient/123\n"`, false},
		{"encoded slash", `"Patient%2F123"`, false},
		{"encoded id", `"Patient/%31%32%33"`, false},
		{"leading slash", `"/Patient/123"`, false},
		{"dot segment", `"Patient/x/../123"`, false},
		{"group", `"Group/123"`, false},
		{"other type path", `"Group/Patient/123"`, false},
		{"type suffix", `"XPatient/123"`, false},
		{"other server", `"https://evil.example/fhir/Patient/123"`, false},
		{"base as prefix", `"https://fhir.example.org/r4evil/Patient/123"`, false},
		{"deeper path", `"https://fhir.example.org/r4/x/Patient/123"`, false},
		{"host suffix", `"https://fhir.example.org.evil/r4/Patient/123"`, false},
		{"other scheme", `"http://fhir.example.org/r4/Patient/123"`, false},
		{"path case", `"https://fhir.example.org/R4/Patient/123"`, false},
		{"userinfo", `"https://x@fhir.example.org/r4/Patient/123"`, false},
		{"query", `"https://fhir.example.org/r4/Patient/123?x=1"`, false},
		{"contained", `"#123"`, false},
		{"urn", `"urn:uuid:123"`, false},
		{"bare id", `"123"`, false},
		{"not a string", `123`, false},
		{"null", `null`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := member(t, c, obs(tt.ref), Patient, "123")
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Member(subject %s) = %v, want %v", tt.ref, got, tt.want)
			}
		})
	}
}

func TestMemberShapes(t *testing.T) {
	c := newChecker(t, Config{FHIRVersion: fhir.R4, BaseURLs: []string{testBase}, IncludeLinkedPatients: true})
	c5 := newChecker(t, Config{FHIRVersion: fhir.R5})
	tests := []struct {
		name string
		c    *Checker
		typ  Type
		id   string
		doc  string
		want bool
	}{
		{"performer array", c, Patient, "123", `{"resourceType":"Observation","performer":[{"reference":"Practitioner/9"},{"reference":"Patient/123"}]}`, true},
		{"nested backbone array", c, Patient, "123", `{"resourceType":"Appointment","participant":[{"actor":{"reference":"Practitioner/1"}},{"actor":{"reference":"Patient/123"}}]}`, true},
		{"deep backbone", c, Patient, "123", `{"resourceType":"CarePlan","activity":[{"detail":{"performer":[{"reference":"Patient/123"}]}}]}`, true},
		{"where Patient filter", c, Patient, "123", `{"resourceType":"Basic","subject":{"reference":"Patient/123"}}`, true},
		{"resourceType last", c, Patient, "123", `{"id":"o","subject":{"reference":"Patient/123"},"status":"final","resourceType":"Observation"}`, true},
		{"resourceType middle", c, Patient, "123", `{"performer":[{"reference":"Patient/123"}],"resourceType":"Observation","subject":{"reference":"Group/1"}}`, true},
		{"focal patient", c, Patient, "123", `{"resourceType":"Patient","id":"123","name":[{"family":"X"}]}`, true},
		{"focal patient id last", c, Patient, "123", `{"resourceType":"Patient","active":true,"id":"123"}`, true},
		{"focal escaped id", c, Patient, "123", `{"resourceType":"Patient","id":"\u0031\u0032\u0033"}`, true},
		{"linked patient", c, Patient, "123", `{"resourceType":"Patient","id":"9","link":[{"other":{"reference":"Patient/123"},"type":"seealso"}]}`, true},
		{"choice type cast", c, Device, "d1", `{"resourceType":"DeviceRequest","codeReference":{"reference":"Device/d1"}}`, true},
		{"codeable reference", c, Patient, "123", `{"resourceType":"Observation","subject":{"reference":{"reference":"Patient/123"}}}`, true},
		{"encounter compartment", c, Encounter, "e1", `{"resourceType":"Observation","encounter":{"reference":"Encounter/e1"}}`, true},
		{"encounter focal", c, Encounter, "e1", `{"resourceType":"Encounter","id":"e1"}`, true},
		{"device focal not listed in R4", c, Device, "d1", `{"resourceType":"Device","id":"d1"}`, true},
		{"R5 ofType Reference", c5, Patient, "123", `{"resourceType":"RequestOrchestration","action":[{"participant":[{"actorReference":{"reference":"Patient/123"}}]}]}`, true},
		{"R5 Task focus", c5, Patient, "123", `{"resourceType":"Task","for":{"reference":"Patient/123"}}`, true},
		{"R4 Task not a member type", c, Patient, "123", `{"resourceType":"Task","for":{"reference":"Patient/123"}}`, false},
		{"R5 canonical participant links nothing", c5, Patient, "123", `{"resourceType":"RequestOrchestration","action":[{"participant":[{"actorCanonical":"Patient/123"}]}]}`, false},
		{"other patient's focal", c, Patient, "123", `{"resourceType":"Patient","id":"1234"}`, false},
		{"observation with the id", c, Patient, "123", `{"resourceType":"Observation","id":"123"}`, false},
		{"not a linking element", c, Patient, "123", `{"resourceType":"Observation","focus":[{"reference":"Patient/123"}],"hasMember":[{"reference":"Patient/123"}]}`, false},
		{"identifier only", c, Patient, "123", `{"resourceType":"Observation","subject":{"identifier":{"value":"123"},"display":"Patient/123"}}`, false},
		{"type and bare id", c, Patient, "123", `{"resourceType":"Observation","subject":{"type":"Patient","reference":"123"}}`, false},
		{"contained patient", c, Patient, "123", `{"resourceType":"Observation","contained":[{"resourceType":"Patient","id":"123"}],"subject":{"reference":"#123"}}`, false},
		{"contained member", c, Patient, "123", `{"resourceType":"List","contained":[{"resourceType":"Observation","subject":{"reference":"Patient/123"}}]}`, false},
		{"extension reference", c, Patient, "123", `{"resourceType":"Observation","extension":[{"url":"x","valueReference":{"reference":"Patient/123"}}]}`, false},
		{"subject in wrong place", c, Patient, "123", `{"resourceType":"Observation","code":{"subject":{"reference":"Patient/123"}}}`, false},
		{"group subject", c, Patient, "123", `{"resourceType":"Observation","subject":{"reference":"Group/123"}}`, false},
		{"where filter refuses other type", c, RelatedPerson, "123", `{"resourceType":"Person","link":[{"target":{"reference":"Patient/123"}}]}`, false},
		{"nested arrays", c, Patient, "123", `{"resourceType":"Observation","performer":[[{"reference":"Patient/123"}]]}`, false},
		{"medication not a member", c, Patient, "123", `{"resourceType":"Medication","subject":{"reference":"Patient/123"}}`, false},
		{"empty object", c, Patient, "123", `{"resourceType":"Observation"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := member(t, tt.c, tt.doc, tt.typ, tt.id)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Member = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestMemberLinkedPatients: by default a Patient's link puts it in no other
// patient's compartment (the attack: Patient/9 links to Patient/123 and is
// read under 123's grant); IncludeLinkedPatients makes the link count.
func TestMemberLinkedPatients(t *testing.T) {
	def := newChecker(t, Config{})
	incl := newChecker(t, Config{IncludeLinkedPatients: true})
	tests := []struct {
		name           string
		doc            string
		byDefault, inc bool
	}{
		{"linked patient", `{"resourceType":"Patient","id":"9","link":[{"other":{"reference":"Patient/123"}}]}`, false, true},
		{"focal patient", `{"resourceType":"Patient","id":"123","link":[{"other":{"reference":"Patient/9"}}]}`, true, true},
		{"observation still linked", obs(`"Patient/123"`), true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, c := range []struct {
				c    *Checker
				want bool
			}{{def, tt.byDefault}, {incl, tt.inc}} {
				got, err := member(t, c.c, tt.doc, Patient, "123")
				if err != nil || got != c.want {
					t.Errorf("Member (include linked %v) = %v, %v, want %v", c.c == incl, got, err, c.want)
				}
			}
		})
	}
}

// TestNewDefaultsToR4: the zero FHIRVersion is R4.
func TestNewDefaultsToR4(t *testing.T) {
	c := newChecker(t, Config{})
	if _, ok := c.Definition(Patient).Resource("Task"); ok {
		t.Error("Task is a Patient compartment member type of R5, not R4")
	}
	if _, ok := newChecker(t, Config{FHIRVersion: fhir.R5}).Definition(Patient).Resource("Task"); !ok {
		t.Error("Task is a Patient compartment member type of R5")
	}
}

func TestMemberErrors(t *testing.T) {
	c := newChecker(t, Config{FHIRVersion: fhir.R4})
	tests := []struct {
		name string
		doc  string
		typ  Type
		id   string
		err  error
	}{
		{"empty", ``, Patient, "123", errMalformed},
		{"truncated", `{"resourceType":"Observation","subject":{"reference":"Patient/123"}`, Patient, "123", errMalformed},
		{"truncated string", `{"resourceType":"Observation","subject":{"reference":"Patient/123`, Patient, "123", errMalformed},
		{"trailing data", obs(`"Patient/123"`) + `x`, Patient, "123", errMalformed},
		{"two documents", obs(`"Patient/123"`) + obs(`"Patient/123"`), Patient, "123", errMalformed},
		{"single quotes", `{'resourceType':'Observation'}`, Patient, "123", errMalformed},
		{"trailing comma", `{"resourceType":"Observation","subject":{"reference":"Patient/123"},}`, Patient, "123", errMalformed},
		{"bad escape", `{"resourceType":"Observation","subject":{"reference":"Patient\x/123"}}`, Patient, "123", errMalformed},
		{"control character", "{\"resourceType\":\"Observation\",\"subject\":{\"reference\":\"Patient/\x01123\"}}", Patient, "123", errMalformed},
		{"bad number after member", `{"resourceType":"Observation","subject":{"reference":"Patient/123"},"x":01}`, Patient, "123", errMalformed},
		{"bad literal", `{"resourceType":"Observation","x":tru}`, Patient, "123", errMalformed},
		{"duplicate subject", `{"resourceType":"Observation","subject":{"reference":"Patient/123"},"subject":{"reference":"Patient/9"}}`, Patient, "123", errMalformed},
		{"duplicate subject escaped", `{"resourceType":"Observation","subject":{"reference":"Patient/123"},"sub\u006aect":{"reference":"Patient/9"}}`, Patient, "123", errMalformed},
		{"duplicate reference", `{"resourceType":"Observation","subject":{"reference":"Patient/123","reference":"Patient/9"}}`, Patient, "123", errMalformed},
		{"duplicate resourceType", `{"resourceType":"Observation","resourceType":"Patient","id":"123"}`, Patient, "123", errMalformed},
		{"duplicate id", `{"resourceType":"Patient","id":"123","id":"9"}`, Patient, "123", errMalformed},
		{"strict: case-variant duplicate", `{"resourceType":"Observation","subject":{"reference":"Patient/9"},"Subject":{"reference":"Patient/123"}}`, Patient, "123", errMalformed},
		{"strict: invalid UTF-8", "{\"resourceType\":\"Observation\",\"subject\":{\"reference\":\"Patient/123\"},\"note\":\"\xff\"}", Patient, "123", errMalformed},
		{"strict: BOM", "\xef\xbb\xbf" + obs(`"Patient/123"`), Patient, "123", errMalformed},
		{"no resourceType", `{"id":"123","subject":{"reference":"Patient/123"}}`, Patient, "123", errNotResource},
		{"resourceType not a string", `{"resourceType":1}`, Patient, "123", errNotResource},
		{"array", `[{"resourceType":"Patient","id":"123"}]`, Patient, "123", errNotResource},
		{"string", `"Patient/123"`, Patient, "123", errNotResource},
		{"invalid id", obs(`"Patient/1 2"`), Patient, "1 2", errInvalidID},
		{"empty id", obs(`"Patient/"`), Patient, "", errInvalidID},
		{"long id", obs(`"Patient/1"`), Patient, strings.Repeat("1", 65), errInvalidID},
		{"slash in id", obs(`"Patient/1/_history/2"`), Patient, "1/_history/2", errInvalidID},
		{"dot segment id", obs(`"Patient/.."`), Patient, "..", errInvalidID},
		{"dot id", obs(`"Patient/."`), Patient, ".", errInvalidID},
		{"unknown type", obs(`"Patient/123"`), Type(9), "123", errUnknownType},
		{"zero type", obs(`"Patient/123"`), 0, "123", errUnknownType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Member([]byte(tt.doc), tt.typ, tt.id)
			if !errors.Is(err, tt.err) || got {
				t.Errorf("Member = %v, %v, want false, %v", got, err, tt.err)
			}
			if tt.err == errMalformed && json.Valid([]byte(tt.doc)) && !strings.Contains(tt.name, "duplicate") && !strings.Contains(tt.name, "strict") {
				t.Errorf("json.Valid accepts the malformed case")
			}
		})
	}
}

func TestMemberDepth(t *testing.T) {
	c := newChecker(t, Config{FHIRVersion: fhir.R4})
	deep := `{"resourceType":"Observation","x":` + strings.Repeat("[", 128) + strings.Repeat("]", 128) + `}`
	if _, err := c.Member([]byte(deep), Patient, "123"); !errors.Is(err, errMalformed) {
		t.Errorf("deep nesting: err = %v, want ErrMalformed", err)
	}
	ok := `{"resourceType":"Observation","x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `,"subject":{"reference":"Patient/123"}}`
	if got, err := c.Member([]byte(ok), Patient, "123"); err != nil || !got {
		t.Errorf("moderate nesting: %v, %v", got, err)
	}
}

func TestMemberMapErrors(t *testing.T) {
	c := newChecker(t, Config{FHIRVersion: fhir.R4})
	if _, err := c.MemberMap(map[string]any{"id": "123"}, Patient, "123"); !errors.Is(err, errNotResource) {
		t.Errorf("no resourceType: %v", err)
	}
	if _, err := c.MemberMap(map[string]any{"resourceType": "Patient"}, Patient, "a b"); !errors.Is(err, errInvalidID) {
		t.Errorf("bad id: %v", err)
	}
}

func TestRefersTo(t *testing.T) {
	c := newChecker(t, Config{FHIRVersion: fhir.R5, BaseURLs: []string{testBase + "/"}})
	tests := []struct {
		ref  string
		typ  Type
		id   string
		want bool
	}{
		{"Encounter/e.1", Encounter, "e.1", true},
		{testBase + "/Practitioner/p-1/_history/3", Practitioner, "p-1", true},
		{"Practitioner/p-1", Patient, "p-1", false},
		{"Patient/123", Patient, "12 3", false},
		{"Patient/123", Type(0), "123", false},
		{testBase + "Patient/123", Patient, "123", false},
		{testBase + "//Patient/123", Patient, "123", false},
	}
	for _, tt := range tests {
		if got := c.RefersTo(tt.ref, tt.typ, tt.id); got != tt.want {
			t.Errorf("RefersTo(%q, %v, %q) = %v, want %v", tt.ref, tt.typ, tt.id, got, tt.want)
		}
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"R4", Config{FHIRVersion: fhir.R4}, true},
		{"R5 with base", Config{FHIRVersion: fhir.R5, BaseURLs: []string{"https://h.example/fhir"}}, true},
		{"no version: R4", Config{}, true},
		{"bad version", Config{FHIRVersion: 7}, false},
		{"relative base", Config{FHIRVersion: fhir.R4, BaseURLs: []string{"/fhir"}}, false},
		{"ftp base", Config{FHIRVersion: fhir.R4, BaseURLs: []string{"ftp://h.example/fhir"}}, false},
		{"base with query", Config{FHIRVersion: fhir.R4, BaseURLs: []string{"https://h.example/fhir?x"}}, false},
		{"base with fragment", Config{FHIRVersion: fhir.R4, BaseURLs: []string{"https://h.example/fhir#x"}}, false},
		{"base with user", Config{FHIRVersion: fhir.R4, BaseURLs: []string{"https://u@h.example/fhir"}}, false},
		{"base with escape", Config{FHIRVersion: fhir.R4, BaseURLs: []string{"https://h.example/f%2Fhir"}}, false},
		{"unparsable base", Config{FHIRVersion: fhir.R4, BaseURLs: []string{"https://h.example:x/"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("New: %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, errConfig) {
				t.Errorf("error %v is not errConfig", err)
			}
		})
	}
}
