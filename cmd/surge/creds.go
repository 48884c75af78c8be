package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"

	"github.com/spf13/cobra"
)

func newCredsCmd(env []string) *cobra.Command {
	f := &clientFlags{}
	var rotate bool
	var out string
	cmd := &cobra.Command{
		Use:   "creds NAME [--rotate] [-o FILE]",
		Short: "Print NATS credentials for the external function NAME (serve its subject, nothing else)",
		Long: `creds asks the gateway (admin token) for a NATS credentials file of the
external function NAME, in the .creds format nats --creds and nats.go's
nats.UserCredentials read. It may subscribe NAME's trigger subject in NAME's
queue group and publish the answers to the requests it receives; nothing
else. Only the gateway of the surge up that embeds NATS issues them.

--rotate issues new credentials and revokes every earlier one of NAME: a
connection using one is closed and cannot come back.`,
		Example: `  surge creds hello > hello.creds
  nats --creds hello.creds reply fn.hello --queue hello '{"hello":"world"}'
  surge creds --rotate hello -o hello.creds`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(true)
			if err != nil {
				return err
			}
			path := "/admin/functions/" + url.PathEscape(args[0]) + "/creds"
			if rotate {
				path += "?rotate=true"
			}
			var creds []byte
			if _, err := c.do(http.MethodPost, path, "", nil, &creds); err != nil {
				return fmt.Errorf("creds %s: %w", args[0], err)
			}
			if out == "" || out == "-" {
				_, err = cmd.OutOrStdout().Write(creds)
				return err
			}
			if err := os.WriteFile(out, creds, 0o600); err != nil {
				return err
			}
			return os.Chmod(out, 0o600) // an existing file keeps its mode otherwise
		},
	}
	cmd.Flags().BoolVar(&rotate, "rotate", false, "revoke every earlier credential of NAME")
	cmd.Flags().StringVarP(&out, "out", "o", "", "write the file (mode 0600) instead of printing it")
	addClientFlags(cmd, f)
	return withEnv(cmd, env)
}
