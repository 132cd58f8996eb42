package demo_test

import (
	"net"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/examples/internal/demo/demotest"
	"github.com/fhirguard/fhirguard/smarttest"
)

// TestInsecureWarning checks that everything insecure the demo turns on
// is said once: one block of the banner naming each setting and the flag
// that turns it off, and nothing about it in the log (the Guard's own
// start-up warnings are held back).
func TestInsecureWarning(t *testing.T) {
	listen := func(t *testing.T) net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	tests := []struct {
		name string
		args func(t *testing.T, addr string) []string
		// want are the block's lines (after "!!"), each with a setting or
		// the flags that turn it off; absent must not be in the banner.
		want, absent []string
		insecure     bool
	}{
		{
			name: "embedded authorization server, http on loopback",
			args: func(*testing.T, string) []string { return nil },
			want: []string{
				"- AuthConfig.InsecureAllowHTTP: bearer tokens are accepted over plain HTTP",
				"off: an https -base-url",
				"- AuthConfig.InsecureAllowHTTPKeyURLs: keys and introspection answers are fetched over plain HTTP",
				"off: https in -base-url (the embedded server shares its listener)",
				"- embedded authorization server (smarttest): issues tokens to anyone who reaches it",
				"off: -issuer",
			},
			absent:   []string{"FetchConfig"},
			insecure: true,
		},
		{
			name: "embedded authorization server, https base",
			args: func(_ *testing.T, addr string) []string { return []string{"-base-url", "https://" + addr + "/fhir"} },
			want: []string{"- embedded authorization server (smarttest)", "off: -issuer"},
			// The Guard fetches the embedded server's keys over https
			// (where a TLS proxy would be): no setting allows http.
			absent: []string{"InsecureAllowHTTP", "-base-url"},
		},
		{
			name: "external authorization server over http on loopback",
			args: func(t *testing.T, addr string) []string {
				ext, err := smarttest.New(smarttest.Config{FHIRBase: "http://" + addr + "/fhir"})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(ext.Close)
				return []string{"-issuer", ext.SMARTConfiguration().Issuer, "-empty"}
			},
			want: []string{
				"- AuthConfig.InsecureAllowHTTP:", "off: an https -base-url",
				"- discovery FetchConfig.InsecureAllowHTTPURLs: the authorization server's OpenID configuration is fetched over plain HTTP",
				"off: an https -issuer",
				"- AuthConfig.InsecureAllowHTTPKeyURLs:", "off: https in the jwks_uri of the -issuer",
			},
			absent:   []string{"smarttest)"},
			insecure: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := listen(t)
			s := demotest.StartOn(t, ln, routes, tt.args(t, ln.Addr().String())...)
			if n := strings.Count(s.Banner, "INSECURE"); n != 1 {
				t.Errorf("the banner says INSECURE %d times:\n%s", n, s.Banner)
			}
			if s.Insecure() != tt.insecure {
				t.Errorf("Insecure() = %t", s.Insecure())
			}
			// The block: the INSECURE line and the item lines after it, all
			// starting with "!!".
			var block []string
			for _, l := range strings.Split(s.Banner, "\n") {
				if l = strings.TrimSpace(l); strings.HasPrefix(l, "!!") {
					block = append(block, strings.TrimSpace(strings.TrimPrefix(l, "!!")))
				} else if len(block) > 0 {
					break
				}
			}
			if len(block) != 1+len(tt.want) || !strings.HasPrefix(block[0], "INSECURE") {
				t.Fatalf("block %q, want an INSECURE line and %d items", block, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(block[1+i], w) {
					t.Errorf("block line %d: %q, want %q…", 1+i, block[1+i], w)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(s.Banner, a) {
					t.Errorf("the banner names %q:\n%s", a, strings.Join(block, "\n"))
				}
			}
			if logs := s.Logs(); strings.Contains(strings.ToLower(logs), "insecure") {
				t.Errorf("the log repeats the warning:\n%s", logs)
			}
		})
	}
}
