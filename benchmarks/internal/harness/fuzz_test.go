package harness

import (
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

func TestParseVmRSS(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     uint64
		ok       bool
	}{
		{"linux status", "Name:\tx\nVmPeak:\t  20000 kB\nVmRSS:\t   16384 kB\nThreads:\t5\n", 16384 << 10, true},
		{"spaces", "VmRSS:        1 kB", 1024, true},
		{"absent", "Name:\tx\n", 0, false},
		{"no unit", "VmRSS:\t16384\n", 0, false},
		{"other unit", "VmRSS:\t16 MB\n", 0, false},
		{"negative", "VmRSS:\t-1 kB\n", 0, false},
		{"overflow", "VmRSS:\t" + strconv.FormatUint(1<<60, 10) + " kB\n", 0, false},
		{"prefix only inside line", "XVmRSS:\t1 kB\n", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseVmRSS([]byte(tc.in))
			if got != tc.want || ok != tc.ok {
				t.Fatalf("got %d, %v; want %d, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// FuzzParseVmRSS: never panics, and a reported size is the kB figure of a
// VmRSS line times 1024.
func FuzzParseVmRSS(f *testing.F) {
	for _, s := range []string{"VmRSS:\t   16384 kB\n", "Name:\tx\nVmRSS: 1 kB", "VmRSS:", "VmRSS: kB", "VmRSS:\t18446744073709551615 kB"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		n, ok := parseVmRSS(in)
		if !ok {
			if n != 0 {
				t.Fatalf("not ok but %d", n)
			}
			return
		}
		if n%1024 != 0 || !strings.Contains(string(in), "VmRSS:") || !strings.Contains(string(in), strconv.FormatUint(n>>10, 10)) {
			t.Fatalf("%d from %q", n, in)
		}
	})
}

// FuzzParseMode: only the two names parse, and they round-trip.
func FuzzParseMode(f *testing.F) {
	for _, s := range []string{"bare", "guard", "Bare", "", "guard "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMode(s)
		if (err == nil) != (s == "bare" || s == "guard") {
			t.Fatalf("ParseMode(%q) = %v, %v", s, m, err)
		}
		if err == nil && m.String() != s {
			t.Fatalf("round trip %q → %v", s, m)
		}
	})
}

// FuzzLoadTarget: a load target is accepted only when its host is a
// loopback address.
func FuzzLoadTarget(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1:8080/fhir", "http://[::1]/", "http://localhost/", "http://example.org/",
		"http://127.0.0.1@example.org/", "http://example.org#@127.0.0.1/", "http://0x7f000001/", "http://[::ffff:127.0.0.1]/", "https://127.1/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfg := LoadConfig{URL: s}
		if cfg.validate() != nil {
			return
		}
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("accepted unparsable %q", s)
		}
		h := u.Hostname()
		if ip := net.ParseIP(h); h != "localhost" && (ip == nil || !ip.IsLoopback()) {
			t.Fatalf("accepted %q (host %q)", s, h)
		}
	})
}
