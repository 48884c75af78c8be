package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/surgefn/surge/manifests"
)

// clientFlags are the flags of the commands that talk to a gateway.
type clientFlags struct {
	Gateway string
	Data    string
	Token   string
}

func addClientFlags(cmd *cobra.Command, f *clientFlags) {
	cmd.Flags().StringVar(&f.Gateway, "gateway", "http://127.0.0.1:8080", "gateway base URL")
	cmd.Flags().StringVar(&f.Data, "data", "./data", "data dir whose admin-token is used when SURGE_ADMIN_TOKEN is unset")
	cmd.Flags().StringVar(&f.Token, "admin-token", "", "admin token (default: SURGE_ADMIN_TOKEN, then <data>/admin-token)")
}

type client struct {
	base  string
	token string
	http  *http.Client
}

func (f *clientFlags) client(needToken bool) (*client, error) {
	c := &client{base: strings.TrimRight(f.Gateway, "/"), token: f.Token, http: &http.Client{Timeout: 30 * time.Second}}
	if c.token == "" && needToken {
		b, err := os.ReadFile(filepath.Join(f.Data, "admin-token"))
		if err != nil {
			return nil, fmt.Errorf("no admin token: set SURGE_ADMIN_TOKEN or --admin-token, or point --data at the platform's data dir (%w)", err)
		}
		c.token = strings.TrimSpace(string(b))
	}
	return c, nil
}

// do sends a request and decodes a JSON answer into out; an error answer
// becomes an error carrying the platform's message.
func (c *client) do(method, path, contentType string, body []byte, out any) (int, error) {
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("gateway %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 400 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
			return resp.StatusCode, fmt.Errorf("%s (%d %s)", e.Error.Message, resp.StatusCode, e.Error.Code)
		}
		return resp.StatusCode, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil {
		switch o := out.(type) {
		case *[]byte:
			*o = b
		default:
			if err := json.Unmarshal(b, out); err != nil {
				return resp.StatusCode, fmt.Errorf("decode answer: %w", err)
			}
		}
	}
	return resp.StatusCode, nil
}

func newDeployCmd(env []string) *cobra.Command {
	f := &clientFlags{}
	var file string
	cmd := &cobra.Command{
		Use:   "deploy -f FILE|DIR",
		Short: "Deploy manifests (validated locally, then applied live on every host)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return errors.New("-f FILE|DIR is required")
			}
			fns, err := manifests.LoadPath(file)
			if err != nil {
				return err
			}
			c, err := f.client(true)
			if err != nil {
				return err
			}
			for _, fn := range fns {
				body, _ := json.Marshal(fn)
				var res struct {
					Revision string `json:"revision"`
					Changed  bool   `json:"changed"`
				}
				if _, err := c.do(http.MethodPut, "/admin/functions/"+fn.Metadata.Name, "application/json", body, &res); err != nil {
					return fmt.Errorf("deploy %s: %w", fn.Metadata.Name, err)
				}
				state := "deployed"
				if !res.Changed {
					state = "unchanged"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s (revision %s)\n", fn.Metadata.Name, state, res.Revision)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "manifest file or directory")
	addClientFlags(cmd, f)
	return withEnv(cmd, env)
}

func newLsCmd(env []string) *cobra.Command {
	f := &clientFlags{}
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List deployed functions with their instances",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(true)
			if err != nil {
				return err
			}
			var raw []byte
			if _, err := c.do(http.MethodGet, "/admin/functions", "", nil, &raw); err != nil {
				return err
			}
			if asJSON {
				_, err := cmd.OutOrStdout().Write(append(raw, '\n'))
				return err
			}
			var res struct {
				Functions []struct {
					Name, Handler, Subject, Stream, Filter, Route, Revision string
					Replicas                                                int
					Instances                                               int      `json:"instances_ready"`
					Errors                                                  []string `json:"errors"`
					Autoscale                                               *struct{ Min, Max int }
				} `json:"functions"`
			}
			if err := json.Unmarshal(raw, &res); err != nil {
				return err
			}
			sort.Slice(res.Functions, func(i, j int) bool { return res.Functions[i].Name < res.Functions[j].Name })
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tHANDLER\tSUBJECT\tROUTE\tREADY\tREVISION")
			for _, fn := range res.Functions {
				subj := fn.Subject
				if fn.Stream != "" {
					subj = "stream " + fn.Stream
					if fn.Filter != "" {
						subj += " (" + fn.Filter + ")"
					}
				}
				route := fn.Route
				if route == "" {
					route = "-"
				}
				ready := fmt.Sprintf("%d", fn.Instances)
				if a := fn.Autoscale; a != nil {
					ready += fmt.Sprintf(" (auto %d-%d)", a.Min, a.Max)
				}
				if fn.Handler == manifests.HandlerExternal {
					ready = "external"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", fn.Name, fn.Handler, subj, route, ready, fn.Revision)
				for _, e := range fn.Errors {
					fmt.Fprintf(tw, "  error:\t%s\t\t\t\t\n", e)
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the raw JSON")
	addClientFlags(cmd, f)
	return withEnv(cmd, env)
}

func newRmCmd(env []string) *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "rm NAME...",
		Short: "Remove deployed functions (instances drain, routes disappear)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(true)
			if err != nil {
				return err
			}
			for _, name := range args {
				if _, err := c.do(http.MethodDelete, "/admin/functions/"+name, "", nil, nil); err != nil {
					return fmt.Errorf("rm %s: %w", name, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s removed\n", name)
			}
			return nil
		},
	}
	addClientFlags(cmd, f)
	return withEnv(cmd, env)
}

func newCallCmd(env []string) *cobra.Command {
	f := &clientFlags{}
	var body string
	var async bool
	cmd := &cobra.Command{
		Use:   "call NAME [-d JSON|@FILE]",
		Short: "Call a function by name through the gateway and print its answer",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(false)
			if err != nil {
				return err
			}
			payload := []byte(body)
			if file, ok := strings.CutPrefix(body, "@"); ok {
				if payload, err = os.ReadFile(file); err != nil {
					return fmt.Errorf("--body: %w", err)
				}
			}
			path := "/function/" + args[0]
			if async {
				path = "/async-function/" + args[0]
			}
			var out []byte
			if _, err := c.do(http.MethodPost, path, "application/json", payload, &out); err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(append(bytes.TrimRight(out, "\n"), '\n'))
			return err
		},
	}
	cmd.Flags().BoolVar(&async, "async", false, "queue the call (202) instead of waiting for the answer")
	cmd.Flags().StringVar(&f.Gateway, "gateway", "http://127.0.0.1:8080", "gateway base URL")
	// No SURGE_ variable sets the body: it is the call's payload, not a
	// setting (it used to be --data and so read SURGE_DATA, the data
	// directory's variable).
	cmd.Flags().StringVarP(&body, "body", "d", "{}", "request body (JSON, or @file)")
	noEnv(cmd.Flags(), "body")
	return withEnv(cmd, env)
}
