package host_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/internal/host"
	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/wire"
)

// tagger answers every call with its tag. It waits at its gate first when
// it has one, and fails to provision when told to, so a test can hold a
// call in flight or make a revision fail to start.
type tagger struct {
	Tag  string `json:"tag"`
	Gate string `json:"gate"`
	Fail bool   `json:"fail"`
	// Stream, when set, must exist at Provision (spec.publishes).
	Stream string `json:"stream"`
}

func (x *tagger) Provision(ctx context.Context, env *runtime.Env) error {
	if x.Fail {
		return errors.New("provision failed on purpose")
	}
	if x.Stream != "" {
		if _, err := env.JS.Stream(ctx, x.Stream); err != nil {
			return fmt.Errorf("stream %s at provision: %w", x.Stream, err)
		}
	}
	return nil
}

func (x *tagger) Handle(_ context.Context, req *runtime.Request) error {
	g := passGate(x.Gate)
	req.Respond([]byte(x.Tag))
	g.finish()
	return nil
}

// Cleanup records on its gate that the instance stopped, and whether a
// call was still in flight then.
func (x *tagger) Cleanup() error {
	cleanupGate(x.Gate)
	return nil
}

// batcher settles stream batches (every message acked), waiting at its
// gate first when it has one.
type batcher struct {
	Gate string `json:"gate"`
}

func (b *batcher) HandleBatch(_ context.Context, batch []*runtime.Msg) error {
	passGate(b.Gate).finish()
	return nil
}

// Cleanup records on its gate that the instance stopped.
func (b *batcher) Cleanup() error {
	cleanupGate(b.Gate)
	return nil
}

var (
	_ runtime.Provisioner  = (*tagger)(nil)
	_ runtime.Handler      = (*tagger)(nil)
	_ runtime.CleanerUpper = (*tagger)(nil)
	_ runtime.BatchHandler = (*batcher)(nil)
	_ runtime.CleanerUpper = (*batcher)(nil)
)

func init() {
	runtime.Register(runtime.Module{ID: "hosttest.tag", New: func() any { return new(tagger) }})
	runtime.Register(runtime.Module{ID: "hosttest.batch", New: func() any { return new(batcher) }})
}

// gate holds calls until the test opens it. entered tells of the first
// call that reached it; done counts the calls that went on past it, and
// inflight those in between. cleaned is set when the instance that owns it
// cleaned up, early when it did so with a call in flight.
type gate struct {
	entered  chan struct{}
	release  chan struct{}
	once     sync.Once
	inflight atomic.Int32
	done     atomic.Int32
	cleaned  atomic.Bool
	early    atomic.Bool
}

var gates sync.Map // name -> *gate

// newGate makes the gate t.Name()/what.
func newGate(t *testing.T, what string) (*gate, string) {
	g := &gate{entered: make(chan struct{}, 1), release: make(chan struct{})}
	name := t.Name() + "/" + what
	gates.Store(name, g)
	t.Cleanup(func() { g.open(); gates.Delete(name) })
	return g, name
}

// passGate waits at the named gate (none: returns at once) and returns it.
func passGate(name string) *gate {
	v, ok := gates.Load(name)
	if !ok {
		return nil
	}
	g := v.(*gate)
	g.inflight.Add(1)
	select {
	case g.entered <- struct{}{}:
	default: // the test waits for the first arrival only
	}
	<-g.release
	return g
}

func (g *gate) finish() {
	if g != nil {
		g.inflight.Add(-1)
		g.done.Add(1)
	}
}

func cleanupGate(name string) {
	if v, ok := gates.Load(name); ok {
		g := v.(*gate)
		if g.inflight.Load() > 0 {
			g.early.Store(true)
		}
		g.cleaned.Store(true)
	}
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

// arrived waits until a call reached the gate.
func (g *gate) arrived(t *testing.T) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("no call reached the gate within 5s")
	}
}

