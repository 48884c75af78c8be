package main

import (
	"strings"
	"testing"
)

func TestReplicasFlag(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{in: "auto", want: 0}, {in: "1", want: 1}, {in: "3", want: 3}, {in: "5", want: 5},
		{in: "0", wantErr: true}, {in: "6", wantErr: true}, {in: "three", wantErr: true}, {in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			n := -1
			v := replicasValue{&n}
			err := v.Set(tt.in)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "auto or a count from 1 to 5") {
					t.Fatalf("Set(%q) = %v, want an error saying what is allowed", tt.in, err)
				}
				return
			}
			if err != nil || n != tt.want {
				t.Fatalf("Set(%q): %d, %v; want %d", tt.in, n, err, tt.want)
			}
			if v.String() != tt.in {
				t.Errorf("String() = %q, want %q", v.String(), tt.in)
			}
		})
	}
}
