package main

import (
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/surgefn/surge/internal/bench"
)

func newBenchSaleCmd(env []string) *cobra.Command {
	var stock int64
	var token string
	return scenarioCmd(env, "sale", "a flash sale of one hot SKU: every operation a new buyer; verify exactly --stock units sold and each order stored", 64,
		func(cmd *cobra.Command, f *benchFlags) {
			cmd.Flags().Int64Var(&stock, "stock", 1000, "units on sale (far below the run's demand)")
			cmd.Flags().StringVar(&token, "admin-token", "", "admin token that creates the sale (default: SURGE_ADMIN_TOKEN)")
			addDrainFlags(cmd, f, "SALES_LEDGER", "sale-persist")
		},
		func(f *benchFlags) (bench.Scenario, string, map[string]string, error) {
			if token == "" {
				token = os.Getenv("SURGE_ADMIN_TOKEN")
			}
			sc, err := bench.NewSale(bench.SaleConfig{HTTP: f.http(), Stock: stock, AdminToken: token, Drain: f.drainConfig()})
			if err != nil {
				return nil, "", nil, err
			}
			return sc, f.gateway + "/v1/sales/" + sc.SaleID() + "/orders", map[string]string{"stock": strconv.FormatInt(stock, 10)}, nil
		})
}
