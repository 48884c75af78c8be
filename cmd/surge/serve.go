package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/surgefn/surge/gateway"
	"github.com/surgefn/surge/internal/natsauth"
	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/runtime/store"
	"github.com/surgefn/surge/runtime/store/buntstore"
)

// serverFlags are the flags of up, gateway and runtime.
type serverFlags struct {
	opts         platform.Options
	log          logOptions
	drainTimeout time.Duration
	// pprofContention is --pprof-contention (opts.PprofNoContention
	// negated: the options' zero value is the flag's default).
	pprofContention bool
	memoryLimit     string
	gomaxprocs      string
	storeFlags      *pflag.FlagSet // nil: the command has no store
}

func addLogFlags(cmd *cobra.Command, f *serverFlags) {
	cmd.Flags().StringVar(&f.log.Level, "log-level", "info", "log level: debug, info, warn, error")
	cmd.Flags().StringVar(&f.log.Format, "log-format", "text", "log format: text or json")
	cmd.Flags().DurationVar(&f.drainTimeout, "drain-timeout", 30*time.Second, "how long Ctrl-C waits for in-flight work to finish")
	cmd.Flags().StringVar(&f.opts.PprofAddr, "pprof", "", "serve Go profiling (net/http/pprof) on this address, e.g. 127.0.0.1:6060")
	cmd.Flags().BoolVar(&f.pprofContention, "pprof-contention", true, "with --pprof, sample lock and blocking contention for the mutex and block profiles (1 in 20 mutex waits, blocking over 10µs); false leaves them empty and spares every blocking operation the sampling")
	cmd.Flags().StringVar(&f.memoryLimit, "memory-limit", "auto", "soft Go heap limit (GC works harder near it): auto = 75% of the cgroup's memory limit, else of the machine's memory; a size such as 2GiB; 0 = none. GOMEMLIMIT wins if set")
	cmd.Flags().StringVar(&f.gomaxprocs, "gomaxprocs", "auto", "Go scheduler threads running Go code at once: auto = Go's default (one per CPU), raised to at least 8 unless a cgroup CPU quota applies (README, Performance); a number; GOMAXPROCS wins if set")
}

// minAutoProcs is the least GOMAXPROCS --gomaxprocs auto gives a process
// that may use every CPU. With one P per core on a small machine, a P
// whose thread the kernel preempted (for the NATS server's or another
// process's work), or that runs the GC's mark worker, keeps the
// goroutines queued on it waiting, up to the scheduler's 10ms preemption
// tick, while the other P is busy too. More Ps than cores hand those
// waits to the kernel's scheduler, which interleaves threads far finer.
// Measured on 2 cores, the load generator on the same cores, orders-http
// closed loop: 12.5k/s -> 14.1k/s on a fresh store, 11.9k/s -> 13.6k/s
// with 500k orders stored; open loop at 5.5k/s, p90 7.8ms -> 3.6ms on the
// fresh store (with 500k stored the tail is the GC's, about the same).
// 4, 16 and 32 Ps did about as well as 8 or a little worse.
const minAutoProcs = 8

// autoProcs is --gomaxprocs auto: def (Go's default) when a cgroup CPU
// quota limits the process (more runnable threads than the quota only get
// it throttled; Go rounds a quota up, to at least 2, so def alone does not
// tell), else at least minAutoProcs.
func autoProcs(def int, quota bool) int {
	if quota {
		return def
	}
	return max(def, minAutoProcs)
}

// cgroupRoot is where the cgroup file systems are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// cpuQuota reports whether a cgroup CPU quota applies to the process whose
// /proc/<pid>/cgroup is procCgroup: cpu.max (cgroup v2) or
// cpu.cfs_quota_us (v1) of its cgroup or of any ancestor, under root. A
// file that cannot be read counts as no quota.
func cpuQuota(root string, procCgroup []byte) bool {
	for _, line := range strings.Split(string(procCgroup), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		var dirs []string
		var limited func(string) bool
		switch {
		case f[0] == "0" && f[1] == "":
			dirs, limited = []string{root, filepath.Join(root, "unified")}, quotaV2
		case slices.Contains(strings.Split(f[1], ","), "cpu"):
			dirs, limited = []string{filepath.Join(root, "cpu"), filepath.Join(root, "cpu,cpuacct")}, quotaV1
		default:
			continue
		}
		for _, d := range dirs {
			for p := filepath.Clean("/" + f[2]); ; p = filepath.Dir(p) {
				if limited(filepath.Join(d, p)) {
					return true
				}
				if p == "/" {
					break
				}
			}
		}
	}
	return false
}