// fixture is a host on its own nats-server, with a client connection.
type fixture struct {
	ns *server.Server
	nc *nats.Conn
	js jetstream.JetStream
	h  *host.Host
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{ns: testenv.NATSServer(t)}
	var err error
	if f.nc, err = nats.Connect(f.ns.ClientURL()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.nc.Close)
	if f.js, err = jetstream.New(f.nc); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := host.EnsureInfra(ctx, f.js, host.Replication{}); err != nil {
		t.Fatal(err)
	}
	f.h, err = host.New(host.Config{ID: "test-host", NC: f.nc, JS: f.js,
		Logger: slog.New(slog.DiscardHandler), DrainTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := f.h.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return f
}

// manifest parses one YAML manifest, normalized and validated.
func manifest(t *testing.T, yaml string) manifests.Function {
	t.Helper()
	fns, err := manifests.Parse("test.yaml", []byte(yaml))
	if err != nil || len(fns) != 1 {
		t.Fatalf("manifest: %v (%d documents)", err, len(fns))
	}
	return fns[0]
}

// tagFn is a request-triggered tagger on fn.test.tag.
func tagFn(t *testing.T, replicas int, config string) manifests.Function {
	return manifest(t, fmt.Sprintf(`apiVersion: surge/v1
kind: Function
metadata: {name: tag}
spec:
  handler: hosttest.tag
  trigger: {subject: fn.test.tag}
  replicas: %d
  timeout: 5s
  config: %s
`, replicas, config))
}

func (f *fixture) apply(t *testing.T, fn manifests.Function) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.h.Apply(ctx, fn); err != nil {
		t.Fatalf("apply %s: %v", fn.Metadata.Name, err)
	}
}

// instances are the server's subscriptions on subject in queue group
// queue, as "cid/sid": one per running request instance.
func (f *fixture) instances(t *testing.T, subject, queue string) []string {
	t.Helper()
	sz, err := f.ns.Subsz(&server.SubszOptions{Subscriptions: true, Test: subject, Limit: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range sz.Subs {
		if s.Queue == queue {
			out = append(out, fmt.Sprintf("%d/%s", s.Cid, s.Sid))
		}
	}
	slices.Sort(out)
	return out
}

func (f *fixture) tagInstances(t *testing.T) []string { return f.instances(t, "fn.test.tag", "tag") }

// call requests fn.test.tag and returns the answer, or the error's text.
func (f *fixture) call() string {
	m, err := f.nc.Request("fn.test.tag", nil, 5*time.Second)
	if err != nil {
		return "error: " + err.Error()
	}
	if e := runtime.ErrorFromHeaders(m.Header); e != nil {
		return "error: " + e.Msg
	}
	return string(m.Data)
}

func (f *fixture) status(name string) (wire.FunctionStatus, bool) {
	st, ok := f.h.Status().Functions[name]
	return st, ok
}

// wantAnswer waits for the answer of a call that was held in flight.
func wantAnswer(t *testing.T, answer <-chan string, want string) {
	t.Helper()
	select {
	case got := <-answer:
		if got != want {
			t.Errorf("in-flight call = %q, want %q", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("in-flight call not answered within 5s of its release")
	}
}

// overlap counts the elements of a that are also in b.
func overlap(a, b []string) int {
	n := 0
	for _, x := range a {
		if slices.Contains(b, x) {
			n++
		}
	}
	return n
}

// TestApply is the Caddy-style reload: a new function starts, an unchanged
// manifest is a no-op, a changed one starts the new revision before the
// old one drains, and a revision that fails to start keeps the old one.
func TestApply(t *testing.T) {
	f := newFixture(t)
	v1 := tagFn(t, 2, `{tag: v1}`)

	f.apply(t, v1)
	first := f.tagInstances(t)
	if len(first) != 2 {
		t.Fatalf("after the first apply: %d instances subscribed, want 2", len(first))
	}
	if got := f.call(); got != "v1" {
		t.Fatalf("call = %q, want v1", got)
	}
	if st, ok := f.status("tag"); !ok || st.Revision != v1.Revision() || st.Instances != 2 {
		t.Fatalf("status = %+v %v", st, ok)
	}

	t.Run("unchanged is a no-op", func(t *testing.T) {
		f.apply(t, tagFn(t, 2, `{tag: v1}`))
		if got := f.tagInstances(t); !slices.Equal(got, first) {
			t.Fatalf("instances %v after an unchanged apply, want the same %v", got, first)
		}
	})

	var second []string
	t.Run("changed starts the new then drains the old", func(t *testing.T) {
		v2 := tagFn(t, 2, `{tag: v2}`)
		f.apply(t, v2)
		// The new revision subscribed before Apply returned.
		now := f.tagInstances(t)
		if n := len(now) - overlap(now, first); n != 2 {
			t.Fatalf("%d new instances when Apply returned, want 2", n)
		}
		testenv.Eventually(t, 5*time.Second, "old revision drained", func() bool {
			second = f.tagInstances(t)
			return len(second) == 2 && overlap(second, first) == 0
		})
		if got := f.call(); got != "v2" {
			t.Fatalf("call = %q, want v2", got)
		}
		if st, _ := f.status("tag"); st.Revision != v2.Revision() || st.Error != "" {
			t.Fatalf("status = %+v", st)
		}
	})

	t.Run("failed start keeps the old", func(t *testing.T) {
		bad := tagFn(t, 2, `{tag: v3, fail: true}`)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := f.h.Apply(ctx, bad)
		if err == nil || !strings.Contains(err.Error(), "provision failed on purpose") {
			t.Fatalf("apply of a failing revision = %v", err)
		}
		if got := f.tagInstances(t); !slices.Equal(got, second) {
			t.Fatalf("instances %v after a failed apply, want the old %v", got, second)
		}
		if got := f.call(); got != "v2" {
			t.Fatalf("call = %q, want the old revision's v2", got)
		}
		st, _ := f.status("tag")
		if st.Revision == bad.Revision() || !strings.Contains(st.Error, "provision failed on purpose") {
			t.Fatalf("status = %+v, want the old revision and the error", st)
		}
	})
}

// TestReplaceDrainsInFlight: a call in flight on the old revision is
// answered by it after the new revision took over.
func TestReplaceDrainsInFlight(t *testing.T) {
	f := newFixture(t)
	g, gateName := newGate(t, "call")
	f.apply(t, tagFn(t, 1, fmt.Sprintf(`{tag: v1, gate: %q}`, gateName)))
	old := f.tagInstances(t)
	inflight := make(chan string, 1)
	go func() { inflight <- f.call() }()
	g.arrived(t)

	f.apply(t, tagFn(t, 1, `{tag: v2}`))
	testenv.Eventually(t, 5*time.Second, "old subscription gone", func() bool {
		return overlap(f.tagInstances(t), old) == 0
	})
	if got := f.call(); got != "v2" {
		t.Errorf("call to the new revision = %q, want v2", got)
	}
	select {
	case got := <-inflight:
		t.Fatalf("in-flight call answered %q before its handler was released", got)
	default:
	}
	g.open()
	wantAnswer(t, inflight, "v1")
	testenv.Eventually(t, 5*time.Second, "old revision cleaned up", g.cleaned.Load)
	if g.early.Load() {
		t.Error("the old revision cleaned up with a call in flight")
	}
}

// TestReplaceUnderTraffic: calls made while revision after revision
// replaces the last all find an instance.
func TestReplaceUnderTraffic(t *testing.T) {
	f := newFixture(t)
	f.apply(t, tagFn(t, 2, `{tag: v0}`))
	stop := make(chan struct{})
	var traffic sync.WaitGroup
	var calls, failures atomic.Int32
	for range 4 {
		traffic.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				calls.Add(1)
				if got := f.call(); !strings.HasPrefix(got, "v") {
					failures.Add(1)
					t.Errorf("call during a replacement: %s", got)
				}
			}
		})
	}
	for i := 1; i <= 5; i++ {
		f.apply(t, tagFn(t, 2, fmt.Sprintf(`{tag: v%d}`, i)))
	}
	testenv.Eventually(t, 5*time.Second, "only v5 answers", func() bool {
		return len(f.tagInstances(t)) == 2 && f.call() == "v5"
	})
	close(stop)
	traffic.Wait()
	if calls.Load() < 10 || failures.Load() > 0 {
		t.Errorf("%d of %d calls failed", failures.Load(), calls.Load())
	}
}

// TestScale: a replicas change is a new revision with that many instances.
func TestScale(t *testing.T) {
	f := newFixture(t)
	for _, replicas := range []int{1, 3, 1, 0, 2} {
		f.apply(t, tagFn(t, replicas, `{tag: x}`))
		testenv.Eventually(t, 5*time.Second, fmt.Sprintf("%d instances", replicas), func() bool {
			return len(f.tagInstances(t)) == replicas
		})
		if st, _ := f.status("tag"); st.Instances != replicas {
			t.Errorf("replicas %d: status reports %d instances", replicas, st.Instances)
		}
	}
	if got := f.call(); got != "x" {
		t.Errorf("call = %q", got)
	}
}

// TestRemove: the function's instances go and nothing answers its subject.
func TestRemove(t *testing.T) {
	f := newFixture(t)
	f.apply(t, tagFn(t, 2, `{tag: x}`))
	f.h.Remove(context.Background(), "tag")
	testenv.Eventually(t, 5*time.Second, "instances gone", func() bool { return len(f.tagInstances(t)) == 0 })
	if _, err := f.nc.Request("fn.test.tag", nil, 2*time.Second); !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("call after Remove: %v, want no responders", err)
	}
	if _, ok := f.status("tag"); ok {
		t.Error("status still lists the removed function")
	}
	f.h.Remove(context.Background(), "tag") // removing again is harmless
}

// TestApplyAfterStop: a registry event that arrives after Stop took the
// deployments starts nothing (nobody would drain it).
func TestApplyAfterStop(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.h.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.h.Apply(ctx, tagFn(t, 1, `{tag: late}`)); !errors.Is(err, host.ErrStopped) {
		t.Fatalf("Apply after Stop = %v, want ErrStopped", err)
	}
	if got := f.tagInstances(t); len(got) != 0 {
		t.Errorf("Apply after Stop subscribed %v", got)
	}
}

// batchFn is a stream-triggered batcher on TEST_IN / test.in.
func batchFn(t *testing.T, config string) manifests.Function {
	return batchFnWith(t, "{size: 10, wait: 0s}", config)
}

// batchFnWith is batchFn with its spec.batch (and any spec lines after it).
func batchFnWith(t *testing.T, batch, config string) manifests.Function {
	return manifest(t, `apiVersion: surge/v1
kind: Function
metadata: {name: batch}
spec:
  handler: hosttest.batch
  trigger: {stream: TEST_IN, filter: test.in}
  timeout: 5s
  batch: `+batch+`
  config: `+config+"\n")
}

// TestStopDrainsCall: Stop returns only after the call in flight was
// answered.
func TestStopDrainsCall(t *testing.T) {
	f := newFixture(t)
	g, gateName := newGate(t, "call")
	f.apply(t, tagFn(t, 1, fmt.Sprintf(`{tag: v1, gate: %q}`, gateName)))
	answer := make(chan string, 1)
	go func() { answer <- f.call() }()
	g.arrived(t)
	stopHeld(t, f, g, func() bool { return len(f.tagInstances(t)) == 0 })
	wantAnswer(t, answer, "v1")
}

// TestStopDrainsBatch: Stop returns only after the stream batch in flight
// finished, and its message is acked.
func TestStopDrainsBatch(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	g, gateName := newGate(t, "batch")
	f.apply(t, batchFn(t, fmt.Sprintf(`{gate: %q}`, gateName)))
	if _, err := f.js.Publish(ctx, "test.in", []byte("m1")); err != nil {
		t.Fatal(err)
	}
	g.arrived(t)
	stopHeld(t, f, g, func() bool { return true })
	cons, err := f.js.Consumer(ctx, "TEST_IN", "batch")
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "batch acked", func() bool {
		ci, err := cons.Info(ctx)
		return err == nil && ci.AckFloor.Stream == 1 && ci.NumAckPending == 0 && ci.NumPending == 0
	})
}

