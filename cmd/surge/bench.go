package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/surgefn/surge/internal/bench"
	"github.com/surgefn/surge/internal/natsauth"
)

// benchFlags are the flags every load scenario has.
type benchFlags struct {
	gateway     string
	natsURL     string
	natsAuth    natsauth.Client
	duration    time.Duration
	count       int64
	warmup      time.Duration
	concurrency int
	connections int
	rate        float64
	timeout     time.Duration
	asJSON      bool
	progress    bool
	label       string
	out         string
	noVerify    bool
	cpuPID      int
	drain       time.Duration
	stream      string
	consumer    string
	// jwtSecretFile signs a token per simulated user (--jwt-secret-file).
	jwtSecretFile string
	jwtSecret     []byte
}

func newBenchCmd(env []string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench SCENARIO [flags]",
		Short: "Put load on a running deployment and report throughput, errors and latency",
		Long: `bench is a load generator to run against your own deployment. Each scenario
runs closed-loop (--concurrency workers as fast as they can) or open-loop
(--rate operations per second; latency measured from each request's intended
send time), for --duration or --count operations after --warmup.

It prints throughput, errors by kind and latency percentiles from an HDR
histogram (--json for machines). The order scenarios then wait for the ORDERS
backlog to drain and verify that the store holds exactly the orders that were
acknowledged, and report the end-to-end persisted rate. A failed verification
exits with status 1.

Scenarios that connect to NATS (verification, orders-nats, js-raw) take
--nats-creds: against a surge up, its <data>/nats/surge.creds (verification
reads consumer state and js-raw creates a stream, which client.creds may not).`,
		Example: `  surge bench echo -d 10s -c 64
  surge bench orders-http --rate 5000 -d 30s --nats-creds data/nats/surge.creds
  surge bench orders-nats --nats nats://127.0.0.1:4222 --nats-creds data/nats/surge.creds --inflight 512
  surge bench events --batch 100 --json`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return fmt.Errorf("unknown scenario %q: want one of %s", args[0], strings.Join(bench.Scenarios(), ", "))
		},
	}
	cmd.AddCommand(newBenchEchoCmd(env), newBenchSignInCmd(env), newBenchEventsCmd(env),
		newBenchOrdersHTTPCmd(env), newBenchOrdersNATSCmd(env), newBenchJSRawCmd(env),
		newBenchBaselineCmd(env), newBenchReportCmd(env), newBenchEnvelopeCmd(env),
		newBenchSaleCmd(env))
	return cmd
}

// addBenchFlags adds the flags every scenario has, and --gateway unless
// the scenario never talks HTTP (js-raw).
func addBenchFlags(cmd *cobra.Command, f *benchFlags, concurrency int, gateway bool) {
	fl := cmd.Flags()
	if gateway {
		fl.StringVar(&f.gateway, "gateway", "http://127.0.0.1:8080", "gateway base URL (target of HTTP scenarios, and where verification reads the store)")
	}
	fl.DurationVarP(&f.duration, "duration", "d", 10*time.Second, "how long to measure (after --warmup); ignored with --count")
	fl.Int64VarP(&f.count, "count", "n", 0, "measure this many operations instead of a duration (0: use --duration)")
	fl.DurationVar(&f.warmup, "warmup", time.Second, "run the load this long before measuring")
	fl.IntVarP(&f.concurrency, "concurrency", "c", concurrency, "workers (closed loop: requests in flight)")
	fl.IntVar(&f.connections, "connections", 0, "HTTP: TCP connections (0: one per worker); NATS: connections (0: 1)")
	fl.Float64VarP(&f.rate, "rate", "r", 0, "open loop: operations per second (0: closed loop, as fast as possible)")
	fl.DurationVar(&f.timeout, "timeout", 5*time.Second, "deadline of one operation")
	fl.BoolVar(&f.asJSON, "json", false, "print the result as JSON")
	fl.BoolVar(&f.progress, "progress", false, "draw a progress bar on stderr even when it is not a terminal")
	fl.StringVar(&f.label, "label", "", "name of the result (default: the scenario)")
	fl.StringVar(&f.out, "out", "", "also write the JSON result to this file")
	fl.IntVar(&f.cpuPID, "cpu-pid", 0, "a process on this machine (the surge up under load) whose CPU time to record, from the start of the load until the backlog drained (or the load ended), in the result's target_cpu_seconds (Linux)")
}

