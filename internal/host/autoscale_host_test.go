package host_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/manifests"
)

// autoTagFn is tagFn autoscaled on calls in flight: one instance per call,
// up to 3, with a 1s cool-down.
func autoTagFn(t *testing.T, config string) manifests.Function {
	fn := tagFn(t, 1, config)
	fn.Spec.Autoscale = &manifests.Autoscale{Min: 1, Max: 3, TargetInFlight: 1, Cooldown: manifests.Duration(time.Second)}
	if err := fn.Validate(); err != nil {
		t.Fatal(err)
	}
	return fn
}

// TestAutoscaleSingleInstances: with three calls held in flight the
// autoscaler adds two instances without touching the first; a redeploy
// then starts at the count reached; after the calls are answered it drains
// back to one instance.
func TestAutoscaleSingleInstances(t *testing.T) {
	f := newFixture(t)
	g, gateName := newGate(t, "held")
	f.apply(t, autoTagFn(t, fmt.Sprintf(`{tag: v1, gate: %q}`, gateName)))
	first := f.tagInstances(t)
	if len(first) != 1 {
		t.Fatalf("%d instances at start, want min 1", len(first))
	}
	answers := make(chan string, 3)
	for range 3 {
		go func() { answers <- f.call() }()
	}
	g.arrived(t)
	testenv.Eventually(t, 5*time.Second, "3 instances with 3 calls in flight", func() bool {
		return len(f.tagInstances(t)) == 3
	})
	now := f.tagInstances(t)
	if overlap(first, now) != 1 {
		t.Errorf("instances %v no longer include the first %v: scaling restarted it", now, first)
	}
	st, _ := f.status("tag")
	if st.Instances != 3 || st.Autoscale == nil || st.Autoscale.Desired != 3 || st.Autoscale.Signal != 3 {
		t.Errorf("status = %+v, autoscale %+v; want 3 instances, desired 3 from signal 3", st, st.Autoscale)
	}
	if n := g.inflight.Load(); n != 3 {
		t.Errorf("%d calls in flight after scaling, want the 3 held", n)
	}

	// A redeploy starts the new revision at the count reached.
	f.apply(t, autoTagFn(t, fmt.Sprintf(`{tag: v2, gate: %q}`, gateName)))
	if st, _ := f.status("tag"); st.Instances != 3 || st.Autoscale.Desired != 3 {
		t.Errorf("new revision started with %d instances (desired %d), want 3", st.Instances, st.Autoscale.Desired)
	}
	var second []string // the new revision's instances
	for _, s := range f.tagInstances(t) {
		if !slices.Contains(now, s) {
			second = append(second, s)
		}
	}
	if len(second) != 3 {
		t.Errorf("new revision has instances %v, want 3", second)
	}
	g.open()
	for range 3 {
		wantAnswer(t, answers, "v1")
	}
	testenv.Eventually(t, 6*time.Second, "back to 1 instance after the cool-down", func() bool {
		return len(f.tagInstances(t)) == 1
	})
	if last := f.tagInstances(t); overlap(last, second) != 1 {
		t.Errorf("the instance left %v is not one of the revision's %v", last, second)
	}
	if got := f.call(); got != "v2" {
		t.Errorf("call after scaling down = %q, want v2", got)
	}
}
