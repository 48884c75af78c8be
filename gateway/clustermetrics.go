package gateway

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime/wire"
)

// The cluster figures are what NATS holds for every process at once (host
// heartbeats, dead letters, consumer backlogs), so any gateway reports them
// whole, however many runtime hosts there are. Every gateway reports the
// same values: aggregate them with max by (host) or max by (function).
const (
	// clusterTTL is how long a read of the DLQ stream and the consumers
	// serves scrapes: scrapes closer together cost JetStream nothing.
	clusterTTL = time.Second
	// clusterTimeout bounds one read, so a slow JetStream delays a scrape
	// by at most this much (the figures it could not read are left out).
	clusterTimeout = 2 * time.Second
	// hostForget is how long a host whose heartbeat expired without a
	// delete (it crashed or lost NATS) keeps being reported, its age
	// growing, before it is forgotten: long enough for an alert to fire
	// and be seen, short enough that replaced hosts do not pile up.
	hostForget = 10 * time.Minute
)

var (
	descHosts = prometheus.NewDesc("surge_hosts",
		"Runtime hosts whose heartbeat is in the surge_hosts bucket now (absent until this gateway has read it).", nil, nil)
	descHeartbeatAge = prometheus.NewDesc("surge_host_heartbeat_age_seconds",
		"Seconds since each runtime host's last heartbeat (one every 2s); a host that stopped without "+
			"deleting its heartbeat is reported for 10 minutes.", []string{"host"}, nil)
	descDLQ = prometheus.NewDesc("surge_dlq_messages",
		"Dead letters in the DLQ stream, by function (every deployed function, 0 when none).", []string{"function"}, nil)
	descBacklog = prometheus.NewDesc("surge_consumer_backlog_messages",
		"Stream messages not yet delivered to a function's durable consumer, as the NATS server counts them "+
			"(stream CALLS: async calls).", []string{"function", "stream"}, nil)
	descAckPending = prometheus.NewDesc("surge_consumer_ack_pending_messages",
		"Stream messages delivered to a function's durable consumer and not yet acknowledged.", []string{"function", "stream"}, nil)
)

// consumerRef names a function's durable consumer on a stream.
type consumerRef struct {
	function, stream, durable string
}

// clusterMetrics is a prometheus.Collector of the cluster figures. Host
// heartbeats come from a watch of the hosts bucket (no cost per scrape);
// the DLQ counts and consumer backlogs are read on scrape, at most once
// per clusterTTL, each read bounded by clusterTimeout.
type clusterMetrics struct {
	js  jetstream.JetStream
	fns func() []manifests.Function
	log *slog.Logger
	now func() time.Time

	readErrors *prometheus.CounterVec

	hmu   sync.Mutex
	beats map[string]time.Time // host -> time of its last heartbeat
	ttl   time.Duration        // the hosts bucket's: a heartbeat older is gone from it
	// synced is set once the watch delivered the bucket's contents: until
	// then the number of hosts is unknown, not 0.
	synced bool

	mu     sync.Mutex // one read at a time; guards what follows
	readAt time.Time
	cached []prometheus.Metric
}

func newClusterMetrics(js jetstream.JetStream, fns func() []manifests.Function, log *slog.Logger) *clusterMetrics {
	return &clusterMetrics{js: js, fns: fns, log: log, now: time.Now, beats: map[string]time.Time{},
		readErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "surge_cluster_read_errors_total",
			Help: "Reads of the cluster figures (source hosts, dlq, consumers) that failed; their figures were left out of that scrape.",
		}, []string{"source"}),
	}
}

// Describe implements prometheus.Collector.
func (c *clusterMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHosts, descHeartbeatAge, descDLQ, descBacklog, descAckPending} {
		ch <- d
	}
	c.readErrors.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *clusterMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c.heartbeats(c.now()) {
		ch <- m
	}
	for _, m := range c.read(c.now()) {
		ch <- m
	}
	c.readErrors.Collect(ch)
}

// heartbeats returns each host's heartbeat age and the number of live
// hosts, forgetting the hosts silent for longer than hostForget.
func (c *clusterMetrics) heartbeats(now time.Time) []prometheus.Metric {
	c.hmu.Lock()
	defer c.hmu.Unlock()
	out := make([]prometheus.Metric, 0, len(c.beats)+1)
	live := 0
	for h, at := range c.beats {
		age := now.Sub(at)
		if age > hostForget {
			delete(c.beats, h)
			continue
		}
		if age < c.ttl {
			live++
		}
		out = append(out, prometheus.MustNewConstMetric(descHeartbeatAge, prometheus.GaugeValue, max(age.Seconds(), 0), h))
	}
	if c.synced {
		out = append(out, prometheus.MustNewConstMetric(descHosts, prometheus.GaugeValue, float64(live)))
	}
	return out
}

