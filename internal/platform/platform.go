// Package platform assembles a surge process: an embedded nats-server (or a
// connection to an external NATS), the store, the HTTP gateway and a runtime
// host, each optional, started and drained in the right order.
package platform

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/surgefn/surge/gateway"
	"github.com/surgefn/surge/internal/deploy"
	"github.com/surgefn/surge/internal/host"
	"github.com/surgefn/surge/internal/natsauth"
	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/store"
	_ "github.com/surgefn/surge/runtime/store/all" // the store backends
	"github.com/surgefn/surge/runtime/wire"
)

// Options configure a surge process. The zero value of each field means its
// default (see the `surge up --help` text for the flags that set them).
type Options struct {
	// DataDir holds JetStream, the embedded store, the admin token and the
	// embedded server's NATS keys and credentials (nats/).
	DataDir string
	// HTTPAddr is the gateway listen address; "" runs no gateway.
	HTTPAddr string
	// NATSListen is the embedded NATS client address (host:port, port -1 = random).
	NATSListen string
	// NATSSync is how often the embedded server fsyncs its streams: 0 is
	// auto (nats-server's default of 2 minutes on a cluster node whose
	// streams get 3 or more replicas, AutoSyncInterval otherwise), a
	// positive duration that interval, and SyncAlways after every write.
	NATSSync time.Duration
	// Cluster makes the embedded server one node of a NATS cluster.
	Cluster ClusterOptions
	// NATSURL connects to an external NATS instead of embedding one; it
	// may carry user:password@.
	NATSURL string
	// NATSAuth authenticates to the external NATS of NATSURL (credentials
	// or nkey file, TLS). The embedded server needs none: its credentials
	// are generated under <DataDir>/nats.
	NATSAuth natsauth.Client
	// Manifests is a file or directory deployed at start ("" for none).
	Manifests string
	// Runtime runs a runtime host in this process.
	Runtime bool
	// Store is the id of the store backend (store.Register): "buntdb"
	// (default) or "vitess".
	Store string
	// StoreConfig is that backend's settings, one JSON object it decodes
	// strictly (nil: its defaults), e.g. {"shards":4} for buntdb or
	// {"address":"vtgate:15991"} for vitess. A backend keeping files keeps
	// them under <DataDir>/store.
	StoreConfig json.RawMessage
	// AdminToken overrides the generated one.
	AdminToken string
	// AccessLog logs each HTTP request.
	AccessLog bool
	// BodyLimit bounds HTTP request bodies.
	BodyLimit int64
	// ReadTimeout bounds how long a request's headers and body may take to
	// arrive (gateway.Config.ReadTimeout).
	ReadTimeout time.Duration
	// PprofAddr serves net/http/pprof on its own listener ("" for none).
	PprofAddr string
	// PprofNoContention leaves the mutex and block profiles of PprofAddr
	// empty: no lock or blocking contention is sampled.
	PprofNoContention bool
	// MetricsAddr serves GET /metrics on its own listener ("" for none):
	// a process without a gateway (surge runtime) is scraped there.
	MetricsAddr string
	// Clock is injected into functions (tests); nil is the wall clock.
	Clock runtime.Clock
	// Logger receives all logs; nil discards them.
	Logger *slog.Logger
	// JWT configures end-user tokens on routes with spec.http.auth: user.
	JWT JWTOptions
	// TrustedProxies lists the proxies (CIDRs or addresses, comma
	// separated) whose X-Forwarded-For names the client address functions
	// get as Surge-Client-Ip; "" means the connection's peer.
	TrustedProxies string
	// Replicas is how many replicas the streams and KV buckets the process
	// creates get: 1 to host.MaxReplicas, or 0 for auto (1 on a single
	// server, 3 on a cluster of 3 or more; see host.AutoReplicas).
	Replicas int
	// MaxInFlight bounds the calls in flight through the gateway, all
	// functions together: 0 is gateway.DefaultMaxInFlight, negative none.
	MaxInFlight int
	// NoAdaptiveLimit turns off the gateway's adaptive per-function limit.
	NoAdaptiveLimit bool
	// NoLocalCalls sends every sync call of the gateway through NATS, also
	// when the runtime host of this process serves the function (by
	// default such a call runs on a local instance when one has a slot).
	NoLocalCalls bool

	jwtSecret []byte                 // read from JWT.SecretFile by validate
	proxies   gateway.TrustedProxies // parsed from TrustedProxies by validate
}

