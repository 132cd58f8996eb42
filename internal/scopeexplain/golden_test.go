package scopeexplain

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

const lab = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"

// goldenCases are run through Run; each writes testdata/<name>.golden.
var goldenCases = []struct {
	name  string
	args  []string
	stdin string
}{
	// Valid scopes of every kind.
	{"v1", []string{"patient/Observation.read patient/*.write user/Appointment.* system/*.read launch/patient"}, ""},
	{"v2", []string{"launch/patient patient/Observation.rs patient/Observation.c patient/Observation.rd user/*.cruds system/Encounter.cud"}, ""},
	{"v2_with_v1_forms", []string{"user/Patient.rs user/Appointment.cud user/Observation.cruds user/Condition.r"}, ""},
	{"granular", []string{"launch/patient patient/Observation.rs?category=" + lab + ",vital-signs&code=http://loinc.org|2339-0 patient/Condition.rs?category=problem-list-item&clinical-status=active"}, ""},
	{"granular_unusual", []string{"launch/patient patient/Observation.rs?code:in=http://valueset.example.org/ValueSet/diabetes-codes patient/Observation.rs?patient.birthdate=1990 patient/Observation.rs?date=ge2020-01-01T00:00:00+05:00 patient/Observation.rs?code=a%5C,b%26c patient/Observation.rs?foo=bar patient/*.rs?_security=http://terminology.hl7.org/CodeSystem/v3-Confidentiality|N"}, ""},
	{"granular_union", []string{"launch/patient patient/Observation.rs?category=" + lab + " patient/Observation.rs?category=vital-signs patient/Observation.r?category=exam patient/Observation.s"}, ""},
	{"wildcards", []string{"launch/patient patient/*.rs patient/Observation.rs patient/Observation.cu user/*.cruds system/*.rs"}, ""},
	{"launch", []string{"launch launch/patient launch/encounter launch/imagingstudy launch/list?role=https://example.org/med-list-at-home launch/Patient launch/patients launch/myapp launch/foo? launch/"}, ""},
	{"identity_refresh", []string{"openid fhirUser profile offline_access online_access"}, ""},
	{"fhiruser_without_openid", []string{"fhirUser patient/Patient.r"}, ""},
	{"extension", []string{"__profilePhoto.manage https://ehr.example.org/scopes/profilePhoto.manage http://smarthealthit.org/fhir/scopes/patient/*.r http://openid.net/specs/openid-connect-core-1_0#openid urn:example:scope Openid offline-access FHIRUSER openid,fhirUser openid+fhirUser Observation.rs"}, ""},
	{"spec_token_example", []string{"launch/patient patient/Observation.rs patient/Patient.rs offline_access"}, ""},
	{"release_specific_types", []string{"system/Transport.rs system/MedicinalProduct.rs system/Observation.rs"}, ""},
	{"mixed_contexts", []string{"patient/Observation.rs user/Observation.rs system/Observation.s"}, ""},

	// Invalid scopes.
	{"invalid_letters", []string{"patient/Observation.sr patient/Observation.rr patient/Observation.dus patient/Observation.rsx patient/Observation.reads patient/Observation.RS patient/Observation.Read patient/Observation. patient/Observation patient/Observation.x patient/Observation.WRITE"}, ""},
	{"invalid_context", []string{"Patient/Observation.rs */Observation.rs PATIENT/Observation.read patients/Observation.rs User/*.cruds"}, ""},
	{"invalid_type", []string{"patient/observation.rs patient/Observations.rs patient/AllergyIntolerances.rs patient/Obsevation.rs patient/Foo.rs patient/Observation-x.rs patient/1Observation.rs patient/.rs patient/OBSERVATION.read"}, ""},
	{"invalid_constraints", []string{"patient/Observation.read?category=laboratory patient/*.*?x=1 patient/Observation.rs? patient/Observation.rs?category patient/Observation.rs?=1 patient/Observation.rs?category= patient/Observation.rs?category=a& patient/Observation.rs?a=1&&b=2 patient/Observation.rs?a=%zz patient/Observation.rs?code:=1 patient/Observation.rs?.a=1"}, ""},
	{"invalid_characters", []string{`"openid" patient/Observatión.rs openid\ patient/Observation.rs?code="x"`}, ""},
	{"only_invalid", []string{"patient/Observation.sr"}, ""},

	// Duplicates, equivalents, redundancy.
	{"duplicates", []string{"launch/patient patient/Observation.rs patient/Observation.rs patient/Observation.read patient/Observation.r patient/Observation.s patient/Observation.rs?category=laboratory patient/Observation.sr patient/Observation.sr openid openid"}, ""},

	// Empty strings and white space.
	{"empty", []string{""}, ""},
	{"only_spaces", []string{"   "}, ""},
	{"extra_spaces", []string{"  launch/patient   patient/Observation.rs  "}, ""},
	{"tab", []string{"launch/patient\tpatient/Observation.rs openid"}, ""},
	{"newline", []string{"launch/patient patient/Observation.rs\npatient/Condition.rs"}, ""},
	{"crlf_and_nbsp", []string{"launch/patient\r\npatient/Observation.rs patient/Condition.rs\u00a0openid"}, ""},

	// Argument handling.
	{"several_args", []string{"launch/patient", "patient/Observation.rs", "openid", "fhirUser"}, ""},
	{"flag_after_scope", []string{"openid", "--json"}, ""},
	{"double_dash", []string{"--", "-x", "openid"}, ""},
	{"stdin", []string{"-"}, "launch/patient patient/Observation.rs\n"},
	{"stdin_crlf_tab", []string{"-"}, "launch/patient\tpatient/Observation.rs\r\n"},
	{"stdin_empty", []string{"-"}, ""},
	{"usage_no_args", nil, ""},
	{"usage_unknown_flag", []string{"--yaml", "openid"}, ""},
	{"usage_stdin_and_args", []string{"-", "openid"}, ""},
	{"help", []string{"-h"}, ""},

	// JSON.
	{"json_v1_v2", []string{"--json", "launch/patient patient/Observation.read user/Observation.rs"}, ""},
	{"json_granular", []string{"--json", "launch/patient patient/Observation.rs?category=" + lab + ",vital-signs&code=http://loinc.org|2339-0 patient/*.rs?_security=N"}, ""},
	{"json_invalid", []string{"--json", "patient/Observation.sr Patient/observations.rs patient/Observation.read?x=1 launch/Patient openid\tfhirUser"}, ""},
	{"json_launch_identity", []string{"--json", "launch launch/encounter launch/list?role=https://example.org/med-list-at-home openid fhirUser offline_access __x"}, ""},
	{"json_empty", []string{"--json", ""}, ""},
}

