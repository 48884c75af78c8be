// Package host runs deployed functions on NATS: it watches the registry of
// deployed manifests and reconciles the way Caddy reloads its config (an
// unchanged manifest is a no-op; a changed one starts the new revision,
// then drains the old; a revision that fails to start leaves the old one
// serving). Request-triggered functions run as nats micro services in
// their queue group, stream-triggered ones as pull loops on a durable
// consumer that settle every message (ack, retry with backoff, or the DLQ).
// A host also creates the platform's own streams and buckets, the streams
// and buckets each manifest declares, tracks async calls, exports metrics
// and writes a heartbeat that `surge ls` reads.
//
// Functions themselves are written against package runtime; this package
// is the engine behind it.
package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/store"
	"github.com/surgefn/surge/runtime/wire"
)

// Config is what a host needs. NC, JS and Logger are required.
type Config struct {
	// ID names the host in `surge ls` and in micro metadata; default hostname-nuid.
	ID string
	NC *nats.Conn
	JS jetstream.JetStream
	// StreamNC and StreamJS, when set, carry everything of stream-triggered
	// functions and async calls: their pulls, acks, dead letters and the
	// NATS use of their handlers. A pull batch or a burst of acks then never
	// queues ahead of request-reply traffic on NC. Default: NC and JS.
	StreamNC *nats.Conn
	StreamJS jetstream.JetStream
	Store    store.Store
	// StoreIdentity names the data Store answers from; a host refuses to
	// run when a live host answers from other data and either store is
	// not shared (see claimStore). Nil: the host has no store.
	StoreIdentity *wire.StoreIdentity
	Logger        *slog.Logger
	Registry      prometheus.Registerer
	Clock         runtime.Clock
	// DrainTimeout bounds how long an old version may take to drain.
	DrainTimeout time.Duration
	// Replicas is how many replicas the streams and buckets the host
	// creates get (--replicas, resolved: 1 to MaxReplicas); 0 means 1.
	Replicas int
}

