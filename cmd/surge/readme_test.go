package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/internal/testenv"
)

// asCLIEnv makes the test binary run as the surge command, so the README's
// `bin/surge ...` lines run this package's main without another build.
const asCLIEnv = "SURGE_TEST_AS_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(asCLIEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// readmeBlocks returns the shell blocks of the README between two headings,
// without the lines a test cannot run (make targets: the platform is
// already up and the tools already built).
func readmeBlocks(t *testing.T, from, to string) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i, j := strings.Index(s, from), strings.Index(s, to)
	if i < 0 || j < i {
		t.Fatalf("README has no section %q before %q", from, to)
	}
	var out []string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(s[i:j], -1) {
		for _, line := range strings.Split(m[1], "\n") {
			if strings.HasPrefix(line, "make ") {
				continue
			}
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestReadmeTour pastes the README's tour and built-in function examples
// into a shell against a fresh platform, as a new user would, and checks
// the answers the README promises.
func TestReadmeTour(t *testing.T) {
	natsCLI := os.Getenv("SURGE_NATS_CLI")
	if natsCLI == "" {
		t.Skip("SURGE_NATS_CLI not set (make test builds bin/nats and sets it)")
	}
	for _, tool := range []string{"bash", "curl", "awk", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	wrapper := "#!/bin/sh\n" + asCLIEnv + "=1 exec " + self + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "bin", "surge"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(natsCLI, filepath.Join(dir, "bin", "nats")); err != nil {
		t.Fatal(err)
	}
	manifests, err := filepath.Abs("../../manifests")
	if err != nil {
		t.Fatal(err)
	}
	o := testenv.Options(t)
	o.DataDir = filepath.Join(dir, "data")
	o.AdminToken = "" // generated into data/admin-token, as surge up does
	o.Manifests = manifests
	o.StoreConfig = nil
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := platform.Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background()) })

	script := readmeBlocks(t, "## A 5-minute tour", "## Manifest reference")
	gw := strings.TrimPrefix(p.HTTPURL(), "http://")
	script = strings.ReplaceAll(script, "localhost:8080", gw)
	// The README waits as long as the contract promises under normal load
	// (sleep 1 for "within a second"); make test runs many packages at
	// once on a small machine, so the tour gets three times that. The
	// promises themselves are tested where they are made (functions/*).
	script = regexp.MustCompile(`\bsleep ([0-9]+)\b`).ReplaceAllStringFunc(script, func(m string) string {
		n, _ := strconv.Atoi(strings.TrimPrefix(m, "sleep "))
		return "sleep " + strconv.Itoa(3*n)
	})
	cmd := exec.CommandContext(ctx, "bash", "-e", "-o", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NATS_URL="+p.NATSURL(), "SURGE_GATEWAY="+p.HTTPURL())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README's commands failed: %v\n%s", err, out)
	}
	// What the README's comments promise, in the order they come.
	rest := string(out)
	for _, want := range []string{
		`"ready":true`, `{"hello":"surge"}`, `{"via":"surge call"}`,
		`hello deployed`, `{"hello":"from the nats CLI"}`, `"no_instances"`, `hello removed`,
		`"status":"succeeded"`, `{"direct":true}`,
		`"status":"accepted","total_cents":3998`, `"total_cents":3998,"currency":"CNY"`, `"invalid_request"`, `"after":"`,
		`"order_id":"client-42"`, `"order_id":"client-44"`, `"total_cents":750`, `"total_cents":100`,
		`"status":"accepted","total_cents":999`, `"status":"accepted","total_cents":999`, `"limit_reached"`,
		`"total_cents":999`, `"sold_out"`, `"sold":2,"remaining":0,"status":"sold_out"`, `"sku":"P1","qty":1`,
		`"first":true`, `"first":false`, `"user_id":2`,
		`"status":"sent"`, `429 Too Many Requests`, `"message_id"`,
		`{"accepted":2}`, `"view":1,"click":0,"cart":0,"buy":1`, `"view":1,"click":1,"cart":0,"buy":1`,
		"404\n", `"name":"Ann","level":1,"version":1`, `Etag: "1"`, `"version":2`, "412\n", "428\n", `"level":3,"version":3`, `"version":3`,
		`"envelope_id":"`, `"user_id":2,"amount_cents":`, `"first":true`, `"user_id":2,"amount_cents":`, `"first":false`, "410\n",
		`"total_cents":1000,"count":3,"taken":3,"remaining_cents":0`, `"user_id":3`, `"first":false`,
	} {
		i := strings.Index(rest, want)
		if i < 0 {
			t.Fatalf("the README promises %s, not in what its commands printed (after the earlier promises):\n%s", want, out)
		}
		rest = rest[i+len(want):]
	}
	if n := strings.Count(string(out), `"error"`); n != 4 {
		t.Errorf("%d error answers, the README shows 4 (no_instances after the replier stopped, invalid_request, limit_reached, sold_out):\n%s", n, out)
	}
}
