package platform_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
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
	env.Deploy(t, externalManifest("hello"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The replier connects as the function (surge creds hello), the rest as
	// an application (client.creds), as the README tour does.
	r := env.Do(t, "POST", "/admin/functions/hello/creds", nil, "Authorization: Bearer "+testenv.Token)
	if r.Status != 200 {
		t.Fatalf("creds: %d %s", r.Status, r.Body)
	}
	creds := filepath.Join(t.TempDir(), "hello.creds")
	if err := os.WriteFile(creds, r.Body, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, cli, "--server", env.P.NATSURL(), "--creds", creds, "reply", "fn.hello", "--queue", "hello", `{"hello":"from the nats CLI"}`)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
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
	client := []string{"--server", env.P.NATSURL(), "--creds", env.ClientCreds(t)}
	ls, err := exec.Command(cli, append(client, "micro", "ls")...).CombinedOutput()
	if err != nil || !strings.Contains(string(ls), "echo") {
		t.Errorf("nats micro ls: %v\n%s", err, ls)
	}
	// The tour's other client commands: a request, a JetStream publish
	// with its ack (no $JS.API permission needed), and what it must not do.
	req, err := exec.Command(cli, append(client, "request", "fn.echo", `{"direct":true}`)...).CombinedOutput()
	if err != nil || !strings.Contains(string(req), `{"direct":true}`) {
		t.Errorf("nats request: %v\n%s", err, req)
	}
	testenv.Streams(t, env.JS, "events.yaml", "events-aggregate")
	pub, err := exec.Command(cli, append(client, "pub", "--jetstream", "events.track", `{"user_id":1,"type":"view","item_id":"A1"}`)...).CombinedOutput()
	if err != nil || !strings.Contains(string(pub), "Stored in Stream: EVENTS") {
		t.Errorf("nats pub --jetstream: %v\n%s", err, pub)
	}
	if out, err := exec.Command(cli, append(client, "--timeout", "1s", "stream", "ls")...).CombinedOutput(); err == nil {
		t.Errorf("nats stream ls with client.creds succeeded:\n%s", out)
	} else {
		t.Logf("nats stream ls with client.creds: %v: %s", err, out)
	}
	if out, err := exec.Command(cli, "--server", env.P.NATSURL(), "micro", "ls").CombinedOutput(); err == nil {
		t.Errorf("nats micro ls without credentials succeeded:\n%s", out)
	}
}
