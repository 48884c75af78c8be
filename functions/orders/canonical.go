package orders

import (
	"bytes"
	"unicode/utf8"
)

// decodeCanonical is the fast path of decoding an orders.submit message:
// it parses the compact form, fields in the order docs/API.md writes them, no
// white space, integers without exponent or fraction, strings without
// escapes, into in, and reports false for anything else, leaving the
// message to decodeStrict:
//
//	{"user_id":N,"items":[{"sku":S,"qty":N,"price_cents":N},...],"currency":S
//	 [,"total_cents":N][,"order_id":S][,"created_at":S]}
//
// That is what order-accept publishes (all three optional fields) and what
// the docs/API.md examples look like. Whatever it accepts, decodeStrict
// decodes to the same submitInput (FuzzDecodeCanonical checks this), so
// the two paths differ in speed only: encoding/json was about a tenth of
// the CPU of persisting an order, and this takes a fifth of that.
func decodeCanonical(data []byte, in *submitInput) bool {
	p := canonParser{b: data}
	if !p.order(&in.orderInput) {
		return false
	}
	if p.lit(`,"total_cents":`) {
		var total int64
		if !p.int(&total) {
			return false
		}
		in.TotalCents = &total
	}
	if p.lit(`,"order_id":`) && !p.str(&in.OrderID) {
		return false
	}
	if p.lit(`,"created_at":`) && !p.str(&in.CreatedAt) {
		return false
	}
	return p.lit(`}`) && len(p.b) == 0
}

// decodeCanonicalInput is decodeCanonical for a POST /v1/orders body:
// {"user_id":N,"items":[...],"currency":S} exactly, compact.
func decodeCanonicalInput(data []byte, in *orderInput) bool {
	p := canonParser{b: data}
	return p.order(in) && p.lit(`}`) && len(p.b) == 0
}

// order parses an order up to the currency, without the closing brace.
func (p *canonParser) order(in *orderInput) bool {
	return p.lit(`{"user_id":`) && p.int(&in.UserID) &&
		p.lit(`,"items":[`) && p.items(in) &&
		p.lit(`],"currency":`) && p.str(&in.Currency)
}

// canonParser consumes its input from the front.
type canonParser struct{ b []byte }

func (p *canonParser) lit(s string) bool {
	if len(p.b) < len(s) || string(p.b[:len(s)]) != s {
		return false
	}
	p.b = p.b[len(s):]
	return true
}

// items parses one or more {"sku":S,"qty":N,"price_cents":N}, comma
// separated, up to MaxItems (more is left to decodeStrict and validate).
func (p *canonParser) items(in *orderInput) bool {
	items := in.Items[:0]
	for {
		var it item
		var qty int64
		if !(p.lit(`{"sku":`) && p.str(&it.SKU) && p.lit(`,"qty":`) && p.int(&qty) &&
			p.lit(`,"price_cents":`) && p.int(&it.PriceCents) && p.lit(`}`)) {
			return false
		}
		it.Qty = int(qty)
		items = append(items, it)
		if len(items) > MaxItems {
			return false
		}
		if len(p.b) == 0 || p.b[0] != ',' {
			in.Items = items
			return true
		}
		p.b = p.b[1:]
	}
}

// str parses a JSON string without escapes: valid UTF-8, no quote,
// backslash or control character inside.
func (p *canonParser) str(dst *string) bool {
	if len(p.b) == 0 || p.b[0] != '"' {
		return false
	}
	end := bytes.IndexByte(p.b[1:], '"')
	if end < 0 {
		return false
	}
	s := p.b[1 : 1+end]
	for _, c := range s {
		if c < 0x20 || c == '\\' {
			return false
		}
	}
	if !utf8.Valid(s) {
		return false // encoding/json would replace the bad bytes
	}
	*dst = string(s)
	p.b = p.b[2+end:]
	return true
}

// int parses a JSON integer: an optional minus, then 0 or a digit 1-9 and
// more digits, within int64; not followed by a fraction or exponent.
func (p *canonParser) int(dst *int64) bool {
	b := p.b
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	n := 0
	for n < len(b) && '0' <= b[n] && b[n] <= '9' {
		n++
	}
	if n == 0 || n > 19 || n > 1 && b[0] == '0' {
		return false
	}
	if n < len(b) && (b[n] == '.' || b[n] == 'e' || b[n] == 'E') {
		return false
	}
	var v uint64
	for _, c := range b[:n] {
		v = v*10 + uint64(c-'0') // 19 digits fit in a uint64
	}
	switch {
	case !neg && v > 1<<63-1, neg && v > 1<<63:
		return false
	case neg:
		*dst = -int64(v) // -(1<<63) wraps to itself, the minimum
	default:
		*dst = int64(v)
	}
	p.b = b[n:]
	return true
}