// Platform is a running surge process.
type Platform struct {
	opts     Options
	log      *slog.Logger
	ns       *server.Server
	local    localHost           // the gateway's way to the runtime host (Options.NoLocalCalls)
	auth     *natsauth.Authority // the embedded server's; nil with an external NATS
	natsAuth natsauth.Client     // how this process's connections authenticate
	gwConn   *nats.Conn
	rtConn   *nats.Conn
	stConn   *nats.Conn
	store    store.Store
	gw       *gateway.Gateway
	host     *host.Host
	lock     *dirLock
	ln       net.Listener
	startup  *startupServer // answers on ln while Start waits; nil once the gateway serves
	pprof    *http.Server
	metrics  *http.Server
	reg      *prometheus.Registry
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	token    string
	natsURL  string
	replicas int // Options.Replicas, auto resolved
	stopOnce sync.Once
}

// Start brings the process up and returns once it serves (the gateway is
// listening, the runtime host has applied every deployed function).
//
// A bad option, a taken port, refused NATS credentials or a store that
// can never work fail at once. An external NATS (NATSURL) that does not
// answer yet, a JetStream without a leader yet, or a store whose service
// is not up yet (store.ErrUnavailable) are waited for: Start retries with
// a backoff from 250ms to 5s, logging one line per attempt, and meanwhile
// the gateway's listener answers /healthz (200) and /readyz (503, naming
// what it waits for) and 503 elsewhere. Cancelling ctx ends the wait:
// Start then returns ctx's error, having released everything.
func Start(ctx context.Context, o Options) (p *Platform, err error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.DataDir == "" {
		o.DataDir = "./data"
	}
	if o.Store == "" {
		o.Store = "buntdb"
	}
	// Everything that can be checked without starting anything is checked
	// first, so a bad flag costs no NATS start and no 15s wait.
	if err := o.validate(); err != nil {
		return nil, err
	}
	p = &Platform{opts: o, log: o.Logger, reg: newRegistry()}
	started := p // `return nil, err` clears p before the deferred cleanup runs
	defer func() {
		if err != nil {
			_ = started.Stop(context.Background())
		}
	}()
	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if o.ownsDataDir() {
		if p.lock, err = lockDataDir(o.DataDir); err != nil {
			return nil, err
		}
	}
	// The listeners are taken before NATS starts: a taken port fails at
	// once, naming the flag.
	if o.HTTPAddr != "" {
		if p.ln, err = net.Listen("tcp", o.HTTPAddr); err != nil {
			return nil, fmt.Errorf("--http %s: %w", o.HTTPAddr, err)
		}
		pending := []string{"nats", "jetstream", "startup"}
		if o.Runtime {
			pending = append([]string{"store"}, pending...)
		}
		p.startup = startStartup(p.ln, p.log, pending...)
	}
	if o.NATSURL == "" {
		host, port, err := splitHostPort(o.NATSListen, "127.0.0.1", 4222)
		if err == nil {
			err = probeListen(host, port)
		}
		if err != nil {
			return nil, fmt.Errorf("--nats-listen %s: %w", o.NATSListen, err)
		}
		if o.Cluster.Listen != "" {
			host, port, err := splitClusterListen(o.Cluster.Listen)
			if err == nil {
				err = probeListen(host, port)
			}
			if err != nil {
				return nil, fmt.Errorf("--cluster-listen %s: %w", o.Cluster.Listen, err)
			}
		}
	}
	if o.PprofAddr != "" {
		if err := p.startPprof(o.PprofAddr, !o.PprofNoContention); err != nil {
			return nil, err
		}
	}
	if o.MetricsAddr != "" {
		if err := p.startMetrics(o.MetricsAddr); err != nil {
			return nil, err
		}
	}
	// The store needs no NATS: it is opened (or waited for) first.
	if o.Runtime {
		if err := p.openStore(ctx); err != nil {
			return nil, err
		}
	}
	if err := p.startNATS(ctx); err != nil {
		return nil, err
	}
	if err := p.waitJetStream(ctx); err != nil {
		return nil, err
	}
	p.startup.set("startup", "loading deployed functions")
	runCtx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel

	if o.HTTPAddr != "" {
		if err := p.startGateway(ctx, runCtx); err != nil {
			return nil, err
		}
	}
	var deployed []manifests.Function
	if o.Manifests != "" {
		if deployed, err = p.deployDir(ctx, o.Manifests); err != nil {
			return nil, err
		}
	}
	if o.Runtime {
		if err := p.startRuntime(ctx, runCtx); err != nil {
			return nil, err
		}
	}
	if p.gw != nil {
		select {
		case <-p.gw.Synced():
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		// Synced may have come before the deploys above reached the
		// gateway's watch: the listener opens only once it routes them.
		if err := waitServes(ctx, p.gw, deployed, p.log); err != nil {
			return nil, err
		}
		if err := p.startup.handOff(ctx); err != nil {
			return nil, fmt.Errorf("--http %s: hand the listener to the gateway: %w", o.HTTPAddr, err)
		}
		p.startup = nil
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			if err := p.gw.Serve(p.ln); err != nil {
				p.log.Error("http server stopped", "err", err)
			}
		}()
		p.log.Info("gateway listening", "addr", "http://"+p.ln.Addr().String())
	}
	return p, nil
}

