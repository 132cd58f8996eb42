package demo

import (
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestParseFlagsNamesTheBadValue(t *testing.T) {
	for _, tt := range []struct {
		args []string
		bad  string
	}{
		{[]string{"-app-redirect-uris", "https://ok.example/,http://app.example.org/cb"}, "http://app.example.org/cb"},
		{[]string{"-app-redirect-uris", "https://ok.example/,ftp://x.example/"}, "ftp://x.example/"},
		{[]string{"-app-launch-url", "https://elsewhere.example/launch.html"}, "https://elsewhere.example/launch.html"},
		{[]string{"-cors-origins", "https://a.example,https://b.example/app"}, "https://b.example/app"},
		{[]string{"-patient", "a/b"}, "a/b"},
	} {
		_, err := ParseFlags("test", tt.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.bad) || !strings.Contains(err.Error(), tt.args[0]) {
			t.Errorf("ParseFlags(%q) = %v; want an error naming %s and %q", tt.args, err, tt.args[0], tt.bad)
		}
	}
}

func TestCheckAppURL(t *testing.T) {
	for raw, ok := range map[string]bool{
		"https://app.example.org/cb":             true,
		"https://app.example.org:8443/a/b/?x=1":  true,
		"http://127.0.0.1:9000/":                 true,
		"http://127.9.9.9/":                      true,
		"http://[::1]:9000/":                     true,
		"http://localhost:9000/":                 true,
		"http://LOCALHOST/":                      true,
		"http://localhost.evil.example/":         false,
		"http://127.0.0.1.evil.example/":         false,
		"http://0.0.0.0:9000/":                   false,
		"http://[::]:9000/":                      false,
		"http://10.0.0.1/":                       false,
		"https://app.example.org/#":              false,
		"https://a b.example/":                   false,
		"https://app.example.org/a,b":            false,
		"https://:443/":                          false,
		"https://[::1/":                          false,
		"mailto:x@example.org":                   false,
		"":                                       false,
		"https://" + strings.Repeat("a", maxURI): false,
	} {
		if err := checkAppURL(raw); (err == nil) != ok {
			t.Errorf("checkAppURL(%q) = %v, want ok %t", raw, err, ok)
		}
	}
}

func TestDefaultLaunchURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:9000/":             "http://127.0.0.1:9000/launch.html",
		"https://app.example.org/smart/":     "https://app.example.org/smart/launch.html",
		"https://app.example.org/smart/cb":   "https://app.example.org/smart/launch.html",
		"https://app.example.org/cb?x=1":     "https://app.example.org/launch.html",
		"https://app.example.org":            "https://app.example.org/launch.html",
		"https://app.example.org/a/b/c.html": "https://app.example.org/a/b/launch.html",
	} {
		if got := defaultLaunchURL(in); got != want {
			t.Errorf("defaultLaunchURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseRedirectURIs(f *testing.F) {
	for _, s := range []string{DefaultAppRedirectURIs, "https://app.example.org/cb", " , ", "http://app.example.org/", "https://u@a/", "http://[::1]:3000/,http://[::1]:3000/", "https://a/#"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		uris, err := parseRedirectURIs(v)
		if err != nil {
			if uris != nil {
				t.Fatalf("error %v with URIs %q", err, uris)
			}
			return
		}
		if len(uris) == 0 {
			t.Fatal("accepted an empty list")
		}
		for i, r := range uris {
			if slices.Contains(uris[i+1:], r) {
				t.Fatalf("duplicate %q", r)
			}
			if !strings.Contains(v, r) || r != strings.TrimSpace(r) || strings.Contains(r, ",") {
				t.Fatalf("URI %q not taken verbatim from %q", r, v)
			}
			u, err := url.Parse(r)
			if err != nil || u.User != nil || u.Fragment != "" || u.Host == "" || originOf(r) == "" {
				t.Fatalf("accepted %q", r)
			}
			if u.Scheme == "http" {
				h := u.Hostname()
				ip := net.ParseIP(h)
				if !strings.EqualFold(h, "localhost") && (ip == nil || !ip.IsLoopback()) {
					t.Fatalf("plain http accepted off loopback: %q", r)
				}
			} else if u.Scheme != "https" {
				t.Fatalf("scheme of %q", r)
			}
			// The default launch URL of an accepted redirect URI is
			// accepted with it.
			if err := checkLaunchURL(defaultLaunchURL(r), uris); err != nil {
				t.Fatalf("default launch URL of %q refused: %v", r, err)
			}
		}
	})
}

func FuzzParseOrigins(f *testing.F) {
	for _, s := range []string{"https://a.example.org,*", "HTTPS://A.EXAMPLE:443", "http://[::1]:80", "null", "https://a/", "http://:80", "a.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		origins, err := parseOrigins(v)
		if err != nil {
			return
		}
		for _, o := range origins {
			if o == "*" {
				continue
			}
			again, err := parseOrigins(o)
			if err != nil || len(again) != 1 || again[0] != o {
				t.Fatalf("origin %q (from %q) parses to %q, %v", o, v, again, err)
			}
			if o != strings.ToLower(o) || originOf(o+"/p?q") != o {
				t.Fatalf("origin %q is not normalized", o)
			}
		}
	})
}

func FuzzCheckLaunchURL(f *testing.F) {
	redirects := []string{"http://127.0.0.1:9000/", "https://app.example.org/smart/"}
	for _, s := range []string{"http://127.0.0.1:9000/launch.html", "https://app.example.org/l?iss=x", "https://APP.example.org:443/x", "http://127.0.0.1:9001/", "https://evil.example/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if checkLaunchURL(raw, redirects) != nil {
			return
		}
		o := originOf(raw)
		if o != "http://127.0.0.1:9000" && o != "https://app.example.org" {
			t.Fatalf("launch URL %q at origin %q accepted", raw, o)
		}
		u, err := url.Parse(raw)
		if err != nil || u.User != nil || strings.Contains(raw, "#") || u.Query().Has("iss") || u.Query().Has("launch") {
			t.Fatalf("accepted %q", raw)
		}
	})
}