// quotaV2: cpu.max is "max PERIOD" without a quota, "QUOTA PERIOD" with one.
func quotaV2(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "cpu.max"))
	q, _, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	return err == nil && q != "" && q != "max"
}

// quotaV1: cpu.cfs_quota_us is -1 without a quota.
func quotaV1(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "cpu.cfs_quota_us"))
	q, perr := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return err == nil && perr == nil && q > 0
}

// setGOMAXPROCS applies --gomaxprocs; GOMAXPROCS, when set, wins.
func setGOMAXPROCS(flag string, log *slog.Logger) error {
	if os.Getenv("GOMAXPROCS") != "" {
		return nil
	}
	def := goruntime.GOMAXPROCS(0)
	procCgroup, _ := os.ReadFile("/proc/self/cgroup")
	quota := cpuQuota(cgroupRoot, procCgroup)
	n := autoProcs(def, quota)
	if flag != "auto" {
		v, err := strconv.Atoi(flag)
		if err != nil || v < 1 {
			return fmt.Errorf("--gomaxprocs: want auto or a number of at least 1, got %q", flag)
		}
		n = v
	}
	if n != def {
		goruntime.GOMAXPROCS(n)
	}
	log.Debug("gomaxprocs", "procs", n, "cpus", goruntime.NumCPU(), "cpu_quota", quota)
	return nil
}

// storeFlags are the store backends' settings on the command line. Each
// one the user sets (by flag or SURGE_ variable) for the backend --store
// names becomes the field key of that backend's config, the JSON object it
// decodes strictly (platform.Options.StoreConfig); the others keep the
// backend's defaults, which are the flags' defaults.
var storeFlags = []struct{ flag, backend, key string }{
	{"shards", "buntdb", "shards"},
	{"orders-engine", "buntdb", "orders"},
	{"vtgate", "vitess", "address"},
	{"vtgate-keyspace", "vitess", "keyspace"},
	{"vtgate-max-open", "vitess", "max_open_conns"},
	{"vtgate-max-idle", "vitess", "max_idle_conns"},
	{"vtgate-conn-max-lifetime", "vitess", "conn_max_lifetime"},
}

func addStoreFlags(cmd *cobra.Command, f *serverFlags) {
	fs := cmd.Flags()
	fs.StringVar(&f.opts.Store, "store", "buntdb", "order/sign-in/SMS/event store: buntdb or vitess")
	fs.Int("shards", 8, "number of buntdb shard files (user-ID hash); unset, an existing store keeps its own count")
	fs.String("orders-engine", buntstore.DefaultOrders, "where the embedded store keeps orders: buntdb (in memory, in the shard files) or pebble (a Pebble LSM tree under <data>/store/orders.pebble: memory stays flat as orders grow); fixed when the store is created: unset, an existing store keeps its own")
	fs.String("vtgate", "", "vtgate gRPC address when --store vitess")
	fs.String("vtgate-keyspace", "commerce", "keyspace holding manifests/vitess/commerce when --store vitess")
	fs.Int("vtgate-max-open", 64, "most open connections to vtgate (statements in flight)")
	fs.Int("vtgate-max-idle", 0, "connections to vtgate kept open while idle (0: as many as --vtgate-max-open)")
	fs.Duration("vtgate-conn-max-lifetime", 30*time.Minute, "how long a vtgate connection is reused before it is replaced")
	f.storeFlags = fs
}

