package vitess

import (
	"context"
	"fmt"
	"net"
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
