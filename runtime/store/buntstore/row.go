package buntstore

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/surgefn/surge/runtime/store"
)

// An order row (the value of an o: key) is JSON or compact, told apart by
// its first byte:
//
//	'{'          the JSON of store.Order: every row written before the
//	             compact format, and orders it cannot carry exactly (see
//	             appendRow)
//	rowV1        the compact format
//	rowV1KeyTime the compact format without created_at, which is the key's
//	             timestamp, in UTC (the common case)
//
// The compact format leaves out order_id and user_id, which the row's key
// holds, and so every reader passes the key with the row (headRow). After
// the tag byte it is:
//
//	varint   created_at, Unix seconds             (rowV1 only)
//	uvarint  created_at, nanoseconds in the second (rowV1 only)
//	varint   created_at, zone offset in minutes    (rowV1 only; 0: UTC)
//	byte     currency: i in 1..len(rowCurrencies) is rowCurrencies[i-1];
//	         0 means uvarint length and bytes follow
//	byte     status, the same way with rowStatuses
//	varint   total_cents
//	uvarint  number of items + 1 (0: items is null)
//	per item: uvarint length and bytes of sku, varint qty, varint price_cents
//
// A `surge bench` order (26-character id, three items) is about 51 bytes
// instead of about 310 as JSON. appendOrderJSON writes a compact row as
// the JSON the row would have been, byte for byte, so pages built from rows
// do not depend on the format.
const (
	rowV1        = 0x01
	rowV1KeyTime = 0x02
)

// rowCurrencies are the currencies a compact row stores as one byte: the
// ISO 4217 codes functions/orders accepts. Rows hold indexes into it, so it
// may only be appended to (at most 255 entries); any other currency is
// stored as its string.
var rowCurrencies = [...]string{
	"AED", "AFN", "ALL", "AMD", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD",
	"BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN",
	"ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD",
	"IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD",
	"MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD",
	"OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP",
	"SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD",
	"UYU", "UZS", "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
}

// rowStatuses are the statuses a compact row stores as one byte; like
// rowCurrencies it may only be appended to.
var rowStatuses = [...]string{"accepted", "created", "paid", "shipped", "delivered", "cancelled", "refunded"}

var (
	currencyCode = codes(rowCurrencies[:])
	statusCode   = codes(rowStatuses[:])
)

func codes(list []string) map[string]byte {
	if len(list) > 255 {
		panic("buntstore: more than 255 row codes")
	}
	m := make(map[string]byte, len(list))
	for i, s := range list {
		m[s] = byte(i + 1)
	}
	return m
}

// errRow is a row that is neither JSON nor a well-formed compact row.
var errRow = errors.New("malformed order row")

