package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func TestMedianAndSpread(t *testing.T) {
	rps := func(s sample) float64 { return s.rps }
	for _, tc := range []struct {
		name        string
		in          []float64
		med, lo, hi float64
	}{
		{"one", []float64{5}, 5, 5, 5},
		{"odd", []float64{9, 1, 5}, 5, 1, 9},
		{"even", []float64{4, 1, 3, 2}, 2.5, 1, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ss := make([]sample, len(tc.in))
			for i, v := range tc.in {
				ss[i].rps = v
			}
			if got := median(ss, rps); got != tc.med {
				t.Errorf("median %v, want %v", got, tc.med)
			}
			if lo, hi := spread(ss, rps); lo != tc.lo || hi != tc.hi {
				t.Errorf("spread %v–%v, want %v–%v", lo, hi, tc.lo, tc.hi)
			}
		})
	}
}

func TestFormatting(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  string
		want string
	}{
		{"microseconds", us(1500 * time.Microsecond), "1500 µs"},
		{"negative", us(-18 * time.Microsecond), "-18 µs"},
		{"pass", passFail(true), "**pass**"},
		{"fail", passFail(false), "**FAIL**"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Fatalf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}

// TestMain lets the test binary stand in for the command when the load
// test starts its server processes (os.Executable() serve ...).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		if err := serve(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestLoadCommand runs the whole load command briefly: two server
// processes, three scenarios, one concurrency level.
func TestLoadCommand(t *testing.T) {
	var out bytes.Buffer
	err := load(context.Background(), []string{"-duration", "200ms", "-warmup", "50ms", "-concurrency", "2", "-rounds", "1"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| 2 | bare | ", "| 2 | guard-system | ", "| 2 | guard-patient | ", "concurrency 2: throughput "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	rows := 0
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "| 2 | ") {
			rows++
			if !strings.HasSuffix(line, " | 0 |") {
				t.Errorf("scenario with errors: %s", line)
			}
		}
	}
	if rows != 3 {
		t.Errorf("%d scenario rows, want 3", rows)
	}
}

func TestCommandFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"bad concurrency", []string{"-concurrency", "0"}},
		{"concurrency not a number", []string{"-concurrency", "1,x"}},
		{"no rounds", []string{"-rounds", "0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := load(context.Background(), tc.args, io.Discard); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if err := scale([]string{"-tokens", "5", "-scopes", "6"}, io.Discard); err == nil {
		t.Error("scale accepted more scope strings than tokens")
	}
}

func TestScaleCommand(t *testing.T) {
	var out bytes.Buffer
	if err := scale([]string{"-tokens", "50", "-scopes", "5"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "| 50 | 5 | 50 |") || !strings.Contains(out.String(), "| 5 | 100.0 % |") {
		t.Errorf("unexpected scale output:\n%s", out.String())
	}
}
