package platform_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/runtime/wire"
)

// slowManifest is a function of known capacity: 16 calls at once, 100ms
// each, so 160 calls/s. Slow enough that the gateway's allowance over its
// latency (20ms at least, for the jitter of a busy machine) stays well
// within 2x.
const slowManifest = `
apiVersion: surge/v1
kind: Function
metadata: {name: slow}
spec:
  handler: echo
  trigger: {subject: fn.slow}
  http: {method: POST, path: /v1/slow}
  concurrency: 16
  replicas: 1
  timeout: 2s
  config: {delay: 100ms}
`

const (
	slowTimeout  = 2 * time.Second // the manifest's
	slowDelay    = 100 * time.Millisecond
	slowCapacity = 16 / 0.100 // calls per second
)

// outcome is one call of an open-loop run.
type outcome struct {
	status     int
	took       time.Duration
	retryAfter string
	code       string
}

// openLoop sends rate calls/s to path for d, each at its scheduled time on
// its own goroutine (a slow answer does not hold back the next call), and
// returns every outcome.
func openLoop(t *testing.T, client *http.Client, url string, rate float64, d time.Duration) []outcome {
	t.Helper()
	n := int(rate * d.Seconds())
	out := make([]outcome, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))))
		wg.Add(1)
		go func(o *outcome) {
			defer wg.Done()
			t0 := time.Now()
			resp, err := client.Post(url, "application/json", bytes.NewReader([]byte(`{"n":1}`)))
			if err != nil {
				o.status = -1
				o.code = err.Error()
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			o.took = time.Since(t0)
			o.status = resp.StatusCode
			o.retryAfter = resp.Header.Get("Retry-After")
			if resp.StatusCode != http.StatusOK {
				var e struct {
					Error struct{ Code string } `json:"error"`
				}
				_ = json.Unmarshal(body, &e)
				o.code = e.Error.Code
			}
		}(&out[i])
	}
	wg.Wait()
	return out
}

func p99(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[(len(ds)*99)/100]
}