func (p *Platform) startNATS(ctx context.Context) error {
	url := p.opts.NATSURL
	if url == "" {
		host, port, err := splitHostPort(p.opts.NATSListen, "127.0.0.1", 4222)
		if err != nil {
			return fmt.Errorf("--nats-listen: %w", err)
		}
		auth, err := natsauth.Open(filepath.Join(p.opts.DataDir, "nats"))
		if err != nil {
			return fmt.Errorf("embedded nats auth: %w", err)
		}
		storeDir := filepath.Join(p.opts.DataDir, "jetstream")
		if err := adoptGlobalAccount(storeDir, auth.AccountPublicKey(), p.log); err != nil {
			return err
		}
		so := &server.Options{
			ServerName: "surge",
			Host:       host,
			Port:       port,
			JetStream:  true,
			StoreDir:   storeDir,
			NoSigs:     true,
			NoLog:      true,
			MaxPayload: 8 << 20,
		}
		fsync := syncPolicy(so, p.opts.NATSSync, !p.opts.Cluster.IsZero() && (p.opts.Replicas == 0 || p.opts.Replicas >= 3))
		auth.ConfigureServer(so)
		if !p.opts.Cluster.IsZero() {
			if err := p.opts.Cluster.configureCluster(so, auth, p.opts.DataDir, p.log); err != nil {
				return err
			}
		}
		ns, err := server.NewServer(so)
		if err != nil {
			return fmt.Errorf("embedded nats: %w", err)
		}
		ns.SetLoggerV2(natsLogger{p.log.With("component", "nats", "server", so.ServerName)}, false, false, false)
		ns.Start()
		if !ns.ReadyForConnections(15 * time.Second) {
			ns.Shutdown()
			return errors.New("embedded nats did not become ready within 15s (is the port taken?)")
		}
		auth.Attach(ns)
		p.ns, p.auth = ns, auth
		if !p.opts.Cluster.IsZero() {
			if err := waitJetStreamCluster(ctx, ns, p.log); err != nil {
				return err
			}
		}
		p.natsAuth = natsauth.Client{CredsFile: auth.SurgeCreds()}
		url = ns.ClientURL()
		p.log.Info("embedded nats started", "url", url, "jetstream", storeDir, "creds", auth.Dir(), "fsync", fsync)
		if !p.opts.Cluster.IsZero() {
			p.log.Info("embedded nats is a cluster node", "cluster", so.Cluster.Name, "server", so.ServerName,
				"routes_on", net.JoinHostPort(so.Cluster.Host, strconv.Itoa(so.Cluster.Port)), "routes", p.opts.Cluster.Routes)
		}
	} else {
		p.natsAuth = p.opts.NATSAuth
	}
	p.natsURL = url
	var err error
	if p.gwConn, err = p.connectWait(ctx, "surge-gateway"); err != nil {
		return err
	}
	if p.rtConn, err = p.connectWait(ctx, "surge-runtime"); err != nil {
		return err
	}
	if p.stConn, err = p.connectWait(ctx, "surge-runtime-streams"); err != nil {
		return err
	}
	if p.opts.NATSURL != "" {
		p.log.Info("nats connected", "url", natsauth.Redact(p.gwConn.ConnectedUrl()))
	}
	return nil
}