// addJWTFlag lets an HTTP scenario call routes with auth: user.
func addJWTFlag(cmd *cobra.Command, f *benchFlags) {
	cmd.Flags().StringVar(&f.jwtSecretFile, "jwt-secret-file", "", "HS256 secret (the gateway's --jwt-secret-file): send each simulated user's own bearer token, for routes with auth: user")
}

// addDrainFlags adds the verification flags of scenarios that wait for a
// stream consumer.
func addDrainFlags(cmd *cobra.Command, f *benchFlags, stream, consumer string) {
	fl := cmd.Flags()
	fl.StringVar(&f.natsURL, "nats", "nats://127.0.0.1:4222", "NATS URL of the platform")
	addNATSAuthFlags(cmd, &f.natsAuth)
	fl.BoolVar(&f.noVerify, "no-verify", false, "skip waiting for the backlog and checking the store")
	fl.DurationVar(&f.drain, "verify-timeout", 2*time.Minute, "how long verification waits for the backlog to drain")
	fl.StringVar(&f.stream, "stream", stream, "stream whose consumer verification waits for")
	fl.StringVar(&f.consumer, "consumer", consumer, "durable consumer verification waits for")
}

func (f *benchFlags) http() bench.HTTPConfig {
	return bench.HTTPConfig{BaseURL: f.gateway, Connections: f.connections, Timeout: f.timeout, JWTSecret: f.jwtSecret}
}

func (f *benchFlags) drainConfig() *bench.DrainConfig {
	if f.noVerify {
		return nil
	}
	return &bench.DrainConfig{NATSURL: f.natsURL, Auth: f.natsAuth, Stream: f.stream, Consumer: f.consumer, Timeout: f.drain}
}

// scenarioCmd builds a scenario subcommand: common flags, then extra, and
// a RunE that builds the scenario with build and runs it.
func scenarioCmd(env []string, use, short string, concurrency int, extra func(*cobra.Command, *benchFlags),
	build func(*benchFlags) (bench.Scenario, string, map[string]string, error)) *cobra.Command {
	f := &benchFlags{}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.jwtSecretFile != "" {
				b, err := os.ReadFile(f.jwtSecretFile)
				if err != nil {
					return fmt.Errorf("--jwt-secret-file: %w", err)
				}
				f.jwtSecret = bytes.TrimRight(b, "\r\n")
			}
			sc, target, params, err := build(f)
			if err != nil {
				return err
			}
			return runBench(cmd, f, sc, target, params)
		},
	}
	addBenchFlags(cmd, f, concurrency, use != "js-raw")
	if extra != nil {
		extra(cmd, f)
	}
	return withEnv(cmd, env)
}

func newBenchEchoCmd(env []string) *cobra.Command {
	var size int
	var path string
	return scenarioCmd(env, "echo", "POST a body to the echo function (a round trip through the gateway and NATS)", 64,
		func(cmd *cobra.Command, f *benchFlags) {
			cmd.Flags().IntVar(&size, "payload-size", 64, "request body size in bytes")
			cmd.Flags().StringVar(&path, "path", "/v1/echo", "route to POST to")
			addJWTFlag(cmd, f)
		},
		func(f *benchFlags) (bench.Scenario, string, map[string]string, error) {
			sc, err := bench.NewEcho(bench.EchoConfig{HTTP: f.http(), Path: path, PayloadSize: size})
			return sc, f.gateway + path, map[string]string{"payload": strconv.Itoa(size) + "B"}, err
		})
}

