package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/surgefn/surge/internal/host"
)

// replicasValue is the --replicas flag: auto (stored as 0) or a count
// from 1 to host.MaxReplicas.
type replicasValue struct{ n *int }

func (v replicasValue) String() string {
	if v.n == nil || *v.n == 0 {
		return "auto"
	}
	return strconv.Itoa(*v.n)
}

func (v replicasValue) Set(s string) error {
	if s == "auto" {
		*v.n = 0
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > host.MaxReplicas {
		return fmt.Errorf("%q is not auto or a count from 1 to %d", s, host.MaxReplicas)
	}
	*v.n = n
	return nil
}

func (replicasValue) Type() string { return "auto|N" }

// addReplicasFlag adds --replicas to up, gateway and runtime: every
// process that may create the platform's streams and buckets.
func addReplicasFlag(cmd *cobra.Command, f *serverFlags) {
	cmd.Flags().Var(replicasValue{&f.opts.Replicas}, "replicas",
		"replicas of every stream and KV bucket surge creates: auto (1 on a single NATS server, 3 on a cluster of 3 or more) or 1 to 5; "+
			"existing ones with fewer are raised, never lowered")
}
