package platform_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/surgefn/surge/internal/testenv"
)

// TestExternalFunctionWithNATSCLI is the README tour's external function:
// the stock nats CLI answers in the queue group, curl calls the route.
// `make test` builds the CLI into bin/nats and sets SURGE_NATS_CLI.
func TestExternalFunctionWithNATSCLI(t *testing.T) {
	cli := os.Getenv("SURGE_NATS_CLI")
	if cli == "" {
		t.Skip("SURGE_NATS_CLI not set (make test builds bin/nats and sets it)")
	}
	env := testenv.Start(t, nil)
	env.Deploy(t, `
apiVersion: surge/v1
kind: Function
metadata: {name: hello}
spec:
  handler: external
  trigger: {subject: fn.hello}
  http: {method: POST, path: /v1/hello}
`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, cli, "--server", env.P.NATSURL(), "reply", "fn.hello", "--queue", "hello", `{"hello":"from the nats CLI"}`)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	var r *testenv.Response
	testenv.Eventually(t, 10*time.Second, "the CLI answers through the gateway", func() bool {
		r = env.Do(t, "POST", "/v1/hello", []byte(`{"name":"ada"}`))
		return r.Status == 200
	})
	if strings.TrimSpace(string(r.Body)) != `{"hello":"from the nats CLI"}` {
		t.Errorf("body = %q (cli output: %s)", r.Body, out.String())
	}
	// And the built-in functions show up in `nats micro ls`.
	env.Deploy(t, echoManifest)
	testenv.Eventually(t, 2*time.Second, "echo deployed", func() bool { return env.Do(t, "POST", "/v1/echo", []byte("{}")).Status == 200 })
	ls, err := exec.Command(cli, "--server", env.P.NATSURL(), "micro", "ls").CombinedOutput()
	if err != nil || !strings.Contains(string(ls), "echo") {
		t.Errorf("nats micro ls: %v\n%s", err, ls)
	}
}
