package envelopes

import (
	"math/rand/v2"
	"testing"
)

// TestDrawProperties: 1000 random envelopes drawn share by share with a
// seeded source; every share is >= 1 cent and below twice the mean of what
// remained at its draw, and the shares sum exactly to the total.
func TestDrawProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 2))
	rnd := func(n int64) int64 { return r.Int64N(n) }
	for i := range 1000 {
		count := 1 + r.IntN(MaxCount)
		if i%10 == 0 {
			count = 1 + r.IntN(10)
		}
		total := int64(count) + r.Int64N(MaxTotalCents-int64(count)+1)
		if i%7 == 0 {
			total = int64(count) + r.Int64N(3) // the tight end: shares of 1 cent
		}
		remaining, sum := total, int64(0)
		for left := count; left > 0; left-- {
			share := Draw(remaining, left, rnd)
			if share < 1 {
				t.Fatalf("envelope %d (%d cents, %d shares): share %d < 1", i, total, count, share)
			}
			if left > 1 && share*int64(left) >= 2*remaining {
				t.Fatalf("envelope %d: share %d of %d cents for %d shares is not below twice the mean", i, share, remaining, left)
			}
			if remaining-share < int64(left-1) {
				t.Fatalf("envelope %d: share %d leaves %d cents for %d shares", i, share, remaining-share, left-1)
			}
			remaining -= share
			sum += share
		}
		if sum != total || remaining != 0 {
			t.Fatalf("envelope %d: shares sum to %d, want %d", i, sum, total)
		}
	}
}

func TestDrawBounds(t *testing.T) {
	maxRnd := func(n int64) int64 { return n - 1 }
	minRnd := func(int64) int64 { return 0 }
	tests := []struct {
		name      string
		remaining int64
		count     int
		rnd       Intn
		want      int64
	}{
		{"last takes the rest", 777, 1, minRnd, 777},
		{"one cent each", 5, 5, maxRnd, 1},
		{"smallest", 10000, 10, minRnd, 1},
		{"largest is 2*mean-1", 10000, 10, maxRnd, 1999},
		{"two shares", 3, 2, maxRnd, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Draw(tt.remaining, tt.count, tt.rnd); got != tt.want {
				t.Errorf("Draw(%d, %d) = %d, want %d", tt.remaining, tt.count, got, tt.want)
			}
		})
	}
}
