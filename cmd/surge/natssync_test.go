package main

import (
	"strings"
	"testing"
	"time"

	"github.com/surgefn/surge/internal/platform"
)

func TestNATSSyncFlag(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "auto", want: 0}, {in: "always", want: platform.SyncAlways}, {in: "1s", want: time.Second},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "0s", wantErr: true}, {in: "-1s", wantErr: true}, {in: "never", wantErr: true}, {in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			d := time.Hour
			v := syncValue{&d}
			err := v.Set(tt.in)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "not auto, always or a positive duration") {
					t.Fatalf("Set(%q) = %v, want an error saying what is allowed", tt.in, err)
				}
				return
			}
			if err != nil || d != tt.want {
				t.Fatalf("Set(%q): %s, %v; want %s", tt.in, d, err, tt.want)
			}
			if v.String() != tt.in {
				t.Errorf("String() = %q, want %q", v.String(), tt.in)
			}
		})
	}
}
