package platform

import (
	"errors"
	"fmt"
	"net"
	"strconv"
)

// validate checks the options that need nothing started: flag values and
// their combinations. Start calls it before it touches the data directory,
// so a bad flag is reported at once with the flag's name.
func (o *Options) validate() error {
	var errs []error
	switch o.Store {
	case "buntdb", "vitess":
	default:
		errs = append(errs, fmt.Errorf("--store %q: not supported (want buntdb or vitess)", o.Store))
	}
	if o.Store == "vitess" && o.VTGate == "" {
		errs = append(errs, errors.New("--store vitess needs --vtgate ADDR"))
	}
	for _, a := range []struct{ flag, addr string }{
		{"--http", o.HTTPAddr}, {"--nats-listen", o.NATSListen}, {"--pprof", o.PprofAddr},
	} {
		if a.addr == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(a.addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: want HOST:PORT (%w)", a.flag, a.addr, err))
		} else if n, err := strconv.Atoi(port); err != nil || n < -1 || n > 65535 {
			errs = append(errs, fmt.Errorf("%s %q: port %q is not a number from 0 to 65535", a.flag, a.addr, port))
		}
	}
	if o.Shards < 0 {
		errs = append(errs, fmt.Errorf("--shards %d: want a positive number", o.Shards))
	}
	return errors.Join(errs...)
}

// ownsDataDir reports whether this process keeps state in the data
// directory that no other process may write at the same time: the embedded
// NATS server's JetStream files, or the embedded store's files. A gateway
// against an external NATS only reads the admin token there, and may share
// the directory.
func (o *Options) ownsDataDir() bool {
	return o.NATSURL == "" || (o.Runtime && o.Store == "buntdb")
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
