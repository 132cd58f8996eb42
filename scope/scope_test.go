package scope

import (
	"errors"
	"slices"
	"testing"
)

const (
	lab = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
	vs  = "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"
)

// want describes the expected parse of a resource scope.
type want struct {
	kind   Kind
	ctx    Context
	typ    string
	known  bool
	perms  Permission
	v1     bool
	cons   []Constraint
	launch string
	role   string
	name   string
	err    error
}

// TestParseVectors covers vectors P1–P36 of the SMART notes (§9.1) and more
// variants of each rule.
func TestParseVectors(t *testing.T) {
	tests := []struct {
		id, in string
		want   want
	}{
		{"P1", "patient/Observation.rs", want{kind: KindResource, ctx: Patient, typ: "Observation", known: true, perms: Read | Search}},
		{"P2", "user/*.cruds", want{kind: KindResource, ctx: User, typ: "*", known: true, perms: All}},
		{"P3", "system/Encounter.cud", want{kind: KindResource, ctx: System, typ: "Encounter", known: true, perms: Create | Update | Delete}},
		{"P4", "patient/Patient.r", want{kind: KindResource, ctx: Patient, typ: "Patient", known: true, perms: Read}},
		{"P5", "patient/Observation.c", want{kind: KindResource, ctx: Patient, typ: "Observation", known: true, perms: Create}},
		{"P6", "patient/Observation.rs?category=" + lab, want{kind: KindResource, ctx: Patient, typ: "Observation", known: true, perms: Read | Search,
			cons: []Constraint{{Name: "category", Value: lab, Values: []string{lab}}}}},
		{"P7", "patient/Observation.read", want{kind: KindResource, ctx: Patient, typ: "Observation", known: true, perms: Read | Search, v1: true}},
		{"P8", "patient/*.write", want{kind: KindResource, ctx: Patient, typ: "*", known: true, perms: Create | Update | Delete, v1: true}},
		{"P9", "user/Appointment.*", want{kind: KindResource, ctx: User, typ: "Appointment", known: true, perms: All, v1: true}},
		{"P10", "patient/*.*", want{kind: KindResource, ctx: Patient, typ: "*", known: true, perms: All, v1: true}},
		{"P11", "system/*.read", want{kind: KindResource, ctx: System, typ: "*", known: true, perms: Read | Search, v1: true}},
		{"P12", "patient/Observation.rd", want{kind: KindResource, ctx: Patient, typ: "Observation", known: true, perms: Read | Delete}},
		{"P13", "patient/Observation.dus", want{err: errPermissionOrder}},
		{"P14", "patient/Observation.sr", want{err: errPermissionOrder}},
		{"P15", "patient/Observation.rr", want{err: errPermissionOrder}},
		{"P16", "patient/Observation.", want{err: errEmptyPermissions}},
		{"P17a", "patient/Observation.rsx", want{err: errUnknownPermission}},
		{"P17b", "patient/Observation.reads", want{err: errUnknownPermission}},
		{"P18", "Patient/Observation.rs", want{err: errContext}},
		{"P19", "patient/observation.rs", want{kind: KindResource, ctx: Patient, typ: "observation", known: false, perms: Read | Search}},
		{"P20", "*/Observation.rs", want{err: errContext}},
		{"P21", "patient/Observation.rs?category=" + lab + "&code=http://loinc.org|2339-0", want{kind: KindResource, ctx: Patient, typ: "Observation", known: true, perms: Read | Search,
			cons: []Constraint{{Name: "category", Value: lab, Values: []string{lab}}, {Name: "code", Value: "http://loinc.org|2339-0", Values: []string{"http://loinc.org|2339-0"}}}}},
		{"P22", "patient/Observation.rs?category=" + lab + "," + vs, want{kind: KindResource, ctx: Patient, typ: "Observation", known: true, perms: Read | Search,
			cons: []Constraint{{Name: "category", Value: lab + "," + vs, Values: []string{lab, vs}}}}},
		{"P23", "patient/Observation.rs?code:in=http://valueset.example.org/ValueSet/diabetes-codes", want{kind: KindResource, ctx: Patient, typ: "Observation", known: true, perms: Read | Search,
			cons: []Constraint{{Name: "code", Modifier: "in", Value: "http://valueset.example.org/ValueSet/diabetes-codes", Values: []string{"http://valueset.example.org/ValueSet/diabetes-codes"}}}}},
		{"P24", "patient/Observation.read?category=x", want{err: errV1Constraint}},
		{"P25", "patient/Observation.rs?", want{err: errConstraint}},
		{"P26", "launch", want{kind: KindLaunch}},
		{"P27a", "launch/patient", want{kind: KindLaunch, launch: "patient"}},
		{"P27b", "launch/encounter", want{kind: KindLaunch, launch: "encounter"}},
		{"P28", "launch/imagingstudy", want{kind: KindLaunch, launch: "imagingstudy"}},
		{"P29", "launch/list?role=https://example.org/med-list-at-home", want{kind: KindLaunch, launch: "list", role: "https://example.org/med-list-at-home"}},
		{"P30a", "openid", want{kind: KindIdentity, name: "openid"}},
		{"P30b", "fhirUser", want{kind: KindIdentity, name: "fhirUser"}},
		{"P30c", "profile", want{kind: KindIdentity, name: "profile"}},
		{"P31a", "offline_access", want{kind: KindRefresh, name: "offline_access"}},
		{"P31b", "online_access", want{kind: KindRefresh, name: "online_access"}},
		{"P32", "__profilePhoto.manage", want{kind: KindExtension, name: "__profilePhoto.manage"}},
		{"P33", "https://ehr.example.org/scopes/profilePhoto.manage", want{kind: KindExtension, name: "https://ehr.example.org/scopes/profilePhoto.manage"}},
		{"P34", "http://smarthealthit.org/fhir/scopes/patient/*.r", want{kind: KindExtension, name: "http://smarthealthit.org/fhir/scopes/patient/*.r"}},
		{"P36", "patient/Observation.rs?date=ge2020-01-01T00:00:00+05:00", want{kind: KindResource, ctx: Patient, typ: "Observation", known: true, perms: Read | Search,
			cons: []Constraint{{Name: "date", Value: "ge2020-01-01T00:00:00+05:00", Values: []string{"ge2020-01-01T00:00:00+05:00"}}}}},

		// More variants of the same rules.
		{"all letters v2", "system/*.cruds", want{kind: KindResource, ctx: System, typ: "*", known: true, perms: All}},
		{"single s", "user/Observation.s", want{kind: KindResource, ctx: User, typ: "Observation", known: true, perms: Search}},
		{"cu", "patient/Observation.cu", want{kind: KindResource, ctx: Patient, typ: "Observation", known: true, perms: Create | Update}},
		{"ds", "patient/Observation.ds", want{kind: KindResource, ctx: Patient, typ: "Observation", known: true, perms: Delete | Search}},
		{"upper letters", "patient/Observation.RS", want{err: errUnknownPermission}},
		{"v1 upper", "patient/Observation.READ", want{err: errUnknownPermission}},
		{"v1 readwrite", "patient/Observation.readwrite", want{err: errUnknownPermission}},
		{"double star", "patient/*.**", want{err: errUnknownPermission}},
		{"scs", "patient/Observation.scs", want{err: errPermissionOrder}},
		{"csr", "patient/Observation.crs", want{kind: KindResource, ctx: Patient, typ: "Observation", known: true, perms: Create | Read | Search}},
		{"no dot", "patient/Observation", want{err: errEmptyPermissions}},
		{"empty type", "patient/.rs", want{err: errResourceType}},
		{"type with slash", "patient/Observation/1.rs", want{err: errResourceType}},
		{"type with dash", "patient/Obs-ervation.rs", want{err: errResourceType}},
		{"two dots", "patient/Observation.r.s", want{err: errUnknownPermission}},
		{"PATIENT upper", "PATIENT/Observation.rs", want{err: errContext}},
		{"User capital", "User/*.rs", want{err: errContext}},
		{"System capital", "System/*.read", want{err: errContext}},
		{"unknown type strict off", "patient/FooBar.rs", want{kind: KindResource, ctx: Patient, typ: "FooBar", perms: Read | Search}},
		{"R5-only type", "patient/Transport.rs", want{kind: KindResource, ctx: Patient, typ: "Transport", known: true, perms: Read | Search}},
		{"R4-only type", "patient/MedicinalProduct.rs", want{kind: KindResource, ctx: Patient, typ: "MedicinalProduct", known: true, perms: Read | Search}},
		{"abstract type", "patient/DomainResource.rs", want{kind: KindResource, ctx: Patient, typ: "DomainResource", perms: Read | Search}},
		{"v1 write with query", "user/*.write?a=b", want{err: errV1Constraint}},
		{"v1 star with query", "user/*.*?a=b", want{err: errV1Constraint}},
		{"percent value", "patient/Observation.rs?category=a%7Cb", want{kind: KindResource, ctx: Patient, typ: "Observation", known: true, perms: Read | Search,
			cons: []Constraint{{Name: "category", Value: "a|b", Values: []string{"a|b"}}}}},
		{"percent name", "patient/Observation.rs?c%61tegory=x", want{kind: KindResource, ctx: Patient, typ: "Observation", known: true, perms: Read | Search,
			cons: []Constraint{{Name: "category", Value: "x", Values: []string{"x"}}}}},
		{"percent amp in value", "patient/Observation.rs?code=a%26b", want{kind: KindResource, ctx: Patient, typ: "Observation", known: true, perms: Read | Search,
			cons: []Constraint{{Name: "code", Value: "a&b", Values: []string{"a&b"}}}}},
		{"percent comma is still a list", "patient/Observation.rs?code=a%2Cb", want{kind: KindResource, ctx: Patient, typ: "Observation", known: true, perms: Read | Search,
			cons: []Constraint{{Name: "code", Value: "a,b", Values: []string{"a", "b"}}}}},
		{"escaped comma", "patient/Observation.rs?code=a%5C,b", want{kind: KindResource, ctx: Patient, typ: "Observation", known: true, perms: Read | Search,
			cons: []Constraint{{Name: "code", Value: `a\,b`, Values: []string{`a\,b`}}}}},
		{"plus kept", "patient/Observation.rs?code=a+b", want{kind: KindResource, ctx: Patient, typ: "Observation", known: true, perms: Read | Search,
			cons: []Constraint{{Name: "code", Value: "a+b", Values: []string{"a+b"}}}}},
		{"value keeps colon slash", "patient/Condition.rs?category=http://hl7.org/fhir/us/core/CodeSystem/condition-category|health-concern", want{kind: KindResource, ctx: Patient, typ: "Condition", known: true, perms: Read | Search,
			cons: []Constraint{{Name: "category", Value: "http://hl7.org/fhir/us/core/CodeSystem/condition-category|health-concern", Values: []string{"http://hl7.org/fhir/us/core/CodeSystem/condition-category|health-concern"}}}}},
		{"value with equals", "patient/Observation.rs?code=a=b", want{kind: KindResource, ctx: Patient, typ: "Observation", known: true, perms: Read | Search,
			cons: []Constraint{{Name: "code", Value: "a=b", Values: []string{"a=b"}}}}},
		{"chain", "patient/Observation.rs?patient.birthdate=1990", want{kind: KindResource, ctx: Patient, typ: "Observation", known: true, perms: Read | Search,
			cons: []Constraint{{Name: "patient.birthdate", Value: "1990", Values: []string{"1990"}}}}},
		{"bad percent", "patient/Observation.rs?code=%zz", want{err: errConstraint}},
		{"truncated percent", "patient/Observation.rs?code=%4", want{err: errConstraint}},
		{"no equals", "patient/Observation.rs?category", want{err: errConstraint}},
		{"empty name", "patient/Observation.rs?=x", want{err: errConstraint}},
		{"empty value", "patient/Observation.rs?category=", want{err: errConstraint}},
		{"trailing amp", "patient/Observation.rs?category=x&", want{err: errConstraint}},
		{"double amp", "patient/Observation.rs?a=1&&b=2", want{err: errConstraint}},
		{"empty modifier", "patient/Observation.rs?code:=x", want{err: errConstraint}},
		{"bad name char", "patient/Observation.rs?co$de=x", want{err: errConstraint}},
		{"launch uppercase type", "launch/Patient", want{kind: KindLaunch, launch: "Patient"}},
		{"launch other query", "launch/list?foo=bar", want{kind: KindExtension, name: "launch/list?foo=bar"}},
		{"launch empty role", "launch/list?role=", want{kind: KindExtension, name: "launch/list?role="}},
		{"launch empty", "launch/", want{kind: KindExtension, name: "launch/"}},
		{"openid case", "OpenID", want{kind: KindExtension, name: "OpenID"}},
		{"fhiruser case", "fhiruser", want{kind: KindExtension, name: "fhiruser"}},
		{"extension with slash", "__x/y.z", want{kind: KindExtension, name: "__x/y.z"}},
		{"empty", "", want{err: errEmpty}},
		{"space", "patient/Observation.rs patient/Patient.r", want{err: errCharacter}},
		{"backslash", `patient/Observation.rs?code=a\,b`, want{err: errCharacter}},
		{"quote", `patient/Observation.rs?code="a"`, want{err: errCharacter}},
		{"non-ascii", "patient/Observation.rs?code=é", want{err: errCharacter}},
		{"nul", "patient/Observation.r\x00s", want{err: errCharacter}},
		{"tab", "openid\t", want{err: errCharacter}},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			got, err := Parse(tc.in)
			if tc.want.err != nil {
				if !errors.Is(err, tc.want.err) {
					t.Fatalf("Parse(%q) error = %v, want %v", tc.in, err, tc.want.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			w := tc.want
			if got.Kind != w.kind || got.Context != w.ctx || got.ResourceType != w.typ || got.KnownType != w.known ||
				got.Permissions != w.perms || got.V1 != w.v1 || got.LaunchContext != w.launch || got.LaunchRole != w.role || got.Name != w.name {
				t.Fatalf("Parse(%q) = %+v\nwant %+v", tc.in, got, w)
			}
			if !equalConstraints(got.Constraints, w.cons) {
				t.Fatalf("Parse(%q) constraints = %#v, want %#v", tc.in, got.Constraints, w.cons)
			}
			if got.KnownType && got.ResourceType != "*" && got.Type.String() != got.ResourceType {
				t.Fatalf("Type = %v, want %s", got.Type, got.ResourceType)
			}
			assertRoundTrip(t, got)
		})
	}
}

func equalConstraints(a, b []Constraint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Modifier != b[i].Modifier || a[i].Value != b[i].Value || !slices.Equal(a[i].Values, b[i].Values) {
			return false
		}
	}
	return true
}

