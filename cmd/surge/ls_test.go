package main

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/surgefn/surge/internal/testenv"
)

// TestLsAutoscale: surge ls shows an autoscaled function's instances with
// its bounds, a fixed one with its count alone.
func TestLsAutoscale(t *testing.T) {
	env := testenv.Start(t, nil)
	for name, scaling := range map[string]string{
		"auto-echo":  "autoscale: {min: 2, max: 4, targetInFlight: 10}",
		"fixed-echo": "replicas: 3",
	} {
		env.Deploy(t, fmt.Sprintf("apiVersion: surge/v1\nkind: Function\nmetadata: {name: %s}\n"+
			"spec:\n  handler: echo\n  trigger: {subject: fn.%s}\n  %s\n", name, name, scaling))
	}
	testenv.Eventually(t, 5*time.Second, "both heartbeats", func() bool {
		out, err := runCLI(t, env, "ls")
		return err == nil && regexp.MustCompile(`(?m)^auto-echo .* 2 \(auto 2-4\) `).MatchString(out) &&
			regexp.MustCompile(`(?m)^fixed-echo .* 3 +[0-9a-f]{12}$`).MatchString(out)
	})
}
