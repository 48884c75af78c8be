package buntstore

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/surgefn/surge/runtime/store"
)

// rowCases are orders at the edges of the compact format; compact says
// whether the format carries them (else the row is JSON).
func rowCases() []struct {
	name    string
	o       store.Order
	compact bool
} {
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	base := func(id string) store.Order {
		return store.Order{OrderID: id, UserID: 42, Currency: "CNY", Status: "accepted", CreatedAt: at,
			Items: []store.Item{{SKU: "A-1", Qty: 2, PriceCents: 1999}}, TotalCents: 3998}
	}
	var many []store.Item
	for i := range 100 {
		many = append(many, store.Item{SKU: fmt.Sprintf("sku-%03d-%s", i, strings.Repeat("x", i)), Qty: i + 1, PriceCents: int64(i) * 1_000_003})
	}
	with := func(id string, f func(o *store.Order)) store.Order { o := base(id); f(&o); return o }
	lmt, err := time.LoadLocation("Asia/Shanghai") // 1900: LMT +08:05:43
	if err != nil {
		lmt = time.FixedZone("LMT", 8*3600+5*60+43)
	}
	return []struct {
		name    string
		o       store.Order
		compact bool
	}{
		{"plain", base("r-plain"), true},
		{"100 items", with("r-many", func(o *store.Order) { o.Items = many }), true},
		{"unicode sku", with("r-uni", func(o *store.Order) {
			o.Items = []store.Item{{SKU: "茶-🍵-é", Qty: 1, PriceCents: 1}, {SKU: "a<b>&\"\\\n\u2028", Qty: 1, PriceCents: 2}}
		}), true},
		{"zero values", with("r-zero", func(o *store.Order) {
			o.UserID, o.TotalCents, o.Items = 0, 0, []store.Item{{SKU: "", Qty: 0, PriceCents: 0}}
		}), true},
		{"negative values", with("r-neg", func(o *store.Order) {
			o.UserID, o.TotalCents = -7, math.MinInt64
			o.Items = []store.Item{{SKU: "n", Qty: -3, PriceCents: math.MinInt64}, {SKU: "m", Qty: math.MaxInt32, PriceCents: math.MaxInt64}}
		}), true},
		{"max user", with("r-maxuser", func(o *store.Order) { o.UserID = math.MaxInt64 }), true},
		{"null items", with("r-null", func(o *store.Order) { o.Items = nil }), true},
		{"empty items", with("r-empty", func(o *store.Order) { o.Items = []store.Item{} }), true},
		{"unknown currency and status", with("r-xyz", func(o *store.Order) { o.Currency, o.Status = "XYZ", "on hold ✋" }), true},
		{"empty currency and status", with("r-nocur", func(o *store.Order) { o.Currency, o.Status = "", "" }), true},
		{"created status", with("r-created", func(o *store.Order) { o.Status = "created" }), true},
		{"whole second", with("r-sec", func(o *store.Order) { o.CreatedAt = at.Truncate(time.Second) }), true},
		{"nanoseconds", with("r-ns", func(o *store.Order) { o.CreatedAt = at.Add(789) }), true},
		{"year 1", with("r-y1", func(o *store.Order) { o.CreatedAt = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC) }), true},
		{"year 9999", with("r-y9999", func(o *store.Order) { o.CreatedAt = time.Date(9999, 6, 30, 23, 59, 59, 999999999, time.UTC) }), true},
		{"before 1970", with("r-1969", func(o *store.Order) { o.CreatedAt = time.Date(1969, 12, 31, 23, 59, 59, 5, time.UTC) }), true},
		{"offset +08:00", with("r-cst", func(o *store.Order) { o.CreatedAt = at.In(time.FixedZone("CST", 8*3600)) }), true},
		{"offset -03:30", with("r-nst", func(o *store.Order) { o.CreatedAt = at.In(time.FixedZone("NST", -(3*3600 + 1800))) }), true},
		{"zero offset, not UTC", with("r-gmt", func(o *store.Order) { o.CreatedAt = at.In(time.FixedZone("GMT", 0)) }), true},
		{"odd id", with("r:odd id \"é\"", func(*store.Order) {}), true},
		{"offset with seconds", with("r-lmt", func(o *store.Order) { o.CreatedAt = time.Date(1900, 6, 1, 12, 0, 0, 0, lmt) }), false},
		{"sku not UTF-8", with("r-bad", func(o *store.Order) { o.Items[0].SKU = "a\xffb" }), false},
		{"id not UTF-8", with("r-bad\xfe", func(*store.Order) {}), false},
	}
}

