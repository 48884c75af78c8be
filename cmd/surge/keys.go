package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/surgefn/surge/internal/natsauth"
)

// newNATSKeysCmd creates the embedded server's keys without starting
// anything, so the first node of a cluster can hand them to the others
// before any node has started (and kept a JetStream of its own).
func newNATSKeysCmd(env []string) *cobra.Command {
	var data string
	cmd := &cobra.Command{
		Use:   "nats-keys",
		Short: "Create the embedded NATS server's keys and credentials under <data>/nats (for a cluster)",
		Long: `nats-keys creates what surge up creates at its first start under <data>/nats:
the operator, system and account keys and the surge.creds and client.creds
files. Existing keys are kept. Nothing else starts.

Every node of a cluster (surge up --cluster-name ...) needs the same keys:
run this once, then copy the directory to each node's --data before its
first start, e.g.
  surge nats-keys --data /srv/surge
  scp -rp /srv/surge/nats m2:/srv/surge/ && scp -rp /srv/surge/nats m3:/srv/surge/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := natsauth.Open(filepath.Join(data, "nats"))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "NATS keys in %s (account %s); copy the directory to every cluster node's --data\n",
				a.Dir(), a.AccountPublicKey())
			return nil
		},
	}
	cmd.Flags().StringVar(&data, "data", "./data", "data directory; the keys go to <data>/nats")
	return withEnv(cmd, env)
}
