package platform

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/surgefn/surge/internal/natsauth"
)

// ClusterOptions make the embedded nats-server one node of a NATS cluster
// (surge up --cluster-name --cluster-listen --routes). The zero value runs
// a single server. Every node must hold the same <data>/nats keys: routes
// authenticate with a secret derived from them (natsauth.RouteSecret), and
// every node must trust the same operator and accounts.
type ClusterOptions struct {
	// Name is the cluster's name, the same on every node (--cluster-name).
	Name string
	// Listen is the HOST:PORT this node accepts routes on (--cluster-listen);
	// the other nodes' Routes name it.
	Listen string
	// Routes are the route URLs of the nodes, comma separated
	// (nats-route://HOST:PORT); a node may list itself, so every node can
	// be given the same list.
	Routes string
	// ServerName names this node in the cluster, unique per node
	// (--server-name). Default: the one persisted in <data>/server-name,
	// else hostname-PORT (the cluster port), then persisted: JetStream
	// knows its peers by name, so it must not change across restarts.
	ServerName string
	// TLSCert, TLSKey and TLSCA turn on TLS for the routes
	// (--cluster-tls-cert/-key/-ca): every node presents TLSCert (valid for
	// server and client auth: a route is dialled by either side) and
	// accepts only peers whose certificate TLSCA signed. Without them the
	// routes are authenticated but not encrypted: a private network only.
	TLSCert, TLSKey, TLSCA string

	routes []*url.URL  // parsed from Routes by validate
	tls    *tls.Config // loaded from the TLS files by validate
}

// IsZero reports whether c configures no cluster.
func (c ClusterOptions) IsZero() bool {
	return c.Name == "" && c.Listen == "" && c.Routes == "" && c.ServerName == "" &&
		c.TLSCert == "" && c.TLSKey == "" && c.TLSCA == ""
}

// serverNameFile holds the embedded server's cluster name under the data
// directory, outside nats/: <data>/nats is copied from node to node, a
// server name must not be.
const serverNameFile = "server-name"

// namePattern is what nats-server accepts in a cluster or server name
// (no spaces), kept to characters that need no quoting anywhere.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// validate checks the cluster flags and their combinations, and parses
// the routes.
func (c *ClusterOptions) validate(external bool) []error {
	if c.IsZero() {
		return nil
	}
	if external {
		return []error{errors.New("--cluster-name, --cluster-listen, --routes, --server-name and --cluster-tls-* configure the embedded server; " +
			"with --nats the external NATS cluster is configured on its own servers")}
	}
	var errs []error
	if c.Name == "" {
		var set []string
		for _, f := range []struct{ flag, v string }{{"--cluster-listen", c.Listen}, {"--routes", c.Routes}, {"--server-name", c.ServerName}} {
			if f.v != "" {
				set = append(set, f.flag)
			}
		}
		errs = append(errs, fmt.Errorf("%s need --cluster-name: the name of the cluster, the same on every node", strings.Join(set, ", ")))
	} else if !namePattern.MatchString(c.Name) {
		errs = append(errs, fmt.Errorf("--cluster-name %q: use letters, digits, '.', '_' and '-' only", c.Name))
	}
	if c.ServerName != "" && !namePattern.MatchString(c.ServerName) {
		errs = append(errs, fmt.Errorf("--server-name %q: use letters, digits, '.', '_' and '-' only", c.ServerName))
	}
	if c.Name != "" && c.Listen == "" {
		errs = append(errs, errors.New("--cluster-name needs --cluster-listen HOST:PORT: the address this node accepts routes on, which the other nodes' --routes name"))
	}
	if c.Listen != "" {
		if _, _, err := splitClusterListen(c.Listen); err != nil {
			errs = append(errs, err)
		}
	}
	if c.TLSCert != "" || c.TLSKey != "" || c.TLSCA != "" {
		if c.TLSCert == "" || c.TLSKey == "" || c.TLSCA == "" {
			errs = append(errs, errors.New("--cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca go together: "+
				"each node presents its certificate and accepts only peers the CA signed"))
		} else if tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: c.TLSCert, KeyFile: c.TLSKey,
			CaFile: c.TLSCA, Verify: true}); err != nil {
			errs = append(errs, fmt.Errorf("--cluster-tls-*: %w", err))
		} else {
			// A node dials routes as well as accepting them: the CA
			// verifies peers either way (as nats-server's own cluster tls
			// block does).
			tc.RootCAs = tc.ClientCAs
			c.tls = tc
		}
	}
	c.routes = nil
	for _, r := range strings.Split(c.Routes, ",") {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		u, err := parseRoute(r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c.routes = append(c.routes, u)
	}
	return errs
}

