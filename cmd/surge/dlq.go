package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/surgefn/surge/gateway"
)

func newDLQCmd(env []string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List, replay and discard a function's dead letters",
		Long: `Dead letters are stream messages a function failed on retry.maxDeliver times (or
rejected): they wait in the DLQ stream, on dlq.<function>, for seven days.
Replay sends one back to the subject it came from with its original headers
plus Surge-Replay: dlq:<seq>; its DLQ entry is deleted only once the stream
acked the republish.`,
	}
	cmd.AddCommand(newDLQLsCmd(env), newDLQReplayCmd(env), newDLQRmCmd(env))
	return cmd
}

func newDLQLsCmd(env []string) *cobra.Command {
	f := &clientFlags{}
	var asJSON bool
	var limit int
	var after uint64
	cmd := &cobra.Command{
		Use:   "ls FUNCTION",
		Short: "List a function's dead letters: DLQ seq, original subject, deliveries, error, payload",
		Example: `  surge dlq ls order-persist
  surge dlq ls order-persist --limit 20 --after 120   # the page after DLQ seq 120
  surge dlq ls order-persist --json                   # with full payloads and headers`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 1 || limit > 1000 {
				return fmt.Errorf("--limit %d: want 1 to 1000", limit)
			}
			c, err := f.client(true)
			if err != nil {
				return err
			}
			q := url.Values{"function": {args[0]}, "limit": {strconv.Itoa(limit)}}
			if after > 0 {
				q.Set("after", strconv.FormatUint(after, 10))
			}
			var raw []byte
			if _, err := c.do(http.MethodGet, "/admin/dlq?"+q.Encode(), "", nil, &raw); err != nil {
				return err
			}
			if asJSON {
				_, err := cmd.OutOrStdout().Write(append(raw, '\n'))
				return err
			}
			var res gateway.DLQPage
			if err := json.Unmarshal(raw, &res); err != nil {
				return fmt.Errorf("decode answer: %w", err)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tSUBJECT\tDELIVERIES\tDEAD SINCE\tERROR\tPAYLOAD")
			for _, d := range res.DeadLetters {
				p := d.Payload
				if d.PayloadEncoding == "base64" {
					p = "base64:" + p
				}
				fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\n", d.Seq, d.Subject, d.Deliveries,
					d.Time.UTC().Format(time.RFC3339), oneLine(d.Error, 60), oneLine(p, 40))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if res.Next > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "%d of %d shown; next page: --after %d\n", len(res.DeadLetters), res.Total, res.Next)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the raw JSON (full payloads and headers)")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many dead letters (1 to 1000)")
	cmd.Flags().Uint64Var(&after, "after", 0, "list only dead letters after this DLQ seq (paging)")
	noEnv(cmd.Flags(), "limit")
	noEnv(cmd.Flags(), "after")
	addClientFlags(cmd, f)
	return withEnv(cmd, env)
}

// oneLine shortens s to one line of at most n runes for a table cell.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// parseSeqs parses "3,7,9" into DLQ sequences.
func parseSeqs(s string) ([]uint64, error) {
	var out []uint64
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		n, err := strconv.ParseUint(part, 10, 64)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("--seq: %q is not a DLQ seq (a positive integer, as surge dlq ls shows)", part)
		}
		out = append(out, n)
	}
	return out, nil
}

func newDLQReplayCmd(env []string) *cobra.Command {
	f := &clientFlags{}
	var seqs string
	cmd := &cobra.Command{
		Use:   "replay FUNCTION [--seq N,...]",
		Short: "Send dead letters back to their original subject (all of the function's, or --seq)",
		Long: `Replay republishes each dead letter to the subject it came from, with its
original headers plus Surge-Replay: dlq:<seq> and Nats-Msg-Id: replay:<seq>
(a fresh id: the original one could still be de-duplicated by the stream; a
replay retried after a lost answer is not doubled). The DLQ entry is deleted
only after the stream acked the republish; a failed one stays listed. Without
--seq at most the 1000 oldest go per call. The command fails when any dead
letter could not be replayed.`,
		Example: `  surge dlq replay order-persist            # every dead letter of the function
  surge dlq replay order-persist --seq 12,15`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var body []byte
			if cmd.Flags().Changed("seq") {
				list, err := parseSeqs(seqs)
				if err != nil {
					return err
				}
				body, _ = json.Marshal(map[string]any{"seq": list})
			}
			c, err := f.client(true)
			if err != nil {
				return err
			}
			var res gateway.ReplayReport
			if _, err := c.do(http.MethodPost, "/admin/dlq/"+url.PathEscape(args[0])+"/replay", "application/json", body, &res); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, r := range res.Results {
				if r.Replayed {
					fmt.Fprintf(out, "%d replayed to %s\n", r.Seq, r.Subject)
				} else {
					fmt.Fprintf(out, "%d failed: %s\n", r.Seq, r.Error)
				}
			}
			fmt.Fprintf(out, "%d replayed, %d failed\n", res.Replayed, res.Failed)
			if left := int(res.Remaining) - res.Failed; left > 0 && !cmd.Flags().Changed("seq") {
				fmt.Fprintf(out, "%d more dead letters left (at most 1000 go per call): run it again\n", left)
			}
			if res.Failed > 0 {
				return fmt.Errorf("%d dead letters not replayed (still listed)", res.Failed)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&seqs, "seq", "", "comma-separated DLQ seqs to replay (default: all)")
	noEnv(cmd.Flags(), "seq")
	addClientFlags(cmd, f)
	return withEnv(cmd, env)
}

func newDLQRmCmd(env []string) *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:     "rm FUNCTION SEQ...",
		Short:   "Discard dead letters for good (DLQ seqs as surge dlq ls shows)",
		Example: `  surge dlq rm order-persist 12 15`,
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			seqs := args[1:]
			for _, s := range seqs {
				if n, err := strconv.ParseUint(s, 10, 64); err != nil || n == 0 {
					return fmt.Errorf("%q is not a DLQ seq (a positive integer, as surge dlq ls shows)", s)
				}
			}
			c, err := f.client(true)
			if err != nil {
				return err
			}
			for _, s := range seqs {
				if _, err := c.do(http.MethodDelete, "/admin/dlq/"+url.PathEscape(args[0])+"/"+s, "", nil, nil); err != nil {
					return fmt.Errorf("rm %s: %w", s, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s discarded\n", s)
			}
			return nil
		},
	}
	addClientFlags(cmd, f)
	return withEnv(cmd, env)
}
