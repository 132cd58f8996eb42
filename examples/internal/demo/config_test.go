package demo

import (
	"errors"
	"flag"
	"io"
	"net"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/fhirguard/fhirguard/fhir"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, c Config)
	}{
		{"defaults", nil, func(t *testing.T, c Config) {
			if c.Addr != DefaultAddr || c.BaseURL != "" || c.Issuer != "" || c.Empty || c.PolicyFile != "" ||
				c.JWKSRefetchCooldown != 30*time.Second || c.ShutdownTimeout != 10*time.Second || c.CORSOrigins != nil {
				t.Errorf("defaults: %+v", c)
			}
		}},
		{"every flag", []string{"-addr", "127.0.0.1:0", "-base-url", "https://ehr.example.org/r4/", "-issuer", "https://as.example.org",
			"-jwks-url", "https://as.example.org/jwks", "-introspection-url", "https://as.example.org/introspect",
			"-introspection-client-id", "rs", "-introspection-client-secret", "s", "-policy", "p.yaml", "-empty",
			"-cors-origins", " https://a.example.org, ,https://b.example.org", "-trusted-proxies", "10.0.0.0/8",
			"-jwks-refetch-cooldown", "1s", "-shutdown-timeout", "3s", "-capabilities", "launch-standalone,,client-public ",
			"-enforce-encounter", "-require-encounter"}, func(t *testing.T, c Config) {
			want := Config{Addr: "127.0.0.1:0", BaseURL: "https://ehr.example.org/r4/", Issuer: "https://as.example.org",
				JWKSURL: "https://as.example.org/jwks", IntrospectionURL: "https://as.example.org/introspect",
				IntrospectionClientID: "rs", IntrospectionClientSecret: "s", PolicyFile: "p.yaml", Empty: true,
				CORSOrigins: []string{"https://a.example.org", "https://b.example.org"}, TrustedProxies: []string{"10.0.0.0/8"},
				JWKSRefetchCooldown: time.Second, ShutdownTimeout: 3 * time.Second, Patient: DefaultPatient,
				ReadHeaderTimeout: DefaultReadHeaderTimeout, ReadTimeout: DefaultReadTimeout, WriteTimeout: DefaultWriteTimeout,
				IdleTimeout: DefaultIdleTimeout, MaxHeaderBytes: DefaultMaxHeaderBytes, EnforceEncounter: true, RequireEncounter: true}
			if !slices.Equal(c.CORSOrigins, want.CORSOrigins) || !slices.Equal(c.TrustedProxies, want.TrustedProxies) ||
				!slices.Equal(c.Capabilities, []string{"launch-standalone", "client-public"}) {
				t.Errorf("lists: %q %q %q", c.CORSOrigins, c.TrustedProxies, c.Capabilities)
			}
			c.CORSOrigins, want.CORSOrigins, c.TrustedProxies, want.TrustedProxies, c.Capabilities = nil, nil, nil, nil, nil
			if !reflect.DeepEqual(c, want) {
				t.Errorf("got %+v\nwant %+v", c, want)
			}
		}},
		{"app defaults", nil, func(t *testing.T, c Config) {
			if !slices.Equal(c.AppRedirectURIs, []string{"http://127.0.0.1:9000/", "http://localhost:9000/"}) ||
				c.AppLaunchURL != "http://127.0.0.1:9000/launch.html" || c.AppConfidentialSecret != "" || c.Patient != "123" || c.Consent {
				t.Errorf("app defaults: %+v", c)
			}
			if got := c.corsOrigins(); !slices.Equal(got, []string{"http://127.0.0.1:9000", "http://localhost:9000"}) {
				t.Errorf("API CORS origins %q", got)
			}
			if c.ReadHeaderTimeout != 10*time.Second || c.ReadTimeout != time.Minute || c.WriteTimeout != 2*time.Minute ||
				c.IdleTimeout != 2*time.Minute || c.MaxHeaderBytes != 64<<10 {
				t.Errorf("server defaults: %+v", c)
			}
		}},
		{"every app and server flag", []string{"-app-redirect-uris", " https://app.example.org/smart/callback , http://[::1]:3000/,https://app.example.org/smart/callback",
			"-app-confidential-secret", "s e c", "-patient", "456", "-consent", "-cors-origins", "HTTPS://Other.Example:443,http://localhost:3000",
			"-read-header-timeout", "1s", "-read-timeout", "2s", "-write-timeout", "3s", "-idle-timeout", "4s", "-max-header-bytes", "8192"},
			func(t *testing.T, c Config) {
				if !slices.Equal(c.AppRedirectURIs, []string{"https://app.example.org/smart/callback", "http://[::1]:3000/"}) {
					t.Errorf("redirect URIs %q", c.AppRedirectURIs)
				}
				if c.AppLaunchURL != "https://app.example.org/smart/launch.html" {
					t.Errorf("default launch URL %q", c.AppLaunchURL)
				}
				if c.AppConfidentialSecret != "s e c" || c.Patient != "456" || !c.Consent {
					t.Errorf("app flags: %+v", c)
				}
				if !slices.Equal(c.CORSOrigins, []string{"https://other.example", "http://localhost:3000"}) {
					t.Errorf("CORS origins %q", c.CORSOrigins)
				}
				if got := c.corsOrigins(); !slices.Equal(got, []string{"https://other.example", "http://localhost:3000", "https://app.example.org", "http://[::1]:3000"}) {
					t.Errorf("API CORS origins %q", got)
				}
				if c.ReadHeaderTimeout != time.Second || c.ReadTimeout != 2*time.Second || c.WriteTimeout != 3*time.Second ||
					c.IdleTimeout != 4*time.Second || c.MaxHeaderBytes != 8192 {
					t.Errorf("server flags: %+v", c)
				}
			}},
		{"launch URL given", []string{"-app-launch-url", "http://localhost:9000/smart/launch?x=1"}, func(t *testing.T, c Config) {
			if c.AppLaunchURL != "http://localhost:9000/smart/launch?x=1" {
				t.Errorf("launch URL %q", c.AppLaunchURL)
			}
		}},
		{"any origin", []string{"-cors-origins", "https://a.example.org,*"}, func(t *testing.T, c Config) {
			if got := c.corsOrigins(); !slices.Equal(got, []string{"*"}) {
				t.Errorf("API CORS origins %q", got)
			}
		}},
		{"external issuer: no app clients", []string{"-issuer", "https://as.example.org", "-cors-origins", "https://a.example.org"}, func(t *testing.T, c Config) {
			if c.AppRedirectURIs != nil || c.AppLaunchURL != "" || !slices.Equal(c.corsOrigins(), []string{"https://a.example.org"}) {
				t.Errorf("%+v", c)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseFlags("test", tt.args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestParseFlagsRefused(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"unknown flag", []string{"-nope"}},
		{"capabilities without issuer", []string{"-capabilities", "launch-standalone"}},
		{"require-encounter alone", []string{"-require-encounter"}},
		{"positional argument", []string{"extra"}},
		{"addr without port", []string{"-addr", "127.0.0.1"}},
		{"base without path", []string{"-base-url", "http://127.0.0.1:8080"}},
		{"base at the root", []string{"-base-url", "http://127.0.0.1:8080/"}},
		{"base with query", []string{"-base-url", "http://127.0.0.1:8080/fhir?x=1"}},
		{"base with fragment", []string{"-base-url", "http://127.0.0.1:8080/fhir#f"}},
		{"base with user info", []string{"-base-url", "http://u:p@127.0.0.1:8080/fhir"}},
		{"base not http", []string{"-base-url", "ftp://127.0.0.1/fhir"}},
		{"base relative", []string{"-base-url", "/fhir"}},
		{"base with dot segment", []string{"-base-url", "http://127.0.0.1/a/../fhir"}},
		{"base with encoded slash", []string{"-base-url", "http://127.0.0.1/a%2Ffhir"}},
		{"base with double slash", []string{"-base-url", "http://127.0.0.1/a//fhir"}},
		{"issuer relative", []string{"-issuer", "as.example.org"}},
		{"issuer with fragment", []string{"-issuer", "https://as.example.org#x"}},
		{"jwks without issuer", []string{"-jwks-url", "https://as.example.org/jwks"}},
		{"jwks not a URL", []string{"-issuer", "https://as.example.org", "-jwks-url", "jwks"}},
		{"introspection without credentials", []string{"-introspection-url", "https://as.example.org/i"}},
		{"introspection without secret", []string{"-introspection-url", "https://as.example.org/i", "-introspection-client-id", "rs"}},
		{"credentials without introspection", []string{"-introspection-client-id", "rs", "-introspection-client-secret", "s"}},
		{"zero cooldown", []string{"-jwks-refetch-cooldown", "0s"}},
		{"negative shutdown timeout", []string{"-shutdown-timeout", "-1s"}},
		{"no redirect URI", []string{"-app-redirect-uris", " , "}},
		{"redirect over plain http elsewhere", []string{"-app-redirect-uris", "http://app.example.org/"}},
		{"redirect over plain http on a LAN address", []string{"-app-redirect-uris", "http://192.168.1.2:9000/"}},
		{"redirect relative", []string{"-app-redirect-uris", "/callback"}},
		{"redirect custom scheme", []string{"-app-redirect-uris", "com.example.app:/callback"}},
		{"redirect with fragment", []string{"-app-redirect-uris", "https://app.example.org/#x"}},
		{"redirect with user info", []string{"-app-redirect-uris", "https://u@app.example.org/"}},
		{"redirect without host", []string{"-app-redirect-uris", "https:///cb"}},
		{"second redirect bad", []string{"-app-redirect-uris", "https://app.example.org/,ftp://app.example.org/"}},
		{"launch URL at another origin", []string{"-app-launch-url", "http://127.0.0.1:9001/launch.html"}},
		{"launch URL over plain http elsewhere", []string{"-app-redirect-uris", "https://app.example.org/", "-app-launch-url", "http://app.example.org/launch"}},
		{"launch URL with iss", []string{"-app-launch-url", "http://127.0.0.1:9000/launch.html?iss=x"}},
		{"launch URL with fragment", []string{"-app-launch-url", "http://127.0.0.1:9000/launch.html#x"}},
		{"launch URL relative", []string{"-app-launch-url", "launch.html"}},
		{"patient not an id", []string{"-patient", "Patient/123"}},
		{"empty patient", []string{"-patient", ""}},
		{"origin with path", []string{"-cors-origins", "https://a.example.org/"}},
		{"origin without scheme", []string{"-cors-origins", "a.example.org"}},
		{"origin null", []string{"-cors-origins", "null"}},
		{"zero read timeout", []string{"-read-timeout", "0s"}},
		{"negative write timeout", []string{"-write-timeout", "-1s"}},
		{"zero idle timeout", []string{"-idle-timeout", "0"}},
		{"zero header timeout", []string{"-read-header-timeout", "0s"}},
		{"tiny header limit", []string{"-max-header-bytes", "100"}},
		{"app flags with an external issuer", []string{"-issuer", "https://as.example.org", "-app-redirect-uris", "https://app.example.org/"}},
		{"patient with an external issuer", []string{"-issuer", "https://as.example.org", "-patient", "123"}},
		{"consent with an external issuer", []string{"-issuer", "https://as.example.org", "-consent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseFlags("test", tt.args, io.Discard); !errors.Is(err, ErrConfig) {
				t.Fatalf("ParseFlags(%q) = %v, want ErrConfig", tt.args, err)
			}
		})
	}
	if _, err := ParseFlags("test", []string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
}

func TestBaseURLFor(t *testing.T) {
	tests := []struct {
		name, addr, base string
		bound            net.Addr
		want             string
	}{
		{"default from the bound port", "127.0.0.1:0", "", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4321}, "http://127.0.0.1:4321/fhir"},
		{"unspecified host", ":8080", "", &net.TCPAddr{IP: net.IPv6unspecified, Port: 8080}, "http://localhost:8080/fhir"},
		{"IPv4 unspecified", "0.0.0.0:8080", "", &net.TCPAddr{IP: net.IPv4zero, Port: 8080}, "http://localhost:8080/fhir"},
		{"IPv6 loopback", "[::1]:0", "", &net.TCPAddr{IP: net.IPv6loopback, Port: 9}, "http://[::1]:9/fhir"},
		{"given base, trailing slash removed", "127.0.0.1:0", "https://ehr.example.org/r4/", &net.TCPAddr{Port: 1}, "https://ehr.example.org/r4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := Config{Addr: tt.addr, BaseURL: tt.base}.baseURLFor(tt.bound)
			if err != nil {
				t.Fatal(err)
			}
			if u.String() != tt.want {
				t.Errorf("got %s, want %s", u, tt.want)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		name string
		addr net.Addr
		want bool
	}{
		{"IPv4 loopback", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, true},
		{"other IPv4 loopback", &net.TCPAddr{IP: net.IPv4(127, 1, 2, 3)}, true},
		{"IPv6 loopback", &net.TCPAddr{IP: net.IPv6loopback}, true},
		{"every interface", &net.TCPAddr{IP: net.IPv4zero}, false},
		{"every IPv6 interface", &net.TCPAddr{IP: net.IPv6unspecified}, false},
		{"a LAN address", &net.TCPAddr{IP: net.IPv4(192, 168, 1, 2)}, false},
		{"not TCP", &net.UnixAddr{Name: "/x", Net: "unix"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isLoopback(tt.addr); got != tt.want {
				t.Errorf("isLoopback(%v) = %t", tt.addr, got)
			}
		})
	}
}

func FuzzParseFlags(f *testing.F) {
	for _, seed := range [][2]string{
		{"-base-url", "http://127.0.0.1:8080/fhir"},
		{"-base-url", "http://127.0.0.1/a%2Ffhir"},
		{"-issuer", "https://as.example.org"},
		{"-addr", "[::1]:0"},
		{"-cors-origins", "https://a.example.org,*"},
		{"-app-redirect-uris", "https://app.example.org/cb,http://[::1]:3000/"},
		{"-app-launch-url", "http://localhost:9000/launch.html"},
		{"-patient", "p-1"},
		{"-read-timeout", "1ms"},
		{"-max-header-bytes", "4096"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		c, err := ParseFlags("fuzz", []string{name, value}, io.Discard)
		if err != nil {
			return
		}
		if c.Issuer == "" {
			if len(c.AppRedirectURIs) == 0 || checkLaunchURL(c.AppLaunchURL, c.AppRedirectURIs) != nil || !fhir.ValidID(c.Patient) {
				t.Fatalf("accepted app configuration %q %q %q", c.AppRedirectURIs, c.AppLaunchURL, c.Patient)
			}
		}
		if c.ReadTimeout <= 0 || c.ReadHeaderTimeout <= 0 || c.WriteTimeout <= 0 || c.IdleTimeout <= 0 || c.MaxHeaderBytes < 1024 {
			t.Fatalf("accepted server limits %+v", c)
		}
		if c.BaseURL != "" {
			u, err := parseBaseURL(c.BaseURL)
			if err != nil {
				t.Fatalf("accepted base %q fails to parse: %v", c.BaseURL, err)
			}
			if u.RawQuery != "" || u.Fragment != "" || u.Path == "" || u.Path == "/" {
				t.Fatalf("accepted base %q", c.BaseURL)
			}
		}
	})
}
