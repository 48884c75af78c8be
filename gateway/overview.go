package gateway

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/wire"
)

// Bounds of GET /admin/overview, which the console polls every second or
// two: it is computed at most once per overviewTTL, however many consoles
// are open, and stays small.
const (
	overviewTTL            = time.Second
	overviewDeadLetters    = 20 // listed per function (the total is exact)
	overviewHistory        = 50 // deploy history entries, newest first
	overviewMinRateWindow  = time.Second
	overviewStaleHeartbeat = 6 * time.Second // three missed beats
)

// Overview is the answer of GET /admin/overview, what the console shows.
type Overview struct {
	At          time.Time             `json:"at"`
	Functions   []FunctionFigures     `json:"functions"`
	Consumers   []ConsumerFigures     `json:"consumers"`
	DeadLetters []FunctionDeadLetters `json:"dead_letters"`
	Hosts       []HostFigures         `json:"hosts"`
	History     []DeployRevision      `json:"history"`
	// Problems are the parts that could not be read (the answer is
	// otherwise complete).
	Problems []string `json:"problems,omitempty"`
}

// FunctionFigures is one deployed function with the figures of every
// live runtime host together: rates are summed over the hosts, P99Ms is
// the highest of theirs (each host's over its last heartbeat window).
type FunctionFigures struct {
	Name         string   `json:"name"`
	Handler      string   `json:"handler"`
	Trigger      string   `json:"trigger"`
	Route        string   `json:"route,omitempty"`
	Revision     string   `json:"revision"`
	Instances    int      `json:"instances"`
	Hosts        int      `json:"hosts"`
	CallsPerSec  float64  `json:"calls_per_sec"`
	ErrorsPerSec float64  `json:"errors_per_sec"`
	Calls        uint64   `json:"calls"`
	Errors       uint64   `json:"errors"`
	P99Ms        float64  `json:"p99_ms"`
	HostErrors   []string `json:"host_errors,omitempty"`
	// Autoscale is set for a function with spec.autoscale.
	Autoscale *AutoscaleInfo `json:"autoscale,omitempty"`
}

// ConsumerFigures is one durable consumer of a stream function, or of the
// async calls of a request function (stream CALLS, durable call-<name>).
type ConsumerFigures struct {
	Stream      string `json:"stream"`
	Durable     string `json:"durable"`
	Backlog     uint64 `json:"backlog"`
	AckPending  int    `json:"ack_pending"`
	Redelivered int    `json:"redelivered"`
	Waiting     int    `json:"waiting"`
}

// FunctionDeadLetters is a function's dead letters: the oldest
// overviewDeadLetters of them, and how many there are.
type FunctionDeadLetters struct {
	Function    string       `json:"function"`
	Total       uint64       `json:"total"`
	DeadLetters []DeadLetter `json:"dead_letters"`
}

// HostFigures is one runtime host's last heartbeat.
type HostFigures struct {
	Host         string    `json:"host"`
	At           time.Time `json:"at"`
	HeartbeatAge float64   `json:"heartbeat_age_sec"`
	MemoryBytes  uint64    `json:"memory_bytes"`
	Goroutines   int       `json:"goroutines"`
	Functions    int       `json:"functions"`
	Instances    int       `json:"instances"`
}

// DeployRevision is one deploy (or removal) of a function.
type DeployRevision struct {
	Function string    `json:"function"`
	Revision string    `json:"revision,omitempty"`
	Handler  string    `json:"handler,omitempty"`
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	Removed  bool      `json:"removed,omitempty"`
}

// deployHistory is the registry's view the overview needs (*manifests.Registry).
type deployHistory interface {
	List(ctx context.Context) ([]manifests.Deployed, error)
	History(ctx context.Context, name string) ([]manifests.Revision, error)
}

// streamOpener opens a stream to read its consumers or dead letters
// (jetstream.JetStream).
type streamOpener interface {
	Stream(ctx context.Context, name string) (jetstream.Stream, error)
}

// overviewDeps is what newOverviewHandler reads.
type overviewDeps struct {
	reg     deployHistory
	streams streamOpener
	hosts   func(ctx context.Context) ([]wire.HostStatus, error)
	now     func() time.Time
}

// newOverviewHandler serves GET /admin/overview.
func newOverviewHandler(deps overviewDeps) echo.HandlerFunc {
	o := &overviewer{deps: deps, rates: rates{hosts: map[string]*hostSamples{}}}
	return func(c echo.Context) error {
		ov, err := o.get(c.Request().Context())
		if err != nil {
			return err
		}
		c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
		return c.JSON(http.StatusOK, ov)
	}
}

