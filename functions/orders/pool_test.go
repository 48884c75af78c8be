package orders

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// referenceDecode is decodeStrict + validate with a fresh decoder and a
// fresh struct: what the pooled path must always match.
func referenceDecode(data []byte) (orderInput, int64, string) {
	var in orderInput
	if i := firstNonSpace(data); i < 0 || data[i] != '{' {
		return in, 0, "error"
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return in, 0, "error"
	}
	if firstNonSpace(data[dec.InputOffset():]) >= 0 {
		return in, 0, "error"
	}
	total, err := in.validate()
	if err != nil {
		return in, 0, err.Msg
	}
	return in, total, ""
}

// pooledDecode is what order-accept does: decodeInput (the compact fast
// path, else decodeStrict) into a pooled input.
func pooledDecode(data []byte) (orderInput, int64, string) {
	in := getInput()
	if err := decodeInput(data, in); err != nil {
		return orderInput{}, 0, "error"
	}
	total, err := in.validate()
	out := *in
	out.Items = append([]item(nil), in.Items...)
	putInput(in)
	if err != nil {
		return orderInput{}, 0, err.Msg
	}
	return out, total, ""
}

func poolBodies() [][]byte {
	pad := func(n int) string { return strings.Repeat(" ", n) }
	return [][]byte{
		[]byte(validBody),
		[]byte(pad(3000) + validBody + pad(2000)),
		[]byte(`{"user_id":1,"items":[{"sku":"A","qty":5,"price_cents":7},{"sku":"B","qty":2,"price_cents":3}],"currency":"CNY"}` + pad(700)),
		[]byte(`{"user_id":2,"items":[{"sku":"C","price_cents":1}],"currency":"USD"}`), // qty missing: must not inherit 5
		[]byte(`{"user_id":3,"items":[{"qty":1,"price_cents":1}],"currency":"USD"}`),   // sku missing
		[]byte(`{"items":[{"sku":"A","qty":1,"price_cents":1}],"currency":"USD"}`),     // user_id missing
		[]byte(`{"user_id":4,"items":[{"sku":"A","qty":1}],"currency":"EUR"}` + "\n"),  // price missing: 0 is valid
		[]byte(body("5", items(100), `"JPY"`)),
		[]byte(validBody + pad(1000) + "x"),
		[]byte(validBody + validBody),
		[]byte(`{"user_id":6,"items":[{"sku":"A","qty":1,"price_cents":1}],"currency":"CNY","extra":1}`),
		[]byte(`{"user_id":7,"items":[`),
		[]byte(pad(600)),
		[]byte(`{"user_id":8,"items":[{"sku":"` + strings.Repeat("z", 900) + `","qty":1,"price_cents":1}],"currency":"GBP"}`),
	}
}

func TestPooledDecoderIsolation(t *testing.T) {
	bodies := poolBodies()
	check := func(t *testing.T, rnd *rand.Rand, rounds int) {
		for range rounds {
			b := bodies[rnd.IntN(len(bodies))]
			wantIn, wantTotal, wantErr := referenceDecode(b)
			gotIn, gotTotal, gotErr := pooledDecode(b)
			if gotErr != wantErr || (wantErr == "" && (gotTotal != wantTotal || !reflect.DeepEqual(gotIn, wantIn))) {
				t.Fatalf("body %.80q...\npooled:    %+v %d %q\nreference: %+v %d %q", b, gotIn, gotTotal, gotErr, wantIn, wantTotal, wantErr)
			}
		}
	}
	t.Run("sequential", func(t *testing.T) { check(t, rand.New(rand.NewPCG(1, 2)), 3000) })
	t.Run("concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() { check(t, rand.New(rand.NewPCG(uint64(g), 9)), 1000) })
		}
		wg.Wait()
	})
}

func TestPooledDecoderSubmit(t *testing.T) {
	// orders.submit shares the decoder pool with accept bodies; alternate
	// the two, with growing trailing white space.
	for i := range 300 {
		sub := fmt.Sprintf(`{"order_id":"o%d","user_id":%d,"items":[{"sku":"A","qty":%d,"price_cents":1}],"currency":"CNY"}%s`,
			i, i+1, i%5+1, strings.Repeat(" ", i*7))
		o, err := decodeSubmit([]byte(sub), func() time.Time { return fixedNow })
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if o.OrderID != fmt.Sprintf("o%d", i) || o.UserID != int64(i+1) || o.Items[0].Qty != i%5+1 || o.TotalCents != int64(i%5+1) {
			t.Fatalf("message %d decoded as %+v", i, o)
		}
		if _, _, e := pooledDecode([]byte(validBody + strings.Repeat("\n", i))); e != "" {
			t.Fatalf("accept body after message %d: %s", i, e)
		}
	}
}