// storeConfig is the config of backend from the store flags set in fs.
func storeConfig(fs *pflag.FlagSet, backend string) (json.RawMessage, error) {
	cfg := map[string]any{}
	for _, sf := range storeFlags {
		fl := fs.Lookup(sf.flag)
		if fl == nil || !fl.Changed {
			continue
		}
		if sf.backend != backend {
			if _, known := store.Lookup(backend); !known {
				continue // the unknown --store is the error, reported by the platform
			}
			// Silently dropping it would start another store than meant,
			// e.g. a local buntdb when --vtgate was set but --store not.
			return nil, fmt.Errorf("--%s (or %s) is a setting of --store %s, but --store is %s", sf.flag, envName(sf.flag), sf.backend, backend)
		}
		if fl.Value.Type() == "int" {
			n, err := fs.GetInt(sf.flag)
			if err != nil {
				return nil, fmt.Errorf("--%s: %w", sf.flag, err)
			}
			cfg[sf.key] = n
		} else {
			cfg[sf.key] = fl.Value.String() // strings, and durations such as "30m0s"
		}
	}
	if len(cfg) == 0 {
		return nil, nil
	}
	return json.Marshal(cfg)
}

// addNATSAuthFlags adds the flags of how a process authenticates to a
// NATS it connects to (not the embedded server of `surge up`, whose
// credentials are generated under <data>/nats).
func addNATSAuthFlags(cmd *cobra.Command, a *natsauth.Client) {
	fs := cmd.Flags()
	fs.StringVar(&a.CredsFile, "nats-creds", "", "NATS credentials file (user JWT and nkey seed), e.g. <data>/nats/surge.creds of a `surge up` (user:password@ in the URL also works)")
	fs.StringVar(&a.NKeyFile, "nats-nkey", "", "file holding the nkey seed of a NATS user")
	fs.StringVar(&a.TLSCA, "nats-tls-ca", "", "PEM file of the CAs that sign the NATS server's certificate")
	fs.StringVar(&a.TLSCert, "nats-tls-cert", "", "PEM client certificate for NATS TLS (with --nats-tls-key)")
	fs.StringVar(&a.TLSKey, "nats-tls-key", "", "PEM key of --nats-tls-cert")
}

// addClusterFlags are the flags that make the embedded server a cluster node.
func addClusterFlags(cmd *cobra.Command, c *platform.ClusterOptions) {
	fs := cmd.Flags()
	fs.StringVar(&c.Name, "cluster-name", "", "make the embedded NATS server a node of the NATS cluster of this name (the same on every node)")
	fs.StringVar(&c.Listen, "cluster-listen", "", "HOST:PORT the embedded server accepts cluster routes on, e.g. 0.0.0.0:6222 (with --cluster-name)")
	fs.StringVar(&c.Routes, "routes", "", "the nodes' route URLs, comma separated: nats-route://HOST:PORT,... (a node may list itself)")
	fs.StringVar(&c.ServerName, "server-name", "", "this node's name in the cluster, unique per node (default: the one in <data>/server-name, else hostname-PORT)")
	fs.StringVar(&c.TLSCert, "cluster-tls-cert", "", "PEM certificate this node presents on cluster routes (server and client auth); with --cluster-tls-key and --cluster-tls-ca, routes are TLS")
	fs.StringVar(&c.TLSKey, "cluster-tls-key", "", "PEM key of --cluster-tls-cert")
	fs.StringVar(&c.TLSCA, "cluster-tls-ca", "", "PEM file of the CAs whose certificates a route peer must present")
}

