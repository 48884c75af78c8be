package orders

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/store"
)

// Limits of an order, as docs/API.md section 3 states them.
const (
	// MaxItems is the most lines an order may have.
	MaxItems = 100
	// MaxSKULen is the longest SKU, in characters.
	MaxSKULen = 64
	// MaxQty is the largest quantity of one line.
	MaxQty = 999
	// MaxOrderIDLen is the longest client-chosen order_id on orders.submit.
	MaxOrderIDLen = 64
)

// item is one order line as a client sends it.
type item struct {
	SKU        string `json:"sku" jsonschema:"minLength=1;maxLength=64"`
	Qty        int    `json:"qty" jsonschema:"minimum=1;maximum=999"`
	PriceCents int64  `json:"price_cents" jsonschema:"minimum=0"`
}

// orderInput is the body of POST /v1/orders and fn.orders.accept. Unknown
// fields are rejected, so it lists every field a client may send.
type orderInput struct {
	UserID   int64  `json:"user_id" jsonschema:"minimum=1"`
	Items    []item `json:"items" jsonschema:"minItems=1;maxItems=100"`
	Currency string `json:"currency"`
}

// submitInput is a message on orders.submit: the order plus the
// client-chosen order_id (docs/API.md section 4). created_at and total_cents
// are optional; order-accept sets both. A given total_cents must match the
// items, so a client cannot store a wrong total.
type submitInput struct {
	orderInput
	OrderID    string `json:"order_id"`
	CreatedAt  string `json:"created_at"`
	TotalCents *int64 `json:"total_cents"`
}

// Field names of the two schemas, for naming unknown fields on the error
// path (explain.go).
var (
	acceptFields = []string{"user_id", "items", "currency"}
	submitFields = []string{"user_id", "items", "currency", "order_id", "created_at", "total_cents"}
	itemFields   = []string{"sku", "qty", "price_cents"}
)

// decodeStrict decodes a JSON object into v, rejecting unknown fields and
// anything after the object. On failure it returns a 400 naming the field at
// fault; fields lists the top-level fields v accepts (for that message).
func decodeStrict(data []byte, v any, fields []string) *runtime.Error {
	if i := firstNonSpace(data); i < 0 || data[i] != '{' {
		if i < 0 {
			return runtime.BadRequest("body", "empty; want a JSON object")
		}
		return explain(data, nil, fields)
	}
	d := getDecoder(data)
	start := d.dec.InputOffset()
	if err := d.dec.Decode(v); err != nil {
		return explain(data, err, fields) // d is dropped: its state is spent
	}
	// The decoder first consumed the white space the previous body left in
	// its buffer (carry), then this body up to the end of the object.
	end := int(d.dec.InputOffset() - start - d.carry)
	if firstNonSpace(data[end:]) >= 0 {
		return runtime.BadRequest("body", "malformed JSON: data after the object at offset %d", end)
	}
	putDecoder(d, data, end)
	return nil
}

// pooledDecoder is a strict json.Decoder reading from a resettable reader.
// A Decoder decodes a stream of values; here the stream is the bodies of
// successive calls, one object each. That saves the Decoder, its buffer
// and its scanner stack on every call, a third of the allocations of the
// accept path. A decoder goes back to the pool only after an object was
// decoded with nothing but white space after it, so nothing of one body
// can leak into the next; after any error it is dropped.
type pooledDecoder struct {
	r   bytes.Reader
	dec *json.Decoder
	// carry is how many bytes (white space) of the previous body the
	// decoder has read but not consumed.
	carry int64
}

var decoderPool sync.Pool

func getDecoder(data []byte) *pooledDecoder {
	d, _ := decoderPool.Get().(*pooledDecoder)
	if d == nil {
		d = new(pooledDecoder)
		d.dec = json.NewDecoder(&d.r)
		d.dec.DisallowUnknownFields()
	}
	d.r.Reset(data)
	return d
}

// putDecoder returns d after it decoded data, whose object ended at end
// with only white space after it.
func putDecoder(d *pooledDecoder, data []byte, end int) {
	if len(data) > 64<<10 {
		return // its buffer grew to a rare huge body: let it go
	}
	d.carry = int64(len(data) - d.r.Len() - end)
	d.r.Reset(nil)
	decoderPool.Put(d)
}

func firstNonSpace(b []byte) int {
	for i, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
		default:
			return i
		}
	}
	return -1
}

// validate checks the order against the rules of docs/API.md and returns its
// total in cents. Rules are checked in field order, so the first problem
// is the one reported.
func (o *orderInput) validate() (total int64, err *runtime.Error) {
	if o.UserID <= 0 {
		return 0, runtime.BadRequest("user_id", "must be a positive 64-bit integer")
	}
	if len(o.Items) == 0 || len(o.Items) > MaxItems {
		return 0, runtime.BadRequest("items", "must have 1 to %d items, got %d", MaxItems, len(o.Items))
	}
	for i := range o.Items {
		it := &o.Items[i]
		switch {
		case it.SKU == "":
			return 0, runtime.BadRequest(itemField(i, "sku"), "required")
		case len(it.SKU) > MaxSKULen && utf8.RuneCountInString(it.SKU) > MaxSKULen:
			return 0, runtime.BadRequest(itemField(i, "sku"), "must be at most %d characters", MaxSKULen)
		case it.Qty < 1 || it.Qty > MaxQty:
			return 0, runtime.BadRequest(itemField(i, "qty"), "must be 1 to %d, got %d", MaxQty, it.Qty)
		case it.PriceCents < 0:
			return 0, runtime.BadRequest(itemField(i, "price_cents"), "must not be negative")
		}
		// Overflow guard: qty*price and the running sum must fit in int64.
		q := int64(it.Qty)
		if it.PriceCents > math.MaxInt64/q || total > math.MaxInt64-it.PriceCents*q {
			return 0, runtime.BadRequest(itemField(i, "price_cents"), "makes the order total overflow a 64-bit integer")
		}
		total += it.PriceCents * q
	}
	if o.Currency == "" {
		return 0, runtime.BadRequest("currency", "required")
	}
	if !knownCurrency(o.Currency) {
		return 0, runtime.BadRequest("currency", "unknown currency %q: want an upper-case ISO 4217 code such as CNY, USD or EUR", o.Currency)
	}
	return total, nil
}