// jsonRoundTrip is what a JSON row gives back for o.
func jsonRoundTrip(t *testing.T, o store.Order) store.Order {
	t.Helper()
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	var back store.Order
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	return back
}

// sameOrder compares orders as JSON would: created_at by instant and
// offset, the rest exactly (nil and empty items differ).
func sameOrder(got, want store.Order) bool {
	_, go1 := got.CreatedAt.Zone()
	_, wo := want.CreatedAt.Zone()
	if !got.CreatedAt.Equal(want.CreatedAt) || go1 != wo {
		return false
	}
	got.CreatedAt, want.CreatedAt = time.Time{}, time.Time{}
	return reflect.DeepEqual(got, want)
}

// TestRowRoundTrip: every edge case decodes to what its JSON row would,
// and is written as a page in the very bytes json.Marshal gives.
func TestRowRoundTrip(t *testing.T) {
	for _, tc := range rowCases() {
		t.Run(tc.name, func(t *testing.T) {
			row, err := appendRow(nil, &tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if compact := row[0] == rowV1 || row[0] == rowV1KeyTime; compact != tc.compact {
				t.Fatalf("compact = %v, want %v (row %q)", compact, tc.compact, row)
			}
			_, off := tc.o.CreatedAt.Zone()
			y := tc.o.CreatedAt.Year()
			if keyTime := off == 0 && y >= 1678 && y <= 2261; tc.compact && (row[0] == rowV1KeyTime) != keyTime {
				t.Errorf("row tag %d: created_at taken from the key should be %v", row[0], keyTime)
			}
			want := jsonRoundTrip(t, tc.o)
			hr := headRow{key: tsKey(tc.o.CreatedAt) + ":" + tc.o.OrderID, row: string(row)}
			got, err := decodeRow(tc.o.UserID, hr)
			if err != nil {
				t.Fatal(err)
			}
			if !sameOrder(got, want) {
				t.Errorf("decoded\n %#v\nwant\n %#v", got, want)
			}
			wantJSON, _ := json.Marshal(tc.o)
			gotJSON, err := appendOrderJSON([]byte("x"), tc.o.UserID, hr)
			if err != nil {
				t.Fatal(err)
			}
			if d := firstDiff(string(gotJSON[1:]), string(wantJSON)); d != "" {
				t.Errorf("JSON %s", d)
			}
			if tc.compact && len(row) >= len(wantJSON)/2 && len(tc.o.Items) < 100 {
				t.Errorf("compact row of %d bytes, JSON %d", len(row), len(wantJSON))
			}
		})
	}
}

// TestRowOutOfRange: a created_at JSON cannot write fails PutOrders, as it
// did with JSON rows.
func TestRowOutOfRange(t *testing.T) {
	s := openT(t, t.TempDir(), 2)
	o := store.Order{OrderID: "far", UserID: 1, CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if n, err := s.PutOrders(context.Background(), []store.Order{o}); err == nil {
		t.Fatalf("PutOrders of year 10000 = %d, nil; want an error", n)
	}
}

// TestRowMalformed: every truncation of a compact row, and trailing bytes,
// are errors, never a panic or a wrong order.
func TestRowMalformed(t *testing.T) {
	for _, tc := range rowCases() {
		if !tc.compact {
			continue
		}
		row, _ := appendRow(nil, &tc.o)
		key := tsKey(tc.o.CreatedAt) + ":x"
		for n := range len(row) {
			if _, err := decodeRow(1, headRow{key, string(row[:n])}); err == nil {
				t.Errorf("%s: row cut to %d of %d bytes decoded", tc.name, n, len(row))
			}
			if _, err := appendOrderJSON(nil, 1, headRow{key, string(row[:n])}); err == nil {
				t.Errorf("%s: row cut to %d of %d bytes written as JSON", tc.name, n, len(row))
			}
		}
		if _, err := decodeRow(1, headRow{key, string(row) + "\x00"}); err == nil {
			t.Errorf("%s: row with a trailing byte decoded", tc.name)
		}
		if row[0] == rowV1KeyTime {
			if _, err := decodeRow(1, headRow{"0000000000000000000x:x", string(row)}); err == nil {
				t.Errorf("%s: row under a key without a timestamp decoded", tc.name)
			}
		}
	}
	for _, bad := range []string{"\x03abc", "\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"} {
		if _, err := decodeRow(1, headRow{pad20(1) + ":x", bad}); err == nil {
			t.Errorf("row %q decoded", bad)
		}
	}
}

// TestRowsThroughStore: the edge cases stored, read back, listed and paged
// as the JSON rows were.
func TestRowsThroughStore(t *testing.T) {
	s := openT(t, t.TempDir(), 4)
	ctx := context.Background()
	cases := rowCases()
	var orders []store.Order
	for i, tc := range cases {
		if y := tc.o.CreatedAt.Year(); y < 1678 || y > 2261 {
			continue // keys order times by UnixNano, which covers 1678 to 2262
		}
		o := tc.o
		o.UserID = 5
		o.CreatedAt = o.CreatedAt.Add(time.Duration(i) * time.Hour) // distinct, so the list order is known
		orders = append(orders, o)
	}
	if n, err := s.PutOrders(ctx, orders); err != nil || n != len(orders) {
		t.Fatalf("PutOrders = %d, %v", n, err)
	}
	for _, o := range orders {
		got, err := s.GetOrder(ctx, o.OrderID)
		if err != nil {
			t.Fatalf("GetOrder(%q): %v", o.OrderID, err)
		}
		if want := jsonRoundTrip(t, o); !sameOrder(got, want) {
			t.Errorf("GetOrder(%q)\n %#v\nwant\n %#v", o.OrderID, got, want)
		}
	}
	checkPages(t, s, 5, byID(orders...))
}

// checkPages: ListOrders holds the user's orders (orig, by id) newest
// first, and AppendOrdersPage (walked, then from the head) is byte for byte
// the page of JSON rows the store wrote before compact rows: json.Marshal
// of each original order.
func checkPages(t *testing.T, s *Store, user int64, orig map[string]store.Order) {
	t.Helper()
	ctx := context.Background()
	list, err := s.ListOrders(ctx, user, 0, 1000)
	if err != nil || len(list) != len(orig) {
		t.Fatalf("ListOrders = %d orders, %v; want %d", len(list), err, len(orig))
	}
	for i, o := range list {
		if i > 0 && o.CreatedAt.After(list[i-1].CreatedAt) {
			t.Errorf("ListOrders not newest first at %d", i)
		}
		if want, ok := orig[o.OrderID]; !ok || !sameOrder(o, jsonRoundTrip(t, want)) {
			t.Errorf("ListOrders[%d] = %+v, want %+v", i, o, want)
		}
	}
	for _, limit := range []int{headRows, 1000} {
		want := []byte{'['}
		for i, o := range list[:min(limit, len(list))] {
			if i > 0 {
				want = append(want, ',')
			}
			b, err := json.Marshal(orig[o.OrderID])
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, b...)
		}
		want = append(want, ']')
		for pass := range 2 { // the second from the head, for a short page
			page, err := s.AppendOrdersPage(ctx, user, limit, nil)
			if err != nil {
				t.Fatal(err)
			}
			if d := firstDiff(string(page), string(want)); d != "" {
				t.Errorf("page limit %d pass %d: %s", limit, pass, d)
			}
		}
	}
}

// firstDiff describes where got and want first differ ("" if equal).
func firstDiff(got, want string) string {
	if got == want {
		return ""
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	from := max(0, i-60)
	return fmt.Sprintf("differ at byte %d of %d/%d:\n got ...%s\nwant ...%s", i, len(got), len(want), got[from:min(len(got), i+60)], want[from:min(len(want), i+60)])
}

// byID maps orders by id as read back (JSON replaces bytes that are not
// UTF-8).
func byID(orders ...store.Order) map[string]store.Order {
	m := make(map[string]store.Order, len(orders))
	for _, o := range orders {
		m[strings.ToValidUTF8(o.OrderID, "\uFFFD")] = o
	}
	return m
}

// oldPut writes orders the way the store did before compact rows: JSON
// rows, k: keys and 20-digit id lookups. row false leaves the order
// reserved only (a crash between the rounds).
func oldPut(t *testing.T, s *Store, o store.Order, row bool) {
	t.Helper()
	u20, ts20 := userKey(o.UserID), tsKey(o.CreatedAt)
	err := s.shards[s.keyShard(o.OrderID)].Update(func(tx *buntdb.Tx) error {
		_, _, err := tx.Set(lookupKey(o.OrderID), u20, nil)
		return err
	})
	if err != nil || !row {
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	err = s.shards[s.userShard(o.UserID)].Update(func(tx *buntdb.Tx) error {
		if _, _, err := tx.Set(refKey(u20, o.OrderID), ts20, nil); err != nil {
			return err
		}
		_, _, err := tx.Set(orderKey(u20, ts20, o.OrderID), string(b), nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestOldFormatData: a directory written before compact rows is read,
// listed, paged and written to, before and after a reopen, mixed with
// new rows of the same users.
func TestOldFormatData(t *testing.T) {
	dir, ctx := t.TempDir(), context.Background()
	s := openT(t, dir, 4)
	at := time.Date(2025, 6, 18, 20, 0, 0, 0, time.UTC)
	mk := func(id string, user int64, min int) store.Order {
		return store.Order{OrderID: id, UserID: user, Currency: "CNY", Status: "accepted", TotalCents: 500,
			Items: []store.Item{{SKU: "old-1", Qty: 1, PriceCents: 500}}, CreatedAt: at.Add(time.Duration(min) * time.Minute)}
	}
	old := []store.Order{mk("old-a", 1, 0), mk("old-b", 1, 2), mk("old-c", 2, 1)}
	for _, o := range old {
		oldPut(t, s, o, true)
	}
	crashed := mk("old-crashed", 1, 3) // reserved by the old version, no row
	oldPut(t, s, crashed, false)
	check := func(t *testing.T, s *Store) {
		t.Helper()
		for _, o := range old {
			got, err := s.GetOrder(ctx, o.OrderID)
			if err != nil || !sameOrder(got, o) {
				t.Errorf("GetOrder(%q) = %+v, %v", o.OrderID, got, err)
			}
		}
	}
	check(t, s)
	if _, err := s.GetOrder(ctx, crashed.OrderID); !isStoreNotFound(err) {
		t.Errorf("GetOrder of a reservation without a row: %v, want not found", err)
	}
	if l, err := s.ListOrdersAfter(ctx, crashed.UserID, crashed.OrderID, 10); !isStoreNotFound(err) {
		t.Errorf("ListOrdersAfter an old reservation without a row = %v, %v; want not found", l, err)
	}
	// New orders between and after the old ones; redeliveries of the old
	// ones (another created_at, another user) are skipped; the old
	// reservation is completed.
	resent := mk("old-a", 1, 9)
	stolen := mk("old-b", 3, 0)
	fresh := []store.Order{mk("new-a", 1, 1), mk("new-b", 1, 4), mk("new-c", 2, 0), resent, stolen, crashed}
	if n, err := s.PutOrders(ctx, fresh); err != nil || n != 4 {
		t.Fatalf("PutOrders = %d, %v; want 4 (3 new, the reservation completed)", n, err)
	}
	if n, err := s.PutOrders(ctx, append(fresh, old...)); err != nil || n != 0 {
		t.Fatalf("PutOrders again = %d, %v; want 0", n, err)
	}
	if got, err := s.GetOrder(ctx, crashed.OrderID); err != nil || !sameOrder(got, crashed) {
		t.Errorf("GetOrder of the completed reservation = %+v, %v", got, err)
	}
	if l, err := s.ListOrders(ctx, 3, 0, 10); err != nil || len(l) != 0 {
		t.Errorf("user 3 took an id of user 1: %v, %v", l, err)
	}
	wantIDs := []string{"new-b", "old-crashed", "old-b", "new-a", "old-a"}
	for pass := range 2 {
		if pass == 1 {
			s = reopen(t, s, dir)
		}
		check(t, s)
		l, err := s.ListOrders(ctx, 1, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, o := range l {
			ids = append(ids, o.OrderID)
		}
		if !reflect.DeepEqual(ids, wantIDs) {
			t.Errorf("pass %d: ListOrders(1) = %v, want %v", pass, ids, wantIDs)
		}
		// Keyset pages start at rows of either layout.
		for i, after := range wantIDs {
			l, err := s.ListOrdersAfter(ctx, 1, after, 10)
			if err != nil {
				t.Fatalf("pass %d: ListOrdersAfter(1, %q): %v", pass, after, err)
			}
			var ids []string
			for _, o := range l {
				ids = append(ids, o.OrderID)
			}
			if want := wantIDs[i+1:]; !slices.Equal(ids, want) {
				t.Errorf("pass %d: ListOrdersAfter(1, %q) = %v, want %v", pass, after, ids, want)
			}
		}
		checkPages(t, s, 1, byID(old[0], old[1], fresh[0], fresh[1], crashed))
		checkPages(t, s, 2, byID(old[2], fresh[2]))
		if got, err := s.GetOrder(ctx, resent.OrderID); err != nil || !got.CreatedAt.Equal(old[0].CreatedAt) {
			t.Errorf("pass %d: a resend changed the old order: %+v, %v", pass, got, err)
		}
	}
}

func reopen(t *testing.T, s *Store, dir string) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return openT(t, dir, 0)
}

// TestCrashBetweenRounds: a reservation of the compact layout without its
// row (a crash after round 1) is completed by the retry under the
// reservation's timestamp, even when the retry carries another created_at,
// and only once; the store holds two keys per order, none of them k:.
func TestCrashBetweenRounds(t *testing.T) {
	dir, ctx := t.TempDir(), context.Background()
	s := openT(t, dir, 4)
	reserved := time.Date(2026, 3, 1, 9, 0, 0, 1000, time.UTC)
	o := store.Order{OrderID: "crash-1", UserID: 77, Currency: "USD", Status: "accepted", CreatedAt: reserved,
		Items: []store.Item{{SKU: "c", Qty: 1, PriceCents: 10}}, TotalCents: 10}
	entry := string(appendLookup(nil, o.OrderID, o.UserID, tsNum(reserved)))
	err := s.shards[s.keyShard(o.OrderID)].Update(func(tx *buntdb.Tx) error {
		_, _, err := tx.Set(entry[:len(entry)-lookupLen], entry[len(entry)-lookupLen:], nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, dir) // the crash
	if _, err := s.GetOrder(ctx, o.OrderID); !isStoreNotFound(err) {
		t.Fatalf("GetOrder of a reservation without a row: %v, want not found", err)
	}
	if l, err := s.ListOrdersAfter(ctx, o.UserID, o.OrderID, 10); !isStoreNotFound(err) {
		t.Fatalf("ListOrdersAfter a reservation without a row = %v, %v; want not found", l, err)
	}
	retry := o
	retry.CreatedAt = reserved.Add(time.Hour)
	other := o
	other.UserID = 78
	if n, err := s.PutOrders(ctx, []store.Order{other, retry, retry}); err != nil || n != 1 {
		t.Fatalf("PutOrders of the retry = %d, %v; want 1", n, err)
	}
	for range 2 {
		retry.CreatedAt = retry.CreatedAt.Add(time.Minute)
		if n, err := s.PutOrders(ctx, []store.Order{retry}); err != nil || n != 0 {
			t.Fatalf("PutOrders of a redelivery = %d, %v; want 0", n, err)
		}
	}
	got, err := s.GetOrder(ctx, o.OrderID)
	if err != nil || !sameOrder(got, o) {
		t.Fatalf("GetOrder = %+v, %v; want the order at the reserved time", got, err)
	}
	if l, err := s.ListOrders(ctx, 77, 0, 10); err != nil || len(l) != 1 || !sameOrder(l[0], o) {
		t.Errorf("ListOrders(77) = %+v, %v", l, err)
	}
	if l, err := s.ListOrders(ctx, 78, 0, 10); err != nil || len(l) != 0 {
		t.Errorf("ListOrders(78) = %+v, %v; want none", l, err)
	}
	checkPages(t, s, 77, byID(o))
	keys := 0
	for _, db := range s.shards {
		err := db.View(func(tx *buntdb.Tx) error {
			return tx.AscendKeys("*", func(k, _ string) bool {
				if strings.HasPrefix(k, "k:") {
					t.Errorf("key %q written", k)
				}
				if !strings.HasPrefix(k, "meta:") {
					keys++
				}
				return true
			})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if keys != 2 {
		t.Errorf("%d keys for one order, want 2", keys)
	}
}
