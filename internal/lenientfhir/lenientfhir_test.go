package lenientfhir

import (
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

const base = "https://ehr.example.org/fhir"

func send(s *Server, method, path, contentType, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, base+path, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

// TestLenient pins down the leniency the differential tests rely on.
func TestLenient(t *testing.T) {
	for _, c := range []struct {
		name, method, path, ct, body string
		status                       int
		want                         []string // "Method URL -> status patients"
	}{
		{"case-variant member, last wins", "POST", "/Observation", "application/fhir+json",
			`{"resourceType":"Observation","subject":{"reference":"Patient/123"},"Subject":{"Reference":"Patient/456"}}`, 201,
			[]string{"POST Observation -> 201 [Patient/456]"}},
		{"folded ſ and Kelvin", "PUT", "/Patient/123", "application/fhir+json",
			`{"resourceType":"Patient","id":"123","lin` + "\u212a" + `":[{"other":{"reference":"Patient/456"}}],"ſtatus":"x"}`, 200,
			[]string{"PUT Patient/123 -> 200 [Patient/123 Patient/456]"}},
		{"escaped key", "POST", "/Observation", "application/fhir+json",
			`{"resourceType":"Observation","sub\u006aect":{"reference":"Patient/456"}}`, 201,
			[]string{"POST Observation -> 201 [Patient/456]"}},
		{"ENTRY in a batch", "POST", "/", "application/fhir+json",
			`{"resourceType":"Bundle","type":"batch","ENTRY":[{"Request":{"METHOD":"delete","Url":"Observation/o456"}}]}`, 200,
			[]string{"#0 DELETE Observation/o456 -> 204 [Patient/456]"}},
		{"IfNoneExist returns the match", "POST", "/", "application/fhir+json",
			`{"resourceType":"Bundle","type":"batch","entry":[{"resource":{"resourceType":"Observation"},"request":{"method":"POST","url":"Observation","IfNoneExist":"identifier=urn:test|o456"}}]}`, 200,
			[]string{"#0 POST Observation -> 200 [Patient/456]"}},
		{"patch with Path", "PATCH", "/Observation/o123", "application/json-patch+json",
			`[{"op":"replace","path":"/status","Path":"/subject/reference","value":"Patient/456"}]`, 200,
			[]string{"PATCH Observation/o123 -> 200 [Patient/123 Patient/456]"}},
		{"patch adds ſubject, which sorts last", "PATCH", "/Observation/o123", "application/json-patch+json",
			`[{"op":"add","path":"/ſubject","value":{"reference":"Patient/456"}}]`, 200,
			[]string{"PATCH Observation/o123 -> 200 [Patient/123 Patient/456]"}},
		{"conditional delete removes every match", "DELETE", "/Observation?identifier=urn:test|shared", "", "", 204,
			[]string{"DELETE Observation?identifier=urn:test|shared -> 204 [Patient/123 Patient/456]"}},
		{"failed transaction leaves no trace", "POST", "/", "application/fhir+json",
			`{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"DELETE","url":"Observation/o456"}},{"request":{"method":"DELETE","url":"Observation/nope"}}]}`, 404,
			nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := New(base)
			w := send(s, c.method, c.path, c.ct, c.body)
			if w.Code != c.status {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			var got []string
			for _, op := range s.Log() {
				prefix := ""
				if op.Entry >= 0 {
					prefix = "#0 "
				}
				got = append(got, fmt.Sprintf("%s%s %s -> %d %v", prefix, op.Method, op.URL, op.Status, op.Patients))
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("log %q, want %q", got, c.want)
			}
		})
	}
	t.Run("transaction undone", func(t *testing.T) {
		s := New(base)
		send(s, "POST", "/", "application/fhir+json", `{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"DELETE","url":"Observation/o456"}},{"request":{"method":"DELETE","url":"Observation/nope"}}]}`)
		if s.Get("Observation", "o456") == nil {
			t.Fatal("the failed transaction deleted o456")
		}
	})
}