// TestOverloadSheds drives a function of known capacity at three times that
// capacity: the calls the gateway admits do not queue (p99 within twice the
// unloaded p99 measured first in the same test on a quiet machine, and far
// below the queueing regime on any), the rest are refused with 503
// overloaded and Retry-After at once, the function stays busy, and the
// heap stays bounded.
func TestOverloadSheds(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	env := testenv.Start(t, nil)
	env.Deploy(t, slowManifest)
	client := &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 2000, MaxIdleConns: 2000}}
	t.Cleanup(client.CloseIdleConnections)
	url := env.URL + "/v1/slow"

	// Unloaded: a quarter of the capacity. The gateway learns the baseline.
	var unloaded []time.Duration
	// 240 calls: the p99 of fewer is one unlucky call on a busy machine.
	for _, o := range openLoop(t, client, url, slowCapacity/4, 6*time.Second) {
		if o.status != http.StatusOK {
			t.Fatalf("unloaded call = %d %s, want 200", o.status, o.code)
		}
		unloaded = append(unloaded, o.took)
	}
	base := p99(unloaded)

	var before, peak runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.HeapAlloc {
				peak = m
			}
		}
	}()

	// Three times the capacity: one second for the limit to settle, then
	// the measured run.
	openLoop(t, client, url, 3*slowCapacity, time.Second)
	measured := 4 * time.Second
	outs := openLoop(t, client, url, 3*slowCapacity, measured)
	close(stop)
	<-sampled

	var admitted, refused []time.Duration
	other := map[string]int{}
	for _, o := range outs {
		switch {
		case o.status == http.StatusOK:
			admitted = append(admitted, o.took)
		case (o.status == http.StatusServiceUnavailable && o.code == "overloaded") || o.status == http.StatusTooManyRequests:
			if o.retryAfter == "" {
				t.Errorf("refusal %d %s without Retry-After", o.status, o.code)
			}
			refused = append(refused, o.took)
		default:
			other[http.StatusText(o.status)+" "+o.code]++
		}
	}
	share := float64(len(refused)) / float64(len(outs))
	rate := float64(len(admitted)) / measured.Seconds()
	t.Logf("unloaded p99 %s (%d calls); at 3x (%d calls): %d admitted (%.0f/s of capacity %.0f/s), p99 %s; %d refused (%.0f%%), p99 %s; heap %d MiB before, peak %d MiB",
		base, len(unloaded), len(outs), len(admitted), rate, slowCapacity, p99(admitted), len(refused), share*100, p99(refused),
		before.HeapAlloc>>20, peak.HeapAlloc>>20)
	if len(other) > 0 {
		t.Errorf("calls neither served nor refused as overloaded: %v", other)
	}
	// The speed goals (admitted p99 within 2x the unloaded one, refusals
	// under 50ms) are make bench's (the overload rows of BENCHMARKS.md):
	// here, with every test package running at once on two cores, the
	// clock measures the machine as much as the gateway. What this test
	// holds is the mechanism: nothing queues. Without the limit the
	// excess queues at the host, and admitted calls and refusals alike
	// take up to half the 2s timeout (about 1s; the test fails so with
	// NoAdaptiveLimit); with it both stay far below that.
	queued := slowTimeout / 4
	if got := p99(admitted); got > max(2*base, queued) {
		t.Errorf("admitted p99 at 3x capacity = %s, want <= 2x the unloaded p99 %s (and no queueing: < %s)", got, base, queued)
	} else if got > 2*base {
		t.Logf("admitted p99 %s is over 2x the unloaded %s: a busy machine (the goal is make bench's)", got, base)
	}
	if got := p99(refused); got > queued {
		t.Errorf("refusal p99 = %s, want < %s (refused at once, not after queueing)", got, queued)
	}
	// Offered 3x, so about two thirds must go; shedding must not starve
	// the function either.
	if share < 0.4 {
		t.Errorf("refused %.0f%% at 3x capacity, want >= 40%%", share*100)
	}
	if rate < 0.7*slowCapacity {
		t.Errorf("admitted %.0f/s, want >= 70%% of the capacity %.0f/s", rate, slowCapacity)
	}
	// Everything here runs in this process: gateway, host, NATS server and
	// clients. A queue of admitted calls would grow by 320/s; refused
	// calls hold nothing once answered.
	if grow := int64(peak.HeapAlloc) - int64(before.HeapAlloc); grow > 128<<20 {
		t.Errorf("heap grew by %d MiB under overload, want bounded (< 128 MiB)", grow>>20)
	}
	// Operators see what the gateway learned.
	m := env.Do(t, "GET", "/metrics", nil)
	for _, want := range []string{`surge_gateway_function_limit{function="slow"}`, `surge_gateway_function_baseline_seconds{function="slow"} 0.1`} {
		if !strings.Contains(string(m.Body), want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
}

// TestHostRefusesLateCalls sends calls over NATS with a Surge-Deadline: one
// that has less than half of the function's timeout left is answered 503
// overloaded with Retry-After at once, without running (the function would
// take 100ms); one with time enough runs.
func TestHostRefusesLateCalls(t *testing.T) {
	env := testenv.Start(t, nil)
	env.Deploy(t, slowManifest)
	call := func(left time.Duration) (*nats.Msg, time.Duration) {
		t.Helper()
		m := nats.NewMsg("fn.slow")
		m.Header.Set(wire.HeaderDeadline, strconv.FormatInt(time.Now().Add(left).UnixMilli(), 10))
		m.Data = []byte(`{}`)
		t0 := time.Now()
		resp, err := env.NC.RequestMsg(m, 5*time.Second)
		if err != nil {
			t.Fatalf("request with %s left: %v", left, err)
		}
		return resp, time.Since(t0)
	}
	if resp, _ := call(1500 * time.Millisecond); resp.Header.Get(wire.HeaderServiceErrorCode) != "" {
		t.Fatalf("a call with 1.5s of its 2s left was refused: %v", resp.Header)
	}
	// An idle host runs a call however late the gateway's clock says it
	// is: the clocks of two machines may differ.
	if resp, _ := call(-time.Second); resp.Header.Get(wire.HeaderServiceErrorCode) != "" {
		t.Fatalf("an idle host refused a call whose deadline (by another clock) had passed: %v", resp.Header)
	}
	// Every slot taken: a late call is refused at once instead of queueing.
	var busy sync.WaitGroup
	for range 16 {
		busy.Go(func() {
			m := nats.NewMsg("fn.slow")
			m.Data = []byte(`{}`)
			_, _ = env.NC.RequestMsg(m, 5*time.Second)
		})
	}
	defer busy.Wait()
	time.Sleep(50 * time.Millisecond) // the 16 calls hold the slots for 100ms
	for _, left := range []time.Duration{900 * time.Millisecond, -time.Second} {
		resp, took := call(left)
		status, code, _, ok := wire.GetError(resp.Header)
		if !ok || status != http.StatusServiceUnavailable || code != wire.CodeOverloaded {
			t.Errorf("call with %s left = %v, want 503 overloaded", left, resp.Header)
		}
		if resp.Header.Get(wire.HeaderRetryAfter) == "" {
			t.Errorf("refusal with %s left has no Retry-After", left)
		}
		if took >= 100*time.Millisecond {
			t.Errorf("refusal with %s left took %s, want at once (the function takes 100ms)", left, took)
		}
	}
}