func itemField(i int, name string) string {
	return "items[" + strconv.Itoa(i) + "]." + name
}

// validOrderID reports whether id is 1..64 characters of [A-Za-z0-9_-].
func validOrderID(id string) bool {
	if len(id) == 0 || len(id) > MaxOrderIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// decodeSubmit decodes and validates one orders.submit message into the
// order to store. now is used as created_at when the message has none.
func decodeSubmit(data []byte, now func() time.Time) (store.Order, *runtime.Error) {
	var d submitDecoder
	return d.decode(data, now)
}

// submitDecoder is decodeSubmit for the many orders of one batch: the
// parse reuses one list of items, and the orders' items are cut from
// shared slabs, instead of two allocations (and the growth of one) per
// order. Measured, orders-nats --batch 100: the items were a fifth of
// order-persist's allocations.
type submitDecoder struct {
	scratch []item
	slab    []store.Item
	next    int // the size of the next slab
}

// itemSlab is how many items a slab holds at most; the first of a decoder
// holds 16, each next one twice as many, so that a batch of one order does
// not take a slab made for thousands.
const itemSlab = 4096

// items returns n items of a slab, their capacity n: an append to one
// order's items cannot reach the next order's.
func (d *submitDecoder) items(n int) []store.Item {
	if cap(d.slab)-len(d.slab) < n {
		d.next = min(max(2*d.next, 16), itemSlab)
		d.slab = make([]store.Item, 0, max(n, d.next))
	}
	l := len(d.slab)
	d.slab = d.slab[:l+n]
	return d.slab[l : l+n : l+n]
}

func (d *submitDecoder) decode(data []byte, now func() time.Time) (store.Order, *runtime.Error) {
	in := submitInput{orderInput: orderInput{Items: d.scratch[:0]}}
	if decodeCanonical(data, &in) {
		d.scratch = in.Items[:0]
	} else {
		in = submitInput{}
		if err := decodeStrict(data, &in, submitFields); err != nil {
			return store.Order{}, err
		}
	}
	if in.OrderID == "" {
		return store.Order{}, runtime.BadRequest("order_id", "required")
	}
	if !validOrderID(in.OrderID) {
		return store.Order{}, runtime.BadRequest("order_id", "must be 1 to %d characters of A-Z, a-z, 0-9, '_' or '-'", MaxOrderIDLen)
	}
	total, err := in.validate()
	if err != nil {
		return store.Order{}, err
	}
	if in.TotalCents != nil && *in.TotalCents != total {
		return store.Order{}, runtime.BadRequest("total_cents", "is %d but the items add up to %d", *in.TotalCents, total)
	}
	var created time.Time
	if in.CreatedAt != "" {
		t, perr := time.Parse(time.RFC3339Nano, in.CreatedAt)
		if perr != nil {
			return store.Order{}, runtime.BadRequest("created_at", "must be an RFC 3339 timestamp, got %q", in.CreatedAt)
		}
		created = t.UTC()
	} else {
		created = now().UTC().Truncate(time.Microsecond)
	}
	items := d.items(len(in.Items))
	for i, it := range in.Items {
		items[i] = store.Item{SKU: it.SKU, Qty: it.Qty, PriceCents: it.PriceCents}
	}
	return store.Order{
		OrderID:    in.OrderID,
		UserID:     in.UserID,
		Items:      items,
		TotalCents: total,
		Currency:   in.Currency,
		Status:     StatusAccepted,
		CreatedAt:  created,
	}, nil
}

// currencies is the fixed set of ISO 4217 codes orders may use: the active
// circulating currencies (no funds, metals or test codes).
const currencies = "AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD " +
	"BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN " +
	"ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD " +
	"IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD " +
	"MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD " +
	"OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP " +
	"SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD " +
	"UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG"

// currencySet has one bit per three-letter code AAA..ZZZ: a lookup is an
// index computation, no hashing.
var currencySet = func() (set [26*26*26/64 + 1]uint64) {
	for i := 0; i+3 <= len(currencies); i += 4 {
		n := currencyIndex(currencies[i : i+3])
		set[n/64] |= 1 << (n % 64)
	}
	return set
}()

func currencyIndex(c string) int {
	return int(c[0]-'A')*676 + int(c[1]-'A')*26 + int(c[2]-'A')
}

// Currencies lists the currencies an order may use, for the schemas of
// the routes that take one.
func Currencies() []string { return strings.Fields(currencies) }

// KnownCurrency reports whether c is a currency an order may use (the
// fixed ISO 4217 set, upper case); other functions that publish orders
// (functions/sales) check theirs with it.
func KnownCurrency(c string) bool { return knownCurrency(c) }

// knownCurrency reports whether c is in the fixed ISO 4217 set; codes are
// upper case, as ISO 4217 writes them.
func knownCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if c[i] < 'A' || c[i] > 'Z' {
			return false
		}
	}
	n := currencyIndex(c)
	return currencySet[n/64]&(1<<(n%64)) != 0
}