// waitJetStream waits until JetStream answers and the platform's own
// streams and buckets exist: a NATS cluster that is still forming
// accepts connections before it has a JetStream leader.
func (p *Platform) waitJetStream(ctx context.Context) error {
	js, err := jetstream.New(p.gwConn)
	if err != nil {
		return err
	}
	resolved := false
	return p.waitFor(ctx, "jetstream", func(ctx context.Context) error {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := js.AccountInfo(actx); err != nil {
			return err
		}
		if !resolved {
			// auto asks JetStream how many servers can hold a replica: it
			// answers only now.
			if err := p.resolveReplicas(ctx); err != nil {
				return err
			}
			resolved = true
		}
		err := host.EnsureInfra(actx, js, host.Replication{Replicas: p.replicas, Logger: p.log})
		switch {
		case errors.Is(err, host.ErrReplicas):
			return permanent(err)
		case host.IsNotClustered(err):
			// Waiting does not make a single server a cluster.
			return permanent(fmt.Errorf("--replicas %d needs a NATS cluster of at least %d JetStream servers; this NATS is not clustered (use --replicas 1 or auto): %w",
				p.replicas, p.replicas, err))
		}
		return err
	}, func(err error) string {
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return err.Error() + " (does the NATS server run with JetStream, -js?)"
		}
		return err.Error()
	})
}

func (p *Platform) connect(name string) (*nats.Conn, error) {
	return p.natsAuth.Connect(p.natsURL, nats.Name(name), nats.MaxReconnects(-1), nats.CustomInboxPrefix(natsauth.InboxPrefix),
		nats.ReconnectWait(250*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				p.log.Warn("nats disconnected", "conn", name, "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			p.log.Info("nats reconnected", "conn", name, "url", natsauth.Redact(nc.ConnectedUrl()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			p.log.Warn("nats async error", "conn", name, "subject", subj, "err", err)
		}))
}

// openStore opens the backend registered under opts.Store (runtime/store/all
// imports those surge ships), waiting while it is store.ErrUnavailable.
func (p *Platform) openStore(ctx context.Context) error {
	oc := store.OpenContext{Dir: filepath.Join(p.opts.DataDir, "store"), Logger: p.log.With("store", p.opts.Store)}
	return p.waitFor(ctx, "store", func(ctx context.Context) error {
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		s, err := store.Open(octx, p.opts.Store, oc, p.opts.StoreConfig)
		if err != nil {
			err = fmt.Errorf("store: %w", err)
			if !errors.Is(err, store.ErrUnavailable) {
				return permanent(err)
			}
			return err
		}
		p.store = s
		return nil
	}, func(err error) string { return strings.TrimPrefix(err.Error(), "store: ") })
}

// storeIdentity names the data of the process's store for the host
// heartbeat: the id a local store keeps with its files (or, for one that
// keeps none, its directory on this machine), or the backend id for a
// shared one.
func (p *Platform) storeIdentity() *wire.StoreIdentity {
	if p.store == nil {
		return nil
	}
	b, _ := store.Lookup(p.opts.Store)
	id := &wire.StoreIdentity{Backend: p.opts.Store, ID: p.opts.Store, Shared: !b.Local}
	if b.Local {
		hn, _ := os.Hostname()
		dir, _ := filepath.Abs(filepath.Join(p.opts.DataDir, "store"))
		id.Where = dir + " on " + hn
		id.ID = id.Where
	}
	if s, ok := p.store.(store.Identifier); ok {
		id.ID = s.StoreID()
		if !b.Local {
			id.Where = id.ID
		}
	}
	return id
}

