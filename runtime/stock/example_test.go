package stock_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/runtime/stock"
)

// Example reserves units of a flash-sale SKU. A function gets kv from
// env.KV with the bucket declared under spec.kv; the claim id is the id of
// the order the units are for, so a retry of the same order takes nothing.
func Example() {
	nc, err := nats.Connect(nats.DefaultURL)
	if err != nil {
		return // no server to run against
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "EXAMPLE_STOCK"})
	if err != nil {
		return
	}
	s := stock.New(kv, 8)
	if _, err := s.Set(ctx, "sale.p1", 100); err != nil {
		return
	}
	c, err := s.Reserve(ctx, "sale.p1", "order-42", 1)
	switch {
	case errors.Is(err, stock.ErrSoldOut):
		fmt.Println("sold out")
	case err != nil:
		fmt.Println("retry later:", err)
	default:
		fmt.Println("reserved", c.Units, "replayed", c.Replayed)
	}
}
