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
			"-jwks-refetch-cooldown", "1s", "-shutdown-timeout", "3s"}, func(t *testing.T, c Config) {
			want := Config{Addr: "127.0.0.1:0", BaseURL: "https://ehr.example.org/r4/", Issuer: "https://as.example.org",
				JWKSURL: "https://as.example.org/jwks", IntrospectionURL: "https://as.example.org/introspect",
				IntrospectionClientID: "rs", IntrospectionClientSecret: "s", PolicyFile: "p.yaml", Empty: true,
				CORSOrigins: []string{"https://a.example.org", "https://b.example.org"}, TrustedProxies: []string{"10.0.0.0/8"},
				JWKSRefetchCooldown: time.Second, ShutdownTimeout: 3 * time.Second}
			if !slices.Equal(c.CORSOrigins, want.CORSOrigins) || !slices.Equal(c.TrustedProxies, want.TrustedProxies) {
				t.Errorf("lists: %q %q", c.CORSOrigins, c.TrustedProxies)
			}
			c.CORSOrigins, want.CORSOrigins, c.TrustedProxies, want.TrustedProxies = nil, nil, nil, nil
			if !reflect.DeepEqual(c, want) {
				t.Errorf("got %+v\nwant %+v", c, want)
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
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		c, err := ParseFlags("fuzz", []string{name, value}, io.Discard)
		if err != nil {
			return
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
