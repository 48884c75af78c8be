package gateway_test

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/surgefn/surge/gateway"
	"github.com/surgefn/surge/internal/host"
	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime/wire"
)

// figures gathers the collector into "name{labels} value" lines, sorted.
func figures(t *testing.T, c prometheus.Collector, names ...string) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range fams {
		want := false
		for _, n := range names {
			want = want || f.GetName() == n
		}
		if !want {
			continue
		}
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			out = append(out, fmt.Sprintf("%s{%s} %g", f.GetName(), strings.Join(ls, ","), v))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// TestClusterMetricsHeartbeats follows the hosts bucket: a live host's age
// is the time since its last heartbeat; a host whose heartbeat stops keeps
// being reported, its age growing, until hostForget; a host that deletes
// its heartbeat (a clean stop) is gone at once.
func TestClusterMetricsHeartbeats(t *testing.T) {
	_, js := testenv.JetStream(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := host.EnsureInfra(ctx, js, host.Replication{Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, wire.BucketHosts)
	if err != nil {
		t.Fatal(err)
	}
	clock := testenv.NewClock(time.Now())
	c, watch := gateway.ClusterMetrics(js, func() []manifests.Function { return nil }, clock.Now)
	var wg sync.WaitGroup
	wg.Go(func() { watch(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	for _, h := range []string{"host-a", "host-b"} {
		if _, err := kv.Put(ctx, h, []byte(`{"host":"`+h+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 2*time.Second, "both hosts seen", func() bool {
		return strings.Contains(figures(t, c, "surge_hosts"), "surge_hosts{} 2")
	})
	clock.Add(time.Minute) // past the bucket's TTL: neither beat again
	got := figures(t, c, "surge_hosts", "surge_host_heartbeat_age_seconds")
	ages := regexp.MustCompile(`surge_host_heartbeat_age_seconds\{host="host-[ab]"\} (\S+)`).FindAllStringSubmatch(got, -1)
	for _, m := range ages {
		if v, err := strconv.ParseFloat(m[1], 64); err != nil || v < 59 || v > 62 {
			t.Errorf("after a minute without heartbeats: %s", m[0])
		}
	}
	if len(ages) != 2 || !strings.Contains(got, "surge_hosts{} 0") {
		t.Errorf("after a minute without heartbeats:\n%s\nwant both hosts' ages and no live host", got)
	}
	if err := kv.Delete(ctx, "host-b"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 2*time.Second, "host-b forgotten on its delete", func() bool {
		return !strings.Contains(figures(t, c, "surge_host_heartbeat_age_seconds"), "host-b")
	})
	clock.Add(10 * time.Minute)
	if got := figures(t, c, "surge_host_heartbeat_age_seconds"); got != "" {
		t.Errorf("a host silent for 11 minutes is still reported:\n%s", got)
	}
}

// TestClusterMetricsDLQAndBacklog counts dead letters by function (0 for a
// deployed function without any) and reads each stream function's
// consumer backlog from the server.
func TestClusterMetricsDLQAndBacklog(t *testing.T) {
	_, js := testenv.JetStream(t)
	ctx := context.Background()
	if err := host.EnsureInfra(ctx, js, host.Replication{Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	fns, err := manifests.Parse("t.yaml", []byte(`
apiVersion: surge/v1
kind: Function
metadata: {name: orders}
spec:
  handler: orders
  trigger: {stream: T_ORDERS, filter: t.orders}
---
apiVersion: surge/v1
kind: Function
metadata: {name: quiet}
spec:
  handler: echo
  trigger: {subject: fn.quiet}
`))
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T_ORDERS", Subjects: []string{"t.orders"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "orders", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := js.Publish(ctx, "t.orders", []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	for _, subj := range []string{"dlq.orders", "dlq.orders", "dlq.gone"} {
		if _, err := js.Publish(ctx, subj, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := gateway.ClusterMetrics(js, func() []manifests.Function { return fns }, time.Now)
	want := strings.Join([]string{
		`surge_consumer_ack_pending_messages{function="orders",stream="T_ORDERS"} 0`,
		`surge_consumer_backlog_messages{function="orders",stream="T_ORDERS"} 3`,
		`surge_dlq_messages{function="gone"} 1`,
		`surge_dlq_messages{function="orders"} 2`,
		`surge_dlq_messages{function="quiet"} 0`,
	}, "\n")
	if got := figures(t, c, "surge_dlq_messages", "surge_consumer_backlog_messages", "surge_consumer_ack_pending_messages"); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got := figures(t, c, "surge_cluster_read_errors_total"); got != "" {
		t.Errorf("read errors:\n%s", got)
	}
}