// overviewer computes the overview, at most once per overviewTTL.
type overviewer struct {
	deps overviewDeps

	mu    sync.Mutex // one computation at a time; guards last and rates
	last  *Overview
	rates rates
}

func (o *overviewer) get(ctx context.Context) (*Overview, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.deps.now()
	if o.last != nil && now.Sub(o.last.At) < overviewTTL {
		return o.last, nil
	}
	ov, err := o.compute(ctx, now)
	if err != nil {
		return nil, err
	}
	o.last = ov
	return ov, nil
}

func (o *overviewer) compute(ctx context.Context, now time.Time) (*Overview, error) {
	ov := &Overview{At: now, Functions: []FunctionFigures{}, Consumers: []ConsumerFigures{},
		DeadLetters: []FunctionDeadLetters{}, Hosts: []HostFigures{}, History: []DeployRevision{}}
	deployed, err := o.deps.reg.List(ctx)
	if err != nil {
		return nil, &runtime.Error{Status: http.StatusServiceUnavailable, Code: "registry_unavailable", Msg: "cannot read deployed functions", Err: err}
	}
	hosts, err := o.deps.hosts(ctx)
	if err != nil {
		ov.Problems = append(ov.Problems, "runtime hosts: "+err.Error())
	}
	o.rates.update(hosts)
	for _, h := range hosts {
		hf := HostFigures{Host: h.Host, At: h.At, HeartbeatAge: max(0, now.Sub(h.At).Seconds()), MemoryBytes: h.MemoryBytes,
			Goroutines: h.Goroutines, Functions: len(h.Functions)}
		for _, fs := range h.Functions {
			hf.Instances += fs.Instances
		}
		ov.Hosts = append(ov.Hosts, hf)
	}
	streams := []string{wire.StreamCalls}
	for _, d := range deployed {
		ov.Functions = append(ov.Functions, o.figures(d, hosts, now))
		if s := d.Function.Spec.Trigger.Stream; s != "" && !slices.Contains(streams, s) {
			streams = append(streams, s)
		}
		revs, err := o.deps.reg.History(ctx, d.Function.Metadata.Name)
		if err != nil {
			ov.Problems = append(ov.Problems, "history of "+d.Function.Metadata.Name+": "+err.Error())
		}
		for _, r := range revs {
			dr := DeployRevision{Function: d.Function.Metadata.Name, Seq: r.Seq, Time: r.Time, Removed: r.Removed}
			if !r.Removed {
				dr.Revision, dr.Handler = r.Function.Revision(), r.Function.Spec.Handler
			}
			ov.History = append(ov.History, dr)
		}
	}
	slices.SortFunc(ov.History, func(a, b DeployRevision) int { return cmp.Compare(b.Seq, a.Seq) })
	ov.History = ov.History[:min(len(ov.History), overviewHistory)]
	for _, s := range streams {
		cs, err := consumers(ctx, o.deps.streams, s)
		if err != nil {
			ov.Problems = append(ov.Problems, "consumers of "+s+": "+err.Error())
		}
		ov.Consumers = append(ov.Consumers, cs...)
	}
	dl, err := deadLetters(ctx, o.deps.streams)
	if err != nil {
		ov.Problems = append(ov.Problems, "dead letters: "+err.Error())
	}
	ov.DeadLetters = append(ov.DeadLetters, dl...)
	return ov, nil
}

// overviewPayloadBytes is how much of a dead letter's payload the
// overview carries; GET /admin/dlq has the whole.
const overviewPayloadBytes = 2048

// figures is d's row: what GET /admin/functions says of it (instances
// of its deployed revision, host errors), plus the calls of every host and
// the rates and p99 of those whose heartbeat is fresh.
func (o *overviewer) figures(d manifests.Deployed, hosts []wire.HostStatus, now time.Time) FunctionFigures {
	fi := info(d, hosts)
	f := FunctionFigures{Name: fi.Name, Handler: fi.Handler, Revision: fi.Revision, Route: fi.Route, Trigger: fi.Subject,
		Instances: fi.Instances, Hosts: fi.Hosts, HostErrors: fi.Errors, Autoscale: fi.Autoscale}
	if fi.Stream != "" {
		f.Trigger = "stream " + fi.Stream
		if fi.Filter != "" {
			f.Trigger += " (" + fi.Filter + ")"
		}
	}
	for _, h := range hosts {
		st, ok := h.Functions[f.Name]
		if !ok {
			continue
		}
		f.Calls += st.Calls
		f.Errors += st.Errors
		if now.Sub(h.At) > overviewStaleHeartbeat {
			continue
		}
		f.P99Ms = max(f.P99Ms, st.P99Ms)
		calls, errs := o.rates.of(h.Host, f.Name)
		f.CallsPerSec += calls
		f.ErrorsPerSec += errs
	}
	return f
}

