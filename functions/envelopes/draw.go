package envelopes

// Intn returns a uniform random integer in [0, n) for n > 0; the draw
// takes it as a parameter so a test can inject a seeded source.
type Intn func(n int64) int64

// Draw is the "double mean" rule (WeChat's) for one share: with remaining
// cents left for count shares, the share is uniform in
// [1, 2*remaining/count - 1] cents, and the last share (count 1) takes the
// rest. Because remaining >= count holds before every draw (each share
// at least 1 cent), the upper bound always leaves at least 1 cent for each
// of the other count-1 shares, so every share is >= 1 and the shares sum
// exactly to the total; no share reaches twice the mean of what remained
// when it was drawn.
func Draw(remaining int64, count int, rnd Intn) int64 {
	if count <= 1 {
		return remaining
	}
	hi := 2*remaining/int64(count) - 1 // inclusive
	if hi <= 1 {
		return 1
	}
	return 1 + rnd(hi)
}