func addHTTPFlags(cmd *cobra.Command, f *serverFlags) {
	cmd.Flags().StringVar(&f.opts.HTTPAddr, "http", "127.0.0.1:8080", "gateway listen address")
	cmd.Flags().BoolVar(&f.opts.AccessLog, "access-log", true, "log every HTTP request")
	cmd.Flags().Int64Var(&f.opts.BodyLimit, "body-limit", 1<<20, "largest request body in bytes (413 beyond)")
	cmd.Flags().DurationVar(&f.opts.ReadTimeout, "read-timeout", gateway.DefaultReadTimeout, "longest a request's headers and body may take to arrive, from when the gateway starts reading it (408 body_timeout beyond, and the connection closes; the function's own time is not counted); 0 = the default, -1s = no bound")
	cmd.Flags().StringVar(&f.opts.TrustedProxies, "trusted-proxies", "", "comma-separated CIDRs or addresses of the proxies whose X-Forwarded-For names the client address functions get as Surge-Client-Ip (default: the connection's peer)")
	cmd.Flags().IntVar(&f.opts.MaxInFlight, "max-inflight", gateway.DefaultMaxInFlight, "most calls in flight through this gateway, all functions together; beyond, 503 overloaded with Retry-After at once (bounds memory under a flood; -1 for no bound)")
	cmd.Flags().BoolVar(&f.opts.NoAdaptiveLimit, "no-adaptive-limit", false, "turn off the adaptive per-function limit of sync calls in flight (by default a call that would queue past its function's unloaded latency is refused at once with 503 overloaded and Retry-After; without it excess calls queue at the runtime hosts until half their timeout)")
	addJWTFlags(cmd, f)
}

// addJWTFlags are the gateway's end-user auth flags, for routes with
// spec.http.auth: user.
func addJWTFlags(cmd *cobra.Command, f *serverFlags) {
	j := &f.opts.JWT
	cmd.Flags().StringVar(&j.SecretFile, "jwt-secret-file", "", "file holding the HS256 secret (at least 32 bytes) that signs end-user JWTs, for routes with auth: user")
	cmd.Flags().StringVar(&j.JWKSURL, "jwks-url", "", "URL of the JWKS whose RS256/ES256 keys sign end-user JWTs (refreshed every 15m, and on an unknown kid at most every 10s); instead of --jwt-secret-file")
	cmd.Flags().StringVar(&j.Issuer, "jwt-issuer", "", "required iss claim of end-user JWTs (unchecked when empty)")
	cmd.Flags().StringVar(&j.Audience, "jwt-audience", "", "required aud claim of end-user JWTs (unchecked when empty)")
}

// autoMemoryRatio is the share of the available memory --memory-limit auto
// gives the Go heap: the rest is for stacks, the OS and other processes.
const autoMemoryRatio = 0.75

// setMemoryLimit applies --memory-limit. A limit is soft: near it the GC
// runs more often, but it is not a cap, and a limit below the live heap
// makes the GC run almost continuously (a fixed 448MiB did that once the
// embedded store held about 400k orders, and halved throughput), so the
// default follows the memory the process may really use. GOMEMLIMIT, when
// set, wins.
func setMemoryLimit(flag string, log *slog.Logger) error {
	if os.Getenv("GOMEMLIMIT") != "" {
		return nil
	}
	if flag == "auto" {
		limit, err := memlimit.Set(memlimit.WithRatio(autoMemoryRatio),
			memlimit.WithProvider(memlimit.ApplyFallback(memlimit.FromCgroup, memlimit.FromSystem)))
		if err != nil {
			log.Warn("--memory-limit auto: no memory limit found; the Go heap is not limited", "err", err)
			return nil
		}
		log.Debug("memory limit", "bytes", limit)
		return nil
	}
	limit, err := parseSize(flag)
	if err != nil {
		return fmt.Errorf("--memory-limit: %w (want auto, 0 or a size such as 512MiB)", err)
	}
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
	return nil
}

