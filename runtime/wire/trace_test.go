package wire

import (
	"strings"
	"testing"
)

func TestChildTraceparent(t *testing.T) {
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := []struct {
		name      string
		parent    string
		wantTrace string // "" means a new trace
		wantFlags string
	}{
		{name: "continues a valid parent", parent: parent, wantTrace: "4bf92f3577b34da6a3ce929d0e0e4736", wantFlags: "01"},
		{name: "later version read as 00", parent: "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra", wantTrace: "4bf92f3577b34da6a3ce929d0e0e4736", wantFlags: "00"},
		{name: "empty starts a trace", parent: ""},
		{name: "upper-case hex is invalid", parent: strings.ToUpper(parent)},
		{name: "zero trace id", parent: "00-00000000000000000000000000000000-00f067aa0ba902b7-01"},
		{name: "zero span id", parent: "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"},
		{name: "version ff", parent: "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{name: "version 00 with a tail", parent: parent + "-x"},
		{name: "short", parent: parent[:54]},
		{name: "bad separator", parent: "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{name: "not hex", parent: "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ChildTraceparent(tc.parent)
			if !validTraceparent(got) || len(got) != traceparentLen || got[:2] != "00" {
				t.Fatalf("ChildTraceparent(%q) = %q: not a version 00 traceparent", tc.parent, got)
			}
			if got[36:52] == "00f067aa0ba902b7" {
				t.Errorf("span id %s reused from the parent", got[36:52])
			}
			if tc.wantTrace == "" {
				if TraceID(got) == "4bf92f3577b34da6a3ce929d0e0e4736" {
					t.Errorf("an invalid parent was continued: %q", got)
				}
				if got[53:] != "00" {
					t.Errorf("flags of a new trace = %s, want 00", got[53:])
				}
				return
			}
			if TraceID(got) != tc.wantTrace || got[53:] != tc.wantFlags {
				t.Errorf("ChildTraceparent(%q) = %q, want trace %s flags %s", tc.parent, got, tc.wantTrace, tc.wantFlags)
			}
		})
	}
	if a, b := ChildTraceparent(""), ChildTraceparent(""); TraceID(a) == TraceID(b) {
		t.Errorf("two new traces share id %s", TraceID(a))
	}
	if TraceID("nonsense") != "" {
		t.Error("TraceID of an invalid traceparent is not empty")
	}
}

func BenchmarkChildTraceparent(b *testing.B) {
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	b.ReportAllocs()
	for b.Loop() {
		_ = ChildTraceparent(parent)
	}
}
