package platform_test

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/surgefn/surge/gateway"
	"github.com/surgefn/surge/internal/testenv"
)

// instanceWatch is every GET /admin/functions/{name} row seen while it ran.
type instanceWatch struct {
	mu      sync.Mutex
	seen    []gateway.FunctionInfo
	stopped chan struct{}
	done    chan struct{}
}

// watchInstances polls GET /admin/functions/{name} every 100ms until the
// test ends.
func watchInstances(t *testing.T, env *testenv.Env, name string) *instanceWatch {
	w := &instanceWatch{stopped: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			r, err := env.TryDo(http.MethodGet, "/admin/functions/"+name, nil, "Authorization: Bearer "+testenv.Token)
			if err == nil && r.Status == http.StatusOK {
				var fi gateway.FunctionInfo
				r.JSON(t, &fi)
				w.mu.Lock()
				w.seen = append(w.seen, fi)
				w.mu.Unlock()
			}
			select {
			case <-w.stopped:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(w.stop)
	return w
}

func (w *instanceWatch) stop() {
	select {
	case <-w.stopped:
	default:
		close(w.stopped)
	}
	<-w.done
}

// last is the latest row seen.
func (w *instanceWatch) last() (gateway.FunctionInfo, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.seen) == 0 {
		return gateway.FunctionInfo{}, false
	}
	return w.seen[len(w.seen)-1], true
}

// peak is the most instances seen.
func (w *instanceWatch) peak() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, fi := range w.seen {
		n = max(n, fi.Instances)
	}
	return n
}

// scaleEvents reads surge_function_scale_events_total of function from
// /metrics, by direction.
func scaleEvents(t *testing.T, env *testenv.Env, function string) map[string]int {
	t.Helper()
	r := env.Do(t, http.MethodGet, "/metrics", nil)
	out := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "surge_function_scale_events_total{") || !strings.Contains(line, `function="`+function+`"`) {
			continue
		}
		for _, dir := range []string{"up", "down"} {
			if strings.Contains(line, `direction="`+dir+`"`) {
				f := strings.Fields(line)
				v, err := strconv.ParseFloat(f[len(f)-1], 64)
				if err != nil {
					t.Fatalf("metric line %q: %v", line, err)
				}
				out[dir] = int(v)
			}
		}
	}
	return out
}