func assertRoundTrip(t *testing.T, sc Scope) {
	t.Helper()
	s := sc.String()
	again, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(String() = %q): %v", s, err)
	}
	if again.String() != s || !sameScope(sc, again) {
		t.Fatalf("round trip: %q -> %+v, want %+v", s, again, sc)
	}
}

func sameScope(a, b Scope) bool {
	return a.Kind == b.Kind && a.Context == b.Context && a.ResourceType == b.ResourceType && a.Type == b.Type &&
		a.KnownType == b.KnownType && a.Permissions == b.Permissions && a.V1 == b.V1 &&
		a.LaunchContext == b.LaunchContext && a.LaunchRole == b.LaunchRole && a.Name == b.Name &&
		equalConstraints(a.Constraints, b.Constraints)
}

func TestUnknownTypeKnownTypeFalse(t *testing.T) {
	for _, in := range []string{"patient/observation.rs", "patient/DomainResource.rs"} {
		sc, err := Parse(in)
		if err != nil || sc.KnownType || sc.Kind != KindResource {
			t.Fatalf("Parse(%q) = %+v, %v; want a resource scope of an unknown type", in, sc, err)
		}
	}
	for _, in := range []string{"patient/Observation.rs", "user/*.read"} {
		if sc, err := Parse(in); err != nil || !sc.KnownType {
			t.Errorf("Parse(%q) = %+v, %v", in, sc, err)
		}
	}
}

