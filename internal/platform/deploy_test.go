package platform_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/internal/testenv"
)

// echoTwin is a second function on echo's route.
const echoTwin = `
apiVersion: surge/v1
kind: Function
metadata: {name: echo-twin}
spec:
  handler: echo
  trigger: {subject: fn.echo-twin}
  http: {method: POST, path: /v1/echo}
`

// TestRouteClash checks that the admin API and --manifests refuse a route
// another function holds in the same way: 409 through the API, no start
// with --manifests, both naming the two functions and the route.
func TestRouteClash(t *testing.T) {
	env := testenv.Start(t, nil)
	env.Deploy(t, echoManifest)
	r := env.Do(t, "PUT", "/admin/functions/echo-twin", []byte(echoTwin),
		"Authorization: Bearer "+testenv.Token, "Content-Type: application/yaml")
	if r.Status != 409 || r.ErrorCode() != "route_conflict" {
		t.Fatalf("clashing deploy = %d %s, want 409 route_conflict", r.Status, r.Body)
	}
	for _, want := range []string{"POST /v1/echo", "echo-twin", "function echo"} {
		if !strings.Contains(string(r.Body), want) {
			t.Errorf("409 body %s does not name %q", r.Body, want)
		}
	}
	if r := env.Do(t, "GET", "/admin/functions/echo-twin", nil, "Authorization: Bearer "+testenv.Token); r.Status != 404 {
		t.Errorf("refused function deployed anyway: %d %s", r.Status, r.Body)
	}

	// At start: a manifests directory with the same clash.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "fns.yaml"), []byte(echoManifest+"---\n"+echoTwin), 0o644); err != nil {
		t.Fatal(err)
	}
	o := testenv.Options(t)
	o.Manifests = dir
	p, err := platform.Start(context.Background(), o)
	if err == nil {
		_ = p.Stop(context.Background())
		t.Fatal("started with two functions on one route")
	}
	for _, want := range []string{"POST /v1/echo", "echo-twin", "function echo", "--manifests"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("start error %q does not name %q", err, want)
		}
	}

	// A manifest clashing with a function deployed earlier is refused too,
	// and the refused start leaves the data directory usable.
	o.Manifests = ""
	first := testenv.StartWith(t, o)
	first.Deploy(t, echoManifest)
	first.Stop(t)
	if err := os.WriteFile(filepath.Join(dir, "fns.yaml"), []byte(echoTwin), 0o644); err != nil {
		t.Fatal(err)
	}
	o.Manifests = dir
	if p, err := platform.Start(context.Background(), o); err == nil {
		_ = p.Stop(context.Background())
		t.Fatal("started with a manifest on a deployed function's route")
	} else if !strings.Contains(err.Error(), "already served by function echo") {
		t.Errorf("start error %q", err)
	}
}

// TestPublishesUndeclared deploys order-accept without its spec.publishes:
// no stream captures orders.submit, so the function does not start, and
// the host says why instead of every call failing.
func TestPublishesUndeclared(t *testing.T) {
	env := testenv.Start(t, nil)
	const accept = `
apiVersion: surge/v1
kind: Function
metadata: {name: order-accept}
spec:
  handler: orders.accept
  trigger: {subject: fn.orders.accept}
  http: {method: POST, path: /v1/orders}
  kv: [{bucket: ORDERS_IDEM, ttl: 24h}]
`
	r := env.Do(t, "PUT", "/admin/functions/order-accept", []byte(accept),
		"Authorization: Bearer "+testenv.Token, "Content-Type: application/yaml")
	if r.Status != 200 {
		t.Fatalf("deploy = %d %s", r.Status, r.Body)
	}
	var info struct {
		Errors []string `json:"errors"`
	}
	testenv.Eventually(t, 5*time.Second, "the host reports the missing stream", func() bool {
		env.Do(t, "GET", "/admin/functions/order-accept", nil, "Authorization: Bearer "+testenv.Token).JSON(t, &info)
		return len(info.Errors) > 0
	})
	for _, want := range []string{"orders.submit", "spec.publishes"} {
		if !strings.Contains(info.Errors[0], want) {
			t.Errorf("host error %q does not say %q", info.Errors[0], want)
		}
	}
}
