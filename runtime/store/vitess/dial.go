package vitess

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"vitess.io/vitess/go/vt/vtgate/grpcvtgateconn"
	"vitess.io/vitess/go/vt/vtgate/vtgateconn"
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

// dialProtocol names the vtgateconn dialer the pool uses: Vitess' gRPC
// client with keepalive pings that vtgate accepts.
const dialProtocol = "surge-grpc"

// The keepalive of connections to vtgate. Vitess' client pings every 10s
// even on a connection with no call in flight, and vtgate, by default,
// counts such a ping as abuse and closes the connection after three
// (GOAWAY ENHANCE_YOUR_CALM "too_many_pings"; the log of a make chaos that
// failed in CI held many): each such connection is dialled again, and a
// call that starts as vtgate closes one fails. So a connection pings only
// while a call is in flight, and no more often than vtgate's 10s minimum.
// The cost: a vtgate that vanished without closing its connections (its
// host lost) is noticed when a call starts on one idle for keepaliveTime,
// which pings first and drops the connection keepaliveTimeout later,
// instead of by the idle pings.
const (
	keepaliveTime    = 30 * time.Second
	keepaliveTimeout = 10 * time.Second
)

var registerDialer = sync.OnceFunc(func() {
	ka := grpc.WithKeepaliveParams(keepalive.ClientParameters{
		Time: keepaliveTime, Timeout: keepaliveTimeout, PermitWithoutStream: false,
	})
	vtgateconn.RegisterDialer(dialProtocol, func(ctx context.Context, addr string) (vtgateconn.Impl, error) {
		// A dialer per call: the one grpcvtgateconn.Dial returns appends
		// to the options it captured, which concurrent dials would race on.
		return grpcvtgateconn.Dial(ka)(ctx, addr)
	})
})