func TestCanonicalForms(t *testing.T) {
	tests := []struct{ in, str, v2 string }{
		{"patient/Observation.read", "patient/Observation.read", "patient/Observation.rs"},
		{"patient/*.write", "patient/*.write", "patient/*.cud"},
		{"user/Appointment.*", "user/Appointment.*", "user/Appointment.cruds"},
		{"system/*.rs", "system/*.rs", "system/*.rs"},
		{"patient/Observation.rs?category=a%7Cb", "patient/Observation.rs?category=a|b", "patient/Observation.rs?category=a|b"},
		{"patient/Observation.rs?code=a%26b&x=%25", "patient/Observation.rs?code=a%26b&x=%25", "patient/Observation.rs?code=a%26b&x=%25"},
		{"patient/Observation.rs?code=a%5C,b", "patient/Observation.rs?code=a%5C,b", "patient/Observation.rs?code=a%5C,b"},
		{"patient/Observation.rs?code=%C3%A9", "patient/Observation.rs?code=%C3%A9", "patient/Observation.rs?code=%C3%A9"},
		{"patient/Observation.rs?code=a%23b", "patient/Observation.rs?code=a%23b", "patient/Observation.rs?code=a%23b"},
		{"launch/list?role=https://x", "launch/list?role=https://x", "launch/list?role=https://x"},
		{"launch", "launch", "launch"},
		{"openid", "openid", "openid"},
		{"__ext", "__ext", "__ext"},
	}
	for _, tc := range tests {
		sc, err := Parse(tc.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.in, err)
		}
		if got := sc.String(); got != tc.str {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.str)
		}
		if got := sc.v2String(); got != tc.v2 {
			t.Errorf("v2String(%q) = %q, want %q", tc.in, got, tc.v2)
		}
		v2, err := Parse(sc.v2String())
		if err != nil || v2.Permissions != sc.Permissions || v2.V1 {
			t.Errorf("v2String(%q) reparsed = %+v, %v", tc.in, v2, err)
		}
	}
}

