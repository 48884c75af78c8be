package host

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// TestWireHeader: a local call's header is what the same header becomes
// over NATS (published with nats.go, received off the wire).
func TestWireHeader(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("h")
	if err != nil {
		t.Fatal(err)
	}
	sent := nats.Header{
		"Surge-Param-Item_id": {" A1 "},
		"X-Two":               {"a\r\nb", "\tc"},
		"Plain":               {"v"},
		"Empty":               {""},
	}
	if err := nc.PublishMsg(&nats.Msg{Subject: "h", Header: sent}); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// sent goes over NATS first: wireValues writes to the header it gets.
	local := nats.Header(http.Header(sent).Clone())
	wireValues(local)
	if len(local) != len(m.Header) {
		t.Fatalf("local header %q, over NATS %q", local, m.Header)
	}
	for k, want := range m.Header {
		got := local[k]
		if len(got) != len(want) {
			t.Fatalf("%s: local %q, over NATS %q", k, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s[%d]: local %q, over NATS %q", k, i, got[i], want[i])
			}
		}
	}
}

// TestDeadlineBy: a local call's context is the handler's only when its
// deadline comes no later than the function's timeout allows.
func TestDeadlineBy(t *testing.T) {
	now := time.Now()
	limit := now.Add(time.Second)
	soon, cancel := context.WithDeadline(context.Background(), now.Add(500*time.Millisecond))
	defer cancel()
	late, cancel2 := context.WithDeadline(context.Background(), now.Add(time.Hour))
	defer cancel2()
	for _, tt := range []struct {
		name string
		ctx  context.Context
		want bool
	}{
		{"sooner", soon, true},
		{"later", late, false},
		{"none", context.Background(), false},
	} {
		if got := deadlineBy(tt.ctx, limit); got != tt.want {
			t.Errorf("deadlineBy(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
}
