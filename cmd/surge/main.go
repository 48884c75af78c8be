// Command surge is the surge function platform: `surge up` runs everything
// in one process; `surge gateway` and `surge runtime` scale out against a
// shared NATS; deploy, ls, rm, call and creds talk to a running gateway.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	_ "github.com/surgefn/surge/functions/all"
)

func main() {
	if err := newRootCmd(os.Environ()).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "surge:", err)
		os.Exit(1)
	}
}

func newRootCmd(env []string) *cobra.Command {
	root := &cobra.Command{
		Use:   "surge",
		Short: "A serverless-style function platform on NATS",
		Long: `surge runs small functions behind an HTTP gateway and NATS subjects.

Every flag can also be set with an environment variable SURGE_<FLAG>, with
dashes as underscores: --nats-listen is SURGE_NATS_LISTEN. A flag given on
the command line wins over the environment.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newUpCmd(env), newGatewayCmd(env), newRuntimeCmd(env),
		newDeployCmd(env), newLsCmd(env), newRmCmd(env), newCallCmd(env), newCredsCmd(env), newNATSKeysCmd(env), newBenchCmd(env), newDLQCmd(env),
		newVersionCmd())
	// --version prints what `surge version` does (cobra's default template
	// would print only the version string).
	root.Version = version
	root.SetVersionTemplate("{{printVersion}}")
	cobra.AddTemplateFunc("printVersion", versionText)
	return root
}