func TestPermissionString(t *testing.T) {
	for p := Permission(1); p <= All; p++ {
		s := p.String()
		back, err := ParsePermission(s)
		if err != nil || back != p {
			t.Errorf("ParsePermission(%q) = %v, %v; want %v", s, back, err, uint8(p))
		}
	}
	if Permission(0).String() != "" {
		t.Error("empty permission should render empty")
	}
}

func TestContextAndKindStrings(t *testing.T) {
	if Patient.String() != "patient" || User.String() != "user" || System.String() != "system" || Context(0).String() != "" {
		t.Error("Context.String")
	}
	for k, s := range map[Kind]string{KindResource: "resource", KindLaunch: "launch", KindIdentity: "identity", KindRefresh: "refresh", KindExtension: "extension", 0: "invalid"} {
		if k.String() != s {
			t.Errorf("Kind(%d).String() = %q, want %q", k, k.String(), s)
		}
	}
}

func TestConstraintHelpers(t *testing.T) {
	sc, err := Parse("patient/Observation.rs?patient.birthdate=1990&code:in=http://vs")
	if err != nil {
		t.Fatal(err)
	}
	if !sc.Constraints[0].Chained() || sc.Constraints[1].Chained() {
		t.Error("Chained")
	}
	if got := sc.Constraints.String(); got != "patient.birthdate=1990&code:in=http://vs" {
		t.Errorf("ConstraintSet.String() = %q", got)
	}
	cs, err := parseConstraints("category=a,b&status=final")
	if err != nil || len(cs) != 2 || len(cs[0].Values) != 2 {
		t.Fatalf("ParseConstraints = %v, %v", cs, err)
	}
}