func newBenchSignInCmd(env []string) *cobra.Command {
	var users int
	return scenarioCmd(env, "signin", "POST /v1/signin for random users of a range unique to the run", 64,
		func(cmd *cobra.Command, _ *benchFlags) {
			cmd.Flags().IntVar(&users, "users", 100_000, "size of the run's user range")
		},
		func(f *benchFlags) (bench.Scenario, string, map[string]string, error) {
			sc, err := bench.NewSignIn(bench.SignInConfig{HTTP: f.http(), Users: users})
			return sc, f.gateway + "/v1/signin", map[string]string{"users": strconv.Itoa(users)}, err
		})
}

func newBenchEventsCmd(env []string) *cobra.Command {
	var batch, items int
	return scenarioCmd(env, "events", "POST /v1/events in batches; verify every item's stats add up", 32,
		func(cmd *cobra.Command, f *benchFlags) {
			cmd.Flags().IntVar(&batch, "batch", 100, "events per request (1..1000)")
			cmd.Flags().IntVar(&items, "items", 100, "distinct item IDs of the run")
			addDrainFlags(cmd, f, "EVENTS", "events-aggregate")
		},
		func(f *benchFlags) (bench.Scenario, string, map[string]string, error) {
			sc, err := bench.NewEvents(bench.EventsConfig{HTTP: f.http(), Batch: batch, Items: items, Drain: f.drainConfig()})
			return sc, f.gateway + "/v1/events", map[string]string{"batch": strconv.Itoa(batch)}, err
		})
}

// orderFlags are the flags of both order scenarios.
type orderFlags struct {
	users, items, sample int
	path                 string // orders-http only
}

func (o *orderFlags) add(cmd *cobra.Command) {
	cmd.Flags().IntVar(&o.users, "users", 1000, "size of the run's user range (random base; verification lists each user's orders)")
	cmd.Flags().IntVar(&o.items, "payload-items", 3, "lines per order (1..100)")
	cmd.Flags().IntVar(&o.sample, "sample", 100, "acknowledged orders verification reads back by ID")
}

func (o *orderFlags) config(f *benchFlags) bench.OrdersConfig {
	return bench.OrdersConfig{HTTP: f.http(), Users: o.users, PayloadItems: o.items, Drain: f.drainConfig(), Sample: o.sample}
}

func (o *orderFlags) params() map[string]string {
	return map[string]string{"items": strconv.Itoa(o.items), "users": strconv.Itoa(o.users)}
}

func newBenchOrdersHTTPCmd(env []string) *cobra.Command {
	o := &orderFlags{}
	var count string
	return scenarioCmd(env, "orders-http", "POST /v1/orders; verify the store holds exactly the accepted orders", 64,
		func(cmd *cobra.Command, f *benchFlags) {
			o.add(cmd)
			cmd.Flags().StringVar(&o.path, "path", "/v1/orders", "route to POST orders to")
			addJWTFlag(cmd, f)
			addDrainFlags(cmd, f, "ORDERS", "order-persist")
			cmd.Flags().StringVar(&count, "verify-count", "", "verify by a command that prints the number of stored orders "+
				"(the peer stack: \"peer count\"), polled until it holds every accepted order, instead of through surge's API")
		},
		func(f *benchFlags) (bench.Scenario, string, map[string]string, error) {
			cfg := o.config(f)
			cfg.Path = o.path
			if count != "" && !f.noVerify {
				cv, err := bench.NewCountVerifier(count, f.drain)
				if err != nil {
					return nil, "", nil, err
				}
				cfg.Count, cfg.Drain = cv, nil
			}
			sc, err := bench.NewOrdersHTTP(cfg)
			return sc, f.gateway + o.path, o.params(), err
		})
}

