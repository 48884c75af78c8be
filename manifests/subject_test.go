package manifests

import "testing"

func TestSubjectCovers(t *testing.T) {
	tests := []struct {
		pattern, sub string
		want         bool
	}{
		{"orders.>", "orders.submit", true},
		{"orders.>", "orders", false},
		{"orders.*", "orders.submit", true},
		{"orders.*", "orders.submit.x", false},
		{"orders.submit", "orders.submit", true},
		{"orders.submit", "orders.other", false},
		{"orders.*", "orders.>", false},
		{">", "anything.at.all", true},
		{"a.*.c", "a.b.c", true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.sub, func(t *testing.T) {
			if got := SubjectCovers(tt.pattern, tt.sub); got != tt.want {
				t.Errorf("SubjectCovers = %v, want %v", got, tt.want)
			}
		})
	}
}
