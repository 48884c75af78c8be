package gateway

import (
	"math"
	"testing"
	"time"

	"github.com/surgefn/surge/runtime/wire"
)

// TestOverviewRates: rates come from two heartbeats at least a second
// apart; an early heartbeat stretches the window instead of starting a
// new one; a host whose counters went back (it restarted) reports no rate
// until its next heartbeat; a host gone is forgotten.
func TestOverviewRates(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	beat := func(host string, at time.Duration, calls, errs uint64) wire.HostStatus {
		return wire.HostStatus{Host: host, At: t0.Add(at), Functions: map[string]wire.FunctionStatus{"fn": {Calls: calls, Errors: errs}}}
	}
	tests := []struct {
		name      string
		beats     [][]wire.HostStatus // successive reads of the hosts bucket
		host      string
		wantCalls float64
		wantErrs  float64
	}{
		{"one heartbeat: no rate yet", [][]wire.HostStatus{{beat("a", 0, 100, 1)}}, "a", 0, 0},
		{"two heartbeats", [][]wire.HostStatus{{beat("a", 0, 100, 1)}, {beat("a", 2*time.Second, 300, 5)}}, "a", 100, 2},
		{"the same heartbeat read twice", [][]wire.HostStatus{{beat("a", 0, 100, 1)}, {beat("a", 2*time.Second, 300, 5)},
			{beat("a", 2*time.Second, 300, 5)}}, "a", 100, 2},
		{"an early heartbeat stretches the window", [][]wire.HostStatus{{beat("a", 0, 0, 0)}, {beat("a", 2*time.Second, 200, 0)},
			{beat("a", 2100*time.Millisecond, 260, 0)}}, "a", 260.0 / 2.1, 0},
		{"a later one moves it on", [][]wire.HostStatus{{beat("a", 0, 0, 0)}, {beat("a", 2*time.Second, 200, 0)},
			{beat("a", 4*time.Second, 210, 0)}}, "a", 5, 0},
		{"counters restarted", [][]wire.HostStatus{{beat("a", 0, 500, 5)}, {beat("a", 2*time.Second, 10, 0)}}, "a", 0, 0},
		{"hosts apart", [][]wire.HostStatus{{beat("a", 0, 0, 0), beat("b", 0, 0, 0)},
			{beat("a", 2*time.Second, 20, 0), beat("b", time.Second, 50, 50)}}, "b", 50, 50},
		{"a host gone is forgotten", [][]wire.HostStatus{{beat("a", 0, 0, 0)}, {beat("a", 2*time.Second, 20, 0)}, {},
			{beat("a", 4*time.Second, 40, 0)}}, "a", 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rates{hosts: map[string]*hostSamples{}}
			for _, b := range tc.beats {
				r.update(b)
			}
			calls, errs := r.of(tc.host, "fn")
			if math.Abs(calls-tc.wantCalls) > 1e-9 || math.Abs(errs-tc.wantErrs) > 1e-9 {
				t.Errorf("rates = %v calls/s, %v errors/s, want %v and %v", calls, errs, tc.wantCalls, tc.wantErrs)
			}
			if c, e := r.of(tc.host, "other"); c != 0 || e != 0 {
				t.Errorf("a function the host does not run = %v, %v", c, e)
			}
		})
	}
}