// read returns the DLQ and consumer figures, read again if the last read
// is older than clusterTTL.
func (c *clusterMetrics) read(now time.Time) []prometheus.Metric {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.readAt.IsZero() && now.Sub(c.readAt) < clusterTTL {
		return c.cached
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	fns := c.fns()
	out := c.readDLQ(ctx, fns)
	out = append(out, c.readConsumers(ctx, fns)...)
	c.cached, c.readAt = out, now
	return out
}

func (c *clusterMetrics) failed(source string, err error) {
	c.readErrors.WithLabelValues(source).Inc()
	c.log.Warn("metrics: cluster figures not read", "source", source, "err", err)
}

// readDLQ counts dead letters by function with one stream info request.
func (c *clusterMetrics) readDLQ(ctx context.Context, fns []manifests.Function) []prometheus.Metric {
	st, err := c.js.Stream(ctx, wire.StreamDLQ)
	if err != nil {
		c.failed("dlq", err)
		return nil
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter("dlq.>"))
	if err != nil {
		c.failed("dlq", err)
		return nil
	}
	counts := map[string]uint64{}
	for _, fn := range fns {
		counts[fn.Metadata.Name] = 0
	}
	for subj, n := range info.State.Subjects {
		counts[strings.TrimPrefix(subj, "dlq.")] += n
	}
	out := make([]prometheus.Metric, 0, len(counts))
	for fn, n := range counts {
		out = append(out, prometheus.MustNewConstMetric(descDLQ, prometheus.GaugeValue, float64(n), fn))
	}
	return out
}

// readConsumers reads the backlog of every deployed function's durable
// consumers: the stream trigger's and the async calls', with one consumer
// list request per stream.
func (c *clusterMetrics) readConsumers(ctx context.Context, fns []manifests.Function) []prometheus.Metric {
	byStream := map[string][]consumerRef{}
	for i := range fns {
		fn := &fns[i]
		name := fn.Metadata.Name
		if s := fn.Spec.Trigger.Stream; s != "" {
			byStream[s] = append(byStream[s], consumerRef{function: name, stream: s, durable: fn.QueueName()})
		} else {
			byStream[wire.StreamCalls] = append(byStream[wire.StreamCalls],
				consumerRef{function: name, stream: wire.StreamCalls, durable: "call-" + name})
		}
	}
	var out []prometheus.Metric
	for stream, refs := range byStream {
		st, err := c.js.Stream(ctx, stream)
		if err != nil {
			c.failed("consumers", err)
			continue
		}
		infos := map[string]*jetstream.ConsumerInfo{}
		l := st.ListConsumers(ctx)
		for ci := range l.Info() {
			infos[ci.Name] = ci
		}
		if err := l.Err(); err != nil {
			c.failed("consumers", err)
			continue
		}
		for _, r := range refs {
			ci, ok := infos[r.durable]
			if !ok { // not started yet, or an external function's own
				continue
			}
			out = append(out,
				prometheus.MustNewConstMetric(descBacklog, prometheus.GaugeValue, float64(ci.NumPending), r.function, r.stream),
				prometheus.MustNewConstMetric(descAckPending, prometheus.GaugeValue, float64(ci.NumAckPending), r.function, r.stream))
		}
	}
	return out
}

// watchHosts follows the hosts bucket until ctx ends: a put is a
// heartbeat, a delete a host that stopped on purpose. A heartbeat that
// expires instead leaves no trace, which is what makes its age grow.
func (c *clusterMetrics) watchHosts(ctx context.Context) {
	for ctx.Err() == nil {
		if err := c.followHosts(ctx); err != nil && ctx.Err() == nil {
			c.failed("hosts", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (c *clusterMetrics) followHosts(ctx context.Context) error {
	kv, err := c.js.KeyValue(ctx, wire.BucketHosts)
	if err != nil {
		return err
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return err
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return err
	}
	c.hmu.Lock()
	c.ttl = st.TTL()
	c.hmu.Unlock()
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return nil
			}
			c.hmu.Lock()
			switch {
			case e == nil: // the initial values are all in
				c.synced = true
			case e.Operation() == jetstream.KeyValuePut:
				c.beats[e.Key()] = e.Created()
			default:
				delete(c.beats, e.Key())
			}
			c.hmu.Unlock()
		}
	}
}
