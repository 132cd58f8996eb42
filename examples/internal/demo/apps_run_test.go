package demo_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/examples/internal/demo"
	"github.com/fhirguard/fhirguard/examples/internal/demo/demotest"
	"github.com/fhirguard/fhirguard/smarttest"
)

// hang bounds the waits of the timeout tests. It only ends a test that
// would otherwise hang; nothing depends on how fast the machine is.
const hang = 60 * time.Second

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// TestAppBanner checks that the banner says how a SMART app connects: the
// client id, the redirect URIs, the EHR launch URL, the standalone launch,
// and which flags change them; and never shows the confidential secret.
func TestAppBanner(t *testing.T) {
	s := demotest.Start(t, routes, "-app-redirect-uris", "https://app.example.org/smart/,http://[::1]:3000/cb",
		"-app-confidential-secret", "sekret-value", "-patient", "456")
	for _, want := range []string{
		demo.AppClientID, demo.ConfidentialAppClientID,
		"https://app.example.org/smart/", "http://[::1]:3000/cb",
		"-app-redirect-uris", "-app-launch-url", "-app-confidential-secret", "-patient", "-consent", "-cors-origins",
		s.EHRLaunchURL(), `iss: "` + s.BaseURL() + `"`, demo.StandaloneScopes,
	} {
		if !strings.Contains(s.Banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, s.Banner)
		}
	}
	if strings.Contains(s.Banner, "sekret-value") || strings.Contains(s.Logs(), "sekret-value") {
		t.Error("the confidential client's secret is printed")
	}
	u, err := url.Parse(s.EHRLaunchURL())
	if err != nil {
		t.Fatal(err)
	}
	if u.Query().Get("launch_uri") != "https://app.example.org/smart/launch.html" || u.Query().Get("patient") != "456" ||
		!strings.HasPrefix(s.EHRLaunchURL(), s.AuthServer().SMARTConfiguration().Issuer+"/launch"+"?") {
		t.Errorf("EHR launch URL %s", s.EHRLaunchURL())
	}
	// The banner's EHR launch works, with the configured patient.
	res, err := noRedirect.Get(s.EHRLaunchURL())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), "https://app.example.org/smart/launch.html?") {
		t.Fatalf("EHR launch: %d to %v", res.StatusCode, loc)
	}
	tr, err := s.AuthServer().LaunchApp(t.Context(), smarttest.AppLaunch{ClientID: demo.AppClientID,
		RedirectURI: "https://app.example.org/smart/", Launch: loc.Query().Get("launch"), Scope: "patient/*.rs"})
	if err != nil || tr.Patient != "456" {
		t.Fatalf("EHR launch: %+v %v", tr, err)
	}
	if code, body := get(t, s.BaseURL()+"/Patient/456", tr.AccessToken); code != 200 {
		t.Errorf("launch patient: %d %.200s", code, body)
	}
}

// TestConfidentialApp runs -app-confidential-secret: the confidential
// client launches with its secret, and its refresh token needs it.
func TestConfidentialApp(t *testing.T) {
	s := demotest.Start(t, routes, "-app-confidential-secret", "sekret", "-patient", "456")
	as := s.AuthServer()
	ctx := t.Context()
	tr, err := as.LaunchApp(ctx, smarttest.AppLaunch{ClientID: demo.ConfidentialAppClientID, ClientSecret: "sekret",
		RedirectURI: "http://127.0.0.1:9000/", Scope: demo.StandaloneScopes})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Patient != "456" || tr.RefreshToken == "" {
		t.Fatalf("standalone launch: %+v", tr)
	}
	var re *smarttest.ResponseError
	for _, c := range []struct{ id, secret string }{{"", ""}, {demo.ConfidentialAppClientID, ""}, {demo.ConfidentialAppClientID, "wrong"}} {
		if _, err := as.Refresh(ctx, c.id, c.secret, tr.RefreshToken, ""); !errors.As(err, &re) || re.Code != "invalid_client" || re.Status != 401 {
			t.Errorf("refresh as %q with secret %q: %v", c.id, c.secret, err)
		}
	}
	if _, err := as.Refresh(ctx, demo.ConfidentialAppClientID, "sekret", tr.RefreshToken, ""); err != nil {
		t.Errorf("authenticated refresh: %v", err)
	}
	// Without the secret, the client does not exist.
	s2 := demotest.Start(t, routes)
	if _, err := s2.AuthServer().LaunchApp(ctx, smarttest.AppLaunch{ClientID: demo.ConfidentialAppClientID, ClientSecret: "sekret",
		RedirectURI: "http://127.0.0.1:9000/", Scope: demo.StandaloneScopes}); !errors.As(err, &re) || re.Status != http.StatusBadRequest {
		t.Errorf("confidential client without -app-confidential-secret: %v", err)
	}
}