// appendRow appends o's row to dst: compact, or JSON when the compact
// format cannot give back exactly what a JSON row would (a string that is
// not UTF-8, which JSON would have replaced, or a created_at JSON writes
// differently or not at all). The error is JSON's, for such orders only.
func appendRow(dst []byte, o *store.Order) ([]byte, error) {
	if compact, ok := appendCompactRow(dst, o); ok {
		return compact, nil
	}
	b, err := json.Marshal(o)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// appendCompactRow appends o in the compact format, or reports false.
func appendCompactRow(dst []byte, o *store.Order) ([]byte, bool) {
	t := o.CreatedAt
	_, off := t.Zone()
	if y := t.Year(); y < 0 || y > 9999 || off%60 != 0 || off <= -24*3600 || off >= 24*3600 {
		return dst, false
	}
	if !utf8.ValidString(o.OrderID) || !utf8.ValidString(o.Currency) || !utf8.ValidString(o.Status) {
		return dst, false
	}
	for i := range o.Items {
		if !utf8.ValidString(o.Items[i].SKU) {
			return dst, false
		}
	}
	if off == 0 && time.Unix(0, t.UnixNano()).Equal(t) { // the key's ts is exact
		dst = append(dst, rowV1KeyTime)
	} else {
		dst = append(dst, rowV1)
		dst = binary.AppendVarint(dst, t.Unix())
		dst = binary.AppendUvarint(dst, uint64(t.Nanosecond()))
		dst = binary.AppendVarint(dst, int64(off/60))
	}
	dst = appendCode(dst, currencyCode, o.Currency)
	dst = appendCode(dst, statusCode, o.Status)
	dst = binary.AppendVarint(dst, o.TotalCents)
	if o.Items == nil {
		dst = append(dst, 0)
	} else {
		dst = binary.AppendUvarint(dst, uint64(len(o.Items))+1)
	}
	for i := range o.Items {
		it := &o.Items[i]
		dst = appendBytes(dst, it.SKU)
		dst = binary.AppendVarint(dst, int64(it.Qty))
		dst = binary.AppendVarint(dst, it.PriceCents)
	}
	return dst, true
}

func appendCode(dst []byte, codes map[string]byte, s string) []byte {
	if c, ok := codes[s]; ok {
		return append(dst, c)
	}
	return appendBytes(append(dst, 0), s)
}

func appendBytes(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

// rowReader reads a compact row field by field; the first failure sticks.
type rowReader struct {
	s   string
	bad bool
}

func (r *rowReader) uvarint() uint64 {
	var v uint64
	for i := 0; i < len(r.s) && i < binary.MaxVarintLen64; i++ {
		c := r.s[i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				break // overflows 64 bits
			}
			r.s = r.s[i+1:]
			return v | uint64(c)<<(7*i)
		}
		v |= uint64(c&0x7f) << (7 * i)
	}
	r.bad, r.s = true, ""
	return 0
}

// varint reads a zig-zag varint, as binary.AppendVarint writes it.
func (r *rowReader) varint() int64 {
	u := r.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

func (r *rowReader) str() string {
	n := r.uvarint()
	if n > uint64(len(r.s)) {
		r.bad, r.s = true, ""
		return ""
	}
	v := r.s[:n]
	r.s = r.s[n:]
	return v
}

func (r *rowReader) code(list []string) string {
	if r.s == "" {
		r.bad = true
		return ""
	}
	c := r.s[0]
	r.s = r.s[1:]
	switch {
	case c == 0:
		return r.str()
	case int(c) <= len(list):
		return list[c-1]
	}
	r.bad = true
	return ""
}

// compactHead is the part of a compact row before its items.
type compactHead struct {
	sec, nsec, offMin int64
	currency, status  string
	total             int64
	items             int // -1: null
}

// readHead reads the fields before the items of the compact row r.s
// (tag included); ts20 is the timestamp of its key.
func (r *rowReader) readHead(ts20 string) (h compactHead) {
	switch {
	case r.s != "" && r.s[0] == rowV1:
		r.s = r.s[1:]
		h.sec = r.varint()
		h.nsec = int64(r.uvarint())
		h.offMin = r.varint()
	case r.s != "" && r.s[0] == rowV1KeyTime:
		r.s = r.s[1:]
		ts, ok := parsePad20(ts20)
		if !ok {
			r.bad = true
			return h
		}
		ns := int64(ts ^ 1<<63)
		h.sec, h.nsec = ns/1e9, ns%1e9
		if h.nsec < 0 {
			h.sec, h.nsec = h.sec-1, h.nsec+1e9
		}
	default:
		r.bad = true
		return h
	}
	h.currency = r.code(rowCurrencies[:])
	h.status = r.code(rowStatuses[:])
	h.total = r.varint()
	n := r.uvarint()
	if n > uint64(len(r.s))/3+1 { // an item is at least 3 bytes
		r.bad = true
	}
	h.items = int(n) - 1
	return h
}

func (h *compactHead) time() time.Time {
	t := time.Unix(h.sec, h.nsec)
	if h.offMin == 0 {
		return t.UTC()
	}
	return t.In(time.FixedZone("", int(h.offMin)*60))
}

// parsePad20 reads 20 decimal digits (pad20).
func parsePad20(s string) (uint64, bool) {
	if len(s) != 20 {
		return 0, false
	}
	var v uint64
	for i := 0; i < 20; i++ {
		c := s[i] - '0'
		if c > 9 {
			return 0, false
		}
		v = v*10 + uint64(c) // 20 digits may overflow: a key never does
	}
	return v, true
}

// decodeRow decodes a row of user (its key after "o:<u20>:" and its
// value) in either format.
func decodeRow(user int64, hr headRow) (store.Order, error) {
	var o store.Order
	row := hr.row
	if row != "" && row[0] == '{' {
		err := json.Unmarshal([]byte(row), &o)
		return o, err
	}
	if len(hr.key) < 21 {
		return o, errRow
	}
	r := rowReader{s: row}
	h := r.readHead(hr.ts20())
	o = store.Order{OrderID: hr.id(), UserID: user, TotalCents: h.total, Currency: h.currency, Status: h.status, CreatedAt: h.time()}
	if h.items >= 0 && !r.bad {
		o.Items = make([]store.Item, h.items)
		for i := range o.Items {
			it := &o.Items[i]
			it.SKU = r.str()
			it.Qty = int(r.varint())
			it.PriceCents = r.varint()
		}
	}
	if r.bad || r.s != "" {
		return store.Order{}, errRow
	}
	return o, nil
}

// appendOrderJSON appends a row of user (as decodeRow) as the JSON
// json.Marshal gives for its store.Order: a JSON row as stored, a compact
// row written field by field.
func appendOrderJSON(dst []byte, user int64, hr headRow) ([]byte, error) {
	row := hr.row
	if row != "" && row[0] == '{' {
		return append(dst, row...), nil
	}
	if len(hr.key) < 21 {
		return dst, errRow
	}
	n0 := len(dst)
	r := rowReader{s: row}
	h := r.readHead(hr.ts20())
	if r.bad {
		return dst, errRow
	}
	dst = append(dst, `{"order_id":`...)
	dst = appendJSONString(dst, hr.id())
	dst = append(dst, `,"user_id":`...)
	dst = strconv.AppendInt(dst, user, 10)
	if h.items < 0 {
		dst = append(dst, `,"items":null`...)
	} else {
		dst = append(dst, `,"items":[`...)
		for i := range h.items {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"sku":`...)
			dst = appendJSONString(dst, r.str())
			dst = append(dst, `,"qty":`...)
			dst = strconv.AppendInt(dst, r.varint(), 10)
			dst = append(dst, `,"price_cents":`...)
			dst = strconv.AppendInt(dst, r.varint(), 10)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	if r.bad || r.s != "" {
		return dst[:n0], errRow
	}
	dst = append(dst, `,"total_cents":`...)
	dst = strconv.AppendInt(dst, h.total, 10)
	dst = append(dst, `,"currency":`...)
	dst = appendJSONString(dst, h.currency)
	dst = append(dst, `,"status":`...)
	dst = appendJSONString(dst, h.status)
	dst = append(dst, `,"created_at":"`...)
	dst = h.time().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, `"}`...), nil
}

// jsonPlain are the bytes encoding/json copies into a string unchanged.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendJSONString appends s as encoding/json writes it: printable ASCII
// other than the characters it escapes is copied, anything else goes
// through encoding/json itself.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !jsonPlain[s[i]] {
			b, err := json.Marshal(s)
			if err != nil { // a string always encodes
				panic(fmt.Sprintf("buntstore: encode string: %v", err))
			}
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
