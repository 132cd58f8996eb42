package middleware

import "math/big"

// rocaPrimes are small primes dividing the primorial used by the key
// generator with the ROCA weakness (CVE-2017-15361). Its primes have the
// form k·M + (65537^a mod M), so a modulus N made of two of them is, modulo
// every prime r dividing M, a power of 65537. A random modulus passes that
// test for all of these primes with negligible probability.
var rocaPrimes = []int64{3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167}

// rocaPowers[i][x] is true when x is a power of 65537 modulo rocaPrimes[i].
var rocaPowers = func() [][]bool {
	out := make([][]bool, len(rocaPrimes))
	for i, p := range rocaPrimes {
		set := make([]bool, p)
		x := int64(1)
		g := int64(65537) % p
		for range p {
			set[x] = true
			x = x * g % p
		}
		out[i] = set
	}
	return out
}()

// rocaVulnerable reports whether n has the ROCA fingerprint.
func rocaVulnerable(n *big.Int) bool {
	var m, r big.Int
	for i, p := range rocaPrimes {
		m.SetInt64(p)
		r.Mod(n, &m)
		if !rocaPowers[i][r.Int64()] {
			return false
		}
	}
	return true
}
