package orders

import (
	"testing"
	"time"

	"github.com/surgefn/surge/runtime"
)

// BenchmarkAcceptValidateEncode is order-accept's work per request without
// the network: decode, validate, order id, order message, response.
func BenchmarkAcceptValidateEncode(b *testing.B) {
	body := []byte(validBody)
	g := newIDGen()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		in := getInput()
		if err := decodeInput(body, in); err != nil {
			b.Fatal(err)
		}
		total, err := in.validate()
		if err != nil {
			b.Fatal(err)
		}
		buf := getBuf()
		*buf = appendCanonical((*buf)[:0], in, total)
		putInput(in)
		now := time.Now().UTC().Truncate(time.Microsecond)
		id, gerr := g.next(now)
		if gerr != nil {
			b.Fatal(gerr)
		}
		*buf = appendIdentity(*buf, id, now)
		_ = acceptedResponse(id, total)
		putBuf(buf)
	}
}

// BenchmarkAcceptValidateEncode5Items is the same with a five-line order.
func BenchmarkAcceptValidateEncode5Items(b *testing.B) {
	body := []byte(body("123456789", items(5), `"CNY"`))
	g := newIDGen()
	b.ReportAllocs()
	for b.Loop() {
		in := getInput()
		if err := decodeInput(body, in); err != nil {
			b.Fatal(err)
		}
		total, _ := in.validate()
		buf := getBuf()
		*buf = appendCanonical((*buf)[:0], in, total)
		putInput(in)
		id, _ := g.next(time.Now())
		*buf = appendIdentity(*buf, id, time.Now())
		_ = acceptedResponse(id, total)
		putBuf(buf)
	}
}

// acceptMessage is an order as order-accept publishes it.
func acceptMessage() []byte {
	in := orderInput{UserID: 1, Currency: "CNY", Items: []item{{SKU: "A1", Qty: 2, PriceCents: 1999}}}
	return appendIdentity(appendCanonical(nil, &in, 3998), "01JGZQ5W3T8V6Y2X4N7M9K0P1R", fixedNow)
}

// BenchmarkPersistDecode is order-persist's work per message before the
// store: decode and validate into a store.Order.
func BenchmarkPersistDecode(b *testing.B) {
	data := acceptMessage()
	now := func() time.Time { return fixedNow }
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := decodeSubmit(data, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPersistDecodeBatch500 decodes a full batch of distinct orders
// (ns/op is per batch of 500).
func BenchmarkPersistDecodeBatch500(b *testing.B) {
	in := orderInput{UserID: 1, Currency: "CNY", Items: []item{{SKU: "A1", Qty: 2, PriceCents: 1999}}}
	g := newIDGen()
	batch := make([]*runtime.Msg, 500)
	for i := range batch {
		id, _ := g.next(fixedNow)
		in.UserID = int64(i%200 + 1)
		batch[i] = msg(uint64(i+1), 1, string(appendIdentity(appendCanonical(nil, &in, 3998), id, fixedNow)))
	}
	b.ReportAllocs()
	for b.Loop() {
		orders, _, _ := decodeBatch(batch, time.Now)
		if len(orders) != 500 {
			b.Fatalf("%d orders", len(orders))
		}
	}
}
