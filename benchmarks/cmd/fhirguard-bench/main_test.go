package main

import (
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
