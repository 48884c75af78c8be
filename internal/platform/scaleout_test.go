package platform_test

import (
	"context"
	"strings"
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