func newBenchOrdersNATSCmd(env []string) *cobra.Command {
	o := &orderFlags{}
	var inflight, batch int
	var subject string
	return scenarioCmd(env, "orders-nats", "JetStream async publish to orders.submit with Nats-Msg-Id; verify the store", 256,
		func(cmd *cobra.Command, f *benchFlags) {
			o.add(cmd)
			addDrainFlags(cmd, f, "ORDERS", "order-persist")
			cmd.Flags().IntVar(&inflight, "inflight", 0, "max unacknowledged publishes per connection (0: --concurrency)")
			cmd.Flags().StringVar(&subject, "subject", "orders.submit", "subject to publish to")
			cmd.Flags().IntVar(&batch, "batch", 1, "orders per message, as a JSON array (1 to 1000; 1: one order per message)")
		},
		func(f *benchFlags) (bench.Scenario, string, map[string]string, error) {
			cfg := f.jsConfig(inflight, subject, "")
			cfg.Batch = batch
			params := o.params()
			if batch > 1 {
				params["batch"] = strconv.Itoa(batch)
			}
			sc, err := bench.NewOrdersNATS(cfg, o.config(f))
			return sc, f.natsURL + " " + subject, params, err
		})
}

func newBenchJSRawCmd(env []string) *cobra.Command {
	var inflight, items int
	var subject string
	return scenarioCmd(env, "js-raw", "Baseline: raw JetStream async publish with Nats-Msg-Id to a file-backed stream of its own", 256,
		func(cmd *cobra.Command, f *benchFlags) {
			cmd.Flags().StringVar(&f.natsURL, "nats", "nats://127.0.0.1:4222", "NATS URL")
			addNATSAuthFlags(cmd, &f.natsAuth)
			cmd.Flags().IntVar(&inflight, "inflight", 0, "max unacknowledged publishes per connection (0: --concurrency)")
			cmd.Flags().IntVar(&items, "payload-items", 3, "lines per order (1..100)")
			cmd.Flags().StringVar(&subject, "subject", "bench.raw", "subject to publish to")
			cmd.Flags().StringVar(&f.stream, "stream", "BENCH_RAW", "stream created for the run (replaced if it exists) and deleted after it")
			cmd.Flags().BoolVar(&f.noVerify, "no-verify", false, "skip checking the stream holds one message per ack")
		},
		func(f *benchFlags) (bench.Scenario, string, map[string]string, error) {
			sc, err := bench.NewJSRaw(f.jsConfig(inflight, subject, f.stream), items)
			return sc, f.natsURL + " " + subject, map[string]string{"items": strconv.Itoa(items)}, err
		})
}

func (f *benchFlags) jsConfig(inflight int, subject, rawStream string) bench.JSConfig {
	return bench.JSConfig{URL: f.natsURL, Auth: f.natsAuth, Connections: f.connections, InFlight: inflight, Timeout: f.timeout,
		Subject: subject, RawStream: rawStream}
}