// stopHeld stops the host while g holds work in flight: once draining
// (started) shows, Stop must still wait; after g opens, it must return with
// the work finished and the instance cleaned up.
func stopHeld(t *testing.T, f *fixture, g *gate, started func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- f.h.Stop(ctx) }()
	testenv.Eventually(t, 5*time.Second, "drain started", started)
	// Nothing can show that Stop is not going to return, so give it a
	// moment to do so wrongly.
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) with work in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	g.open()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return within 10s of the release")
	}
	if g.done.Load() != 1 || !g.cleaned.Load() || g.early.Load() {
		t.Fatalf("when Stop returned: %d finished, cleaned up %v (early %v); want 1, true (false)",
			g.done.Load(), g.cleaned.Load(), g.early.Load())
	}
	if n := len(f.h.Status().Functions); n != 0 {
		t.Errorf("status lists %d functions after Stop", n)
	}
}

// TestStreams: the trigger's stream and the spec.publishes streams exist
// before Provision, and an existing stream gets the subjects it lacks.
func TestStreams(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.js.CreateStream(ctx, jetstream.StreamConfig{Name: "TEST_OUT", Subjects: []string{"out.a"}}); err != nil {
		t.Fatal(err)
	}
	f.apply(t, manifest(t, `apiVersion: surge/v1
kind: Function
metadata: {name: pub}
spec:
  handler: hosttest.tag
  trigger: {subject: fn.test.pub}
  publishes:
    - {stream: TEST_NEW, subjects: [new.x, new.y.>], maxAge: 1h}
    - {stream: TEST_OUT, subjects: [out.a, out.b]}
  config: {tag: pub, stream: TEST_NEW}
`))
	for name, want := range map[string][]string{"TEST_NEW": {"new.x", "new.y.>"}, "TEST_OUT": {"out.a", "out.b"}} {
		s, err := f.js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		if got := s.CachedInfo().Config.Subjects; !slices.Equal(got, want) {
			t.Errorf("stream %s subjects = %v, want %v", name, got, want)
		}
	}
	if s, _ := f.js.Stream(ctx, "TEST_NEW"); s.CachedInfo().Config.MaxAge != time.Hour {
		t.Errorf("TEST_NEW max age = %s, want the manifest's 1h", s.CachedInfo().Config.MaxAge)
	}

	// A stream trigger's stream is made at Apply, and its messages are
	// handled and acked.
	f.apply(t, batchFn(t, `{}`))
	for i := range 3 {
		if _, err := f.js.Publish(ctx, "test.in", []byte{byte('a' + i)}); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := f.js.Consumer(ctx, "TEST_IN", "batch")
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "3 messages acked", func() bool {
		ci, err := cons.Info(ctx)
		return err == nil && ci.AckFloor.Stream == 3 && ci.NumAckPending == 0
	})
}