// TestConsentFlag runs -consent: the authorization request shows the
// scopes and a patient picker; approving with a picked patient gives a
// token for that patient, denying sends access_denied to the app.
func TestConsentFlag(t *testing.T) {
	s := demotest.Start(t, routes, "-consent")
	as := s.AuthServer()
	const redirect = "http://127.0.0.1:9000/"
	verifier := strings.Repeat("v", 43)
	page := func() (string, string) {
		t.Helper()
		q := url.Values{"response_type": {"code"}, "client_id": {demo.AppClientID}, "redirect_uri": {redirect},
			"scope": {demo.StandaloneScopes}, "state": {"st"}, "aud": {s.BaseURL()},
			"code_challenge": {smarttest.S256Challenge(verifier)}, "code_challenge_method": {"S256"}}
		res, err := noRedirect.Get(as.SMARTConfiguration().AuthorizationEndpoint + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		html := string(b)
		if res.StatusCode != 200 || !strings.Contains(html, "patient/*.rs") || !strings.Contains(html, `name="patient" value="123"`) {
			t.Fatalf("consent page: %d %s", res.StatusCode, html)
		}
		i := strings.Index(html, `name="request" value="`)
		rest := html[i+len(`name="request" value="`):]
		action := html[strings.Index(html, `action="`)+len(`action="`):]
		return rest[:strings.IndexByte(rest, '"')], action[:strings.IndexByte(action, '"')]
	}
	decide := func(form url.Values, action string) url.Values {
		t.Helper()
		res, err := noRedirect.PostForm(action, form)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		loc, _ := url.Parse(res.Header.Get("Location"))
		if res.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), redirect+"?") {
			t.Fatalf("decision: %d to %v", res.StatusCode, loc)
		}
		return loc.Query()
	}
	id, action := page()
	back := decide(url.Values{"request": {id}, "decision": {"approve"}, "patient": {"456"}}, action)
	if back.Get("state") != "st" || back.Get("code") == "" {
		t.Fatalf("approved: %v", back)
	}
	res, err := http.PostForm(as.SMARTConfiguration().TokenEndpoint, url.Values{"grant_type": {"authorization_code"}, "code": {back.Get("code")},
		"redirect_uri": {redirect}, "client_id": {demo.AppClientID}, "code_verifier": {verifier}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(b), `"patient":"456"`) {
		t.Fatalf("token: %d %s", res.StatusCode, b)
	}
	id, action = page()
	if back := decide(url.Values{"request": {id}, "decision": {"deny"}}, action); back.Get("error") != "access_denied" || back.Get("code") != "" {
		t.Errorf("denied: %v", back)
	}
}

// TestAppCORSFlags checks that -cors-origins and the app redirect URIs'
// origins are allowed at both the token endpoint and the FHIR API, and
// nothing else is.
func TestAppCORSFlags(t *testing.T) {
	s := demotest.Start(t, routes, "-cors-origins", "https://other.example.org", "-app-redirect-uris", "https://app.example.org/smart/")
	for _, u := range []string{s.AuthServer().SMARTConfiguration().TokenEndpoint, s.BaseURL() + "/Patient/123"} {
		for origin, allowed := range map[string]bool{
			"https://other.example.org": true,
			"https://app.example.org":   true,
			"http://127.0.0.1:9000":     false, // the default app origin is gone
			"https://evil.example.org":  false,
		} {
			req, _ := http.NewRequest(http.MethodOptions, u, nil)
			req.Header.Set("Origin", origin)
			req.Header.Set("Access-Control-Request-Method", "POST")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			want := ""
			if allowed {
				want = origin
			}
			if got := res.Header.Get("Access-Control-Allow-Origin"); got != want {
				t.Errorf("preflight %s from %s: allow %q, want %q", u, origin, got, want)
			}
		}
	}
}

// dial opens a raw connection to the demo server.
func dial(t *testing.T, s *demotest.Started) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", hostOf(s))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// trickle writes one byte of s (cycling) at a time, every few
// milliseconds, until the connection fails or stop is closed.
func trickle(conn net.Conn, s string, stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-time.After(5 * time.Millisecond):
		}
		if _, err := conn.Write([]byte{s[i%len(s)]}); err != nil {
			return
		}
	}
}

// closedByServer reads until the server closes the connection and returns
// what it read. It fails the test if the connection is still open after
// hang.
func closedByServer(t *testing.T, conn net.Conn) string {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(hang))
	var got strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		got.Write(buf[:n])
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the server kept the connection open for %v; read so far: %q", hang, got.String())
		}
		return got.String() // EOF or reset: closed by the server
	}
}