// serve starts the platform, waits for SIGINT/SIGTERM, then drains. A
// second signal stops at once.
func serve(f *serverFlags) error {
	log, out, err := newLogger(f.log)
	if err != nil {
		return err
	}
	defer out.Close()
	routeGRPCLogs(log)
	if err := setMemoryLimit(f.memoryLimit, log); err != nil {
		return err
	}
	if err := setGOMAXPROCS(f.gomaxprocs, log); err != nil {
		return err
	}
	f.opts.Logger = log
	f.opts.PprofNoContention = !f.pprofContention
	f.opts.AdminToken = os.Getenv("SURGE_ADMIN_TOKEN")
	if f.storeFlags != nil {
		if f.opts.StoreConfig, err = storeConfig(f.storeFlags, f.opts.Store); err != nil {
			return err
		}
	}
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	startCtx, cancel := context.WithCancel(context.Background())
	var stopped atomic.Bool // a signal ended the start, which may be waiting for NATS or the store
	go func() {
		select {
		case <-sig:
			stopped.Store(true)
			cancel()
		case <-startCtx.Done():
		}
	}()
	p, err := platform.Start(startCtx, f.opts)
	cancel()
	if err != nil {
		if stopped.Load() && errors.Is(err, context.Canceled) {
			log.Info("signal received while starting; stopped", "while", err.Error())
			return nil
		}
		return err
	}
	if p.HTTPURL() != "" && f.opts.AdminToken == "" {
		creds := ""
		if a := p.Authority(); a != nil {
			creds = ", client creds in " + a.ClientCreds()
		}
		fmt.Fprintf(os.Stderr, "surge: gateway on %s, NATS on %s, admin token in %s/admin-token%s\n",
			p.HTTPURL(), natsauth.Redact(p.NATSURL()), f.opts.DataDir, creds)
	}
	s := <-sig
	log.Info("signal received; draining (send again to stop at once)", "signal", s.String(), "timeout", f.drainTimeout)
	ctx, stop := context.WithTimeout(context.Background(), f.drainTimeout)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- p.Stop(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			log.Error("drain incomplete", "err", err)
			return err
		}
		return nil
	case <-sig:
		log.Warn("second signal; exiting without finishing the drain")
		return errors.New("interrupted during drain")
	}
}

func newUpCmd(env []string) *cobra.Command {
	f := &serverFlags{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the whole platform in one process (embedded NATS, gateway, runtime, store)",
		Long: `up runs the single-node, batteries-included platform: an embedded nats-server
with JetStream (data under --data), the HTTP gateway, a runtime host that runs
every deployed function, and the embedded store (--store buntdb: orders in
Pebble, the rest in buntdb shards). Every manifest under --manifests is
deployed at start (an unchanged one is a no-op).

The embedded server refuses anonymous clients. At the first start it
generates its keys and two credentials files under <data>/nats (kept across
restarts): client.creds for applications (call fn.> functions, publish
orders.submit and events.track, nats micro ls) and surge.creds for surge's
own processes (surge gateway/runtime --nats-creds, surge bench). Connect with
  nats --creds <data>/nats/client.creds request fn.echo '{}'
surge creds NAME prints the credentials of an external function.

With --nats an external NATS is used instead; --nats-creds, --nats-nkey and
--nats-tls-* say how to authenticate to it.

Cluster: --cluster-name, --cluster-listen and --routes make the embedded
server one node of a NATS cluster, so three machines each running surge up
form a cluster with no separate nats-server:
  surge up --store vitess --vtgate VTGATE:15991 --nats-listen 0.0.0.0:4222 \
    --cluster-name surge --cluster-listen 0.0.0.0:6222 \
    --routes nats-route://m1:6222,nats-route://m2:6222,nats-route://m3:6222
Every node must hold the same NATS keys: create them once with
surge nats-keys --data DIR and copy DIR/nats to every node's --data before
its first start. Routes authenticate with a secret derived from those keys; a
node with other keys is refused (logged as "cluster route refused").
A deployment with more than one runtime host needs --store vitess: a host
whose embedded store would split the data refuses to start.

A sync call runs on this process's own instance of its function while one
has a slot free, without the NATS round trip; with every local slot taken
it goes through NATS to the function's queue group, on any host
(--no-local-calls: always through NATS).

Ctrl-C drains: HTTP stops taking requests, in-flight calls and stream batches
finish and are acked, then NATS stops.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			f.opts.Runtime = true
			return serve(f)
		},
	}
	cmd.Flags().StringVar(&f.opts.DataDir, "data", "./data", "all state: JetStream, store, admin token, NATS keys and credentials (nats/)")
	addHTTPFlags(cmd, f)
	cmd.Flags().BoolVar(&f.opts.NoLocalCalls, "no-local-calls", false, "send every sync call through NATS to the function's queue group (by default the gateway runs a call on this process's own instance of the function when one has a slot free, skipping the NATS request and its reply, and sends it through NATS when every local slot is taken)")
	cmd.Flags().StringVar(&f.opts.NATSListen, "nats-listen", "127.0.0.1:4222", "embedded NATS client address, for direct publishing")
	cmd.Flags().Var(syncValue{&f.opts.NATSSync}, "nats-sync",
		"how often the embedded server fsyncs its streams (what a machine crash or power loss can take of acked messages): "+
			"auto = nats-server's default (2m) on a cluster node whose streams get 3 or more replicas, every 1s otherwise; "+
			"always = after every write (about 12x fewer single-order messages per second); or an interval")
	addClusterFlags(cmd, &f.opts.Cluster)
	cmd.Flags().StringVar(&f.opts.Manifests, "manifests", "./manifests", "manifests deployed at start (file or directory)")
	cmd.Flags().StringVar(&f.opts.NATSURL, "nats", "", "use an external NATS cluster instead of the embedded server")
	addNATSAuthFlags(cmd, &f.opts.NATSAuth)
	addReplicasFlag(cmd, f)
	addStoreFlags(cmd, f)
	addLogFlags(cmd, f)
	return withEnv(cmd, env)
}

func newGatewayCmd(env []string) *cobra.Command {
	f := &serverFlags{}
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Run only the HTTP gateway against a shared NATS (scale-out)",
		Long: `gateway runs the HTTP gateway alone against a shared NATS: the embedded
server of a surge up (--nats-creds <its data>/nats/surge.creds) or an
external NATS (--nats-creds, --nats-nkey, --nats-tls-*, user:password@).

Started before its NATS answers, it waits (retrying every 250ms to 5s, one
log line per attempt) and /readyz is 503 naming what it waits for; refused
credentials stop it at once.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if f.opts.NATSURL == "" {
				return errors.New("--nats URL is required")
			}
			return serve(f)
		},
	}
	cmd.Flags().StringVar(&f.opts.DataDir, "data", "./data", "where the admin token is read from or generated into")
	addHTTPFlags(cmd, f)
	cmd.Flags().StringVar(&f.opts.NATSURL, "nats", "", "NATS URL(s), comma separated (required)")
	addNATSAuthFlags(cmd, &f.opts.NATSAuth)
	addReplicasFlag(cmd, f)
	addLogFlags(cmd, f)
	return withEnv(cmd, env)
}