// rates keeps two heartbeats of every host, at least
// overviewMinRateWindow apart, to turn their counters into rates.
type rates struct {
	hosts map[string]*hostSamples
}

type hostSamples struct {
	prev, cur *wire.HostStatus
}

// update takes the hosts' latest heartbeats; hosts gone are forgotten.
func (r *rates) update(hosts []wire.HostStatus) {
	seen := make(map[string]bool, len(hosts))
	for i := range hosts {
		h := &hosts[i]
		seen[h.Host] = true
		s := r.hosts[h.Host]
		switch {
		case s == nil:
			r.hosts[h.Host] = &hostSamples{cur: h}
		case h.At.Equal(s.cur.At):
		case s.prev == nil || h.At.Sub(s.cur.At) >= overviewMinRateWindow:
			// An early heartbeat (a host sends one at once after a
			// deploy) replaces cur but keeps prev, so the window stays
			// long enough for a steady rate.
			s.prev, s.cur = s.cur, h
		default:
			s.cur = h
		}
	}
	for name := range r.hosts {
		if !seen[name] {
			delete(r.hosts, name)
		}
	}
}

// of is function fn's calls and errors per second on host, 0 until the
// host has sent two heartbeats (or when its counters restarted).
func (r *rates) of(host, fn string) (calls, errs float64) {
	s := r.hosts[host]
	if s == nil || s.prev == nil {
		return 0, 0
	}
	dt := s.cur.At.Sub(s.prev.At).Seconds()
	a, b := s.prev.Functions[fn], s.cur.Functions[fn]
	if dt <= 0 || b.Calls < a.Calls || b.Errors < a.Errors {
		return 0, 0
	}
	return float64(b.Calls-a.Calls) / dt, float64(b.Errors-a.Errors) / dt
}

// consumers lists the durable consumers of stream with their backlog.
func consumers(ctx context.Context, js streamOpener, stream string) ([]ConsumerFigures, error) {
	st, err := js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil // not created yet: no consumers
	}
	if err != nil {
		return nil, err
	}
	var out []ConsumerFigures
	l := st.ListConsumers(ctx)
	for ci := range l.Info() {
		if ci.Config.Durable == "" {
			continue // an ephemeral one: a `nats` CLI, a test
		}
		out = append(out, ConsumerFigures{Stream: stream, Durable: ci.Name, Backlog: ci.NumPending,
			AckPending: ci.NumAckPending, Redelivered: ci.NumRedelivered, Waiting: ci.NumWaiting})
	}
	if err := l.Err(); err != nil {
		return out, err
	}
	slices.SortFunc(out, func(a, b ConsumerFigures) int { return strings.Compare(a.Durable, b.Durable) })
	return out, nil
}

// deadLetters is every function's dead letters, removed functions'
// included, by function name.
func deadLetters(ctx context.Context, js streamOpener) ([]FunctionDeadLetters, error) {
	st, err := js.Stream(ctx, wire.StreamDLQ)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(dlqSubject("*")))
	if err != nil {
		return nil, err
	}
	var out []FunctionDeadLetters
	for subj, n := range info.State.Subjects {
		if n == 0 {
			continue
		}
		fd := FunctionDeadLetters{Function: strings.TrimPrefix(subj, dlqSubject("")), Total: n, DeadLetters: []DeadLetter{}}
		for seq := uint64(1); len(fd.DeadLetters) < overviewDeadLetters; {
			m, err := nextDeadLetter(ctx, st, fd.Function, seq)
			if err != nil {
				return out, err
			}
			if m == nil {
				break
			}
			// The page shows the start of a payload; a dead letter can be
			// megabytes, and the overview is polled every second or two.
			fd.DeadLetters = append(fd.DeadLetters, deadLetter(m).truncated(overviewPayloadBytes))
			seq = m.Sequence + 1
		}
		out = append(out, fd)
	}
	slices.SortFunc(out, func(a, b FunctionDeadLetters) int { return strings.Compare(a.Function, b.Function) })
	return out, nil
}
