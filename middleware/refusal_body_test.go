package middleware

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestRefusalDoesNotWaitForBody: a refused request whose body trickles in
// (or never comes) is answered at once and its connection closed, instead
// of the server waiting for the body before it answers. A refused request
// without a body keeps its connection.
func TestRefusalDoesNotWaitForBody(t *testing.T) {
	testKeys(t)
	_, h := newKeyGuard(t, nil)
	srv := httptest.NewServer(h)
	defer srv.Close()
	ask := func(t *testing.T, req string) (status string, closed bool) {
		t.Helper()
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		// The deadline only bounds a hang: without the rule the server
		// waits for the 90 missing bytes for ever.
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("no answer while the body is incomplete: %v", err)
		}
		res.Body.Close()
		return res.Status, res.Close // Connection: close
	}
	partial := "Content-Type: application/fhir+json\r\nContent-Length: 100\r\n\r\n{\"resource"
	for name, req := range map[string]string{
		"no token":      "POST /fhir/Observation HTTP/1.1\r\nHost: ehr.example.org\r\n" + partial,
		"invalid token": "POST /fhir/Observation HTTP/1.1\r\nHost: ehr.example.org\r\nAuthorization: Bearer x.y.z\r\n" + partial,
		"not granted": "POST /fhir/Observation HTTP/1.1\r\nHost: ehr.example.org\r\nAuthorization: Bearer " +
			guardToken("scope", "patient/Observation.rs", "patient", "123") + "\r\n" + partial,
		"chunked body": "POST /fhir/Observation HTTP/1.1\r\nHost: ehr.example.org\r\nTransfer-Encoding: chunked\r\n" +
			"Content-Type: application/fhir+json\r\n\r\n5\r\n{\"res",
	} {
		t.Run(name, func(t *testing.T) {
			status, closed := ask(t, req)
			if !strings.HasPrefix(status, "40") || !closed {
				t.Fatalf("status %q, connection closed %v", status, closed)
			}
		})
	}
	t.Run("a refusal without a body keeps the connection", func(t *testing.T) {
		status, closed := ask(t, "GET /fhir/Observation HTTP/1.1\r\nHost: ehr.example.org\r\n\r\n")
		if status != "401 Unauthorized" || closed {
			t.Fatalf("status %q, connection closed %v", status, closed)
		}
	})
}
