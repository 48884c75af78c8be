package gateway

import "testing"

func TestDeadLetterTruncated(t *testing.T) {
	tests := []struct {
		name, payload, enc string
		n                  int
		want               string
		wantCut            bool
	}{
		{name: "short stays whole", payload: "abc", enc: "utf-8", n: 5, want: "abc"},
		{name: "exact stays whole", payload: "abcde", enc: "utf-8", n: 5, want: "abcde"},
		{name: "cut", payload: "abcdef", enc: "utf-8", n: 4, want: "abcd", wantCut: true},
		{name: "never inside a character", payload: "ab€cd", enc: "utf-8", n: 3, want: "ab", wantCut: true},
		{name: "base64 cut anywhere", payload: "QUJDREVGR0g=", enc: "base64", n: 4, want: "QUJD", wantCut: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := DeadLetter{Payload: tc.payload, PayloadEncoding: tc.enc}.truncated(tc.n)
			if d.Payload != tc.want || d.PayloadTruncated != tc.wantCut {
				t.Errorf("truncated(%d) = %q cut %v, want %q cut %v", tc.n, d.Payload, d.PayloadTruncated, tc.want, tc.wantCut)
			}
		})
	}
}
