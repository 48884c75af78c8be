package stock_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/runtime/stock"
)

// Example sells units of a flash-sale SKU on a ledger. A function declares
// the stream under spec.publishes (maxAge: unlimited: the ledger is the
// record of what was sold) and builds the ledger in Provision on env.JS.
// A retry with the same retry key (an Idempotency-Key) takes nothing more
// and gets the first claim.
func Example() {
	nc, err := nats.Connect(nats.DefaultURL)
	if err != nil {
		return // no server to run against
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EXAMPLE_LEDGER", Subjects: []string{"example.ledger.>"}}); err != nil {
		return
	}
	l := stock.NewLedger(js, stock.LedgerConfig{Stream: "EXAMPLE_LEDGER", Prefix: "example.ledger"})
	defer l.Close()
	if _, err := l.Set(ctx, "p1", 100); err != nil {
		return
	}
	c, err := l.Reserve(ctx, "p1", stock.Take{Holder: "user-7", Units: 1, Limit: 1, Key: "buy-42"})
	switch {
	case errors.Is(err, stock.ErrSoldOut):
		fmt.Println("sold out")
	case errors.Is(err, stock.ErrLimit):
		fmt.Println("user-7 has bought already")
	case err != nil:
		fmt.Println("retry later:", err)
	default:
		fmt.Println("claim", c.ID, "units", c.Units, "replayed", c.Replayed)
	}
}
