package platform_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/wire"
)

// Test-only modules: a slow function, one that fails or panics on demand,
// and stream functions that record every delivery.
func init() {
	runtime.Register(runtime.Module{ID: "test.sleep", New: func() any { return new(sleeper) }})
	runtime.Register(runtime.Module{ID: "test.fail", New: func() any { return new(failer) }})
	runtime.Register(runtime.Module{ID: "test.record", New: func() any { return new(recorderFn) }})
}

type sleeper struct {
	Version string `json:"version"`
}

// Handle sleeps ?ms milliseconds, or less when its deadline comes first;
// with ?stubborn=1 it ignores the deadline.
func (s *sleeper) Handle(ctx context.Context, req *runtime.Request) error {
	ms, _ := strconv.Atoi(req.Query().Get("ms"))
	if req.Query().Get("stubborn") != "" {
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
	select {
	case <-time.After(time.Duration(ms) * time.Millisecond):
	case <-ctx.Done():
		return ctx.Err()
	}
	return req.RespondJSON(http.StatusOK, map[string]any{"slept": ms, "version": s.Version})
}

type failer struct{}

func (failer) Handle(_ context.Context, req *runtime.Request) error {
	q := req.Query()
	if q.Get("panic") != "" {
		panic("boom")
	}
	// A call replayed from the DLQ succeeds.
	if s := q.Get("status"); s != "" && req.Header.Get(wire.HeaderReplay) == "" {
		n, _ := strconv.Atoi(s)
		return runtime.Errorf(n, q.Get("code"), "failed on purpose")
	}
	if q.Get("plain") != "" {
		return errors.New("a plain error with a secret cause")
	}
	return req.RespondJSON(http.StatusAccepted, map[string]string{"ok": "yes"})
}

// delivery is one stream message as the handler saw it.
type delivery struct {
	Seq       uint64
	Delivered int
	At        time.Time
	Data      string
	Header    nats.Header
}

type recorder struct {
	mu   sync.Mutex
	seen []delivery
}

var (
	recordersMu sync.Mutex
	recorders   = map[string]*recorder{}
)

func recorderFor(name string) *recorder {
	recordersMu.Lock()
	defer recordersMu.Unlock()
	r := recorders[name]
	if r == nil {
		r = &recorder{}
		recorders[name] = r
	}
	return r
}

func (r *recorder) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.seen...)
}

// wantEachOnce checks that n distinct messages were handled, each once and
// at its first delivery.
func (r *recorder) wantEachOnce(t *testing.T, n int) {
	t.Helper()
	seen := map[uint64]int{}
	for _, d := range r.deliveries() {
		seen[d.Seq]++
		if d.Delivered != 1 {
			t.Errorf("seq %d delivered %d times", d.Seq, d.Delivered)
		}
	}
	if len(seen) != n {
		t.Errorf("handled %d distinct messages, want %d", len(seen), n)
	}
	for seq, c := range seen {
		if c != 1 {
			t.Errorf("seq %d handled %d times", seq, c)
		}
	}
}

// recorderFn records every delivery; with Fail set it fails every message
// (or, with FailTimes, the first FailTimes deliveries of each); BatchDelay
// simulates work per batch; FailUnlessReplayed fails every message that
// has no Surge-Replay header.
type recorderFn struct {
	Fail               bool               `json:"fail"`
	FailUnlessReplayed bool               `json:"failUnlessReplayed"`
	FailTimes          int                `json:"failTimes"`
	Reject             bool               `json:"reject"`
	BatchDelay         manifests.Duration `json:"batchDelay"`
	name               string
}

func (f *recorderFn) Provision(_ context.Context, env *runtime.Env) error {
	f.name = env.Function.Metadata.Name
	return nil
}

func (f *recorderFn) HandleBatch(ctx context.Context, batch []*runtime.Msg) error {
	rec := recorderFor(f.name)
	if f.BatchDelay > 0 {
		time.Sleep(f.BatchDelay.Std())
	}
	now := time.Now()
	rec.mu.Lock()
	for _, m := range batch {
		rec.seen = append(rec.seen, delivery{Seq: m.Seq, Delivered: m.Delivered, At: now, Data: string(m.Data), Header: m.Header})
	}
	rec.mu.Unlock()
	for _, m := range batch {
		switch {
		case f.Reject:
			m.Reject(runtime.BadRequest("payload", "rejected on purpose"))
		case f.Fail || m.Delivered <= f.FailTimes || (f.FailUnlessReplayed && m.Header.Get(wire.HeaderReplay) == ""):
			m.Fail(errors.New("failing on purpose"))
		}
	}
	return nil
}