// Validate reports missing required settings.
func (c *Config) Validate() error {
	var errs []error
	if c.NC == nil {
		errs = append(errs, errors.New("host config: NC is required"))
	}
	if c.JS == nil {
		errs = append(errs, errors.New("host config: JS is required"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("host config: Logger is required"))
	}
	if err := ValidateReplicas(c.Replicas); err != nil {
		errs = append(errs, fmt.Errorf("host config: %w", err))
	}
	return errors.Join(errs...)
}

// Host runs deployed functions: it watches the functions bucket and
// reconciles, starting, replacing, scaling and draining instances.
type Host struct {
	cfg     Config
	metrics *metrics

	applyMu sync.Mutex // serializes reconciliation
	stopped bool       // under applyMu: Stop ran, Apply starts nothing
	mu      sync.Mutex // guards deps and failures
	deps    map[string]*deployment
	fails   map[string]string
	drains  sync.WaitGroup
	synced  chan struct{}
	beat    chan struct{} // asks the heartbeat to publish now
}

// New validates cfg and returns a host that runs nothing yet.
func New(cfg Config) (*Host, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ID == "" {
		hn, _ := os.Hostname()
		cfg.ID = hn + "-" + nuid.Next()[12:]
	}
	if cfg.Clock == nil {
		cfg.Clock = runtime.SystemClock{}
	}
	if cfg.StreamNC == nil || cfg.StreamJS == nil {
		cfg.StreamNC, cfg.StreamJS = cfg.NC, cfg.JS
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	return &Host{
		cfg:     cfg,
		metrics: newMetrics(cfg.Registry),
		deps:    map[string]*deployment{},
		fails:   map[string]string{},
		synced:  make(chan struct{}),
		beat:    make(chan struct{}, 1),
	}, nil
}

// replication is the host's Replicas, logged by the host.
func (h *Host) replication() Replication {
	return Replication{Replicas: h.cfg.Replicas, Logger: h.cfg.Logger}
}

// ID is the host's name.
func (h *Host) ID() string { return h.cfg.ID }

// Synced is closed once every function deployed at start has been applied.
func (h *Host) Synced() <-chan struct{} { return h.synced }

// Run watches the registry and reconciles until ctx ends, publishing a
// heartbeat with this host's instances every 2 seconds. It does not drain:
// call Stop for that.
func (h *Host) Run(ctx context.Context) error {
	if err := EnsureInfra(ctx, h.cfg.JS, h.replication()); err != nil {
		return err
	}
	if err := h.claimStore(ctx); err != nil {
		return err
	}
	reg, err := manifests.OpenRegistry(ctx, h.cfg.JS, h.cfg.Replicas)
	if err != nil {
		return err
	}
	go h.heartbeat(ctx)
	var once sync.Once
	return reg.Watch(ctx, func(ev manifests.Event) {
		switch {
		case ev.Synced:
			once.Do(func() { close(h.synced) })
		case ev.Function == nil:
			h.Remove(ctx, ev.Name)
		default:
			if err := h.Apply(ctx, *ev.Function); err != nil && !errors.Is(err, ErrStopped) {
				h.cfg.Logger.Error("deploy failed; previous version (if any) keeps serving",
					"function", ev.Name, "err", err)
			}
		}
	}, func(key string, err error) {
		h.cfg.Logger.Error("undecodable manifest in registry", "function", key, "err", err)
	})
}

// ErrStopped means the host was stopped: Apply starts nothing after Stop.
var ErrStopped = errors.New("host stopped")

// Apply starts fn or replaces the running version of it: unchanged is a
// no-op; otherwise the new version starts first and the old one drains
// after; if the new one fails to start the old one keeps serving.
func (h *Host) Apply(ctx context.Context, fn manifests.Function) error {
	h.applyMu.Lock()
	defer h.applyMu.Unlock()
	if h.stopped {
		// A registry event after Stop took the deployments: a version
		// started now would never be drained.
		return ErrStopped
	}
	name := fn.Metadata.Name
	rev := fn.Revision()
	h.mu.Lock()
	old := h.deps[name]
	h.mu.Unlock()
	if old != nil && old.revision == rev {
		return nil
	}
	fn.Spec.Replicas = startCount(&fn, old)
	d, err := h.start(ctx, fn, rev)
	h.mu.Lock()
	if err != nil {
		h.fails[name] = err.Error()
		h.mu.Unlock()
		h.changed()
		return err
	}
	delete(h.fails, name)
	h.deps[name] = d
	h.mu.Unlock()
	h.metrics.instances.WithLabelValues(name).Set(float64(d.instances()))
	if d.as == nil {
		h.metrics.desired.DeleteLabelValues(name)
	}
	h.cfg.Logger.Info("function started", "function", name, "revision", rev,
		"handler", fn.Spec.Handler, "instances", d.instances(), "replaced", old != nil)
	if old != nil {
		h.drainLater(old)
	}
	h.changed()
	return nil
}

// Remove drains and stops the function name, if it runs here.
func (h *Host) Remove(ctx context.Context, name string) {
	h.applyMu.Lock()
	defer h.applyMu.Unlock()
	h.mu.Lock()
	old := h.deps[name]
	delete(h.deps, name)
	delete(h.fails, name)
	h.mu.Unlock()
	if old == nil {
		return
	}
	h.metrics.instances.WithLabelValues(name).Set(0)
	h.metrics.desired.DeleteLabelValues(name)
	h.cfg.Logger.Info("function removed; draining", "function", name)
	h.drainLater(old)
	h.changed()
}

// changed makes the next heartbeat go out now, so `surge ls` sees a
// deploy at once.
func (h *Host) changed() {
	select {
	case h.beat <- struct{}{}:
	default:
	}
}

func (h *Host) drainLater(d *deployment) {
	h.drains.Add(1)
	go func() {
		defer h.drains.Done()
		ctx, cancel := context.WithTimeout(context.Background(), h.cfg.DrainTimeout)
		defer cancel()
		if err := d.stop(ctx); err != nil {
			h.cfg.Logger.Warn("drain incomplete", "function", d.fn.Metadata.Name, "revision", d.revision, "err", err)
		}
	}()
}

// Stop drains every function: request subscriptions stop, in-flight calls
// are answered, stream batches finish and are settled. It returns when all
// are done or ctx ends.
func (h *Host) Stop(ctx context.Context) error {
	h.applyMu.Lock()
	h.stopped = true
	h.mu.Lock()
	deps := make([]*deployment, 0, len(h.deps))
	for _, d := range h.deps {
		deps = append(deps, d)
	}
	h.deps = map[string]*deployment{}
	h.mu.Unlock()
	h.applyMu.Unlock()
	errs := make(chan error, len(deps))
	for _, d := range deps {
		go func() { errs <- d.stop(ctx) }()
	}
	var all []error
	for range deps {
		all = append(all, <-errs)
	}
	done := make(chan struct{})
	go func() { h.drains.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		all = append(all, fmt.Errorf("waiting for old versions to drain: %w", ctx.Err()))
	}
	return errors.Join(all...)
}

// Status reports what runs on this host.
func (h *Host) Status() wire.HostStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := wire.HostStatus{Host: h.cfg.ID, Functions: map[string]wire.FunctionStatus{}, At: time.Now().UTC(), Store: h.cfg.StoreIdentity}
	for name, d := range h.deps {
		fs := wire.FunctionStatus{Revision: d.revision, Instances: d.instances()}
		if d.as != nil {
			fs.Autoscale = d.as.status()
		}
		st.Functions[name] = fs
	}
	for name, e := range h.fails {
		fs := st.Functions[name]
		fs.Error = e
		st.Functions[name] = fs
	}
	return st
}

func (h *Host) heartbeat(ctx context.Context) {
	kv, err := h.cfg.JS.KeyValue(ctx, wire.BucketHosts)
	if err != nil {
		h.cfg.Logger.Warn("hosts bucket unavailable; surge ls will not count this host", "err", err)
		return
	}
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		st := h.Status()
		h.metrics.figures.fill(&st)
		b, _ := json.Marshal(st)
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, _ = kv.Put(pctx, h.cfg.ID, b)
		cancel()
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = kv.Delete(dctx, h.cfg.ID)
			cancel()
			return
		case <-t.C:
		case <-h.beat:
		}
	}
}

// ReadStatuses returns the last heartbeat of every live host, sorted by
// host; the admin API reports instances from them.
func ReadStatuses(ctx context.Context, js jetstream.JetStream) ([]wire.HostStatus, error) {
	kv, err := js.KeyValue(ctx, wire.BucketHosts)
	if err != nil {
		return nil, err
	}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var out []wire.HostStatus
	for k := range lister.Keys() {
		e, err := kv.Get(ctx, k)
		if err != nil {
			continue
		}
		var st wire.HostStatus
		if json.Unmarshal(e.Value(), &st) == nil {
			out = append(out, st)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out, nil
}
