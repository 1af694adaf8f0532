package chatgen

// rng is a splitmix64 pseudo-random generator. It is implemented here rather
// than taken from math/rand so that the streams (and testdata/ files made from
// them) stay byte-identical across Go releases, and so that derived streams
// can live on the stack without allocating.
type rng struct{ s uint64 }

// newRNG returns a generator whose stream is fully determined by seed.
func newRNG(seed uint64) rng { return rng{s: seed} }

// next returns the next 64 random bits.
func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn returns a value in [0, n) for 0 < n < 2^32 (Lemire's multiply-shift;
// the bias is below 2^-32 and irrelevant here).
func (r *rng) intn(n int) int {
	return int(((r.next() >> 32) * uint64(n)) >> 32)
}

// int63n returns a value in [0, n) for n > 0.
func (r *rng) int63n(n int64) int64 {
	return int64(r.next() % uint64(n))
}

// float returns a value in [0, 1).
func (r *rng) float() float64 {
	return float64(r.next()>>11) / (1 << 53)
}

// chance reports true with probability p.
func (r *rng) chance(p float64) bool {
	return r.float() < p
}

// mix derives an independent seed from a base seed and a salt, so that the
// content of one document version can be regenerated without replaying the
// main stream.
func mix(seed, salt uint64) uint64 {
	r := newRNG(seed ^ (salt * 0xd6e8feb86659fd93))
	return r.next()
}
