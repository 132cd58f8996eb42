package demo

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/middleware"
)

func TestQuietInsecure(t *testing.T) {
	var buf bytes.Buffer
	q := newQuietInsecure(slog.NewTextHandler(&buf, nil), []insecureSetting{
		{setting: "AuthConfig.InsecureAllowHTTP", guardField: "InsecureAllowHTTP"},
		{setting: "embedded authorization server (smarttest)"},
	})
	log := slog.New(q)
	held := []string{
		"fhirguard: InsecureAllowHTTP is set: bearer tokens are accepted over plain HTTP",
		"InsecureAllowHTTP and InsecureAllowHTTP again",
	}
	passed := []string{
		"fhirguard: InsecureAllowHTTPKeyURLs is set", // not listed
		"InsecureAllowHTTP and InsecureSkipVerify",   // one of them not listed
		"fhirguard: JWKS fetch failed",               // names no Insecure… setting
		"NotInsecureAllowHTTP",                       // inside a longer word
	}
	for _, m := range held {
		log.Warn(m)
		log.With("k", "v").WithGroup("g").Warn(m, "x", 1)
	}
	for _, m := range passed {
		log.Warn(m)
	}
	log.Info(held[0]) // not a warning
	out := buf.String()
	if strings.Count(out, "\n") != len(passed)+1 {
		t.Fatalf("held back the wrong records:\n%s", out)
	}
	for _, m := range passed {
		if !strings.Contains(out, m) {
			t.Errorf("%q held back", m)
		}
	}

	q.release()
	buf.Reset()
	log.Warn(held[0])
	log.With("k", "v").Warn(held[0])
	if strings.Count(buf.String(), "\n") != 2 {
		t.Errorf("released, yet held back:\n%s", buf.String())
	}
	if !q.Enabled(context.Background(), slog.LevelInfo) || q.Enabled(context.Background(), slog.LevelDebug) {
		t.Error("Enabled is not the wrapped handler's")
	}
}

// TestQuietInsecureGuard holds back the Guard's own start-up warnings
// about the settings the demo lists, and nothing else.
func TestQuietInsecureGuard(t *testing.T) {
	for _, tt := range []struct {
		name   string
		listed []insecureSetting
		shown  string // a setting still warned about; "" for none
	}{
		{"both listed", []insecureSetting{{guardField: "InsecureAllowHTTP"}, {guardField: "InsecureAllowHTTPKeyURLs"}}, ""},
		{"one listed", []insecureSetting{{guardField: "InsecureAllowHTTP"}}, "InsecureAllowHTTPKeyURLs"},
		{"none listed", nil, "InsecureAllowHTTP"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			q := newQuietInsecure(slog.NewTextHandler(&buf, nil), tt.listed)
			g, err := middleware.New(middleware.Config{
				Authorize: middleware.AuthorizeConfig{BaseURL: "http://127.0.0.1:1/fhir"},
				Auth: middleware.AuthConfig{InsecureAllowHTTP: true, InsecureAllowHTTPKeyURLs: true,
					Introspection: &middleware.IntrospectionConfig{Endpoint: "http://127.0.0.1:1/introspect", ClientID: "c", ClientSecret: "s"},
					Logger:        slog.New(q)},
			})
			q.release()
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			out := buf.String()
			if n := strings.Count(out, "level=WARN"); (n == 0) != (tt.shown == "") || !strings.Contains(out, tt.shown) {
				t.Errorf("want a warning about %q, got:\n%s", tt.shown, out)
			}
		})
	}
}
