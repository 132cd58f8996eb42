package scopeexplain

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func FuzzExplain(f *testing.F) {
	for _, tc := range goldenCases {
		if len(tc.args) > 0 {
			f.Add(tc.args[len(tc.args)-1])
		}
		if tc.stdin != "" {
			f.Add(tc.stdin)
		}
	}
	for _, s := range fixedStrings {
		f.Add(s)
	}
	f.Add("patient/Observation.rs?category=a%2Cb,c\\,d&code:not=x")
	f.Add("launch/x?role=a&b openid\x00 \xff\xfe patient/Ob\u00e9servation.rs")
	f.Fuzz(func(t *testing.T, in string) {
		var out, errOut bytes.Buffer
		code := run([]string{"--json", "--", in}, strings.NewReader(""), &out, &errOut)
		if code != exitValid && code != exitInvalid {
			t.Fatalf("%q: exit %d, stderr %q", in, code, errOut.String())
		}
		if !json.Valid(out.Bytes()) {
			t.Fatalf("%q: invalid JSON:\n%s", in, out.String())
		}
		var r Report
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if r.Valid != (code == exitValid) {
			t.Fatalf("%q: valid %v, exit %d", in, r.Valid, code)
		}

		// The same through stdin, and as text.
		var out2 bytes.Buffer
		code2 := run([]string{"-"}, strings.NewReader(in+"\n"), &out2, &errOut)
		if code2 != code && !strings.HasSuffix(in, "\r") { // stdin drops a CRLF
			t.Fatalf("%q: exit %d as argument, %d on stdin", in, code, code2)
		}
		if out2.Len() == 0 {
			t.Fatalf("%q: no text output", in)
		}

		checkAgainstScope(t, in)
		checkEffective(t, in)
	})
}