// TestServerTimeouts checks the HTTP server's limits with short values: a
// request body that trickles in forever is cut off by -read-timeout,
// headers that trickle in by -read-header-timeout, an idle keep-alive
// connection is closed after -idle-timeout, and oversized headers are
// refused by -max-header-bytes. Normal requests still work.
func TestServerTimeouts(t *testing.T) {
	// Short read timeouts: only requests that never complete are sent to
	// this server, so that a slow machine cannot make a test fail.
	s := demotest.Start(t, routes, "-read-timeout", "300ms", "-read-header-timeout", "200ms")
	host := hostOf(s)
	t.Run("body trickling in", func(t *testing.T) {
		conn := dial(t, s)
		stop := make(chan struct{})
		defer close(stop)
		fmt.Fprintf(conn, "POST /auth/token HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000000\r\n\r\n", host)
		go trickle(conn, "grant_type=x&", stop)
		got := closedByServer(t, conn)
		if strings.HasPrefix(got, "HTTP/1.1 200") {
			t.Errorf("answered %q", got)
		}
	})
	t.Run("FHIR body trickling in", func(t *testing.T) {
		tok, err := s.AuthServer().MintToken(smarttest.TokenOptions{ClientID: "writer", Scopes: "system/Observation.c", Lifetime: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		conn := dial(t, s)
		stop := make(chan struct{})
		defer close(stop)
		fmt.Fprintf(conn, "POST /fhir/Observation HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/fhir+json\r\nContent-Length: 1000000\r\n\r\n{\"resourceType\":\"Observation\",\"note\":[", host, tok)
		go trickle(conn, `{"text":"x"},`, stop)
		got := closedByServer(t, conn)
		t.Logf("answer: %.120q", got)
		if strings.HasPrefix(got, "HTTP/1.1 2") {
			t.Errorf("answered %q", got)
		}
	})
	t.Run("headers trickling in", func(t *testing.T) {
		conn := dial(t, s)
		stop := make(chan struct{})
		defer close(stop)
		fmt.Fprintf(conn, "GET /fhir/metadata HTTP/1.1\r\nHost: %s\r\n", host)
		go trickle(conn, "X-Slow: y\r\n", stop)
		if got := closedByServer(t, conn); strings.HasPrefix(got, "HTTP/1.1 200") {
			t.Errorf("answered %q", got)
		}
	})

	// Short idle timeout and small header limit, default read timeouts.
	s = demotest.Start(t, routes, "-idle-timeout", "300ms", "-max-header-bytes", "4096")
	host = hostOf(s)
	t.Run("normal request", func(t *testing.T) {
		if code, body := get(t, s.BaseURL()+"/Patient/123", s.PatientToken()); code != 200 {
			t.Errorf("%d %.200s\n%s", code, body, s.Logs())
		}
	})
	t.Run("idle keep-alive connection", func(t *testing.T) {
		conn := dial(t, s)
		fmt.Fprintf(conn, "GET /fhir/metadata HTTP/1.1\r\nHost: %s\r\n\r\n", host)
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || res.Close {
			t.Fatalf("metadata: %d, close %t", res.StatusCode, res.Close)
		}
		closedByServer(t, conn) // then nothing: the idle timeout closes it
	})
	t.Run("oversized headers", func(t *testing.T) {
		// The server answers 431 and closes the connection as soon as the
		// limit is passed; the rest of the header may then meet a closed
		// socket, and a reset can discard the answer before the client reads
		// it. So the header is written on the side, and what must never
		// happen is any other answer (the request served) or no end at all.
		conn := dial(t, s)
		go func() {
			_, _ = fmt.Fprintf(conn, "GET /fhir/metadata HTTP/1.1\r\nHost: %s\r\nX-Big: %s\r\n\r\n", host, strings.Repeat("a", 16<<10))
		}()
		_ = conn.SetReadDeadline(time.Now().Add(time.Minute)) // bounds a hang only
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		switch {
		case err == nil:
			res.Body.Close()
			if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("16 KiB header with -max-header-bytes 4096: %d", res.StatusCode)
			}
		case errors.Is(err, os.ErrDeadlineExceeded):
			t.Fatal("no answer and no close within a minute")
		default:
			t.Logf("connection closed before the 431 was read: %v", err) // refused all the same
		}
	})
	t.Run("headers within the limit", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", s.BaseURL()+"/metadata", nil)
		req.Header.Set("X-Small", strings.Repeat("a", 1<<10))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("1 KiB header with -max-header-bytes 4096: %d", res.StatusCode)
		}
	})
}

// hostOf returns the host:port of the demo server.
func hostOf(s *demotest.Started) string {
	u, _ := url.Parse(s.BaseURL())
	return u.Host
}