func splitClusterListen(addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("--cluster-listen %q: want HOST:PORT, e.g. 0.0.0.0:6222 (%w)", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("--cluster-listen %q: port %q is not a number from 1 to 65535 (the other nodes' --routes must know it)", addr, portStr)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

// parseRoute checks one --routes URL: nats-route://HOST:PORT.
func parseRoute(r string) (*url.URL, error) {
	u, err := url.Parse(r)
	if err != nil {
		return nil, fmt.Errorf("--routes %q: %w", r, err)
	}
	if u.Scheme != "nats-route" && u.Scheme != "nats" {
		return nil, fmt.Errorf("--routes %q: want nats-route://HOST:PORT (the --cluster-listen address of a node)", r)
	}
	if u.User != nil {
		return nil, fmt.Errorf("--routes %s: drop the user:password@: routes authenticate with a secret derived from the keys in <data>/nats", natsauth.Redact(r))
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return nil, fmt.Errorf("--routes %q: want nats-route://HOST:PORT, nothing after the port", r)
	}
	host, port := u.Hostname(), u.Port()
	if n, err := strconv.Atoi(port); host == "" || err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("--routes %q: want nats-route://HOST:PORT with a port from 1 to 65535", r)
	}
	return &url.URL{Scheme: "nats-route", Host: net.JoinHostPort(host, port)}, nil
}

// configureCluster makes so a node of the cluster c, its routes
// authenticated with auth's route secret.
func (c *ClusterOptions) configureCluster(so *server.Options, auth *natsauth.Authority, dataDir string, log *slog.Logger) error {
	host, port, err := splitClusterListen(c.Listen)
	if err != nil {
		return err
	}
	name, err := c.serverName(dataDir, port, log)
	if err != nil {
		return err
	}
	secret := auth.RouteSecret()
	so.ServerName = name
	so.Cluster = server.ClusterOpts{Name: c.Name, Host: host, Port: port,
		Username: natsauth.RouteUser, Password: secret}
	if c.tls != nil {
		so.Cluster.TLSConfig, so.Cluster.TLSTimeout = c.tls, 2
	} else {
		log.Warn("cluster routes are not encrypted (no --cluster-tls-cert/-key/-ca): run them on a private network only")
	}
	so.Routes = make([]*url.URL, len(c.routes))
	for i, r := range c.routes {
		u := *r
		u.User = url.UserPassword(natsauth.RouteUser, secret)
		so.Routes[i] = &u
	}
	return nil
}

// serverName is ServerName, or the one persisted under dataDir, or a new
// one (hostname-port), persisted.
func (c *ClusterOptions) serverName(dataDir string, port int, log *slog.Logger) (string, error) {
	path := filepath.Join(dataDir, serverNameFile)
	stored := ""
	if b, err := os.ReadFile(path); err == nil {
		stored = strings.TrimSpace(string(b))
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("server name: %w", err)
	}
	name := c.ServerName
	switch {
	case name != "" && stored != "" && name != stored:
		log.Warn("--server-name differs from the name this data directory had; JetStream sees a new peer (remove the old one with nats server raft peer-remove)",
			"was", stored, "now", name)
	case name == "" && stored != "":
		return stored, nil
	case name == "":
		hn, err := os.Hostname()
		if err != nil || hn == "" {
			hn = "surge"
		}
		name = strings.Trim(regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(hn, "-"), "-.") + "-" + strconv.Itoa(port)
	}
	if name == stored {
		return name, nil
	}
	if err := os.WriteFile(path, []byte(name+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("server name: %w", err)
	}
	return name, nil
}

// waitJetStreamCluster waits until the embedded server's JetStream has a
// meta leader it is current with: before that, a JetStream request (the
// platform's first creates its streams) goes unanswered. That takes a
// majority of the cluster's nodes, so a node started first waits for the
// others, saying so every 10s, until ctx ends.
func waitJetStreamCluster(ctx context.Context, ns *server.Server, log *slog.Logger) error {
	began := time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	next := began.Add(10 * time.Second)
	for !ns.JetStreamIsCurrent() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the NATS cluster's JetStream (a majority of the --routes nodes must be up and hold the same <data>/nats keys): %w", ctx.Err())
		case now := <-tick.C:
			if now.After(next) {
				rz, _ := ns.Routez(nil)
				peers := map[string]bool{}
				if rz != nil {
					for _, r := range rz.Routes {
						peers[r.RemoteName] = true
					}
				}
				log.Warn("waiting for the NATS cluster's JetStream: a majority of the --routes nodes must be up", "waited", now.Sub(began).Round(time.Second), "peers_connected", len(peers))
				next = now.Add(10 * time.Second)
			}
		}
	}
	log.Info("NATS cluster JetStream ready", "server", ns.Name(), "waited", time.Since(began).Round(time.Millisecond))
	return nil
}

// natsLogger hands the embedded server's warnings and errors to the
// process log, its notices to debug (route pooling alone logs a dozen per
// peer). A route refused for its credentials gets a line saying what that
// means here; a peer not answering yet (it starts later) is a warning.
type natsLogger struct{ log *slog.Logger }

func (l natsLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }

// routineWarnings are nats-server warnings of a healthy cluster: a node
// starting before its peers, the meta layer's periodic snapshot.
var routineWarnings = []string{"Waiting for routing to be established", "JetStream has not established contact with a meta leader",
	"Metalayer blocking snapshot"}

func (l natsLogger) Warnf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	for _, r := range routineWarnings {
		if strings.HasPrefix(msg, r) {
			l.log.Debug(msg)
			return
		}
	}
	l.log.Warn(msg)
}
func (l natsLogger) Fatalf(format string, v ...any) {
	l.log.Error(fmt.Sprintf(format, v...))
}

func (l natsLogger) Errorf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if isRouteAuthError(msg) {
		l.log.Error("cluster route refused: this node and the peer hold different NATS keys. "+
			"Every node needs the same <data>/nats: copy it from the first node before a node's first start", "nats", msg)
		return
	}
	if strings.HasPrefix(msg, "Error trying to connect to route") {
		l.log.Warn("cluster peer not reachable (yet)", "nats", msg)
		return
	}
	l.log.Error(msg)
}
func (l natsLogger) Debugf(string, ...any) {}
func (l natsLogger) Tracef(string, ...any) {}

// isRouteAuthError tells a route's authentication failure (either side)
// among the server's errors; route connections are logged with "rid:".
func isRouteAuthError(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "rid:") && (strings.Contains(m, "authorization violation") || strings.Contains(m, "authentication error"))
}