// runBench runs sc and prints the result; a failed verification is an error.
func runBench(cmd *cobra.Command, f *benchFlags, sc bench.Scenario, target string, params map[string]string) error {
	opts := bench.Options{Label: f.label, Target: target, Duration: f.duration, Count: f.count, Warmup: f.warmup,
		Concurrency: f.concurrency, Rate: f.rate, NoVerify: f.noVerify, Params: params, CPUPID: f.cpuPID}
	if f.progress || term.IsTerminal(int(os.Stderr.Fd())) {
		opts.Progress = os.Stderr
	}
	ctx, stop := signal.NotifyContext(contextOf(cmd), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := bench.Run(ctx, sc, opts)
	if res != nil {
		if werr := printResult(cmd, f, res); werr != nil {
			return errors.Join(err, werr)
		}
	}
	if err != nil {
		return err
	}
	if res.Verify != nil && !res.Verify.Passed {
		return fmt.Errorf("%s: verification failed", res.Label)
	}
	return nil
}

func printResult(cmd *cobra.Command, f *benchFlags, res *bench.Result) error {
	if f.out != "" {
		file, err := os.Create(f.out)
		if err != nil {
			return err
		}
		if err := res.WriteJSON(file); err != nil {
			file.Close()
			return err
		}
		if err := file.Close(); err != nil {
			return err
		}
	}
	if f.asJSON {
		return res.WriteJSON(cmd.OutOrStdout())
	}
	return res.WriteTable(cmd.OutOrStdout())
}

// contextOf is cmd's context, or Background when cobra has none (tests
// that call RunE directly).
func contextOf(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

func newBenchBaselineCmd(env []string) *cobra.Command {
	cfg := bench.BaselineConfig{}
	cmd := &cobra.Command{
		Use:    "serve-baseline --kind echo|nats-echo",
		Short:  "Serve a baseline for `make bench`: a bare Echo echo server, or Echo -> NATS request -> in-process responder",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(contextOf(cmd), os.Interrupt, syscall.SIGTERM)
			defer stop()
			// Scheduled as surge up is (--gomaxprocs auto), so that a ratio
			// to a baseline compares like with like.
			if err := setGOMAXPROCS("auto", slog.New(slog.DiscardHandler)); err != nil {
				return err
			}
			b, err := bench.StartBaseline(cfg)
			if err != nil {
				return err
			}
			// The first line of stdout is the URL; scripts read it.
			fmt.Fprintln(cmd.OutOrStdout(), b.URL())
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return b.Close(sctx)
		},
	}
	cmd.Flags().StringVar(&cfg.Kind, "kind", "", "echo (bare Echo handler) or nats-echo (Echo -> NATS request -> responder)")
	cmd.Flags().StringVar(&cfg.HTTPAddr, "http", "127.0.0.1:0", "listen address (port 0: a free port, printed on stdout)")
	cmd.Flags().StringVar(&cfg.NATSURL, "nats", "", "NATS URL (nats-echo)")
	addNATSAuthFlags(cmd, &cfg.Auth)
	cmd.Flags().StringVar(&cfg.Subject, "subject", "bench.echo", "the responder's subject (nats-echo)")
	return withEnv(cmd, env)
}

func newBenchReportCmd(env []string) *cobra.Command {
	o := bench.ReportOptions{}
	var out string
	cmd := &cobra.Command{
		Use:   "report RESULT.json... --out BENCHMARKS.md",
		Short: "Write BENCHMARKS.md from `surge bench --out` results: machine, versions, the table, ratios to the baselines",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Results = args
			rep, err := bench.BuildReport(o)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if out != "" && out != "-" {
				file, err := os.Create(out)
				if err != nil {
					return err
				}
				defer file.Close()
				w = file
			}
			return rep.WriteMarkdown(w)
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "BENCHMARKS.md", "where to write the report (- for stdout)")
	cmd.Flags().StringVar(&o.Commit, "commit", "", "surge commit the results are of")
	cmd.Flags().StringVar(&o.RSSSamples, "rss-samples", "", "file of VmRSS samples of `surge up`, one KiB figure per line")
	cmd.Flags().StringVar(&o.GrowthRSS, "growth-rss", "", "file of \"LABEL KIB\" lines: the store-growth surge up's RSS at the start and after each run")
	cmd.Flags().StringVar(&o.GrowthRSSRest, "growth-rss-rest", "", "file of \"LABEL KIB\" lines: the same checkpoints read at rest (once idle, 11 s on, after a GC); the RSS slope target is read from them")
	cmd.Flags().StringVar(&o.OwnRSS, "own-rss", "", "file of \"LABEL KIB\" lines: the peak RSS of a run's own surge up (the Vitess run's)")
	cmd.Flags().IntVar(&o.PID, "pid", 0, "`surge up` process whose peak RSS (VmHWM) to include")
	cmd.Flags().Int64Var(&o.StartedUnix, "started", 0, "Unix time the bench run started (for its total duration)")
	cmd.Flags().StringVar(&o.LoadAvg, "loadavg", "", "the machine's load average when the bench started")
	cmd.Flags().StringArrayVar(&o.Notes, "note", nil, "a sentence for the report's Notes section (repeatable)")
	return withEnv(cmd, env)
}