// TestStreamLoopOutlivesItsIterator: when the server ends a pull loop's
// iterator (here: its consumer deleted, then created again as it was, as a
// redeploy or an operator would), the loop pulls again instead of leaving
// the replica idle.
func TestStreamLoopOutlivesItsIterator(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.apply(t, batchFn(t, `{}`))
	acked := func(seq uint64) func() bool {
		return func() bool {
			cons, err := f.js.Consumer(ctx, "TEST_IN", "batch")
			if err != nil {
				return false
			}
			ci, err := cons.Info(ctx)
			return err == nil && ci.AckFloor.Stream == seq && ci.NumAckPending == 0 && ci.NumPending == 0
		}
	}
	if _, err := f.js.Publish(ctx, "test.in", []byte("m1")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "m1 acked", acked(1))
	cons, err := f.js.Consumer(ctx, "TEST_IN", "batch")
	if err != nil {
		t.Fatal(err)
	}
	cfg := cons.CachedInfo().Config
	if err := f.js.DeleteConsumer(ctx, "TEST_IN", "batch"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the loop's iterator sees the deletion
	if _, err := f.js.CreateConsumer(ctx, "TEST_IN", cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := f.js.Publish(ctx, "test.in", []byte("m2")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "m2 handled and acked after the consumer came back", acked(2))
}

// TestStreamPullBoundedInBytes: with spec.batch.maxBytes, a replica's pull
// buffer holds about the larger of two batches of bytes and one message of
// the server's largest size, not its thousands of messages; and a message
// of that largest size still gets through.
func TestStreamPullBoundedInBytes(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	g, gateName := newGate(t, "batch")
	f.apply(t, batchFnWith(t, "{size: 10, wait: 0s, maxBytes: 1024}\n  concurrency: 1000", fmt.Sprintf(`{gate: %q}`, gateName)))
	maxPayload := int(f.nc.MaxPayload())
	const n = 100
	body := make([]byte, maxPayload/10) // ten of them fill the byte bound
	if _, err := f.js.Publish(ctx, "test.in", body); err != nil {
		t.Fatal(err)
	}
	g.arrived(t) // the first batch is held: what comes next is buffered
	for range n - 1 {
		if _, err := f.js.PublishAsync("test.in", body); err != nil {
			t.Fatal(err)
		}
	}
	big := make([]byte, maxPayload-1024) // headers and subject need the rest
	if _, err := f.js.PublishAsync("test.in", big); err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.js.PublishAsyncComplete():
	case <-time.After(10 * time.Second):
		t.Fatal("publishes not acked within 10s")
	}
	cons, err := f.js.Consumer(ctx, "TEST_IN", "batch")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // room for the pulls to overfill, if they would
	ci, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Delivered and unacked: the held message and at most a byte bound
	// (1 MiB: ten bodies) more, where a message bound alone would have
	// taken all of them (concurrency 1000).
	if ci.NumAckPending > 1+10+1 {
		t.Errorf("%d messages of %d bytes delivered to the held replica, want at most 12: the pull buffer is not bounded in bytes",
			ci.NumAckPending, len(body))
	}
	g.open()
	testenv.Eventually(t, 10*time.Second, "every message, the largest too, acked", func() bool {
		ci, err := cons.Info(ctx)
		return err == nil && ci.AckFloor.Stream == n+1 && ci.NumAckPending == 0 && ci.NumPending == 0
	})
}