// TestAutoscaleStreamBacklog: a slow stream function (100ms a message, one
// at a time per instance) with autoscale min 1, max 4 scales up under a
// backlog, handles every message exactly once, and after the backlog
// drained goes back to 1 once the cool-down passed, in a bounded number of
// changes.
func TestAutoscaleStreamBacklog(t *testing.T) {
	env := testenv.Start(t, nil)
	const name, total = "scaler", 120
	env.Deploy(t, `
apiVersion: surge/v1
kind: Function
metadata: {name: scaler}
spec:
  handler: test.record
  trigger: {stream: TEST_SCALER, filter: test.scaler}
  concurrency: 1
  timeout: 5s
  batch: {size: 1, wait: 0s}
  autoscale: {min: 1, max: 4, targetBacklog: 10, cooldown: 2s}
  config: {batchDelay: 100ms}
`)
	w := watchInstances(t, env, name)
	testenv.Eventually(t, 5*time.Second, "one instance before the backlog", func() bool {
		fi, ok := w.last()
		return ok && fi.Instances == 1 && fi.Autoscale != nil && fi.Autoscale.Min == 1 && fi.Autoscale.Max == 4
	})
	msgs := make([]*nats.Msg, total)
	for i := range msgs {
		msgs[i] = &nats.Msg{Subject: "test.scaler", Data: []byte(strconv.Itoa(i))}
	}
	start := time.Now()
	testenv.PublishAsync(t, env.JS, msgs)

	// One instance would take 12s; the autoscaler adds instances within
	// about two samples.
	testenv.Eventually(t, 8*time.Second, "more than one instance under the backlog", func() bool {
		fi, ok := w.last()
		return ok && fi.Instances > 1 && fi.Autoscale.Desired > 1
	})
	t.Logf("scaled up after %s", time.Since(start).Round(time.Millisecond))
	// The console's overview shows the same (API.md section 8).
	var ov struct {
		Functions []struct {
			Name      string `json:"name"`
			Autoscale *struct {
				Min, Max, Desired int
			} `json:"autoscale"`
		} `json:"functions"`
	}
	env.Do(t, "GET", "/admin/overview", nil, "Authorization: Bearer "+testenv.Token).JSON(t, &ov)
	shown := false
	for _, f := range ov.Functions {
		shown = shown || f.Name == name && f.Autoscale != nil && f.Autoscale.Max == 4 && f.Autoscale.Desired >= 1
	}
	if !shown {
		t.Errorf("GET /admin/overview does not show %s's autoscaling: %+v", name, ov.Functions)
	}
	rec := recorderFor(name)
	testenv.Eventually(t, 15*time.Second, "every message handled", func() bool { return len(rec.deliveries()) >= total })
	t.Logf("drained after %s, peak %d instances", time.Since(start).Round(time.Millisecond), w.peak())
	testenv.Eventually(t, 10*time.Second, "back to one instance after the cool-down", func() bool {
		fi, ok := w.last()
		return ok && fi.Instances == 1 && fi.Autoscale.Desired == 1
	})
	t.Logf("back to 1 after %s", time.Since(start).Round(time.Millisecond))

	// Exactly once: every sequence once, at its first delivery, and the
	// consumer has nothing pending or unacked.
	rec.wantEachOnce(t, total)
	ctx := context.Background()
	cons, err := env.JS.Consumer(ctx, "TEST_SCALER", name)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "all acked", func() bool {
		ci, err := cons.Info(ctx)
		return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0 && ci.AckFloor.Stream == total
	})

	// No flapping: up at most twice (the first step may stop short of the
	// peak), down at most twice (to what the cool-down saw, then to 1).
	ev := scaleEvents(t, env, name)
	if ev["up"] < 1 || ev["up"] > 2 || ev["down"] < 1 || ev["down"] > 2 {
		t.Errorf("scale events = %v, want 1 or 2 up and 1 or 2 down", ev)
	}
	st, ok := env.P.Host().Status().Functions[name]
	if !ok || st.Autoscale == nil || st.Autoscale.Min != 1 || st.Autoscale.Max != 4 || st.Autoscale.Desired != 1 {
		t.Errorf("heartbeat = %+v, autoscale %+v; want min 1, max 4, desired 1", st, st.Autoscale)
	}
	if m := env.Do(t, http.MethodGet, "/metrics", nil); !bytes.Contains(m.Body, []byte(`surge_function_replicas_desired{function="scaler"} 1`)) {
		t.Errorf("metrics lack surge_function_replicas_desired 1 for %s", name)
	}
}

// TestAutoscaleRequestInFlight: a request function (echo, 200ms a call)
// with autoscale min 1, max 3, targetInFlight 2 gets more instances while
// eight callers keep it busy, answers every call, and goes back to one
// instance once they stopped and the cool-down passed.
func TestAutoscaleRequestInFlight(t *testing.T) {
	env := testenv.Start(t, nil)
	const name = "echo-scaler"
	env.Deploy(t, `
apiVersion: surge/v1
kind: Function
metadata: {name: echo-scaler}
spec:
  handler: echo
  trigger: {subject: fn.echo.scaler}
  http: {method: POST, path: /v1/echo-scaler}
  concurrency: 16
  autoscale: {min: 1, max: 3, targetInFlight: 2, cooldown: 1s}
  config: {delay: 200ms}
`)
	w := watchInstances(t, env, name)
	testenv.Eventually(t, 5*time.Second, "one instance before the load", func() bool {
		fi, ok := w.last()
		return ok && fi.Instances == 1
	})
	quit := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	calls, failed := 0, 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-quit:
					return
				default:
				}
				r, err := env.TryDo(http.MethodPost, "/v1/echo-scaler", []byte("hi"))
				mu.Lock()
				calls++
				if err != nil || r.Status != http.StatusOK || string(r.Body) != "hi" {
					failed++
				}
				mu.Unlock()
			}
		}()
	}
	stopLoad := sync.OnceFunc(func() { close(quit); wg.Wait() })
	t.Cleanup(stopLoad)
	testenv.Eventually(t, 8*time.Second, "more than one instance under load", func() bool {
		fi, ok := w.last()
		return ok && fi.Instances > 1 && fi.Autoscale != nil && fi.Autoscale.Desired > 1
	})
	stopLoad()
	testenv.Eventually(t, 8*time.Second, "back to one instance after the cool-down", func() bool {
		fi, ok := w.last()
		return ok && fi.Instances == 1 && fi.Autoscale.Desired == 1
	})
	mu.Lock()
	defer mu.Unlock()
	if failed != 0 || calls == 0 {
		t.Errorf("%d of %d calls failed, want none", failed, calls)
	}
	t.Logf("%d calls, peak %d instances, scale events %v", calls, w.peak(), scaleEvents(t, env, name))
}