func (p *Platform) startGateway(ctx, runCtx context.Context) error {
	token, err := p.adminToken()
	if err != nil {
		return err
	}
	p.token = token
	js, err := jetstream.New(p.gwConn)
	if err != nil {
		return err
	}
	checks := []gateway.Check{}
	if p.store != nil {
		checks = append(checks, gateway.Check{Name: "store", Fn: p.store.Ping})
	}
	if p.opts.Runtime {
		checks = append(checks, gateway.Check{Name: "runtime", Fn: func(context.Context) error {
			if p.host == nil {
				return errors.New("runtime host not started")
			}
			select {
			case <-p.host.Synced():
				return nil
			default:
				return errors.New("runtime host still applying deployed functions")
			}
		}})
	}
	users, err := p.jwtVerifier(ctx)
	if err != nil {
		return err
	}
	cfg := gateway.Config{NC: p.gwConn, JS: js, Logger: p.log.With("component", "gateway"),
		AdminToken: token, Registry: p.reg, Gatherer: p.reg, BodyLimit: p.opts.BodyLimit, ReadTimeout: p.opts.ReadTimeout,
		Checks: checks, AccessLog: p.opts.AccessLog, TrustedProxies: p.opts.proxies, Replicas: p.replicas,
		MaxInFlight: p.opts.MaxInFlight, NoAdaptiveLimit: p.opts.NoAdaptiveLimit}
	if p.opts.Runtime && !p.opts.NoLocalCalls {
		cfg.Local = &p.local
	}
	if p.auth != nil { // a nil *Authority in the interface would not be nil
		cfg.Creds = p.auth
	}
	if users != nil {
		cfg.Users = users // a nil *Verifier in the interface would not read as "none"
	}
	gw, err := gateway.New(ctx, cfg)
	if err != nil {
		return err
	}
	p.gw = gw
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if err := gw.Run(runCtx); err != nil {
			p.log.Error("gateway route watch stopped", "err", err)
		}
	}()
	return nil
}

func (p *Platform) startRuntime(ctx, runCtx context.Context) error {
	js, err := jetstream.New(p.rtConn)
	if err != nil {
		return err
	}
	sjs, err := jetstream.New(p.stConn)
	if err != nil {
		return err
	}
	h, err := host.New(host.Config{NC: p.rtConn, JS: js, StreamNC: p.stConn, StreamJS: sjs, Store: p.store,
		StoreIdentity: p.storeIdentity(), Logger: p.log.With("component", "runtime"), Registry: p.reg, Clock: p.opts.Clock,
		Replicas: p.replicas})
	if err != nil {
		return err
	}
	p.host = h
	p.local.h.Store(h)
	p.wg.Add(1)
	stopped := make(chan error, 1)
	go func() {
		defer p.wg.Done()
		err := h.Run(runCtx)
		if err != nil {
			p.log.Error("runtime host stopped", "err", err)
		}
		stopped <- err
	}()
	select {
	case <-h.Synced():
	case err := <-stopped:
		if err == nil {
			err = errors.New("stopped")
		}
		return fmt.Errorf("runtime host: %w", err)
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(60 * time.Second):
		return errors.New("runtime host did not apply the deployed functions within 60s")
	}
	p.log.Info("runtime host ready", "host", h.ID())
	return nil
}

// deployDir deploys every manifest under path; unchanged ones are no-ops.
func (p *Platform) deployDir(ctx context.Context, path string) ([]manifests.Function, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		p.log.Warn("manifests directory not found; nothing deployed at start", "path", path)
		return nil, nil
	}
	fns, err := manifests.LoadPath(path)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(p.gwConn)
	if err != nil {
		return nil, err
	}
	if err := host.EnsureInfra(ctx, js, host.Replication{Replicas: p.replicas, Logger: p.log}); err != nil {
		return nil, err
	}
	reg, err := manifests.OpenRegistry(ctx, js, p.replicas)
	if err != nil {
		return nil, err
	}
	// The same checks as the admin API: a set with a bad handler or a
	// route two functions claim deploys nothing, and the process does not
	// start.
	res, err := deploy.New(reg, host.CheckHandler).DeployAll(ctx, fns)
	if err != nil {
		return nil, fmt.Errorf("--manifests %s: %w", path, err)
	}
	for _, r := range res {
		p.log.Info("manifest deployed", "function", r.Function.Metadata.Name, "revision", r.Function.Revision(), "seq", r.Seq, "changed", r.Changed)
	}
	return fns, nil
}

func (p *Platform) adminToken() (string, error) {
	if p.opts.AdminToken != "" {
		return p.opts.AdminToken, nil
	}
	path := filepath.Join(p.opts.DataDir, "admin-token")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= 16 {
		p.log.Info("admin token loaded", "path", path)
		return strings.TrimSpace(string(b)), nil
	}
	buf := make([]byte, 24)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(buf)
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write admin token: %w", err)
	}
	p.log.Info("admin token generated (set SURGE_ADMIN_TOKEN to choose one)", "path", path)
	return tok, nil
}

