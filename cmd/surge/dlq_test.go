package main

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/wire"
)

func init() {
	runtime.Register(runtime.Module{ID: "test.until-replayed", New: func() any { return new(untilReplayed) }})
}

// untilReplayed fails every stream message that has no replay marker.
type untilReplayed struct{}

func (untilReplayed) HandleBatch(_ context.Context, batch []*runtime.Msg) error {
	for _, m := range batch {
		if m.Header.Get(wire.HeaderReplay) == "" {
			m.Fail(errors.New("not replayed yet"))
		}
	}
	return nil
}

// runCLI runs the surge command against env's gateway with the admin
// token from the environment, as a user would.
func runCLI(t *testing.T, env *testenv.Env, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd([]string{"SURGE_GATEWAY=" + env.URL, "SURGE_ADMIN_TOKEN=" + testenv.Token})
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// TestDLQCommands runs surge dlq ls, replay and rm against a running
// platform whose stream function dead-letters every message not replayed.
func TestDLQCommands(t *testing.T) {
	env := testenv.Start(t, nil)
	env.Deploy(t, `
apiVersion: surge/v1
kind: Function
metadata: {name: picky}
spec:
  handler: test.until-replayed
  trigger: {stream: TEST_PICKY, filter: test.picky}
  retry: {maxDeliver: 1}
`)
	ctx := context.Background()
	testenv.Eventually(t, 2*time.Second, "stream", func() bool { _, err := env.JS.Stream(ctx, "TEST_PICKY"); return err == nil })
	for _, p := range []string{"first", "second"} {
		if _, err := env.JS.PublishMsg(ctx, &nats.Msg{Subject: "test.picky", Data: []byte(p)}); err != nil {
			t.Fatal(err)
		}
	}
	dlq, err := env.JS.Stream(ctx, wire.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "two dead letters", func() bool {
		info, err := dlq.Info(ctx)
		return err == nil && info.State.Msgs == 2
	})

	out, err := runCLI(t, env, "dlq", "ls", "picky")
	if err != nil {
		t.Fatalf("dlq ls: %v\n%s", err, out)
	}
	rows := regexp.MustCompile(`(?m)^(\d+)\s+test\.picky\s+1\s+\S+\s+not replayed yet\s+(\w+)$`).FindAllStringSubmatch(out, -1)
	if !strings.HasPrefix(out, "SEQ") || len(rows) != 2 || rows[0][2] != "first" || rows[1][2] != "second" {
		t.Fatalf("dlq ls printed:\n%s", out)
	}
	first, second := rows[0][1], rows[1][1]
	if out, err := runCLI(t, env, "dlq", "ls", "picky", "--limit", "1"); err != nil || !strings.Contains(out, "1 of 2 shown; next page: --after "+first) {
		t.Errorf("dlq ls --limit 1: %v\n%s", err, out)
	}

	out, err = runCLI(t, env, "dlq", "replay", "picky", "--seq", first)
	if err != nil || !strings.Contains(out, first+" replayed to test.picky") || !strings.Contains(out, "1 replayed, 0 failed") {
		t.Fatalf("dlq replay --seq %s: %v\n%s", first, err, out)
	}
	out, err = runCLI(t, env, "dlq", "rm", "picky", second)
	if err != nil || strings.TrimSpace(out) != second+" discarded" {
		t.Fatalf("dlq rm: %v\n%s", err, out)
	}
	testenv.Eventually(t, 5*time.Second, "replayed message acked", func() bool {
		c, err := env.JS.Consumer(ctx, "TEST_PICKY", "picky")
		if err != nil {
			return false
		}
		ci, err := c.Info(ctx)
		return err == nil && ci.AckFloor.Stream == 3 && ci.NumAckPending == 0
	})
	if info, _ := dlq.Info(ctx); info == nil || info.State.Msgs != 0 {
		t.Errorf("DLQ after replay and rm: %+v", info)
	}
	if out, err := runCLI(t, env, "dlq", "ls", "picky"); err != nil || strings.Count(out, "\n") != 1 {
		t.Errorf("dlq ls of an empty DLQ: %v\n%s", err, out)
	}

	bad := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"ls unknown function", []string{"dlq", "ls", "nope"}, "function nope is not deployed and has no dead letters (404 function_not_found)"},
		{"ls bad limit", []string{"dlq", "ls", "picky", "--limit", "0"}, "--limit 0: want 1 to 1000"},
		{"replay bad seq", []string{"dlq", "replay", "picky", "--seq", "3,x"}, `--seq: "x" is not a DLQ seq`},
		{"replay gone seq", []string{"dlq", "replay", "picky", "--seq", first}, "function picky has no dead letter " + first + " (404 dead_letter_not_found)"},
		{"rm bad seq", []string{"dlq", "rm", "picky", "1.5"}, `"1.5" is not a DLQ seq`},
		{"rm gone seq", []string{"dlq", "rm", "picky", second}, "rm " + second + ": function picky has no dead letter " + second},
		{"rm without seq", []string{"dlq", "rm", "picky"}, "requires at least 2 arg(s)"},
		{"bad token", []string{"dlq", "ls", "picky", "--admin-token", "wrong"}, "401"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runCLI(t, env, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one containing %q\n%s", err, tt.wantErr, out)
			}
		})
	}
}
