package host_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/runtime"
)

// callLocal calls tag on the host directly (Host.LocalCall) and returns
// the answer, or "" when the host left the call to NATS.
func (f *fixture) callLocal(t *testing.T) string {
	t.Helper()
	run, ok := f.h.LocalCall("tag", &nats.Msg{Subject: "fn.test.tag", Header: nats.Header{}})
	if !ok {
		return ""
	}
	reply := run(context.Background())
	if e := runtime.ErrorFromHeaders(reply.Header); e != nil {
		return "error: " + e.Msg
	}
	return string(reply.Data)
}

// TestCallLocal: a local call runs on an instance and returns its reply,
// and is left to NATS when nothing here serves that
// function on that subject, or when every instance's slots are taken.
func TestCallLocal(t *testing.T) {
	f := newFixture(t)
	if got := f.callLocal(t); got != "" {
		t.Fatalf("local call before any deploy = %q, want it left to NATS", got)
	}
	g, gateName := newGate(t, "call")
	fn := tagFn(t, 1, fmt.Sprintf(`{tag: v1, gate: %q}`, gateName))
	fn.Spec.Concurrency = 1
	f.apply(t, fn)
	if _, ok := f.h.LocalCall("tag", &nats.Msg{Subject: "fn.other", Header: nats.Header{}}); ok {
		t.Error("a local call on another subject than the function's trigger was taken")
	}
	if _, ok := f.h.LocalCall("nope", &nats.Msg{Subject: "fn.test.tag", Header: nats.Header{}}); ok {
		t.Error("a local call to a function not deployed was taken")
	}

	held := make(chan string, 1)
	go func() { held <- f.callLocal(t) }()
	g.arrived(t)
	// The only slot is taken: the next call goes to the queue group, where
	// it waits for the slot like any call from NATS.
	if got := f.callLocal(t); got != "" {
		t.Errorf("local call with every slot taken = %q, want it left to NATS", got)
	}
	viaNATS := make(chan string, 1)
	go func() { viaNATS <- f.call() }()
	g.open()
	wantAnswer(t, held, "v1")
	wantAnswer(t, viaNATS, "v1")
	if got := f.callLocal(t); got != "v1" {
		t.Errorf("local call = %q, want v1", got)
	}
	if n := g.done.Load(); n != 3 {
		t.Errorf("the handler ran %d times, want 3", n)
	}
}

// TestCallLocalDuringReplace: a new revision takes the local calls as soon
// as it runs, while the old one drains, and the old revision's drain waits
// for the local call it was running.
func TestCallLocalDuringReplace(t *testing.T) {
	f := newFixture(t)
	g, gateName := newGate(t, "call")
	f.apply(t, tagFn(t, 1, fmt.Sprintf(`{tag: v1, gate: %q}`, gateName)))
	held := make(chan string, 1)
	go func() { held <- f.callLocal(t) }()
	g.arrived(t)

	f.apply(t, tagFn(t, 1, `{tag: v2}`))
	if got := f.callLocal(t); got != "v2" {
		t.Errorf("local call after the replace = %q, want v2", got)
	}
	// Nothing can show that the old revision is not going to clean up
	// now, so give it a moment to do so wrongly.
	time.Sleep(100 * time.Millisecond)
	if g.cleaned.Load() {
		t.Fatal("the old revision cleaned up with a local call in flight")
	}
	g.open()
	wantAnswer(t, held, "v1")
	testenv.Eventually(t, 5*time.Second, "old revision cleaned up", g.cleaned.Load)
	if g.early.Load() {
		t.Error("the old revision cleaned up with a local call in flight")
	}
}
