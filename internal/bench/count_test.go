package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCountVerifier(t *testing.T) {
	file := filepath.Join(t.TempDir(), "count")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	tests := []struct {
		name       string
		after      string // the count once the load is over
		acked      int64
		errors     int64
		wantPassed bool
		wantLost   int64
	}{
		{name: "every accepted order stored", after: "15\n", acked: 5, wantPassed: true},
		{name: "lost orders", after: "12", acked: 5, wantLost: 3},
		{name: "one more than acked after one timeout", after: "16", acked: 5, errors: 1, wantPassed: true},
		{name: "more than acked without errors", after: "16", acked: 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewCountVerifier("cat "+file, 600*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			write("10")
			if err := v.start(ctx); err != nil {
				t.Fatal(err)
			}
			go func() { time.Sleep(100 * time.Millisecond); write(tc.after) }()
			got, err := v.verify(ctx, tc.acked, &Result{Start: time.Now().Add(-time.Second), Errors: tc.errors})
			if err != nil {
				t.Fatal(err)
			}
			if got.Passed != tc.wantPassed || got.Lost != tc.wantLost {
				t.Errorf("verify = %+v, want passed %v lost %d", got, tc.wantPassed, tc.wantLost)
			}
			if tc.wantPassed && got.PersistedRate <= 0 {
				t.Errorf("no persisted rate: %+v", got)
			}
		})
	}
	for _, bad := range []struct{ cmd, wantErr string }{
		{"", "--verify-count"},
		{"cat " + file + ".missing", "exit status"},
	} {
		v, err := NewCountVerifier(bad.cmd, time.Second)
		if err == nil {
			err = v.start(ctx)
		}
		if err == nil || !strings.Contains(err.Error(), bad.wantErr) {
			t.Errorf("%q: err %v, want it to say %q", bad.cmd, err, bad.wantErr)
		}
	}
	write("many")
	v, _ := NewCountVerifier("cat "+file, time.Second)
	if err := v.start(ctx); err == nil || !strings.Contains(err.Error(), "not a number") {
		t.Errorf("a count that is not a number: %v", err)
	}
}
