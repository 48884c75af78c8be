package orders

import (
	crand "crypto/rand"
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"
)

// The order message order-accept publishes on orders.submit is written by
// hand: it is on the hot path, and appending to a pooled buffer costs no
// reflection and no allocation. Its fields are laid out so that the prefix
// up to total_cents depends only on what the client sent (user, items,
// currency): that prefix is what an Idempotency-Key's body hash covers.
//
//	{"user_id":1,"items":[{"sku":"A1","qty":2,"price_cents":1999}],"currency":"CNY","total_cents":3998,
//	 "order_id":"01J...","created_at":"2025-01-02T03:04:05.123456Z"}

// appendCanonical appends the client-determined part of the order message
// (without the closing brace).
func appendCanonical(b []byte, o *orderInput, total int64) []byte {
	b = append(b, `{"user_id":`...)
	b = appendInt(b, o.UserID)
	b = append(b, `,"items":[`...)
	for i := range o.Items {
		it := &o.Items[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"sku":`...)
		b = appendString(b, it.SKU)
		b = append(b, `,"qty":`...)
		b = appendInt(b, int64(it.Qty))
		b = append(b, `,"price_cents":`...)
		b = appendInt(b, it.PriceCents)
		b = append(b, '}')
	}
	b = append(b, `],"currency":`...)
	b = appendString(b, o.Currency)
	b = append(b, `,"total_cents":`...)
	b = appendInt(b, total)
	return b
}

// appendIdentity completes the order message with its id and time.
func appendIdentity(b []byte, orderID string, createdAt time.Time) []byte {
	b = append(b, `,"order_id":"`...)
	b = append(b, orderID...)
	b = append(b, `","created_at":"`...)
	b = createdAt.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `"}`...)
	return b
}

// LineOrder is a one-line order for AppendSubmit.
type LineOrder struct {
	OrderID    string
	UserID     int64
	SKU        string
	Qty        int
	PriceCents int64
	Currency   string
	CreatedAt  time.Time
}

// AppendSubmit appends o as one orders.submit order in the compact form
// order-accept writes, which order-persist's fast path reads: for other
// functions that put orders into the pipeline (a flash sale's take
// messages are arrays of them). total_cents is Qty x PriceCents.
func AppendSubmit(b []byte, o *LineOrder) []byte {
	in := orderInput{UserID: o.UserID, Items: []item{{SKU: o.SKU, Qty: o.Qty, PriceCents: o.PriceCents}}, Currency: o.Currency}
	b = appendCanonical(b, &in, int64(o.Qty)*o.PriceCents)
	return appendIdentity(b, o.OrderID, o.CreatedAt)
}

// acceptedResponse is the 202 body: {"order_id":"...","status":"accepted","total_cents":N}.
func acceptedResponse(orderID string, total int64) []byte {
	b := make([]byte, 0, len(`{"order_id":"","status":"accepted","total_cents":}`)+len(orderID)+20)
	b = append(b, `{"order_id":"`...)
	b = append(b, orderID...)
	b = append(b, `","status":"accepted","total_cents":`...)
	b = appendInt(b, total)
	return append(b, '}')
}

func appendInt(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. s comes out of encoding/json,
// so it is valid UTF-8; control characters, quote and backslash are
// escaped, as are U+2028 and U+2029 for JavaScript consumers.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != '\u2028' && r != '\u2029' {
				i += size
				continue
			}
			b = append(b, s[start:i]...)
			b = append(b, `\u202`...)
			b = append(b, hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// bufPool holds the buffers order messages are built in; NATS copies the
// payload on publish, so a buffer goes back right after.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > 64<<10 {
		return // do not keep the buffer of a rare huge order
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// idGen makes order ids: ULIDs (time-ordered, 26 characters of Crockford
// base32) with monotonic entropy. It is safe for concurrent use, and the
// ids of one process strictly increase in the order they are made: under
// the lock, a timestamp older than the last one is raised to it (two
// callers may read the clock in one order and get here in the other), and
// within a millisecond the entropy is incremented rather than redrawn.
type idGen struct {
	mu      sync.Mutex
	lastMs  uint64
	mono    *ulid.MonotonicEntropy
	entropy [10]byte // scratch, so the id itself stays on the stack
}

// chacha is a ChaCha8 stream seeded from crypto/rand: the Reader and the
// Int63n fast path ulid's monotonic entropy wants. A seeded CSPRNG keeps
// ids of different processes apart (math/rand v1 has only 2^31 seeds).
type chacha struct {
	c *rand.ChaCha8
	r *rand.Rand
}

// Read fills p with random bytes.
func (c chacha) Read(p []byte) (int, error) { return c.c.Read(p) }

// Int63n returns a random number in [0, n).
func (c chacha) Int63n(n int64) int64 { return c.r.Int64N(n) }

func newIDGen() *idGen {
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		// crypto/rand does not fail on supported platforms; time keeps ids
		// apart well enough if it ever does.
		binary.LittleEndian.PutUint64(seed[:], uint64(time.Now().UnixNano()))
	}
	c := rand.NewChaCha8(seed)
	return &idGen{mono: ulid.Monotonic(chacha{c: c, r: rand.New(c)}, 0)}
}

// next returns a new id for an order created at t.
func (g *idGen) next(t time.Time) (string, error) {
	ms := ulid.Timestamp(t)
	g.mu.Lock()
	if ms < g.lastMs {
		ms = g.lastMs
	}
	g.lastMs = ms
	var id ulid.ULID
	err := id.SetTime(ms)
	if err == nil {
		err = g.mono.MonotonicRead(ms, g.entropy[:])
		copy(id[6:], g.entropy[:])
	}
	g.mu.Unlock()
	if err != nil {
		return "", err
	}
	return id.String(), nil
}
