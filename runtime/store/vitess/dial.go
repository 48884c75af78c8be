package vitess

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// dialTimeout bounds the reachability check Open makes first.
const dialTimeout = 3 * time.Second

// checkReachable dials addr once, so an unreachable vtgate fails within
// seconds naming the address and the cause, instead of after the open
// timeout with a gRPC deadline error behind it.
func checkReachable(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("vtgate %s is not reachable: %w", addr, err)
	}
	return conn.Close()
}

// checkAddress reports an address that is not host:port with a port from 1
// to 65535.
func checkAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" {
		return errors.New("no host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return nil
}
