package platform_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/internal/testenv"
)

// TestScaleOutOnExternalNATS runs a gateway+runtime process and a second
// runtime-only process against one external nats-server, both on a shared
// store: a deploy reaches both hosts, and `surge ls` counts the instances
// of both.
func TestScaleOutOnExternalNATS(t *testing.T) {
	ns := externalServer(t, nil)
	a := testenv.Start(t, func(o *platform.Options) { o.NATSURL = ns.ClientURL(); o.NATSListen = ""; sharedStore(o) })
	if a.P.NATSServer() != nil {
		t.Fatal("an embedded server started despite --nats")
	}
	testenv.Start(t, func(o *platform.Options) { o.NATSURL = ns.ClientURL(); o.HTTPAddr = ""; sharedStore(o) }) // a second host
	a.Deploy(t, echoManifest)
	var list struct {
		Functions []struct {
			Name      string `json:"name"`
			Instances int    `json:"instances_ready"`
			Hosts     int    `json:"hosts"`
		} `json:"functions"`
		Hosts int `json:"hosts"`
	}
	testenv.Eventually(t, 5*time.Second, "echo on both hosts", func() bool {
		a.Do(t, "GET", "/admin/functions", nil, "Authorization: Bearer "+testenv.Token).JSON(t, &list)
		return len(list.Functions) == 1 && list.Functions[0].Instances == 2 && list.Functions[0].Hosts == 2
	})
	// Requests are spread over both hosts' queue-group members.
	for range 20 {
		if r := a.Do(t, "POST", "/v1/echo", []byte(`{}`)); r.Status != 200 {
			t.Fatalf("echo = %d", r.Status)
		}
	}
}

// TestStartFailureIsAnError: a platform that cannot start returns the
// error (and cleans up what it started) instead of panicking.
func TestStartFailureIsAnError(t *testing.T) {
	o := testenv.Options(t)
	// Fixed ports, so that the second start shows the first let them go.
	o.NATSListen, o.HTTPAddr = testenv.FreeAddr(t), testenv.FreeAddr(t)
	o.Store = "nosuch"
	_, err := platform.Start(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Fatalf("Start = %v, want an error naming the store", err)
	}
	// The ports it bound are free again: a second start on them works.
	o.Store = "buntdb"
	env := testenv.StartWith(t, o)
	if r := env.Do(t, "GET", "/healthz", nil); r.Status != 200 {
		t.Errorf("healthz = %d", r.Status)
	}
}

// TestLocalCalls: the gateway of a process that runs a runtime host calls
// that host's instance directly while it has a slot free, though a second
// host serves the function's queue group too; calls beyond the local
// slots go through NATS and reach the other host; with NoLocalCalls (a
// third process, gateway and host) every call goes through NATS, spread
// over all three hosts. surge_gateway_sync_calls_total counts each way.
func TestLocalCalls(t *testing.T) {
	ns := externalServer(t, nil)
	on := func(noLocal bool) func(*platform.Options) {
		return func(o *platform.Options) {
			o.NATSURL, o.NATSListen, o.NoLocalCalls = ns.ClientURL(), "", noLocal
			// Calls over the local slots queue at the hosts, not refused
			// by the gateway's adaptive limit.
			o.NoAdaptiveLimit = true
			sharedStore(o)
		}
	}
	a := testenv.Start(t, on(false))
	b := testenv.Start(t, func(o *platform.Options) { on(false)(o); o.HTTPAddr, o.MetricsAddr = "", "127.0.0.1:0" })
	a.Deploy(t, echoManifest)
	a.Deploy(t, `
apiVersion: surge/v1
kind: Function
metadata: {name: echo-slow}
spec:
  handler: echo
  trigger: {subject: fn.echo.slow}
  http: {method: POST, path: /v1/echo-slow}
  concurrency: 1
  timeout: 20s
  config: {delay: 100ms}
`)
	testenv.Eventually(t, 5*time.Second, "both functions on both hosts", func() bool {
		for _, e := range []*testenv.Env{a, b} {
			fs := e.P.Host().Status().Functions
			if fs["echo"].Instances == 0 || fs["echo-slow"].Instances == 0 {
				return false
			}
		}
		return true
	})
	calls := func(name string) (onA, onB float64) {
		onA, _ = sampleValue(scrape(t, a), "surge_function_invocations_total", "function", name)
		resp, err := b.HTTP.Get(b.P.MetricsURL() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		onB, _ = sampleValue(body, "surge_function_invocations_total", "function", name)
		return onA, onB
	}
	post := func(e *testenv.Env, path string, n int) {
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				body := fmt.Appendf(nil, `{"i":%d}`, i)
				if r, err := e.TryDo("POST", path, body); err != nil || r.Status != 200 || !bytes.Equal(r.Body, body) {
					t.Errorf("POST %s = %v %v", path, r, err)
				}
			})
		}
		wg.Wait()
	}

	post(a, "/v1/echo", 40)
	if onA, onB := calls("echo"); onA != 40 || onB != 0 {
		t.Errorf("40 calls with a free local slot: %v on the gateway's host, %v on the other; want 40 and 0", onA, onB)
	}
	body := scrape(t, a)
	local, _ := sampleValue(body, "surge_gateway_sync_calls_total", "function", "echo", "via", "local")
	viaNATS, _ := sampleValue(body, "surge_gateway_sync_calls_total", "function", "echo", "via", "nats")
	if local != 40 || viaNATS != 0 {
		t.Errorf("surge_gateway_sync_calls_total for echo: local %v, nats %v; want 40 and 0", local, viaNATS)
	}
	// One slot each, 100 ms a call: of 16 at once, one takes the local
	// slot and the others go through NATS, where the queue group sends
	// each to either host (queued there for its slot), so the other host
	// serving none of them is a 1 in 2^15 chance.
	post(a, "/v1/echo-slow", 16)
	if onA, onB := calls("echo-slow"); onA+onB != 16 || onA == 0 || onB == 0 {
		t.Errorf("16 calls at once on one slot per host: %v on the gateway's host, %v on the other; want both, 16 in all", onA, onB)
	}
	body = scrape(t, a)
	local, _ = sampleValue(body, "surge_gateway_sync_calls_total", "function", "echo-slow", "via", "local")
	viaNATS, _ = sampleValue(body, "surge_gateway_sync_calls_total", "function", "echo-slow", "via", "nats")
	if local+viaNATS != 16 || local == 0 || viaNATS == 0 {
		t.Errorf("surge_gateway_sync_calls_total for echo-slow: local %v, nats %v; want both, 16 in all", local, viaNATS)
	}

	c := testenv.Start(t, on(true))
	beforeA, beforeB := calls("echo")
	post(c, "/v1/echo", 40)
	afterA, afterB := calls("echo")
	onC, _ := sampleValue(scrape(t, c), "surge_function_invocations_total", "function", "echo")
	if onC+afterA-beforeA+afterB-beforeB != 40 || afterB == beforeB || onC == 0 {
		t.Errorf("40 calls with NoLocalCalls: %v on the gateway's own host, %v and %v on the others; want them spread over all three",
			onC, afterA-beforeA, afterB-beforeB)
	}
	body = scrape(t, c)
	local, _ = sampleValue(body, "surge_gateway_sync_calls_total", "function", "echo", "via", "local")
	viaNATS, _ = sampleValue(body, "surge_gateway_sync_calls_total", "function", "echo", "via", "nats")
	if local != 0 || viaNATS != 40 {
		t.Errorf("surge_gateway_sync_calls_total for echo with NoLocalCalls: local %v, nats %v; want 0 and 40", local, viaNATS)
	}
}
