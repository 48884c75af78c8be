package main

import (
	"regexp"
	"testing"
	"time"

	"github.com/surgefn/surge/internal/testenv"
)

// TestLsAutoscale: surge ls shows an autoscaled function's instances with
// its bounds, a fixed one with its count alone.
func TestLsAutoscale(t *testing.T) {
	env := testenv.Start(t, nil)
	env.Deploy(t, `
apiVersion: surge/v1
kind: Function
metadata: {name: auto-echo}
spec:
  handler: echo
  trigger: {subject: fn.auto.echo}
  autoscale: {min: 2, max: 4, targetInFlight: 10}
`)
	env.Deploy(t, `
apiVersion: surge/v1
kind: Function
metadata: {name: fixed-echo}
spec:
  handler: echo
  trigger: {subject: fn.fixed.echo}
  replicas: 3
`)
	testenv.Eventually(t, 5*time.Second, "both heartbeats", func() bool {
		out, err := runCLI(t, env, "ls")
		return err == nil && regexp.MustCompile(`(?m)^auto-echo .* 2 \(auto 2-4\) `).MatchString(out) &&
			regexp.MustCompile(`(?m)^fixed-echo .* 3 +[0-9a-f]{12}$`).MatchString(out)
	})
}