func newRuntimeCmd(env []string) *cobra.Command {
	f := &serverFlags{}
	cmd := &cobra.Command{
		Use:   "runtime",
		Short: "Run only a runtime host (functions) against a shared NATS (scale-out)",
		Long: `runtime runs a runtime host alone against a shared NATS: the embedded
server of a surge up (--nats-creds <its data>/nats/surge.creds) or an
external NATS (--nats-creds, --nats-nkey, --nats-tls-*, user:password@).

Started before its NATS or its store (vtgate) answers, it waits (retrying
every 250ms to 5s, one log line per attempt); refused credentials, a
malformed --vtgate or a keyspace without the surge schema stop it at once.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if f.opts.NATSURL == "" {
				return errors.New("--nats URL is required")
			}
			f.opts.Runtime = true
			f.opts.HTTPAddr = ""
			return serve(f)
		},
	}
	cmd.Flags().StringVar(&f.opts.DataDir, "data", "./data", "store data (buntdb)")
	cmd.Flags().StringVar(&f.opts.NATSURL, "nats", "", "NATS URL(s), comma separated (required)")
	addNATSAuthFlags(cmd, &f.opts.NATSAuth)
	addReplicasFlag(cmd, f)
	addStoreFlags(cmd, f)
	addLogFlags(cmd, f)
	cmd.Flags().StringVar(&f.opts.MetricsAddr, "metrics", "", "serve Prometheus metrics (GET /metrics) on this address, e.g. 127.0.0.1:9464; a runtime host has no --http")
	return withEnv(cmd, env)
}

// parseSize reads a byte count: a number with an optional KiB, MiB or GiB
// suffix (or KB, MB, GB as the same powers of two).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size like 384MiB", s)
	}
	return n * mult, nil
}