func TestGolden(t *testing.T) {
	seen := map[string]bool{}
	for _, tc := range goldenCases {
		if seen[tc.name] {
			t.Fatalf("duplicate case name %s", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, strings.NewReader(tc.stdin), &stdout, &stderr)
			got := render(tc.args, tc.stdin, code, stdout.String(), stderr.String())
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s (run go test -update and review the diff):\n%s", path, got)
			}
			if hasJSONFlag(tc.args) && code != exitUsage {
				if !json.Valid(stdout.Bytes()) {
					t.Errorf("--json output is not valid JSON:\n%s", stdout.String())
				}
			}
		})
	}
	// Every golden file belongs to a case.
	files, _ := filepath.Glob(filepath.Join("testdata", "*.golden"))
	for _, f := range files {
		if name := strings.TrimSuffix(filepath.Base(f), ".golden"); !seen[name] {
			t.Errorf("%s belongs to no case: remove it", f)
		}
	}
}

func hasJSONFlag(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "--json" || a == "-json" {
			return true
		}
	}
	return false
}

func render(args []string, stdin string, code int, stdout, stderr string) string {
	var b strings.Builder
	b.WriteString("$ fhirguard scope explain")
	for _, a := range args {
		b.WriteString(" " + strconv.Quote(a))
	}
	b.WriteByte('\n')
	if stdin != "" {
		fmt.Fprintf(&b, "stdin: %s\n", strconv.Quote(stdin))
	}
	fmt.Fprintf(&b, "exit: %d\n", code)
	fmt.Fprintf(&b, "--- stdout\n%s", stdout)
	if stderr != "" {
		fmt.Fprintf(&b, "--- stderr\n%s", stderr)
	}
	return b.String()
}
