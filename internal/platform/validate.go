package platform

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/surgefn/surge/gateway"
	"github.com/surgefn/surge/internal/host"
	"github.com/surgefn/surge/runtime/store"
)

// validate checks the options that need nothing started: flag values and
// their combinations. Start calls it before it touches the data directory,
// so a bad flag is reported at once with the flag's name.
func (o *Options) validate() error {
	var errs []error
	if _, ok := store.Lookup(o.Store); !ok && o.Runtime {
		errs = append(errs, fmt.Errorf("--store: %w", store.UnknownBackend(o.Store)))
	}
	for _, a := range []struct{ flag, addr string }{
		{"--http", o.HTTPAddr}, {"--nats-listen", o.NATSListen}, {"--pprof", o.PprofAddr},
	} {
		if a.addr == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(a.addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: want HOST:PORT (%w)", a.flag, a.addr, err))
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 && !(n == -1 && a.flag == "--nats-listen") || n > 65535 {
			errs = append(errs, fmt.Errorf("%s %q: port %q is not a number from 0 (any free port) to 65535", a.flag, a.addr, port))
		}
	}
	if err := host.ValidateReplicas(o.Replicas); err != nil {
		errs = append(errs, err)
	}
	if !o.NATSAuth.IsZero() {
		if o.NATSURL == "" {
			errs = append(errs, errors.New("--nats-creds, --nats-nkey and --nats-tls-* are for an external NATS (--nats URL); "+
				"the embedded server's credentials are generated under <data>/nats"))
		} else if _, err := o.NATSAuth.Options(); err != nil {
			errs = append(errs, err) // a missing or unreadable file, named with its flag
		}
	}
	switch {
	case o.NATSSync != 0 && o.NATSURL != "":
		errs = append(errs, errors.New("--nats-sync is for the embedded NATS server; an external one (--nats URL) has its own sync_interval"))
	case o.NATSSync < 0 && o.NATSSync != SyncAlways:
		errs = append(errs, fmt.Errorf("--nats-sync %s: want auto, always or a positive interval", o.NATSSync))
	}
	errs = append(errs, o.Cluster.validate(o.NATSURL != "")...)
	proxies, err := gateway.ParseTrustedProxies(o.TrustedProxies)
	if err != nil {
		errs = append(errs, fmt.Errorf("--trusted-proxies: %w", err))
	}
	o.proxies = proxies
	secret, jwtErrs := o.JWT.validate()
	o.jwtSecret = secret
	errs = append(errs, jwtErrs...)
	return errors.Join(errs...)
}

// ownsDataDir reports whether this process keeps state in the data
// directory that no other process may write at the same time: the embedded
// NATS server's JetStream files, or a local store's files. A gateway
// against an external NATS only reads the admin token there, and may share
// the directory.
func (o *Options) ownsDataDir() bool {
	b, _ := store.Lookup(o.Store)
	return o.NATSURL == "" || (o.Runtime && b.Local)
}

// probeListen fails when host:port cannot be listened on (a random port,
// 0 or -1, always can). The embedded nats-server only logs a taken port
// and then never becomes ready, which would cost a 15s wait and a guess.
func probeListen(host string, port int) error {
	if port <= 0 {
		return nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Err != nil {
			err = op.Err
		}
		return fmt.Errorf("%w (is another surge or nats-server using it? choose another port)", err)
	}
	return ln.Close()
}
