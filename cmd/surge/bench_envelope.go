package main

import (
	"strconv"

	"github.com/spf13/cobra"

	"github.com/surgefn/surge/internal/bench"
)

func newBenchEnvelopeCmd(env []string) *cobra.Command {
	var envelopes, shares int
	var total int64
	return scenarioCmd(env, "envelope", "many grabbers (a new user each) on a few red envelopes; verify every envelope's shares sum exactly", 64,
		func(cmd *cobra.Command, _ *benchFlags) {
			cmd.Flags().IntVar(&envelopes, "envelopes", 4, "envelopes open at a time (an emptied one is replaced)")
			cmd.Flags().IntVar(&shares, "shares", 100, "shares per envelope")
			cmd.Flags().Int64Var(&total, "total-cents", 10_000, "cents per envelope")
		},
		func(f *benchFlags) (bench.Scenario, string, map[string]string, error) {
			sc, err := bench.NewEnvelope(bench.EnvelopeConfig{HTTP: f.http(), Envelopes: envelopes, Shares: shares, TotalCents: total})
			return sc, f.gateway + "/v1/envelopes/{id}/grab", map[string]string{"envelopes": strconv.Itoa(envelopes), "shares": strconv.Itoa(shares)}, err
		})
}