// Stop drains in order: HTTP stops taking requests and finishes in-flight
// ones, the runtime host drains its functions (stream batches finish and
// are acked), then NATS connections drain, the store closes, and the
// embedded server shuts down.
func (p *Platform) Stop(ctx context.Context) error {
	var errs []error
	p.stopOnce.Do(func() {
		p.startup.close()
		if p.gw != nil {
			if err := p.gw.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("http drain: %w", err))
			}
		}
		if p.ln != nil {
			_ = p.ln.Close() // taken at start; already closed if it served
		}
		if p.pprof != nil {
			_ = p.pprof.Close()
		}
		if p.metrics != nil {
			_ = p.metrics.Close()
		}
		if p.host != nil {
			if err := p.host.Stop(ctx); err != nil {
				errs = append(errs, fmt.Errorf("runtime drain: %w", err))
			}
		}
		if p.cancel != nil {
			p.cancel()
		}
		for _, nc := range []*nats.Conn{p.gwConn, p.rtConn, p.stConn} {
			if nc != nil && !nc.IsClosed() {
				drainConn(nc)
			}
		}
		p.wg.Wait()
		if p.store != nil {
			if err := p.store.Close(); err != nil {
				errs = append(errs, fmt.Errorf("store close: %w", err))
			}
		}
		if p.ns != nil {
			p.ns.Shutdown()
			p.ns.WaitForShutdown()
		}
		if err := p.lock.release(); err != nil {
			errs = append(errs, fmt.Errorf("data dir unlock: %w", err))
		}
		p.log.Info("stopped")
	})
	return errors.Join(errs...)
}

func drainConn(nc *nats.Conn) {
	if nc.Status() != nats.CONNECTED {
		nc.Close()
		return
	}
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		nc.Close()
		return
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		nc.Close()
	}
}

// HTTPURL is the gateway's base URL ("" without a gateway).
func (p *Platform) HTTPURL() string {
	if p.ln == nil {
		return ""
	}
	return "http://" + p.ln.Addr().String()
}

// NATSURL is the URL of the NATS the process uses.
func (p *Platform) NATSURL() string { return p.natsURL }

// NATSAuth is how this process's own connections authenticate: with the
// embedded server, surge.creds under <DataDir>/nats.
func (p *Platform) NATSAuth() natsauth.Client { return p.natsAuth }

// Authority is the embedded server's auth (nil with an external NATS):
// its directory holds surge.creds and client.creds.
func (p *Platform) Authority() *natsauth.Authority { return p.auth }

// AdminToken is the gateway's admin token.
func (p *Platform) AdminToken() string { return p.token }

// Store is the process's store (nil when it has none).
func (p *Platform) Store() store.Store { return p.store }

// Gateway is the HTTP gateway (nil when it has none).
func (p *Platform) Gateway() *gateway.Gateway { return p.gw }

// Host is the runtime host (nil when it has none).
func (p *Platform) Host() *host.Host { return p.host }

// NATSServer is the embedded server (nil with an external NATS).
func (p *Platform) NATSServer() *server.Server { return p.ns }

func splitHostPort(addr, defHost string, defPort int) (string, int, error) {
	if addr == "" {
		return defHost, defPort, nil
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	if host == "" {
		host = defHost
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", portStr, err)
	}
	return host, port, nil
}

// waitServes waits until the gateway routes every function of fns at its
// revision, for at most routeWait: a deploy of one of them from elsewhere
// meanwhile would keep its revision from ever showing, so after that the
// start goes on and says which it did not see.
func waitServes(ctx context.Context, gw *gateway.Gateway, fns []manifests.Function, log *slog.Logger) error {
	deadline := time.Now().Add(routeWait)
	for _, fn := range fns {
		for !gw.Serves(fn.Metadata.Name, fn.Revision()) {
			if time.Now().After(deadline) {
				log.Warn("gateway opens without the deployed revision of a function (deployed again meanwhile?)",
					"function", fn.Metadata.Name, "revision", fn.Revision())
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	return nil
}

// routeWait bounds how long a start waits for the gateway to route the
// manifests it deployed.
const routeWait = 10 * time.Second

// localHost hands the gateway's sync calls to the runtime host of this
// process once it runs (gateway.Config.Local); until then every call goes
// through NATS.
type localHost struct{ h atomic.Pointer[host.Host] }

func (l *localHost) LocalCall(function string, msg *nats.Msg) (func(context.Context) *nats.Msg, bool) {
	if h := l.h.Load(); h != nil {
		return h.LocalCall(function, msg)
	}
	return nil, false
}
